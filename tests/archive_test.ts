// Tests of lib/archive.ts: entry names, pruning, newest-first listing, corruption detection and setting
// aside, and that a writer killed at any moment never leaves a partial file under a final name.

import assert from "node:assert/strict";
import {
  archiveName,
  checkEntryBytes,
  CORRUPT_SUFFIX,
  listArchive,
  loadNewestEntry,
  parseArchiveName,
  readArchiveEntry,
  removeStaleTemporaries,
  writeArchiveEntry,
} from "../lib/archive.ts";
import { toHex } from "../lib/_bytes.ts";
import { CoinError } from "../lib/errors.ts";
import { sha256Hex } from "../lib/hash.ts";
import { Ledger } from "../lib/ledger.ts";
import { assertRejectsError, makeAccount, makeTempDir } from "./_helpers.ts";

const S0 = 1_700_000_000;
const HASH = "0123456789abcdef".repeat(4);

/** A small ledger of its own for each `n`, so each has its own hash. */
function ledgerOf(n: number): Ledger {
  return Ledger.fromBalances([[toHex(makeAccount(1)), 100 + n], [toHex(makeAccount(2, n)), 5]]);
}

async function namesIn(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

Deno.test("archiveName() and parseArchiveName() agree on <hash>.<seconds>", () => {
  assert.equal(archiveName(HASH, S0), `${HASH}.${S0}`);
  assert.deepEqual(parseArchiveName(archiveName(HASH, S0)), { hash: HASH, seconds: S0 });
  assert.deepEqual(parseArchiveName(`${HASH}.0`), { hash: HASH, seconds: 0 });
});

Deno.test("parseArchiveName() ignores every other file name", () => {
  for (
    const name of [
      "README.md",
      HASH,
      `${HASH}.`,
      `${HASH.toUpperCase()}.${S0}`,
      `${HASH.slice(1)}.${S0}`,
      `${HASH}0.${S0}`,
      `${HASH}.-1`,
      `${HASH}.1.5`,
      `${HASH}.1234567890123`,
      `${HASH}.${S0}${CORRUPT_SUFFIX}`,
      `${HASH}.${S0}.tmp-0123abcd`,
      `x${HASH}.${S0}`,
    ]
  ) {
    assert.equal(parseArchiveName(name), undefined, name);
  }
});

Deno.test("writeArchiveEntry() names the file <hash>.<seconds> and stores the packed bytes", async () => {
  await using dir = await makeTempDir();
  const ledger = ledgerOf(1);
  const name = await writeArchiveEntry(dir.path, ledger, S0);
  assert.equal(name, `${ledger.hash}.${S0}`);
  assert.deepEqual(await Deno.readFile(`${dir.path}/${name}`), ledger.bytes);
  assert.equal(sha256Hex(await Deno.readFile(`${dir.path}/${name}`)), ledger.hash);
  assert.deepEqual(await namesIn(dir.path), [name], "no temporary file is left");
});

Deno.test("writeArchiveEntry() writes the same entry twice without complaint", async () => {
  await using dir = await makeTempDir();
  const first = await writeArchiveEntry(dir.path, ledgerOf(1), S0);
  const second = await writeArchiveEntry(dir.path, ledgerOf(1), S0);
  assert.equal(first, second);
  assert.deepEqual(await namesIn(dir.path), [first]);
});

Deno.test("writeArchiveEntry() keeps only the newest `keep` entries", async () => {
  await using dir = await makeTempDir();
  await Deno.writeTextFile(`${dir.path}/README.md`, "not an entry");
  // Written out of order: pruning goes by the frame's seconds, not by when the file was written.
  for (const n of [3, 1, 5, 2, 4]) await writeArchiveEntry(dir.path, ledgerOf(n), S0 + n, { keep: 3 });
  const entries = await listArchive(dir.path);
  assert.deepEqual(entries.map((e) => e.seconds), [S0 + 5, S0 + 4, S0 + 3]);
  assert.deepEqual(entries.map((e) => e.hash), [ledgerOf(5).hash, ledgerOf(4).hash, ledgerOf(3).hash]);
  assert.ok((await namesIn(dir.path)).includes("README.md"), "other files are left alone");
});

Deno.test("writeArchiveEntry() keeps 64 entries unless told otherwise", async () => {
  await using dir = await makeTempDir();
  for (let n = 0; n < 66; n++) await writeArchiveEntry(dir.path, ledgerOf(n), S0 + n);
  const entries = await listArchive(dir.path);
  assert.equal(entries.length, 64);
  assert.equal(entries.at(-1)!.seconds, S0 + 2);
});

Deno.test("writeArchiveEntry() into a missing directory is a CoinError", async () => {
  await using dir = await makeTempDir();
  await assertRejectsError(
    () => writeArchiveEntry(`${dir.path}/missing`, ledgerOf(1), S0),
    CoinError,
    /does not exist/,
  );
});

Deno.test("listArchive() lists entries newest first with their size, skipping other files", async () => {
  await using dir = await makeTempDir();
  const names = [];
  for (const n of [2, 9, 4]) names.push(await writeArchiveEntry(dir.path, ledgerOf(n), S0 + n));
  await Deno.writeTextFile(`${dir.path}/${HASH}.${S0 + 100}${CORRUPT_SUFFIX}`, "set aside");
  await Deno.writeTextFile(`${dir.path}/${HASH}.${S0 + 100}.tmp-0123abcd`, "half written");
  await Deno.mkdir(`${dir.path}/${HASH}.${S0 + 200}`); // a directory with an entry's name is not an entry
  const entries = await listArchive(dir.path);
  assert.deepEqual(entries, [
    { name: names[1], hash: ledgerOf(9).hash, seconds: S0 + 9, sizeBytes: ledgerOf(9).bytes.length },
    { name: names[2], hash: ledgerOf(4).hash, seconds: S0 + 4, sizeBytes: ledgerOf(4).bytes.length },
    { name: names[0], hash: ledgerOf(2).hash, seconds: S0 + 2, sizeBytes: ledgerOf(2).bytes.length },
  ]);
});

Deno.test("listArchive() orders entries of the same second by name", async () => {
  await using dir = await makeTempDir();
  for (const n of [1, 2, 3]) await writeArchiveEntry(dir.path, ledgerOf(n), S0);
  const names = (await listArchive(dir.path)).map((e) => e.name);
  assert.deepEqual(names, names.slice().sort());
});

Deno.test("listArchive() skips entries pruned while it lists them", async () => {
  // `coin archive ls` on a running server: the server prunes an entry between readDir and stat.
  await using dir = await makeTempDir();
  let stop = false;
  const writer = (async () => {
    for (let n = 0; !stop; n++) await writeArchiveEntry(dir.path, ledgerOf(n), S0 + n, { keep: 2 });
  })();
  try {
    const deadlineMs = Date.now() + 300;
    let lists = 0;
    while (Date.now() < deadlineMs) {
      const entries = await listArchive(dir.path);
      assert.ok(entries.length <= 3);
      lists++;
    }
    assert.ok(lists > 10);
  } finally {
    stop = true;
    await writer;
  }
});

Deno.test("listArchive() of an empty directory is empty", async () => {
  await using dir = await makeTempDir();
  assert.deepEqual(await listArchive(dir.path), []);
});

Deno.test("listArchive() refuses a missing directory and a file with a CoinError", async () => {
  await using dir = await makeTempDir();
  await assertRejectsError(() => listArchive(`${dir.path}/missing`), CoinError, /it does not exist/);
  await Deno.writeTextFile(`${dir.path}/file`, "");
  await assertRejectsError(() => listArchive(`${dir.path}/file`), CoinError, /it is not a directory/);
});

Deno.test("readArchiveEntry() returns the ledger an entry holds", async () => {
  await using dir = await makeTempDir();
  const ledger = ledgerOf(7);
  await writeArchiveEntry(dir.path, ledger, S0);
  const [entry] = await listArchive(dir.path);
  const read = await readArchiveEntry(dir.path, entry!);
  assert.equal(read.hash, ledger.hash);
  assert.deepEqual(read.bytes, ledger.bytes);
  assert.equal(read.supply, ledger.supply);
});

Deno.test("readArchiveEntry() detects a single flipped byte anywhere in the file", async () => {
  await using dir = await makeTempDir();
  const ledger = ledgerOf(7);
  const name = await writeArchiveEntry(dir.path, ledger, S0);
  const [entry] = await listArchive(dir.path);
  for (let i = 0; i < ledger.bytes.length; i++) {
    const bytes = ledger.bytes.slice();
    bytes[i]! ^= 1 << (i % 8);
    await Deno.writeFile(`${dir.path}/${name}`, bytes);
    const err = await assertRejectsError(() => readArchiveEntry(dir.path, entry!), CoinError, /is corrupt/);
    assert.match(err.message, /not to its name/);
  }
});

Deno.test("readArchiveEntry() refuses a file that hashes to its name but is no database", async () => {
  await using dir = await makeTempDir();
  const garbage = new TextEncoder().encode("this text hashes to its name but is not a packed database");
  const name = archiveName(sha256Hex(garbage), S0);
  await Deno.writeFile(`${dir.path}/${name}`, garbage);
  const [entry] = await listArchive(dir.path);
  await assertRejectsError(() => readArchiveEntry(dir.path, entry!), CoinError, /corrupt: Packed database/);
  assert.match(checkEntryBytes({ hash: sha256Hex(garbage) }, garbage)!, /wrong magic/);
  assert.equal(checkEntryBytes({ hash: ledgerOf(1).hash }, ledgerOf(1).bytes), undefined);
});

Deno.test("loadNewestEntry() returns the newest entry and its ledger", async () => {
  await using dir = await makeTempDir();
  for (const n of [1, 3, 2]) await writeArchiveEntry(dir.path, ledgerOf(n), S0 + n);
  const loaded = await loadNewestEntry(dir.path);
  assert.equal(loaded?.entry.seconds, S0 + 3);
  assert.equal(loaded?.ledger.hash, ledgerOf(3).hash);
});

Deno.test("loadNewestEntry() sets a corrupt newest entry aside as .corrupt and returns the next good one", async () => {
  await using dir = await makeTempDir();
  const names = [];
  for (const n of [1, 2, 3]) names.push(await writeArchiveEntry(dir.path, ledgerOf(n), S0 + n));
  const [, second, newest] = names as [string, string, string];
  const bytes = await Deno.readFile(`${dir.path}/${newest}`);
  bytes[bytes.length - 1]! ^= 0xff;
  await Deno.writeFile(`${dir.path}/${newest}`, bytes);

  const reported: [string, string][] = [];
  const loaded = await loadNewestEntry(dir.path, (name, problem) => reported.push([name, problem]));
  assert.equal(loaded?.entry.name, second);
  assert.equal(loaded?.ledger.hash, ledgerOf(2).hash);
  assert.equal(reported.length, 1);
  assert.equal(reported[0]![0], newest);
  assert.match(reported[0]![1], /not to its name/);
  const files = await namesIn(dir.path);
  assert.ok(files.includes(`${newest}${CORRUPT_SUFFIX}`), "set aside, not deleted");
  assert.ok(!files.includes(newest));
  assert.deepEqual(await Deno.readFile(`${dir.path}/${newest}${CORRUPT_SUFFIX}`), bytes);
  assert.equal((await loadNewestEntry(dir.path))?.entry.name, second, "the next start goes straight to it");
});

Deno.test("loadNewestEntry() returns undefined when no entry verifies", async () => {
  await using dir = await makeTempDir();
  assert.equal(await loadNewestEntry(dir.path), undefined);
  const name = await writeArchiveEntry(dir.path, ledgerOf(1), S0);
  await Deno.writeFile(`${dir.path}/${name}`, new Uint8Array(10));
  let corrupt = 0;
  assert.equal(await loadNewestEntry(dir.path, () => corrupt++), undefined);
  assert.equal(corrupt, 1);
  assert.deepEqual(await namesIn(dir.path), [`${name}${CORRUPT_SUFFIX}`]);
});

Deno.test("removeStaleTemporaries() removes only the files a killed writer leaves", async () => {
  await using dir = await makeTempDir();
  const entry = await writeArchiveEntry(dir.path, ledgerOf(1), S0);
  const stale = [`${entry}.tmp-0123abcd`, `${HASH}.${S0}.tmp-ffffffff`];
  const kept = [
    "README.md",
    `${HASH}.${S0}.tmp-0123abc`,
    `${HASH}.${S0}.tmp-ZZZZZZZZ`,
    `${entry}${CORRUPT_SUFFIX}`,
  ];
  for (const name of [...stale, ...kept]) await Deno.writeTextFile(`${dir.path}/${name}`, "x");
  assert.equal(await removeStaleTemporaries(dir.path), 2);
  assert.deepEqual(await namesIn(dir.path), [entry, ...kept].sort());
  assert.equal(await removeStaleTemporaries(dir.path), 0);
});

/** Starts the writer, waits until it runs, kills it with SIGKILL after `delayMs`; returns its output. */
async function runWriterAndKill(dir: string, round: number, delayMs: number): Promise<string> {
  const script = new URL("./_archive_writer.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-lock", script, dir, String(round)],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const decoder = new TextDecoder();
  let output = "";
  const reader = child.stdout.getReader();
  try {
    while (!output.includes("started\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      output += decoder.decode(value, { stream: true });
    }
    if (output.includes("started\n")) {
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      child.kill("SIGKILL");
    }
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      output += decoder.decode(value, { stream: true });
    }
  } finally {
    reader.releaseLock();
  }
  const status = await child.status;
  assert.equal(status.signal, "SIGKILL", `the writer should run until killed; it printed:\n${output}`);
  return output;
}

Deno.test("archive writes are atomic under a killed writer", async () => {
  await using dir = await makeTempDir();
  const seed = Date.now();
  let state = seed;
  const nextDelayMs = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return 20 + (state % 400);
  };
  let written = 0;
  for (let round = 0; round < 6; round++) {
    const output = await runWriterAndKill(dir.path, round, nextDelayMs());
    written += output.split("\n").filter((line) => line.startsWith("wrote ")).length;

    // After every kill: each file under an entry's name holds exactly the bytes its name promises.
    const entries = await listArchive(dir.path);
    for (const entry of entries) {
      const bytes = await Deno.readFile(`${dir.path}/${entry.name}`);
      assert.equal(
        checkEntryBytes(entry, bytes),
        undefined,
        `${entry.name} after round ${round} (seed ${seed})`,
      );
      assert.equal(bytes.length, entry.sizeBytes);
    }
    assert.ok(entries.length <= 3 + 1, "pruned to keep, plus at most the entry written when killed");
  }
  assert.ok(written > 0, `the writer never finished an entry (seed ${seed})`);

  const before = await namesIn(dir.path);
  const temporaries = before.filter((name) => parseArchiveName(name) === undefined);
  assert.equal(await removeStaleTemporaries(dir.path), temporaries.length, `left: ${temporaries.join(", ")}`);
  const after = await namesIn(dir.path);
  assert.ok(after.every((name) => parseArchiveName(name) !== undefined), after.join(", "));
  const loaded = await loadNewestEntry(dir.path, (name, problem) => assert.fail(`${name}: ${problem}`));
  assert.ok(loaded !== undefined);
});
