// Recovery: what a replica starts from, read from its data directory through a synchronous reader (the
// real directory in a server, the simulated disk in the simulator): the newest archive entry that
// verifies, and the recent transfer ids saved with it.

import { checkEntryBytes, parseArchiveName } from "./archive.ts";
import { decodeRecentIds, RECENT_IDS_FILE } from "./catchup.ts";
import { CoinError } from "./errors.ts";
import { genesisState, Ledger, type State } from "./ledger.ts";
import type { Network } from "./peers.ts";

/** The files of a data directory's archive, read synchronously. */
export interface DiskReader {
  /** File names in the archive directory. */
  names(): string[];
  /** A file's bytes, or undefined when it is gone. */
  read(name: string): Uint8Array | undefined;
}

/** What a replica starts from. */
export interface Recovered {
  readonly state: State;
  /** The frame the state was agreed in, when the saved recent ids say so; -1 when unknown. */
  readonly frame: number;
  /** Name of the archive entry loaded, or undefined for the genesis. */
  readonly loaded: string | undefined;
  /** The hash of the loaded entry (the last one archived). */
  readonly archivedHash: string | undefined;
  /** True when the recent ids were saved with the loaded database (so they tell the whole story). */
  readonly recentComplete: boolean;
  /** Files that failed verification, to be renamed with `.corrupt`, each with its problem. */
  readonly setAside: readonly { name: string; problem: string }[];
}

/** Reads the newest verified archive entry and the saved recent ids; throws CoinError for another network's. */
export function recover(disk: DiskReader, network: Network): Recovered {
  const setAside: { name: string; problem: string }[] = [];
  const entries = disk.names().flatMap((name) => {
    const parsed = parseArchiveName(name);
    return parsed === undefined ? [] : [{ name, ...parsed }];
  }).sort((a, b) => b.seconds - a.seconds || (a.name < b.name ? -1 : 1));
  // The saved recent ids name the database they were written with, and so its frame: when that entry is
  // here, it is the newest (several frames can share a second at sub-second intervals, so the name's
  // seconds cannot tell which came last).
  const savedBytes = disk.read(RECENT_IDS_FILE);
  const saved = savedBytes === undefined ? undefined : decodeRecentIds(savedBytes);
  if (saved !== undefined && !("problem" in saved)) {
    const i = entries.findIndex((e) => e.hash === saved.hash);
    if (i > 0) entries.unshift(...entries.splice(i, 1));
  }
  let loaded: { name: string; hash: string; ledger: Ledger } | undefined;
  for (const entry of entries) {
    const bytes = disk.read(entry.name);
    if (bytes === undefined) continue;
    const problem = checkEntryBytes(entry, bytes);
    if (problem === undefined) {
      loaded = { name: entry.name, hash: entry.hash, ledger: Ledger.fromPacked(bytes) };
      break;
    }
    setAside.push({ name: entry.name, problem });
  }
  let state = genesisState(network.genesis);
  if (loaded !== undefined) {
    if (loaded.ledger.supply !== network.supply) {
      throw new CoinError(
        `Archive entry "${loaded.name}" holds a total supply of ${loaded.ledger.supply}, ` +
          `not the genesis ${network.supply}: it belongs to another network`,
      );
    }
    state = { ledger: loaded.ledger, recent: [] };
  }
  // Ids written with an older database are still true (they were agreed); they tell the whole story of
  // the recent frames only when written with the database loaded.
  let recentComplete = false;
  let frame = -1;
  if (saved !== undefined) {
    const decoded = saved;
    if ("problem" in decoded) setAside.push({ name: RECENT_IDS_FILE, problem: decoded.problem });
    else {
      state = { ledger: state.ledger, recent: decoded.recent };
      recentComplete = decoded.hash === loaded?.hash && decoded.recent.length > 0;
      if (decoded.hash === state.ledger.hash) frame = decoded.frame;
    }
  }
  return { state, frame, loaded: loaded?.name, archivedHash: loaded?.hash, recentComplete, setAside };
}
