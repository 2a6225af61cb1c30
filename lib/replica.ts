// The replica: the whole frame protocol as a deterministic state machine. It takes inputs (the time, a
// peer message, a client request, a relay's answer, a completed write) and returns actions (send,
// broadcast, persist, log, answer, relay, halt). It never reads a clock, sets a timer, touches the
// network or the disk, awaits a promise or draws randomness: the same inputs give the same actions, so
// the same code runs in `coin serve` (lib/server.ts executes the actions) and in the simulator (lib/sim/).

import { fromHex, toHex } from "./_bytes.ts";
import { admit, newAlphaBuffer } from "./admission.ts";
import { archiveName } from "./archive.ts";
import { checkCatchup, encodeRecentIds, isCatchupSender, RECENT_IDS_FILE } from "./catchup.ts";
import { consensusOf, countOf, recordVote, summariseVotes } from "./consensus.ts";
import { type EventFields, type EventName, SERVER_CODES, type ServerCode } from "./events.ts";
import { FrameWindow, KEEP_FRAMES, LEAD_FRAMES } from "./frame_window.ts";
import { acceptingFrame, alphaIndex, frameAt, frameContext, frameStartMs, lastFrameFor } from "./frames.ts";
import { type Signer, type Verifier, verifySignature } from "./keys.ts";
import { apply, type State } from "./ledger.ts";
import type { Network, Peer } from "./peers.ts";
import type { Recovered } from "./recovery.ts";
import { decodeTx, type Tx, TX_BYTES, TX_CODES, type TxCode, verifyTx } from "./tx.ts";
import { TxIndex } from "./tx_index.ts";
import {
  type Catchup,
  decodePayload,
  encodeCatchup,
  encodeVote,
  Kind,
  LENGTH_PREFIX_BYTES,
  openPeerMessage,
  signPeerMessage,
  type Vote,
} from "./wire.ts";

/** Consecutive frames without consensus after which a server stops (or, waiting, refuses transfers). */
export const MAX_MISSED_FRAMES = 3;
/** Frames after start during which missing consensus is expected (the others may still be starting). */
export const STARTUP_GRACE_FRAMES = 10;
/** Votes are accepted for frames from current - AGE to current + LEAD (clock skew included). */
export const MAX_VOTE_AGE_FRAMES = 2;
export const MAX_VOTE_LEAD_FRAMES = 2;
/** A replica this many frames behind its clock skips ahead and waits for a catch-up. */
export const MAX_LAG_FRAMES = 3;

/** What the replica asks its shell to do. */
export type Action =
  /** Send one message (length-prefixed chunks) to the server with index `to`. */
  | { readonly type: "send"; readonly to: number; readonly message: Uint8Array[] }
  /**
   * Send one message to every other server. `greeting`: also send it first on every new connection
   * (it proves this server's key before a large message).
   */
  | { readonly type: "broadcast"; readonly message: Uint8Array[]; readonly greeting: boolean }
  /**
   * Write these archive files atomically, in order, then keep the newest `keep` archive entries; report
   * the outcome with `written(id, …)`.
   */
  | {
    readonly type: "persist";
    readonly id: number;
    readonly files: readonly { readonly name: string; readonly bytes: Uint8Array }[];
    readonly keep: number | undefined;
    /** The commit these files make durable, if they are one (not evidence). */
    readonly commit: { readonly frame: number; readonly hash: string } | undefined;
  }
  | { readonly type: "log"; readonly event: EventName; readonly fields: EventFields }
  /** Answer client request `request`. */
  | { readonly type: "answer"; readonly request: number; readonly response: Record<string, unknown> }
  /** Pass client request `request` (a transfer) to server `to`; report its answer with `relayed`. */
  | {
    readonly type: "relay";
    readonly request: number;
    readonly to: number;
    readonly bytes: Uint8Array;
    readonly timeoutMs: number;
  }
  /** Stop: the network lost its majority. */
  | { readonly type: "halt"; readonly reason: string };

/**
 * What the replica tells an observer (the simulator's invariant checker) about its state changes. A
 * server passes no observer.
 */
export type TraceNote =
  | {
    readonly type: "applied";
    readonly frame: number;
    readonly parentFrame: number;
    readonly parentHash: string;
    readonly parent: State;
    readonly state: State;
    /** Every transfer of the frame's buffer, and those of them that were applied. */
    readonly txIds: readonly string[];
    readonly appliedIds: readonly string[];
  }
  | { readonly type: "committed"; readonly frame: number; readonly hash: string; readonly state: State };

/** Counters exposed by /metrics and `coin status`. */
export interface ReplicaMetrics {
  framesProcessed: number;
  framesAgreed: number;
  framesMissed: number;
  txAccepted: number;
  txRejected: Record<string, number>;
  txCommitted: number;
  catchupsSent: number;
  catchupsReceived: number;
  messagesDropped: number;
  lastApplyMs: number;
  lastHashMs: number;
}

/** Options of a replica. */
export interface ReplicaOptions {
  readonly network: Network;
  /** This server's index in peers.json. */
  readonly me: number;
  /** Signs this server's messages (deterministic Ed25519). */
  readonly signer: Signer;
  /** What the data directory held at start. */
  readonly recovered: Recovered;
  /** The time at start, unix ms. */
  readonly nowMs: number;
  /** Stay up without a majority, refusing transfers, instead of halting. */
  readonly waitForQuorum?: boolean;
  readonly archiveKeep?: number;
  /** Checks signatures; default verifySignature (the simulator passes a memo shared by its replicas). */
  readonly verifier?: Verifier;
  /** Measures durations for metrics only (never decides anything); default: always 0. */
  readonly stopwatch?: () => number;
  readonly trace?: (note: TraceNote) => void;
}

/** A coin server's protocol state machine. */
export class Replica {
  readonly network: Network;
  readonly me: Peer;
  readonly #signer: Signer;
  readonly #verifier: Verifier;
  readonly #waitForQuorum: boolean;
  readonly #archiveKeep: number | undefined;
  readonly #stopwatch: () => number;
  readonly #trace: ((note: TraceNote) => void) | undefined;
  readonly #listed: Set<string>;
  readonly #startedMs: number;
  readonly #startFrame: number;

  #nowMs: number;
  #out: Action[] = [];
  #state: State;
  /** The frame #state was computed at (-1: unknown or genesis). */
  #stateFrame: number;
  #headFrame: number;
  #committed: { frame: number; state: State; hash: string };
  #durable: { frame: number; hash: string };
  #lastArchivedHash: string | undefined;
  #frames = new FrameWindow();
  #txIndex: TxIndex;
  #lastJudged: number;
  #rejectedSinceLog = new Map<string, number>();
  #missed = 0;
  #everAgreed = false;
  #noQuorum = false;
  #inSync = false;
  #halted = false;
  #nextWriteId = 1;
  #pendingWrites = new Map<
    number,
    { frame: number; hash: string; archived: string | undefined; evidence?: boolean }
  >();
  readonly metrics: ReplicaMetrics = {
    framesProcessed: 0,
    framesAgreed: 0,
    framesMissed: 0,
    txAccepted: 0,
    txRejected: {},
    txCommitted: 0,
    catchupsSent: 0,
    catchupsReceived: 0,
    messagesDropped: 0,
    lastApplyMs: 0,
    lastHashMs: 0,
  };

  constructor(options: ReplicaOptions) {
    this.network = options.network;
    const me = options.network.servers[options.me];
    if (me === undefined) throw new RangeError(`No server ${options.me} in peers.json`);
    this.me = me;
    this.#signer = options.signer;
    this.#verifier = options.verifier ?? verifySignature;
    this.#waitForQuorum = options.waitForQuorum ?? false;
    this.#archiveKeep = options.archiveKeep;
    this.#stopwatch = options.stopwatch ?? (() => 0);
    this.#trace = options.trace;
    this.#listed = new Set(options.network.servers.map((s) => s.keyHex));
    this.#nowMs = options.nowMs;
    this.#startedMs = options.nowMs;
    const { state, recentComplete } = options.recovered;
    this.#state = state;
    this.#stateFrame = options.recovered.frame;
    this.#committed = { frame: options.recovered.frame, state, hash: state.ledger.hash };
    this.#durable = { frame: options.recovered.frame, hash: state.ledger.hash };
    this.#lastArchivedHash = options.recovered.archivedHash;
    this.#startFrame = frameAt(options.nowMs, this.network.intervalMs);
    this.#headFrame = this.#startFrame - 1;
    this.#lastJudged = this.#headFrame;
    this.#txIndex = new TxIndex(recentComplete ? state.recent[0]!.frame : this.#startFrame);
    this.#txIndex.learn(state.recent);
    this.#event("start", {
      frame: this.#startFrame,
      listen: `${me.host}:${me.port}`,
      loaded: options.recovered.loaded ?? "genesis",
      hash: state.ledger.hash.slice(0, 12),
      accounts: state.ledger.count,
      recent_frames: state.recent.length,
      servers: this.network.servers.length,
      quorum: this.network.quorum,
      network: this.network.id.slice(0, 16),
      interval_ms: this.network.intervalMs,
    });
  }

  // ---- inputs ------------------------------------------------------------------------------------

  /** The actions queued so far (the start event), and none after. */
  drain(): Action[] {
    const out = this.#out;
    this.#out = [];
    return out;
  }

  /** The clock reached `nowMs`: process the frames that are due and judge the ones past their deadline. */
  tick(nowMs: number): Action[] {
    this.#at(nowMs);
    if (!this.#halted) {
      this.#advance();
      this.#judge();
    }
    return this.drain();
  }

  /** When the replica next needs a tick: just after the next half-frame boundary. */
  nextTickMs(nowMs: number): number {
    const I = this.network.intervalMs;
    const start = frameStartMs(frameAt(nowMs, I), I);
    const half = start + this.#waitMs();
    return (nowMs < half ? half : start + I) + 1;
  }

  /**
   * A whole peer message body (kind byte first). `listed` is true when it was signed by a listed server
   * (the connection has proved that key).
   */
  peerMessage(nowMs: number, body: Uint8Array): { actions: Action[]; listed: boolean } {
    this.#at(nowMs);
    if (this.#halted) return { actions: this.drain(), listed: false };
    const listed = this.#onPeerMessage(body);
    return { actions: this.drain(), listed };
  }

  /** A client request (`kind` and argument); `relayed` when another server passed it on. */
  request(nowMs: number, request: number, kind: number, arg: Uint8Array): Action[] {
    this.#at(nowMs);
    this.#onRequest(request, kind, arg);
    return this.drain();
  }

  /** The alpha's answer to a relayed transfer, or the reason it could not be had. */
  relayed(
    nowMs: number,
    request: number,
    to: number,
    answer: Record<string, unknown> | { error: string },
  ): Action[] {
    this.#at(nowMs);
    if ("error" in answer && typeof answer.error === "string") {
      const alpha = this.network.servers[to]!;
      this.#answer(request, this.#reject("alpha_unreachable", { alpha: alpha.name, detail: answer.error }));
    } else {
      this.#answer(request, { ...answer, relayedBy: this.me.name });
    }
    return this.drain();
  }

  /** A persist action finished: `error` says why it failed. */
  written(nowMs: number, id: number, error?: string): Action[] {
    this.#at(nowMs);
    const write = this.#pendingWrites.get(id);
    if (write === undefined) {
      throw new Error(`Invariant broken: write ${id} completed twice or never started`);
    }
    this.#pendingWrites.delete(id);
    if (write.evidence) {
      if (error !== undefined) this.#event("error_archive", { frame: write.frame, error });
      return this.drain();
    }
    if (error !== undefined) {
      this.#lastArchivedHash = undefined;
      this.#event("error_archive", { frame: write.frame, error });
    } else {
      if (write.archived !== undefined) {
        this.#event("archived", {
          frame: write.frame,
          file: write.archived.slice(0, 12) + "…" + write.archived.slice(64),
        });
      }
      if (write.frame > this.#durable.frame) this.#durable = { frame: write.frame, hash: write.hash };
    }
    return this.drain();
  }

  #at(nowMs: number): void {
    if (nowMs < this.#nowMs) {
      throw new Error(`Invariant broken: time went back from ${this.#nowMs} to ${nowMs}`);
    }
    this.#nowMs = nowMs;
  }

  // ---- what the shell and the simulator read ------------------------------------------------------

  /** The last committed frame, hash and state. */
  get committed(): { readonly frame: number; readonly state: State; readonly hash: string } {
    return this.#committed;
  }

  /** The newest processed frame. */
  get headFrame(): number {
    return this.#headFrame;
  }

  /** The state the next frame applies to. */
  get state(): State {
    return this.#state;
  }

  get halted(): boolean {
    return this.#halted;
  }

  /** The buffer this replica holds as alpha of `frame`, if any. */
  alphaBuffer(frame: number): readonly Tx[] {
    return this.#frames.get(frame)?.alphaBuffer?.txs ?? [];
  }

  // ---- the frame clock ---------------------------------------------------------------------------

  #waitMs(): number {
    return Math.floor(this.network.intervalMs / 2);
  }

  /** Processes every frame whose buffer is known or whose beta has had its time. */
  #advance(): void {
    const I = this.network.intervalMs;
    while (!this.#halted) {
      const now = this.#nowMs;
      const current = frameAt(now, I);
      if (this.#headFrame < current - MAX_LAG_FRAMES) {
        this.#event("skip_ahead", { from: this.#headFrame, to: current - 2, reason: "behind the clock" });
        this.#headFrame = current - 2;
        this.#txIndex.knownFromFrame = Math.max(this.#txIndex.knownFromFrame, current - 1);
        // Frames slept through (a paused process) are not this server's missed consensus: counting
        // them would halt a server that only needs a catch-up.
        this.#lastJudged = Math.max(this.#lastJudged, current - 2);
      }
      const f = this.#headFrame + 1;
      const beta = alphaIndex(f, this.network.servers.length) === this.me.index;
      const end = frameStartMs(f + 1, I);
      const record = this.#frames.get(f);
      const betaBuffer = record?.betaBuffer;
      // Frame f is processed only after it ended here: a buffer sent early (a liar's next frame) waits
      // in the frame window, so it cannot make this server judge the current frame before its votes came.
      const ready = now >= end && (beta || betaBuffer !== undefined || now >= end + this.#waitMs());
      // Judge frame f - 1 before applying f (its votes came a frame ago): after a frame without
      // consensus every server applies f to the same reverted balances, the beta included, instead of
      // some applying it to the lost frame's balances and losing frame after frame.
      if (ready) this.#judgeUpTo(f - 1);
      if (this.#halted) break;
      if (beta && now >= end) {
        const buffer = record?.alphaBuffer;
        this.#process(f, buffer?.txs ?? [], { beta: true, verified: buffer?.verified });
      } else if (!beta && betaBuffer !== undefined && now >= end) {
        const verified = this.#checkBuffer(f, betaBuffer);
        this.#process(f, verified === undefined ? [] : betaBuffer, { beta: false, verified });
      } else if (!beta && now >= end + this.#waitMs()) {
        this.#event("beta_silent", {
          frame: f,
          beta: this.network.servers[alphaIndex(f, this.network.servers.length)]!.name,
        });
        this.#process(f, [], { beta: false });
      } else {
        break;
      }
    }
  }

  #process(frame: number, txs: Tx[], options: { beta: boolean; verified?: WeakSet<Tx> | undefined }): void {
    if (frame !== this.#headFrame + 1) {
      throw new Error(`Invariant broken: processing frame ${frame} after frame ${this.#headFrame}`);
    }
    const t0 = this.#stopwatch();
    const context = frameContext(frame, this.network.timing);
    const result = apply(this.#state, txs, {
      ...context,
      ...(options.verified ? { verified: options.verified } : {}),
      verifier: this.#verifier,
    });
    const t1 = this.#stopwatch();
    const hash = result.state.ledger.hash;
    this.metrics.lastApplyMs = t1 - t0;
    this.metrics.lastHashMs = this.#stopwatch() - t1;
    this.metrics.framesProcessed++;
    const parent = { frame: this.#stateFrame, hash: this.#state.ledger.hash, state: this.#state };
    this.#state = result.state;
    this.#stateFrame = frame;
    this.#headFrame = frame;
    const record = this.#frames.at(frame);
    record.state = result.state;
    record.myVote = hash;
    const rejected: Record<string, number> = {};
    const appliedIds: string[] = [];
    txs.forEach((tx, i) => {
      const code = result.results[i]!;
      if (code !== "ok") rejected[code] = (rejected[code] ?? 0) + 1;
      else appliedIds.push(tx.id);
      this.#txIndex.judge(tx.id, frame, code);
    });
    this.#trace?.({
      type: "applied",
      frame,
      parentFrame: parent.frame,
      parentHash: parent.hash,
      parent: parent.state,
      state: result.state,
      txIds: txs.map((tx) => tx.id),
      appliedIds,
    });
    record.alphaBuffer = undefined;
    if (!record.broadcast) {
      record.broadcast = true;
      recordVote(record.votes, this.me.keyHex, hash);
      const txBytes = options.beta ? concatTxs(txs) : new Uint8Array(0);
      this.#out.push({
        type: "broadcast",
        message: signPeerMessage(this.me.key, this.#signer, [encodeVote(frame, fromHex(hash, 32)!, txBytes)]),
        greeting: txBytes.length === 0,
      });
    }
    record.info = {
      role: options.beta ? "beta" : "other",
      txs: txs.length,
      applied: result.applied,
      rejected: Object.entries(rejected).map(([c, n]) => `${c}:${n}`).join(",") || undefined,
      applyMs: this.metrics.lastApplyMs,
    };
    this.#decide(frame);
    this.#settle(frame);
    this.#prune(frame);
  }

  /** Frames whose consensus deadline (end of the next frame) passed without a majority. */
  #judge(): void {
    const current = frameAt(this.#nowMs, this.network.intervalMs);
    if (this.#rejectedSinceLog.size > 0) {
      // One line per frame, not one per refusal: a flood of bad transfers must not flood the log.
      const codes = [...this.#rejectedSinceLog].map(([c, n]) => `${c}:${n}`).join(",");
      this.#rejectedSinceLog.clear();
      this.#event("rejected_transfers", { frame: current, codes });
    }
    for (const r of this.#frames.records()) {
      if (r.unlogged && r.frame <= current - 2) this.#logFrame(r.frame, true);
    }
    this.#judgeUpTo(current - 2);
  }

  /** Frames up to `last` still undecided: each one is missed and reverts to the last agreed balances. */
  #judgeUpTo(last: number): void {
    for (let f = this.#lastJudged + 1; f <= last && !this.#halted; f++) {
      this.#lastJudged = f;
      if (this.#frames.get(f)?.decided !== undefined) continue;
      this.metrics.framesMissed++;
      this.#missed++;
      const votes = this.#frames.get(f)?.votes ?? new Map<string, string>();
      this.#event("no_consensus", {
        frame: f,
        seen: `${votes.size}/${this.network.servers.length}`,
        votes: summariseVotes(votes),
        need: this.network.quorum,
        missed: this.#missed,
      });
      // Part 10 of the seed: without consensus, go back to the last agreed balances.
      if (this.#state.ledger.hash !== this.#committed.hash) {
        this.#event("reverted", { to_frame: this.#committed.frame, hash: this.#committed.hash.slice(0, 12) });
      }
      this.#state = this.#committed.state;
      this.#stateFrame = this.#committed.frame;
      // What was applied after the agreed state is undone with it: its transfers are neither committed
      // nor duplicates now, so a status query must not say "committed" and a retry must be taken.
      const agreed = this.#committed.frame;
      this.#txIndex.forget((e) => e.frame > agreed && e.fromCatchup !== true);
      this.#inSync = false;
      const starting = !this.#everAgreed && f < this.#startFrame + STARTUP_GRACE_FRAMES;
      if (this.#missed >= MAX_MISSED_FRAMES && !starting) {
        const reason = `no majority (${this.network.quorum} of ${this.network.servers.length}) agreed for ` +
          `${this.#missed} frames; last agreed frame ${this.#committed.frame} hash ${
            this.#committed.hash.slice(0, 12)
          }`;
        if (!this.#waitForQuorum) {
          this.#halt(`Consensus lost: ${reason}; stopping rather than fork`);
          return;
        }
        if (!this.#noQuorum) {
          this.#noQuorum = true;
          this.#event("no_quorum", { reason, action: "refusing transfers until a majority agrees" });
        }
      }
    }
  }

  #halt(reason: string): void {
    this.#event("halt", { frame: this.#headFrame, reason });
    this.#halted = true;
    this.#out.push({ type: "halt", reason });
  }

  #prune(frame: number): void {
    this.#frames.prune(frame, this.#committed.frame);
    if (this.#txIndex.size > 0 && frame % 4 === 0) {
      this.#txIndex.prune(frame - Math.max(KEEP_FRAMES, 4 * this.#recentSpan()));
    }
  }

  #recentSpan(): number {
    return frameContext(0, this.network.timing).recentFrames;
  }

  // ---- consensus -------------------------------------------------------------------------------

  #decide(frame: number): void {
    const record = this.#frames.get(frame);
    if (record === undefined || record.decided !== undefined) return;
    const hash = consensusOf(record.votes, this.network.quorum);
    if (hash === undefined) return;
    record.decided = hash;
    record.decidedAfterMs = this.#nowMs - frameStartMs(frame + 1, this.network.intervalMs);
    this.metrics.framesAgreed++;
    if (this.#noQuorum) this.#event("quorum_back", { frame, hash: hash.slice(0, 12) });
    this.#noQuorum = false;
    this.#missed = 0;
    if (record.myVote === hash || this.#committed.frame >= frame) this.#sendCatchups(frame);
    for (const [sender, catchup] of [...record.pendingCatchups]) {
      record.pendingCatchups.delete(sender);
      this.#onCatchup(sender, catchup);
    }
    for (const [sender, vote] of record.votes) {
      if (vote !== hash) this.#logDisagreed(frame, sender, vote, hash);
    }
  }

  /** Another server's vote against the consensus: out of sync, or lying. Named by key. */
  #logDisagreed(frame: number, sender: string, vote: string, consensus: string): void {
    if (sender === this.me.keyHex) return;
    this.#event("disagreed", {
      from: this.#peerName(sender),
      key: sender.slice(0, 16),
      frame,
      hash: vote.slice(0, 12),
      consensus: consensus.slice(0, 12),
    });
  }

  /** Once a frame is decided and this replica has its own result, commit or mark out of sync. */
  #settle(frame: number): void {
    const record = this.#frames.get(frame);
    if (record === undefined) return;
    const consensus = record.decided;
    const mine = record.myVote;
    if (consensus === undefined || mine === undefined || record.settled) return;
    record.settled = true;
    if (mine === consensus) {
      if (frame > this.#committed.frame) {
        this.#commit(frame, record.state!, consensus);
        this.metrics.txCommitted += record.info?.applied ?? 0;
      }
      record.unlogged = true;
      this.#logFrame(frame, false);
    } else {
      this.#inSync = false;
      this.#event("out_of_sync", {
        frame,
        mine: mine.slice(0, 12),
        consensus: consensus.slice(0, 12),
        agree: `${countOf(record.votes, consensus)}/${this.network.servers.length}`,
        action: "waiting for the database (code 1)",
      });
    }
  }

  /** One line per agreed frame, once every server voted or the frame's deadline came. */
  #logFrame(frame: number, deadline: boolean): void {
    const record = this.#frames.get(frame);
    if (record === undefined || !record.unlogged) return;
    if (!deadline && record.votes.size < this.network.servers.length) return;
    record.unlogged = false;
    const consensus = record.decided!;
    const info = record.info;
    this.#event("consensus", {
      frame,
      role: info?.role ?? "caught-up",
      hash: consensus.slice(0, 12),
      agree: `${countOf(record.votes, consensus)}/${this.network.servers.length}`,
      txs: info?.txs,
      applied: info?.applied,
      rejected: info?.rejected,
      apply_ms: info?.applyMs.toFixed(1),
      decided_ms: record.decidedAfterMs?.toFixed(0),
    });
  }

  #commit(frame: number, state: State, hash: string): void {
    if (state.ledger.supply !== this.network.supply) {
      throw new Error(
        `Invariant broken: agreed database of frame ${frame} has supply ${state.ledger.supply}`,
      );
    }
    if (frame <= this.#committed.frame) {
      throw new Error(`Invariant broken: commit of frame ${frame} after frame ${this.#committed.frame}`);
    }
    if (state.ledger.hash !== hash) {
      throw new Error(`Invariant broken: committed state of frame ${frame} does not hash to its consensus`);
    }
    this.#committed = { frame, state, hash };
    this.#everAgreed = true;
    this.#inSync = true;
    this.#trace?.({ type: "committed", frame, hash, state });
    const seconds = Math.floor(frameStartMs(frame, this.network.intervalMs) / 1000);
    const write = hash !== this.#lastArchivedHash;
    const newIds = write || (state.recent.at(-1)?.ids.size ?? 0) > 0;
    this.#lastArchivedHash = hash;
    // Always a persist action, even with nothing to write: writes complete in order, so the frame
    // becomes durable only after every earlier write did.
    const files: { name: string; bytes: Uint8Array }[] = [];
    const name = write ? archiveName(hash, seconds) : undefined;
    if (name !== undefined) files.push({ name, bytes: state.ledger.bytes });
    if (newIds) files.push({ name: RECENT_IDS_FILE, bytes: encodeRecentIds(hash, frame, state.recent) });
    const id = this.#nextWriteId++;
    this.#pendingWrites.set(id, { frame, hash, archived: name });
    this.#out.push({ type: "persist", id, files, keep: this.#archiveKeep, commit: { frame, hash } });
  }

  #sendCatchups(frame: number): void {
    const record = this.#frames.get(frame);
    const hash = record?.decided;
    const state = record?.state;
    if (record === undefined || hash === undefined || state === undefined || state.ledger.hash !== hash) {
      return;
    }
    if (!isCatchupSender(this.network.servers, this.me.index, frame, record.votes, hash)) return;
    let message: Uint8Array[] | undefined;
    for (const [sender, vote] of record.votes) {
      if (vote === hash || sender === this.me.keyHex || record.catchupSentTo.has(sender)) continue;
      record.catchupSentTo.add(sender);
      const peer = this.#peerByKey(sender)!;
      this.metrics.catchupsSent++;
      this.#event("catchup_sent", {
        frame,
        to: peer.name,
        hash: hash.slice(0, 12),
        bytes: state.ledger.bytes.length,
      });
      message ??= signPeerMessage(
        this.me.key,
        this.#signer,
        encodeCatchup(frame, state.ledger.bytes, state.recent),
      );
      this.#out.push({ type: "send", to: peer.index, message });
    }
  }

  #onVote(sender: string, vote: Vote, body: Uint8Array): void {
    const current = frameAt(this.#nowMs, this.network.intervalMs);
    const name = this.#peerName(sender);
    // Votes for frame f are sent during frame f + 1; anything older than that allows is a replay.
    if (vote.frame > current + MAX_VOTE_LEAD_FRAMES || vote.frame < current - MAX_VOTE_AGE_FRAMES) {
      this.metrics.messagesDropped++;
      this.#event("dropped", {
        from: name,
        key: sender.slice(0, 16),
        frame: vote.frame,
        reason: "vote for a frame outside the window (stale or replayed)",
      });
      return;
    }
    if (vote.frame < this.#headFrame - KEEP_FRAMES || vote.frame > this.#headFrame + LEAD_FRAMES) return;
    const record = this.#frames.at(vote.frame);
    const recorded = recordVote(record.votes, sender, vote.hash);
    if (recorded === "conflict") {
      this.metrics.messagesDropped++;
      this.#proveLie(record.frame, sender, "second, different vote for the frame", [
        record.voteBodies.get(sender)!,
        body,
      ]);
      return;
    }
    if (recorded === "repeat") return;
    record.voteBodies.set(sender, body);
    const isBeta =
      this.network.servers[alphaIndex(vote.frame, this.network.servers.length)]!.keyHex === sender;
    if (isBeta) {
      // Pass the beta's signed message on: a server the beta missed still gets the buffer, and a beta
      // that sent different buffers to different servers is caught (a second vote = "lying").
      const message = [lengthPrefix(body.length), body];
      for (const peer of this.network.servers) {
        if (peer.index !== this.me.index && peer.keyHex !== sender) {
          this.#out.push({ type: "send", to: peer.index, message });
        }
      }
      if (record.betaBuffer === undefined) {
        const txs: Tx[] = [];
        for (let off = 0; off < vote.txBytes.length; off += TX_BYTES) {
          txs.push(decodeTx(vote.txBytes.slice(off, off + TX_BYTES))!);
        }
        record.betaBuffer = txs;
      }
    }
    const consensus = record.decided;
    if (consensus !== undefined) {
      if (vote.hash !== consensus) this.#logDisagreed(vote.frame, sender, vote.hash, consensus);
      if (vote.hash !== consensus && record.myVote === consensus) this.#sendCatchups(vote.frame);
      this.#logFrame(vote.frame, false);
    } else {
      this.#decide(vote.frame);
      this.#settle(vote.frame);
    }
    this.#advance();
  }

  /**
   * The set of verified transfers of the beta's buffer, or undefined when one signature does not verify:
   * that proves the beta dishonest, and every honest server then treats the whole buffer as empty. The
   * check stops at the first bad signature, so a flood of forged transfers costs one verification.
   */
  #checkBuffer(frame: number, txs: readonly Tx[]): WeakSet<Tx> | undefined {
    const verified = new WeakSet<Tx>();
    for (const [i, tx] of txs.entries()) {
      if (!verifyTx(tx, this.#verifier)) {
        const beta = this.network.servers[alphaIndex(frame, this.network.servers.length)]!;
        const body = this.#frames.get(frame)?.voteBodies.get(beta.keyHex);
        this.#proveLie(
          frame,
          beta.keyHex,
          `its buffer's transfer ${i} has a signature that does not verify`,
          body ? [body] : [],
        );
        return undefined;
      }
      verified.add(tx);
    }
    return verified;
  }

  /** Logs `sender` as lying, once per frame, and keeps the signed messages that prove it. */
  #proveLie(frame: number, sender: string, reason: string, bodies: readonly Uint8Array[]): void {
    const record = this.#frames.at(frame);
    if (record.liars.has(sender)) return;
    record.liars.add(sender);
    this.#event("lying", { from: this.#peerName(sender), key: sender.slice(0, 16), frame, reason });
    if (bodies.length === 0) return;
    const id = this.#nextWriteId++;
    this.#pendingWrites.set(id, { frame, hash: "", archived: undefined, evidence: true });
    this.#out.push({
      type: "persist",
      id,
      files: [{ name: `${EVIDENCE_PREFIX}${sender.slice(0, 16)}`, bytes: encodeEvidence(bodies) }],
      keep: this.#archiveKeep,
      commit: undefined,
    });
  }

  #onCatchup(sender: string, catchup: Catchup): void {
    const name = this.#peerName(sender);
    const record = this.#frames.get(catchup.frame);
    const consensus = record?.decided;
    if (consensus === undefined) {
      if (catchup.frame > this.#headFrame - KEEP_FRAMES && catchup.frame <= this.#headFrame + LEAD_FRAMES) {
        this.#frames.at(catchup.frame).pendingCatchups.set(sender, catchup);
      }
      return;
    }
    // A forged database is logged even when this replica does not need one.
    const checked = checkCatchup(catchup, consensus, this.network.supply);
    if ("problem" in checked) {
      this.metrics.messagesDropped++;
      this.#event("lying", {
        from: name,
        key: sender.slice(0, 16),
        frame: catchup.frame,
        reason: checked.problem,
      });
      return;
    }
    const needed = record!.myVote !== consensus && catchup.frame > this.#committed.frame;
    if (!needed) return;
    const state: State = { ledger: checked.ledger, recent: catchup.recent };
    this.metrics.catchupsReceived++;
    this.#event("catchup_received", {
      frame: catchup.frame,
      from: name,
      hash: consensus.slice(0, 12),
      accounts: checked.ledger.count,
    });
    // Forget what this replica applied on its wrong database; learn the recent ids of the right one.
    this.#txIndex.forget((e) => {
      const r = this.#frames.get(e.frame);
      return e.frame <= catchup.frame && r?.decided !== r?.myVote;
    });
    this.#txIndex.learn(catchup.recent);
    this.#txIndex.knownFromFrame = catchup.recent.length > 0 ? catchup.recent[0]!.frame : catchup.frame + 1;
    this.#state = state;
    this.#stateFrame = catchup.frame;
    this.#headFrame = catchup.frame;
    record!.state = state;
    record!.myVote = consensus;
    record!.settled = true;
    this.#commit(catchup.frame, state, consensus);
    record!.unlogged = true;
    this.#advance();
  }

  /** Handles a peer message; returns true when its signature is a listed server's. */
  #onPeerMessage(body: Uint8Array): boolean {
    const opened = openPeerMessage(
      body,
      (key) => this.#listed.has(key) && key !== this.me.keyHex,
      this.#verifier,
    );
    if ("problem" in opened) {
      this.metrics.messagesDropped++;
      this.#event("dropped", { key: opened.sender?.slice(0, 16), reason: opened.problem });
      return false;
    }
    let payload: Vote | Catchup;
    try {
      payload = decodePayload(opened.payload);
    } catch (err) {
      this.metrics.messagesDropped++;
      this.#event("dropped", { from: this.#peerName(opened.sender), reason: (err as Error).message });
      return true;
    }
    if (payload.code === 0) this.#onVote(opened.sender, payload, body);
    else this.#onCatchup(opened.sender, payload);
    return true;
  }

  #peerByKey(keyHex: string): Peer | undefined {
    return this.network.servers.find((s) => s.keyHex === keyHex);
  }

  #peerName(keyHex: string): string {
    return this.#peerByKey(keyHex)?.name ?? keyHex.slice(0, 8);
  }

  #event(event: EventName, fields: EventFields): void {
    this.#out.push({ type: "log", event, fields });
  }

  // ---- clients -----------------------------------------------------------------------------------

  #answer(request: number, response: Record<string, unknown>): void {
    this.#out.push({ type: "answer", request, response });
  }

  #reject(code: TxCode | ServerCode, extra: Record<string, unknown> = {}): Record<string, unknown> {
    this.metrics.txRejected[code] = (this.metrics.txRejected[code] ?? 0) + 1;
    this.#rejectedSinceLog.set(code, (this.#rejectedSinceLog.get(code) ?? 0) + 1);
    const reason = code in TX_CODES ? TX_CODES[code as TxCode] : SERVER_CODES[code as ServerCode];
    return { ok: false, code, reason, server: this.me.name, ...extra };
  }

  #submit(request: number, bytes: Uint8Array, relayed: boolean): void {
    const tx = decodeTx(bytes);
    if (tx === undefined) return this.#answer(request, this.#reject("malformed"));
    if (this.#noQuorum || this.#halted) {
      return this.#answer(request, this.#reject("no_quorum", { id: tx.id }));
    }
    const now = this.#nowMs;
    const frame = acceptingFrame(now, this.network.timing);
    const alpha = this.network.servers[alphaIndex(frame, this.network.servers.length)]!;
    if (alpha.index !== this.me.index) {
      if (relayed) return this.#answer(request, this.#reject("not_alpha", { id: tx.id, alpha: alpha.name }));
      // An answer after the frame stops accepting is useless: do not wait longer (a frozen alpha would
      // otherwise hold every client that reached another server).
      const endMs = frameStartMs(frame + 1, this.network.intervalMs) - this.network.timing.blackoutMs;
      this.#out.push({ type: "relay", request, to: alpha.index, bytes, timeoutMs: endMs - now });
      return;
    }
    if (frame <= this.#headFrame || frame > this.#headFrame + LEAD_FRAMES) {
      return this.#answer(request, this.#reject("not_alpha", { id: tx.id }));
    }
    const record = this.#frames.at(frame);
    record.alphaBuffer ??= newAlphaBuffer();
    const code = admit(record.alphaBuffer, tx, {
      nowMs: now,
      skewMs: this.network.timing.skewMs,
      state: this.#state,
      verifier: this.#verifier,
      seen: (id) =>
        this.#txIndex.get(id)?.code === "ok" ||
        this.#frames.records().some((r) => r.alphaBuffer?.ids.has(id) ?? false) ||
        this.#state.recent.some((r) => r.ids.has(id)),
    });
    if (code !== undefined) return this.#answer(request, this.#reject(code, { id: tx.id }));
    this.metrics.txAccepted++;
    this.#answer(request, { ok: true, id: tx.id, frame, server: this.me.name });
  }

  /** Healthy when this replica agreed with the consensus of the last frame that could be decided. */
  health(nowMs: number): { ok: boolean; reason: string } {
    const current = frameAt(nowMs, this.network.intervalMs);
    if (this.#noQuorum) return { ok: false, reason: "no majority of servers agrees (waiting for quorum)" };
    if (!this.#inSync) {
      return { ok: false, reason: "out of sync with the consensus; waiting for the database" };
    }
    if (this.#committed.frame < current - 3) {
      return {
        ok: false,
        reason: `last agreed frame ${this.#committed.frame} is behind the current frame ${current}`,
      };
    }
    return { ok: true, reason: `agreed on frame ${this.#committed.frame}` };
  }

  /** This replica's state as `coin status` and GET /status show it. */
  status(nowMs: number): Record<string, unknown> {
    const frame = frameAt(nowMs, this.network.intervalMs);
    const n = this.network.servers.length;
    const last = this.#frames.lastDecided();
    const consensus = last?.decided;
    return {
      ok: true,
      server: this.me.name,
      key: this.me.keyHex,
      network: this.network.id,
      quorum: this.network.quorum,
      dishonest: this.network.dishonest,
      frame,
      role: alphaIndex(frame, n) === this.me.index
        ? "alpha"
        : alphaIndex(frame - 1, n) === this.me.index
        ? "beta"
        : "other",
      alpha: this.network.servers[alphaIndex(acceptingFrame(nowMs, this.network.timing), n)]!.name,
      headFrame: this.#headFrame,
      committedFrame: this.#committed.frame,
      committedHash: this.#committed.hash,
      agree: consensus === undefined ? null : `${countOf(last!.votes, consensus)}/${n}`,
      agreeFrame: consensus === undefined ? null : last!.frame,
      peersSeen: consensus === undefined ? 0 : last!.votes.size,
      inSync: this.#inSync,
      noQuorum: this.#noQuorum,
      accounts: this.#committed.state.ledger.count,
      dbBytes: this.#committed.state.ledger.bytes.length,
      supply: this.#committed.state.ledger.supply,
      uptimeMs: nowMs - this.#startedMs,
      intervalMs: this.network.intervalMs,
      metrics: this.metrics,
    };
  }

  #balance(account: Uint8Array): Record<string, unknown> {
    return {
      ok: true,
      account: toHex(account),
      balance: this.#committed.state.ledger.balanceOf(account),
      frame: this.#committed.frame,
      hash: this.#committed.hash,
      inSync: this.#inSync,
      server: this.me.name,
    };
  }

  #txStatus(id: string, timestampMs: number): Record<string, unknown> {
    const entry = this.#txIndex.get(id);
    const base = { ok: true, id, server: this.me.name, committedFrame: this.#durable.frame };
    if (entry?.code === "ok" && entry.frame <= this.#durable.frame) {
      const record = this.#frames.get(entry.frame);
      const agreed = entry.fromCatchup === true ||
        (record !== undefined && record.decided === record.myVote) ||
        entry.frame <= this.#committed.frame;
      if (agreed) return { ...base, state: "committed", frame: entry.frame };
    }
    const last = lastFrameFor(timestampMs, this.network.timing);
    const first = last - this.#recentSpan() + 1;
    if (
      last <= this.#durable.frame && first >= this.#txIndex.knownFromFrame &&
      this.#durable.frame === this.#committed.frame
    ) {
      return { ...base, state: "never", code: entry?.code ?? "not_included", lastFrame: last };
    }
    return {
      ...base,
      state: "pending",
      lastFrame: last,
      ...(entry ? { code: entry.code, frame: entry.frame } : {}),
    };
  }

  #onRequest(request: number, kind: number, arg: Uint8Array): void {
    switch (kind) {
      case Kind.submit:
      case Kind.relay:
        return this.#submit(request, arg, kind === Kind.relay);
      case Kind.balance:
        if (arg.length !== 32) {
          return this.#answer(request, { ok: false, code: "malformed", reason: "an account id is 32 bytes" });
        }
        return this.#answer(request, this.#balance(arg));
      case Kind.status:
        return this.#answer(request, this.status(this.#nowMs));
      case Kind.txStatus: {
        if (arg.length !== 40) {
          return this.#answer(request, {
            ok: false,
            code: "malformed",
            reason: "a transfer query is 40 bytes",
          });
        }
        const t = new DataView(arg.buffer, arg.byteOffset + 32, 8).getBigUint64(0);
        return this.#answer(request, this.#txStatus(toHex(arg.subarray(0, 32)), Number(t)));
      }
      default:
        return this.#answer(request, {
          ok: false,
          code: "malformed",
          reason: `unknown request kind 0x${kind.toString(16)}`,
        });
    }
  }
}

/** Evidence files: `evidence.<first 16 hex digits of the key>`, the newest proof against that key. */
export const EVIDENCE_PREFIX = "evidence.";

/** Signed messages as evidence: each as its u32 length and its body (kind byte first). */
function encodeEvidence(bodies: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(bodies.reduce((n, b) => n + LENGTH_PREFIX_BYTES + b.length, 0));
  let off = 0;
  for (const b of bodies) {
    out.set(lengthPrefix(b.length), off);
    out.set(b, off + LENGTH_PREFIX_BYTES);
    off += LENGTH_PREFIX_BYTES + b.length;
  }
  return out;
}

function lengthPrefix(bytes: number): Uint8Array {
  const prefix = new Uint8Array(LENGTH_PREFIX_BYTES);
  new DataView(prefix.buffer).setUint32(0, bytes);
  return prefix;
}

function concatTxs(txs: Tx[]): Uint8Array {
  const out = new Uint8Array(txs.length * TX_BYTES);
  txs.forEach((tx, i) => out.set(tx.bytes, i * TX_BYTES));
  return out;
}
