// The simulator: N replicas of the real core (lib/replica.ts) on virtual time, with a seeded network,
// disks, clocks, clients, crash and pause faults and dishonest replicas, all drawn from one seed. The
// checker (checker.ts) is told every state change and every answer, and the run stops at the first
// broken invariant with a trace of the steps that led to it.

import { toHex } from "../_bytes.ts";
import { CORRUPT_SUFFIX } from "../archive.ts";
import { alphaIndex, frameAt, frameStartMs } from "../frames.ts";
import { publicKeyOfSeed, type Signer, signerOf, type Verifier, verifySignature } from "../keys.ts";
import { genesisState } from "../ledger.ts";
import { type Network, parseNetwork } from "../peers.ts";
import { type Action, Replica, type TraceNote } from "../replica.ts";
import { recover } from "../recovery.ts";
import { decodeTx, signTxWith } from "../tx.ts";
import { Kind, messageBody } from "../wire.ts";
import { Adversary, LIE_KINDS, type LieKind } from "./adversary.ts";
import { Checker, type Invariant, type Violation } from "./checker.ts";
import { SimDisk } from "./disk.ts";
import { Rng } from "./rng.ts";

/** Faults of the world around honest replicas. */
export const WORLD_FAULTS = [
  "loss",
  "duplicate",
  "reorder",
  "partition",
  "slow_link",
  "crash",
  "wipe",
  "pause",
  "torn_write",
  "full_disk",
  "clock",
  "clock_beyond",
] as const;

/**
 * World faults that keep every message between honest servers within the timing bound Δ: the only ones
 * a run "within the bound" draws (the b = 0 defence against one liar holds only there).
 */
export const BOUND_KEEPING_FAULTS: readonly (typeof WORLD_FAULTS)[number][] = [
  "duplicate",
  "reorder",
  "clock",
];

/** A fault the simulator can draw. */
export type FaultKind = (typeof WORLD_FAULTS)[number] | LieKind;

/** Every fault kind. */
export const FAULT_KINDS: readonly FaultKind[] = [...WORLD_FAULTS, ...LIE_KINDS];

/** One simulated run. */
export interface SimConfig {
  readonly seed: number;
  /** Length of the run in frames, the calm end included. */
  readonly frames: number;
  readonly servers: number;
  /** How many of the servers are dishonest (the last ones). */
  readonly liars: number;
  /** The dishonest servers the network is configured to tolerate ("dishonest" in peers.json); default 0. */
  readonly dishonest?: number;
  readonly faults: ReadonlySet<FaultKind>;
  readonly intervalMs: number;
  readonly skewMs: number;
  readonly blackoutMs: number;
  /** Frames at the end with every world fault healed, over which liveness is judged. */
  readonly calmFrames: number;
  readonly clients: number;
  /** Servers stay up without a majority instead of halting. */
  readonly waitForQuorum: boolean;
  /**
   * Every message between honest servers arrives within this many ms (the timing bound Δ), when set: the
   * run draws only BOUND_KEEPING_FAULTS among the world faults.
   */
  readonly boundMs?: number;
  /** With b = 0, certificates decide at once (the 2Δ rule switched off, to show what it prevents). */
  readonly ablateDecideWait?: boolean;
  /** Liveness is judged even where it is not claimed (more liars than tolerated): to measure it. */
  readonly judgeLiveness?: boolean;
}

/** A run's outcome. */
export interface SimResult {
  readonly config: SimConfig;
  readonly violations: readonly Violation[];
  /** The last steps before the first violation (or the run's end). */
  readonly trace: readonly string[];
  readonly stats: {
    framesCommitted: number;
    transfersCommitted: number;
    messages: number;
    crashes: number;
    steps: number;
  };
}

/** Hooks a named scenario uses to steer a run. */
export interface ScenarioHooks {
  /** Called once before the run starts, to schedule targeted faults. */
  setup?(sim: Simulation): void;
  /** Return true to drop a peer message. */
  dropPeer?(from: number, to: number, body: Uint8Array, sim: Simulation): boolean;
}

/** Virtual time starts here (a unix time in ms), so timestamps look like real ones. */
export const SIM_EPOCH_MS = 1_800_000_000_000;
/** Steps kept for a violation's trace. */
export const TRACE_STEPS = 60;
/** Frames a quorum must be up and connected before liveness is judged. */
export const LIVENESS_FRAMES = 8;
/** Most events one run may process (a bound on a runaway schedule). */
export const MAX_STEPS = 5_000_000;

type Ev =
  | { k: "tick"; node: number; epoch: number }
  | { k: "peer"; node: number; epoch: number; from: number; body: Uint8Array }
  | {
    k: "req";
    node: number;
    epoch: number;
    client: number;
    clientReq: number;
    kind: number;
    arg: Uint8Array;
    relay?: { node: number; epoch: number; request: number };
  }
  | {
    k: "ans";
    client: number;
    clientReq: number;
    node: number;
    response: Record<string, unknown>;
    /** When the answer was sent. */
    sentMs: number;
  }
  | {
    k: "relayed";
    node: number;
    epoch: number;
    request: number;
    to: number;
    answer: Record<string, unknown> | { error: string };
  }
  | { k: "relay_timeout"; node: number; epoch: number; request: number; to: number }
  | { k: "write"; node: number; epoch: number }
  | { k: "client"; client: number }
  | { k: "fault"; label: string; run: () => void };

interface Queued {
  at: number;
  seq: number;
  ev: Ev;
}

/** A binary heap of events by (time, insertion order): ties run in the order they were scheduled. */
class EventQueue {
  #heap: Queued[] = [];
  #seq = 0;

  get size(): number {
    return this.#heap.length;
  }

  push(at: number, ev: Ev): void {
    const h = this.#heap;
    h.push({ at, seq: this.#seq++, ev });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (before(h[p]!, h[i]!)) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }

  pop(): Queued | undefined {
    const h = this.#heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Queued, b: Queued): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** One simulated server process and its data directory. */
export interface SimNode {
  readonly index: number;
  readonly honest: boolean;
  readonly seed: Uint8Array;
  readonly signer: Signer;
  readonly disk: SimDisk;
  replica: Replica | undefined;
  /** Changes at every crash: events for an earlier incarnation are dropped. */
  epoch: number;
  paused: boolean;
  deferred: Queued[];
  clockOffsetMs: number;
  /** Clock drift, parts per one. */
  clockDrift: number;
  /** Requests relayed to this node's alpha, by this node's request id: the client to answer. */
  requests: Map<
    number,
    { client: number; clientReq: number } | { node: number; epoch: number; request: number }
  >;
  nextRequest: number;
  /** The newest commit whose write completed, by write id pending. */
  durable: { frame: number; hash: string } | undefined;
  writes: Map<number, { frame: number; hash: string }>;
  /** The last crash left a torn file. */
  tornAtCrash: boolean;
  adversary: Adversary | undefined;
}

interface SimClient {
  readonly index: number;
  readonly publicKey: Uint8Array;
  readonly signer: Signer;
  readonly clockOffsetMs: number;
  /** Transfers it signed: bytes and timestamp. */
  readonly sent: { bytes: Uint8Array; id: string; timestampMs: number }[];
  nextReq: number;
  readonly pending: Map<number, { kind: number; arg: Uint8Array; id?: string }>;
}

/** Genesis balance of each client account. */
const CLIENT_FUNDS = 1_000_000_000;

/** A run in progress. Scenarios reach into it through their hooks. */
export class Simulation {
  readonly config: SimConfig;
  readonly network: Network;
  readonly rng: Rng;
  readonly nodes: SimNode[];
  readonly checker: Checker;
  readonly hooks: ScenarioHooks;
  #queue = new EventQueue();
  #now = 0;
  #clients: SimClient[] = [];
  #trace: string[] = [];
  #firstTrace: string[] | undefined;
  /** Link latency base in ms, [from][to]. */
  #latency: number[][];
  /** Last delivery time per link, for in-order delivery when reordering is off. */
  #lastDelivery = new Map<string, number>();
  #blocked = new Set<string>();
  #lossP = 0;
  #dupP = 0;
  #slow: { from: number; to: number; factor: number } | undefined;
  #calm = false;
  /** Acknowledged transfers by (alpha node, frame). */
  #acked = new Map<string, Set<string>>();
  /** Transfers acknowledged by an honest alpha, with the frame. */
  #ackedAll: { id: string; frame: number; node: number }[] = [];
  #signed = new Set<string>();
  /**
   * One memo of the real Ed25519 check for every replica of the run: a transfer or vote is verified
   * once, not once per replica. The key is the whole input, so a copied signature on other bytes misses.
   */
  readonly #verifier: Verifier = memoVerifier();
  #stats = { framesCommitted: 0, transfersCommitted: 0, messages: 0, crashes: 0, steps: 0 };

  constructor(config: SimConfig, hooks: ScenarioHooks = {}) {
    this.config = config;
    this.hooks = hooks;
    this.rng = new Rng(config.seed);
    const worldRng = this.rng.fork();
    const seeds = Array.from({ length: config.servers }, () => worldRng.bytes(32));
    const clientSeeds = Array.from({ length: config.clients }, () => worldRng.bytes(32));
    const clientKeys = clientSeeds.map((s) => publicKeyOfSeed(s));
    this.network = parseNetwork({
      // The first frame ends after every server started, even counting the skew (lib/devnet.ts).
      start: (SIM_EPOCH_MS + config.skewMs + 2 * config.intervalMs) / 1000,
      dishonest: config.dishonest ?? 0,
      interval: config.intervalMs / 1000,
      skew: config.skewMs / 1000,
      blackout: config.blackoutMs / 1000,
      servers: seeds.map((s, i) => ({
        name: `s${i + 1}`,
        key: toHex(publicKeyOfSeed(s)),
        host: "127.0.0.1",
        port: 20_000 + i,
      })),
      genesis: Object.fromEntries(clientKeys.map((k) => [toHex(k), CLIENT_FUNDS])),
    }, "simulated peers.json");
    const genesis = genesisState(this.network.genesis);
    this.checker = new Checker(genesis, this.#signed, this.network.startFrame);
    const faults = config.faults;
    this.nodes = seeds.map((seed, index) => {
      const honest = index < config.servers - config.liars;
      const clockBeyond = faults.has("clock_beyond") && index === 0 && worldRng.chance(0.5);
      return {
        index,
        honest,
        seed,
        signer: signerOf({ seed }),
        disk: new SimDisk(),
        replica: undefined,
        epoch: 0,
        paused: false,
        deferred: [],
        // Within the bound: up to half the skew peers.json allows either way (two servers then differ by
        // at most the skew). Beyond it: one server one to three skews off.
        clockOffsetMs: clockBeyond
          ? worldRng.pick([-1, 1]) * worldRng.int(config.skewMs, 3 * config.skewMs)
          : faults.has("clock")
          ? worldRng.int(-config.skewMs / 2, config.skewMs / 2)
          : 0,
        clockDrift: faults.has("clock") ? (worldRng.float() - 0.5) * 2e-4 : 0,
        requests: new Map(),
        nextRequest: 1,
        durable: undefined,
        writes: new Map(),
        tornAtCrash: false,
        adversary: undefined,
      };
    });
    for (const node of this.nodes) {
      if (!node.honest) {
        const lies = LIE_KINDS.filter((k) => faults.has(k));
        node.adversary = new Adversary({
          node: node.index,
          network: this.network,
          signer: node.signer,
          rng: this.rng.fork(),
          lies: new Set(lies),
        });
      }
    }
    this.#clients = clientSeeds.map((seed, index) => ({
      index,
      publicKey: clientKeys[index]!,
      signer: signerOf({ seed }),
      clockOffsetMs: worldRng.int(-100, 100),
      sent: [],
      nextReq: 1,
      pending: new Map(),
    }));
    this.#latency = this.nodes.map(() => this.nodes.map(() => worldRng.int(1, 15)));
    if (faults.has("loss")) this.#lossP = 0.01 + worldRng.float() * 0.05;
    if (faults.has("duplicate")) this.#dupP = 0.01 + worldRng.float() * 0.03;
  }

  /** Virtual ms since the start. */
  get elapsedMs(): number {
    return this.#now;
  }

  /** The virtual unix time. */
  get nowMs(): number {
    return SIM_EPOCH_MS + this.#now;
  }

  /** The frame the global clock is in. */
  get frame(): number {
    return frameAt(this.nowMs, this.config.intervalMs);
  }

  /** Elapsed ms at which `frame` starts. */
  frameStartElapsed(frame: number): number {
    return frameStartMs(frame, this.config.intervalMs) - SIM_EPOCH_MS;
  }

  #local(node: SimNode): number {
    return Math.floor(SIM_EPOCH_MS + this.#now * (1 + node.clockDrift) + node.clockOffsetMs);
  }

  /** Schedules `run` at elapsed ms `at`, written into the trace as `label`. */
  at(at: number, label: string, run: () => void): void {
    this.#queue.push(Math.max(at, this.#now), { k: "fault", label, run });
  }

  #step(text: string): void {
    if (text === "") return;
    this.#trace.push(
      `${(this.#now / 1000).toFixed(3).padStart(9)}s f${this.frame - this.firstFrame} ${text}`,
    );
    if (this.#trace.length > TRACE_STEPS) this.#trace.shift();
  }

  // ---- processes ---------------------------------------------------------------------------------

  /** Starts (or restarts) a node's process from its disk. */
  start(node: SimNode): void {
    if (node.replica !== undefined) return;
    const recovered = recover(node.disk, this.network);
    if (recovered.votes === "lost") {
      // Wiped, or its votes file torn: it signs nothing for frames up to this one (lib/replica.ts).
      const horizon = frameAt(this.#local(node) + this.config.skewMs, this.config.intervalMs) - 1;
      if (horizon >= Math.max(this.network.startFrame, this.checker.lastCommitted + 1)) {
        this.#amnesic.set(node.index, horizon);
      }
    }
    for (const { name } of recovered.setAside) node.disk.rename(name, `${name}${CORRUPT_SUFFIX}`);
    if (node.honest && !node.tornAtCrash) {
      this.checker.recovered(node.index, this.#now, recovered.state, node.durable);
    }
    node.tornAtCrash = false;
    node.epoch++;
    node.paused = false;
    node.deferred = [];
    node.requests.clear();
    node.writes.clear();
    node.replica = new Replica({
      network: this.network,
      me: node.index,
      signer: node.signer,
      verifier: this.#verifier,
      recovered,
      nowMs: this.#local(node),
      waitForQuorum: this.config.waitForQuorum,
      ablateDecideWait: this.config.ablateDecideWait ?? false,
      archiveKeep: 8,
      trace: (note) => this.#onTrace(node, note),
    });
    this.#step(`s${node.index + 1} start from ${recovered.loaded ?? "genesis"} frame ${recovered.frame}`);
    this.#execute(node, node.replica.drain());
    this.#scheduleTick(node);
  }

  /**
   * Restarts a node on an empty data directory. It lost its votes: until the network certifies a frame
   * past what it may have signed, it cannot vote, and with fewer than a quorum of honest servers left that
   * can, the frame in progress can never be decided (its lost votes may have decided it already), so the
   * network stops for good (the safe outcome); liveness is then not judged for the rest of the run.
   */
  startWiped(node: SimNode): void {
    if (node.replica !== undefined) return;
    node.disk.wipe();
    node.durable = undefined;
    this.#forgetAcks(node);
    this.#wipedAtMs.set(node.index, this.#now);
    this.start(node);
  }

  /** When each node's data directory was last wiped (simulated ms). */
  #wipedAtMs = new Map<number, number>();

  /**
   * A wiped data directory takes the alpha logs with it: what the node acknowledged and its frames have
   * not yet applied is no longer promised (the client was told "accepted", never "committed"; `tx status`
   * answers "never" once those frames are agreed without it, and the truthful invariant judges that answer).
   */
  #forgetAcks(node: SimNode): void {
    for (const key of [...this.#acked.keys()]) {
      if (key.startsWith(`${node.index}:`)) this.#acked.delete(key);
    }
    this.#ackedAll = this.#ackedAll.filter((a) =>
      a.node !== node.index || this.checker.appliedIn(a.id) !== undefined
    );
  }

  /** Nodes restarted on an empty directory, with the frame until which they may not sign. */
  #amnesic = new Map<number, number>();
  /** Set once more than n - q nodes were amnesic at once: liveness is no longer judged. */
  #amnesiaStall = false;

  #checkAmnesia(): void {
    const certified = this.checker.lastCommitted;
    for (const [i, horizon] of this.#amnesic) if (certified >= horizon) this.#amnesic.delete(i);
    // Honest servers that may vote in the agreement in progress, with a clock within the bound (one
    // beyond it refuses proposals of frames that have not ended on its clock): with fewer than a quorum
    // of them, the network cannot decide it (the liars can withhold their votes), ever.
    const voters =
      this.nodes.filter((n) =>
        n.honest && !this.#amnesic.has(n.index) && Math.abs(n.clockOffsetMs) <= this.config.skewMs / 2
      ).length;
    if (voters < this.network.quorum && !this.#amnesiaStall) {
      this.#amnesiaStall = true;
      this.#step(`${this.#amnesic.size} servers lost their votes at once: the network may stop for good`);
    }
  }

  /** Kills a node's process: memory is lost, writes in flight are lost or torn. */
  crash(node: SimNode, why = "crash"): void {
    if (node.replica === undefined) return;
    node.replica = undefined;
    node.epoch++;
    node.paused = false;
    node.deferred = [];
    const torn = node.disk.crash(this.rng, this.config.faults.has("torn_write") && this.rng.chance(0.5));
    node.tornAtCrash = torn !== undefined;
    this.#stats.crashes++;
    this.#step(`s${node.index + 1} ${why}${torn ? ` (torn ${torn.slice(0, 12)})` : ""}`);
  }

  /** Stops delivering anything to a node until `resume`. */
  pause(node: SimNode): void {
    if (node.replica === undefined || node.paused) return;
    node.paused = true;
    this.#step(`s${node.index + 1} paused`);
  }

  resume(node: SimNode): void {
    if (!node.paused) return;
    node.paused = false;
    this.#step(`s${node.index + 1} resumed with ${node.deferred.length} deferred events`);
    for (const q of node.deferred) this.#queue.push(this.#now, q.ev);
    node.deferred = [];
    this.#queue.push(this.#now, { k: "tick", node: node.index, epoch: node.epoch });
  }

  /** Blocks (or unblocks) the links between two groups. */
  partition(group: readonly number[], on: boolean): void {
    for (const a of group) {
      for (const b of this.nodes) {
        if (group.includes(b.index)) continue;
        for (const key of [`${a}>${b.index}`, `${b.index}>${a}`]) {
          if (on) this.#blocked.add(key);
          else this.#blocked.delete(key);
        }
      }
    }
    this.#step(`${on ? "partition" : "heal"} {${group.map((i) => `s${i + 1}`).join(",")}}`);
  }

  #scheduleTick(node: SimNode): void {
    if (node.replica === undefined) return;
    const local = this.#local(node);
    const wakeLocal = node.replica.nextTickMs(local);
    // Local clock to global elapsed time.
    const at = Math.ceil((wakeLocal - node.clockOffsetMs - SIM_EPOCH_MS) / (1 + node.clockDrift));
    this.#queue.push(Math.max(at, this.#now + 1), { k: "tick", node: node.index, epoch: node.epoch });
  }

  #onTrace(node: SimNode, note: TraceNote): void {
    if (note.type === "applied") {
      this.checker.applied(node.index, node.honest, this.#now, note);
      // The alpha's own proposal for its frame must hold every transfer it accepted into it.
      if (
        node.honest && alphaIndex(note.frame, this.config.servers) === node.index &&
        note.ownBuffer
      ) {
        const acked = this.#acked.get(`${node.index}:${note.frame}`);
        if (acked !== undefined) {
          const inBuffer = new Set(note.txIds);
          for (const id of acked) {
            if (!inBuffer.has(id)) {
              this.checker.report(
                "acked",
                this.#now,
                `s${node.index + 1} accepted ${id.slice(0, 12)} into frame ${
                  note.frame - this.firstFrame
                } but its buffer for that frame lost it`,
              );
            }
          }
        }
      }
    } else {
      if (node.honest) {
        this.checker.committed(node.index, this.#now, note.frame, note.state);
        this.#stats.framesCommitted++;
      }
    }
  }

  // ---- actions -----------------------------------------------------------------------------------

  #execute(node: SimNode, actions: Action[]): void {
    if (node.adversary !== undefined && node.replica !== undefined) {
      actions = node.adversary.outgoing(this.#local(node), actions, node.replica);
    }
    for (const action of actions) {
      switch (action.type) {
        case "send":
          this.#sendPeer(node.index, action.to, action.message);
          break;
        case "broadcast":
          for (const other of this.nodes) {
            if (other.index !== node.index) this.#sendPeer(node.index, other.index, action.message);
          }
          break;
        case "persist": {
          if (action.commit !== undefined) node.writes.set(action.id, action.commit);
          if (node.disk.begin(action.id, action.files, action.keep ?? 64, action.remove)) {
            this.#scheduleWrite(node);
          }
          break;
        }
        case "log":
          if (action.event === "lying" && node.honest) {
            // An honest server is never proven lying: the proof makes the others skip its rounds for good.
            const accused = this.network.servers.find((s) => s.name === action.fields.from);
            if (accused !== undefined && this.nodes[accused.index]!.honest) {
              this.checker.report(
                "blame",
                this.#now,
                `s${node.index + 1} logged honest ${accused.name} lying: ${action.fields.reason}`,
              );
            }
          }
          if (
            ["halt", "lying", "no_consensus", "amnesic", "waiting", "catchup_received", "carried", "dropped"]
              .includes(action.event)
          ) {
            this.#step(`s${node.index + 1} ${action.event} ${fieldsText(action.fields)}`);
          }
          break;
        case "answer":
          this.#answer(node, action.request, action.response);
          break;
        case "relay": {
          // The relay gets an id of its own; its answer (or time-out) answers the original request.
          const relayId = node.nextRequest++;
          this.#relayOrigin.set(`${node.index}:${node.epoch}:${relayId}`, action.request);
          const target = this.nodes[action.to]!;
          this.#queue.push(this.#now + this.#clientLatency(), {
            k: "req",
            node: target.index,
            epoch: target.epoch,
            client: -1,
            clientReq: 0,
            kind: Kind.relay,
            arg: action.bytes,
            relay: { node: node.index, epoch: node.epoch, request: relayId },
          });
          this.#queue.push(this.#now + Math.max(500, Math.min(action.timeoutMs, 10_000)), {
            k: "relay_timeout",
            node: node.index,
            epoch: node.epoch,
            request: relayId,
            to: action.to,
          });
          break;
        }
        case "halt":
          this.crash(node, "halt");
          if (!this.#calm || node.honest) {
            // An operator (or systemd) restarts a stopped server a little later.
            const delay = this.rng.int(1, 4) * this.config.intervalMs;
            this.at(this.#now + delay, `restart s${node.index + 1} after halt`, () => this.start(node));
          }
          return;
      }
    }
  }

  #relayOrigin = new Map<string, number>();
  /** The run's first frame (the network's start frame): frames in traces are counted from it. */
  get firstFrame(): number {
    return this.network.startFrame;
  }

  #scheduleWrite(node: SimNode): void {
    this.#queue.push(this.#now + this.rng.int(1, 30), { k: "write", node: node.index, epoch: node.epoch });
  }

  #clientLatency(): number {
    return this.rng.int(1, 8);
  }

  #sendPeer(from: number, to: number, message: Uint8Array[]): void {
    const body = messageBody(message);
    const dest = this.nodes[to]!;
    this.#stats.messages++;
    if (this.#blocked.has(`${from}>${to}`)) return;
    if (this.hooks.dropPeer?.(from, to, body, this)) return;
    if (this.#lossP > 0 && this.rng.chance(this.#lossP)) return;
    const copies = this.#dupP > 0 && this.rng.chance(this.#dupP) ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      let latency = this.#latency[from]![to]! + Math.floor(-Math.log(1 - this.rng.float()) * 4);
      if (this.#slow !== undefined && this.#slow.from === from && this.#slow.to === to) {
        latency *= this.#slow.factor;
      }
      const bound = this.config.boundMs;
      if (bound !== undefined && this.nodes[from]!.honest && dest.honest) {
        latency = Math.min(latency, bound - 1);
      }
      let at = this.#now + latency;
      const link = `${from}>${to}`;
      if (!this.config.faults.has("reorder") || this.#calm) {
        at = Math.max(at, this.#lastDelivery.get(link) ?? 0);
        this.#lastDelivery.set(link, at);
      }
      this.#queue.push(at, { k: "peer", node: to, epoch: dest.epoch, from, body });
    }
  }

  #answer(node: SimNode, request: number, response: Record<string, unknown>): void {
    const origin = node.requests.get(request);
    node.requests.delete(request);
    if (origin === undefined) return;
    if ("node" in origin) {
      this.#queue.push(this.#now + this.#clientLatency(), {
        k: "relayed",
        node: origin.node,
        epoch: origin.epoch,
        request: origin.request,
        to: node.index,
        answer: response,
      });
      return;
    }
    if (origin.client < 0) return;
    this.#queue.push(this.#now + this.#clientLatency(), {
      k: "ans",
      client: origin.client,
      clientReq: origin.clientReq,
      node: node.index,
      response,
      sentMs: this.#now,
    });
  }

  // ---- clients -----------------------------------------------------------------------------------

  #clientAct(client: SimClient): void {
    const rate = 3 / this.config.intervalMs; // about 3 actions per frame per client
    this.#queue.push(this.#now + Math.max(1, Math.floor(-Math.log(1 - this.rng.float()) / rate)), {
      k: "client",
      client: client.index,
    });
    const roll = this.rng.float();
    const node = this.rng.pick(this.nodes);
    const clientNow = this.nowMs + client.clockOffsetMs;
    if (roll < 0.55 || client.sent.length === 0) {
      const payee = this.rng.pick(this.#clients.filter((c) => c !== client));
      const bytes = signTxWith(client.publicKey, client.signer, {
        to: payee.publicKey,
        amount: this.rng.int(1, 1000),
        timestampMs: clientNow,
      });
      const id = txIdOf(bytes);
      this.#signed.add(id);
      client.sent.push({ bytes, id, timestampMs: clientNow });
      this.#clientRequest(client, node, Kind.submit, bytes, id);
    } else if (roll < 0.65) {
      // A double submit or a replay of an earlier transfer, possibly to another server.
      const old = this.rng.pick(client.sent);
      this.#clientRequest(client, node, Kind.submit, old.bytes, old.id);
    } else if (roll < 0.9) {
      const t = this.rng.pick(client.sent.slice(-20));
      const arg = new Uint8Array(40);
      arg.set(hexBytes(t.id), 0);
      new DataView(arg.buffer).setBigUint64(32, BigInt(t.timestampMs));
      this.#clientRequest(client, node, Kind.txStatus, arg, t.id);
    } else {
      this.#clientRequest(client, node, Kind.balance, this.rng.pick(this.#clients).publicKey);
    }
  }

  #clientRequest(client: SimClient, node: SimNode, kind: number, arg: Uint8Array, id?: string): void {
    const clientReq = client.nextReq++;
    client.pending.set(clientReq, { kind, arg, ...(id === undefined ? {} : { id }) });
    this.#queue.push(this.#now + this.#clientLatency(), {
      k: "req",
      node: node.index,
      epoch: node.epoch,
      client: client.index,
      clientReq,
      kind,
      arg,
    });
  }

  #onAnswer(ev: Extract<Ev, { k: "ans" }>): void {
    const client = this.#clients[ev.client]!;
    const req = client.pending.get(ev.clientReq);
    client.pending.delete(ev.clientReq);
    if (req === undefined) return;
    const answering = this.nodes[ev.node]!;
    if (!answering.honest) return;
    const r = ev.response;
    if (req.kind === Kind.submit && r.ok === true) {
      const alpha = this.nodes.find((n) => `s${n.index + 1}` === r.server);
      // An answer still on its way when the alpha's data directory was wiped promises nothing any more.
      const voided = (this.#wipedAtMs.get(alpha?.index ?? -1) ?? -1) >= ev.sentMs;
      if (alpha !== undefined && alpha.honest && !voided) {
        const key = `${alpha.index}:${r.frame}`;
        let set = this.#acked.get(key);
        if (set === undefined) this.#acked.set(key, set = new Set());
        set.add(req.id!);
        this.#ackedAll.push({ id: req.id!, frame: Number(r.frame), node: alpha.index });
      }
    } else if (req.kind === Kind.txStatus && r.ok === true) {
      // A relayed answer comes from the alpha; the answering server is who the client asked.
      const from = this.nodes.find((n) => `s${n.index + 1}` === r.server) ?? answering;
      if (from.honest) this.checker.txStatusAnswer(from.index, this.#now, req.id!, r);
    } else if (req.kind === Kind.balance && r.ok === true) {
      this.checker.balanceAnswer(ev.node, this.#now, req.arg, r);
    }
  }

  // ---- the fault schedule -------------------------------------------------------------------------

  #scheduleFaults(): void {
    const f = this.config.faults;
    const I = this.config.intervalMs;
    const chaosEnd = (this.config.frames - this.config.calmFrames) * I;
    const rng = this.rng.fork();
    const honest = this.nodes.filter((n) => n.honest);
    const draw = (perFrames: number, fn: (at: number) => void) => {
      let t = rng.int(2, 6) * I;
      while (t < chaosEnd) {
        fn(t);
        t += Math.max(I / 4, Math.floor(-Math.log(1 - rng.float()) * perFrames * I));
      }
    };
    if (f.has("crash") || f.has("wipe")) {
      draw(12, (t) => {
        const node = rng.pick(honest);
        const down = rng.int(I / 4, 8 * I);
        const wipe = f.has("wipe") && rng.chance(f.has("crash") ? 0.2 : 1);
        this.at(t, `crash s${node.index + 1}`, () => this.crash(node));
        this.at(t + down, `restart s${node.index + 1}${wipe ? " wiped" : ""}`, () => {
          if (wipe) this.startWiped(node);
          else this.start(node);
        });
      });
    }
    if (f.has("pause")) {
      draw(15, (t) => {
        const node = rng.pick(honest);
        this.at(t, `pause s${node.index + 1}`, () => this.pause(node));
        this.at(t + rng.int(I / 4, 6 * I), `resume s${node.index + 1}`, () => this.resume(node));
      });
    }
    if (f.has("partition")) {
      draw(15, (t) => {
        const size = rng.int(1, this.config.servers - 1);
        const group = rng.shuffle(this.nodes).slice(0, size).map((n) => n.index).sort((a, b) => a - b);
        this.at(t, "partition", () => this.partition(group, true));
        this.at(Math.min(t + rng.int(I / 2, 8 * I), chaosEnd), "heal", () => this.partition(group, false));
      });
    }
    if (f.has("slow_link")) {
      draw(20, (t) => {
        const from = rng.int(0, this.config.servers - 1);
        const to = (from + rng.int(1, this.config.servers - 1)) % this.config.servers;
        const factor = rng.int(10, 60);
        this.at(t, `slow link s${from + 1}>s${to + 1} x${factor}`, () => this.#slow = { from, to, factor });
        this.at(Math.min(t + rng.int(I, 6 * I), chaosEnd), "slow link heals", () => this.#slow = undefined);
      });
    }
    if (f.has("full_disk")) {
      draw(25, (t) => {
        const node = rng.pick(honest);
        this.at(t, `disk full s${node.index + 1}`, () => node.disk.full = true);
        this.at(
          Math.min(t + rng.int(I, 5 * I), chaosEnd),
          `disk freed s${node.index + 1}`,
          () => node.disk.full = false,
        );
      });
    }
    this.at(chaosEnd, "calm: every world fault heals", () => this.#heal());
  }

  #heal(): void {
    this.#calm = true;
    this.#lossP = 0;
    this.#dupP = 0;
    this.#slow = undefined;
    this.#blocked.clear();
    for (const node of this.nodes) {
      node.disk.full = false;
      if (node.paused) this.resume(node);
      if (node.replica === undefined && node.honest) this.start(node);
    }
  }

  // ---- the run -----------------------------------------------------------------------------------

  /**
   * Runs to the end, or to the first violation of an invariant in `stopOn` (default: any), and returns
   * the outcome; violations of other invariants are kept and the run goes on.
   */
  run(options: { stopOn?: ReadonlySet<Invariant> } = {}): SimResult {
    // Every node starts within the first half interval; the network's first frame begins after that.
    const startFrame = this.network.startFrame;
    this.#now = 0;
    for (const node of this.nodes) {
      this.at(
        this.#now + this.rng.int(0, this.config.intervalMs / 2),
        `start s${node.index + 1}`,
        () => this.start(node),
      );
    }
    for (const client of this.#clients) {
      this.#queue.push(this.#now + this.config.intervalMs * 2, { k: "client", client: client.index });
    }
    this.#scheduleFaults();
    this.hooks.setup?.(this);
    for (let f = startFrame + 1; f < startFrame + this.config.frames; f++) {
      this.at(this.frameStartElapsed(f) + this.config.intervalMs / 2, "", () => this.#watchLiveness());
    }
    const endElapsed = this.frameStartElapsed(startFrame + this.config.frames);
    const chaosEndFrame = startFrame + this.config.frames - this.config.calmFrames;
    while (this.#stats.steps < MAX_STEPS) {
      const q = this.#queue.pop();
      if (q === undefined || q.at > endElapsed) break;
      this.#now = q.at;
      this.#stats.steps++;
      try {
        this.#dispatch(q);
      } catch (err) {
        const message = (err as Error).message;
        if (!message.startsWith("Invariant broken")) throw err;
        const node = "node" in q.ev ? q.ev.node : -1;
        this.checker.assertion(node, this.#now, message);
      }
      const stop = this.checker.violations.find((v) => options.stopOn?.has(v.invariant) ?? true);
      if (stop !== undefined) {
        this.#firstTrace ??= [...this.#trace];
        break;
      }
    }
    this.#checkAmnesia();
    if (this.checker.violations.length === 0 && !this.#amnesiaStall) {
      this.#judgeLiveness(startFrame, chaosEndFrame);
    }
    const violations = options.stopOn === undefined ? this.checker.violations : [
      ...this.checker.violations.filter((v) => options.stopOn!.has(v.invariant)),
      ...this.checker.violations.filter((v) => !options.stopOn!.has(v.invariant)),
    ];
    for (const a of this.#ackedAll) {
      if (this.checker.appliedIn(a.id) !== undefined) this.#stats.transfersCommitted++;
    }
    return {
      config: this.config,
      violations,
      trace: this.#firstTrace ?? [...this.#trace],
      stats: this.#stats,
    };
  }

  /** Consecutive frames in which a quorum of honest servers was up, connected and within the bound. */
  #connectedFrames = 0;
  #connectedSet = "";

  /**
   * Liveness while the run goes on: once a majority of honest servers has been up, unpaused, connected
   * to each other without loss and within the clock bound for LIVENESS_FRAMES frames, each of them must
   * have committed a frame at most 4 behind.
   */
  /**
   * More liars than the network tolerates (b = 0 with one): only safety is claimed, a liar may stall it
   * (SECURITY.md), so liveness is not judged unless the run asks for it.
   */
  get #livenessClaimed(): boolean {
    return this.config.liars <= (this.config.dishonest ?? 0) || this.config.judgeLiveness === true;
  }

  #watchLiveness(): void {
    if (!this.#livenessClaimed) return;
    this.#checkAmnesia();
    if (this.#amnesiaStall) return;
    const good = this.nodes.filter((n) =>
      n.honest && n.replica !== undefined && !n.paused && Math.abs(n.clockOffsetMs) <= this.config.skewMs / 2
    );
    const connected = good.every((a) =>
      good.every((b) => a === b || !this.#blocked.has(`${a.index}>${b.index}`))
    );
    const calmLinks = this.#lossP === 0 && this.#slow === undefined;
    // The same servers (same processes) all along: a restart or a recovery starts the count again.
    const who = good.map((n) => `${n.index}:${n.epoch}`).join(",");
    if (good.length >= this.network.quorum && connected && calmLinks && who === this.#connectedSet) {
      this.#connectedFrames++;
    } else this.#connectedFrames = 0;
    this.#connectedSet = who;
    if (this.#connectedFrames < LIVENESS_FRAMES) return;
    for (const n of good) {
      const committed = n.replica!.committed.frame;
      if (committed < this.frame - 4) {
        this.checker.report(
          "liveness",
          this.#now,
          `s${n.index + 1} last committed frame ${
            committed < 0 ? "none" : committed - this.firstFrame
          } at frame ${
            this.frame - this.firstFrame
          }, though ${good.length} honest servers were up and connected for ${this.#connectedFrames} frames`,
        );
        return;
      }
    }
  }

  /** Over the calm end: every honest server commits recent frames and acknowledged transfers commit. */
  #judgeLiveness(startFrame: number, chaosEndFrame: number): void {
    if (!this.#livenessClaimed) return;
    const end = startFrame + this.config.frames;
    const settle = chaosEndFrame + 6;
    if (end - settle < 4) return;
    for (const node of this.nodes) {
      // A server whose clock is off by more than the skew peers.json allows is outside the bound.
      if (!node.honest || Math.abs(node.clockOffsetMs) > this.config.skewMs / 2) continue;
      const committed = node.replica?.committed.frame ?? -1;
      if (committed < end - 4) {
        this.checker.report(
          "liveness",
          this.#now,
          `s${node.index + 1} last committed frame ${
            committed < 0 ? "none" : committed - startFrame
          } of ${this.config.frames}, ` +
            `${end - settle} frames after every fault healed`,
        );
        return;
      }
    }
    for (const a of this.#ackedAll) {
      if (a.frame < settle || a.frame > end - 4) continue;
      if (this.checker.appliedIn(a.id) === undefined) {
        this.checker.report(
          "liveness",
          this.#now,
          `transfer ${a.id.slice(0, 12)} accepted by s${a.node + 1} for frame ${
            a.frame - startFrame
          } never committed`,
        );
        return;
      }
    }
  }

  #dispatch(q: Queued): void {
    const ev = q.ev;
    if (ev.k === "fault") {
      this.#step(ev.label);
      ev.run();
      return;
    }
    if (ev.k === "client") return this.#clientAct(this.#clients[ev.client]!);
    if (ev.k === "ans") return this.#onAnswer(ev);
    const node = this.nodes[ev.node]!;
    if (ev.epoch !== node.epoch || node.replica === undefined) return;
    if (node.paused) {
      node.deferred.push(q);
      return;
    }
    const replica = node.replica;
    const now = this.#local(node);
    switch (ev.k) {
      case "tick":
        this.#execute(node, replica.tick(now));
        if (node.replica === replica) {
          this.#execute(node, node.adversary?.tick(now, replica) ?? []);
          this.#scheduleTick(node);
        }
        break;
      case "peer": {
        node.adversary?.observe(ev.body);
        this.#execute(node, replica.peerMessage(now, ev.body).actions);
        break;
      }
      case "req": {
        const request = node.nextRequest++;
        node.requests.set(
          request,
          ev.relay ?? { client: ev.client, clientReq: ev.clientReq },
        );
        this.#execute(node, replica.request(now, request, ev.kind, ev.arg));
        break;
      }
      case "relayed":
      case "relay_timeout": {
        const key = `${node.index}:${node.epoch}:${ev.request}`;
        const origin = this.#relayOrigin.get(key);
        if (origin === undefined) return;
        this.#relayOrigin.delete(key);
        const answer = ev.k === "relayed" ? ev.answer : { error: "timed out" };
        this.#execute(node, replica.relayed(now, origin, ev.to, answer));
        break;
      }
      case "write": {
        const { id, error } = node.disk.complete();
        const w = node.writes.get(id);
        node.writes.delete(id);
        if (error === undefined && w !== undefined) node.durable = w;
        if (node.disk.busy) this.#scheduleWrite(node);
        this.#execute(node, replica.written(now, id, error));
        break;
      }
    }
  }
}

/** `verifySignature` with a bounded memo of its answers. */
export function memoVerifier(maxEntries = 200_000): Verifier {
  const memo = new Map<string, boolean>();
  return (publicKey, message, signature) => {
    const key = toHex(publicKey) + toHex(signature) + toHex(message);
    let ok = memo.get(key);
    if (ok === undefined) {
      ok = verifySignature(publicKey, message, signature);
      if (memo.size >= maxEntries) memo.clear();
      memo.set(key, ok);
    }
    return ok;
  };
}

function fieldsText(fields: Record<string, unknown>): string {
  return Object.entries(fields).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`).join(" ");
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function txIdOf(bytes: Uint8Array): string {
  return decodeTx(bytes)!.id;
}
