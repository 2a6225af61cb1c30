// The archive: recent agreed databases, one file each, named `<hash>.<unix seconds>` (the seed's
// hash.timestamp). Written atomically; a file is trusted only when its bytes hash to its name.

import { CoinError } from "./errors.ts";
import { writeFileAtomic } from "./_files.ts";
import { sha256Hex } from "./hash.ts";
import { Ledger } from "./ledger.ts";

/** Entries a server keeps unless told otherwise. */
export const DEFAULT_ARCHIVE_KEEP = 64;
/** Suffix given to an entry that failed verification; it is set aside, never deleted. */
export const CORRUPT_SUFFIX = ".corrupt";

const NAME = /^([0-9a-f]{64})\.([0-9]{1,12})$/;

/** One archive file. */
export interface ArchiveEntry {
  readonly name: string;
  readonly hash: string;
  /** Unix seconds of the start of the frame it was agreed in. */
  readonly seconds: number;
  readonly sizeBytes: number;
}

/** The file name of a database with `hash` agreed in the frame starting at `seconds`. */
export function archiveName(hash: string, seconds: number): string {
  return `${hash}.${seconds}`;
}

/** Parses an archive file name; undefined for any other file. */
export function parseArchiveName(name: string): { hash: string; seconds: number } | undefined {
  const m = NAME.exec(name);
  return m === null ? undefined : { hash: m[1]!, seconds: Number(m[2]) };
}

/** Entries of `dir`, newest first. A missing directory is a CoinError. */
export async function listArchive(dir: string): Promise<ArchiveEntry[]> {
  const entries: ArchiveEntry[] = [];
  try {
    for await (const item of Deno.readDir(dir)) {
      if (!item.isFile) continue;
      const parsed = parseArchiveName(item.name);
      if (parsed === undefined) continue;
      let info: Deno.FileInfo;
      try {
        info = await Deno.stat(`${dir}/${item.name}`);
      } catch (err) {
        // Pruned or set aside by a running server since readDir saw it: no longer an entry.
        if (err instanceof Deno.errors.NotFound) continue;
        throw err;
      }
      entries.push({ name: item.name, ...parsed, sizeBytes: info.size });
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new CoinError(`Cannot read archive directory "${dir}": it does not exist`);
    }
    if (err instanceof Deno.errors.NotADirectory) {
      throw new CoinError(`Cannot read archive directory "${dir}": it is not a directory`);
    }
    throw err;
  }
  entries.sort((a, b) => b.seconds - a.seconds || (a.name < b.name ? -1 : 1));
  return entries;
}

/** Why an entry cannot be trusted, or undefined when its bytes hash to its name and parse. */
export function checkEntryBytes(entry: { hash: string }, bytes: Uint8Array): string | undefined {
  const actual = sha256Hex(bytes);
  if (actual !== entry.hash) return `content hashes to ${actual.slice(0, 16)}…, not to its name`;
  try {
    Ledger.fromPacked(bytes);
  } catch (err) {
    if (err instanceof SyntaxError) return err.message;
    throw err;
  }
  return undefined;
}

/** Reads an entry and checks that its content hashes to its name; throws CoinError otherwise. */
export async function readArchiveEntry(dir: string, entry: ArchiveEntry): Promise<Ledger> {
  const bytes = await Deno.readFile(`${dir}/${entry.name}`);
  const problem = checkEntryBytes(entry, bytes);
  if (problem !== undefined) throw new CoinError(`Archive entry "${entry.name}" is corrupt: ${problem}`);
  const ledger = Ledger.fromPacked(bytes);
  if (ledger.hash !== entry.hash) {
    throw new Error("Invariant broken: verified entry hash differs from its name");
  }
  return ledger;
}

/**
 * Writes `ledger` as the entry for the frame starting at `seconds`, atomically, then keeps only the
 * newest `keep` entries. Returns the entry's name.
 */
export async function writeArchiveEntry(
  dir: string,
  ledger: Ledger,
  seconds: number,
  options: { keep?: number } = {},
): Promise<string> {
  const name = archiveName(ledger.hash, seconds);
  await writeFileAtomic(`${dir}/${name}`, ledger.bytes, { overwrite: true });
  await pruneArchive(dir, options.keep);
  return name;
}

/**
 * The newest entry that verifies, with its ledger. Entries that fail are renamed with `.corrupt`
 * (set aside for the operator, never deleted) and reported through `onCorrupt`.
 */
export async function loadNewestEntry(
  dir: string,
  onCorrupt: (name: string, problem: string) => void = () => {},
): Promise<{ entry: ArchiveEntry; ledger: Ledger } | undefined> {
  for (const entry of await listArchive(dir)) {
    const bytes = await Deno.readFile(`${dir}/${entry.name}`);
    const problem = checkEntryBytes(entry, bytes);
    if (problem === undefined) return { entry, ledger: Ledger.fromPacked(bytes) };
    await Deno.rename(`${dir}/${entry.name}`, `${dir}/${entry.name}${CORRUPT_SUFFIX}`);
    onCorrupt(entry.name, problem);
  }
  return undefined;
}

/** Removes temporary files left by a writer that was killed mid-write. */
export async function removeStaleTemporaries(dir: string): Promise<number> {
  let removed = 0;
  for await (const item of Deno.readDir(dir)) {
    if (item.isFile && /\.tmp-[0-9a-f]{8}$/.test(item.name)) {
      await Deno.remove(`${dir}/${item.name}`).catch(() => {});
      removed++;
    }
  }
  return removed;
}

/** Keeps only the newest `keep` entries of `dir`. */
export async function pruneArchive(dir: string, keep: number = DEFAULT_ARCHIVE_KEEP): Promise<void> {
  const entries = await listArchive(dir);
  for (const old of entries.slice(keep)) await Deno.remove(`${dir}/${old.name}`).catch(() => {});
}
