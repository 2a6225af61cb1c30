// `coin sign`: a signed transfer as 288 hex digits, and one-line refusals of every bad input, with exit 2
// for command-line syntax and exit 1 for a transfer the network would refuse.

import assert from "node:assert/strict";
import { encodeAddress } from "../../lib/address.ts";
import { fromHex, toHex } from "../../lib/_bytes.ts";
import { writeKeyFile } from "../../lib/keys.ts";
import { decodeTxHex, signTx, verifyTx } from "../../lib/tx.ts";
import {
  assertOneLineError,
  makeKeyPair,
  makeTempDir,
  runCoin,
  runCoinProcess,
  type TempDir,
} from "../_helpers.ts";

const T0 = 1_700_000_000_000;

/** `address` with its character at `index` changed to another one of the alphabet. */
function typo(address: string, index: number): string {
  return address.slice(0, index) + (address[index] === "q" ? "p" : "q") + address.slice(index + 1);
}

/**
 * A directory with alice's key (seed 0x01) as alice.key, and its absolute path `key` for the runs in this
 * process; bob (seed 0x02) is the payee.
 */
async function setUp(): Promise<{ dir: TempDir; key: string; bob: string; alice: string }> {
  const dir = await makeTempDir();
  const alice = await makeKeyPair(1);
  const key = `${dir.path}/alice.key`;
  await writeKeyFile(key, alice);
  return { dir, key, alice: alice.publicHex, bob: (await makeKeyPair(2)).publicHex };
}

Deno.test("coin sign prints the 288 hex digits of the signed transfer, which tx show accepts", async () => {
  const { dir, key, bob } = await setUp();
  await using _ = dir;
  const run = await runCoin(["sign", "--key", key, "--to", bob, "--amount", "25", "--timestamp", String(T0)]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stderr, "");
  assert.match(run.stdout, /^[0-9a-f]{288}\n$/);
  const hex = run.stdout.trim();
  const expected = await signTx(await makeKeyPair(1), {
    to: (await makeKeyPair(2)).publicKey,
    amount: 25,
    timestampMs: T0,
  });
  assert.equal(hex, toHex(expected), "the same bytes as signTx (Ed25519 is deterministic)");

  const [shown, piped] = await Promise.all([
    runCoin(["tx", "show", hex]),
    runCoin(["tx", "show", "-"], { stdin: run.stdout }),
  ]);
  for (const r of [shown, piped]) {
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^check +ok: well formed, signature verifies$/m);
  }
});

Deno.test("coin sign pays the same account whether --to is its address (either case), its hex or a contact's name", async () => {
  const { dir, key, bob } = await setUp();
  await using _ = dir;
  const address = encodeAddress(fromHex(bob, 32)!);
  const contacts = `${dir.path}/contacts.json`;
  const env = { COIN_CONTACTS: contacts };
  const add = await runCoinProcess(["contacts", "add", "bob", address], { env });
  assert.equal(add.code, 0, add.stderr);
  const sign = (to: string) =>
    runCoinProcess(["sign", "--key", key, "--to", to, "--amount", "25", "--timestamp", String(T0)], { env });
  const runs = await Promise.all([bob, address, address.toUpperCase(), "bob"].map(sign));
  for (const r of runs) {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, runs[0]!.stdout);
  }
  const unknown = await sign("bobb");
  assertOneLineError(
    unknown,
    2,
    /^coin: Invalid --to "bobb" for "coin sign": not an address \(coin1…\), 64 hex digits or a saved contact; did you mean bob\?$/,
  );
});

Deno.test("coin sign timestamps with the current time by default and accepts the largest amount", async () => {
  const { dir, key, bob, alice } = await setUp();
  await using _ = dir;
  const before = Date.now();
  const run = await runCoin(["sign", "--key", key, "--to", bob, "--amount", "9007199254740991"]);
  const after = Date.now();
  assert.equal(run.code, 0, run.stderr);
  const tx = decodeTxHex(run.stdout)!;
  assert.ok(
    tx.timestampMs >= before && tx.timestampMs <= after,
    `${before} <= ${tx.timestampMs} <= ${after}`,
  );
  assert.equal(tx.amount, Number.MAX_SAFE_INTEGER);
  assert.equal(toHex(tx.payer), alice);
  assert.equal(toHex(tx.payee), bob);
  assert.ok(verifyTx(tx));
});

Deno.test("coin sign refuses bad amounts with one line: exit 2 for syntax, exit 1 for the transfer rules", async () => {
  const { dir, key, bob } = await setUp();
  await using _ = dir;
  const base = ["sign", "--key", key, "--to", bob];
  const cases: [string[], number, RegExp][] = [
    [["--amount", "0"], 1, /^coin: Refused: amount_must_be_positive: the amount must be at least 1$/],
    [["--amount=-5"], 1, /^coin: Refused: amount_must_be_positive: /],
    [
      ["--amount", "-5"],
      2,
      /^coin: Value "-5" for --amount starts with "-"; write --amount=-5 if it is meant/,
    ],
    [["--amount", "1.5"], 2, /^coin: Invalid --amount "1\.5" for "coin sign": expected a whole number$/],
    [["--amount", "1e30"], 2, /^coin: Invalid --amount "1e30" for "coin sign": expected a whole number$/],
    [["--amount", "abc"], 2, /^coin: Invalid --amount "abc" for "coin sign": expected a whole number$/],
    [["--amount", "9007199254740992"], 1, /^coin: Refused: amount_too_large: the amount is above 2\^53 - 1$/],
    [["--amount", "1000000000000000000000000000000"], 1, /^coin: Refused: amount_too_large: /],
    [["--amount", ""], 2, /^coin: Missing --amount for "coin sign"/],
    [[], 2, /^coin: Missing --amount for "coin sign"/],
  ];
  const runs = await Promise.all(cases.map(([args]) => runCoin([...base, ...args])));
  runs.forEach((run, i) => assertOneLineError(run, cases[i]![1], cases[i]![2]));
});

Deno.test("coin sign refuses a missing, malformed or world-readable key file with exit 1", async () => {
  const { dir, bob } = await setUp();
  await using _ = dir;
  await Deno.writeTextFile(`${dir.path}/broken.key`, "{", { mode: 0o600 });
  await Deno.copyFile(`${dir.path}/alice.key`, `${dir.path}/open.key`);
  await Deno.chmod(`${dir.path}/open.key`, 0o604);
  const args = (key: string) => ["sign", "--key", key, "--to", bob, "--amount", "5"];
  const [missing, broken, open] = await Promise.all(
    // The refusals quote the key file name as given, relative to the cwd: processes of their own in `dir`.
    ["nothere.key", "broken.key", "open.key"].map((key) => runCoinProcess(args(key), { cwd: dir.path })),
  );
  assertOneLineError(missing!, 1, /^coin: Cannot read key file "nothere\.key": it does not exist$/);
  assertOneLineError(
    broken!,
    1,
    /^coin: Cannot read key file "broken\.key": it is not valid JSON: line 1, column 2: expected a key in double quotes, found end of the file$/,
  );
  assertOneLineError(
    open!,
    1,
    /^coin: Cannot use key file "open\.key": other users can access it \(mode 0604\)/,
  );
});

Deno.test("coin sign refuses a bad --to, a payment to oneself, unknown flags and missing flags", async () => {
  const { dir, key, bob, alice } = await setUp();
  await using _ = dir;
  const bobAddress = encodeAddress(fromHex(bob, 32)!);
  const cases: [string[], number, RegExp][] = [
    [
      ["--to", "zz", "--amount", "5"],
      2,
      /^coin: Invalid --to "zz" for "coin sign": not an address \(coin1…\), 64 hex digits or a saved contact \("coin contacts add zz ADDRESS" saves one\)$/,
    ],
    [
      ["--to", bob.slice(1), "--amount", "5"],
      2,
      /expected an address \(coin1…\), 64 hex digits or a contact name$/,
    ],
    [
      ["--to", bob + "00", "--amount", "5"],
      2,
      /expected an address \(coin1…\), 64 hex digits or a contact name$/,
    ],
    [
      ["--to", "g" + bob.slice(1), "--amount", "5"],
      2,
      /expected an address \(coin1…\), 64 hex digits or a contact name$/,
    ],
    [
      ["--to", typo(bobAddress, 20), "--amount", "5"],
      2,
      /^coin: Invalid --to "coin1.*" for "coin sign": its checksum does not match: it was mistyped or garbled \(character 21 looks wrong\)$/,
    ],
    [["--to", bobAddress.slice(0, -1), "--amount", "5"], 2, /: it has 62 characters, an address has 63$/],
    [
      ["--to", bobAddress.replace("coin1", "coin1b"), "--amount", "5"],
      2,
      /: character 6 "b" is not used in addresses/,
    ],
    [
      ["--to", encodeAddress(fromHex(alice, 32)!), "--amount", "5"],
      1,
      /^coin: Refused: accounts_must_be_different/,
    ],
    [
      ["--to", alice, "--amount", "5"],
      1,
      /^coin: Refused: accounts_must_be_different: payer and payee are the same/,
    ],
    [
      ["--to", bob, "--amout", "5"],
      2,
      /^coin: Unknown flag --amout for "coin sign"; did you mean --amount\? /,
    ],
    [["--too", bob, "--amount", "5"], 2, /did you mean --to\?/],
    [["--amount", "5"], 2, /^coin: Missing --to for "coin sign"/],
    [["--to", bob, "--amount", "5", "--timestamp", "soon"], 2, /Invalid --timestamp "soon" for "coin sign"/],
    [
      ["--to", bob, "--amount", "5", "--timestamp=-1"],
      2,
      /Invalid --timestamp "-1" for "coin sign": out of range/,
    ],
    [["--to", bob, "--amount", "5", "extra"], 2, /Unexpected argument "extra" for "coin sign"/],
  ];
  const runs = await Promise.all(
    cases.map(([args]) => runCoin(["sign", "--key", key, ...args])),
  );
  runs.forEach((run, i) => assertOneLineError(run, cases[i]![1], cases[i]![2]));
  const noKey = await runCoin(["sign", "--to", bob, "--amount", "5"]);
  assertOneLineError(noKey, 2, /^coin: Missing --key for "coin sign"/);
});
