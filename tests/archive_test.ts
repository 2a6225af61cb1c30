// Tests of lib/archive.ts: entry names (<hash>.<frame start in unix ms>, unique at any interval), pruning,
// newest-first listing, reading an entry's commit back and detecting corruption, setting a damaged entry
// aside as a server does, and that a writer killed at any moment never leaves a partial file under a
// final name.

import assert from "node:assert/strict";
import { toHex } from "../lib/_bytes.ts";
import { writeFileAtomic } from "../lib/_files.ts";
import {
  archiveName,
  CORRUPT_SUFFIX,
  DEFAULT_ARCHIVE_KEEP,
  listArchive,
  parseArchiveName,
  pruneArchive,
  readEntryBytes,
  removeStaleTemporaries,
} from "../lib/archive.ts";
import { CoinError } from "../lib/errors.ts";
import { sha256Hex } from "../lib/hash.ts";
import { Ledger, type RecentIds } from "../lib/ledger.ts";
import { checkEntry, recover } from "../lib/recovery.ts";
import { VOTES_FILE } from "../lib/votes_file.ts";
import { type CommitFile, directoryReader, makeCommit, signingNetwork } from "./_commits.ts";
import { writerNetwork } from "./_archive_writer.ts";
import { assertRejectsError, makeAccount, makeTempDir } from "./_helpers.ts";

const A1 = toHex(makeAccount(1));
const NET = signingNetwork({ genesis: { [A1]: 1000 } });
const F0 = NET.network.startFrame;
const MS0 = F0 * NET.network.intervalMs;
const HASH = "0123456789abcdef".repeat(4);

/** A small database of its own for each `n` (same supply, 1000), so each has its own hash. */
function ledgerOf(n: number): Ledger {
  return Ledger.fromBalances([[A1, 995 - n], [toHex(makeAccount(2, n)), 5 + n]]);
}

/** The certified commit of ledgerOf(n) in frame F0 + `frame` (default n). */
function commitOf(n: number, frame = n, recent: RecentIds = []): CommitFile {
  return makeCommit(NET, { frame: F0 + frame, state: { ledger: ledgerOf(n), recent } });
}

/** Writes an entry as a server does (lib/server.ts): atomically, then prunes to `keep` when given. */
async function write(dir: string, file: CommitFile, keep?: number): Promise<string> {
  await writeFileAtomic(`${dir}/${file.name}`, file.bytes, { overwrite: true });
  if (keep !== undefined) await pruneArchive(dir, keep);
  return file.name;
}

async function namesIn(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

Deno.test("archiveName() and parseArchiveName() agree on <hash>.<ms>", () => {
  assert.equal(archiveName(HASH, MS0), `${HASH}.${MS0}`);
  assert.deepEqual(parseArchiveName(archiveName(HASH, MS0)), { hash: HASH, ms: MS0 });
  assert.deepEqual(parseArchiveName(`${HASH}.0`), { hash: HASH, ms: 0 });
  assert.deepEqual(parseArchiveName(`${HASH}.1700000000250`), { hash: HASH, ms: 1_700_000_000_250 });
  assert.deepEqual(parseArchiveName(`${HASH}.${"9".repeat(16)}`), { hash: HASH, ms: 9_999_999_999_999_999 });
});

Deno.test("parseArchiveName() ignores every other file name", () => {
  for (
    const name of [
      "README.md",
      VOTES_FILE,
      HASH,
      `${HASH}.`,
      `${HASH.toUpperCase()}.${MS0}`,
      `${HASH.slice(1)}.${MS0}`,
      `${HASH}0.${MS0}`,
      `${HASH}.-1`,
      `${HASH}.1.5`,
      `${HASH}.${"1".repeat(17)}`,
      `${HASH}.${MS0}${CORRUPT_SUFFIX}`,
      `${HASH}.${MS0}.tmp-0123abcd`,
      `x${HASH}.${MS0}`,
    ]
  ) {
    assert.equal(parseArchiveName(name), undefined, name);
  }
});

Deno.test("an entry is named <sha256 of its bytes>.<frame start in unix ms> and holds its commit", async () => {
  await using dir = await makeTempDir();
  const file = commitOf(1);
  const name = await write(dir.path, file);
  assert.equal(name, `${sha256Hex(file.bytes)}.${(F0 + 1) * 1000}`);
  assert.deepEqual(parseArchiveName(name), { hash: file.hash, ms: (F0 + 1) * 1000 });
  assert.deepEqual(await Deno.readFile(`${dir.path}/${name}`), file.bytes);
  assert.deepEqual(await namesIn(dir.path), [name], "no temporary file is left");
  await write(dir.path, file);
  assert.deepEqual(await namesIn(dir.path), [name], "the same entry written twice is one file");
});

Deno.test("names stay unique and ordered at sub-second intervals (ms, not seconds)", async () => {
  await using dir = await makeTempDir();
  const fast = signingNetwork({ genesis: { [A1]: 1000 }, interval: 0.25 });
  const first = fast.network.startFrame;
  // Eight frames of 250 ms: four share each second; the state does not even change.
  const files = Array.from({ length: 8 }, (_, i) => makeCommit(fast, { frame: first + i }));
  assert.equal(new Set(files.map((f) => f.name)).size, 8);
  files.forEach((f, i) => assert.equal(parseArchiveName(f.name)!.ms, (first + i) * 250));
  assert.equal(new Set(files.map((f) => Math.floor(f.ms / 1000))).size, 2, "two seconds, eight names");
  for (const f of [...files].reverse()) await write(dir.path, f);
  const listed = await listArchive(dir.path);
  assert.deepEqual(listed.map((e) => e.name), files.map((f) => f.name).reverse(), "newest frame first");
  await pruneArchive(dir.path, 5);
  assert.deepEqual(
    (await listArchive(dir.path)).map((e) => e.name),
    files.slice(3).map((f) => f.name).reverse(),
    "pruning keeps the newest frames, not the lowest hashes",
  );
  // And recovery loads the newest of them, whose certificate verifies.
  const recovered = recover(directoryReader(dir.path), fast.network);
  assert.equal(recovered.loaded, files[7]!.name);
  assert.equal(recovered.frame, first + 7);
});

Deno.test("pruneArchive() keeps only the newest `keep` entries and leaves other files alone", async () => {
  await using dir = await makeTempDir();
  await Deno.writeTextFile(`${dir.path}/README.md`, "not an entry");
  await Deno.writeTextFile(`${dir.path}/${VOTES_FILE}`, "what this server signed");
  // Written out of order: pruning goes by the frame's ms, not by when the file was written.
  for (const n of [3, 1, 5, 2, 4]) await write(dir.path, commitOf(n), 3);
  const entries = await listArchive(dir.path);
  assert.deepEqual(entries.map((e) => e.ms), [5, 4, 3].map((n) => (F0 + n) * 1000));
  assert.deepEqual(entries.map((e) => e.hash), [5, 4, 3].map((n) => commitOf(n).hash));
  const names = await namesIn(dir.path);
  assert.ok(names.includes("README.md") && names.includes(VOTES_FILE), "other files are left alone");
});

Deno.test("pruneArchive() keeps 64 entries unless told otherwise", async () => {
  await using dir = await makeTempDir();
  assert.equal(DEFAULT_ARCHIVE_KEEP, 64);
  for (let n = 0; n < 66; n++) await write(dir.path, commitOf(n));
  await pruneArchive(dir.path);
  const entries = await listArchive(dir.path);
  assert.equal(entries.length, 64);
  assert.equal(entries.at(-1)!.ms, (F0 + 2) * 1000);
});

Deno.test("an entry written into a missing directory, or pruning one, is a CoinError", async () => {
  await using dir = await makeTempDir();
  const file = commitOf(1);
  await assertRejectsError(
    () => writeFileAtomic(`${dir.path}/missing/${file.name}`, file.bytes, { overwrite: true }),
    CoinError,
    /does not exist/,
  );
  await assertRejectsError(() => pruneArchive(`${dir.path}/missing`, 3), CoinError, /it does not exist/);
});

Deno.test("listArchive() lists entries newest first with their size, skipping other files", async () => {
  await using dir = await makeTempDir();
  const files = [2, 9, 4].map((n) => commitOf(n));
  for (const f of files) await write(dir.path, f);
  await Deno.writeTextFile(`${dir.path}/${HASH}.${MS0 + 100_000}${CORRUPT_SUFFIX}`, "set aside");
  await Deno.writeTextFile(`${dir.path}/${HASH}.${MS0 + 100_000}.tmp-0123abcd`, "half written");
  await Deno.writeTextFile(`${dir.path}/${VOTES_FILE}`, "votes");
  await Deno.mkdir(`${dir.path}/${HASH}.${MS0 + 200_000}`); // a directory with an entry's name is not an entry
  const entries = await listArchive(dir.path);
  const row = (f: CommitFile) => ({ name: f.name, hash: f.hash, ms: f.ms, sizeBytes: f.bytes.length });
  assert.deepEqual(entries, [row(files[1]!), row(files[2]!), row(files[0]!)]);
});

Deno.test("listArchive() orders entries of the same ms by name", async () => {
  await using dir = await makeTempDir();
  // Three certified states of one frame (a forged archive could hold them): same ms, different hashes.
  for (const n of [1, 2, 3]) await write(dir.path, commitOf(n, 0));
  const names = (await listArchive(dir.path)).map((e) => e.name);
  assert.equal(names.length, 3);
  assert.deepEqual(names, names.slice().sort());
});

Deno.test("listArchive() skips entries pruned while it lists them", async () => {
  // `coin archive ls` on a running server: the server prunes an entry between readDir and stat.
  await using dir = await makeTempDir();
  let stop = false;
  const writer = (async () => {
    for (let n = 0; !stop; n++) await write(dir.path, commitOf(n % 900, n), 2);
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

Deno.test("readEntryBytes() returns the commit an entry holds", async () => {
  await using dir = await makeTempDir();
  const recent: RecentIds = [{ frame: F0 + 6, ids: new Set(["0a".repeat(32), "0b".repeat(32)]) }];
  const file = commitOf(7, 7, recent);
  await write(dir.path, file);
  const [entry] = await listArchive(dir.path);
  const read = readEntryBytes(entry!, await Deno.readFile(`${dir.path}/${entry!.name}`));
  if ("problem" in read) assert.fail(read.problem);
  assert.equal(read.networkId, NET.network.id);
  assert.equal(read.commit.frame, F0 + 7);
  assert.equal(read.commit.state.ledger.hash, ledgerOf(7).hash);
  assert.deepEqual(read.commit.state.recent.map((r) => [r.frame, [...r.ids]]), [[F0 + 6, [
    ...recent[0]!.ids,
  ]]]);
  assert.deepEqual(read.commit.cert, file.commit.cert);
  assert.equal(read.commit.cert.signatures.length, NET.network.quorum);
});

Deno.test("readEntryBytes() detects a single flipped byte anywhere in the file", () => {
  const file = commitOf(7);
  for (let i = 0; i < file.bytes.length; i++) {
    const bytes = file.bytes.slice();
    bytes[i]! ^= 1 << (i % 8);
    const read = readEntryBytes(file, bytes);
    assert.ok("problem" in read, `byte ${i}`);
    assert.match(read.problem, /^content hashes to [0-9a-f]{16}…, not to its name$/);
  }
});

Deno.test("readEntryBytes() refuses a file that hashes to its name but is no commit", () => {
  const garbage = new TextEncoder().encode("this text hashes to its name but is not a commit");
  assert.deepEqual(readEntryBytes({ hash: sha256Hex(garbage) }, garbage), { problem: "Not a commit" });
  const cut = commitOf(1).bytes.slice(0, 200);
  assert.deepEqual(readEntryBytes({ hash: sha256Hex(cut) }, cut), { problem: "Commit is cut off" });
  const file = commitOf(1);
  assert.ok(!("problem" in readEntryBytes(file, file.bytes)));
});

Deno.test("removeStaleTemporaries() removes only the files a killed writer leaves", async () => {
  await using dir = await makeTempDir();
  const entry = await write(dir.path, commitOf(1));
  const stale = [`${entry}.tmp-0123abcd`, `${HASH}.${MS0}.tmp-ffffffff`, `${VOTES_FILE}.tmp-00000000`];
  const kept = [
    "README.md",
    `${HASH}.${MS0}.tmp-0123abc`,
    `${HASH}.${MS0}.tmp-ZZZZZZZZ`,
    `${entry}${CORRUPT_SUFFIX}`,
  ];
  for (const name of [...stale, ...kept]) await Deno.writeTextFile(`${dir.path}/${name}`, "x");
  assert.equal(await removeStaleTemporaries(dir.path), 3);
  assert.deepEqual(await namesIn(dir.path), [entry, ...kept].sort());
  assert.equal(await removeStaleTemporaries(dir.path), 0);
});

Deno.test("a damaged newest entry is set aside as .corrupt, as a server does, and the next one loads", async () => {
  await using dir = await makeTempDir();
  const names = [];
  for (const n of [1, 2, 3]) names.push(await write(dir.path, commitOf(n)));
  const [, second, newest] = names as [string, string, string];
  const bytes = await Deno.readFile(`${dir.path}/${newest}`);
  bytes[bytes.length - 5]! ^= 0x01; // the last byte of the last balance (4 bytes of empty recent ids follow)
  await Deno.writeFile(`${dir.path}/${newest}`, bytes);

  // What lib/server.ts does at start: recover, then rename every file set aside with CORRUPT_SUFFIX.
  const recovered = recover(directoryReader(dir.path), NET.network);
  assert.equal(recovered.loaded, second);
  assert.equal(recovered.state.ledger.hash, ledgerOf(2).hash);
  assert.equal(recovered.frame, F0 + 2);
  assert.equal(recovered.setAside.length, 1);
  assert.equal(recovered.setAside[0]!.name, newest);
  assert.match(
    recovered.setAside[0]!.problem,
    /its content does not hash to its name/,
  );
  for (const { name } of recovered.setAside) {
    await Deno.rename(`${dir.path}/${name}`, `${dir.path}/${name}${CORRUPT_SUFFIX}`);
  }
  const files = await namesIn(dir.path);
  assert.ok(files.includes(`${newest}${CORRUPT_SUFFIX}`), "set aside, not deleted");
  assert.ok(!files.includes(newest));
  assert.deepEqual(await Deno.readFile(`${dir.path}/${newest}${CORRUPT_SUFFIX}`), bytes);
  assert.ok(!(await listArchive(dir.path)).some((e) => e.name.startsWith(newest)), "no longer an entry");
  const again = recover(directoryReader(dir.path), NET.network);
  assert.equal(again.loaded, second, "the next start goes straight to it");
  assert.deepEqual(again.setAside, []);
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
  const { network } = writerNetwork();
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

    // After every kill: each file under an entry's name holds exactly the bytes its name promises, and a
    // commit whose certificate verifies.
    const entries = await listArchive(dir.path);
    for (const entry of entries) {
      const bytes = await Deno.readFile(`${dir.path}/${entry.name}`);
      const context = `${entry.name} after round ${round} (seed ${seed})`;
      const read = readEntryBytes(entry, bytes);
      if ("problem" in read) assert.fail(`${context}: ${read.problem}`);
      const checked = checkEntry(network, entry, bytes);
      if (typeof checked === "string") assert.fail(`${context}: ${checked}`);
      assert.ok("commit" in checked, `${context}: another network`);
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
  const recovered = recover(directoryReader(dir.path), network);
  assert.deepEqual(recovered.setAside, []);
  assert.equal(recovered.loaded, (await listArchive(dir.path))[0]!.name);
});
