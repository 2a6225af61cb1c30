// `coin balance` through the command line against fake servers on 127.0.0.1: the account written as an
// address, in hex or as a contact's name, and shown as its address.

import assert from "node:assert/strict";
import { toHex } from "../../lib/_bytes.ts";
import { encodeAddress } from "../../lib/address.ts";
import { Kind } from "../../lib/wire.ts";
import {
  assertOneLineError,
  makeKeyPair,
  makeTempDir,
  runCoinProcess,
  startFakeServer,
} from "../_helpers.ts";

Deno.test("coin balance takes an address, hex or a contact's name, and shows the address", async () => {
  await using dir = await makeTempDir();
  const bob = await makeKeyPair(2);
  const address = encodeAddress(bob.publicKey);
  await using server = startFakeServer((body) =>
    body[0] === Kind.balance
      ? {
        ok: true,
        account: toHex(body.subarray(1)),
        balance: 55,
        frame: 9,
        hash: "ab".repeat(32),
        inSync: true,
        server: "s1",
      }
      : "close"
  );
  const env = { COIN_CONTACTS: `${dir.path}/contacts.json` };
  assert.equal((await runCoinProcess(["contacts", "add", "bob", address], { env })).code, 0);
  const at = ["--server", `127.0.0.1:${server.port}`];
  const [byAddress, byHex, byName, json] = await Promise.all([
    runCoinProcess(["balance", address, ...at], { env }),
    runCoinProcess(["balance", bob.publicHex, ...at], { env }),
    runCoinProcess(["balance", "bob", ...at], { env }),
    runCoinProcess(["balance", "bob", ...at, "--json"], { env }),
  ]);
  for (const r of [byAddress, byHex, byName]) {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "55\n");
  }
  assert.match(
    byAddress.stderr,
    new RegExp(`^${address} balance 55 in frame 9 \\(hash abababababab\\); 1/1 servers`),
  );
  assert.match(byName.stderr, new RegExp(`^bob ${address} balance 55 in frame 9 `));
  const shown = JSON.parse(json.stdout);
  assert.equal(shown.account, bob.publicHex);
  assert.equal(shown.address, address);
  assert.equal(shown.balance, 55);
  for (const r of server.requests) {
    assert.deepEqual(r.subarray(1), bob.publicKey, "asked about bob's account");
  }

  const typo = address.slice(0, -1) + (address.endsWith("q") ? "p" : "q");
  const asked = server.requests.length;
  const [mistyped, unknown] = await Promise.all([
    runCoinProcess(["balance", typo, ...at], { env }),
    runCoinProcess(["balance", "carol", ...at], { env }),
  ]);
  assertOneLineError(
    mistyped,
    2,
    /^coin: Invalid account "coin1.*" for "coin balance": its checksum does not match: it was mistyped or garbled/,
  );
  assertOneLineError(
    unknown,
    2,
    /^coin: Invalid account "carol" for "coin balance": not an address .* saved contact/,
  );
  assert.equal(server.requests.length, asked, "no server asked about a mistyped account");
});
