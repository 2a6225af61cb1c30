// A dishonest replica: it runs the real replica code and then lies with what that code produces: correct
// digests for each value it proposes, valid signatures, perfect timing. Each lie is one kind the
// simulator can switch on: equivocating (two proposals, and votes for each to different halves; with
// far_split too, half of its splits move the second half alone far ahead in rounds first), forging
// the state of catch-ups, sending its proposals early, replaying old signed messages, withholding
// messages, proposing transfers whose signatures do not verify, and voting for digests it never computed.

import { fromHex, readU64, toHex, viewOf } from "../_bytes.ts";
import { NIL } from "../agreement.ts";
import {
  Code,
  decodeCommit,
  encodeCommit,
  frameDigest,
  proposalPayload,
  startPayload,
  txsHash,
  VOTE_HEAD_BYTES,
  votePayload,
} from "../certificate.ts";
import { alphaIndex, frameAt, frameContext } from "../frames.ts";
import type { Signer } from "../keys.ts";
import { apply } from "../ledger.ts";
import type { Network } from "../peers.ts";
import { type Action, MAX_ROUND_LEAD, type Replica } from "../replica.ts";
import { decodeTx, type Tx, TX_BYTES } from "../tx.ts";
import { messageBody, PEER_HEAD_BYTES, signPeerMessage } from "../wire.ts";
import type { Rng } from "./rng.ts";

/** The lies a dishonest replica can tell. */
export const LIE_KINDS = [
  "equivocate",
  "far_split",
  "forge_catchup",
  "early_buffer",
  "replay_messages",
  "withhold",
  "flood",
  "wrong_hash",
] as const;

/** One kind of lie. */
export type LieKind = (typeof LIE_KINDS)[number];

/** Invalid transfers a flooding proposer adds to each of its proposals. */
export const FLOOD_TXS = 40;
/** Old signed messages kept for replay. */
export const REPLAY_KEEP = 64;

/** A proposal or vote head, decoded. */
interface Head {
  readonly code: number;
  readonly height: number;
  readonly round: number;
  readonly prevDigest: string;
}

function headOf(payload: Uint8Array): Head | undefined {
  if (payload.length < VOTE_HEAD_BYTES) return undefined;
  const code = payload[0]!;
  if (code !== Code.proposal && code !== Code.prevote && code !== Code.precommit) return undefined;
  const view = viewOf(payload);
  return {
    code,
    height: readU64(view, 33),
    round: view.getUint32(41),
    prevDigest: toHex(payload.subarray(45, 77)),
  };
}

/** The lying wrapper around one replica's outgoing actions. */
export class Adversary {
  readonly #me: number;
  readonly #network: Network;
  readonly #signer: Signer;
  readonly #rng: Rng;
  readonly #lies: ReadonlySet<LieKind>;
  #observed: Uint8Array[] = [];
  /** The second value of each equivocated proposal, by `height:round`: its digest. */
  #alternative = new Map<string, string>();
  /** It proposed two values once: from then on it is known as a liar, and votes two ways too. */
  #exposed = false;
  /** The halves it splits the others into, per height. */
  #halves = new Map<number, [number[], number[]]>();
  #earlySent = new Set<number>();
  #lastForged = -1;

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

  #sign(payload: Uint8Array[]): Uint8Array[] {
    return signPeerMessage(this.#key, this.#signer, payload);
  }

  /** Kept for replay. */
  observe(body: Uint8Array): void {
    if (!this.#has("replay_messages")) return;
    this.#observed.push(body);
    if (this.#observed.length > REPLAY_KEEP) this.#observed.shift();
  }

  #others(): number[] {
    return this.#network.servers.map((s) => s.index).filter((i) => i !== this.#me);
  }

  /** Halves as even as possible: each side then reaches a quorum with the liar's votes where it can. */
  #split(height: number): [number[], number[]] {
    let h = this.#halves.get(height);
    if (h === undefined) {
      const shuffled = this.#rng.shuffle(this.#others());
      const cut = Math.max(1, Math.floor(shuffled.length / 2));
      h = [shuffled.slice(0, cut), shuffled.slice(cut)];
      this.#halves.set(height, h);
      for (const k of this.#halves.keys()) if (k < height - 16) this.#halves.delete(k);
    }
    return h;
  }

  /** Rewrites the replica's actions into the lies it tells. */
  outgoing(_nowMs: number, actions: Action[], replica: Replica): Action[] {
    const out: Action[] = [];
    for (const action of actions) {
      if (action.type !== "broadcast" && action.type !== "send") {
        out.push(action);
        continue;
      }
      const body = messageBody(action.message);
      // Messages of other servers it passes on: unchanged (or withheld).
      if (body[0] !== 0x01 || toHex(body.subarray(1, 33)) !== toHex(this.#key)) {
        if (!(this.#has("withhold") && this.#rng.chance(0.3))) out.push(action);
        continue;
      }
      if (this.#has("withhold") && this.#rng.chance(0.3)) continue;
      const payload = body.subarray(PEER_HEAD_BYTES);
      if (payload[0] === Code.commit) {
        out.push(this.#has("forge_catchup") ? this.#forgedCommit(action, payload) : action);
        continue;
      }
      const head = headOf(payload);
      if (head === undefined) {
        out.push(action);
        continue;
      }
      if (head.code === Code.proposal) {
        out.push(...this.#proposal(action, head, payload, replica));
        continue;
      }
      out.push(...this.#vote(action, head, payload));
    }
    return out;
  }

  #proposal(action: Action, head: Head, payload: Uint8Array, replica: Replica): Action[] {
    const view = viewOf(payload);
    const polWord = view.getUint32(VOTE_HEAD_BYTES);
    const polRound = polWord === 0xffff_ffff ? -1 : polWord;
    const frame = readU64(view, VOTE_HEAD_BYTES + 4);
    let txs = txsOf(payload.subarray(VOTE_HEAD_BYTES + 12));
    let changed = false;
    if (this.#has("flood")) {
      txs = [...txs, ...this.#invalidTxs()];
      changed = true;
    }
    const slot = { height: head.height, round: head.round, prevDigest: head.prevDigest };
    const main = changed
      ? this.#sign(proposalPayload(this.#network.id, slot, polRound, frame, txs))
      : undefined;
    if (!this.#has("equivocate") || polRound >= 0) {
      return [main === undefined ? action : { type: "broadcast", message: main, greeting: false }];
    }
    // A second value: the same transfers but the last (an empty proposal has no second value).
    const other = txs.slice(0, Math.max(0, txs.length - 1));
    if (other.length === txs.length) {
      return [main === undefined ? action : { type: "broadcast", message: main, greeting: false }];
    }
    const digestOf = (buffer: readonly Tx[]) => {
      const result = apply(replica.state, buffer, frameContext(frame, this.#network.timing));
      return frameDigest(this.#network.id, frame, head.prevDigest, result.state, txsHash(buffer));
    };
    const digest = digestOf(other);
    this.#alternative.set(`${head.height}:${head.round}`, digest);
    for (const k of this.#alternative.keys()) {
      if (Number(k.split(":")[0]) < head.height - 16) this.#alternative.delete(k);
    }
    this.#exposed = true;
    const [a, b] = this.#split(head.height);
    const first = main ?? (action.type === "broadcast" || action.type === "send" ? action.message : []);
    const second = this.#sign(proposalPayload(this.#network.id, slot, polRound, frame, other));
    // Its prevote and precommit for each value go with the proposal, without waiting for a round trip: a
    // server of each half can then complete a certificate (its own votes and these) before a relay from
    // the other half tells it of the second value. Its replica's own votes later repeat them.
    const votes = (d: string) =>
      (["prevote", "precommit"] as const).map((step) =>
        this.#sign([votePayload(step, this.#network.id, slot, d)])
      );
    const firstVotes = votes(digestOf(txs));
    let toSecondHalf = [second, ...votes(digest)];
    if (this.#has("far_split") && this.#rng.chance(0.5)) {
      // Or the far split: the second half is moved alone, by its proposals (with b = 0 one server's message
      // moves another to its round), to a round of its own more than MAX_ROUND_LEAD rounds beyond the first
      // half's, and given a certificate there: what it says of it comes from too far ahead to be counted.
      // The first leap's proposal claims a prevote quorum that nobody saw, so that it is waited on in
      // silence: a vote there would reach the first half in time.
      const n = this.#network.servers.length;
      const leap = n * Math.floor(MAX_ROUND_LEAD / n);
      const far = { ...slot, round: head.round + 2 * leap };
      this.#alternative.set(`${head.height}:${far.round}`, digest);
      toSecondHalf = [
        this.#sign(
          proposalPayload(this.#network.id, { ...slot, round: head.round + leap }, head.round, frame, other),
        ),
        this.#sign(proposalPayload(this.#network.id, far, -1, frame, other)),
        ...(["prevote", "precommit"] as const).map((step) =>
          this.#sign([votePayload(step, this.#network.id, far, digest)])
        ),
      ];
    }
    return [
      ...a.flatMap((to): Action[] =>
        [first, ...firstVotes].map((message) => ({ type: "send", to, message }))
      ),
      ...b.flatMap((to): Action[] => toSecondHalf.map((message) => ({ type: "send", to, message }))),
    ];
  }

  #vote(action: Action, head: Head, payload: Uint8Array): Action[] {
    const step = head.code === Code.prevote ? "prevote" : "precommit";
    const digest = toHex(payload.subarray(VOTE_HEAD_BYTES, VOTE_HEAD_BYTES + 32));
    const slot = { height: head.height, round: head.round, prevDigest: head.prevDigest };
    if (this.#has("wrong_hash") && this.#rng.chance(0.3)) {
      const forged = toHex(this.#rng.bytes(32));
      return [{
        type: "broadcast",
        message: this.#sign([votePayload(step, this.#network.id, slot, forged)]),
        greeting: false,
      }];
    }
    if (!this.#has("equivocate")) return [action];
    // Votes for its real value to one half; to the other, for its second proposal's value (when it
    // proposed two) or nil: each half can complete a quorum with it. Until it first proposes two values
    // it votes honestly: a second vote seen earlier would prove it a liar, and honest servers do not wait
    // for a proven liar's proposals, so its one good chance to split them would be gone.
    const other = this.#alternative.get(`${head.height}:${head.round}`) ??
      (digest === NIL || !this.#exposed ? undefined : NIL);
    if (other === undefined || other === digest) return [action];
    const [a, b] = this.#split(head.height);
    const first = action.type === "broadcast" || action.type === "send" ? action.message : [];
    const second = this.#sign([votePayload(step, this.#network.id, slot, other)]);
    return [
      ...a.map((to): Action => ({ type: "send", to, message: first })),
      ...b.map((to): Action => ({ type: "send", to, message: second })),
    ];
  }

  /** The right database with forged replay-protection ids (none): its digest no longer matches. */
  #forgedCommit(action: Action, payload: Uint8Array): Action {
    let decoded;
    try {
      decoded = decodeCommit(payload.slice());
    } catch {
      return action;
    }
    const c = decoded.commit;
    const forged = { ...c, state: { ledger: c.state.ledger, recent: [] } };
    const message = this.#sign(encodeCommit(this.#network.id, forged));
    return action.type === "send"
      ? { type: "send", to: action.to, message }
      : { type: "broadcast", message, greeting: false };
  }

  /** Lies told on its own schedule: early proposals, unsolicited forged catch-ups, replays. */
  tick(nowMs: number, replica: Replica): Action[] {
    const out: Action[] = [];
    const n = this.#network.servers.length;
    const I = this.#network.intervalMs;
    const g = frameAt(nowMs, I);
    const c = replica.committed;
    if (this.#has("early_buffer") && c.frame === g - 1 && !this.#earlySent.has(g)) {
      this.#earlySent.add(g);
      for (const f of this.#earlySent) if (f < g - 8) this.#earlySent.delete(f);
      const slot = { height: g, round: 0, prevDigest: c.hash };
      if (alphaIndex(g, n) === this.#me) {
        // Its round-0 proposal for frame g at once, before g ended: honest servers must hold it until then.
        const txs = [...replica.alphaBuffer(g)];
        const message = this.#sign(proposalPayload(this.#network.id, slot, -1, g, txs));
        out.push({ type: "broadcast", message, greeting: false });
      } else {
        // Its start of frame g at once, to g's beta: the beta must not start before g is within the skew of
        // its end, nor leave out a transfer it answered "ok" for when it does.
        out.push({
          type: "send",
          to: alphaIndex(g, n),
          message: this.#sign([startPayload(this.#network.id, slot)]),
        });
      }
    }
    if (this.#has("forge_catchup") && c.frame > this.#lastForged && this.#rng.chance(0.5)) {
      this.#lastForged = c.frame;
      // Unsolicited: the certificate of the frame before with this frame's state and no recent ids.
      const state = { ledger: c.state.ledger, recent: [] };
      const commit = {
        frame: c.frame,
        state,
        txsDigest: txsHash([]),
        cert: { height: c.frame, round: 0, prevDigest: c.hash, digest: c.hash, signatures: [] },
      };
      const message = this.#sign(encodeCommit(this.#network.id, commit));
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
    const payerBytes = fromHex(this.#network.genesis[0]![0], 32)!;
    return Array.from({ length: FLOOD_TXS }, () => {
      const bytes = this.#rng.bytes(TX_BYTES);
      const view = new DataView(bytes.buffer);
      view.setBigUint64(8, BigInt(this.#rng.int(1, 1000)));
      bytes.set(payerBytes, 48);
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
