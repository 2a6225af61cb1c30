// A dishonest replica: it runs the real replica code and then lies with what that code produces —
// correct hashes for each buffer it sends, valid signatures, perfect timing. Each lie is one kind the
// simulator can switch on: equivocating as beta, forging the replay-protection ids of catch-ups (and
// replaying committed transfers to the servers it fooled), sending its next buffer early, replaying old
// signed messages, withholding votes, flooding invalid transfers, and voting for hashes it never computed.

import { fromHex, toHex } from "../_bytes.ts";
import { alphaIndex, frameAt, frameContext } from "../frames.ts";
import type { Signer } from "../keys.ts";
import { apply, type State } from "../ledger.ts";
import type { Network } from "../peers.ts";
import type { Action, Replica, TraceNote } from "../replica.ts";
import { decodeTx, type Tx, TX_BYTES } from "../tx.ts";
import {
  decodePayload,
  encodeCatchup,
  encodeVote,
  messageBody,
  PEER_HEAD_BYTES,
  signPeerMessage,
} from "../wire.ts";
import type { Rng } from "./rng.ts";

/** The lies a dishonest replica can tell. */
export const LIE_KINDS = [
  "equivocate",
  "forge_catchup",
  "early_buffer",
  "replay_messages",
  "withhold",
  "flood",
  "wrong_hash",
] as const;

/** One kind of lie. */
export type LieKind = (typeof LIE_KINDS)[number];

/** Invalid transfers a flooding beta adds to each of its buffers. */
export const FLOOD_TXS = 40;
/** Old signed messages kept for replay. */
export const REPLAY_KEEP = 64;

/** The lying wrapper around one replica's outgoing actions. */
export class Adversary {
  readonly #me: number;
  readonly #network: Network;
  readonly #signer: Signer;
  readonly #rng: Rng;
  readonly #lies: ReadonlySet<LieKind>;
  /** The state each processed frame was applied to. */
  #parents = new Map<number, State>();
  /** Transfers seen in buffers, by id, with the frame they were in. */
  #seenTxs = new Map<string, { tx: Tx; frame: number }>();
  #observed: Uint8Array[] = [];
  /** Frame of the newest forged catch-up: servers that took it lack the ids of frames up to it. */
  #forgedUpTo: number | undefined;
  #lastForgedFrame = -1;
  #earlySent = new Set<number>();

  constructor(
    options: { node: number; network: Network; signer: Signer; rng: Rng; lies: ReadonlySet<LieKind> },
  ) {
    this.#me = options.node;
    this.#network = options.network;
    this.#signer = options.signer;
    this.#rng = options.rng;
    this.#lies = options.lies;
  }

  #has(kind: LieKind): boolean {
    return this.#lies.has(kind);
  }

  get #key(): Uint8Array {
    return this.#network.servers[this.#me]!.key;
  }

  /** Learns what its own replica derived. */
  learn(note: Extract<TraceNote, { type: "applied" }>): void {
    this.#parents.set(note.frame, note.parent);
    for (const f of this.#parents.keys()) if (f < note.frame - 16) this.#parents.delete(f);
  }

  /** Keeps a received message for replay, and the transfers of beta buffers for forged replays. */
  observe(body: Uint8Array): void {
    if (this.#has("replay_messages")) {
      this.#observed.push(body);
      if (this.#observed.length > REPLAY_KEEP) this.#observed.shift();
    }
    if (!this.#has("forge_catchup")) return;
    try {
      const payload = decodePayload(body.subarray(PEER_HEAD_BYTES));
      if (payload.code === 0 && payload.txBytes.length > 0) {
        for (let off = 0; off < payload.txBytes.length; off += TX_BYTES) {
          const tx = decodeTx(payload.txBytes.slice(off, off + TX_BYTES))!;
          if (!this.#seenTxs.has(tx.id)) this.#seenTxs.set(tx.id, { tx, frame: payload.frame });
        }
        for (const [id, s] of this.#seenTxs) if (s.frame < payload.frame - 32) this.#seenTxs.delete(id);
      }
    } catch {
      // not a message it can use
    }
  }

  #vote(frame: number, hash: string, txs: readonly Tx[]): Uint8Array[] {
    const txBytes = new Uint8Array(txs.length * TX_BYTES);
    txs.forEach((tx, i) => txBytes.set(tx.bytes, i * TX_BYTES));
    return signPeerMessage(this.#key, this.#signer, [encodeVote(frame, fromHex(hash, 32)!, txBytes)]);
  }

  #hashOf(parent: State, frame: number, txs: readonly Tx[]): string {
    return apply(parent, txs, frameContext(frame, this.#network.timing)).state.ledger.hash;
  }

  #others(): number[] {
    return this.#network.servers.map((s) => s.index).filter((i) => i !== this.#me);
  }

  /** Rewrites the replica's actions into the lies it tells. */
  outgoing(_nowMs: number, actions: Action[], _replica: Replica): Action[] {
    const out: Action[] = [];
    for (const action of actions) {
      if (action.type !== "broadcast" && action.type !== "send") {
        out.push(action);
        continue;
      }
      const body = messageBody(action.message);
      let payload;
      try {
        payload = decodePayload(body.subarray(PEER_HEAD_BYTES));
      } catch {
        out.push(action);
        continue;
      }
      if (payload.code === 1) {
        if (this.#has("withhold") && this.#rng.chance(0.3)) continue;
        if (this.#has("forge_catchup") && action.type === "send") {
          // The right database with forged replay-protection ids: none.
          this.#forgedUpTo = Math.max(this.#forgedUpTo ?? -1, payload.frame);
          out.push({
            type: "send",
            to: action.to,
            message: signPeerMessage(this.#key, this.#signer, encodeCatchup(payload.frame, payload.db, [])),
          });
          continue;
        }
        out.push(action);
        continue;
      }
      // A vote of its own (a forwarded beta message carries another key: pass it on unchanged).
      if (toHex(body.subarray(1, 33)) !== toHex(this.#key)) {
        out.push(action);
        continue;
      }
      if (this.#has("withhold") && this.#rng.chance(0.3)) continue;
      if (this.#has("wrong_hash") && this.#rng.chance(0.3)) {
        const txs = txsOf(payload.txBytes);
        const forged = this.#vote(payload.frame, toHex(this.#rng.bytes(32)), txs);
        out.push({ type: "broadcast", message: forged, greeting: false });
        continue;
      }
      const frame = payload.frame;
      const parent = this.#parents.get(frame);
      const isBeta = alphaIndex(frame, this.#network.servers.length) === this.#me;
      if (!isBeta || parent === undefined || action.type !== "broadcast") {
        out.push(action);
        continue;
      }
      let txs = txsOf(payload.txBytes);
      let hash = payload.hash;
      let base = parent;
      if (this.#has("flood")) txs = [...txs, ...this.#invalidTxs()];
      if (this.#has("forge_catchup") && this.#forgedUpTo !== undefined) {
        // Replay transfers the fooled servers no longer remember, still inside their time window.
        const forgedUpTo = this.#forgedUpTo;
        const ctx = frameContext(frame, this.#network.timing);
        const replays = [...this.#seenTxs.values()].filter((s) =>
          s.frame <= forgedUpTo && s.tx.timestampMs >= ctx.windowFromMs && s.tx.timestampMs < ctx.windowToMs
        ).map((s) => s.tx).slice(0, 4);
        if (replays.length > 0) {
          base = { ledger: parent.ledger, recent: parent.recent.filter((r) => r.frame > forgedUpTo) };
          txs = [...txs, ...replays];
        }
      }
      if (txs.length !== txsOf(payload.txBytes).length || base !== parent) {
        hash = this.#hashOf(base, frame, txs);
      }
      if (this.#has("equivocate") && txs.length > 0) {
        // Two buffers, each with the hash honest servers will compute for it.
        const others = this.#others();
        // Halves as even as possible: each side then reaches a quorum with the liar's vote where it can.
        const cut = Math.max(1, Math.floor(others.length / 2));
        const shuffled = this.#rng.shuffle(others);
        const other = txs.slice(0, txs.length - 1);
        const otherHash = this.#hashOf(base, frame, other);
        const a = this.#vote(frame, hash, txs);
        const b = this.#vote(frame, otherHash, other);
        shuffled.forEach((to, i) => out.push({ type: "send", to, message: i < cut ? a : b }));
        continue;
      }
      out.push({ type: "broadcast", message: this.#vote(frame, hash, txs), greeting: false });
    }
    return out;
  }

  /** Lies told on its own schedule: early buffers, unsolicited forged catch-ups, replays. */
  tick(nowMs: number, replica: Replica): Action[] {
    const out: Action[] = [];
    const n = this.#network.servers.length;
    const g = frameAt(nowMs, this.#network.intervalMs);
    if (this.#has("early_buffer") && alphaIndex(g, n) === this.#me && !this.#earlySent.has(g)) {
      // Frame g's buffer at once, computed on the state before g - 1, to the honest beta of g - 1 only:
      // it processes g now, judges g - 1 missed and reverts it.
      this.#earlySent.add(g);
      for (const f of this.#earlySent) if (f < g - 8) this.#earlySent.delete(f);
      const base = replica.headFrame >= g - 1 ? this.#parents.get(g - 1) : replica.state;
      const beta = alphaIndex(g - 1, n);
      if (base !== undefined && beta !== this.#me) {
        const txs = [...replica.alphaBuffer(g)];
        out.push({ type: "send", to: beta, message: this.#vote(g, this.#hashOf(base, g, txs), txs) });
      }
    }
    if (
      this.#has("forge_catchup") && replica.committed.frame > this.#lastForgedFrame && this.#rng.chance(0.5)
    ) {
      const c = replica.committed;
      this.#lastForgedFrame = c.frame;
      this.#forgedUpTo = Math.max(this.#forgedUpTo ?? -1, c.frame);
      const message = signPeerMessage(
        this.#key,
        this.#signer,
        encodeCatchup(c.frame, c.state.ledger.bytes, []),
      );
      for (const to of this.#others()) out.push({ type: "send", to, message });
    }
    if (this.#has("replay_messages") && this.#observed.length > 0 && this.#rng.chance(0.3)) {
      const body = this.#rng.pick(this.#observed);
      const prefix = new Uint8Array(4);
      new DataView(prefix.buffer).setUint32(0, body.length);
      out.push({ type: "send", to: this.#rng.pick(this.#others()), message: [prefix, body] });
    }
    return out;
  }

  #invalidTxs(): Tx[] {
    const payer = fromHex(this.#network.genesis[0]![0], 32)!;
    return Array.from({ length: FLOOD_TXS }, () => {
      const bytes = this.#rng.bytes(TX_BYTES);
      const view = new DataView(bytes.buffer);
      view.setBigUint64(8, BigInt(this.#rng.int(1, 1000)));
      bytes.set(payer, 48);
      return decodeTx(bytes)!;
    });
  }
}

function txsOf(bytes: Uint8Array): Tx[] {
  const out: Tx[] = [];
  for (let off = 0; off < bytes.length; off += TX_BYTES) {
    out.push(decodeTx(bytes.slice(off, off + TX_BYTES))!);
  }
  return out;
}
