// Catch-up: checking an agreed database sent by another server (code 1), choosing which server sends
// catch-ups for a frame, and the recent-ids file that keeps replay protection across restarts.

import { concatBytes, equalBytes, fromHex, toHex } from "./_bytes.ts";
import { sha256, sha256Hex } from "./hash.ts";
import { alphaIndex } from "./frames.ts";
import { Ledger, type RecentIds } from "./ledger.ts";
import type { Peer } from "./peers.ts";
import { type Catchup, decodePayload, encodeCatchup } from "./wire.ts";

/** Why a catch-up cannot be adopted for `consensus`, or the ledger it carries. */
export function checkCatchup(
  catchup: Catchup,
  consensus: string,
  supply: number,
): { ledger: Ledger } | { problem: string } {
  const hash = sha256Hex(catchup.db);
  if (hash !== consensus) return { problem: "catch-up database does not match the consensus hash" };
  let ledger: Ledger;
  try {
    // The message buffer is this catch-up's own allocation: no copy of a large database.
    ledger = Ledger.fromPacked(catchup.db);
  } catch (err) {
    return { problem: `catch-up database does not parse: ${(err as Error).message}` };
  }
  if (ledger.supply !== supply) return { problem: `catch-up database has supply ${ledger.supply}` };
  return { ledger };
}

/**
 * Whether `me` sends `frame`'s catch-ups: the first server in rotation order from the frame's beta that
 * voted with the consensus `hash`.
 */
export function isCatchupSender(
  servers: readonly Peer[],
  me: number,
  frame: number,
  votes: ReadonlyMap<string, string>,
  hash: string,
): boolean {
  const n = servers.length;
  for (let i = 0; i < n; i++) {
    const peer = servers[(alphaIndex(frame, n) + i) % n]!;
    if (votes.get(peer.keyHex) === hash) return peer.index === me;
  }
  return false;
}

/**
 * File in the archive directory holding the recent transfer ids of the last agreed database, so a
 * server restarted within a transfer's time window still refuses its replay (docs/protocol.md, 6).
 */
export const RECENT_IDS_FILE = "recent-ids";

/**
 * The recent-ids file of the agreed database `hash`: SHA-256 of the rest 32 | hash 32 | a code-1 payload
 * without database.
 */
export function encodeRecentIds(hash: string, frame: number, recent: RecentIds): Uint8Array {
  const bytes = concatBytes([
    new Uint8Array(32),
    fromHex(hash, 32)!,
    ...encodeCatchup(frame, new Uint8Array(0), recent),
  ]);
  bytes.set(sha256(bytes.subarray(32)));
  return bytes;
}

/** The recent ids in a recent-ids file, or the problem that makes it untrustworthy. */
export function decodeRecentIds(
  bytes: Uint8Array,
): { hash: string; frame: number; recent: RecentIds } | { problem: string } {
  if (bytes.length < 64) return { problem: "it is shorter than its checksum and hash" };
  if (!equalBytes(sha256(bytes.subarray(32)), bytes.subarray(0, 32))) {
    return { problem: "its checksum does not match its content" };
  }
  try {
    const payload = decodePayload(bytes.subarray(64));
    if (payload.code === 1 && payload.db.length === 0) {
      return { hash: toHex(bytes.subarray(32, 64)), frame: payload.frame, recent: payload.recent };
    }
    return { problem: "it does not hold recent ids" };
  } catch (err) {
    return { problem: (err as Error).message };
  }
}
