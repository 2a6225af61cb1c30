// The replica: the whole frame protocol as a deterministic state machine. It takes inputs (the time, a
// peer message, a client request, a relay's answer, a completed write) and returns actions (send,
// broadcast, persist, log, answer, relay, halt). It never reads a clock, sets a timer, touches the
// network or the disk, awaits a promise or draws randomness: the same inputs give the same actions, so
// the same code runs in `coin serve` (lib/server.ts executes the actions) and in the simulator (lib/sim/).
//
// Frames are decided one after another, each by an agreement (lib/agreement.ts) among the servers that
// hold the certified state before it. A frame is committed only with a certificate, written to the
// archive with its complete state before any answer says "committed"; a server that falls behind adopts a
// newer certified state from any server. docs/protocol.md, 9, states every rule.

import { admit, type AlphaBuffer, newAlphaBuffer } from "./admission.ts";
import { Agreement, type Intent, MAX_ROUND, type VoteStep } from "./agreement.ts";
import { archiveName } from "./archive.ts";
import {
  type Certificate,
  checkCommit,
  Code,
  type Commit,
  commitFileHash,
  decodeCommit,
  encodeCommit,
  frameDigest,
  pendingPayload,
  proposalPayload,
  type Slot,
  startPayload,
  txsHash,
  VOTE_HEAD_BYTES,
  votePayload,
  wantPayload,
} from "./certificate.ts";
import { concatBytes, equalBytes, readU64, toHex, viewOf } from "./_bytes.ts";
import { type EventFields, type EventName, SERVER_CODES, type ServerCode } from "./events.ts";
import { acceptingFrame, alphaIndex, frameAt, frameContext, frameStartMs, lastFrameFor } from "./frames.ts";
import { HASH_BYTES } from "./hash.ts";
import { type Signer, type Verifier, verifySignature } from "./keys.ts";
import { apply, type State } from "./ledger.ts";
import type { Network, Peer } from "./peers.ts";
import { alphaLogName, type Recovered } from "./recovery.ts";
import { decodeTx, type Tx, TX_BYTES, TX_CODES, type TxCode, verifyTx } from "./tx.ts";
import { TxIndex } from "./tx_index.ts";
import { encodeVotes, VOTES_FILE, type VotesRecord } from "./votes_file.ts";
import {
  Kind,
  LENGTH_PREFIX_BYTES,
  MAX_FRAME_TXS,
  openPeerMessage,
  PEER_HEAD_BYTES,
  signPeerMessage,
} from "./wire.ts";

/** Frames the committed state may lag the clock before a server without a quorum stops (or waits). */
export const MAX_MISSED_FRAMES = 3;
/** Intervals a server behind its clock waits for its peers' certified state before judging the quorum lost. */
export const BEHIND_GRACE_INTERVALS = 2;
/** Frames after start during which missing consensus is expected (the others may still be starting). */
export const STARTUP_GRACE_FRAMES = 10;
/** An agreement whose first frame ended this many frames ago may skip to the newest ended frame. */
export const SKIP_AFTER_FRAMES = 4;
/** Rounds ahead of the current one a message may come from (a liar's huge round is dropped). */
export const MAX_ROUND_LEAD = 16;
/** Longest time-out of one step, in intervals. */
export const MAX_TIMEOUT_INTERVALS = 4;
/**
 * Intervals within which a server must have signed something new in this server's agreement to count as
 * taking part in it (a server signs a new vote at least every two time-outs, the longest being
 * MAX_TIMEOUT_INTERVALS each, however slow its rounds).
 */
export const TAKING_PART_INTERVALS = 2 * MAX_TIMEOUT_INTERVALS + 2;
/** Messages for later agreements kept, in all. */
export const MAX_HELD_MESSAGES = 256;
/**
 * With b = 0: verified commits of later frames held until they can be adopted safely (one whose next
 * commit chains to it, or the next frame's once this server's own agreement decides it).
 */
export const MAX_HELD_COMMITS = 4;
/** Frames ahead of the committed one for which an alpha keeps a buffer. */
export const LEAD_FRAMES = 8;
/**
 * Most transfers an alpha passes on at one commit when its buffer missed its frame (the rest are dropped,
 * logged): each is one relayed request.
 */
export const MAX_CARRIED_TXS = 50_000;
/**
 * Most transfers whose signatures a server keeps as checked ahead of the proposals that will hold them
 * (from the alphas' `pending` messages, docs/protocol.md 9.8): about 25 MB. Beyond it, transfers are checked
 * when their proposal comes, as without pending messages.
 */
export const MAX_PREVERIFIED_TXS = 100_000;

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
   * Write these files atomically, in order, then keep the newest `keep` archive entries; report the
   * outcome with `written(id, …)`.
   */
  | {
    readonly type: "persist";
    readonly id: number;
    readonly files: readonly {
      readonly name: string;
      readonly bytes: Uint8Array;
      readonly append?: boolean;
    }[];
    readonly keep: number | undefined;
    /** Files to delete once the others are written (alpha logs of committed frames). */
    readonly remove: readonly string[];
    /** The commit these files make durable (frame and database hash), if they are one (not votes or evidence). */
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
  /** Stop: the network lost its quorum. */
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
    /** The server whose proposal this is. */
    readonly proposer: number;
    /** True for a proposal of this server's own alpha buffer for the frame (not a re-proposal or a skip). */
    readonly ownBuffer: boolean;
    /** Every transfer of the proposal, and those of them that were applied. */
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
  /** Milliseconds from the end of the last committed frame to its certificate, as seen here. */
  lastConsensusMs: number;
  /** Rounds the last committed frame took (1: decided in round 0). */
  lastRounds: number;
  /** Transfers of others' proposals whose signatures were already checked from a pending message. */
  txPreverified: number;
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
  /** Stay up without a quorum, refusing transfers, instead of halting. */
  readonly waitForQuorum?: boolean;
  readonly archiveKeep?: number;
  /** Checks signatures; default verifySignature (the simulator passes a memo shared by its replicas). */
  readonly verifier?: Verifier;
  /** Measures durations for metrics only (never decides anything); default: always 0. */
  readonly stopwatch?: () => number;
  readonly trace?: (note: TraceNote) => void;
  /**
   * Simulator only: with b = 0, decide a certificate at once, as before the 2Δ rule was built, so that a
   * run can show what the rule prevents (`deno task sim --ablate-decide-wait`).
   */
  readonly ablateDecideWait?: boolean;
}

/** A proposal evaluated against the state before it. */
interface Evaluation {
  readonly frame: number;
  readonly txs: readonly Tx[];
  readonly digest: string;
  readonly txsDigest: Uint8Array;
  readonly state: State;
  readonly results: readonly ("ok" | TxCode)[];
}

/** The agreement this replica takes part in: the frame after its committed one. */
interface Instance {
  readonly slot: Omit<Slot, "round">;
  readonly agreement: Agreement;
  readonly startedMs: number;
  /** The first proposal of each round (from its proposer) and its body, kept as evidence. */
  readonly proposals: Map<number, { body: Uint8Array; frame: number; txs: readonly Tx[]; valid: boolean }>;
  readonly byDigest: Map<string, Evaluation>;
  /** Signed votes by `step:round:signer` (the first from each), and this server's own messages to send again. */
  readonly voteBodies: Map<string, Uint8Array>;
  /**
   * Signed prevotes by `round:signer:digest`: a dishonest server's two prevotes of a round are both here,
   * so the polka for a value holds its vote for that value, not its first.
   */
  readonly prevoteBodies: Map<string, Uint8Array>;
  readonly mine: Map<string, Uint8Array[]>;
  /** Senders already logged as lying here. */
  readonly liars: Set<number>;
  lastResendMs: number;
  /** When this server last sent a server behind in rounds its own votes of that round, by `peer:round`. */
  readonly helped: Map<string, number>;
  decided: { round: number; digest: string } | undefined;
}

/** A signed message of a peer, decoded far enough to route it. */
interface Routed {
  readonly code: number;
  readonly sender: number;
  readonly body: Uint8Array;
  readonly payload: Uint8Array;
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
  readonly #index: Map<string, number>;
  readonly #startedMs: number;
  readonly #deltaMs: number;
  readonly #ablateDecideWait: boolean;

  #nowMs: number;
  #out: Action[] = [];
  #committed: { frame: number; digest: string; state: State; commit: Commit | undefined };
  /** The commit before the committed one, when this server committed both (sent with it to servers behind). */
  #previousCommit: Commit | undefined;
  /** With b = 0: commits of later frames not adopted yet (see MAX_HELD_COMMITS). */
  #heldCommits: Commit[] = [];
  #durableFrame: number;
  #txIndex: TxIndex;
  #alpha = new Map<number, AlphaBuffer>();
  /** Per frame, the signature of each transfer (by id) that the frame's alpha passed on and that verified. */
  #preverified = new Map<number, Map<string, Uint8Array>>();
  #preverifiedCount = 0;
  /** The request id of the next carried transfer (#carry): negative, never a client's. */
  #nextCarryId = -1;
  #inst: Instance | undefined;
  /** The last decided agreement, still counting late precommits for its log line. */
  #prev: { instance: Instance; frame: number; committedMs: number; logged: boolean } | undefined;
  #held: Routed[] = [];
  /** What this server signed before it restarted, and up to which frame it must not sign (amnesia). */
  #votes: VotesRecord | undefined;
  #votesWrite: { inFlight: number | undefined; queued: OwnMessage[] } = {
    inFlight: undefined,
    queued: [],
  };
  #pendingWrites = new Map<
    number,
    | { kind: "votes"; batch: OwnMessage[] }
    | { kind: "commit"; frame: number; name: string }
    | { kind: "evidence"; frame: number }
    | { kind: "alpha"; batch: { request: number; response: Record<string, unknown> }[] }
  >();
  /** Accepted transfers waiting for their alpha log write before the answer "ok". */
  #alphaLog: {
    inFlight: number | undefined;
    queued: { frame: number; tx: Tx; request: number; response: Record<string, unknown> }[];
  } = { inFlight: undefined, queued: [] };
  /** Frames with an alpha log on disk. */
  #alphaLogs = new Set<number>();
  #nextWriteId = 1;
  #offered = new Map<number, { frame: number; atMs: number }>();
  #lastWantMs = -Infinity;
  #lastConsensus: { frame: number; agree: number; round: number } | undefined;
  #rejectedSinceLog = new Map<string, number>();
  #lastRejectLogFrame = -1;
  #noQuorum = false;
  #halted = false;
  /** Servers this one holds proof against (since it started): their proposals are not waited for. */
  #provenLiars = new Set<number>();
  /** When each other server's last signed message came (unix ms), to say who is silent when no quorum forms. */
  #heardMs = new Map<number, number>();
  /**
   * When each other server last showed that it takes part in this server's agreement (unix ms): a new
   * proposal or vote of it was counted. A replayed message is a repeat and shows nothing.
   */
  #takingPartMs = new Map<number, number>();
  /** Since when the committed frame lags the clock too far (unix ms), undefined while it does not. */
  #behindSinceMs: number | undefined;
  /** The committed frame when `#behindSinceMs` was set: the grace restarts when it moves. */
  #behindFrame = -1;
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
    lastConsensusMs: 0,
    lastRounds: 0,
    txPreverified: 0,
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
    this.#index = new Map(options.network.servers.map((s) => [s.keyHex, s.index]));
    this.#nowMs = options.nowMs;
    this.#startedMs = options.nowMs;
    this.#deltaMs = Math.max(1, Math.floor(this.network.intervalMs / 4));
    this.#ablateDecideWait = options.ablateDecideWait ?? false;
    const r = options.recovered;
    this.#committed = { frame: r.frame, digest: r.digest, state: r.state, commit: r.commit };
    this.#previousCommit = r.previous;
    this.#durableFrame = r.frame;
    const span = this.#recentSpan();
    // From the genesis everything is known: no frame before the first holds a transfer.
    this.#txIndex = new TxIndex(r.commit === undefined ? Number.MIN_SAFE_INTEGER : r.frame - span + 1);
    this.#txIndex.learn(r.state.recent);
    // The transfers accepted before a restart are back in their buffers, as promised.
    for (const [frame, txs] of r.alpha) {
      const buffer = newAlphaBuffer();
      for (const tx of txs) {
        if (buffer.ids.has(tx.id)) continue;
        buffer.txs.push(tx);
        buffer.ids.add(tx.id);
        const payer = toHex(tx.payer);
        const payee = toHex(tx.payee);
        buffer.deltas.set(payer, (buffer.deltas.get(payer) ?? 0) - tx.amount);
        buffer.deltas.set(payee, (buffer.deltas.get(payee) ?? 0) + tx.amount);
      }
      this.#alpha.set(frame, buffer);
      this.#alphaLogs.add(frame);
    }
    for (const name of r.staleAlpha) this.#alphaLogs.add(Number(name.slice(name.indexOf(".") + 1)));
    let floor: number | undefined;
    if (r.votes === "lost") {
      // Whatever this server signed before is unknown: it signs nothing in an agreement on a frame that
      // could have ended before it started (its clock within the skew of the one it had then). The rule
      // is written down at once, so a restart that finds no vote after it knows it signed nothing since.
      floor = frameAt(options.nowMs + this.network.timing.skewMs, this.network.intervalMs);
      this.#votes = {
        height: floor,
        prevDigest: r.digest,
        memory: {
          round: 0,
          lockedRound: -1,
          lockedDigest: undefined,
          lockedByCertificate: false,
          validRound: -1,
          validDigest: undefined,
          signed: [],
          proposed: [],
        },
        locked: undefined,
        polka: [],
      };
      this.#writeVotes(this.#votes, []);
    } else {
      this.#votes = r.votes;
    }
    this.#event("start", {
      frame: frameAt(options.nowMs, this.network.intervalMs),
      listen: `${me.host}:${me.port}`,
      loaded: r.loaded ?? "genesis",
      committed: r.frame,
      digest: r.digest.slice(0, 12),
      accounts: r.state.ledger.count,
      servers: this.network.servers.length,
      quorum: this.network.quorum,
      network: this.network.id.slice(0, 16),
      interval_ms: this.network.intervalMs,
      ...(r.votes === "lost" ? { votes: "lost" } : {}),
    });
    // Said only when it matters: the next frame ended before this server could be sure of its votes.
    if (floor !== undefined && floor > r.frame + 1) {
      this.#event("amnesic", {
        reason: r.fresh ? "empty data directory" : "votes file missing or damaged",
        signs_from_frame: floor,
        detail: "this server may have voted before and will not vote for those frames again; " +
          "it waits for a certified state from its peers",
      });
    }
  }

  // ---- inputs ------------------------------------------------------------------------------------

  /** The actions queued so far (the start event), and none after. */
  drain(): Action[] {
    const out = this.#out;
    this.#out = [];
    return out;
  }

  /** The clock reached `nowMs`: start the next agreement when due, fire time-outs, resend what is lost. */
  tick(nowMs: number): Action[] {
    this.#at(nowMs);
    if (!this.#halted) {
      this.#advance();
      if (this.#inst !== undefined) this.#handle(this.#inst.agreement.tick(nowMs));
      this.#resend();
      this.#judge();
    }
    return this.drain();
  }

  /** When the replica next needs a tick. */
  nextTickMs(nowMs: number): number {
    const I = this.network.intervalMs;
    const h = this.#committed.frame + 1;
    let next = nowMs + this.#deltaMs;
    const end = frameStartMs(h + 1, I);
    if (this.#inst === undefined && end > nowMs) next = Math.min(next, end);
    const deadline = this.#inst?.agreement.nextDeadlineMs();
    if (deadline !== undefined && deadline > nowMs) next = Math.min(next, deadline);
    return next + 1;
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
    if (write.kind === "evidence") {
      if (error !== undefined) this.#event("error_archive", { frame: write.frame, error });
    } else if (write.kind === "alpha") {
      this.#alphaLog.inFlight = undefined;
      if (error !== undefined) {
        // Accepted transfers that are not on disk are never answered "ok": a restart would lose them.
        this.#halt(`Cannot write the alpha log: ${error}`);
        return this.drain();
      }
      for (const { request, response } of write.batch) {
        this.metrics.txAccepted++;
        this.#answer(request, response);
      }
      this.#flushAlpha();
    } else if (write.kind === "votes") {
      this.#votesWrite.inFlight = undefined;
      if (error !== undefined) {
        // A vote that is not on disk is never sent: a restart could otherwise sign a different one.
        this.#halt(`Cannot write the votes file: ${error}`);
        return this.drain();
      }
      for (const item of write.batch) {
        const inst = this.#inst;
        if ("proposal" in item) {
          this.#out.push({ type: "broadcast", message: item.send, greeting: item.greeting });
          if (inst?.slot.height === item.height) inst.mine.set(`proposal:${item.proposal}`, item.send);
          continue;
        }
        this.#out.push({ type: "broadcast", message: item.send, greeting: true });
        if (inst?.slot.height === item.own.height) {
          const { step, round, digest, signature } = item.own;
          inst.mine.set(`${step}:${round}`, item.send);
          this.#keepVote(
            inst,
            step,
            round,
            this.me.index,
            digest,
            concatBytes(item.send).subarray(LENGTH_PREFIX_BYTES),
          );
          this.#handle(inst.agreement.vote(nowMs, step, round, this.me.index, digest, signature).intents);
        } else if (item.own.step === "precommit" && this.#prev?.instance.slot.height === item.own.height) {
          // Decided before this server's own precommit was on disk: it still counts in agree=K/N.
          const key = `precommit:${item.own.round}:${this.me.index}`;
          const bodies = this.#prev.instance.voteBodies;
          if (!bodies.has(key)) bodies.set(key, concatBytes(item.send).subarray(LENGTH_PREFIX_BYTES));
          this.#maybeLogConsensus();
        }
      }
      this.#flushVotes();
    } else {
      if (error !== undefined) {
        // The commit is not durable: it is never answered as committed, and the next frame waits.
        this.#halt(`Cannot write archive entry for frame ${write.frame}: ${error}`);
        return this.drain();
      }
      this.#event("archived", {
        frame: write.frame,
        file: write.name.slice(0, 12) + "…" + write.name.slice(64),
      });
      if (write.frame > this.#durableFrame) this.#durableFrame = write.frame;
      this.#advance();
      this.#useHeldCommits();
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

  /** The last committed frame, its digest and state. */
  get committed(): { readonly frame: number; readonly state: State; readonly hash: string } {
    return { frame: this.#committed.frame, state: this.#committed.state, hash: this.#committed.digest };
  }

  /** The frame of the agreement in progress (or the next one). */
  get headFrame(): number {
    return this.#committed.frame + 1;
  }

  /** The state the next frame applies to. */
  get state(): State {
    return this.#committed.state;
  }

  get halted(): boolean {
    return this.#halted;
  }

  /** The buffer this replica holds as alpha of `frame`, if any. */
  alphaBuffer(frame: number): readonly Tx[] {
    return this.#alpha.get(frame)?.txs ?? [];
  }

  // ---- the frame clock ---------------------------------------------------------------------------

  /**
   * Starts the agreement on the frame after the committed one once that frame ended and the commit is
   * durable. The frame ended when this server's clock says so, or, within the skew before that, when b + 1
   * other servers sent messages of its agreement (at least one honest server's clock says it ended): a
   * beta whose clock is behind would otherwise propose after the others gave up waiting, every frame. Each
   * server tells the beta when it starts (a `start` message), since before their round-0 deadline the others
   * send nothing else it could count.
   */
  #advance(): void {
    if (this.#halted || this.#inst !== undefined) return;
    if (this.#durableFrame < this.#committed.frame) return;
    const h = this.#committed.frame + 1;
    const I = this.network.intervalMs;
    const end = frameStartMs(h + 1, I);
    if (this.#nowMs < end) {
      if (this.#nowMs < end - this.network.timing.skewMs) return;
      const started = new Set(this.#held.filter((m) => heightOf(m.payload) === h).map((m) => m.sender));
      if (started.size < this.network.dishonest + 1) return;
    }
    const slot = { height: h, prevDigest: this.#committed.digest };
    const n = this.network.servers.length;
    const first = alphaIndex(h, n);
    let canSign = true;
    let restored = undefined;
    if (this.#votes !== undefined) {
      if (h < this.#votes.height) canSign = false;
      else if (h === this.#votes.height) {
        const memory = this.#votes.memory;
        if (memory.signed.length > 0 || memory.proposed.length > 0) {
          if (this.#votes.prevDigest === slot.prevDigest) restored = memory;
          else canSign = false;
        }
      }
    }
    const cap = MAX_TIMEOUT_INTERVALS * I;
    const byDigest = new Map<string, Evaluation>();
    const agreement = new Agreement({
      n,
      me: this.me.index,
      quorum: this.network.quorum,
      dishonest: this.network.dishonest,
      proposer: (round) => (first + round) % n,
      timeoutMs: (round) => Math.min(cap, this.#deltaMs * (round + 1)),
      // Round 0 waits for the beta from the frame's end, plus the clock error tolerated between servers,
      // and at least as long from now: an agreement that starts late (the one before it took a second
      // round) still gives its beta the time to propose.
      round0DeadlineMs: Math.max(end, this.#nowMs) + 2 * this.#deltaMs,
      provenLiar: (server) => this.#provenLiars.has(server),
      holds: (digest) => byDigest.has(digest),
      canSign,
      restored,
      // With b = 0 one liar can complete two certificates: one decides only after standing 2Δ unopposed.
      decideWaitMs: this.network.dishonest === 0 && !this.#ablateDecideWait ? 2 * this.#deltaMs : undefined,
    });
    const inst: Instance = {
      slot,
      agreement,
      startedMs: this.#nowMs,
      proposals: new Map(),
      byDigest,
      voteBodies: new Map(),
      prevoteBodies: new Map(),
      mine: new Map(),
      liars: new Set(),
      lastResendMs: this.#nowMs,
      helped: new Map(),
      decided: undefined,
    };
    this.#inst = inst;
    // The proposal this server locked on before a restart: it may have to propose it again.
    const locked = restored !== undefined ? this.#votes?.locked : undefined;
    if (locked !== undefined) this.#evaluate(inst, locked.frame, locked.txs, first, undefined);
    if (!canSign) {
      this.#event("waiting", {
        frame: h,
        reason: "this server may have voted for this frame before and lost that vote; it only listens",
      });
    }
    // The votes signed before a restart count again and are sent again (Ed25519 is deterministic: the
    // same payload gives the same signed message).
    for (const v of restored?.signed ?? []) {
      const message = this.#sign([
        votePayload(v.step, this.network.id, { ...slot, round: v.round }, v.digest),
      ]);
      const body = concatBytes(message).subarray(LENGTH_PREFIX_BYTES);
      inst.mine.set(`${v.step}:${v.round}`, message);
      this.#keepVote(inst, v.step, v.round, this.me.index, v.digest, body);
      agreement.vote(this.#nowMs, v.step, v.round, this.me.index, v.digest, body.slice(33, 97));
    }
    // The others' prevotes that justify the restored valid value count again, as if they came again.
    for (const body of restored !== undefined ? this.#votes?.polka ?? [] : []) {
      if (toHex(body.subarray(1, 33)) !== this.me.keyHex) this.#onPeerMessage(body);
    }
    this.#handle(agreement.start(this.#nowMs));
    // The beta learns that this server started: with b others' it starts too, though its clock is behind.
    if (first !== this.me.index) {
      this.#out.push({ type: "send", to: first, message: this.#sign([startPayload(this.network.id, slot)]) });
    }
    // Messages that came before this agreement started.
    const held = this.#held;
    this.#held = [];
    for (const m of held) this.#route(m);
    this.#useHeldCommits();
  }

  /** Carries out what the agreement asks. */
  #handle(intents: readonly Intent[]): void {
    for (const intent of intents) {
      const inst = this.#inst;
      if (inst === undefined) return;
      if (intent.type === "propose") this.#propose(inst, intent.round, intent.polRound, intent.validDigest);
      else if (intent.type === "vote") this.#signVote(inst, intent.step, intent.round, intent.digest);
      else this.#decided(inst, intent.round, intent.digest);
      if (this.#inst !== inst) return;
    }
  }

  #propose(inst: Instance, round: number, polRound: number, validDigest: string | undefined): void {
    const h = inst.slot.height;
    const I = this.network.intervalMs;
    let frame = h;
    let txs: readonly Tx[] = [];
    let verified: WeakSet<Tx> | undefined;
    const valid = validDigest === undefined ? undefined : inst.byDigest.get(validDigest);
    if (valid !== undefined) {
      frame = valid.frame;
      txs = valid.txs;
    } else {
      polRound = -1;
      if (this.#nowMs >= frameStartMs(h + 1 + SKIP_AFTER_FRAMES, I)) {
        // Long past its frame, the agreement skips to the newest ended frame with nothing in it: deciding
        // every frame of an outage one by one would take longer than the outage.
        frame = frameAt(this.#nowMs, I) - 1;
      } else {
        const buffer = this.#alpha.get(h);
        const beta = inst.proposals.get(0);
        if (buffer !== undefined && alphaIndex(h, this.network.servers.length) === this.me.index) {
          txs = buffer.txs;
          verified = buffer.verified;
        } else if (beta !== undefined && beta.frame === h && beta.valid) {
          txs = beta.txs;
        }
      }
    }
    const body = this.#sign(proposalPayload(this.network.id, { ...inst.slot, round }, polRound, frame, txs));
    inst.proposals.set(round, {
      body: concatBytes(body).subarray(LENGTH_PREFIX_BYTES),
      frame,
      txs,
      valid: true,
    });
    // The prevotes that justify proposing the valid value again go first.
    if (polRound >= 0) this.#sendBodies(this.#polka(inst));
    // Sent once the votes file holds this round: after a crash the agreement resumes there and proposes
    // nothing in it, so no second, different proposal of the round (a lie to the others) is ever signed.
    this.#votesWrite.queued.push({
      send: body,
      height: inst.slot.height,
      proposal: round,
      greeting: txs.length === 0,
    });
    const evaluation = this.#evaluate(inst, frame, txs, this.me.index, verified, verified !== undefined);
    this.#handle(inst.agreement.proposal(this.#nowMs, round, polRound, evaluation?.digest));
    this.#flushVotes(); // with the prevote on it, when it came at once: one write for both
  }

  /** Signs a vote, writes it to the votes file, and sends it (and counts it) once written. */
  #signVote(inst: Instance, step: VoteStep, round: number, digest: string): void {
    const payload = votePayload(step, this.network.id, { ...inst.slot, round }, digest);
    const message = this.#sign([payload]);
    const signature = message[0]!.subarray(LENGTH_PREFIX_BYTES + 1 + 32, LENGTH_PREFIX_BYTES + 1 + 32 + 64);
    this.#votesWrite.queued.push({
      send: message,
      own: { height: inst.slot.height, step, round, digest, signature: signature.slice() },
    });
    this.#flushVotes();
  }

  /** Writes the votes file for everything queued, unless a write is already in flight (one at a time). */
  #flushVotes(): void {
    const w = this.#votesWrite;
    if (w.inFlight !== undefined || w.queued.length === 0) return;
    const inst = this.#inst;
    // Votes of an agreement already decided are not sent: only the current one's are written.
    const batch = w.queued.filter((q) => ("proposal" in q ? q.height : q.own.height) === inst?.slot.height);
    w.queued = [];
    if (inst === undefined || batch.length === 0) return;
    const memory = inst.agreement.memory();
    const lockedDigest = memory.validDigest ?? memory.lockedDigest;
    const locked = lockedDigest === undefined ? undefined : inst.byDigest.get(lockedDigest);
    const record: VotesRecord = {
      height: inst.slot.height,
      prevDigest: inst.slot.prevDigest,
      memory,
      locked: locked === undefined
        ? undefined
        : { frame: locked.frame, digest: locked.digest, txs: locked.txs },
      polka: this.#polka(inst).map((body) => body.slice()),
    };
    this.#votes = record;
    this.#writeVotes(record, batch);
  }

  #writeVotes(record: VotesRecord, batch: OwnMessage[]): void {
    const id = this.#nextWriteId++;
    this.#votesWrite.inFlight = id;
    this.#pendingWrites.set(id, { kind: "votes", batch });
    this.#out.push({
      type: "persist",
      id,
      files: [{ name: VOTES_FILE, bytes: encodeVotes(record) }],
      keep: undefined,
      remove: [],
      commit: undefined,
    });
  }

  /**
   * The signed prevotes of a quorum for the valid value in its round, which justify proposing it again
   * (and a lock on it): kept in the votes file and sent again every Δ, so that they outlive the restarts
   * of the servers that saw them.
   */
  #polka(inst: Instance): Uint8Array[] {
    const { validRound, validDigest } = inst.agreement.memory();
    if (validRound < 0 || validDigest === undefined) return [];
    const bodies: Uint8Array[] = [];
    for (const signer of inst.agreement.prevoters(validRound, validDigest)) {
      const body = inst.prevoteBodies.get(`${validRound}:${signer}:${validDigest}`);
      if (body !== undefined) bodies.push(body);
    }
    return bodies;
  }

  /**
   * `peer` still votes in `round`, before this server's: it is sent this server's own votes of that round
   * (at most once per Δ). Each server sends only its current round's votes again, so without this, servers
   * left behind in a round whose votes they lost wait for ever while the others wait in a later round for
   * them (fewer than b + 1 ahead cannot pull them along).
   */
  #helpBehind(inst: Instance, peer: number, round: number): void {
    const key = `${peer}:${round}`;
    const last = inst.helped.get(key);
    if (last !== undefined && this.#nowMs < last + this.#deltaMs) return;
    inst.helped.set(key, this.#nowMs);
    for (const step of ["prevote", "precommit"] as const) {
      const message = inst.mine.get(`${step}:${round}`);
      if (message !== undefined) this.#out.push({ type: "send", to: peer, message });
    }
  }

  /** Keeps a counted vote's signed body: the first of each signer by step and round, every prevote by value. */
  #keepVote(
    inst: Instance,
    step: VoteStep,
    round: number,
    signer: number,
    digest: string,
    body: Uint8Array,
  ): void {
    const key = `${step}:${round}:${signer}`;
    if (!inst.voteBodies.has(key)) inst.voteBodies.set(key, body);
    if (step === "prevote") inst.prevoteBodies.set(`${round}:${signer}:${digest}`, body);
  }

  /** Sends `bodies` (signed peer messages) to every other server but their signers, each on its own. */
  #sendBodies(bodies: readonly Uint8Array[]): void {
    for (const body of bodies) {
      const signer = this.#index.get(toHex(body.subarray(1, 1 + HASH_BYTES)));
      const message = [lengthPrefix(body.length), body];
      for (const peer of this.network.servers) {
        if (peer.index !== this.me.index && peer.index !== signer) {
          this.#out.push({ type: "send", to: peer.index, message });
        }
      }
    }
  }

  #decided(inst: Instance, round: number, digest: string): void {
    inst.decided = { round, digest };
    const evaluation = inst.byDigest.get(digest);
    const held = this.#heldFor(inst, digest);
    if (evaluation === undefined && held !== undefined) {
      // Decided on a certificate that came with a catch-up: its certified state is the frame's.
      this.#adoptHeld(held);
      return;
    }
    if (evaluation === undefined) {
      // A quorum certified a proposal this server never saw: fetch the certified state instead.
      this.#want(true);
      return;
    }
    const cert: Certificate = {
      ...inst.slot,
      round,
      digest,
      signatures: inst.agreement.certificate(round, digest),
    };
    this.#commit(
      { frame: evaluation.frame, state: evaluation.state, txsDigest: evaluation.txsDigest, cert },
      evaluation,
      inst,
    );
  }

  /**
   * Commits a certified frame: writes its archive entry, moves the committed state on, and records the
   * outcome of its transfers (from the evaluation here, or from the recent ids of an adopted state).
   */
  #commit(commit: Commit, evaluation: Evaluation | undefined, inst: Instance | undefined): void {
    const frame = commit.frame;
    if (frame <= this.#committed.frame) {
      throw new Error(`Invariant broken: committing frame ${frame} after frame ${this.#committed.frame}`);
    }
    if (commit.cert.prevDigest !== this.#committed.digest && evaluation !== undefined) {
      throw new Error("Invariant broken: a decided frame does not chain to the committed one");
    }
    if (commit.state.ledger.supply !== this.network.supply) {
      throw new Error(`Invariant broken: committed supply ${commit.state.ledger.supply}`);
    }
    const chunks = encodeCommit(this.network.id, commit);
    const name = archiveName(commitFileHash(chunks), frameStartMs(frame, this.network.intervalMs));
    const id = this.#nextWriteId++;
    this.#pendingWrites.set(id, { kind: "commit", frame, name });
    this.#out.push({
      type: "persist",
      id,
      files: [{ name, bytes: concatBytes(chunks) }],
      keep: this.#archiveKeep,
      remove: this.#staleAlphaLogs(frame),
      commit: { frame, hash: commit.state.ledger.hash },
    });
    const span = this.#recentSpan();
    if (evaluation !== undefined) {
      evaluation.txs.forEach((tx, i) => this.#txIndex.judge(tx.id, frame, evaluation.results[i]!));
      this.metrics.txCommitted += evaluation.results.filter((r) => r === "ok").length;
    } else {
      // Adopted: the certified recent ids tell what was applied in the frames they cover; frames between
      // the old committed one and those are unknown here.
      if (this.#committed.frame < frame - span) this.#txIndex.knownFromFrame = frame - span + 1;
      this.#txIndex.learn(commit.state.recent);
    }
    const end = frameStartMs(frame + 1, this.network.intervalMs);
    this.metrics.framesAgreed++;
    this.metrics.lastConsensusMs = Math.max(0, this.#nowMs - end);
    this.metrics.lastRounds = commit.cert.round + 1;
    if (this.#prev !== undefined && !this.#prev.logged) this.#logConsensus(this.#prev);
    const before = this.#committed.commit;
    this.#previousCommit = before?.cert.digest === commit.cert.prevDigest ? before : undefined;
    this.#committed = { frame, digest: commit.cert.digest, state: commit.state, commit };
    this.#heldCommits = this.#heldCommits.filter((c) => c.frame > frame);
    for (const [f, pre] of this.#preverified) {
      if (f > frame) continue;
      this.#preverifiedCount -= pre.size;
      this.#preverified.delete(f);
    }
    this.#trace?.({ type: "committed", frame, hash: commit.state.ledger.hash, state: commit.state });
    const missed: Tx[] = [];
    for (const [f, buffer] of this.#alpha) {
      if (f > frame) continue;
      for (const tx of buffer.txs) if (this.#txIndex.get(tx.id) === undefined) missed.push(tx);
      this.#alpha.delete(f);
    }
    if (this.#noQuorum) this.#event("quorum_back", { frame, digest: commit.cert.digest.slice(0, 12) });
    this.#noQuorum = false;
    this.#prev = inst === undefined || evaluation === undefined
      ? undefined
      : { instance: inst, frame, committedMs: this.#nowMs, logged: false };
    if (evaluation === undefined) {
      this.#event("catchup_received", {
        frame,
        digest: commit.cert.digest.slice(0, 12),
        accounts: commit.state.ledger.count,
      });
    } else if (this.#prev !== undefined) {
      this.#maybeLogConsensus();
    }
    this.#inst = undefined;
    this.#txIndex.prune(frame - Math.max(2 * LEAD_FRAMES, 4 * span));
    if (missed.length > 0) this.#carry(frame, missed);
  }

  /**
   * Transfers this server accepted as alpha that the agreed frames left out (its proposal came too late,
   * or a frame was skipped) go to the alpha of the frame accepting now, as a relayed submit would: "ok"
   * promised they are in a buffer, and the clients still wait on them. Each is judged again there.
   */
  #carry(frame: number, missed: readonly Tx[]): void {
    const carried = missed.slice(0, MAX_CARRIED_TXS);
    this.#event("carried", { frame, transfers: carried.length, dropped: missed.length - carried.length });
    for (const tx of carried) this.#submit(this.#nextCarryId--, tx.bytes, false);
  }

  /** Logs the consensus line of the last decided frame once every server's precommit came, or later. */
  #maybeLogConsensus(): void {
    const p = this.#prev;
    if (p === undefined || p.logged) return;
    const d = p.instance.decided!;
    const agree = p.instance.agreement.certificate(d.round, d.digest).length;
    const all = this.#countPrecommits(p.instance, d.round, d.digest);
    if (all >= this.network.servers.length) this.#logConsensus(p);
    else if (agree === 0) p.logged = true;
  }

  #countPrecommits(inst: Instance, round: number, digest: string): number {
    let n = 0;
    for (const [key, body] of inst.voteBodies) {
      if (!key.startsWith(`precommit:${round}:`)) continue;
      if (body.length >= VOTE_HEAD_BYTES && this.#digestOf(body) === digest) n++;
    }
    return n;
  }

  #digestOf(body: Uint8Array): string {
    const payload = body.subarray(1 + 32 + 64);
    return toHex(payload.subarray(VOTE_HEAD_BYTES, VOTE_HEAD_BYTES + HASH_BYTES));
  }

  #logConsensus(p: { instance: Instance; frame: number; committedMs: number; logged: boolean }): void {
    p.logged = true;
    const d = p.instance.decided!;
    const agree = this.#countPrecommits(p.instance, d.round, d.digest);
    const evaluation = p.instance.byDigest.get(d.digest)!;
    const n = this.network.servers.length;
    this.#lastConsensus = { frame: p.frame, agree, round: d.round };
    const applied = evaluation.results.filter((r) => r === "ok").length;
    const rejected: Record<string, number> = {};
    for (const r of evaluation.results) if (r !== "ok") rejected[r] = (rejected[r] ?? 0) + 1;
    this.#event("consensus", {
      frame: p.frame,
      agree: `${agree}/${n}`,
      digest: d.digest.slice(0, 12),
      round: d.round,
      txs: evaluation.txs.length,
      applied,
      rejected: Object.entries(rejected).map(([c, k]) => `${c}:${k}`).join(",") || undefined,
      // From the frame's end to its certificate, as seen here.
      decided_ms: Math.max(0, p.committedMs - frameStartMs(p.frame + 1, this.network.intervalMs)),
      ...(p.frame !== p.instance.slot.height ? { skipped_from: p.instance.slot.height } : {}),
    });
  }

  /**
   * Checks and applies a proposal; undefined when it is invalid (a bad signature proves its proposer
   * dishonest: checking stops there and the signed proposal is kept as evidence).
   */
  #evaluate(
    inst: Instance,
    frame: number,
    txs: readonly Tx[],
    proposer: number,
    verified: WeakSet<Tx> | undefined,
    ownBuffer = false,
  ): Evaluation | undefined {
    const h = inst.slot.height;
    const I = this.network.intervalMs;
    if (frame < h || txs.length > MAX_FRAME_TXS) return undefined;
    // A frame that has not ended (allowing the clock error tolerated) cannot be decided yet.
    const skew = this.network.timing.skewMs;
    if (frameStartMs(frame + 1, I) > this.#nowMs + skew) return undefined;
    // Skipping frames is for an agreement long past its frame, and skips with nothing in them.
    if (frame > h && (txs.length > 0 || this.#nowMs + skew < frameStartMs(h + 1 + SKIP_AFTER_FRAMES, I))) {
      return undefined;
    }
    const checked = verified ?? new WeakSet<Tx>();
    if (verified === undefined) {
      const pre = this.#preverified.get(frame);
      for (const [i, tx] of txs.entries()) {
        const signature = pre?.get(tx.id);
        if (signature !== undefined && equalBytes(signature, tx.signature)) {
          this.metrics.txPreverified++;
          checked.add(tx);
          continue;
        }
        if (!verifyTx(tx, this.#verifier)) {
          if (proposer === this.me.index) {
            throw new Error(
              "Invariant broken: this server proposed a transfer whose signature does not verify",
            );
          }
          const round = [...inst.proposals].find(([, p]) => p.txs === txs)?.[0];
          const body = round === undefined ? undefined : inst.proposals.get(round)?.body;
          this.#proveLie(
            inst,
            proposer,
            `its proposal's transfer ${i} has a signature that does not verify`,
            body ? [body] : [],
          );
          return undefined;
        }
        checked.add(tx);
      }
    }
    const t0 = this.#stopwatch();
    const result = apply(this.#committed.state, txs, {
      ...frameContext(frame, this.network.timing),
      verified: checked,
      verifier: this.#verifier,
    });
    const t1 = this.#stopwatch();
    const txsDigest = txsHash(txs);
    const digest = frameDigest(this.network.id, frame, inst.slot.prevDigest, result.state, txsDigest);
    this.metrics.lastApplyMs = t1 - t0;
    this.metrics.lastHashMs = this.#stopwatch() - t1;
    this.metrics.framesProcessed++;
    const evaluation: Evaluation = {
      frame,
      txs,
      digest,
      txsDigest,
      state: result.state,
      results: result.results,
    };
    if (!inst.byDigest.has(digest)) inst.byDigest.set(digest, evaluation);
    this.#trace?.({
      type: "applied",
      frame,
      parentFrame: this.#committed.frame,
      parentHash: this.#committed.state.ledger.hash,
      parent: this.#committed.state,
      state: result.state,
      proposer,
      ownBuffer,
      txIds: txs.map((tx) => tx.id),
      appliedIds: txs.filter((_, i) => result.results[i] === "ok").map((tx) => tx.id),
    });
    return evaluation;
  }

  /** Without a quorum for too long: stop (or refuse transfers while waiting). */
  #judge(): void {
    const I = this.network.intervalMs;
    const current = frameAt(this.#nowMs, I);
    if (this.#rejectedSinceLog.size > 0 && current > this.#lastRejectLogFrame) {
      // One line per frame, not one per refusal: a flood of bad transfers must not flood the log.
      const codes = [...this.#rejectedSinceLog].map(([c, n]) => `${c}:${n}`).join(",");
      this.#rejectedSinceLog.clear();
      this.#lastRejectLogFrame = current;
      this.#event("rejected_transfers", { frame: current, codes });
    }
    const p = this.#prev;
    if (p !== undefined && !p.logged && this.#nowMs >= p.committedMs + this.#deltaMs) this.#logConsensus(p);
    const lag = current - 1 - this.#committed.frame;
    const starting = this.#nowMs < this.#startedMs + STARTUP_GRACE_FRAMES * I ||
      current <= this.network.startFrame + STARTUP_GRACE_FRAMES;
    if (lag <= MAX_MISSED_FRAMES + 1 || starting) {
      this.#behindSinceMs = undefined;
      return;
    }
    if (this.#noQuorum && (this.#waitForQuorum || this.#quorumTakingPart())) return;
    // Behind the clock: maybe the network lost its quorum, maybe this process was frozen or cut off while
    // the others went on. Ask for their certified state, and judge only if it does not come. A certified
    // state that did come (the committed frame moved) starts the grace again: a server catching up under load
    // is behind, not without a quorum, and must not stop while the others commit.
    if (this.#behindSinceMs === undefined || this.#behindFrame !== this.#committed.frame) {
      this.#behindSinceMs = this.#nowMs;
      this.#behindFrame = this.#committed.frame;
    }
    this.#want(false);
    if (this.#nowMs < this.#behindSinceMs + BEHIND_GRACE_INTERVALS * I) return;
    this.metrics.framesMissed = lag;
    const reason = `no quorum (${this.network.quorum} of ${this.network.servers.length}) certified a frame ` +
      `since frame ${this.#committed.frame} (digest ${
        this.#committed.digest.slice(0, 12)
      }), ${lag} frames ago; ${this.#whoIsHeard()}`;
    this.#event("no_consensus", {
      frame: this.#committed.frame + 1,
      round: this.#inst?.agreement.round ?? 0,
      need: this.network.quorum,
      missed: lag,
    });
    // A quorum of servers still voting is not a lost quorum: they are slow to agree (rounds grow longer
    // after a long outage), and stopping them one after the other, as each grace ran out, kept every round
    // from finishing for good. Only a server without a quorum taking part stops.
    if (!this.#waitForQuorum && !this.#quorumTakingPart()) {
      if (this.metrics.framesAgreed === 0 && this.#committed.commit === undefined) {
        // It never had consensus (still at the genesis, none agreed since it started): nothing was lost,
        // it is waiting for the others.
        const seconds = Math.round((this.#nowMs - this.#startedMs) / 1000);
        this.#halt(
          `No quorum since this server started ${seconds} s ago: a frame needs ${this.network.quorum} of ` +
            `${this.network.servers.length} servers and none was agreed; ${this.#whoIsHeard()}; stopping. ` +
            `Start the other servers and check that they reach each other, or keep this one waiting for them ` +
            `with --wait-for-quorum`,
        );
        return;
      }
      this.#halt(`Consensus lost: ${reason}; stopping rather than fork (--wait-for-quorum waits instead)`);
      return;
    }
    this.#noQuorum = true;
    this.#event("no_quorum", {
      reason,
      action: this.#waitForQuorum
        ? "refusing transfers until a quorum agrees"
        : "a quorum of servers takes part in the agreement, so it waits for them to agree instead of " +
          "stopping; refusing transfers until they do",
    });
  }

  /**
   * This server and the others that signed something new in its agreement lately make a quorum. Proven
   * liars do not count; up to b unproven ones can still keep it waiting (it refuses transfers meanwhile).
   */
  #quorumTakingPart(): boolean {
    const since = this.#nowMs - TAKING_PART_INTERVALS * this.network.intervalMs;
    let count = 1;
    for (const [index, at] of this.#takingPartMs) {
      if (index !== this.me.index && at >= since && !this.#provenLiars.has(index)) count++;
    }
    return count >= this.network.quorum;
  }

  /** Sends again what may have been lost: this server's messages of the current round, and wants. */
  #resend(): void {
    const inst = this.#inst;
    if (inst !== undefined && this.#nowMs >= inst.lastResendMs + this.#deltaMs) {
      inst.lastResendMs = this.#nowMs;
      const round = inst.agreement.round;
      for (const step of ["prevote", "precommit"] as const) {
        // Only votes already written are in `mine`.
        const message = inst.mine.get(`${step}:${round}`);
        if (message !== undefined) this.#out.push({ type: "broadcast", message, greeting: true });
      }
      // A server that had seen them may have restarted since: without them a lock is never given up.
      this.#sendBodies(this.#polka(inst));
      const proposal = inst.mine.get(`proposal:${round}`);
      if (proposal !== undefined) {
        // Only to the servers that have not voted in this round: the proposal can be large.
        for (const peer of this.network.servers) {
          if (peer.index === this.me.index) continue;
          if (!inst.voteBodies.has(`prevote:${round}:${peer.index}`)) {
            this.#out.push({ type: "send", to: peer.index, message: proposal });
          }
        }
      }
      if (inst.decided !== undefined) this.#want(true);
    }
    // Messages held for a later agreement than the next one: this server is behind.
    const next = this.#committed.frame + 1;
    if (this.#held.some((m) => heightOf(m.payload) > next)) this.#want(false);
  }

  /** Asks for a certified state newer than the committed one (at most once per Δ). */
  #want(force: boolean): void {
    if (!force && this.#nowMs < this.#lastWantMs + this.#deltaMs) return;
    if (this.#nowMs < this.#lastWantMs + this.#deltaMs / 2) return;
    this.#lastWantMs = this.#nowMs;
    this.#out.push({
      type: "broadcast",
      message: this.#sign([wantPayload(this.network.id, this.#committed.frame + 1)]),
      greeting: true,
    });
  }

  /** Sends the committed state to `peer`, which is behind (once per frame and Δ). */
  #offer(peer: number): void {
    const commit = this.#committed.commit;
    if (commit === undefined) return;
    const last = this.#offered.get(peer);
    if (last !== undefined && last.frame === commit.frame && this.#nowMs < last.atMs + this.#deltaMs) return;
    this.#offered.set(peer, { frame: commit.frame, atMs: this.#nowMs });
    this.metrics.catchupsSent++;
    this.#event("catchup_sent", { frame: commit.frame, to: this.network.servers[peer]!.name });
    // With b = 0 a certificate alone does not show a decision: the commit before, which the newest
    // certificate chains to, is one (an honest server signed on top of it), and goes first.
    const previous = this.#previousCommit;
    if (this.network.dishonest === 0 && previous !== undefined) {
      this.#out.push({
        type: "send",
        to: peer,
        message: this.#sign(encodeCommit(this.network.id, previous)),
      });
    }
    this.#out.push({ type: "send", to: peer, message: this.#sign(encodeCommit(this.network.id, commit)) });
  }

  /** Which other servers were heard from in the last few frames, and which were silent. */
  #whoIsHeard(): string {
    const since = this.#nowMs - (MAX_MISSED_FRAMES + 1) * this.network.intervalMs;
    const others = this.network.servers.filter((s) => s.index !== this.me.index);
    const heard = others.filter((s) => (this.#heardMs.get(s.index) ?? -Infinity) >= since).map((s) => s.name);
    const silent = others.filter((s) => !heard.includes(s.name)).map((s) => s.name);
    if (silent.length === 0) return `heard from every other server (${heard.join(", ")})`;
    return heard.length === 0
      ? `heard from no other server (${silent.join(", ")})`
      : `heard from ${heard.join(", ")}; silent: ${silent.join(", ")}`;
  }

  #halt(reason: string): void {
    this.#event("halt", { frame: this.#committed.frame + 1, reason });
    this.#halted = true;
    this.#out.push({ type: "halt", reason });
  }

  #recentSpan(): number {
    return frameContext(0, this.network.timing).recentFrames;
  }

  #sign(payload: Uint8Array[]): Uint8Array[] {
    return signPeerMessage(this.me.key, this.#signer, payload);
  }

  // ---- peer messages -------------------------------------------------------------------------------

  /** Handles a peer message; returns true when its signature is a listed server's. */
  #onPeerMessage(body: Uint8Array): boolean {
    const opened = openPeerMessage(
      body,
      (key) => this.#index.has(key) && key !== this.me.keyHex,
      this.#verifier,
    );
    if ("problem" in opened) {
      this.metrics.messagesDropped++;
      this.#event("dropped", { key: opened.sender?.slice(0, 16), reason: opened.problem });
      return false;
    }
    const sender = this.#index.get(opened.sender)!;
    this.#heardMs.set(sender, this.#nowMs);
    const payload = opened.payload;
    const code = payload[0]!;
    if (payload.length < 1 + HASH_BYTES || toHex(payload.subarray(1, 1 + HASH_BYTES)) !== this.network.id) {
      this.metrics.messagesDropped++;
      this.#event("dropped", {
        from: this.network.servers[sender]!.name,
        reason: "it runs another network (its network id differs: compare peers.json)",
      });
      return true;
    }
    this.#route({ code, sender, body, payload });
    return true;
  }

  #drop(sender: number, reason: string): void {
    this.metrics.messagesDropped++;
    this.#event("dropped", { from: this.network.servers[sender]!.name, reason });
  }

  #route(m: Routed): void {
    const { code, sender, payload } = m;
    if (code === Code.commit) return this.#onCommit(sender, payload);
    if (code === Code.pending) return this.#onPending(sender, payload);
    if (code === Code.want) {
      if (payload.length !== 1 + HASH_BYTES + 8) return this.#drop(sender, "want has the wrong length");
      const height = readU64(viewOf(payload), 1 + HASH_BYTES);
      if (this.#committed.frame >= height) this.#offer(sender);
      return;
    }
    if (code !== Code.proposal && code !== Code.prevote && code !== Code.precommit && code !== Code.start) {
      return this.#drop(sender, `unknown payload code ${code}`);
    }
    if (code === Code.start && payload.length !== VOTE_HEAD_BYTES) {
      return this.#drop(sender, "start has the wrong length");
    }
    if (
      code !== Code.start && payload.length < VOTE_HEAD_BYTES + (code === Code.proposal ? 12 : HASH_BYTES)
    ) {
      return this.#drop(sender, "message is shorter than its head");
    }
    const view = viewOf(payload);
    const height = readU64(view, 1 + HASH_BYTES);
    const round = view.getUint32(1 + HASH_BYTES + 8);
    const prevDigest = toHex(payload.subarray(1 + HASH_BYTES + 12, VOTE_HEAD_BYTES));
    const h = this.#committed.frame + 1;
    if (height < h) {
      const p = this.#prev;
      if (p !== undefined && height === p.instance.slot.height && code === Code.precommit) {
        this.#countLate(p.instance, m, round);
      }
      // The sender is behind: it is still deciding a frame committed here.
      if (
        p === undefined || height < p.instance.slot.height || this.#nowMs >= p.committedMs + this.#deltaMs
      ) {
        this.#offer(sender);
      }
      return;
    }
    if (height > h || this.#inst === undefined) {
      // A later agreement (this server is behind, or has not reached the frame's end yet): held, bounded.
      if (this.#held.length >= MAX_HELD_MESSAGES) this.#held.shift();
      this.#held.push(m);
      if (height > h) this.#want(false);
      else this.#advance();
      return;
    }
    if (code === Code.start) return; // this server started already: nothing more to learn from it
    const inst = this.#inst;
    if (prevDigest !== inst.slot.prevDigest) {
      return this.#drop(sender, `its frame ${height} builds on another state than the one certified here`);
    }
    if (round > MAX_ROUND || round > inst.agreement.round + MAX_ROUND_LEAD) {
      // Too far ahead to count, but a vote against a certificate must be seen (b = 0's rule): the agreement
      // keeps its value.
      if (
        round <= MAX_ROUND && (code === Code.prevote || code === Code.precommit) &&
        m.payload.length === VOTE_HEAD_BYTES + HASH_BYTES
      ) {
        inst.agreement.farVote(sender, toHex(m.payload.subarray(VOTE_HEAD_BYTES)));
      }
      return this.#drop(sender, `round ${round} is too far ahead`);
    }
    if (code === Code.proposal) this.#onProposal(inst, m, round);
    else this.#onVote(inst, m, code === Code.prevote ? "prevote" : "precommit", round);
  }

  /**
   * Transfers the alpha of a frame accepted: their signatures are checked now, while the frame runs, so
   * that the proposal holding them is judged without checking them again. It changes no outcome, only when
   * the work is done.
   */
  #onPending(sender: number, payload: Uint8Array): void {
    const head = 1 + HASH_BYTES + 8;
    if (payload.length < head || (payload.length - head) % TX_BYTES !== 0) {
      return this.#drop(sender, "pending transfers are not whole");
    }
    const frame = readU64(viewOf(payload), 1 + HASH_BYTES);
    if (alphaIndex(frame, this.network.servers.length) !== sender) {
      return this.#drop(sender, `it is not the alpha of frame ${frame}`);
    }
    // Only frames not committed yet and not past the next one to accept transfers: the window is bounded.
    if (frame <= this.#committed.frame || frame > frameAt(this.#nowMs, this.network.intervalMs) + 1) return;
    let pre = this.#preverified.get(frame);
    for (let at = head; at < payload.length; at += TX_BYTES) {
      if (this.#preverifiedCount >= MAX_PREVERIFIED_TXS) return;
      const tx = decodeTx(payload.slice(at, at + TX_BYTES))!;
      if (pre?.has(tx.id)) continue;
      if (!verifyTx(tx, this.#verifier)) {
        return this.#drop(
          sender,
          `pending transfer ${tx.id.slice(0, 12)} has a signature that does not verify`,
        );
      }
      if (pre === undefined) this.#preverified.set(frame, pre = new Map());
      pre.set(tx.id, tx.signature);
      this.#preverifiedCount++;
    }
  }

  #countLate(inst: Instance, m: Routed, round: number): void {
    const key = `precommit:${round}:${m.sender}`;
    if (!inst.voteBodies.has(key)) inst.voteBodies.set(key, m.body);
    this.#maybeLogConsensus();
  }

  #onProposal(inst: Instance, m: Routed, round: number): void {
    const n = this.network.servers.length;
    const proposer = (alphaIndex(inst.slot.height, n) + round) % n;
    if (m.sender !== proposer) return this.#drop(m.sender, `it is not the proposer of round ${round}`);
    const earlier = inst.proposals.get(round);
    if (earlier !== undefined) {
      if (!equalBytes(earlier.body, m.body)) {
        this.#proveLie(inst, m.sender, `second, different proposal for round ${round}`, [
          earlier.body,
          m.body,
        ]);
      }
      return;
    }
    const p = m.payload;
    const view = viewOf(p);
    const polWord = view.getUint32(VOTE_HEAD_BYTES);
    const polRound = polWord === 0xffff_ffff ? -1 : polWord;
    const frame = readU64(view, VOTE_HEAD_BYTES + 4);
    const txBytes = p.subarray(VOTE_HEAD_BYTES + 12);
    if (txBytes.length % TX_BYTES !== 0 || txBytes.length / TX_BYTES > MAX_FRAME_TXS || frame < 0) {
      return this.#drop(m.sender, "proposal's transfers are not whole or too many");
    }
    const txs: Tx[] = [];
    for (let off = 0; off < txBytes.length; off += TX_BYTES) {
      txs.push(decodeTx(txBytes.slice(off, off + TX_BYTES))!);
    }
    const proposal = { body: m.body, frame, txs, valid: false };
    inst.proposals.set(round, proposal);
    this.#takingPartMs.set(m.sender, this.#nowMs);
    if (round === 0) {
      // Pass the beta's signed proposal on: a server it missed still gets the buffer, and a later
      // proposer can propose it again instead of an empty frame.
      const message = [lengthPrefix(m.body.length), m.body];
      for (const peer of this.network.servers) {
        if (peer.index !== this.me.index && peer.index !== m.sender) {
          this.#out.push({ type: "send", to: peer.index, message });
        }
      }
    }
    let digest: string | undefined;
    if (polRound >= round) digest = undefined;
    else digest = this.#evaluate(inst, frame, txs, m.sender, undefined)?.digest;
    proposal.valid = digest !== undefined;
    this.#handle(inst.agreement.proposal(this.#nowMs, round, polRound, digest));
  }

  /** A vote; `live` false for one taken from a catch-up's certificate (it shows no one takes part now). */
  #onVote(inst: Instance, m: Routed, step: VoteStep, round: number, live = true): void {
    if (m.payload.length !== VOTE_HEAD_BYTES + HASH_BYTES) {
      return this.#drop(m.sender, "vote has the wrong length");
    }
    const digest = toHex(m.payload.subarray(VOTE_HEAD_BYTES));
    const signature = m.body.subarray(1 + 32, 1 + 32 + 64);
    const key = `${step}:${round}:${m.sender}`;
    if (round < inst.agreement.round && m.sender !== this.me.index) this.#helpBehind(inst, m.sender, round);
    const { outcome, intents } = inst.agreement.vote(
      this.#nowMs,
      step,
      round,
      m.sender,
      digest,
      signature.slice(),
    );
    if (outcome === "conflict") {
      const first = inst.voteBodies.get(key);
      this.#proveLie(
        inst,
        m.sender,
        `second, different ${step} for round ${round}`,
        first ? [first, m.body] : [m.body],
      );
    }
    if (outcome !== "repeat") {
      if (live && m.sender !== this.me.index) this.#takingPartMs.set(m.sender, this.#nowMs);
      this.#keepVote(inst, step, round, m.sender, digest, m.body);
      // Relay every counted vote once: a quorum one server saw, every server sees.
      const message = [lengthPrefix(m.body.length), m.body];
      for (const peer of this.network.servers) {
        if (peer.index !== this.me.index && peer.index !== m.sender) {
          this.#out.push({ type: "send", to: peer.index, message });
        }
      }
    }
    this.#handle(intents);
  }

  #onCommit(sender: number, payload: Uint8Array): void {
    let decoded;
    try {
      decoded = decodeCommit(payload);
    } catch (err) {
      return this.#drop(sender, `commit does not parse: ${(err as Error).message}`);
    }
    const { commit } = decoded;
    if (commit.frame <= this.#committed.frame) return;
    const problem = checkCommit(this.network, decoded.networkId, commit, this.#verifier);
    const name = this.network.servers[sender]!.name;
    if (problem !== undefined) {
      this.metrics.messagesDropped++;
      this.#event("lying", {
        from: name,
        key: this.network.servers[sender]!.keyHex.slice(0, 16),
        frame: commit.frame,
        reason: `its certified state is not: ${problem}`,
      });
      return;
    }
    if (this.#conflictsWithCommitted(commit)) return this.#refuseConflicting(sender, commit);
    if (this.network.dishonest === 0) {
      this.#holdCommit(commit);
      return;
    }
    if (this.#durableFrame < this.#committed.frame) return; // the last commit is still being written
    this.metrics.catchupsReceived++;
    this.#prev = undefined;
    this.#commit(commit, undefined, undefined);
  }

  /**
   * With b = 0 a liar can complete a certificate for a value that was never decided (its precommit and
   * an honest server's of an earlier round). A verified commit of a later frame is therefore held, and
   * adopted only when a held commit's certificate chains to it (one honest server committed it and
   * signed on top of it), or when it is for the frame this server decides now: its certificate's
   * precommits then count as votes, relayed like any, and decide under the 2Δ rule.
   */
  #holdCommit(commit: Commit): void {
    const held = this.#heldCommits.filter((c) =>
      c.frame !== commit.frame || c.cert.digest !== commit.cert.digest
    );
    held.push(commit);
    held.sort((a, b) => a.frame - b.frame);
    this.#heldCommits = held.slice(-MAX_HELD_COMMITS);
    this.#useHeldCommits();
  }

  /** The held commit of `digest` for the height `inst` decides, if one came. */
  #heldFor(inst: Instance, digest: string): Commit | undefined {
    return this.#heldCommits.find((c) =>
      c.cert.digest === digest && c.cert.prevDigest === inst.slot.prevDigest
    );
  }

  /**
   * A certified state that builds on the state of this server's committed frame or an earlier one, but not
   * on the committed frame itself: a second certified history, which only more dishonest servers than the
   * network tolerates (or, with b = 0, one beyond the timing bound) can make. Adopting it would undo a
   * committed frame. (A state further ahead, built on frames not seen here, cannot be checked this way.)
   */
  #conflictsWithCommitted(commit: Commit): boolean {
    const c = this.#committed;
    return commit.cert.height < c.frame + 1 ||
      (commit.cert.height === c.frame + 1 && commit.cert.prevDigest !== c.digest);
  }

  #refuseConflicting(sender: number | undefined, commit: Commit): void {
    const reason = `its certified frame ${commit.frame} builds on another state than frame ` +
      `${this.#committed.frame} committed here: two certified histories (more dishonest servers than the ` +
      `network tolerates); not adopted`;
    if (sender !== undefined) return this.#drop(sender, reason);
    this.metrics.messagesDropped++;
    this.#event("dropped", { reason });
  }

  #adoptHeld(commit: Commit): void {
    // Held while it could not be checked (this server was further behind): checked again now.
    if (this.#conflictsWithCommitted(commit)) {
      this.#heldCommits = this.#heldCommits.filter((c) => c !== commit);
      return this.#refuseConflicting(undefined, commit);
    }
    this.metrics.catchupsReceived++;
    this.#prev = undefined;
    this.#commit(commit, undefined, undefined);
  }

  #useHeldCommits(): void {
    if (this.#heldCommits.length === 0) return;
    if (this.#durableFrame < this.#committed.frame) return; // again once the last commit is written
    const held = this.#heldCommits;
    // The newest held commit that a later held one chains to.
    for (let i = held.length - 1; i >= 0; i--) {
      const c = held[i]!;
      if (c.frame <= this.#committed.frame) continue;
      if (!held.some((d) => d.frame > c.frame && d.cert.prevDigest === c.cert.digest)) continue;
      this.#adoptHeld(c);
      return;
    }
    const inst = this.#inst;
    if (inst === undefined) return;
    const decided = inst.decided;
    if (decided !== undefined) {
      // Decided here on a proposal never seen: the certified state of that value, when it came.
      const c = this.#heldFor(inst, decided.digest);
      if (c !== undefined) this.#adoptHeld(c);
      return;
    }
    for (const c of held) {
      // Counted again on each call: a precommit already counted is a repeat, and changes nothing.
      if (c.cert.prevDigest !== inst.slot.prevDigest) continue;
      const slot = { height: c.cert.height, round: c.cert.round, prevDigest: c.cert.prevDigest };
      const payload = votePayload("precommit", this.network.id, slot, c.cert.digest);
      for (const { signer, signature } of c.cert.signatures) {
        const body = new Uint8Array(PEER_HEAD_BYTES + payload.length);
        body[0] = Kind.peer;
        body.set(this.network.servers[signer]!.key, 1);
        body.set(signature, 1 + HASH_BYTES);
        body.set(payload, PEER_HEAD_BYTES);
        this.#onVote(
          inst,
          { code: Code.precommit, sender: signer, body, payload: body.subarray(PEER_HEAD_BYTES) },
          "precommit",
          c.cert.round,
          false,
        );
        if (this.#inst !== inst) return;
      }
    }
  }

  /** Logs `sender` as lying, once per agreement, and keeps the signed messages that prove it. */
  #proveLie(inst: Instance, sender: number, reason: string, bodies: readonly Uint8Array[]): void {
    this.#provenLiars.add(sender);
    if (inst.liars.has(sender)) return;
    inst.liars.add(sender);
    const peer = this.network.servers[sender]!;
    const frame = inst.slot.height;
    this.#event("lying", { from: peer.name, key: peer.keyHex.slice(0, 16), frame, reason });
    if (bodies.length === 0) return;
    const id = this.#nextWriteId++;
    this.#pendingWrites.set(id, { kind: "evidence", frame });
    this.#out.push({
      type: "persist",
      id,
      files: [{ name: `${EVIDENCE_PREFIX}${peer.keyHex.slice(0, 16)}`, bytes: encodeEvidence(bodies) }],
      keep: undefined,
      remove: [],
      commit: undefined,
    });
  }

  #event(event: EventName, fields: EventFields): void {
    this.#out.push({ type: "log", event, fields });
  }

  // ---- clients -----------------------------------------------------------------------------------

  #answer(request: number, response: Record<string, unknown>): void {
    // A negative request is this server's own carried transfer (#carry): no client waits on it.
    if (request < 0) return;
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
    if (frame < this.network.startFrame) {
      const starts = new Date(frameStartMs(this.network.startFrame, this.network.intervalMs)).toISOString();
      return this.#answer(request, this.#reject("not_started", { id: tx.id, starts }));
    }
    const alpha = this.network.servers[alphaIndex(frame, this.network.servers.length)]!;
    if (alpha.index !== this.me.index) {
      if (relayed) return this.#answer(request, this.#reject("not_alpha", { id: tx.id, alpha: alpha.name }));
      // An answer after the frame stops accepting is useless: do not wait longer (a frozen alpha would
      // otherwise hold every client that reached another server).
      const endMs = frameStartMs(frame + 1, this.network.intervalMs) - this.network.timing.blackoutMs;
      this.#out.push({ type: "relay", request, to: alpha.index, bytes, timeoutMs: endMs - now });
      return;
    }
    const next = this.#inst === undefined ? this.#committed.frame + 1 : this.#inst.slot.height + 1;
    if (frame < next || frame > this.#committed.frame + LEAD_FRAMES) {
      return this.#answer(request, this.#reject("not_alpha", { id: tx.id }));
    }
    let buffer = this.#alpha.get(frame);
    if (buffer === undefined) this.#alpha.set(frame, buffer = newAlphaBuffer());
    const code = admit(buffer, tx, {
      nowMs: now,
      skewMs: this.network.timing.skewMs,
      state: this.#committed.state,
      verifier: this.#verifier,
      seen: (id) =>
        this.#txIndex.get(id)?.code === "ok" ||
        [...this.#alpha.values()].some((b) => b.ids.has(id)) ||
        this.#committed.state.recent.some((r) => r.ids.has(id)),
    });
    if (code !== undefined) return this.#answer(request, this.#reject(code, { id: tx.id }));
    // "ok" is a promise that the transfer is in this frame's buffer: it is answered once on disk.
    this.#alphaLog.queued.push({
      frame,
      tx,
      request,
      response: { ok: true, id: tx.id, frame, server: this.me.name },
    });
    this.#flushAlpha();
  }

  /** Appends every queued transfer to its frame's alpha log, one write at a time (a group commit). */
  #flushAlpha(): void {
    const log = this.#alphaLog;
    if (log.inFlight !== undefined || log.queued.length === 0) return;
    const batch = log.queued;
    log.queued = [];
    const byFrame = new Map<number, Uint8Array[]>();
    for (const q of batch) {
      let list = byFrame.get(q.frame);
      if (list === undefined) byFrame.set(q.frame, list = []);
      list.push(q.tx.bytes);
      this.#alphaLogs.add(q.frame);
    }
    // The other servers check these signatures now rather than when the proposal comes (protocol.md 9.8).
    for (const [frame, chunks] of byFrame) {
      this.#out.push({
        type: "broadcast",
        message: this.#sign(pendingPayload(this.network.id, frame, chunks)),
        greeting: false,
      });
    }
    const id = this.#nextWriteId++;
    log.inFlight = id;
    this.#pendingWrites.set(id, {
      kind: "alpha",
      batch: batch.map(({ request, response }) => ({ request, response })),
    });
    this.#out.push({
      type: "persist",
      id,
      files: [...byFrame].map(([frame, chunks]) => ({
        name: alphaLogName(frame),
        bytes: concatBytes(chunks),
        append: true,
      })),
      keep: undefined,
      remove: [],
      commit: undefined,
    });
  }

  /** Alpha logs of frames up to `frame`: no longer needed once it is committed. */
  #staleAlphaLogs(frame: number): string[] {
    const out: string[] = [];
    for (const f of this.#alphaLogs) {
      if (f <= frame) {
        out.push(alphaLogName(f));
        this.#alphaLogs.delete(f);
      }
    }
    return out;
  }

  /** Healthy when this replica committed a recent frame and a quorum is there. */
  health(nowMs: number): { ok: boolean; reason: string } {
    const current = frameAt(nowMs, this.network.intervalMs);
    if (current < this.network.startFrame) {
      const starts = new Date(frameStartMs(this.network.startFrame, this.network.intervalMs)).toISOString();
      return { ok: false, reason: `the network's first frame begins at ${starts}` };
    }
    if (this.#noQuorum) return { ok: false, reason: "no quorum of servers agrees (waiting for quorum)" };
    if (this.#committed.frame < current - 3) {
      return {
        ok: false,
        reason: `last certified frame ${this.#committed.frame} is behind the current frame ${current}`,
      };
    }
    return { ok: true, reason: `certified frame ${this.#committed.frame}` };
  }

  /** This replica's state as `coin status` and GET /status show it. */
  status(nowMs: number): Record<string, unknown> {
    const frame = frameAt(nowMs, this.network.intervalMs);
    const n = this.network.servers.length;
    const last = this.#lastConsensus;
    const inSync = this.#committed.frame >= frame - 3;
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
      headFrame: this.#committed.frame + 1,
      round: this.#inst?.agreement.round ?? 0,
      committedFrame: this.#committed.frame,
      committedHash: this.#committed.digest,
      durableFrame: this.#durableFrame,
      agree: last === undefined ? null : `${last.agree}/${n}`,
      agreeFrame: last === undefined ? null : last.frame,
      peersSeen: last === undefined ? 0 : last.agree,
      inSync,
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
      hash: this.#committed.state.ledger.hash,
      digest: this.#committed.digest,
      inSync: this.#committed.frame >= frameAt(this.#nowMs, this.network.intervalMs) - 3,
      server: this.me.name,
    };
  }

  #txStatus(id: string, timestampMs: number): Record<string, unknown> {
    const entry = this.#txIndex.get(id);
    const durable = this.#durableFrame;
    const base = { ok: true, id, server: this.me.name, committedFrame: durable };
    if (entry?.code === "ok" && entry.frame <= durable) {
      return { ...base, state: "committed", frame: entry.frame };
    }
    const last = lastFrameFor(timestampMs, this.network.timing);
    const first = last - this.#recentSpan() + 1;
    // "never" only when every frame the transfer could be applied in is durably committed here and this
    // server knows the whole of each of them.
    if (last <= durable && first >= this.#txIndex.knownFromFrame) {
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

/** This server's own vote, counted once it is on disk. */
interface OwnVote {
  readonly height: number;
  readonly step: VoteStep;
  readonly round: number;
  readonly digest: string;
  readonly signature: Uint8Array;
}

/** A signed vote or proposal of this server's, sent once the votes file written after it is on disk. */
type OwnMessage =
  | { readonly send: Uint8Array[]; readonly own: OwnVote }
  | {
    readonly send: Uint8Array[];
    readonly height: number;
    readonly proposal: number;
    readonly greeting: boolean;
  };

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

/** The height of a proposal or vote payload (0 for anything shorter). */
function heightOf(payload: Uint8Array): number {
  return payload.length >= VOTE_HEAD_BYTES ? readU64(viewOf(payload), 1 + HASH_BYTES) : 0;
}
