// `coin keygen`: a 0600 key file, the public key as the last stdout line, no silent overwrite; with
// --encrypt, its seed encrypted with a passphrase (typed on a terminal: tests/cli/key_test.ts).
// Most runs are processes of their own in a temporary directory: the file names (and coin.key, the
// default) are relative to the cwd, and the messages quote them as given.

import { decodeAddress } from "../../lib/address.ts";
import assert from "node:assert/strict";
import { toHex } from "../../lib/_bytes.ts";
import { PASSPHRASE_ENV } from "../../lib/cli/key.ts";
import { readKeyFile } from "../../lib/keys.ts";
import { assertOneLineError, linesOf, makeTempDir, runCoin, runCoinProcess } from "../_helpers.ts";

// Where the passphrase comes from is each test's choice: not an accident of the shell that runs them.
Deno.env.delete(PASSPHRASE_ENV);

const ADDRESS = /^coin1[02-9ac-hj-np-z]{58}$/;

/** The 64-hex public key written as `address`. */
const hexOf = (address: string) => toHex(decodeAddress(address));

async function modeOf(path: string): Promise<number> {
  return (await Deno.stat(path)).mode! & 0o777;
}

Deno.test("coin keygen writes a mode 0600 key file and prints its address as the last line", async () => {
  await using dir = await makeTempDir();
  const [named, defaulted] = await Promise.all([
    runCoinProcess(["keygen", "--out", "alice.key"], { cwd: dir.path }),
    runCoinProcess(["keygen"], { cwd: dir.path }),
  ]);
  for (const [run, file] of [[named, "alice.key"], [defaulted, "coin.key"]] as const) {
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, "");
    const lines = linesOf(run.stdout);
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, new RegExp(`Wrote a new key to ${file} \\(mode 0600\\)`));
    assert.match(lines[0]!, /its account's address is:$/);
    assert.match(lines.at(-1)!, ADDRESS);
    assert.equal(await modeOf(`${dir.path}/${file}`), 0o600);
    assert.equal((await readKeyFile(`${dir.path}/${file}`)).publicHex, hexOf(lines.at(-1)!));
  }
  assert.notEqual(linesOf(named.stdout).at(-1), linesOf(defaulted.stdout).at(-1), "each key is new");
  assert.deepEqual([...Deno.readDirSync(dir.path)].map((e) => e.name).sort(), ["alice.key", "coin.key"]);
});

Deno.test("coin keygen refuses to replace a key file without --force and replaces it with --force", async () => {
  await using dir = await makeTempDir();
  // Only the refusal quotes the file name as given: the other two run in this process.
  const first = await runCoin(["keygen", "--out", `${dir.path}/alice.key`]);
  assert.equal(first.code, 0, first.stderr);
  const before = await Deno.readTextFile(`${dir.path}/alice.key`);

  const refused = await runCoinProcess(["keygen", "--out", "alice.key"], { cwd: dir.path });
  assertOneLineError(
    refused,
    1,
    /^coin: Cannot write "alice\.key": it already exists \(use --force to replace it\)$/,
  );
  assert.equal(await Deno.readTextFile(`${dir.path}/alice.key`), before, "the old key is untouched");

  const forced = await runCoin(["keygen", "--out", `${dir.path}/alice.key`, "--force"]);
  assert.equal(forced.code, 0, forced.stderr);
  const address = linesOf(forced.stdout).at(-1)!;
  assert.match(address, ADDRESS);
  assert.notEqual(address, linesOf(first.stdout).at(-1));
  assert.equal((await readKeyFile(`${dir.path}/alice.key`)).publicHex, hexOf(address));
  assert.equal(await modeOf(`${dir.path}/alice.key`), 0o600);
  assert.deepEqual(
    [...Deno.readDirSync(dir.path)].map((e) => e.name),
    ["alice.key"],
    "no temporary file is left",
  );
});

Deno.test("coin keygen refuses paths it cannot write with one line, never a stack trace", async () => {
  await using dir = await makeTempDir();
  await Deno.mkdir(`${dir.path}/keys`);
  await Deno.writeTextFile(`${dir.path}/plain`, "not a directory\n");
  const [directory, directoryForced, underFile, noDir, empty] = await Promise.all([
    runCoinProcess(["keygen", "--out", "keys"], { cwd: dir.path }),
    runCoinProcess(["keygen", "--out", "keys", "--force"], { cwd: dir.path }),
    runCoinProcess(["keygen", "--out", "plain/alice.key"], { cwd: dir.path }),
    runCoinProcess(["keygen", "--out", "missing/alice.key"], { cwd: dir.path }),
    runCoin(["keygen", "--out="]),
  ]);
  assertOneLineError(directory, 1, /Cannot write "keys": it is a directory/);
  assertOneLineError(directoryForced, 1, /Cannot write "keys": it is a directory/);
  assertOneLineError(underFile, 1, /Cannot write "plain\/alice\.key": Not a directory/);
  assertOneLineError(noDir, 1, /Cannot write "missing\/alice\.key": directory "missing" does not exist/);
  assertOneLineError(empty, 2, /Missing --out for "coin keygen"/);
  assert.deepEqual([...Deno.readDirSync(`${dir.path}/keys`)], [], "nothing is left in the directory");
});

Deno.test("coin keygen: an unknown flag is a usage error with a suggestion", async () => {
  await using dir = await makeTempDir();
  const [typo, positional] = await Promise.all([
    runCoinProcess(["keygen", "--fource"], { cwd: dir.path }),
    runCoinProcess(["keygen", "alice.key"], { cwd: dir.path }),
  ]);
  assertOneLineError(typo, 2, /Unknown flag --fource for "coin keygen"; did you mean --force\?/);
  assertOneLineError(positional, 2, /Unexpected argument "alice\.key" for "coin keygen"/);
  assert.deepEqual([...Deno.readDirSync(dir.path)], []);
});

Deno.test("coin keygen --encrypt writes a key whose seed only COIN_KEY_PASSPHRASE opens", async () => {
  await using dir = await makeTempDir();
  const passphrase = "correct horse battery staple";
  const run = await runCoinProcess(["keygen", "--encrypt", "--out", "alice.key"], {
    cwd: dir.path,
    env: { [PASSPHRASE_ENV]: passphrase },
  });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stderr, "");
  const lines = linesOf(run.stdout);
  assert.equal(lines.length, 2);
  assert.equal(
    lines[0],
    "Wrote a new encrypted key to alice.key (mode 0600); its account's address is:",
  );
  assert.match(lines[1]!, ADDRESS);
  const path = `${dir.path}/alice.key`;
  assert.equal(await modeOf(path), 0o600);
  const text = await Deno.readTextFile(path);
  const json = JSON.parse(text);
  assert.equal(json.version, 2);
  assert.equal(json.public, hexOf(lines[1]!));
  assert.deepEqual({ ...json.kdf, salt: undefined }, {
    name: "scrypt",
    N: 131072,
    r: 8,
    p: 1,
    salt: undefined,
  });
  const keyPair = await readKeyFile(path, { passphrase: () => Promise.resolve(passphrase) });
  assert.equal(keyPair.publicHex, hexOf(lines[1]!));
  assert.ok(!text.includes(toHex(keyPair.seed)), "the seed is not in the file");
  assert.ok(!text.includes(passphrase), "nor the passphrase");
  assert.deepEqual([...Deno.readDirSync(dir.path)].map((e) => e.name), ["alice.key"]);
});

Deno.test("coin keygen --encrypt refuses without a usable passphrase and writes nothing", async () => {
  await using dir = await makeTempDir();
  await Deno.writeTextFile(`${dir.path}/taken.key`, "an old key\n", { mode: 0o600 });
  const encrypt = ["keygen", "--encrypt", "--out"];
  const [none, empty, short, taken] = await Promise.all([
    // In this process: no terminal to ask on (runCoin's io has no ask) and no COIN_KEY_PASSPHRASE.
    runCoin([...encrypt, `${dir.path}/alice.key`]),
    runCoinProcess([...encrypt, "alice.key"], { cwd: dir.path, env: { [PASSPHRASE_ENV]: "" } }),
    runCoinProcess([...encrypt, "alice.key"], { cwd: dir.path, env: { [PASSPHRASE_ENV]: "1234567" } }),
    // An existing file is refused before a passphrase is asked for.
    runCoin([...encrypt, `${dir.path}/taken.key`]),
  ]);
  assertOneLineError(
    none,
    1,
    /^coin: Cannot encrypt key file ".*\/alice\.key": set COIN_KEY_PASSPHRASE or run on a terminal to type a passphrase$/,
  );
  assertOneLineError(empty, 1, /^coin: Cannot encrypt key file "alice\.key": the passphrase is empty$/);
  assertOneLineError(
    short,
    1,
    /^coin: Cannot encrypt key file "alice\.key": the passphrase is shorter than 8 characters$/,
  );
  assertOneLineError(
    taken,
    1,
    /^coin: Cannot write ".*\/taken\.key": it already exists \(use --force to replace it\)$/,
  );
  assert.deepEqual([...Deno.readDirSync(dir.path)].map((e) => e.name), ["taken.key"]);
  assert.equal(await Deno.readTextFile(`${dir.path}/taken.key`), "an old key\n");
});
