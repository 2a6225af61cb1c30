// `coin tx show`: a transfer's fields as text or JSON, exit 0 only when it is well formed and verifies.

import { encodeAddress } from "../../lib/address.ts";
import { fromHex } from "../../lib/_bytes.ts";
import assert from "node:assert/strict";
import { toHex } from "../../lib/_bytes.ts";
import { decodeTxHex, signTx } from "../../lib/tx.ts";
import {
  assertOneLineError,
  closedPort,
  type FakeReply,
  linesOf,
  makeKeyPair,
  makeTempDir,
  runCoin,
  startFakeServer,
} from "../_helpers.ts";

const T0 = 1_700_000_000_000;

async function transfer(amount: number | bigint = 25): Promise<string> {
  const alice = await makeKeyPair(1);
  const bob = await makeKeyPair(2);
  return toHex(await signTx(alice, { to: bob.publicKey, amount, timestampMs: T0 }));
}

function flip(hex: string, byte: number): string {
  const digit = parseInt(hex[2 * byte]!, 16) ^ 0x8;
  return hex.slice(0, 2 * byte) + digit.toString(16) + hex.slice(2 * byte + 1);
}

Deno.test("coin tx show prints a valid transfer's fields and exits 0", async () => {
  const hex = await transfer();
  const alice = (await makeKeyPair(1)).publicHex;
  const bob = (await makeKeyPair(2)).publicHex;
  const [run, upper, stdin] = await Promise.all([
    runCoin(["tx", "show", hex]),
    runCoin(["tx", "show", hex.toUpperCase()]),
    runCoin(["tx", "show", "-"], { stdin: `  ${hex}\n\n` }),
  ]);
  for (const r of [run, upper, stdin]) {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.equal(r.stdout, run.stdout);
  }
  assert.deepEqual(linesOf(run.stdout), [
    "id         653a79f701a11ca35c43a92b152468e5a0e46ca562144df55c8fc31524f8c2bb",
    "time       2023-11-14T22:13:20.000Z (1700000000000 ms)",
    "amount     25",
    `payer      ${encodeAddress(fromHex(alice, 32)!)} (${alice})`,
    `payee      ${encodeAddress(fromHex(bob, 32)!)} (${bob})`,
    `signature  ${hex.slice(160)}`,
    "check      ok: well formed, signature verifies",
  ]);
});

Deno.test("coin tx show --json prints one object with the transfer's fields, valid and code", async () => {
  const hex = await transfer();
  const run = await runCoin(["tx", "show", hex, "--json"]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(linesOf(run.stdout).length, 1);
  assert.deepEqual(JSON.parse(run.stdout), {
    id: "653a79f701a11ca35c43a92b152468e5a0e46ca562144df55c8fc31524f8c2bb",
    timestamp: T0,
    time: "2023-11-14T22:13:20.000Z",
    amount: 25,
    payee: (await makeKeyPair(2)).publicHex,
    payer: (await makeKeyPair(1)).publicHex,
    payeeAddress: encodeAddress((await makeKeyPair(2)).publicKey),
    payerAddress: encodeAddress((await makeKeyPair(1)).publicKey),
    signature: hex.slice(160),
    valid: true,
    code: null,
  });
});

Deno.test("coin tx show exits 1 with one line when any byte of the transfer is changed", async () => {
  const hex = await transfer();
  const bytes = [0, 7, 15, 20, 60, 100, 143];
  const runs = await Promise.all(bytes.map((b) => runCoin(["tx", "show", flip(hex, b)])));
  runs.forEach((run, i) => {
    assertOneLineError(run, 1, /^coin: Refused: signature_invalid: the payer's signature does not verify$/, {
      stdout: true,
    });
    assert.match(run.stdout, /^check +signature_invalid: /m, `byte ${bytes[i]}`);
  });
  const json = await runCoin(["tx", "show", flip(hex, 100), "--json"]);
  assertOneLineError(json, 1, /signature_invalid/, { stdout: true });
  assert.deepEqual(
    (({ valid, code }) => ({ valid, code }))(JSON.parse(json.stdout)),
    { valid: false, code: "signature_invalid" },
  );
});

Deno.test("coin tx show names the first failed rule of a signed but invalid transfer", async () => {
  const [zero, huge] = await Promise.all([transfer(0), transfer(2n ** 60n)]);
  const [zeroRun, hugeRun] = await Promise.all([
    runCoin(["tx", "show", zero, "--json"]),
    runCoin(["tx", "show", huge, "--json"]),
  ]);
  assertOneLineError(zeroRun, 1, /^coin: Refused: amount_must_be_positive: /, { stdout: true });
  assertOneLineError(hugeRun, 1, /^coin: Refused: amount_too_large: /, { stdout: true });
  assert.equal(
    JSON.parse(hugeRun.stdout).amount,
    (2n ** 60n).toString(),
    "an amount above 2^53 - 1 is a string",
  );
});

Deno.test("coin tx show refuses malformed input and bad usage with one line", async () => {
  const hex = await transfer();
  const cases: [string[], number, RegExp, string?][] = [
    [["tx", "show", hex.slice(2)], 1, /^coin: Refused: malformed: expected 288 hex digits, got 286$/],
    [
      ["tx", "show", hex.slice(0, -1) + "z"],
      1,
      /^coin: Refused: malformed: expected 288 hex digits, got non-hex/,
    ],
    [["tx", "show", "-"], 1, /^coin: Refused: malformed: expected 288 hex digits, got 0$/, ""],
    [["tx", "show"], 2, /^coin: Missing the transfer \(hex, or - for stdin\) for "coin tx show"$/],
    [["tx"], 2, /^coin: Missing subcommand for "coin tx": expected show or status/],
    [["tx", "shwo", hex], 2, /^coin: Unknown subcommand "shwo" for "coin tx": expected show or status/],
    [["tx", "show", hex, "--jsno"], 2, /^coin: Unknown flag --jsno for "coin tx"; did you mean --json\?/],
    [["tx", "show", hex, "extra"], 2, /^coin: Unexpected argument "extra" for "coin tx"/],
  ];
  const runs = await Promise.all(
    cases.map(([args, , , stdin]) => runCoin(args, stdin === undefined ? {} : { stdin })),
  );
  runs.forEach((run, i) => assertOneLineError(run, cases[i]![1], cases[i]![2]));
});

// ---- coin tx status ------------------------------------------------------------------------------------

/** A peers.json naming the fake servers at `ports`, in that order. */
async function peersFor(dir: string, ports: number[]): Promise<string> {
  const path = `${dir}/peers.json`;
  const keys = await Promise.all(ports.map((_, i) => makeKeyPair(40 + i)));
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      start: Math.floor(T0 / 1000),
      interval: 1,
      servers: ports.map((port, i) => ({
        name: `s${i + 1}`,
        key: keys[i]!.publicHex,
        host: "127.0.0.1",
        port,
      })),
      genesis: { [(await makeKeyPair(1)).publicHex]: 1000 },
    }),
  );
  return path;
}

Deno.test("coin tx status asks the servers in turn: exit 0 committed, 1 never, 4 not known yet", async (t) => {
  await using dir = await makeTempDir();
  const hex = await transfer();
  const id = decodeTxHex(hex)!.id;
  const status = async (replies: (FakeReply | "down")[], args: string[]) => {
    const servers = replies.map((r) => r === "down" ? undefined : startFakeServer(() => r));
    try {
      const ports = servers.map((s) => s?.port ?? closedPort());
      return await runCoin(["tx", "status", "--peers", await peersFor(dir.path, ports), ...args]);
    } finally {
      for (const s of servers) await s?.[Symbol.asyncDispose]();
    }
  };
  await t.step("committed, after a server that is down and one that only knows it as pending", async () => {
    const r = await status(["down", { ok: true, state: "pending", lastFrame: 9, server: "s2" }, {
      ok: true,
      state: "committed",
      frame: 7,
      server: "s3",
    }], [hex]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(linesOf(r.stdout), ["committed in frame 7 (s3 says so)"]);
  });
  await t.step("by id and timestamp, as JSON", async () => {
    const r = await status([{ ok: true, state: "committed", frame: 7, server: "s1" }], [
      id,
      "--timestamp",
      String(T0),
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { id, state: "committed", frame: 7, code: null, server: "s1" });
  });
  await t.step("never: exit 1, safe to pay again", async () => {
    const r = await status([{ ok: true, state: "never", code: "insufficient_funds", server: "s1" }], [hex]);
    assertOneLineError(
      r,
      1,
      /^coin: Not committed: transfer [0-9a-f]{16}… was not applied in any frame of its time window \(last result: insufficient_funds\); safe to pay again$/,
    );
  });
  await t.step("pending everywhere: exit 4", async () => {
    const r = await status([{ ok: true, state: "pending", lastFrame: 9, server: "s1" }], [hex]);
    assertOneLineError(
      r,
      4,
      /^coin: Not known yet: transfer [0-9a-f]{16}… is pending \(its window ends with frame 9\); ask again later, and do not pay again yet$/,
    );
  });
  await t.step("no server answers: exit 4", async () => {
    const r = await status(["down", "down"], [hex]);
    assertOneLineError(r, 4, /^coin: Outcome unknown: no server answered \(s1, s2\); do not pay again yet$/);
  });
  await t.step("an id without --timestamp is a usage error", async () => {
    const r = await status([{ ok: true, state: "pending" }], [id]);
    assertOneLineError(r, 2, /^coin: "coin tx status ID" needs --timestamp MS/);
  });
});
