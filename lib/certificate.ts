// Digests and certificates: what a frame's votes are about, and the proof that a quorum agreed on it.
//
// digest = SHA-256("coin-frame-v2" | network id | frame u64 | previous digest | ledger root | recent hash |
// transfers hash). It covers everything replicated (balances and replay protection), the frame and the
// chain before it, so two servers that agree on a digest agree on the whole history. A certificate is the
// signatures of a quorum of precommits for one digest in one round; a commit (catch-up message and archive
// file alike) is a frame's complete state with its certificate, checked from its bytes alone.
// docs/protocol.md, 9, gives every byte.

import { concatBytes, fromHex, readU64, toHex, viewOf, writeU64 } from "./_bytes.ts";
import { HASH_BYTES, sha256, sha256Hex, sha256HexOf, sha256Of } from "./hash.ts";
import { SIGNATURE_BYTES, type Verifier, verifySignature } from "./keys.ts";
import { Ledger, MAX_DB_BYTES, type RecentIds, type State } from "./ledger.ts";
import { ledgerRoot } from "./merkle.ts";
import type { Network } from "./peers.ts";
import type { Tx } from "./tx.ts";
import { MAX_RECENT_FRAMES, MAX_RECENT_IDS } from "./wire.ts";

/** Domain of frame digests. */
export const DIGEST_CONTEXT = "coin-frame-v2";
/** The frame number standing for "before the first frame" in the genesis digest and in `prevFrame`. */
export const GENESIS_FRAME = -1;

/** Payload codes of the signed server-to-server messages. */
export const Code = {
  proposal: 2,
  prevote: 3,
  precommit: 4,
  commit: 5,
  want: 6,
  pending: 7,
  start: 8,
} as const;

const encoder = new TextEncoder();
const ZERO_DIGEST = new Uint8Array(HASH_BYTES);

/** SHA-256 of the recent ids in their wire encoding (docs/protocol.md, 9.3). */
export function recentHash(recent: RecentIds): Uint8Array {
  return sha256Of(recentChunks(recent));
}

/**
 * Each recent-ids entry's encoding (frame | count | ids), kept while the entry lives. An entry is shared by
 * every later state that still holds its frame, so each frame's ids are encoded once, not once per frame
 * digest (tens of thousands of ids under load).
 */
const encodedEntries = new WeakMap<RecentIds[number], Uint8Array>();

function recentChunks(recent: RecentIds): Uint8Array[] {
  const head = new Uint8Array(4);
  viewOf(head).setUint32(0, recent.length);
  const chunks: Uint8Array[] = [head];
  for (const r of recent) {
    let bytes = encodedEntries.get(r);
    if (bytes === undefined) {
      bytes = new Uint8Array(12 + r.ids.size * HASH_BYTES);
      const view = viewOf(bytes);
      writeU64(view, 0, r.frame);
      view.setUint32(8, r.ids.size);
      let off = 12;
      for (const id of r.ids) {
        bytes.set(fromHex(id, HASH_BYTES)!, off);
        off += HASH_BYTES;
      }
      encodedEntries.set(r, bytes);
    } else if (bytes.length !== 12 + r.ids.size * HASH_BYTES) {
      throw new Error(`Invariant broken: the recent ids of frame ${r.frame} changed after they were encoded`);
    }
    chunks.push(bytes);
  }
  return chunks;
}

/** SHA-256 of a frame's transfers, concatenated (SHA-256 of nothing for an empty frame). */
export function txsHash(txs: readonly Tx[]): Uint8Array {
  return sha256(concatBytes(txs.map((tx) => tx.bytes)));
}

/** A frame's digest, hex. */
export function frameDigest(
  networkId: string,
  frame: number,
  prevDigest: string,
  state: State,
  txsDigest: Uint8Array,
): string {
  const head = new Uint8Array(8);
  writeU64(viewOf(head), 0, frame < 0 ? 2 ** 53 - 1 : frame);
  return sha256HexOf([
    encoder.encode(DIGEST_CONTEXT),
    fromHex(networkId, HASH_BYTES)!,
    head,
    fromHex(prevDigest, HASH_BYTES)!,
    ledgerRoot(state.ledger.bytes),
    recentHash(state.recent),
    txsDigest,
  ]);
}

/** The genesis digest: frame marker 2^53 - 1, zeros as the previous digest, no recent ids, no transfers. */
export function genesisDigest(networkId: string, genesis: State): string {
  return frameDigest(networkId, GENESIS_FRAME, toHex(ZERO_DIGEST), genesis, txsHash([]));
}

/** The common head of proposals and votes: code | network id | height | round | previous digest. */
export const VOTE_HEAD_BYTES = 1 + HASH_BYTES + 8 + 4 + HASH_BYTES;

/** Where a message belongs: the frame after `prevFrame` (the height), its round, the chain before it. */
export interface Slot {
  /** The first frame this agreement may decide: the previous committed frame + 1. */
  readonly height: number;
  readonly round: number;
  readonly prevDigest: string;
}

function voteHead(code: number, networkId: string, slot: Slot): Uint8Array {
  const out = new Uint8Array(VOTE_HEAD_BYTES);
  const view = viewOf(out);
  out[0] = code;
  out.set(fromHex(networkId, HASH_BYTES)!, 1);
  writeU64(view, 1 + HASH_BYTES, slot.height);
  view.setUint32(1 + HASH_BYTES + 8, slot.round);
  out.set(fromHex(slot.prevDigest, HASH_BYTES)!, 1 + HASH_BYTES + 12);
  return out;
}

/** A prevote or precommit payload (what is signed): head | digest. */
export function votePayload(
  step: "prevote" | "precommit",
  networkId: string,
  slot: Slot,
  digest: string,
): Uint8Array {
  return concatBytes([voteHead(Code[step], networkId, slot), fromHex(digest, HASH_BYTES)!]);
}

/** A proposal payload: head | polRound u32 (0xffffffff: none) | frame u64 | transfers. */
export function proposalPayload(
  networkId: string,
  slot: Slot,
  polRound: number,
  frame: number,
  txs: readonly Tx[],
): Uint8Array[] {
  const tail = new Uint8Array(12);
  viewOf(tail).setUint32(0, polRound < 0 ? 0xffff_ffff : polRound);
  writeU64(viewOf(tail), 4, frame);
  return [voteHead(Code.proposal, networkId, slot), tail, ...txs.map((tx) => tx.bytes)];
}

/**
 * A start payload: the head alone (round 0), "my clock says frame `height` ended: I started its agreement".
 * Sent to the round-0 proposer, so that a beta whose clock is behind proposes before the others give up on
 * round 0 (docs/protocol.md, 9.2).
 */
export function startPayload(networkId: string, slot: Omit<Slot, "round">): Uint8Array {
  return voteHead(Code.start, networkId, { ...slot, round: 0 });
}

/** A want payload: code | network id | height u64 (send me a commit of this frame or later). */
export function wantPayload(networkId: string, height: number): Uint8Array {
  const out = new Uint8Array(1 + HASH_BYTES + 8);
  out[0] = Code.want;
  out.set(fromHex(networkId, HASH_BYTES)!, 1);
  writeU64(viewOf(out), 1 + HASH_BYTES, height);
  return out;
}

/**
 * A pending payload: code | network id | frame u64 | transfers (144 bytes each) the frame's alpha accepted,
 * so that the other servers check their signatures before the frame ends (docs/protocol.md, 9.8).
 */
export function pendingPayload(
  networkId: string,
  frame: number,
  txBytes: readonly Uint8Array[],
): Uint8Array[] {
  const head = new Uint8Array(1 + HASH_BYTES + 8);
  head[0] = Code.pending;
  head.set(fromHex(networkId, HASH_BYTES)!, 1);
  writeU64(viewOf(head), 1 + HASH_BYTES, frame);
  return [head, ...txBytes];
}

/** The signatures of a quorum of precommits. */
export interface Certificate {
  readonly height: number;
  readonly round: number;
  readonly prevDigest: string;
  readonly digest: string;
  readonly signatures: readonly { readonly signer: number; readonly signature: Uint8Array }[];
}

/** Why a certificate does not prove a quorum in `network`, or undefined when it does. */
export function checkCertificate(
  network: Network,
  cert: Certificate,
  verifier: Verifier = verifySignature,
): string | undefined {
  const n = network.servers.length;
  if (cert.signatures.length < network.quorum) {
    return `certificate holds ${cert.signatures.length} signatures, fewer than the quorum ${network.quorum}`;
  }
  const payload = votePayload("precommit", network.id, cert, cert.digest);
  const message = sha256(payload);
  let last = -1;
  for (const { signer, signature } of cert.signatures) {
    if (!Number.isInteger(signer) || signer <= last || signer >= n) {
      return "certificate signers are not distinct servers in order";
    }
    last = signer;
    if (!verifier(network.servers[signer]!.key, message, signature)) {
      return `certificate signature of ${network.servers[signer]!.name} does not verify`;
    }
  }
  return undefined;
}

/** A committed frame: its complete state and the certificate that agreed on it. */
export interface Commit {
  readonly frame: number;
  readonly state: State;
  /** SHA-256 of the frame's transfers. */
  readonly txsDigest: Uint8Array;
  readonly cert: Certificate;
}

/**
 * A commit's bytes (the `commit` message payload and an archive file alike): code 5 | network id |
 * height u64 | round u32 | previous digest | digest | frame u64 | transfers hash | signatures u8 |
 * (signer u8 | signature 64) each | database length u64 | database | recent ids.
 */
export function encodeCommit(networkId: string, commit: Commit): Uint8Array[] {
  const c = commit.cert;
  const head = new Uint8Array(1 + HASH_BYTES + 8 + 4 + HASH_BYTES + HASH_BYTES + 8 + HASH_BYTES + 1);
  const view = viewOf(head);
  let off = 0;
  head[off++] = Code.commit;
  head.set(fromHex(networkId, HASH_BYTES)!, off);
  off += HASH_BYTES;
  writeU64(view, off, c.height);
  off += 8;
  view.setUint32(off, c.round);
  off += 4;
  head.set(fromHex(c.prevDigest, HASH_BYTES)!, off);
  off += HASH_BYTES;
  head.set(fromHex(c.digest, HASH_BYTES)!, off);
  off += HASH_BYTES;
  writeU64(view, off, commit.frame);
  off += 8;
  head.set(commit.txsDigest, off);
  off += HASH_BYTES;
  head[off] = c.signatures.length;
  const sigs = new Uint8Array(c.signatures.length * (1 + SIGNATURE_BYTES));
  c.signatures.forEach((s, i) => {
    sigs[i * (1 + SIGNATURE_BYTES)] = s.signer;
    sigs.set(s.signature, i * (1 + SIGNATURE_BYTES) + 1);
  });
  const dbLength = new Uint8Array(8);
  writeU64(viewOf(dbLength), 0, commit.state.ledger.bytes.length);
  return [head, sigs, dbLength, commit.state.ledger.bytes, encodeRecent(commit.state.recent)];
}

/** Decodes a commit's bytes (code byte first); throws SyntaxError when they do not parse. */
export function decodeCommit(bytes: Uint8Array): { networkId: string; commit: Commit } {
  const view = viewOf(bytes);
  const fixed = 1 + HASH_BYTES + 8 + 4 + HASH_BYTES + HASH_BYTES + 8 + HASH_BYTES + 1;
  if (bytes.length < fixed || bytes[0] !== Code.commit) throw new SyntaxError("Not a commit");
  let off = 1;
  const networkId = toHex(bytes.subarray(off, off + HASH_BYTES));
  off += HASH_BYTES;
  const height = readU64(view, off);
  off += 8;
  const round = view.getUint32(off);
  off += 4;
  const prevDigest = toHex(bytes.subarray(off, off + HASH_BYTES));
  off += HASH_BYTES;
  const digest = toHex(bytes.subarray(off, off + HASH_BYTES));
  off += HASH_BYTES;
  const frame = readU64(view, off);
  off += 8;
  const txsDigest = bytes.slice(off, off + HASH_BYTES);
  off += HASH_BYTES;
  const count = bytes[off++]!;
  if (height < 0 || frame < 0 || frame < height) throw new SyntaxError("Commit frame is out of range");
  if (off + count * (1 + SIGNATURE_BYTES) + 8 > bytes.length) throw new SyntaxError("Commit is cut off");
  const signatures = [];
  for (let i = 0; i < count; i++) {
    signatures.push({ signer: bytes[off]!, signature: bytes.slice(off + 1, off + 1 + SIGNATURE_BYTES) });
    off += 1 + SIGNATURE_BYTES;
  }
  const dbBytes = readU64(view, off);
  off += 8;
  if (dbBytes < 0 || dbBytes > MAX_DB_BYTES || off + dbBytes > bytes.length) {
    throw new SyntaxError("Commit database length is out of range");
  }
  const ledger = Ledger.fromPacked(bytes.subarray(off, off + dbBytes));
  off += dbBytes;
  const recent = decodeRecent(bytes.subarray(off));
  return {
    networkId,
    commit: {
      frame,
      state: { ledger, recent },
      txsDigest,
      cert: { height, round, prevDigest, digest, signatures },
    },
  };
}

/**
 * Why `commit` is not a certified state of `network`, or undefined when it is: the network id, the
 * supply, the digest recomputed from the state, and a quorum of valid signatures.
 */
export function checkCommit(
  network: Network,
  networkId: string,
  commit: Commit,
  verifier: Verifier = verifySignature,
): string | undefined {
  if (networkId !== network.id) return "it belongs to another network (its network id differs)";
  if (commit.state.ledger.supply !== network.supply) {
    return `its database holds a total supply of ${commit.state.ledger.supply}, not ${network.supply}`;
  }
  const digest = frameDigest(
    network.id,
    commit.frame,
    commit.cert.prevDigest,
    commit.state,
    commit.txsDigest,
  );
  if (digest !== commit.cert.digest) return "its state does not hash to the digest its certificate signs";
  return checkCertificate(network, commit.cert, verifier);
}

/** Recent ids: frames u32 | (frame u64 | count u32 | ids 32 each) per frame. */
export function encodeRecent(recent: RecentIds): Uint8Array {
  return concatBytes(recentChunks(recent));
}

/** Decodes recent ids; throws SyntaxError when they do not parse or break a limit. */
export function decodeRecent(bytes: Uint8Array): RecentIds {
  const view = viewOf(bytes);
  if (bytes.length < 4) throw new SyntaxError("Recent ids are cut off");
  const frames = view.getUint32(0);
  if (frames > MAX_RECENT_FRAMES) throw new SyntaxError("Too many recent frames");
  let off = 4;
  let total = 0;
  let last = -1;
  const recent: { frame: number; ids: Set<string> }[] = [];
  for (let f = 0; f < frames; f++) {
    if (off + 12 > bytes.length) throw new SyntaxError("Recent ids are cut off");
    const frame = readU64(view, off);
    const n = view.getUint32(off + 8);
    off += 12;
    total += n;
    if (frame <= last || total > MAX_RECENT_IDS || off + n * HASH_BYTES > bytes.length) {
      throw new SyntaxError("Recent ids are out of order, too many or cut off");
    }
    last = frame;
    const ids = new Set<string>();
    for (let i = 0; i < n; i++) {
      ids.add(toHex(bytes.subarray(off + i * HASH_BYTES, off + (i + 1) * HASH_BYTES)));
    }
    off += n * HASH_BYTES;
    recent.push({ frame, ids });
  }
  if (off !== bytes.length) throw new SyntaxError("Recent ids have trailing bytes");
  return recent;
}

/** The archive name of a commit's bytes: SHA-256 of the content, a dot, the frame's start in unix ms. */
export function commitFileHash(chunks: readonly Uint8Array[]): string {
  return sha256Hex(concatBytes(chunks));
}
