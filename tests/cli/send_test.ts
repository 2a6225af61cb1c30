// `coin send` through the command line against a fake server on 127.0.0.1: the payee written as an address
// or a contact, and the question asked on a terminal before paying an account that holds no coins.

import assert from "node:assert/strict";
import { encodeAddress } from "../../lib/address.ts";
import { writeKeyFile } from "../../lib/keys.ts";
import { Kind } from "../../lib/wire.ts";
import {
  assertOneLineError,
  type FakeReply,
  makeKeyPair,
  makeTempDir,
  runCoinProcess,
  startFakeServer,
  type TempDir,
} from "../_helpers.ts";
import { HAS_SCRIPT, runCoinOnTerminal } from "../_terminal.ts";

/** A fake server answering a balance request with `payeeBalance` and accepting every transfer. */
function server(payeeBalance: number) {
  return startFakeServer((body): FakeReply =>
    body[0] === Kind.balance
      ? { ok: true, balance: payeeBalance, frame: 11, server: "s1" }
      : body[0] === Kind.submit
      ? { ok: true, frame: 12, server: "s1" }
      : { ok: false, code: "malformed", reason: "unexpected", server: "s1" }
  );
}

/** alice.key and a peers.json naming one server at `port`, in `dir`. */
async function files(dir: TempDir, port: number): Promise<{ peers: string; key: string }> {
  const alice = await makeKeyPair(1);
  const key = `${dir.path}/alice.key`;
  await writeKeyFile(key, alice, { force: true });
  const peers = `${dir.path}/peers.json`;
  await Deno.writeTextFile(
    peers,
    JSON.stringify({
      start: Math.floor(Date.now() / 1000) - 3600,
      interval: 1,
      servers: [{ name: "s1", key: (await makeKeyPair(7)).publicHex, host: "127.0.0.1", port }],
      genesis: { [encodeAddress(alice.publicKey)]: 1000 },
    }),
  );
  return { peers, key };
}

const kinds = (requests: Uint8Array[]) => requests.map((r) => r[0]);

Deno.test({
  name:
    "coin send on a terminal asks before paying an account that holds no coins; --yes and scripts are not asked",
  ignore: !HAS_SCRIPT,
  fn: async (t) => {
    await using dir = await makeTempDir();
    const bob = encodeAddress((await makeKeyPair(2)).publicKey);
    const send = (port: number, extra: string[] = []) => async () => {
      const { peers, key } = await files(dir, port);
      return ["send", "--peers", peers, "--key", key, "--to", bob, "--amount", "25", ...extra];
    };
    const question =
      `${bob} holds no coins: a new account, or a mistyped one? Send it 25 coins anyway? [y/N]`;

    await t.step("answered no: exit 1, nothing sent", async () => {
      await using s = server(0);
      const r = await runCoinOnTerminal(await send(s.port)(), ["n"]);
      assert.equal(r.code, 1, r.output);
      assert.ok(r.output.includes(question), r.output);
      assert.match(r.output, new RegExp(`coin: Not sent: paying ${bob} was not confirmed\n$`));
      assert.deepEqual(kinds(s.requests), [Kind.balance], "no transfer reached the server");
    });
    await t.step("Ctrl-C at the question: exit 130, nothing sent", async () => {
      await using s = server(0);
      const r = await runCoinOnTerminal(await send(s.port)(), ["\x03"]);
      assert.equal(r.code, 130, r.output);
      assert.match(r.output, /coin: Interrupted at the question\n$/);
      assert.deepEqual(kinds(s.requests), [Kind.balance], "no transfer reached the server");
    });
    await t.step("answered yes: sent", async () => {
      await using s = server(0);
      const r = await runCoinOnTerminal(await send(s.port)(), ["y"]);
      assert.equal(r.code, 0, r.output);
      assert.ok(r.output.includes(question), r.output);
      assert.match(r.output, /accepted by s1 for frame 12/);
      assert.deepEqual(kinds(s.requests), [Kind.balance, Kind.submit]);
    });
    await t.step(
      "a typo corrected with Backspace, Ctrl-U clearing a line: the answer read is what is left",
      async () => {
        await using s = server(0);
        const r = await runCoinOnTerminal(await send(s.port)(), ["x\x7fy"]);
        assert.equal(r.code, 0, r.output);
        assert.ok(r.output.includes(`${question} x\b \by\n`), r.output);
        await using s2 = server(0);
        const r2 = await runCoinOnTerminal(await send(s2.port)(), ["yes\x15n"]);
        assert.equal(r2.code, 1, r2.output);
        assert.deepEqual(kinds(s2.requests), [Kind.balance], "no transfer reached the server");
      },
    );
    await t.step("an account that holds coins: not asked", async () => {
      await using s = server(5);
      const r = await runCoinOnTerminal(await send(s.port)(), []);
      assert.equal(r.code, 0, r.output);
      assert.ok(!r.output.includes("holds no coins"), r.output);
    });
    await t.step("--yes: not asked, the balance not even looked up", async () => {
      await using s = server(0);
      const r = await runCoinOnTerminal(await send(s.port, ["--yes"])(), []);
      assert.equal(r.code, 0, r.output);
      assert.ok(!r.output.includes("holds no coins"), r.output);
      assert.deepEqual(kinds(s.requests), [Kind.submit]);
    });
    await t.step("not on a terminal (a script): not asked", async () => {
      await using s = server(0);
      const r = await runCoinProcess(await send(s.port)(), { stdin: "" });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!r.stderr.includes("holds no coins"), r.stderr);
      assert.deepEqual(kinds(s.requests), [Kind.submit]);
    });
  },
});

Deno.test("coin send pays a contact by name, and refuses a mistyped address before signing anything", async () => {
  await using dir = await makeTempDir();
  await using s = server(5);
  const { peers, key } = await files(dir, s.port);
  const bob = await makeKeyPair(2);
  const env = { COIN_CONTACTS: `${dir.path}/contacts.json` };
  assert.equal(
    (await runCoinProcess(["contacts", "add", "bob", encodeAddress(bob.publicKey)], { env })).code,
    0,
  );
  const paid = await runCoinProcess(
    ["send", "--peers", peers, "--key", key, "--to", "bob", "--amount", "3"],
    { env },
  );
  assert.equal(paid.code, 0, paid.stderr);
  assert.match(paid.stderr, new RegExp(`^bob is ${encodeAddress(bob.publicKey)} \\(from the contacts\\)\n`));
  const submitted = s.requests.find((r) => r[0] === Kind.submit)!;
  // The transfer's payee (bytes 16..48 of the 144) is bob's account.
  assert.deepEqual(submitted.subarray(1 + 16, 1 + 48), bob.publicKey);

  const address = encodeAddress(bob.publicKey);
  const typo = address.slice(0, 30) + (address[30] === "q" ? "p" : "q") + address.slice(31);
  const before = s.requests.length;
  const refused = await runCoinProcess([
    "send",
    "--peers",
    peers,
    "--key",
    key,
    "--to",
    typo,
    "--amount",
    "3",
  ]);
  assertOneLineError(
    refused,
    2,
    /^coin: Invalid --to "coin1.*" for "coin send": its checksum does not match: it was mistyped or garbled \(character 31 looks wrong\)$/,
  );
  assert.equal(s.requests.length, before, "nothing was sent");
});
