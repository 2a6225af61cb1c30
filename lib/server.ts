// A coin server: the frame clock, the alpha's transfer buffer, the beta's broadcast, votes and
// consensus, catch-up of out-of-sync servers, the archive, and the client requests on the same port.
// No global state: a test can run several Server objects in one process.

import { equalBytes, fromHex, toHex } from "./_bytes.ts";
import { sha256, sha256Hex } from "./hash.ts";
import { CORRUPT_SUFFIX, loadNewestEntry, removeStaleTemporaries, writeArchiveEntry } from "./archive.ts";
import { REQUEST_TIMEOUT_MS, ServerConnection } from "./client.ts";
import { Tally } from "./consensus.ts";
import { CoinError, ConsensusLostError } from "./errors.ts";
import { acceptingFrame, alphaIndex, frameAt, frameContext, frameStartMs, lastFrameFor } from "./frames.ts";
import type { KeyPair } from "./keys.ts";
import { apply, genesisState, Ledger, type RecentIds, type State } from "./ledger.ts";
import type { Logger } from "./log.ts";
import type { Network, Peer } from "./peers.ts";
import { PeerLink } from "./_peer_link.ts";
import { writeFileAtomic } from "./_files.ts";
import {
  checkTimestamp,
  checkTxStateless,
  decodeTx,
  type Tx,
  TX_BYTES,
  TX_CODES,
  type TxCode,
} from "./tx.ts";
import {
  type Catchup,
  decodePayload,
  encodeCatchup,
  encodePeerMessage,
  encodeResponse,
  encodeVote,
  Kind,
  LENGTH_PREFIX_BYTES,
  MAX_CLIENT_MESSAGE_BYTES,
  MAX_FRAME_TXS,
  MAX_PEER_MESSAGE_BYTES,
  MessageReader,
  MessageWriter,
  openPeerMessage,
  ProtocolError,
  type Vote,
} from "./wire.ts";

/** Most simultaneous TCP connections; past it the least recently active one is closed. */
export const MAX_CONNECTIONS = 256;
/** A connection that sends nothing for this long is closed (at least 3 frames for peers). */
export const MIN_IDLE_TIMEOUT_MS = 10_000;
/** Bytes a client connection may leave unread in responses before it is dropped. */
export const MAX_CLIENT_QUEUED_BYTES = 4 * 1024 * 1024;
/** Read buffer of each connection (a client request is at most MAX_CLIENT_MESSAGE_BYTES). */
export const CONNECTION_BUFFER_BYTES = 8 * 1024;
/** Above this many bytes of unwritten responses, a client's next requests wait (are not read). */
export const CLIENT_PAUSE_QUEUED_BYTES = 64 * 1024;
/** Consecutive frames without consensus after which a server stops (or, waiting, refuses transfers). */
export const MAX_MISSED_FRAMES = 3;
/** Frames after start during which missing consensus is expected (the others may still be starting). */
export const STARTUP_GRACE_FRAMES = 10;
/** Frames of votes, states and buffers kept in memory. */
export const KEEP_FRAMES = 8;
/** Messages at least this large are announced in the log when they start to arrive. */
export const LARGE_MESSAGE_LOG_BYTES = 4 * 1024 * 1024;
/** Votes are accepted for frames from current - AGE to current + LEAD (clock skew included). */
export const MAX_VOTE_AGE_FRAMES = 2;
export const MAX_VOTE_LEAD_FRAMES = 2;
/** Shortest wait for the alpha's answer to a relayed transfer. */
export const RELAY_MIN_TIMEOUT_MS = 500;
/** A server this many frames behind its clock skips ahead and waits for a catch-up. */
export const MAX_LAG_FRAMES = 3;
/**
 * File in the archive directory holding the recent transfer ids of the last agreed database, so a
 * server restarted within a transfer's time window still refuses its replay (docs/protocol.md, 6).
 */
export const RECENT_IDS_FILE = "recent-ids";

/** Reasons a transfer is refused by the server rather than by the ledger rules. */
export const SERVER_CODES = {
  no_quorum: "no majority of servers agrees right now; transfers are refused until one does",
  not_alpha: "this server is not the alpha of the current frame",
  alpha_unreachable: "the current alpha server cannot be reached; try again next frame",
  frame_full: `this frame's buffer already holds ${MAX_FRAME_TXS} transfers; try again next frame`,
} as const;

/** Options of a server. */
export interface ServerOptions {
  network: Network;
  keyPair: KeyPair;
  /** Holds archive/ and anything else the server keeps. */
  dataDir: string;
  logger: Logger;
  /** Stay up without a majority, refusing transfers, instead of stopping with status 3. */
  waitForQuorum?: boolean;
  archiveKeep?: number;
  /** Test-only: added to this server's clock. */
  clockOffsetMs?: number;
}

interface AlphaBuffer {
  txs: Tx[];
  ids: Set<string>;
  /** Net balance change per account hex from this buffer, for the admission funds check. */
  deltas: Map<string, number>;
  verified: WeakSet<Tx>;
}

/** Counters exposed by /metrics and `coin status`. */
export interface ServerMetrics {
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

/** A running coin server. */
export class Server {
  readonly network: Network;
  readonly me: Peer;
  readonly #keyPair: KeyPair;
  readonly #log: Logger;
  readonly #archiveDir: string;
  readonly #waitForQuorum: boolean;
  readonly #archiveKeep: number | undefined;
  readonly #clockOffsetMs: number;
  readonly #startedMs = Date.now();
  readonly #listed: Set<string>;

  #listener: Deno.TcpListener | undefined;
  #state: State;
  #headFrame = 0;
  #committed: { frame: number; state: State; hash: string };
  #durable: { frame: number; hash: string };
  #archiveQueue: Promise<void> = Promise.resolve();
  #lastArchivedHash: string | undefined;
  #frameStates = new Map<number, State>();
  /** What this server did in a frame, for its consensus log line. */
  #frameInfo = new Map<
    number,
    { role: string; txs: number; applied: number; rejected?: string | undefined; applyMs: number }
  >();
  /** Settled frames whose log line waits for the remaining votes (or the frame's deadline). */
  #unlogged = new Set<number>();
  /** Transfers refused to clients since the last log line, by code. */
  #rejectedSinceLog = new Map<string, number>();
  #myVotes = new Map<number, string>();
  #broadcastFrames = new Set<number>();
  #betaBuffers = new Map<number, Tx[]>();
  #buffers = new Map<number, AlphaBuffer>();
  #tally: Tally;
  #decided = new Map<number, string>();
  /** Milliseconds from the end of a frame to its consensus, as seen here. */
  #decidedAfterMs = new Map<number, number>();
  #settled = new Set<number>();
  #catchupSentTo = new Set<string>();
  #lastJudged = 0;
  #startFrame = 0;
  #txIndex = new Map<string, { frame: number; code: "ok" | TxCode; fromCatchup?: boolean }>();
  #knownFromFrame = 0;
  /** Catch-ups that came before their frame was decided here, one per sender (a liar cannot push out
   * an honest one). */
  #pendingCatchups = new Map<string, Catchup>();
  #missed = 0;
  #everAgreed = false;
  #noQuorum = false;
  #inSync = false;
  #links = new Map<string, PeerLink>();
  /** This server's last signed vote without transfers: the first message on each new peer connection. */
  #greeting: Uint8Array[] | undefined;
  #relays = new Map<string, ServerConnection>();
  /**
   * Open connections; `spoke` once one sent a whole message, `trusted` once it delivered a correctly
   * signed message of a listed server.
   */
  #conns = new Map<Deno.TcpConn, { lastActiveMs: number; spoke: boolean; trusted: boolean }>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closing = false;
  #done = Promise.withResolvers<void>();
  readonly metrics: ServerMetrics = {
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

  private constructor(options: ServerOptions, me: Peer, state: State) {
    this.network = options.network;
    this.me = me;
    this.#keyPair = options.keyPair;
    this.#log = options.logger;
    this.#archiveDir = `${options.dataDir}/archive`;
    this.#waitForQuorum = options.waitForQuorum ?? false;
    this.#archiveKeep = options.archiveKeep;
    this.#clockOffsetMs = options.clockOffsetMs ?? 0;
    this.#listed = new Set(options.network.servers.map((s) => s.keyHex));
    this.#tally = new Tally(options.network.majority);
    this.#state = state;
    this.#committed = { frame: -1, state, hash: state.ledger.hash };
    this.#durable = { frame: -1, hash: state.ledger.hash };
    for (const peer of options.network.servers) {
      if (peer.index !== me.index) {
        this.#links.set(peer.keyHex, new PeerLink(peer, { greeting: () => this.#greeting }));
      }
    }
  }

  /**
   * Loads the newest archive entry that verifies (else the genesis), listens on this server's
   * address from peers.json and starts the frame clock.
   */
  static async start(options: ServerOptions): Promise<Server> {
    const me = options.network.servers.find((s) => s.keyHex === options.keyPair.publicHex);
    if (me === undefined) {
      throw new CoinError(
        `This key (${options.keyPair.publicHex.slice(0, 16)}…) is not a server in peers.json`,
      );
    }
    const archiveDir = `${options.dataDir}/archive`;
    try {
      await Deno.mkdir(archiveDir, { recursive: true });
    } catch (err) {
      throw new CoinError(`Cannot create archive directory "${archiveDir}": ${(err as Error).message}`);
    }
    await removeStaleTemporaries(archiveDir);
    const genesis = genesisState(options.network.genesis);
    const loaded = await loadNewestEntry(archiveDir, (name, problem) => {
      options.logger.event("corrupt_entry_set_aside", { file: name, problem });
    });
    let state = genesis;
    if (loaded !== undefined) {
      if (loaded.ledger.supply !== options.network.supply) {
        throw new CoinError(
          `Archive entry "${loaded.entry.name}" holds a total supply of ${loaded.ledger.supply}, ` +
            `not the genesis ${options.network.supply}: it belongs to another network`,
        );
      }
      state = { ledger: loaded.ledger, recent: [] };
    }
    // Ids written with an older database are still true (they were agreed); they tell the whole story
    // of the recent frames only when written with the database loaded.
    const saved = await readRecentIds(archiveDir, (name, problem) => {
      options.logger.event("corrupt_entry_set_aside", { file: name, problem });
    });
    if (saved !== undefined) state = { ledger: state.ledger, recent: saved.recent };
    const recentComplete = saved !== undefined && saved.hash === loaded?.entry.hash &&
      saved.recent.length > 0;
    const server = new Server(options, me, state);
    server.#lastArchivedHash = loaded?.entry.hash;
    try {
      server.#listener = Deno.listen({ hostname: me.host, port: me.port, transport: "tcp" });
    } catch (err) {
      throw new CoinError(`Cannot listen on ${me.host}:${me.port}: ${(err as Error).message}`);
    }
    const now = server.#now();
    server.#startFrame = frameAt(now, server.network.intervalMs);
    server.#headFrame = server.#startFrame - 1;
    server.#lastJudged = server.#headFrame;
    server.#knownFromFrame = recentComplete ? state.recent[0]!.frame : server.#startFrame;
    for (const r of state.recent) {
      for (const id of r.ids) server.#txIndex.set(id, { frame: r.frame, code: "ok", fromCatchup: true });
    }
    options.logger.event("start", {
      frame: server.#startFrame,
      listen: `${me.host}:${me.port}`,
      loaded: loaded === undefined ? "genesis" : loaded.entry.name,
      hash: state.ledger.hash.slice(0, 12),
      accounts: state.ledger.count,
      recent_frames: state.recent.length,
      servers: server.network.servers.length,
      interval_ms: server.network.intervalMs,
    });
    server.#acceptLoop();
    server.#schedule();
    return server;
  }

  /** The bound TCP port. */
  get port(): number {
    return (this.#listener!.addr as Deno.NetAddr).port;
  }

  #now(): number {
    return Date.now() + this.#clockOffsetMs;
  }

  /** Resolves once stopped by `signal`; rejects with ConsensusLostError when the network lost its majority. */
  run(signal: AbortSignal): Promise<void> {
    const onAbort = () => this.close().then(() => this.#done.resolve());
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    return this.#done.promise.finally(() => signal.removeEventListener("abort", onAbort));
  }

  /** Stops listening, closes every connection and waits for pending archive writes. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    clearTimeout(this.#timer);
    try {
      this.#listener?.close();
    } catch {
      // already closed
    }
    for (const conn of this.#conns.keys()) closeQuietly(conn);
    for (const link of this.#links.values()) link.close();
    await Promise.all([...this.#relays.values()].map((r) => r.close()));
    await this.#archiveQueue;
  }

  #halt(reason: string): void {
    this.#log.event("halt", { frame: this.#headFrame, reason });
    this.close().then(() => this.#done.reject(new ConsensusLostError(reason)));
  }

  // ---- the frame clock -------------------------------------------------------------------------

  #waitMs(): number {
    return Math.floor(this.network.intervalMs / 2);
  }

  #schedule(): void {
    if (this.#closing) return;
    const I = this.network.intervalMs;
    const now = this.#now();
    const start = frameStartMs(frameAt(now, I), I);
    const half = start + this.#waitMs();
    const next = now < half ? half : start + I;
    this.#timer = setTimeout(() => {
      try {
        this.#advance();
        this.#judge();
      } finally {
        this.#schedule();
      }
    }, Math.max(1, next - now + 1));
  }

  /** Processes every frame whose buffer is known or whose beta has had its time. */
  #advance(): void {
    const I = this.network.intervalMs;
    while (!this.#closing) {
      const now = this.#now();
      const current = frameAt(now, I);
      if (this.#headFrame < current - MAX_LAG_FRAMES) {
        this.#log.event("skip_ahead", { from: this.#headFrame, to: current - 2, reason: "behind the clock" });
        this.#headFrame = current - 2;
        this.#knownFromFrame = Math.max(this.#knownFromFrame, current - 1);
        // Frames slept through (a paused process) are not this server's missed consensus: counting
        // them would halt a server that only needs a catch-up.
        this.#lastJudged = Math.max(this.#lastJudged, current - 2);
      }
      const f = this.#headFrame + 1;
      const beta = alphaIndex(f, this.network.servers.length) === this.me.index;
      const end = frameStartMs(f + 1, I);
      const ready = (beta && now >= end) ||
        (!beta && (this.#betaBuffers.has(f) || now >= end + this.#waitMs()));
      // Judge frame f - 1 before applying f (its votes came a frame ago): after a frame without
      // consensus every server applies f to the same reverted balances, the beta included, instead of
      // some applying it to the lost frame's balances and losing frame after frame.
      if (ready) this.#judgeUpTo(f - 1);
      if (this.#closing) break;
      if (beta && now >= end) {
        const buffer = this.#buffers.get(f);
        this.#process(f, buffer?.txs ?? [], { beta: true, verified: buffer?.verified });
      } else if (!beta && this.#betaBuffers.has(f)) {
        this.#process(f, this.#betaBuffers.get(f)!, { beta: false });
      } else if (!beta && now >= end + this.#waitMs()) {
        this.#log.event("beta_silent", {
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
    const t0 = performance.now();
    const context = frameContext(frame, this.network.timing);
    const result = apply(this.#state, txs, {
      ...context,
      ...(options.verified ? { verified: options.verified } : {}),
    });
    const t1 = performance.now();
    const hash = result.state.ledger.hash;
    this.metrics.lastApplyMs = t1 - t0;
    this.metrics.lastHashMs = performance.now() - t1;
    this.metrics.framesProcessed++;
    this.#state = result.state;
    this.#headFrame = frame;
    this.#frameStates.set(frame, result.state);
    this.#myVotes.set(frame, hash);
    const rejected: Record<string, number> = {};
    txs.forEach((tx, i) => {
      const code = result.results[i]!;
      if (code !== "ok") rejected[code] = (rejected[code] ?? 0) + 1;
      if (this.#txIndex.get(tx.id)?.code !== "ok") this.#txIndex.set(tx.id, { frame, code });
    });
    this.#buffers.delete(frame);
    if (!this.#broadcastFrames.has(frame)) {
      this.#broadcastFrames.add(frame);
      this.#tally.record(frame, this.me.keyHex, hash);
      const txBytes = options.beta ? concatTxs(txs) : new Uint8Array(0);
      this.#broadcast([encodeVote(frame, fromHex(hash, 32)!, txBytes)], { greeting: txBytes.length === 0 });
    }
    this.#frameInfo.set(frame, {
      role: options.beta ? "beta" : "other",
      txs: txs.length,
      applied: result.applied,
      rejected: Object.entries(rejected).map(([c, n]) => `${c}:${n}`).join(",") || undefined,
      applyMs: this.metrics.lastApplyMs,
    });
    this.#decide(frame);
    this.#settle(frame);
    this.#prune(frame);
  }

  /** Frames whose consensus deadline (end of the next frame) passed without a majority. */
  #judge(): void {
    const current = frameAt(this.#now(), this.network.intervalMs);
    if (this.#rejectedSinceLog.size > 0) {
      // One line per frame, not one per refusal: a flood of bad transfers must not flood the log.
      const codes = [...this.#rejectedSinceLog].map(([c, n]) => `${c}:${n}`).join(",");
      this.#rejectedSinceLog.clear();
      this.#log.event("rejected_transfers", { frame: current, codes });
    }
    for (const f of this.#unlogged) if (f <= current - 2) this.#logFrame(f, true);
    this.#judgeUpTo(current - 2);
  }

  /** Frames up to `last` still undecided: each one is missed and reverts to the last agreed balances. */
  #judgeUpTo(last: number): void {
    for (let f = this.#lastJudged + 1; f <= last; f++) {
      this.#lastJudged = f;
      if (this.#decided.has(f)) continue;
      this.metrics.framesMissed++;
      this.#missed++;
      const votes = this.#tally.votes(f);
      const summary = [...countBy(votes.values())].map(([h, n]) => `${h.slice(0, 8)}:${n}`).join(",") ||
        "none";
      this.#log.event("no_consensus", {
        frame: f,
        seen: `${votes.size}/${this.network.servers.length}`,
        votes: summary,
        need: this.network.majority,
        missed: this.#missed,
      });
      // Part 10 of the seed: without consensus, go back to the last agreed balances.
      if (this.#state.ledger.hash !== this.#committed.hash) {
        this.#log.event("reverted", {
          to_frame: this.#committed.frame,
          hash: this.#committed.hash.slice(0, 12),
        });
      }
      this.#state = this.#committed.state;
      this.#inSync = false;
      const starting = !this.#everAgreed && f < this.#startFrame + STARTUP_GRACE_FRAMES;
      if (this.#missed >= MAX_MISSED_FRAMES && !starting) {
        const reason =
          `no majority (${this.network.majority} of ${this.network.servers.length}) agreed for ` +
          `${this.#missed} frames; last agreed frame ${this.#committed.frame} hash ${
            this.#committed.hash.slice(0, 12)
          }`;
        if (!this.#waitForQuorum) return this.#halt(`Consensus lost: ${reason}; stopping rather than fork`);
        if (!this.#noQuorum) {
          this.#noQuorum = true;
          this.#log.event("no_quorum", { reason, action: "refusing transfers until a majority agrees" });
        }
      }
    }
  }

  #prune(frame: number): void {
    const old = frame - KEEP_FRAMES;
    // States are whole databases: keep only the agreed one and those not yet decided.
    for (const f of this.#frameStates.keys()) {
      if (
        f < this.#committed.frame || (f < frame - 2 && this.#decided.has(f) && f !== this.#committed.frame)
      ) {
        this.#frameStates.delete(f);
      }
    }
    for (
      const map of [
        this.#frameStates,
        this.#myVotes,
        this.#betaBuffers,
        this.#decided,
        this.#decidedAfterMs,
        this.#buffers,
        this.#frameInfo,
      ]
    ) {
      for (const f of map.keys()) if (f < old) map.delete(f);
    }
    for (const set of [this.#settled, this.#unlogged]) for (const f of set) if (f < old) set.delete(f);
    for (const f of this.#broadcastFrames) if (f < old) this.#broadcastFrames.delete(f);
    this.#tally.prune(old);
    const keepTx = frame - Math.max(KEEP_FRAMES, 4 * this.#recentSpan());
    if (this.#txIndex.size > 0 && frame % 4 === 0) {
      for (const [id, e] of this.#txIndex) if (e.frame < keepTx) this.#txIndex.delete(id);
    }
    for (const [sender, c] of this.#pendingCatchups) if (c.frame < old) this.#pendingCatchups.delete(sender);
    for (const key of this.#catchupSentTo) {
      if (Number(key.split(":")[1]) < old) this.#catchupSentTo.delete(key);
    }
  }

  #recentSpan(): number {
    return frameContext(0, this.network.timing).recentFrames;
  }

  // ---- consensus -------------------------------------------------------------------------------

  #decide(frame: number): void {
    if (this.#decided.has(frame)) return;
    const hash = this.#tally.consensus(frame);
    if (hash === undefined) return;
    this.#decided.set(frame, hash);
    this.#decidedAfterMs.set(frame, this.#now() - frameStartMs(frame + 1, this.network.intervalMs));
    this.metrics.framesAgreed++;
    if (this.#noQuorum) this.#log.event("quorum_back", { frame, hash: hash.slice(0, 12) });
    this.#noQuorum = false;
    this.#missed = 0;
    if (this.#myVotes.get(frame) === hash || this.#committed.frame >= frame) {
      this.#sendCatchups(frame);
    }
    for (const [sender, catchup] of this.#pendingCatchups) {
      if (catchup.frame !== frame) continue;
      this.#pendingCatchups.delete(sender);
      this.#onCatchup(sender, catchup);
    }
    for (const [sender, vote] of this.#tally.votes(frame)) {
      if (vote !== hash) this.#logDisagreed(frame, sender, vote, hash);
    }
  }

  /** Another server's vote against the consensus: out of sync, or lying. Named by key. */
  #logDisagreed(frame: number, sender: string, vote: string, consensus: string): void {
    if (sender === this.me.keyHex) return;
    this.#log.event("disagreed", {
      from: this.#peerName(sender),
      key: sender.slice(0, 16),
      frame,
      hash: vote.slice(0, 12),
      consensus: consensus.slice(0, 12),
    });
  }

  /** Once a frame is decided and this server has its own result, commit or mark out of sync. */
  #settle(frame: number): void {
    const consensus = this.#decided.get(frame);
    const mine = this.#myVotes.get(frame);
    if (consensus === undefined || mine === undefined || this.#settled.has(frame)) return;
    this.#settled.add(frame);
    if (mine === consensus) {
      if (frame > this.#committed.frame) {
        this.#commit(frame, this.#frameStates.get(frame)!, consensus);
        this.metrics.txCommitted += this.#frameInfo.get(frame)?.applied ?? 0;
      }
      this.#unlogged.add(frame);
      this.#logFrame(frame, false);
    } else {
      this.#inSync = false;
      this.#log.event("out_of_sync", {
        frame,
        mine: mine.slice(0, 12),
        consensus: consensus.slice(0, 12),
        agree: `${this.#tally.count(frame, consensus)}/${this.network.servers.length}`,
        action: "waiting for the database (code 1)",
      });
    }
  }

  /** One line per agreed frame, once every server voted or the frame's deadline came. */
  #logFrame(frame: number, deadline: boolean): void {
    if (!this.#unlogged.has(frame)) return;
    if (!deadline && this.#tally.votes(frame).size < this.network.servers.length) return;
    this.#unlogged.delete(frame);
    const consensus = this.#decided.get(frame)!;
    const info = this.#frameInfo.get(frame);
    this.#log.event("consensus", {
      frame,
      role: info?.role ?? "caught-up",
      hash: consensus.slice(0, 12),
      agree: `${this.#tally.count(frame, consensus)}/${this.network.servers.length}`,
      txs: info?.txs,
      applied: info?.applied,
      rejected: info?.rejected,
      apply_ms: info?.applyMs.toFixed(1),
      decided_ms: this.#decidedAfterMs.get(frame)?.toFixed(0),
    });
  }

  #commit(frame: number, state: State, hash: string): void {
    if (state.ledger.supply !== this.network.supply) {
      throw new Error(
        `Invariant broken: agreed database of frame ${frame} has supply ${state.ledger.supply}`,
      );
    }
    this.#committed = { frame, state, hash };
    this.#everAgreed = true;
    this.#inSync = true;
    const seconds = Math.floor(frameStartMs(frame, this.network.intervalMs) / 1000);
    const write = hash !== this.#lastArchivedHash;
    const newIds = write || (state.recent.at(-1)?.ids.size ?? 0) > 0;
    this.#lastArchivedHash = hash;
    this.#archiveQueue = this.#archiveQueue.then(async () => {
      if (write) {
        try {
          const name = await writeArchiveEntry(this.#archiveDir, state.ledger, seconds, {
            ...(this.#archiveKeep === undefined ? {} : { keep: this.#archiveKeep }),
          });
          this.#log.event("archived", { frame, file: name.slice(0, 12) + "…" + name.slice(64) });
        } catch (err) {
          this.#lastArchivedHash = undefined;
          this.#log.event("error_archive", { frame, error: (err as Error).message });
          return;
        }
      }
      if (newIds) {
        try {
          await writeRecentIds(this.#archiveDir, hash, frame, state.recent);
        } catch (err) {
          this.#log.event("error_archive", { frame, file: RECENT_IDS_FILE, error: (err as Error).message });
          return;
        }
      }
      if (frame > this.#durable.frame) this.#durable = { frame, hash };
    });
  }

  /** The first server in rotation order from the frame's beta that voted with consensus sends catch-ups. */
  #isCatchupSender(frame: number, hash: string): boolean {
    const votes = this.#tally.votes(frame);
    const n = this.network.servers.length;
    for (let i = 0; i < n; i++) {
      const peer = this.network.servers[(alphaIndex(frame, n) + i) % n]!;
      if (votes.get(peer.keyHex) === hash) return peer.index === this.me.index;
    }
    return false;
  }

  #sendCatchups(frame: number): void {
    const hash = this.#decided.get(frame);
    const state = this.#frameStates.get(frame);
    if (hash === undefined || state === undefined || state.ledger.hash !== hash) return;
    if (!this.#isCatchupSender(frame, hash)) return;
    for (const [sender, vote] of this.#tally.votes(frame)) {
      if (vote === hash || sender === this.me.keyHex) continue;
      const key = `${sender}:${frame}`;
      if (this.#catchupSentTo.has(key)) continue;
      this.#catchupSentTo.add(key);
      const link = this.#links.get(sender)!;
      this.metrics.catchupsSent++;
      this.#log.event("catchup_sent", {
        frame,
        to: link.peer.name,
        hash: hash.slice(0, 12),
        bytes: state.ledger.bytes.length,
      });
      encodePeerMessage(this.#keyPair, encodeCatchup(frame, state.ledger.bytes, state.recent))
        .then((chunks) => link.send(chunks))
        .catch((err) => this.#log.event("error_send", { to: link.peer.name, error: (err as Error).message }));
    }
  }

  #onVote(sender: string, vote: Vote, body: Uint8Array): void {
    const current = frameAt(this.#now(), this.network.intervalMs);
    const name = this.#peerName(sender);
    // Votes for frame f are sent during frame f + 1; anything older than that allows is a replay.
    if (vote.frame > current + MAX_VOTE_LEAD_FRAMES || vote.frame < current - MAX_VOTE_AGE_FRAMES) {
      this.metrics.messagesDropped++;
      this.#log.event("dropped", {
        from: name,
        key: sender.slice(0, 16),
        frame: vote.frame,
        reason: "vote for a frame outside the window (stale or replayed)",
      });
      return;
    }
    const recorded = this.#tally.record(vote.frame, sender, vote.hash);
    if (recorded === "conflict") {
      this.metrics.messagesDropped++;
      this.#log.event("lying", {
        from: name,
        key: sender.slice(0, 16),
        frame: vote.frame,
        reason: "second, different vote for the frame",
      });
      return;
    }
    if (recorded === "repeat") return;
    const isBeta =
      this.network.servers[alphaIndex(vote.frame, this.network.servers.length)]!.keyHex === sender;
    if (isBeta) {
      // Pass the beta's signed message on: a server the beta missed still gets the buffer, and a beta
      // that sent different buffers to different servers is caught (a second vote = "lying").
      const message = [lengthPrefix(body.length), body];
      for (const [key, link] of this.#links) if (key !== sender) link.send(message);
    }
    if (isBeta && !this.#betaBuffers.has(vote.frame)) {
      const txs: Tx[] = [];
      for (let off = 0; off < vote.txBytes.length; off += TX_BYTES) {
        txs.push(decodeTx(vote.txBytes.slice(off, off + TX_BYTES))!);
      }
      this.#betaBuffers.set(vote.frame, txs);
    }
    const consensus = this.#decided.get(vote.frame);
    if (consensus !== undefined) {
      if (vote.hash !== consensus) this.#logDisagreed(vote.frame, sender, vote.hash, consensus);
      if (vote.hash !== consensus && this.#myVotes.get(vote.frame) === consensus) {
        this.#sendCatchups(vote.frame);
      }
      this.#logFrame(vote.frame, false);
    } else {
      this.#decide(vote.frame);
      this.#settle(vote.frame);
    }
    this.#advance();
  }

  #onCatchup(sender: string, catchup: Catchup): void {
    const name = this.#peerName(sender);
    const consensus = this.#decided.get(catchup.frame);
    if (consensus === undefined) {
      if (catchup.frame > this.#headFrame - KEEP_FRAMES) this.#pendingCatchups.set(sender, catchup);
      return;
    }
    const needed = this.#myVotes.get(catchup.frame) !== consensus && catchup.frame > this.#committed.frame;
    const hash = sha256Hex(catchup.db);
    if (!needed && hash === consensus) return;
    if (hash !== consensus) {
      this.metrics.messagesDropped++;
      this.#log.event("lying", {
        from: name,
        key: sender.slice(0, 16),
        frame: catchup.frame,
        reason: "catch-up database does not match the consensus hash",
      });
      return;
    }
    let ledger: Ledger;
    try {
      // The message buffer is this catch-up's own allocation: no copy of a large database.
      ledger = Ledger.fromPacked(catchup.db);
    } catch (err) {
      this.#log.event("lying", {
        from: name,
        key: sender.slice(0, 16),
        frame: catchup.frame,
        reason: `catch-up database does not parse: ${(err as Error).message}`,
      });
      return;
    }
    if (ledger.supply !== this.network.supply) {
      this.#log.event("lying", {
        from: name,
        key: sender.slice(0, 16),
        frame: catchup.frame,
        reason: `catch-up database has supply ${ledger.supply}`,
      });
      return;
    }
    const state: State = { ledger, recent: catchup.recent };
    this.metrics.catchupsReceived++;
    this.#log.event("catchup_received", {
      frame: catchup.frame,
      from: name,
      hash: consensus.slice(0, 12),
      accounts: ledger.count,
    });
    // Forget what this server applied on its wrong database; learn the recent ids of the right one.
    for (const [id, e] of this.#txIndex) {
      if (e.frame <= catchup.frame && this.#decided.get(e.frame) !== this.#myVotes.get(e.frame)) {
        this.#txIndex.delete(id);
      }
    }
    for (const r of catchup.recent) {
      for (const id of r.ids) this.#txIndex.set(id, { frame: r.frame, code: "ok", fromCatchup: true });
    }
    this.#knownFromFrame = catchup.recent.length > 0 ? catchup.recent[0]!.frame : catchup.frame + 1;
    this.#state = state;
    this.#headFrame = catchup.frame;
    this.#frameStates.set(catchup.frame, state);
    this.#myVotes.set(catchup.frame, consensus);
    this.#settled.add(catchup.frame);
    this.#commit(catchup.frame, state, consensus);
    this.#unlogged.add(catchup.frame);
    this.#advance();
  }

  /** Handles a peer message; returns true when its signature is a listed server's. */
  #onPeerMessage(body: Uint8Array): boolean {
    const opened = openPeerMessage(body, (key) => this.#listed.has(key) && key !== this.me.keyHex);
    if ("problem" in opened) {
      this.metrics.messagesDropped++;
      this.#log.event("dropped", { key: opened.sender?.slice(0, 16), reason: opened.problem });
      return false;
    }
    let payload: Vote | Catchup;
    try {
      payload = decodePayload(opened.payload);
    } catch (err) {
      this.metrics.messagesDropped++;
      this.#log.event("dropped", { from: this.#peerName(opened.sender), reason: (err as Error).message });
      return true;
    }
    if (payload.code === 0) this.#onVote(opened.sender, payload, body);
    else this.#onCatchup(opened.sender, payload);
    return true;
  }

  #peerName(keyHex: string): string {
    return this.network.servers.find((s) => s.keyHex === keyHex)?.name ?? keyHex.slice(0, 8);
  }

  #broadcast(chunks: Uint8Array[], options: { greeting?: boolean } = {}): void {
    encodePeerMessage(this.#keyPair, chunks).then((message) => {
      if (options.greeting) this.#greeting = message;
      for (const link of this.#links.values()) link.send(message);
    }).catch((err) => this.#log.event("error_send", { error: (err as Error).message }));
  }

  // ---- clients -----------------------------------------------------------------------------------

  #reject(
    code: TxCode | keyof typeof SERVER_CODES,
    extra: Record<string, unknown> = {},
  ): Record<string, unknown> {
    this.metrics.txRejected[code] = (this.metrics.txRejected[code] ?? 0) + 1;
    this.#rejectedSinceLog.set(code, (this.#rejectedSinceLog.get(code) ?? 0) + 1);
    const reason = code in TX_CODES
      ? TX_CODES[code as TxCode]
      : SERVER_CODES[code as keyof typeof SERVER_CODES];
    return { ok: false, code, reason, server: this.me.name, ...extra };
  }

  async #submit(bytes: Uint8Array, relayed: boolean): Promise<Record<string, unknown>> {
    const tx = decodeTx(bytes);
    if (tx === undefined) return this.#reject("malformed");
    if (this.#noQuorum) return this.#reject("no_quorum", { id: tx.id });
    const now = this.#now();
    const frame = acceptingFrame(now, this.network.timing);
    const alpha = this.network.servers[alphaIndex(frame, this.network.servers.length)]!;
    if (alpha.index !== this.me.index) {
      if (relayed) return this.#reject("not_alpha", { id: tx.id, alpha: alpha.name });
      // An answer after the frame stops accepting is useless: do not wait longer (a frozen alpha
      // would otherwise hold every client that reached another server).
      const endMs = frameStartMs(frame + 1, this.network.intervalMs) - this.network.timing.blackoutMs;
      return await this.#relay(alpha, bytes, tx.id, Math.max(RELAY_MIN_TIMEOUT_MS, endMs - now));
    }
    if (frame <= this.#headFrame) return this.#reject("not_alpha", { id: tx.id });
    const skew = this.network.timing.skewMs;
    // The clock check first: a stale flood must not cost a signature check each.
    const code = checkTimestamp(tx, now - skew, now + skew + 1) ?? checkTxStateless(tx);
    if (code !== undefined) return this.#reject(code, { id: tx.id });
    let buffer = this.#buffers.get(frame);
    if (buffer === undefined) {
      this.#buffers.set(
        frame,
        buffer = { txs: [], ids: new Set(), deltas: new Map(), verified: new WeakSet() },
      );
    }
    const seen = buffer.ids.has(tx.id) || this.#txIndex.get(tx.id)?.code === "ok" ||
      [...this.#buffers.values()].some((b) => b.ids.has(tx.id)) ||
      this.#state.recent.some((r) => r.ids.has(tx.id));
    if (seen) return this.#reject("duplicate", { id: tx.id });
    const payerHex = toHex(tx.payer);
    const stored = this.#state.ledger.balanceOf(tx.payer);
    const delta = buffer.deltas.get(payerHex);
    if (stored === 0 && delta === undefined) return this.#reject("payer_not_found", { id: tx.id });
    if (stored + (delta ?? 0) < tx.amount) return this.#reject("insufficient_funds", { id: tx.id });
    if (buffer.txs.length >= MAX_FRAME_TXS) return this.#reject("frame_full", { id: tx.id });
    buffer.txs.push(tx);
    buffer.ids.add(tx.id);
    buffer.verified.add(tx);
    buffer.deltas.set(payerHex, (delta ?? 0) - tx.amount);
    const payeeHex = toHex(tx.payee);
    buffer.deltas.set(payeeHex, (buffer.deltas.get(payeeHex) ?? 0) + tx.amount);
    this.metrics.txAccepted++;
    return { ok: true, id: tx.id, frame, server: this.me.name };
  }

  async #relay(
    alpha: Peer,
    bytes: Uint8Array,
    id: string,
    timeoutMs: number,
  ): Promise<Record<string, unknown>> {
    let conn = this.#relays.get(alpha.keyHex);
    try {
      if (conn === undefined || conn.closed) {
        conn = await ServerConnection.open(alpha.host, alpha.port, 1_000);
        this.#relays.set(alpha.keyHex, conn);
      }
      const response = await conn.request(Kind.relay, bytes, Math.min(timeoutMs, REQUEST_TIMEOUT_MS));
      return { ...response, relayedBy: this.me.name };
    } catch (err) {
      this.#relays.delete(alpha.keyHex);
      return this.#reject("alpha_unreachable", { id, alpha: alpha.name, detail: (err as Error).message });
    }
  }

  /** Healthy when this server agreed with the consensus of the last frame that could be decided. */
  health(): { ok: boolean; reason: string } {
    const current = frameAt(this.#now(), this.network.intervalMs);
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

  /** This server's state as `coin status` and GET /status show it. */
  status(): Record<string, unknown> {
    const now = this.#now();
    const frame = frameAt(now, this.network.intervalMs);
    const n = this.network.servers.length;
    const lastDecided = Math.max(-1, ...this.#decided.keys());
    const consensus = this.#decided.get(lastDecided);
    return {
      ok: true,
      server: this.me.name,
      key: this.me.keyHex,
      frame,
      role: alphaIndex(frame, n) === this.me.index
        ? "alpha"
        : alphaIndex(frame - 1, n) === this.me.index
        ? "beta"
        : "other",
      alpha: this.network.servers[alphaIndex(acceptingFrame(now, this.network.timing), n)]!.name,
      headFrame: this.#headFrame,
      committedFrame: this.#committed.frame,
      committedHash: this.#committed.hash,
      agree: consensus === undefined ? null : `${this.#tally.count(lastDecided, consensus)}/${n}`,
      agreeFrame: consensus === undefined ? null : lastDecided,
      peersSeen: consensus === undefined ? 0 : this.#tally.votes(lastDecided).size,
      inSync: this.#inSync,
      noQuorum: this.#noQuorum,
      accounts: this.#committed.state.ledger.count,
      dbBytes: this.#committed.state.ledger.bytes.length,
      supply: this.#committed.state.ledger.supply,
      uptimeMs: Date.now() - this.#startedMs,
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
      const agreed = entry.fromCatchup === true ||
        this.#decided.get(entry.frame) === this.#myVotes.get(entry.frame) ||
        entry.frame <= this.#committed.frame;
      if (agreed) return { ...base, state: "committed", frame: entry.frame };
    }
    const last = lastFrameFor(timestampMs, this.network.timing);
    const first = last - this.#recentSpan() + 1;
    if (
      last <= this.#durable.frame && first >= this.#knownFromFrame &&
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

  async #onRequest(kind: number, arg: Uint8Array): Promise<Record<string, unknown>> {
    switch (kind) {
      case Kind.submit:
      case Kind.relay:
        return await this.#submit(arg, kind === Kind.relay);
      case Kind.balance:
        if (arg.length !== 32) return { ok: false, code: "malformed", reason: "an account id is 32 bytes" };
        return this.#balance(arg);
      case Kind.status:
        return this.status();
      case Kind.txStatus: {
        if (arg.length !== 40) {
          return { ok: false, code: "malformed", reason: "a transfer query is 40 bytes" };
        }
        const t = new DataView(arg.buffer, arg.byteOffset + 32, 8).getBigUint64(0);
        return this.#txStatus(toHex(arg.subarray(0, 32)), Number(t));
      }
      default:
        throw new ProtocolError(`unknown message kind 0x${kind.toString(16)}`);
    }
  }

  // ---- connections -------------------------------------------------------------------------------

  async #acceptLoop(): Promise<void> {
    try {
      for await (const conn of this.#listener!) {
        if (this.#closing) {
          closeQuietly(conn);
          break;
        }
        this.#handle(conn);
      }
    } catch (err) {
      if (!this.#closing) this.#log.event("error_listen", { error: (err as Error).message });
    }
  }

  async #handle(conn: Deno.TcpConn): Promise<void> {
    if (this.#conns.size >= MAX_CONNECTIONS) {
      // Close the least recently active connection among those that never sent a whole message, else
      // among clients, a server's last: a flood of idle strangers must not cut off clients or servers.
      const tier = (s: { spoke: boolean; trusted: boolean }) => s.trusted ? 2 : s.spoke ? 1 : 0;
      let oldest: Deno.TcpConn | undefined;
      let o: { lastActiveMs: number; spoke: boolean; trusted: boolean } | undefined;
      for (const [c, s] of this.#conns) {
        if (
          o === undefined || tier(s) < tier(o) || (tier(s) === tier(o) && s.lastActiveMs < o.lastActiveMs)
        ) {
          [oldest, o] = [c, s];
        }
      }
      if (oldest !== undefined) {
        this.#conns.delete(oldest);
        closeQuietly(oldest);
      }
    }
    const info = { lastActiveMs: Date.now(), spoke: false, trusted: false };
    this.#conns.set(conn, info);
    try {
      conn.setNoDelay(true);
    } catch {
      // not fatal
    }
    const idleMs = Math.max(MIN_IDLE_TIMEOUT_MS, 3 * this.network.intervalMs);
    let idle = setTimeout(() => closeQuietly(conn), idleMs);
    const touch = () => {
      info.lastActiveMs = Date.now();
      clearTimeout(idle);
      idle = setTimeout(() => closeQuietly(conn), idleMs);
    };
    const source = {
      read: async (p: Uint8Array) => {
        const n = await conn.read(p);
        touch();
        return n;
      },
    };
    // Only a connection that already delivered a correctly signed message may send a large one: the
    // sender key in a head is public, so a stranger could otherwise make this server buffer 800 MB.
    const reader = new MessageReader(source, {
      maxBytes: MAX_CLIENT_MESSAGE_BYTES,
      bufferBytes: CONNECTION_BUFFER_BYTES,
      allowLarge: (head, size) => {
        const ok = info.trusted && head[0] === Kind.peer && head.length > 32 &&
          this.#listed.has(toHex(head.subarray(1, 33))) && size <= MAX_PEER_MESSAGE_BYTES;
        // Progress for the operator: a large database can take seconds to arrive.
        if (ok && size >= LARGE_MESSAGE_LOG_BYTES) {
          this.#log.event("receiving", { from: this.#peerName(toHex(head.subarray(1, 33))), bytes: size });
        }
        return ok;
      },
    });
    const writer = new MessageWriter(conn, { maxQueuedBytes: MAX_CLIENT_QUEUED_BYTES });
    try {
      while (!this.#closing) {
        const body = await reader.next();
        if (body === null) break;
        info.spoke = true;
        if (body[0] === Kind.peer) {
          if (this.#onPeerMessage(body)) info.trusted = true;
          continue;
        }
        const response = await this.#onRequest(body[0]!, body.subarray(1));
        const written = writer.write([encodeResponse(response)]).catch(() => closeQuietly(conn));
        // A client that does not read its answers stops being read (and times out as idle).
        if (writer.queuedBytes > CLIENT_PAUSE_QUEUED_BYTES) await written;
      }
    } catch (err) {
      if (err instanceof ProtocolError) {
        this.metrics.messagesDropped++;
        this.#log.event("dropped_connection", { remote: remoteOf(conn), reason: err.message });
      } else if (
        !(err instanceof Deno.errors.BadResource || err instanceof Deno.errors.ConnectionReset ||
          err instanceof Deno.errors.Interrupted || err instanceof Deno.errors.BrokenPipe)
      ) {
        throw err;
      }
    } finally {
      clearTimeout(idle);
      this.#conns.delete(conn);
      closeQuietly(conn);
    }
  }
}

/**
 * Writes the recent ids of the agreed database `hash`: SHA-256 of the rest 32 | hash 32 | a code-1
 * payload without database.
 */
async function writeRecentIds(dir: string, hash: string, frame: number, recent: RecentIds): Promise<void> {
  const chunks = [fromHex(hash, 32)!, ...encodeCatchup(frame, new Uint8Array(0), recent)];
  const bytes = new Uint8Array(32 + chunks.reduce((n, c) => n + c.length, 0));
  let off = 32;
  for (const c of chunks) {
    bytes.set(c, off);
    off += c.length;
  }
  bytes.set(sha256(bytes.subarray(32)));
  await writeFileAtomic(`${dir}/${RECENT_IDS_FILE}`, bytes);
}

/**
 * The saved recent ids, or undefined when there are none. A file that fails its checksum or does not
 * parse is set aside like a corrupt archive entry.
 */
async function readRecentIds(
  dir: string,
  onCorrupt: (name: string, problem: string) => void,
): Promise<{ hash: string; recent: RecentIds } | undefined> {
  const path = `${dir}/${RECENT_IDS_FILE}`;
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    return undefined;
  }
  let problem = "it is shorter than its checksum and hash";
  if (bytes.length >= 64) {
    problem = "its checksum does not match its content";
    if (equalBytes(sha256(bytes.subarray(32)), bytes.subarray(0, 32))) {
      try {
        const payload = decodePayload(bytes.subarray(64));
        if (payload.code === 1 && payload.db.length === 0) {
          return { hash: toHex(bytes.subarray(32, 64)), recent: payload.recent };
        }
        problem = "it does not hold recent ids";
      } catch (err) {
        problem = (err as Error).message;
      }
    }
  }
  await Deno.rename(path, `${path}${CORRUPT_SUFFIX}`).catch(() => {});
  onCorrupt(RECENT_IDS_FILE, problem);
  return undefined;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

function remoteOf(conn: Deno.TcpConn): string {
  const a = conn.remoteAddr as Deno.NetAddr;
  return `${a.hostname}:${a.port}`;
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

function countBy(values: Iterable<string>): Map<string, number> {
  const m = new Map<string, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return m;
}
