// Recovery: what a replica starts from, read from its data directory through a synchronous reader (the
// real directory in a server, the simulated disk in the simulator): the newest archive entry whose
// certificate and digest verify, and the votes file that says what this server signed.

import { parseArchiveName } from "./archive.ts";
import { checkCommit, type Commit, decodeCommit, genesisDigest } from "./certificate.ts";
import { CoinError } from "./errors.ts";
import { frameStartMs } from "./frames.ts";
import { sha256Hex as sha256HexSync } from "./hash.ts";
import { genesisState, type State } from "./ledger.ts";
import type { Network } from "./peers.ts";
import type { Verifier } from "./keys.ts";
import { decodeTx, type Tx, TX_BYTES } from "./tx.ts";
import { decodeVotes, VOTES_FILE, type VotesRecord } from "./votes_file.ts";

/** The files of a data directory's archive, read synchronously. */
export interface DiskReader {
  /** File names in the archive directory. */
  names(): string[];
  /** A file's bytes, or undefined when it is gone. */
  read(name: string): Uint8Array | undefined;
}

/** A real directory as recovery reads it (the simulator passes its simulated disk instead). */
export function directoryReader(dir: string): DiskReader {
  return {
    names: () => [...Deno.readDirSync(dir)].filter((e) => e.isFile).map((e) => e.name),
    read: (name) => {
      try {
        return Deno.readFileSync(`${dir}/${name}`);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return undefined;
        throw err;
      }
    },
  };
}

/** What a replica starts from. */
export interface Recovered {
  readonly state: State;
  /** The frame the state was certified in (the network's start frame - 1 for the genesis). */
  readonly frame: number;
  /** Its digest. */
  readonly digest: string;
  /** The certified commit loaded; undefined for the genesis. */
  readonly commit: Commit | undefined;
  /**
   * The commit the loaded one chains to, when the archive holds it and it verifies: with b = 0 a server
   * behind adopts a state only with a certificate that chains to it, so both are sent to it.
   */
  readonly previous?: Commit | undefined;
  /** Name of the archive entry loaded, or undefined for the genesis. */
  readonly loaded: string | undefined;
  /** What this server signed before, or "lost" when the votes file is missing or damaged. */
  readonly votes: VotesRecord | undefined | "lost";
  /** True when the directory held no archive entry and no votes file. */
  readonly fresh: boolean;
  /** The transfers this server accepted as alpha of frames after the loaded one (alpha logs). */
  readonly alpha: ReadonlyMap<number, readonly Tx[]>;
  /** Alpha logs of frames already committed, to remove. */
  readonly staleAlpha: readonly string[];
  /** Files that failed verification, to be renamed with `.corrupt`, each with its problem. */
  readonly setAside: readonly { name: string; problem: string }[];
}

/** The genesis as a recovered start: the certified state before the network's first frame. */
export function genesisRecovered(
  network: Network,
): Omit<Recovered, "votes" | "fresh" | "setAside" | "alpha" | "staleAlpha"> {
  const state = genesisState(network.genesis);
  return {
    state,
    frame: network.startFrame - 1,
    digest: genesisDigest(network.id, state),
    commit: undefined,
    loaded: undefined,
  };
}

/**
 * Reads the newest archive entry that verifies (content hash, network, digest and certificate) and the
 * votes file; throws CoinError when entries of another network are there and none of this one.
 */
export function recover(disk: DiskReader, network: Network, verifier?: Verifier): Recovered {
  const setAside: { name: string; problem: string }[] = [];
  const names = disk.names();
  const entries = names.flatMap((name) => {
    const parsed = parseArchiveName(name);
    return parsed === undefined ? [] : [{ name, ...parsed }];
  }).sort((a, b) => b.ms - a.ms || (a.name < b.name ? -1 : 1));
  let loaded: { name: string; commit: Commit } | undefined;
  let foreign: string | undefined;
  for (const entry of entries) {
    const bytes = disk.read(entry.name);
    if (bytes === undefined) continue;
    const problem = checkEntry(network, entry, bytes, verifier);
    if (typeof problem === "string") {
      setAside.push({ name: entry.name, problem });
      continue;
    }
    if ("foreign" in problem) {
      foreign ??= entry.name;
      continue;
    }
    loaded = { name: entry.name, commit: problem.commit };
    break;
  }
  // Only b = 0 uses it (lib/replica.ts): other networks skip checking a second entry at start-up.
  let previous: Commit | undefined;
  if (loaded !== undefined && network.dishonest === 0) {
    const want = loaded.commit.cert.prevDigest;
    for (const entry of entries) {
      if (entry.ms >= frameStartMs(loaded.commit.frame, network.intervalMs)) continue;
      const bytes = disk.read(entry.name);
      const checked = bytes === undefined ? undefined : checkEntry(network, entry, bytes, verifier);
      if (checked === undefined || typeof checked === "string" || "foreign" in checked) continue;
      if (checked.commit.cert.digest === want) previous = checked.commit;
      break;
    }
  }
  if (loaded === undefined && foreign !== undefined) {
    throw new CoinError(
      `Archive entry "${foreign}" belongs to another network (its network id differs from peers.json's): ` +
        "start this server with the peers.json it ran with, or an empty data directory",
    );
  }
  let votes: VotesRecord | undefined | "lost" = "lost";
  const votesBytes = disk.read(VOTES_FILE);
  if (votesBytes !== undefined) {
    const decoded = decodeVotes(votesBytes);
    if ("problem" in decoded) setAside.push({ name: VOTES_FILE, problem: decoded.problem });
    else votes = decoded;
  }
  const fresh = entries.length === 0 && votesBytes === undefined;
  const base = loaded === undefined ? genesisRecovered(network) : {
    state: loaded.commit.state,
    frame: loaded.commit.frame,
    digest: loaded.commit.cert.digest,
    commit: loaded.commit,
    previous,
    loaded: loaded.name,
  };
  const alpha = new Map<number, Tx[]>();
  const staleAlpha: string[] = [];
  for (const name of names) {
    const frame = parseAlphaLogName(name);
    if (frame === undefined) continue;
    if (frame <= base.frame) {
      staleAlpha.push(name);
      continue;
    }
    const bytes = disk.read(name) ?? new Uint8Array(0);
    const txs: Tx[] = [];
    // A torn last record (a crash in the middle of an append) is cut.
    for (let off = 0; off + TX_BYTES <= bytes.length; off += TX_BYTES) {
      const tx = decodeTx(bytes.slice(off, off + TX_BYTES));
      if (tx !== undefined) txs.push(tx);
    }
    alpha.set(frame, txs);
  }
  return { ...base, votes, fresh, setAside, alpha, staleAlpha };
}

/** The alpha log of a frame: the transfers this server accepted into its buffer, appended as they came. */
export function alphaLogName(frame: number): string {
  return `${ALPHA_LOG_PREFIX}${frame}`;
}

/** Alpha logs are named `alpha.<frame>`. */
export const ALPHA_LOG_PREFIX = "alpha.";

function parseAlphaLogName(name: string): number | undefined {
  const m = /^alpha\.([0-9]{1,16})$/.exec(name);
  return m === null ? undefined : Number(m[1]);
}

/**
 * An archive file's commit once it verifies, `{foreign}` when it is a valid file of another network, or
 * the problem that makes it untrustworthy.
 */
export function checkEntry(
  network: Network,
  entry: { hash: string; ms?: number },
  bytes: Uint8Array,
  verifier?: Verifier,
): { commit: Commit } | { foreign: true } | string {
  // The content hash first: a flipped bit in the network id must read as damage, not as another network.
  if (sha256HexSync(bytes) !== entry.hash) return "its content does not hash to its name";
  let decoded;
  try {
    decoded = decodeCommit(bytes);
  } catch (err) {
    if (err instanceof SyntaxError) return err.message;
    throw err;
  }
  if (decoded.networkId !== network.id) return { foreign: true };
  const problem = checkCommit(network, decoded.networkId, decoded.commit, verifier);
  if (problem !== undefined) return problem;
  // The name's time is not covered by the hash: it must be the frame's, or an old entry renamed could
  // pass for the newest.
  if ("ms" in entry && entry.ms !== frameStartMs(decoded.commit.frame, network.intervalMs)) {
    return `its name's time is not the start of its frame ${decoded.commit.frame}`;
  }
  return { commit: decoded.commit };
}
