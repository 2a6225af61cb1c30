// The votes file: what a server signed in the agreement it is taking part in, written before any of those
// votes is sent. After a crash the server reads it back and never signs a different vote for the same
// frame, round and step. A missing or damaged file makes the server amnesic (docs/protocol.md, section 6).

import { concatBytes, equalBytes, viewOf } from "./_bytes.ts";
import type { AgreementMemory, VoteStep } from "./agreement.ts";
import { VOTE_HEAD_BYTES } from "./certificate.ts";
import { HASH_BYTES, sha256 } from "./hash.ts";
import { MAX_SERVERS } from "./peers.ts";
import { decodeTx, type Tx, TX_BYTES } from "./tx.ts";
import { PEER_HEAD_BYTES } from "./wire.ts";

/** The file's name in the data directory. */
export const VOTES_FILE = "votes";
/** Its first bytes. */
export const VOTES_MAGIC = "coin-votes-v1\n";
/** Most transfers the locked proposal kept in it may hold. */
export const MAX_LOCKED_TXS = 1_000_000;
/** Bytes of one signed prevote as it came in a peer message (head, vote head, digest). */
export const POLKA_VOTE_BYTES = PEER_HEAD_BYTES + VOTE_HEAD_BYTES + HASH_BYTES;

/** What the votes file holds. */
export interface VotesRecord {
  /** The agreement: the first frame it may decide and the digest of the state before it. */
  readonly height: number;
  readonly prevDigest: string;
  readonly memory: AgreementMemory;
  /** The proposal this server locked on (or holds as valid), so it can propose it again. */
  readonly locked:
    | { readonly frame: number; readonly digest: string; readonly txs: readonly Tx[] }
    | undefined;
  /**
   * The signed prevotes (peer message bodies, POLKA_VOTE_BYTES each) of a quorum for the valid value in
   * its round: the proof that lets the others accept it when this server proposes it again. Without it a
   * lock outlives the votes that justify it (every server that saw them restarted) and the agreement
   * stalls for good.
   */
  readonly polka: readonly Uint8Array[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * magic | SHA-256 of the rest 32 | JSON length u32 | JSON | locked transfers (144 bytes each) | polka
 * prevotes (POLKA_VOTE_BYTES each).
 */
export function encodeVotes(record: VotesRecord): Uint8Array {
  const json = encoder.encode(JSON.stringify({
    height: record.height,
    prevDigest: record.prevDigest,
    memory: record.memory,
    locked: record.locked === undefined
      ? null
      : { frame: record.locked.frame, digest: record.locked.digest, txs: record.locked.txs.length },
    polka: record.polka.length,
  }));
  for (const vote of record.polka) {
    if (vote.length !== POLKA_VOTE_BYTES) {
      throw new Error(`Invariant broken: a polka vote of ${vote.length} bytes`);
    }
  }
  const length = new Uint8Array(4);
  viewOf(length).setUint32(0, json.length);
  const rest = concatBytes([
    length,
    json,
    ...(record.locked?.txs ?? []).map((tx) => tx.bytes),
    ...record.polka,
  ]);
  return concatBytes([encoder.encode(VOTES_MAGIC), sha256(rest), rest]);
}

/** The record in a votes file, or the problem that makes it unusable. */
export function decodeVotes(bytes: Uint8Array): VotesRecord | { problem: string } {
  const magic = encoder.encode(VOTES_MAGIC);
  if (bytes.length < magic.length + HASH_BYTES + 4 || !equalBytes(bytes.subarray(0, magic.length), magic)) {
    return { problem: "it is not a votes file" };
  }
  const rest = bytes.subarray(magic.length + HASH_BYTES);
  if (!equalBytes(sha256(rest), bytes.subarray(magic.length, magic.length + HASH_BYTES))) {
    return { problem: "its checksum does not match its content" };
  }
  const jsonBytes = viewOf(rest).getUint32(0);
  if (4 + jsonBytes > rest.length) return { problem: "it is cut off" };
  try {
    const o = JSON.parse(decoder.decode(rest.subarray(4, 4 + jsonBytes)));
    const count = o.locked === null ? 0 : o.locked.txs;
    // Files written before the polka was kept have none.
    const votes = o.polka ?? 0;
    if (!Number.isInteger(votes) || votes < 0 || votes > MAX_SERVERS) {
      return { problem: "its polka count is not a number of servers" };
    }
    const txEnd = rest.length - votes * POLKA_VOTE_BYTES;
    const txBytes = rest.subarray(4 + jsonBytes, Math.max(4 + jsonBytes, txEnd));
    if (
      !Number.isInteger(count) || count < 0 || count > MAX_LOCKED_TXS || txEnd < 4 + jsonBytes ||
      txBytes.length !== count * TX_BYTES
    ) {
      return { problem: "its locked proposal does not match its length" };
    }
    const polka: Uint8Array[] = [];
    for (let off = txEnd; off < rest.length; off += POLKA_VOTE_BYTES) {
      polka.push(rest.slice(off, off + POLKA_VOTE_BYTES));
    }
    const txs: Tx[] = [];
    for (let i = 0; i < count; i++) {
      const tx = decodeTx(txBytes.slice(i * TX_BYTES, (i + 1) * TX_BYTES));
      if (tx === undefined) return { problem: `its locked transfer ${i} does not decode` };
      txs.push(tx);
    }
    const m = o.memory;
    const round = (x: unknown) => Number.isInteger(x) && (x as number) >= -1 && (x as number) <= 0x7fff_ffff;
    const digest = (x: unknown) =>
      x === undefined || x === null || (typeof x === "string" && /^[0-9a-f]{64}$/.test(x));
    if (
      !Number.isSafeInteger(o.height) || typeof o.prevDigest !== "string" || typeof m !== "object" ||
      m === null ||
      !round(m.round) || !round(m.lockedRound) || !round(m.validRound) || !digest(m.lockedDigest) ||
      !digest(m.validDigest) || !Array.isArray(m.signed) ||
      (m.proposed !== undefined && (!Array.isArray(m.proposed) || !m.proposed.every(round))) ||
      (m.lockedByCertificate !== undefined && typeof m.lockedByCertificate !== "boolean") ||
      !m.signed.every((v: { round: unknown; step: unknown; digest: unknown }) =>
        round(v.round) && (v.step === "prevote" || v.step === "precommit") && typeof v.digest === "string" &&
        digest(v.digest)
      ) || (o.locked !== null && (!Number.isSafeInteger(o.locked.frame) || !digest(o.locked.digest)))
    ) {
      return { problem: "its fields are not what a votes file holds" };
    }
    const signed = (m.signed as { round: number; step: VoteStep; digest: string }[]).map((s) => ({
      round: s.round,
      step: s.step,
      digest: s.digest,
    }));
    return {
      height: o.height,
      prevDigest: o.prevDigest,
      memory: {
        round: m.round,
        lockedRound: m.lockedRound,
        lockedDigest: m.lockedDigest ?? undefined,
        // Files written before it was kept: a prevote quorum's lock, the weaker of the two.
        lockedByCertificate: m.lockedByCertificate ?? false,
        validRound: m.validRound,
        validDigest: m.validDigest ?? undefined,
        signed,
        // Files written before proposals were recorded: the round it was in is one it may have proposed in.
        proposed: m.proposed ?? (signed.length > 0 ? [m.round] : []),
      },
      locked: o.locked === null ? undefined : { frame: o.locked.frame, digest: o.locked.digest, txs },
      polka,
    };
  } catch (err) {
    return { problem: `it does not parse: ${(err as Error).message}` };
  }
}
