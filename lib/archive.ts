// The archive: recent certified frames, one file each (the complete state and its certificate: the bytes
// of a commit, lib/certificate.ts), named `<SHA-256 of the content>.<frame start in unix ms>` (the seed's
// hash.timestamp, unique at any interval). Written atomically; a file is trusted only when its bytes hash
// to its name, and its certificate only when checked against peers.json (lib/recovery.ts, checkEntry).

import { CoinError } from "./errors.ts";
import { sha256Hex } from "./hash.ts";
import { type Commit, decodeCommit } from "./certificate.ts";

/** Entries a server keeps unless told otherwise. */
export const DEFAULT_ARCHIVE_KEEP = 64;
/** Suffix given to an entry that failed verification; it is set aside, never deleted. */
export const CORRUPT_SUFFIX = ".corrupt";

const NAME = /^([0-9a-f]{64})\.([0-9]{1,16})$/;

/** One archive file. */
export interface ArchiveEntry {
  readonly name: string;
  readonly hash: string;
  /** Unix ms of the start of the frame it was certified for. */
  readonly ms: number;
  readonly sizeBytes: number;
}

/** The file name of content hashing to `hash`, certified for the frame starting at unix `ms`. */
export function archiveName(hash: string, ms: number): string {
  return `${hash}.${ms}`;
}

/** Parses an archive file name; undefined for any other file. */
export function parseArchiveName(name: string): { hash: string; ms: number } | undefined {
  const m = NAME.exec(name);
  return m === null ? undefined : { hash: m[1]!, ms: Number(m[2]) };
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
  entries.sort((a, b) => b.ms - a.ms || (a.name < b.name ? -1 : 1));
  return entries;
}

/**
 * The commit in an entry's bytes once they hash to its name and parse, or the problem. Its certificate is
 * not checked here (that needs peers.json: lib/recovery.ts, checkEntry).
 */
export function readEntryBytes(
  entry: { hash: string },
  bytes: Uint8Array,
): { networkId: string; commit: Commit } | { problem: string } {
  const actual = sha256Hex(bytes);
  if (actual !== entry.hash) return { problem: `content hashes to ${actual.slice(0, 16)}…, not to its name` };
  try {
    return decodeCommit(bytes);
  } catch (err) {
    if (err instanceof SyntaxError) return { problem: err.message };
    throw err;
  }
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
