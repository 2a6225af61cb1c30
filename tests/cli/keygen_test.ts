// `coin keygen`: a 0600 key file, the public key as the last stdout line, no silent overwrite.
// Most runs are processes of their own in a temporary directory: the file names (and coin.key, the
// default) are relative to the cwd, and the messages quote them as given.

import assert from "node:assert/strict";
import { readKeyFile } from "../../lib/keys.ts";
import { assertOneLineError, linesOf, makeTempDir, runCoin, runCoinProcess } from "../_helpers.ts";

const HEX64 = /^[0-9a-f]{64}$/;

async function modeOf(path: string): Promise<number> {
  return (await Deno.stat(path)).mode! & 0o777;
}

Deno.test("coin keygen writes a mode 0600 key file and prints its public key as the last line", async () => {
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
    assert.match(lines.at(-1)!, HEX64);
    assert.equal(await modeOf(`${dir.path}/${file}`), 0o600);
    assert.equal((await readKeyFile(`${dir.path}/${file}`)).publicHex, lines.at(-1));
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
  const publicHex = linesOf(forced.stdout).at(-1)!;
  assert.match(publicHex, HEX64);
  assert.notEqual(publicHex, linesOf(first.stdout).at(-1));
  assert.equal((await readKeyFile(`${dir.path}/alice.key`)).publicHex, publicHex);
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
