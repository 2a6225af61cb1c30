// Tests of lib/replica.ts: the frame protocol as a deterministic state machine. Two kinds of test:
//
// - one replica driven by hand: the test signs the peers' proposals, votes and commits itself, feeds them
//   in at chosen times and reads the actions that come back (which rule fired, what is written, what is
//   sent, in which order);
// - a small cluster (class Cluster below): n replicas on a virtual clock, each broadcast delivered to the
//   others and each send to one after a latency, each persist completed with written() after a delay on a
//   per-server disk (in order, as lib/server.ts does), with hooks to drop or delay messages and to hold or
//   fail writes, and crash/restart from that disk through lib/recovery.ts.
//
// The network: three servers, interval 1 s, skew 0.2 s, blackout 0.1 s, first frame F0. F0 is a multiple
// of 3, so servers[0] is the alpha of F0 (and proposes round 0 of its agreement), servers[1] of F0 + 1,
// servers[2] of F0 + 2.

import assert from "node:assert/strict";
import { concatBytes, fromHex, readU64, toHex, viewOf } from "../lib/_bytes.ts";
import { NIL, type VoteStep } from "../lib/agreement.ts";
import { archiveName } from "../lib/archive.ts";
import {
  checkCommit,
  Code,
  type Commit,
  commitFileHash,
  decodeCommit,
  encodeCommit,
  frameDigest,
  pendingPayload,
  proposalPayload,
  startPayload,
  txsHash,
  votePayload,
  wantPayload,
} from "../lib/certificate.ts";
import { frameContext, frameStartMs, lastFrameFor, recentFrames } from "../lib/frames.ts";
import { sha256 } from "../lib/hash.ts";
import { type KeyPair, signerOf, type Verifier, verifySignature } from "../lib/keys.ts";
import { apply, type State } from "../lib/ledger.ts";
import { type Network, parseNetwork } from "../lib/peers.ts";
import { alphaLogName, genesisRecovered, recover, type Recovered } from "../lib/recovery.ts";
import {
  type Action,
  BEHIND_GRACE_INTERVALS,
  EVIDENCE_PREFIX,
  MAX_MISSED_FRAMES,
  MAX_ROUND_LEAD,
  Replica,
  SKIP_AFTER_FRAMES,
  STARTUP_GRACE_FRAMES,
  TAKING_PART_INTERVALS,
} from "../lib/replica.ts";
import { decodeTx, type Tx, TX_SIGNED_BYTES } from "../lib/tx.ts";
import { decodeVotes, encodeVotes, VOTES_FILE, type VotesRecord } from "../lib/votes_file.ts";
import { Kind, LENGTH_PREFIX_BYTES, messageBody, PEER_HEAD_BYTES, signPeerMessage } from "../lib/wire.ts";
import { assertThrowsError, makeKeyPair, makeKeyPairs, signTransfer } from "./_helpers.ts";

/** The network's first frame; a multiple of 3, so servers[0] is its alpha. */
const F0 = 1_700_000_001;
const T0 = F0 * 1_000;
/** Unix ms at which frame F0 + k ends (and F0 + k + 1 starts). */
const endOf = (k: number) => T0 + (k + 1) * 1_000;

const serverKeys = await makeKeyPairs(3);
const alice = await makeKeyPair(10);
const bob = await makeKeyPair(11);
const stranger = await makeKeyPair(99);

const NETWORK: Network = parseNetwork({
  start: F0,
  interval: 1,
  skew: 0.2,
  servers: serverKeys.map((k, i) => ({ name: `s${i}`, key: k.publicHex, host: "127.0.0.1", port: 7000 + i })),
  genesis: { [alice.publicHex]: 1000 },
});
const GENESIS = genesisRecovered(NETWORK);
/** With b = 0 a certificate decides once it stood 2Δ (half the interval) with no vote against it. */
const DECIDE_WAIT_MS = 500;
/** Frames a transfer can be valid in (3 with this timing). */
const SPAN = recentFrames(NETWORK.timing);

// ---- starting replicas -----------------------------------------------------------------------------

/** A start from the genesis with a votes file that holds nothing: not amnesic. */
function genesisStart(overrides: Partial<Recovered> = {}): Recovered {
  return {
    ...GENESIS,
    votes: undefined,
    fresh: false,
    setAside: [],
    alpha: new Map(),
    staleAlpha: [],
    ...overrides,
  };
}

interface StartOptions {
  readonly recovered?: Recovered;
  readonly waitForQuorum?: boolean;
}

/** Server `me` started at `nowMs`; its start actions not yet drained. */
function startReplica(me: number, nowMs = T0, options: StartOptions = {}): Replica {
  return new Replica({
    network: NETWORK,
    me,
    signer: signerOf(serverKeys[me]!),
    recovered: options.recovered ?? genesisStart(),
    nowMs,
    ...(options.waitForQuorum === undefined ? {} : { waitForQuorum: options.waitForQuorum }),
  });
}

/** startReplica() with its start actions drained, so the next actions are the test's. */
function newReplica(me: number, nowMs = T0, options: StartOptions = {}): Replica {
  const replica = startReplica(me, nowMs, options);
  replica.drain();
  return replica;
}

// ---- signed messages, as the peers would send them ---------------------------------------------------

/** A peer message body (kind byte first) of `payload` signed by `keyPair`. */
function signedBody(keyPair: KeyPair, payload: Uint8Array[]): Uint8Array {
  return messageBody(signPeerMessage(keyPair.publicKey, signerOf(keyPair), payload));
}

interface SlotOptions {
  readonly height?: number;
  readonly round?: number;
  readonly prevDigest?: string;
}

function slotOf(o: SlotOptions) {
  return { height: o.height ?? F0, round: o.round ?? 0, prevDigest: o.prevDigest ?? GENESIS.digest };
}

/** Server `by`'s proposal (default: round 0 of F0's agreement, frame F0, no transfers). */
function proposalBody(
  by: number,
  o: SlotOptions & { polRound?: number; frame?: number; txs?: readonly Tx[]; key?: KeyPair } = {},
): Uint8Array {
  const slot = slotOf(o);
  const payload = proposalPayload(NETWORK.id, slot, o.polRound ?? -1, o.frame ?? slot.height, o.txs ?? []);
  return signedBody(o.key ?? serverKeys[by]!, payload);
}

/** Server `by`'s prevote or precommit for `digest` (default: round 0 of F0's agreement). */
function voteBody(by: number, step: VoteStep, digest: string, o: SlotOptions = {}): Uint8Array {
  return signedBody(serverKeys[by]!, [votePayload(step, NETWORK.id, slotOf(o), digest)]);
}

/** Server `by`'s start of an agreement (default: F0's). */
function startBody(by: number, o: SlotOptions = {}): Uint8Array {
  return signedBody(serverKeys[by]!, [startPayload(NETWORK.id, slotOf(o))]);
}

/** What a frame of `txs` on `parent` gives: its state, the transfers' results and its digest. */
function outcome(
  frame: number,
  txs: readonly Tx[] = [],
  parent: State = GENESIS.state,
  prev = GENESIS.digest,
) {
  const { state, results } = apply(parent, txs, frameContext(frame, NETWORK.timing));
  const txsDigest = txsHash(txs);
  return { state, results, txsDigest, digest: frameDigest(NETWORK.id, frame, prev, state, txsDigest) };
}

/** A commit of `frame` certified by the precommits of `signers` (signed here with their keys). */
function certify(
  frame: number,
  o: SlotOptions & { txs?: readonly Tx[]; parent?: State; signers?: readonly number[] } = {},
): Commit {
  const slot = slotOf({ height: frame, ...o });
  const { state, txsDigest, digest } = outcome(frame, o.txs, o.parent, slot.prevDigest);
  const payload = sha256(votePayload("precommit", NETWORK.id, slot, digest));
  const signatures = (o.signers ?? [0, 2]).map((s) => ({
    signer: s,
    signature: signerOf(serverKeys[s]!)(payload),
  }));
  return { frame, state, txsDigest, cert: { ...slot, digest, signatures } };
}

/** `commit` as a commit message (code 5) sent by `by`. */
function commitBody(by: number, commit: Commit): Uint8Array {
  return signedBody(serverKeys[by]!, encodeCommit(NETWORK.id, commit));
}

/** A peer message body decoded as far as the tests look at it. */
interface Peeked {
  /** Index of the signing server, or -1. */
  readonly signer: number;
  readonly code: number;
  readonly height: number;
  readonly round: number;
  /** Votes: the digest voted for. */
  readonly digest: string | undefined;
  /** Proposals: the frame and the number of transfers. */
  readonly frame: number | undefined;
  readonly txs: number | undefined;
}

function peek(body: Uint8Array): Peeked {
  const signer = NETWORK.servers.findIndex((s) => s.keyHex === toHex(body.subarray(1, 33)));
  const payload = body.subarray(PEER_HEAD_BYTES);
  const view = viewOf(payload);
  const code = payload[0]!;
  const height = payload.length >= 41 ? readU64(view, 33) : -1;
  const round = payload.length >= 45 && code !== Code.want ? view.getUint32(41) : -1;
  const isVote = code === Code.prevote || code === Code.precommit;
  const isProposal = code === Code.proposal;
  return {
    signer,
    code,
    height,
    round,
    digest: isVote ? toHex(payload.subarray(77, 109)) : undefined,
    frame: isProposal ? readU64(view, 81) : undefined,
    txs: isProposal ? (payload.length - 89) / 144 : undefined,
  };
}

const STEP_OF: Record<number, VoteStep> = { [Code.prevote]: "prevote", [Code.precommit]: "precommit" };

// ---- reading actions ---------------------------------------------------------------------------------

type Persist = Extract<Action, { type: "persist" }>;

function ofType<T extends Action["type"]>(
  actions: readonly Action[],
  type: T,
): Extract<Action, { type: T }>[] {
  return actions.filter((a): a is Extract<Action, { type: T }> => a.type === type);
}

/** The fields of every log action named `event`. */
function events(actions: readonly Action[], event: string): Record<string, unknown>[] {
  return ofType(actions, "log").filter((a) => a.event === event).map((a) => a.fields);
}

/** The one answer among `actions`. */
function answerOf(actions: readonly Action[]): Record<string, unknown> {
  const answers = ofType(actions, "answer");
  assert.equal(answers.length, 1, JSON.stringify(actions.map((a) => a.type)));
  return answers[0]!.response;
}

/** The persist actions writing the votes file, with the record each writes. */
function votesWrites(actions: readonly Action[]): { persist: Persist; record: VotesRecord }[] {
  return ofType(actions, "persist").filter((p) => p.files[0]?.name === VOTES_FILE).map((persist) => {
    const record = decodeVotes(persist.files[0]!.bytes);
    if ("problem" in record) assert.fail(`a votes file that does not decode: ${record.problem}`);
    return { persist, record };
  });
}

/** The persist actions writing an archive entry (a commit). */
function commitWrites(actions: readonly Action[]): Persist[] {
  return ofType(actions, "persist").filter((p) => p.commit !== undefined);
}

/** The messages among `actions` (broadcasts and sends), decoded. */
function messagesIn(actions: readonly Action[]): (Peeked & { body: Uint8Array; to: number | "all" })[] {
  return actions.flatMap((a) =>
    a.type === "broadcast" || a.type === "send"
      ? [{
        ...peek(messageBody(a.message)),
        body: messageBody(a.message),
        to: a.type === "send" ? a.to : "all",
      }]
      : []
  );
}

/**
 * Completes every persist in `actions` (and in the actions that completing it returns) at `nowMs`, or only
 * those `which` picks; returns all the actions.
 */
function settle(
  replica: Replica,
  nowMs: number,
  actions: readonly Action[],
  which: (p: Persist) => boolean = () => true,
): Action[] {
  const out = [...actions];
  for (let i = 0; i < out.length; i++) {
    const a = out[i]!;
    if (a.type === "persist" && which(a)) out.push(...replica.written(nowMs, a.id));
  }
  return out;
}

/** What an evidence file holds: each signed message body with its u32 length before it. */
function evidenceOf(...bodies: Uint8Array[]): Uint8Array {
  return concatBytes(bodies.flatMap((b) => {
    const prefix = new Uint8Array(LENGTH_PREFIX_BYTES);
    new DataView(prefix.buffer).setUint32(0, b.length);
    return [prefix, b];
  }));
}

/** Actions as text, every byte array in hex: two equal texts are byte-identical actions. */
function serialise(actions: readonly unknown[]): string {
  return JSON.stringify(actions, (_, v) => (v instanceof Uint8Array ? toHex(v) : v));
}

/** The argument of a txStatus request: the transfer's id and timestamp. */
function txQuery(tx: Tx): Uint8Array {
  const query = new Uint8Array(40);
  query.set(fromHex(tx.id, 32)!);
  new DataView(query.buffer).setBigUint64(32, BigInt(tx.timestampMs));
  return query;
}

/** A transfer of `amount` from alice to bob stamped `timestampMs` (default inside frame F0). */
async function payment(amount = 300, timestampMs = T0 + 100): Promise<Tx> {
  return await signTransfer(alice, bob, { amount, timestampMs });
}

/** `tx` with one bit of its payer's signature flipped: it decodes but does not verify. */
function forged(tx: Tx): Tx {
  const bytes = tx.bytes.slice();
  bytes[100]! ^= 1;
  return decodeTx(bytes)!;
}

// ---- the cluster -------------------------------------------------------------------------------------

/** A peer message on its way, decoded for the hooks. */
interface Envelope {
  readonly from: number;
  readonly to: number;
  readonly body: Uint8Array;
  readonly msg: Peeked;
}

interface Scheduled {
  readonly at: number;
  readonly seq: number;
  readonly node: number;
  readonly epoch: number;
  readonly run: () => void;
}

/** Ids of relayed requests start here, apart from the tests' own request ids. */
const RELAY_IDS = 1_000_000;

/**
 * `n` replicas on a virtual clock. Ticks come when each replica asks (nextTickMs); messages arrive after
 * `latencyMs` (plus what `route` adds); each server's writes complete one after another, `writeMs` each,
 * on its own disk (a map of file names to bytes), unless `writeHook` holds or fails them.
 */
class Cluster {
  now: number;
  readonly replicas: (Replica | undefined)[];
  /** Every action of each server, over all its processes, with the time it was returned. */
  readonly history: { at: number; action: Action }[][];
  /** Each server's data directory: what its completed writes left. */
  readonly disks: Map<string, Uint8Array>[];
  /** Each server's completed writes: when issued and done, and the error if it failed. */
  readonly writes: { persist: Persist; issuedAt: number; doneAt: number; error: string | undefined }[][];
  /** Every (height:round:step) each server's key signed a vote for and sent, with the digests. */
  readonly sentVotes: Map<string, Set<string>>[];
  /** Votes a server sent while the votes file holding them was not written yet. */
  readonly sentBeforeWritten: string[] = [];
  latencyMs = 5;
  writeMs = 10;
  /** Each message's fate: false drops it, a number delays it by that much more (ms). */
  route: (m: Envelope) => boolean | number = () => true;
  /** Each write's fate when it starts: true holds it until releaseWrites(), a string fails it so. */
  writeHook: (node: number, persist: Persist) => boolean | string = () => false;

  #queue: Scheduled[] = [];
  #seq = 0;
  #epochs: number[];
  #nextTick: number[];
  #pending: { persist: Persist; issuedAt: number }[][];
  #writing: ("no" | "scheduled" | "held")[];
  /** Votes (height:round:step:digest) in each server's votes file on disk. */
  #durableVotes: Set<string>[];
  #relays = new Map<string, { from: number; request: number }>();
  #nextRelay = RELAY_IDS;

  constructor(
    nowMs = T0,
    options: { start?: readonly number[]; recovered?: (i: number) => Recovered; waitForQuorum?: boolean } =
      {},
  ) {
    const n = NETWORK.servers.length;
    this.now = nowMs;
    this.replicas = Array.from({ length: n }, () => undefined);
    this.history = Array.from({ length: n }, () => []);
    this.disks = Array.from({ length: n }, () => new Map());
    this.writes = Array.from({ length: n }, () => []);
    this.sentVotes = Array.from({ length: n }, () => new Map());
    this.#epochs = Array.from({ length: n }, () => 0);
    this.#nextTick = Array.from({ length: n }, () => Infinity);
    this.#pending = Array.from({ length: n }, () => []);
    this.#writing = Array.from({ length: n }, () => "no" as const);
    this.#durableVotes = Array.from({ length: n }, () => new Set());
    for (const i of options.start ?? [0, 1, 2]) {
      this.start(i, options.recovered?.(i) ?? genesisStart(), options.waitForQuorum);
    }
  }

  /** Starts server `i` from `recovered` (default: what its disk holds, read by lib/recovery.ts). */
  start(i: number, recovered?: Recovered, waitForQuorum?: boolean): Replica {
    assert.equal(this.replicas[i], undefined, `s${i} is already running`);
    const disk = this.disks[i]!;
    const replica = startReplica(i, this.now, {
      recovered: recovered ?? recover({ names: () => [...disk.keys()], read: (n) => disk.get(n) }, NETWORK),
      ...(waitForQuorum === undefined ? {} : { waitForQuorum }),
    });
    this.replicas[i] = replica;
    this.#epochs[i]!++;
    this.#execute(i, replica.drain());
    this.#nextTick[i] = replica.nextTickMs(this.now);
    return replica;
  }

  /** Stops server `i` at once: messages to it and writes not completed are lost. */
  crash(i: number): void {
    this.replicas[i] = undefined;
    this.#epochs[i]!++;
    this.#nextTick[i] = Infinity;
    this.#pending[i] = [];
    this.#writing[i] = "no";
  }

  replica(i: number): Replica {
    const r = this.replicas[i];
    assert.ok(r !== undefined, `s${i} is not running`);
    return r;
  }

  /** Runs every tick, delivery and write due up to `untilMs`. */
  runUntil(untilMs: number): void {
    while (true) {
      let at = this.#queue[0]?.at ?? Infinity;
      let ticking = -1;
      this.replicas.forEach((r, i) => {
        if (r !== undefined && !r.halted && this.#nextTick[i]! < at) [at, ticking] = [this.#nextTick[i]!, i];
      });
      if (at > untilMs) break;
      this.now = at;
      if (ticking >= 0) {
        const r = this.replicas[ticking]!;
        this.#execute(ticking, r.tick(at));
        this.#nextTick[ticking] = r.nextTickMs(at);
        continue;
      }
      const event = this.#queue.shift()!;
      if (this.replicas[event.node] !== undefined && this.#epochs[event.node] === event.epoch) event.run();
    }
    this.now = untilMs;
  }

  /** A client request to server `i` now; returns the actions it caused at once. */
  request(i: number, request: number, kind: number, arg: Uint8Array): Action[] {
    const actions = this.replica(i).request(this.now, request, kind, arg);
    this.#execute(i, actions);
    return actions;
  }

  /** Hands server `i` a message now, as if it had just arrived; returns the actions it caused. */
  inject(i: number, body: Uint8Array): Action[] {
    const { actions } = this.replica(i).peerMessage(this.now, body);
    this.#execute(i, actions);
    return actions;
  }

  /** The answer server `i` gave to client request `request`, if any yet. */
  answer(i: number, request: number): Record<string, unknown> | undefined {
    for (const { action } of this.history[i]!) {
      if (action.type === "answer" && action.request === request) return action.response;
    }
    return undefined;
  }

  /** Completes the writes held by writeHook (the hook is asked again for the writes after them). */
  releaseWrites(): void {
    this.#writing.forEach((w, i) => {
      if (w !== "held") return;
      this.#writing[i] = "scheduled";
      this.#schedule(this.now + this.writeMs, i, () => this.#finishWrite(i, undefined));
    });
  }

  /** Server `i`'s actions, over all its processes. */
  actions(i: number): Action[] {
    return this.history[i]!.map((h) => h.action);
  }

  events(i: number, event: string): Record<string, unknown>[] {
    return events(this.actions(i), event);
  }

  /** The messages server `i` sent (broadcast or send), decoded, with the time. */
  sent(i: number): (Peeked & { at: number })[] {
    return this.history[i]!.flatMap(({ at, action }) =>
      action.type === "broadcast" || action.type === "send"
        ? [{ ...peek(messageBody(action.message)), at }]
        : []
    );
  }

  #schedule(at: number, node: number, run: () => void): void {
    const event = { at, seq: this.#seq++, node, epoch: this.#epochs[node]!, run };
    let lo = 0;
    let hi = this.#queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const q = this.#queue[mid]!;
      if (q.at < at || (q.at === at && q.seq < event.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.#queue.splice(lo, 0, event);
  }

  #execute(node: number, actions: readonly Action[]): void {
    for (const action of actions) {
      this.history[node]!.push({ at: this.now, action });
      switch (action.type) {
        case "broadcast":
        case "send": {
          const body = messageBody(action.message);
          const msg = peek(body);
          this.#checkOwnVote(node, msg);
          const targets = action.type === "send" ? [action.to] : [0, 1, 2].filter((j) => j !== node);
          for (const to of targets) this.#deliver({ from: node, to, body, msg });
          break;
        }
        case "persist":
          this.#pending[node]!.push({ persist: action, issuedAt: this.now });
          this.#startWrite(node);
          break;
        case "relay": {
          const id = this.#nextRelay++;
          this.#relays.set(`${action.to}:${id}`, { from: node, request: action.request });
          this.#schedule(this.now + this.latencyMs, action.to, () => {
            this.#execute(action.to, this.replica(action.to).request(this.now, id, Kind.relay, action.bytes));
          });
          break;
        }
        case "answer": {
          const origin = this.#relays.get(`${node}:${action.request}`);
          if (origin === undefined) break;
          this.#relays.delete(`${node}:${action.request}`);
          this.#schedule(this.now + this.latencyMs, origin.from, () => {
            const r = this.replica(origin.from);
            this.#execute(origin.from, r.relayed(this.now, origin.request, node, action.response));
          });
          break;
        }
        default:
          break;
      }
    }
  }

  /** Records a vote signed by the sender itself, and whether its votes file held it already. */
  #checkOwnVote(node: number, msg: Peeked): void {
    const step = STEP_OF[msg.code];
    if (msg.signer !== node || step === undefined) return;
    const slot = `${msg.height}:${msg.round}:${step}`;
    let digests = this.sentVotes[node]!.get(slot);
    if (digests === undefined) this.sentVotes[node]!.set(slot, digests = new Set());
    digests.add(msg.digest!);
    if (!this.#durableVotes[node]!.has(`${slot}:${msg.digest}`)) {
      this.sentBeforeWritten.push(`s${node} ${slot} ${msg.digest!.slice(0, 12)} at ${this.now - T0}`);
    }
  }

  #deliver(m: Envelope): void {
    const fate = this.route(m);
    if (fate === false) return;
    const delay = this.latencyMs + (typeof fate === "number" ? fate : 0);
    this.#schedule(this.now + delay, m.to, () => {
      const { actions } = this.replica(m.to).peerMessage(this.now, m.body);
      this.#execute(m.to, actions);
    });
  }

  #startWrite(node: number): void {
    const head = this.#pending[node]![0];
    if (head === undefined || this.#writing[node] !== "no") return;
    const fate = this.writeHook(node, head.persist);
    if (fate === true) {
      this.#writing[node] = "held";
      return;
    }
    this.#writing[node] = "scheduled";
    const error = typeof fate === "string" ? fate : undefined;
    this.#schedule(this.now + this.writeMs, node, () => this.#finishWrite(node, error));
  }

  #finishWrite(node: number, error: string | undefined): void {
    const { persist, issuedAt } = this.#pending[node]!.shift()!;
    this.#writing[node] = "no";
    if (error === undefined) {
      const disk = this.disks[node]!;
      for (const f of persist.files) {
        disk.set(f.name, f.append ? concatBytes([disk.get(f.name) ?? new Uint8Array(0), f.bytes]) : f.bytes);
        if (f.name === VOTES_FILE) {
          const record = decodeVotes(f.bytes);
          assert.ok(!("problem" in record));
          for (const s of record.memory.signed) {
            this.#durableVotes[node]!.add(`${record.height}:${s.round}:${s.step}:${s.digest}`);
          }
        }
      }
      for (const name of persist.remove) disk.delete(name);
    }
    this.writes[node]!.push({ persist, issuedAt, doneAt: this.now, error });
    this.#execute(node, this.replica(node).written(this.now, persist.id, error));
    this.#startWrite(node);
  }
}

/** Every server in `which` committed `frame` with one digest; returns it. */
function assertAgreed(cluster: Cluster, frame: number, which: readonly number[] = [0, 1, 2]): string {
  const digests = new Set<string>();
  for (const i of which) {
    const entry = commitWrites(cluster.actions(i)).find((p) => p.commit!.frame === frame);
    assert.ok(entry !== undefined, `s${i} committed frame F0 + ${frame - F0}`);
    digests.add(decodeCommit(entry.files[0]!.bytes).commit.cert.digest);
  }
  assert.equal(digests.size, 1, `one digest for frame F0 + ${frame - F0}`);
  return [...digests][0]!;
}

// ---- starting ----------------------------------------------------------------------------------------

Deno.test("Replica starts from the recovered state and logs a start event", () => {
  const replica = startReplica(1, T0 + 250);
  const start = events(replica.drain(), "start");
  assert.deepEqual(start, [{
    frame: F0,
    listen: "127.0.0.1:7001",
    loaded: "genesis",
    committed: F0 - 1,
    digest: GENESIS.digest.slice(0, 12),
    accounts: 1,
    servers: 3,
    quorum: 2,
    network: NETWORK.id.slice(0, 16),
    interval_ms: 1000,
  }]);
  assert.deepEqual(replica.drain(), [], "drain() hands the queued actions out once");
  assert.equal(replica.headFrame, F0, "the genesis is the certified state of the frame before F0");
  assert.equal(replica.committed.frame, F0 - 1);
  assert.equal(replica.committed.hash, GENESIS.digest);
  assert.equal(replica.me.name, "s1");
});

Deno.test("Replica refuses an index that is not a server in peers.json", () => {
  const options = { network: NETWORK, me: 3, signer: signerOf(serverKeys[0]!), recovered: genesisStart() };
  assertThrowsError(() => new Replica({ ...options, nowMs: T0 }), RangeError, /^No server 3 in peers\.json$/);
});

Deno.test("Replica throws when time goes backwards", () => {
  const replica = newReplica(0, T0 + 500);
  replica.tick(T0 + 600);
  assertThrowsError(
    () => replica.tick(T0 + 599),
    Error,
    new RegExp(`^Invariant broken: time went back from ${T0 + 600} to ${T0 + 599}$`),
  );
  assertThrowsError(
    () => replica.request(T0 + 1, 1, Kind.status, new Uint8Array(0)),
    Error,
    /time went back/,
  );
  assertThrowsError(() => newReplica(1, T0).peerMessage(T0 - 1, new Uint8Array(1)), Error, /time went back/);
});

Deno.test("Replica asks for a tick every quarter interval, and just after the frame's end", () => {
  const replica = newReplica(0);
  assert.equal(replica.nextTickMs(T0), T0 + 251);
  assert.equal(replica.nextTickMs(T0 + 900), T0 + 1_001, "F0 ends at T0 + 1000: its agreement starts then");
});

// ---- client requests ---------------------------------------------------------------------------------

Deno.test("the alpha answers a submit with ok only once the transfer is in its alpha log on disk", async () => {
  const replica = newReplica(0);
  const tx = await payment();
  const actions = replica.request(T0 + 100, 7, Kind.submit, tx.bytes);
  assert.deepEqual(ofType(actions, "answer"), [], "no answer before the write");
  const persists = ofType(actions, "persist");
  assert.equal(persists.length, 1);
  assert.deepEqual(persists[0]!.files, [{ name: alphaLogName(F0), bytes: tx.bytes, append: true }]);
  assert.deepEqual(replica.alphaBuffer(F0).map((t) => t.id), [tx.id]);
  assert.equal(replica.metrics.txAccepted, 0);
  const answered = replica.written(T0 + 110, persists[0]!.id);
  assert.deepEqual(answered, [{
    type: "answer",
    request: 7,
    response: { ok: true, id: tx.id, frame: F0, server: "s0" },
  }]);
  assert.equal(replica.metrics.txAccepted, 1);
  assertThrowsError(() => replica.written(T0 + 111, persists[0]!.id), Error, /write \d+ completed twice/);
});

Deno.test("transfers an alpha accepted that its agreed frame left out go to the alpha accepting now; no client is answered for them", async () => {
  const s0 = newReplica(0);
  const tx = await payment();
  const accepted = s0.request(T0 + 100, 7, Kind.submit, tx.bytes);
  s0.written(T0 + 110, ofType(accepted, "persist")[0]!.id);
  // s1 and s2 decided F0 without s0's proposal (it came too late): s0 adopts their certified commit,
  // once its certificate stood 2Δ unopposed.
  s0.tick(endOf(0) + 300);
  const held = s0.peerMessage(endOf(0) + 300, commitBody(1, certify(F0, { signers: [1, 2] }))).actions;
  assert.deepEqual(events(held, "carried"), []);
  const actions = s0.tick(endOf(0) + 300 + DECIDE_WAIT_MS);
  assert.equal(s0.committed.frame, F0);
  assert.deepEqual(events(actions, "carried"), [{ frame: F0, transfers: 1, dropped: 0 }]);
  const relays = ofType(actions, "relay");
  assert.equal(relays.length, 1);
  assert.equal(relays[0]!.to, 1, "F0 + 1's alpha");
  assert.equal(toHex(relays[0]!.bytes), toHex(tx.bytes));
  assert.ok(relays[0]!.request < 0, "not a client's request id");
  const answer = { ok: true, id: tx.id, frame: F0 + 1, server: "s1" };
  assert.deepEqual(ofType(s0.relayed(endOf(0) + 820, relays[0]!.request, 1, answer), "answer"), []);
  assert.deepEqual(s0.alphaBuffer(F0), [], "the old buffer is gone");
});

Deno.test("transfers the agreed frame applied are not passed on", async () => {
  const s0 = newReplica(0);
  const tx = await payment();
  const accepted = s0.request(T0 + 100, 7, Kind.submit, tx.bytes);
  s0.written(T0 + 110, ofType(accepted, "persist")[0]!.id);
  s0.tick(endOf(0) + 300);
  const actions = [
    ...s0.peerMessage(endOf(0) + 300, commitBody(1, certify(F0, { signers: [1, 2], txs: [tx] }))).actions,
    ...s0.tick(endOf(0) + 300 + DECIDE_WAIT_MS),
  ];
  assert.equal(s0.committed.frame, F0);
  assert.deepEqual(events(actions, "carried"), []);
  assert.deepEqual(ofType(actions, "relay"), []);
});

Deno.test("the alpha writes its log one write at a time: transfers accepted meanwhile go in the next", async () => {
  const replica = newReplica(0);
  const [a, b, c] = [await payment(1), await payment(2), await payment(3)];
  const first = ofType(replica.request(T0 + 100, 1, Kind.submit, a.bytes), "persist");
  assert.equal(first.length, 1);
  assert.deepEqual(replica.request(T0 + 101, 2, Kind.submit, b.bytes), [], "queued behind the write");
  assert.deepEqual(replica.request(T0 + 102, 3, Kind.submit, c.bytes), []);
  const after = replica.written(T0 + 110, first[0]!.id);
  assert.deepEqual(ofType(after, "answer").map((x) => x.request), [1]);
  const second = ofType(after, "persist");
  assert.equal(second.length, 1);
  assert.deepEqual(second[0]!.files[0]!.bytes, concatBytes([b.bytes, c.bytes]));
  assert.deepEqual(ofType(replica.written(T0 + 120, second[0]!.id), "answer").map((x) => x.request), [2, 3]);
});

/** Server `me` whose every signature check is counted: `transferChecks()` counts those of transfers. */
function countingReplica(me: number): { replica: Replica; transferChecks: () => number } {
  let checks = 0;
  const verifier: Verifier = (key, message, signature) => {
    if (message.length === TX_SIGNED_BYTES) checks++;
    return verifySignature(key, message, signature);
  };
  const replica = new Replica({
    network: NETWORK,
    me,
    signer: signerOf(serverKeys[me]!),
    recovered: genesisStart(),
    nowMs: T0,
    verifier,
  });
  replica.drain();
  return { replica, transferChecks: () => checks };
}

Deno.test("the alpha passes the transfers of each log write on to the other servers in one signed pending message", async () => {
  const replica = newReplica(0);
  const [a, b, c] = [await payment(1), await payment(2), await payment(3)];
  const first = replica.request(T0 + 100, 1, Kind.submit, a.bytes);
  const pending = messagesIn(first).filter((m) => m.code === Code.pending);
  assert.deepEqual(pending.map((m) => [m.signer, m.to]), [[0, "all"]]);
  assert.deepEqual(pending[0]!.body, signedBody(serverKeys[0]!, pendingPayload(NETWORK.id, F0, [a.bytes])));
  replica.request(T0 + 101, 2, Kind.submit, b.bytes);
  replica.request(T0 + 102, 3, Kind.submit, c.bytes);
  const next = replica.written(T0 + 110, ofType(first, "persist")[0]!.id);
  assert.deepEqual(
    messagesIn(next).filter((m) => m.code === Code.pending).map((m) => m.body),
    [signedBody(serverKeys[0]!, pendingPayload(NETWORK.id, F0, [b.bytes, c.bytes]))],
    "the transfers queued behind the first write go in the second's message",
  );
});

Deno.test("a transfer whose signature a server checked from the alpha's pending message is not checked again in the proposal", async () => {
  const tx = await payment();
  const { replica, transferChecks } = countingReplica(1);
  const listed = replica.peerMessage(
    T0 + 120,
    signedBody(serverKeys[0]!, pendingPayload(NETWORK.id, F0, [tx.bytes])),
  );
  assert.equal(listed.listed, true);
  assert.deepEqual(listed.actions, [], "nothing to send or log");
  assert.equal(transferChecks(), 1, "checked on arrival");
  replica.tick(endOf(0));
  const actions = replica.peerMessage(endOf(0) + 5, proposalBody(0, { txs: [tx] })).actions;
  assert.equal(transferChecks(), 1, "not checked again");
  assert.equal(replica.metrics.txPreverified, 1);
  assert.deepEqual(votesWrites(actions)[0]!.record.memory.signed, [
    { round: 0, step: "prevote", digest: outcome(F0, [tx]).digest },
  ], "the same judgement as with the check");
});

Deno.test("a pending message from a server that is not the frame's alpha, or holding a forged transfer, is dropped and changes no judgement", async () => {
  const tx = await payment();
  const bad = forged(await payment(5));
  const { replica, transferChecks } = countingReplica(1);
  const notAlpha = replica.peerMessage(
    T0 + 120,
    signedBody(serverKeys[2]!, pendingPayload(NETWORK.id, F0, [tx.bytes])),
  );
  assert.deepEqual(events(notAlpha.actions, "dropped").map((e) => e.reason), [
    `it is not the alpha of frame ${F0}`,
  ]);
  const lie = replica.peerMessage(
    T0 + 130,
    signedBody(serverKeys[0]!, pendingPayload(NETWORK.id, F0, [bad.bytes])),
  );
  assert.deepEqual(events(lie.actions, "dropped").map((e) => e.reason), [
    `pending transfer ${bad.id.slice(0, 12)} has a signature that does not verify`,
  ]);
  const cut = replica.peerMessage(
    T0 + 140,
    signedBody(serverKeys[0]!, [...pendingPayload(NETWORK.id, F0, [tx.bytes]), new Uint8Array(3)]),
  );
  assert.deepEqual(events(cut.actions, "dropped").map((e) => e.reason), ["pending transfers are not whole"]);
  assert.equal(transferChecks(), 1, "only the forged transfer was checked");
  // The proposal holding both is judged from scratch: the forged transfer proves its proposer dishonest.
  replica.tick(endOf(0));
  const actions = replica.peerMessage(endOf(0) + 5, proposalBody(0, { txs: [tx, bad] })).actions;
  assert.equal(replica.metrics.txPreverified, 0);
  assert.equal(events(actions, "lying").length, 1);
  assert.deepEqual(votesWrites(actions)[0]!.record.memory.signed, [{
    round: 0,
    step: "prevote",
    digest: NIL,
  }]);
});

Deno.test("a failed alpha log write halts the server and answers no ok", async () => {
  const replica = newReplica(0);
  const persist = ofType(replica.request(T0 + 100, 1, Kind.submit, (await payment()).bytes), "persist")[0]!;
  const actions = replica.written(T0 + 110, persist.id, "disk full");
  assert.deepEqual(ofType(actions, "answer"), []);
  assert.deepEqual(ofType(actions, "halt"), [{
    type: "halt",
    reason: "Cannot write the alpha log: disk full",
  }]);
  assert.ok(replica.halted);
});

Deno.test("a server that is not the alpha relays a submit to the frame's alpha", async () => {
  const replica = newReplica(1);
  const tx = await payment();
  const actions = replica.request(T0 + 100, 8, Kind.submit, tx.bytes);
  // The frame stops accepting at its blackout (100 ms before its end): no point waiting longer.
  assert.deepEqual(actions, [{ type: "relay", request: 8, to: 0, bytes: tx.bytes, timeoutMs: 800 }]);
  assert.deepEqual(replica.alphaBuffer(F0), []);
  const answered = replica.relayed(T0 + 150, 8, 0, { ok: true, id: tx.id, frame: F0, server: "s0" });
  assert.deepEqual(answered, [{
    type: "answer",
    request: 8,
    response: { ok: true, id: tx.id, frame: F0, server: "s0", relayedBy: "s1" },
  }]);
});

Deno.test("a relayed submit that could not reach the alpha is answered alpha_unreachable", async () => {
  const replica = newReplica(2);
  const tx = await payment();
  assert.equal(ofType(replica.request(T0 + 100, 3, Kind.submit, tx.bytes), "relay").length, 1);
  const response = answerOf(replica.relayed(T0 + 900, 3, 0, { error: "connection refused" }));
  assert.equal(response.ok, false);
  assert.equal(response.code, "alpha_unreachable");
  assert.equal(response.alpha, "s0");
  assert.equal(response.detail, "connection refused");
  assert.equal(response.server, "s2");
  assert.equal(replica.metrics.txRejected.alpha_unreachable, 1);
});

Deno.test("a relayed transfer reaching a server that is not the alpha is refused, not relayed again", async () => {
  const replica = newReplica(1);
  const tx = await payment();
  const response = answerOf(replica.request(T0 + 100, 4, Kind.relay, tx.bytes));
  assert.equal(response.ok, false);
  assert.equal(response.code, "not_alpha");
  assert.equal(response.alpha, "s0");
  assert.equal(response.id, tx.id);
});

Deno.test("a transfer arriving in the blackout goes to the next frame's alpha", async () => {
  const tx = await signTransfer(alice, bob, { amount: 1, timestampMs: T0 + 950 });
  const relay = ofType(newReplica(0).request(T0 + 950, 1, Kind.submit, tx.bytes), "relay");
  assert.equal(relay.length, 1);
  assert.equal(relay[0]!.to, 1);
  const s1 = newReplica(1);
  const response = answerOf(settle(s1, T0 + 951, s1.request(T0 + 950, 2, Kind.relay, tx.bytes)));
  assert.equal(response.ok, true);
  assert.equal(response.frame, F0 + 1);
});

Deno.test("the alpha refuses a transfer it cannot take with the ledger's code", async () => {
  const replica = newReplica(0);
  const tx = await payment();
  assert.equal(
    answerOf(settle(replica, T0 + 100, replica.request(T0 + 100, 1, Kind.submit, tx.bytes))).ok,
    true,
  );
  const again = answerOf(replica.request(T0 + 110, 2, Kind.submit, tx.bytes.slice()));
  assert.equal(again.code, "duplicate");
  assert.equal(again.reason, "this transfer was already seen");
  const broke = answerOf(replica.request(T0 + 120, 3, Kind.submit, (await payment(701)).bytes));
  assert.equal(broke.code, "insufficient_funds");
  const malformed = answerOf(replica.request(T0 + 130, 4, Kind.submit, tx.bytes.subarray(1)));
  assert.equal(malformed.code, "malformed");
  const bad = answerOf(replica.request(T0 + 140, 5, Kind.submit, forged(await payment(5)).bytes));
  assert.equal(bad.code, "signature_invalid");
  assert.deepEqual(replica.metrics.txRejected, {
    duplicate: 1,
    insufficient_funds: 1,
    malformed: 1,
    signature_invalid: 1,
  });
  assert.deepEqual(replica.alphaBuffer(F0).map((t) => t.id), [tx.id]);
});

Deno.test("Replica answers balance, status and malformed requests", () => {
  const replica = newReplica(2);
  const balance = answerOf(replica.request(T0 + 10, 1, Kind.balance, alice.publicKey));
  assert.deepEqual(balance, {
    ok: true,
    account: alice.publicHex,
    balance: 1000,
    frame: F0 - 1,
    hash: GENESIS.state.ledger.hash,
    digest: GENESIS.digest,
    inSync: true,
    server: "s2",
  });
  assert.equal(answerOf(replica.request(T0 + 10, 2, Kind.balance, bob.publicKey)).balance, 0);
  const short = answerOf(replica.request(T0 + 10, 3, Kind.balance, new Uint8Array(31)));
  assert.deepEqual(short, { ok: false, code: "malformed", reason: "an account id is 32 bytes" });
  const status = answerOf(replica.request(T0 + 10, 4, Kind.status, new Uint8Array(0)));
  assert.equal(status.server, "s2");
  assert.equal(status.frame, F0);
  assert.equal(status.role, "beta", "s2 is the alpha of F0 - 1, so the beta during F0");
  assert.equal(status.alpha, "s0");
  assert.equal(status.network, NETWORK.id);
  assert.equal(status.quorum, 2);
  assert.equal(status.committedFrame, F0 - 1);
  assert.equal(status.committedHash, GENESIS.digest);
  assert.equal(status.durableFrame, F0 - 1);
  assert.equal(status.headFrame, F0);
  assert.equal(status.supply, 1000);
  assert.equal(status.noQuorum, false);
  const unknown = answerOf(replica.request(T0 + 10, 5, 0x7f, new Uint8Array(0)));
  assert.deepEqual(unknown, { ok: false, code: "malformed", reason: "unknown request kind 0x7f" });
  const query = answerOf(replica.request(T0 + 10, 6, Kind.txStatus, new Uint8Array(39)));
  assert.deepEqual(query, { ok: false, code: "malformed", reason: "a transfer query is 40 bytes" });
});

// ---- peer messages that are dropped --------------------------------------------------------------------

Deno.test("a message signed by a key not in peers.json, with a broken signature, or with the replica's own key is dropped, listed false", () => {
  const replica = newReplica(1, T0 + 1_001);
  const payload = [votePayload("prevote", NETWORK.id, slotOf({}), NIL)];
  const strange = replica.peerMessage(T0 + 1_002, signedBody(stranger, payload));
  assert.equal(strange.listed, false);
  assert.deepEqual(strange.actions, [{
    type: "log",
    event: "dropped",
    fields: { key: stranger.publicHex.slice(0, 16), reason: "sender key is not in peers.json" },
  }]);
  const broken = voteBody(0, "prevote", NIL);
  broken[broken.length - 1]! ^= 1;
  const bad = replica.peerMessage(T0 + 1_003, broken);
  assert.equal(bad.listed, false);
  assert.deepEqual(events(bad.actions, "dropped").map((f) => f.reason), ["signature does not verify"]);
  const own = replica.peerMessage(T0 + 1_004, voteBody(1, "prevote", NIL));
  assert.equal(own.listed, false);
  assert.deepEqual(events(own.actions, "dropped").map((f) => f.reason), ["sender key is not in peers.json"]);
  assert.equal(replica.metrics.messagesDropped, 3);
});

Deno.test("a listed server's message for another network, or that breaks the message rules, is dropped, listed true", () => {
  const other = parseNetwork({
    start: F0 + 1,
    interval: 1,
    skew: 0.2,
    servers: NETWORK.servers.map((s) => ({ name: s.name, key: s.keyHex, host: s.host, port: s.port })),
    genesis: { [alice.publicHex]: 1000 },
  });
  const replica = newReplica(1, T0 + 1_000);
  replica.tick(T0 + 1_000);
  const cases: [string, Uint8Array, string][] = [
    [
      "another network",
      signedBody(serverKeys[2]!, [votePayload("prevote", other.id, slotOf({}), NIL)]),
      "it runs another network (its network id differs: compare peers.json)",
    ],
    [
      "an unknown code",
      signedBody(serverKeys[2]!, [new Uint8Array([9]), fromHex(NETWORK.id, 32)!, new Uint8Array(60)]),
      "unknown payload code 9",
    ],
    [
      "a proposal from a server that is not the round's proposer",
      proposalBody(2, { key: serverKeys[2]! }),
      "it is not the proposer of round 0",
    ],
    [
      "a vote building on another state",
      voteBody(2, "prevote", NIL, { prevDigest: "ab".repeat(32) }),
      `its frame ${F0} builds on another state than the one certified here`,
    ],
    [
      "a vote from a round too far ahead",
      voteBody(2, "prevote", NIL, { round: MAX_ROUND_LEAD + 1 }),
      `round ${MAX_ROUND_LEAD + 1} is too far ahead`,
    ],
    [
      "a vote of the wrong length",
      signedBody(serverKeys[2]!, [votePayload("prevote", NETWORK.id, slotOf({}), NIL), new Uint8Array(1)]),
      "vote has the wrong length",
    ],
    [
      "a want of the wrong length",
      signedBody(serverKeys[2]!, [wantPayload(NETWORK.id, F0), new Uint8Array(1)]),
      "want has the wrong length",
    ],
    [
      "a commit that does not parse",
      signedBody(serverKeys[2]!, [new Uint8Array([Code.commit]), fromHex(NETWORK.id, 32)!]),
      "commit does not parse: Not a commit",
    ],
  ];
  for (const [what, body, reason] of cases) {
    const { actions, listed } = replica.peerMessage(T0 + 1_001, body);
    assert.equal(listed, true, what);
    assert.deepEqual(events(actions, "dropped"), [{ from: "s2", reason }], what);
    assert.deepEqual(events(actions, "lying"), [], `${what}: not a lie`);
  }
});

// ---- frames committed in order -----------------------------------------------------------------------

Deno.test("three replicas commit frames in order, each with a certificate that verifies", async () => {
  const tx = await payment();
  const cluster = new Cluster();
  cluster.runUntil(T0 + 100);
  cluster.request(0, 1, Kind.submit, tx.bytes);
  cluster.runUntil(endOf(3) + 600);
  assert.deepEqual(cluster.answer(0, 1), { ok: true, id: tx.id, frame: F0, server: "s0" });

  const digests: string[] = [];
  for (let k = 0; k <= 3; k++) digests.push(assertAgreed(cluster, F0 + k));
  for (const i of [0, 1, 2]) {
    const replica = cluster.replica(i);
    assert.equal(replica.committed.frame, F0 + 3, `s${i}`);
    assert.equal(replica.committed.state.ledger.balanceOf(alice.publicKey), 700, `s${i}`);
    assert.equal(replica.committed.state.ledger.balanceOf(bob.publicKey), 300, `s${i}`);
    const commits = commitWrites(cluster.actions(i));
    assert.deepEqual(commits.map((p) => p.commit!.frame), [F0, F0 + 1, F0 + 2, F0 + 3], `s${i}: in order`);
    let prevDigest = GENESIS.digest;
    for (const [k, persist] of commits.entries()) {
      const bytes = persist.files[0]!.bytes;
      assert.equal(persist.files.length, 1);
      assert.equal(persist.files[0]!.name, archiveName(commitFileHash([bytes]), frameStartMs(F0 + k, 1000)));
      const { networkId, commit } = decodeCommit(bytes);
      assert.equal(checkCommit(NETWORK, networkId, commit), undefined, `s${i} frame F0 + ${k} is certified`);
      assert.equal(commit.frame, F0 + k);
      assert.equal(commit.cert.height, F0 + k, "one frame per agreement");
      assert.equal(commit.cert.prevDigest, prevDigest, "each chains to the one before");
      assert.equal(commit.cert.digest, digests[k]);
      assert.ok(commit.cert.signatures.length >= NETWORK.quorum);
      assert.equal(persist.commit!.hash, commit.state.ledger.hash);
      prevDigest = commit.cert.digest;
    }
    assert.deepEqual(cluster.events(i, "consensus").map((f) => [f.frame, f.agree, f.round]), [
      [F0, "3/3", 0],
      [F0 + 1, "3/3", 0],
      [F0 + 2, "3/3", 0],
      [F0 + 3, "3/3", 0],
    ]);
    assert.deepEqual(cluster.events(i, "consensus")[0]!.txs, 1);
    assert.deepEqual(cluster.events(i, "archived").map((f) => f.frame), [F0, F0 + 1, F0 + 2, F0 + 3]);
    assert.deepEqual(cluster.events(i, "lying"), []);
    assert.deepEqual(cluster.events(i, "dropped"), []);
    assert.equal(replica.metrics.framesAgreed, 4);
  }
  assert.deepEqual(cluster.sentBeforeWritten, []);

  // Each frame's agreement starts only once the commit of the one before is on disk.
  for (const i of [0, 1, 2]) {
    for (let k = 0; k < 3; k++) {
      const done = cluster.writes[i]!.find((w) => w.persist.commit?.frame === F0 + k)!.doneAt;
      const firstOfNext = cluster.history[i]!.find(({ action }) =>
        (action.type === "broadcast" && peek(messageBody(action.message)).height === F0 + k + 1) ||
        votesWrites([action]).some((v) => v.record.height === F0 + k + 1)
      );
      assert.ok(firstOfNext !== undefined && firstOfNext.at >= done, `s${i}: F0 + ${k + 1} after F0 + ${k}`);
    }
  }
});

Deno.test("a transfer sent to a server that is not the alpha is relayed, answered, and applied in the alpha's frame", async () => {
  const cluster = new Cluster();
  cluster.runUntil(endOf(0) + 100);
  // F0 + 1 belongs to s1; the client reached s2.
  const tx = await payment(100, cluster.now);
  const relay = ofType(cluster.request(2, 5, Kind.submit, tx.bytes), "relay");
  assert.deepEqual(relay.map((r) => r.to), [1]);
  cluster.runUntil(endOf(0) + 200);
  assert.deepEqual(cluster.answer(2, 5), {
    ok: true,
    id: tx.id,
    frame: F0 + 1,
    server: "s1",
    relayedBy: "s2",
  });
  cluster.runUntil(endOf(1) + 600);
  assertAgreed(cluster, F0 + 1);
  for (const i of [0, 1, 2]) {
    assert.equal(cluster.replica(i).committed.state.ledger.balanceOf(bob.publicKey), 100, `s${i}`);
    const consensus = cluster.events(i, "consensus").find((f) => f.frame === F0 + 1);
    assert.deepEqual([consensus?.txs, consensus?.applied], [1, 1], `s${i}`);
  }
});

Deno.test("the next frame's agreement does not start until the commit before it is written", () => {
  const cluster = new Cluster();
  // s1's archive entry for F0 takes as long as the test wants.
  cluster.writeHook = (node, p) => node === 1 && p.commit?.frame === F0;
  cluster.runUntil(endOf(1) + 1_900);
  const s1 = cluster.replica(1);
  assert.equal(s1.committed.frame, F0, "decided in memory");
  assert.equal(s1.status(cluster.now).durableFrame, F0 - 1, "not on disk");
  const early = cluster.sent(1).filter((m) => m.height > F0 && m.code !== Code.want);
  assert.deepEqual(early, [], "s1 proposed and voted nothing for F0 + 1");
  assert.deepEqual(votesWrites(cluster.actions(1)).filter((v) => v.record.height > F0), []);
  // s1 is the proposer of F0 + 1's round 0: the others decide it without s1, in round 1.
  assertAgreed(cluster, F0 + 1, [0, 2]);
  assert.equal(cluster.events(0, "consensus")[1]!.round, 1);

  cluster.writeHook = () => false;
  cluster.releaseWrites();
  cluster.runUntil(endOf(4) + 600);
  for (const i of [0, 1, 2]) assert.equal(cluster.replica(i).committed.frame, F0 + 4, `s${i}`);
  assertAgreed(cluster, F0 + 4);
  assert.deepEqual(cluster.sentBeforeWritten, []);
});

Deno.test("a failed archive write halts the server: the frame is never durable nor answered committed", async () => {
  const tx = await payment();
  const cluster = new Cluster();
  cluster.writeHook = (node, p) => (node === 2 && p.commit !== undefined ? "disk full" : false);
  cluster.runUntil(T0 + 100);
  cluster.request(0, 1, Kind.submit, tx.bytes);
  cluster.runUntil(endOf(0) + 600);
  const s2 = cluster.replica(2);
  assert.ok(s2.halted);
  assert.deepEqual(ofType(cluster.actions(2), "halt"), [{
    type: "halt",
    reason: `Cannot write archive entry for frame ${F0}: disk full`,
  }]);
  assert.deepEqual(cluster.events(2, "archived"), []);
  const status = answerOf(s2.request(cluster.now, 9, Kind.txStatus, txQuery(tx)));
  assert.equal(status.state, "pending");
  assert.equal(status.committedFrame, F0 - 1);
});

// ---- votes are written before they are sent ------------------------------------------------------------

Deno.test("a vote is broadcast only after the votes file holding it was written", () => {
  const replica = newReplica(1, T0 + 900);
  replica.tick(endOf(0));
  const { digest } = outcome(F0);

  // s0's proposal: s1 passes it on to s2 and writes its prevote, but sends no vote yet.
  const first = replica.peerMessage(endOf(0) + 5, proposalBody(0)).actions;
  assert.deepEqual(messagesIn(first).map((m) => [m.code, m.signer, m.to]), [[Code.proposal, 0, 2]]);
  const [prevote] = votesWrites(first);
  assert.ok(prevote !== undefined);
  assert.equal(prevote.record.height, F0);
  assert.equal(prevote.record.prevDigest, GENESIS.digest);
  assert.deepEqual(prevote.record.memory.signed, [{ round: 0, step: "prevote", digest }]);

  // s2's prevote arrives while the write is in flight: with s0's, a quorum for the digest. s1 signs its
  // precommit but writes it only once the first write is done (one at a time).
  const meanwhile = [
    ...replica.peerMessage(endOf(0) + 6, voteBody(2, "prevote", digest)).actions,
    ...replica.peerMessage(endOf(0) + 7, voteBody(0, "prevote", digest)).actions,
  ];
  assert.deepEqual(messagesIn(meanwhile).filter((m) => m.signer === 1), [], "nothing of s1's is sent");
  assert.deepEqual(votesWrites(meanwhile), [], "the precommit waits for the write in flight");

  // The write completes: the prevote goes out, and the precommit is written (not sent).
  const written = replica.written(endOf(0) + 20, prevote.persist.id);
  const sent = messagesIn(written).filter((m) => m.signer === 1);
  assert.deepEqual(sent.map((m) => [m.code, m.round, m.digest, m.to]), [[Code.prevote, 0, digest, "all"]]);
  const [precommit] = votesWrites(written);
  assert.ok(precommit !== undefined);
  assert.deepEqual(precommit.record.memory.signed, [
    { round: 0, step: "prevote", digest },
    { round: 0, step: "precommit", digest },
  ]);
  assert.equal(precommit.record.memory.lockedDigest, digest);
  assert.equal(precommit.record.memory.lockedRound, 0);
  assert.deepEqual(messagesIn(written).filter((m) => m.code === Code.precommit), []);

  const after = replica.written(endOf(0) + 30, precommit.persist.id);
  assert.deepEqual(
    messagesIn(after).filter((m) => m.signer === 1).map((m) => [m.code, m.digest]),
    [[Code.precommit, digest]],
  );
});

Deno.test("a proposal is sent only once the votes file recording it is on disk; restarted, the proposer proposes nothing in that round", () => {
  // Before, a proposer that crashed between sending a proposal and writing its votes proposed the round
  // again after the restart, differently, and the others held that as proof it lies: they skipped its
  // rounds for good, and a network short of one server stalled (campaign seed 71).
  const beta = newReplica(0, T0 + 500);
  const due = beta.tick(endOf(0));
  assert.deepEqual(messagesIn(due).filter((m) => m.code === Code.proposal), [], "not before the write");
  const [write] = votesWrites(due);
  assert.deepEqual(write?.record.memory.proposed, [0]);
  assert.deepEqual(
    write?.record.memory.signed.map((v) => v.step),
    ["prevote"],
    "its prevote in the same write",
  );
  const sent = messagesIn(beta.written(endOf(0) + 5, write!.persist.id));
  assert.deepEqual(sent.map((m) => [m.code, m.round, m.to]), [
    [Code.proposal, 0, "all"],
    [Code.prevote, 0, "all"],
  ]);

  const restarted = newReplica(0, endOf(0) + 20, { recovered: genesisStart({ votes: write!.record }) });
  const after = settle(restarted, endOf(0) + 20, restarted.tick(endOf(0) + 20));
  assert.deepEqual(
    messagesIn(after).filter((m) => m.code === Code.proposal),
    [],
    "round 0 is not proposed again",
  );

  const failed = newReplica(0, T0 + 500);
  const [lost] = votesWrites(failed.tick(endOf(0)));
  const halted = failed.written(endOf(0) + 5, lost!.persist.id, "No space left on device");
  assert.deepEqual(messagesIn(halted), [], "a proposal whose write failed is never sent");
});

Deno.test("a failed votes write halts the server and the vote is never sent", () => {
  const replica = newReplica(1, T0 + 900);
  replica.tick(endOf(0));
  const [prevote] = votesWrites(replica.peerMessage(endOf(0) + 5, proposalBody(0)).actions);
  const actions = replica.written(endOf(0) + 10, prevote!.persist.id, "read-only file system");
  assert.deepEqual(messagesIn(actions), []);
  assert.deepEqual(ofType(actions, "halt"), [{
    type: "halt",
    reason: "Cannot write the votes file: read-only file system",
  }]);
  assert.deepEqual(replica.tick(endOf(0) + 500), [], "a halted replica does nothing");
});

Deno.test("in a cluster with slow disks, no server sends a vote before its votes file holds it", () => {
  const cluster = new Cluster();
  cluster.writeMs = 40;
  cluster.latencyMs = 3;
  // Some messages take longer, so that rounds time out and votes pile up behind writes.
  cluster.route = (m) => (m.msg.height % 2 === 0 && m.from === 0 ? 400 : true);
  cluster.runUntil(endOf(5) + 800);
  for (const i of [0, 1, 2]) assert.ok(cluster.replica(i).committed.frame >= F0 + 4, `s${i} went on`);
  const votes = [0, 1, 2].flatMap((i) => cluster.sent(i).filter((m) => m.signer === i && STEP_OF[m.code]));
  assert.ok(votes.length > 30, `${votes.length} votes sent`);
  assert.deepEqual(cluster.sentBeforeWritten, []);
});

// ---- proposals -----------------------------------------------------------------------------------------

Deno.test("a proposal for a frame that has not ended is held until the frame is within the skew of its end, then acted on", () => {
  // Skew 0.2 s: F0 ends at endOf(0); another server's messages for it count from endOf(0) - 200 ms on.
  const replica = newReplica(1, T0 + 500);
  const { digest } = outcome(F0);
  const early = replica.peerMessage(T0 + 600, proposalBody(0));
  assert.equal(early.listed, true);
  assert.deepEqual(early.actions, [], "not passed on, not voted on, not dropped");
  assert.deepEqual(replica.peerMessage(T0 + 610, voteBody(2, "prevote", digest)).actions, []);
  const waiting = replica.tick(endOf(0) - 201);
  assert.deepEqual(votesWrites(waiting), [], "F0 is more than the skew from its end");
  assert.deepEqual(messagesIn(waiting).filter((m) => m.code !== Code.want), []);

  const due = replica.tick(endOf(0) - 200);
  assert.deepEqual(messagesIn(due).map((m) => [m.code, m.signer, m.to]), [
    [Code.start, 1, 0],
    [Code.proposal, 0, 2],
    [Code.prevote, 2, 0],
  ], "the beta is told, the held proposal and vote are passed on");
  const [prevote] = votesWrites(due);
  assert.deepEqual(prevote?.record.memory.signed, [{ round: 0, step: "prevote", digest }]);
});

Deno.test("a server whose clock is behind starts a frame's agreement when another server's message for it comes within the skew", () => {
  // Without this a beta whose clock is behind (within the skew) proposes after the others gave up on it,
  // every time, and the transfers it accepted miss their frame.
  const replica = newReplica(1, T0 + 500);
  const { digest } = outcome(F0);
  const actions = replica.peerMessage(endOf(0) - 150, proposalBody(0)).actions;
  assert.deepEqual(votesWrites(actions).map((w) => w.record.memory.signed), [
    [{ round: 0, step: "prevote", digest }],
  ], "acted on at once");
});

Deno.test("every server but the beta tells the beta when it starts an agreement; a beta whose clock is behind then proposes at once", () => {
  // Before their round-0 deadline the others send nothing else: a beta whose clock is more than 2Δ behind
  // theirs would propose after they gave up on round 0, every frame it is the beta of.
  const s1 = newReplica(1, T0 + 500);
  const started = messagesIn(s1.tick(endOf(0)));
  assert.deepEqual(started.map((m) => [m.code, m.signer, m.height, m.round, m.to]), [
    [Code.start, 1, F0, 0, 0],
  ], "s1 tells F0's beta (s0), and only it");

  // The skew is 0.2 s.
  const beta = newReplica(0, T0 + 500);
  const early = beta.peerMessage(endOf(0) - 300, startBody(1));
  assert.equal(early.listed, true);
  assert.deepEqual(messagesIn(early.actions), [], "a start from beyond the skew is only held");
  assert.deepEqual(messagesIn(beta.tick(endOf(0) - 201)).filter((m) => m.code !== Code.want), []);
  const proposed = messagesIn(settle(beta, endOf(0) - 150, beta.tick(endOf(0) - 150)));
  assert.deepEqual(proposed.map((m) => [m.code, m.signer, m.height, m.frame]), [
    [Code.proposal, 0, F0, F0],
    [Code.prevote, 0, F0, undefined],
  ], "within the skew of F0's end, one start (b + 1 = 1) and the beta proposes F0");

  const again = beta.peerMessage(endOf(0) - 100, startBody(1));
  assert.deepEqual(again.actions.filter((a) => a.type !== "log"), [], "a start once started changes nothing");
  assert.deepEqual(events(again.actions, "dropped"), []);
  const wrong = beta.peerMessage(
    endOf(0) - 90,
    signedBody(serverKeys[2]!, [startPayload(NETWORK.id, slotOf({})), new Uint8Array(1)]),
  );
  assert.equal(events(wrong.actions, "dropped").length, 1, "a start with a tail is dropped");
});

Deno.test("a proposal of a frame that has not ended (beyond the skew), or skipping frames too early, gets a nil prevote", () => {
  const prevoteFor = (replica: Replica, nowMs: number, frame: number): string => {
    replica.tick(nowMs);
    const actions = replica.peerMessage(nowMs + 1, proposalBody(0, { frame })).actions;
    return votesWrites(actions)[0]!.record.memory.signed[0]!.digest;
  };
  // An agreement on F0 started late, when F0 + 6 is the current frame (so frames may be skipped).
  assert.equal(
    prevoteFor(newReplica(1, endOf(5) + 100), endOf(5) + 100, F0 + 6),
    NIL,
    "F0 + 6 has not ended",
  );
  assert.equal(
    prevoteFor(newReplica(2, endOf(5) + 100), endOf(5) + 100, F0 + 5),
    outcome(F0 + 5).digest,
    "F0 + 5 has: an empty skip to it is valid",
  );
  // On time, a proposal may not skip: F0 + 1 instead of F0.
  assert.equal(prevoteFor(newReplica(1, endOf(1) + 100), endOf(1) + 100, F0 + 1), NIL);
});

Deno.test("a proposal with a transfer whose signature does not verify gets a nil prevote; its proposer is logged lying once and the proposal written as evidence", async () => {
  const good = await payment();
  const bad = forged(await payment(5));
  const replica = newReplica(1, T0 + 900);
  replica.tick(endOf(0));
  const body = proposalBody(0, { txs: [good, bad] });
  const { actions, listed } = replica.peerMessage(endOf(0) + 5, body);
  assert.equal(listed, true);
  assert.deepEqual(events(actions, "lying"), [{
    from: "s0",
    key: serverKeys[0]!.publicHex.slice(0, 16),
    frame: F0,
    reason: "its proposal's transfer 1 has a signature that does not verify",
  }]);
  const evidence = ofType(actions, "persist").filter((p) => p.files[0]!.name.startsWith(EVIDENCE_PREFIX));
  assert.equal(evidence.length, 1);
  assert.deepEqual(evidence[0]!.files, [{
    name: `${EVIDENCE_PREFIX}${serverKeys[0]!.publicHex.slice(0, 16)}`,
    bytes: evidenceOf(body),
  }]);
  assert.equal(evidence[0]!.commit, undefined);
  const [prevote] = votesWrites(actions);
  assert.deepEqual(prevote?.record.memory.signed, [{ round: 0, step: "prevote", digest: NIL }]);
  assert.deepEqual(replica.written(endOf(0) + 6, evidence[0]!.id), [], "evidence written quietly");

  // The same proposal again (a copy passed on by s2), and a second one for the round: no second line.
  assert.deepEqual(events(replica.peerMessage(endOf(0) + 7, body).actions, "lying"), []);
  const other = replica.peerMessage(endOf(0) + 8, proposalBody(0, { txs: [good] })).actions;
  assert.deepEqual(events(other, "lying"), [], "logged once per agreement");
  assert.deepEqual(votesWrites(other), [], "and no vote for it: the round's prevote is signed");
});

// BUG (lib/replica.ts, #propose): a later round's proposer re-proposes the beta's round-0 transfers
// without checking that they verified, so each honest proposer after a lying beta proposes the forged
// transfer again, is logged "lying" by every server (itself included) with evidence written against its
// key, and the frame is decided only when a proposer with a valid buffer of its own comes round (round 3
// here) or the skip rule applies. Un-ignore once #propose re-proposes only a beta buffer that verified.
Deno.test({
  name: "a later proposer does not re-propose a beta buffer whose signatures do not verify",

  fn: async () => {
    const replica = newReplica(1, T0 + 900);
    settle(replica, endOf(0), replica.tick(endOf(0)));
    const lie = proposalBody(0, { txs: [await payment(), forged(await payment(5))] });
    settle(replica, endOf(0) + 5, replica.peerMessage(endOf(0) + 5, lie).actions);
    // s2 is in round 1 already: s1 follows it there, and proposes (it is round 1's proposer).
    const actions = settle(
      replica,
      endOf(0) + 6,
      replica.peerMessage(endOf(0) + 6, voteBody(2, "prevote", NIL, { round: 1 })).actions,
    );
    const proposal = messagesIn(actions).find((m) => m.code === Code.proposal && m.signer === 1);
    assert.ok(proposal !== undefined, "s1 proposes in round 1");
    assert.ok(proposal.txs! < 2, "not the forged transfer again");
    assert.deepEqual(events(actions, "lying"), [], "s1 does not call itself a liar");
  },
});

// Same bug as above, seen from the cluster. Un-ignore with it.
Deno.test({
  name:
    "in a cluster, a beta proposing a forged transfer costs one round and no honest server is called a liar",

  fn: async () => {
    const cluster = new Cluster();
    // s0's own proposal of F0 is replaced on the way by one with a forged transfer it signed.
    const lie = proposalBody(0, { txs: [await payment(), forged(await payment(5))] });
    cluster.route = (m) => m.msg.code !== Code.proposal || m.msg.signer !== 0 || m.msg.height !== F0;
    cluster.runUntil(endOf(0) + 1);
    for (const to of [1, 2]) assert.equal(events(cluster.inject(to, lie), "lying").length, 1, `s${to}`);
    cluster.route = () => true;
    cluster.runUntil(endOf(1) + 600);
    for (const i of [0, 1, 2]) {
      assert.deepEqual(cluster.events(i, "lying").map((f) => f.from), i === 0 ? [] : ["s0"], `s${i}`);
      assert.equal(cluster.events(i, "consensus")[0]!.round, 1, `s${i}: decided in round 1`);
    }
    assertAgreed(cluster, F0 + 1);
  },
});

// ---- equivocation --------------------------------------------------------------------------------------

Deno.test("two different votes from one key for one round and step: logged lying once with the key, both written as evidence", () => {
  const replica = newReplica(1, T0 + 900);
  replica.tick(endOf(0));
  const [a, b, c] = ["0a", "0b", "0c"].map((x) => x.repeat(32)) as [string, string, string];
  const first = voteBody(2, "prevote", a);
  const second = voteBody(2, "prevote", b);
  const one = replica.peerMessage(endOf(0) + 5, first);
  assert.deepEqual(events(one.actions, "lying"), []);
  assert.deepEqual(
    messagesIn(one.actions).map((m) => [m.signer, m.to]),
    [[2, 0]],
    "a counted vote is passed on",
  );

  const two = replica.peerMessage(endOf(0) + 6, second);
  assert.equal(two.listed, true);
  assert.deepEqual(events(two.actions, "lying"), [{
    from: "s2",
    key: serverKeys[2]!.publicHex.slice(0, 16),
    frame: F0,
    reason: "second, different prevote for round 0",
  }]);
  const evidence = ofType(two.actions, "persist");
  assert.equal(evidence.length, 1);
  assert.equal(evidence[0]!.files[0]!.name, `${EVIDENCE_PREFIX}${serverKeys[2]!.publicHex.slice(0, 16)}`);
  assert.deepEqual(evidence[0]!.files[0]!.bytes, evidenceOf(first, second));

  // A third value, the first again, and a vote of another step are no new lie.
  assert.deepEqual(events(replica.peerMessage(endOf(0) + 7, voteBody(2, "prevote", c)).actions, "lying"), []);
  assert.deepEqual(replica.peerMessage(endOf(0) + 8, first).actions, [], "a repeat is ignored");
  assert.deepEqual(
    events(replica.peerMessage(endOf(0) + 9, voteBody(2, "precommit", b)).actions, "lying"),
    [],
    "one prevote and one precommit per round may differ",
  );
  assert.deepEqual(
    events(replica.peerMessage(endOf(0) + 10, voteBody(0, "prevote", a)).actions, "lying"),
    [],
  );
});

Deno.test("a second, different proposal for one round from its proposer is logged lying with both as evidence", () => {
  const replica = newReplica(2, T0 + 900);
  replica.tick(endOf(0));
  const first = proposalBody(0);
  assert.deepEqual(proposalBody(0), first, "Ed25519 is deterministic: the same proposal is the same bytes");
  replica.peerMessage(endOf(0) + 5, first);
  assert.deepEqual(replica.peerMessage(endOf(0) + 6, proposalBody(0)).actions, [], "the same one again");
  const other = proposalBody(0, { frame: F0 + 1 });
  const { actions } = replica.peerMessage(endOf(0) + 7, other);
  assert.deepEqual(events(actions, "lying").map((f) => [f.from, f.reason]), [
    ["s0", "second, different proposal for round 0"],
  ]);
  const evidence = ofType(actions, "persist");
  assert.equal(evidence.length, 1);
  assert.deepEqual(evidence[0]!.files[0]!.bytes, evidenceOf(first, other));
});

// ---- restarts ------------------------------------------------------------------------------------------

Deno.test("a replica restarted from its votes file never signs a different vote for a frame, round and step it signed", async () => {
  const { digest } = outcome(F0);
  const before = newReplica(1, T0 + 900);
  before.tick(endOf(0));
  const [prevote] = votesWrites(before.peerMessage(endOf(0) + 5, proposalBody(0)).actions);
  const sentBefore = messagesIn(before.written(endOf(0) + 10, prevote!.persist.id)).filter((m) =>
    m.signer === 1
  );
  assert.deepEqual(sentBefore.map((m) => [m.code, m.digest]), [[Code.prevote, digest]]);

  // The process stops there. The new one reads the votes file back.
  const votes = decodeVotes(prevote!.persist.files[0]!.bytes);
  assert.ok(!("problem" in votes));
  const after = newReplica(1, endOf(0) + 50, { recovered: genesisStart({ votes }) });
  const actions = [...after.tick(endOf(0) + 50)];
  // s0 (lying, or restarted itself) now proposes something else for round 0: s1 stands by its prevote.
  const tx = await payment();
  assert.notEqual(outcome(F0, [tx]).digest, digest);
  actions.push(...after.peerMessage(endOf(0) + 60, proposalBody(0, { txs: [tx] })).actions);
  actions.push(...after.tick(endOf(0) + 400), ...after.tick(endOf(0) + 800));
  assert.deepEqual(votesWrites(actions), [], "nothing new signed");
  const prevotes = messagesIn(actions).filter((m) => m.signer === 1 && m.code === Code.prevote);
  assert.ok(prevotes.length >= 1, "the prevote it signed is sent again");
  for (const m of prevotes) assert.deepEqual(m.body, sentBefore[0]!.body, "byte for byte the same message");
});

Deno.test("a locked replica keeps the prevotes that justify its lock in the votes file and sends them again after a restart", () => {
  // Without them a lock outlives its proof (every server that saw the prevotes restarted): the locked
  // server refuses every new value and the others refuse its value, for good.
  const { digest } = outcome(F0);
  const s1 = newReplica(1, T0 + 900);
  s1.tick(endOf(0));
  const actions = settle(s1, endOf(0) + 10, s1.peerMessage(endOf(0) + 5, proposalBody(0)).actions);
  const s0Prevote = voteBody(0, "prevote", digest);
  actions.push(...settle(s1, endOf(0) + 30, s1.peerMessage(endOf(0) + 20, s0Prevote).actions));
  const locked = votesWrites(actions).map((w) => w.record).find((r) => r.memory.lockedRound === 0);
  assert.ok(locked !== undefined, "s1 locked on round 0 and wrote it");
  assert.equal(locked.memory.lockedDigest, digest);
  const polka = locked.polka.map((b) => peek(b));
  assert.deepEqual(polka.map((v) => [v.signer, v.code, v.digest]).sort(), [
    [0, Code.prevote, digest],
    [1, Code.prevote, digest],
  ]);
  assert.ok(locked.polka.some((b) => toHex(b) === toHex(s0Prevote)), "s0's prevote, byte for byte");

  // The process stops; the new one reads the votes file back and, every Δ, sends s0's prevote again.
  const votes = decodeVotes(encodeVotes(locked));
  assert.ok(!("problem" in votes));
  const after = newReplica(1, endOf(0) + 50, { recovered: genesisStart({ votes }) });
  assert.ok(
    messagesIn(after.tick(endOf(0) + 50)).some((m) => toHex(m.body) === toHex(s0Prevote)),
    "the polka is sent again after the restart",
  );
  const later = [...after.tick(endOf(0) + 400), ...after.tick(endOf(0) + 800)];
  assert.ok(
    messagesIn(later).some((m) => toHex(m.body) === toHex(s0Prevote)),
    "and again every Δ (a server that restarted since lost it)",
  );
});

Deno.test("the kept polka holds a dishonest server's prevote for the locked value, not its first prevote of the round", () => {
  const { digest } = outcome(F0);
  const s1 = newReplica(1, T0 + 900);
  s1.tick(endOf(0));
  const actions = settle(s1, endOf(0) + 10, s1.peerMessage(endOf(0) + 5, proposalBody(0)).actions);
  // s2 prevotes something else first, then the proposal: its second vote completes the polka.
  const other = voteBody(2, "prevote", "ee".repeat(32));
  const forDigest = voteBody(2, "prevote", digest);
  actions.push(...settle(s1, endOf(0) + 30, s1.peerMessage(endOf(0) + 20, other).actions));
  actions.push(...settle(s1, endOf(0) + 50, s1.peerMessage(endOf(0) + 40, forDigest).actions));
  const locked = votesWrites(actions).map((w) => w.record).find((r) => r.memory.lockedRound === 0);
  assert.ok(locked !== undefined, "s1 locked on round 0");
  assert.deepEqual(locked.polka.map((b) => peek(b).digest), [digest, digest]);
  assert.ok(locked.polka.some((b) => toHex(b) === toHex(forDigest)));
  assert.ok(!locked.polka.some((b) => toHex(b) === toHex(other)));
});

Deno.test("a server hearing a vote of an earlier round sends that server its own votes of that round, once per Δ", () => {
  const { digest } = outcome(F0);
  const s1 = newReplica(1, T0 + 900);
  s1.tick(endOf(0));
  settle(s1, endOf(0) + 10, s1.peerMessage(endOf(0) + 5, proposalBody(0)).actions);
  // s0 is in round 1 already (b + 1 = 1 server): s1 follows it.
  s1.peerMessage(endOf(0) + 20, voteBody(0, "prevote", NIL, { round: 1 }));
  // s2 still votes in round 0: it gets s1's round-0 prevote, sent to it alone.
  const actions = s1.peerMessage(endOf(0) + 30, voteBody(2, "prevote", digest)).actions;
  const toS2 = messagesIn(actions).filter((m) => m.to === 2 && m.signer === 1);
  assert.deepEqual(toS2.map((m) => [m.code, m.round, m.digest]), [[Code.prevote, 0, digest]]);
  const again = s1.peerMessage(endOf(0) + 40, voteBody(2, "precommit", NIL)).actions;
  assert.deepEqual(messagesIn(again).filter((m) => m.to === 2 && m.signer === 1), [], "not again within Δ");
});

Deno.test("servers crashed and restarted at any moment of an agreement never sign two different votes for one frame, round and step", () => {
  for (const victim of [1, 0]) {
    for (let offset = 0; offset <= 120; offset += 8) {
      const what = `s${victim} crashed at F0's end + ${offset} ms`;
      const cluster = new Cluster();
      cluster.writeMs = 13;
      cluster.runUntil(endOf(0) + offset);
      cluster.crash(victim);
      cluster.runUntil(endOf(0) + offset + 30);
      // Restarted from its disk; the proposal it may have seen before does not reach it again, so its
      // round 0 time-out would have it prevote nil had it forgotten its prevote.
      cluster.start(victim);
      cluster.route = (m) => !(m.to === victim && m.msg.code === Code.proposal && m.msg.height === F0);
      cluster.runUntil(endOf(3) + 600);
      for (const [slot, digests] of cluster.sentVotes[victim]!) {
        assert.equal(digests.size, 1, `${what}: two votes for ${slot}`);
      }
      assert.deepEqual(cluster.sentBeforeWritten, [], what);
      assertAgreed(cluster, F0 + 3);
    }
  }
});

// BUG (lib/replica.ts, #propose / #advance): a proposal is not written before it is sent. A proposer of a
// later round that proposed the beta's transfers and restarted proposes again from what it has after the
// restart (nothing of the beta's, so an empty frame): a second, different signed proposal for the same
// round, and every server that saw both logs this honest server "lying" and writes evidence against it.
// docs/agreement.md's review (item 10) asks for proposals to be persisted. Un-ignore once they are.
Deno.test({
  name: "a proposer restarted in its round proposes nothing more there, so it is never called a liar",

  fn: async () => {
    const tx = await payment();
    const before = newReplica(1, T0 + 900);
    before.tick(endOf(0));
    // s0's proposal with a transfer reaches s1, then s2 moves to round 1, whose proposer is s1.
    const actions = settle(before, endOf(0) + 10, [
      ...before.peerMessage(endOf(0) + 5, proposalBody(0, { txs: [tx] })).actions,
      ...before.peerMessage(endOf(0) + 6, voteBody(2, "prevote", NIL, { round: 1 })).actions,
    ]);
    const first = messagesIn(actions).find((m) =>
      m.code === Code.proposal && m.signer === 1 && m.round === 1
    );
    assert.equal(first?.txs, 1, "s1 proposes the beta's transfer in round 1");
    const votes = decodeVotes(votesWrites(actions).at(-1)!.persist.files[0]!.bytes);
    assert.ok(!("problem" in votes));
    assert.equal(votes.memory.round, 1);

    const after = newReplica(1, endOf(0) + 100, { recovered: genesisStart({ votes }) });
    const again = messagesIn(after.tick(endOf(0) + 100)).find((m) =>
      m.code === Code.proposal && m.signer === 1 && m.round === 1
    );
    // It may have sent a proposal there before the crash; a different one would prove a lie it never told.
    assert.equal(again, undefined, "no second proposal for round 1");
  },
});

Deno.test("an alpha restarted before its frame ends still has the transfers it answered ok, from its alpha log", async () => {
  const tx = await payment();
  const cluster = new Cluster();
  cluster.runUntil(T0 + 100);
  cluster.request(0, 1, Kind.submit, tx.bytes);
  cluster.runUntil(T0 + 300);
  assert.equal(cluster.answer(0, 1)?.ok, true);
  assert.deepEqual(cluster.disks[0]!.get(alphaLogName(F0)), tx.bytes);
  cluster.crash(0);
  cluster.runUntil(T0 + 400);
  cluster.start(0);
  assert.deepEqual(cluster.replica(0).alphaBuffer(F0).map((t) => t.id), [tx.id]);
  cluster.runUntil(endOf(1) + 600);
  assertAgreed(cluster, F0);
  for (const i of [0, 1, 2]) {
    assert.equal(cluster.replica(i).committed.state.ledger.balanceOf(bob.publicKey), 300, `s${i}`);
  }
  assert.equal(cluster.disks[0]!.has(alphaLogName(F0)), false, "removed once F0 is committed");
});

// ---- catching up ---------------------------------------------------------------------------------------

Deno.test("a replica behind adopts a commit another certificate chains to, then the next one under the 2Δ rule", async () => {
  const tx = await payment();
  const cluster = new Cluster();
  cluster.route = (m) => m.from !== 2 && m.to !== 2;
  cluster.runUntil(T0 + 100);
  cluster.request(0, 1, Kind.submit, tx.bytes);
  // F0 + 2 is s2's to propose: the others decide it in round 1.
  cluster.runUntil(endOf(3) + 200 + DECIDE_WAIT_MS);
  const previous = assertAgreed(cluster, F0 + 1, [0, 1]);
  const digest = assertAgreed(cluster, F0 + 2, [0, 1]);
  const s2 = cluster.replica(2);
  assert.equal(s2.committed.frame, F0 - 1, "s2 heard nothing");

  // s1 sends s2 the archive entry of F0 + 2 as a commit message: with b = 0 a certificate alone may be a
  // liar's (its precommit and an honest one of a round that did not decide), so it is held.
  const entry = (frame: number) => commitWrites(cluster.actions(1)).find((p) => p.commit!.frame === frame)!;
  const held = cluster.inject(2, signedBody(serverKeys[1]!, [entry(F0 + 2).files[0]!.bytes]));
  assert.deepEqual(events(held, "catchup_received"), []);
  assert.equal(s2.committed.frame, F0 - 1);
  // F0 + 1's entry: F0 + 2's certificate chains to it (an honest server committed it and signed on top).
  const actions = cluster.inject(2, signedBody(serverKeys[1]!, [entry(F0 + 1).files[0]!.bytes]));
  assert.deepEqual(events(actions, "catchup_received"), [{
    frame: F0 + 1,
    digest: previous.slice(0, 12),
    accounts: 2,
  }]);
  assert.deepEqual(events(actions, "lying"), []);
  const written = commitWrites(actions);
  assert.equal(written.length, 1);
  assert.deepEqual(written[0]!.files, entry(F0 + 1).files, "the same archive entry, byte for byte");
  assert.equal(s2.committed.frame, F0 + 1);
  assert.equal(s2.committed.hash, previous);
  assert.equal(s2.committed.state.ledger.balanceOf(bob.publicKey), 300);

  // Once written, F0 + 2's agreement starts, the held certificate's precommits count in it, and after 2Δ
  // with no vote against them it decides: the certified state of F0 + 2 is adopted.
  cluster.runUntil(cluster.now + 50);
  assert.equal(s2.committed.frame, F0 + 1);
  cluster.runUntil(cluster.now + DECIDE_WAIT_MS);
  assert.equal(s2.committed.frame, F0 + 2);
  assert.equal(s2.committed.hash, digest);
  assert.deepEqual(commitWrites(cluster.actions(2)).map((p) => p.files), [
    entry(F0 + 1).files,
    entry(F0 + 2).files,
  ]);
  // F0 + 2 was s2's own round-0 proposal (empty, the same digest as the one decided): decided, not adopted.
  assert.equal(s2.metrics.catchupsReceived, 1);

  // Once written, what the adopted state's recent ids say is answered.
  cluster.runUntil(cluster.now + 50);
  const status = answerOf(s2.request(cluster.now, 5, Kind.txStatus, txQuery(tx)));
  assert.equal(status.state, "committed");
  assert.equal(status.frame, F0);
  // An older or equal commit is ignored.
  assert.deepEqual(
    s2.peerMessage(cluster.now, signedBody(serverKeys[0]!, [entry(F0 + 2).files[0]!.bytes])).actions,
    [],
  );
});

Deno.test("a replica cut off catches up once messages flow again: a peer hearing it is behind sends it a commit", () => {
  const cluster = new Cluster();
  cluster.route = (m) => m.from !== 2 && m.to !== 2;
  cluster.runUntil(endOf(3) + 500);
  assert.equal(cluster.replica(2).committed.frame, F0 - 1);
  cluster.route = () => true;
  cluster.runUntil(endOf(6) + 600);
  assert.ok(cluster.events(2, "catchup_received").length >= 1);
  assert.ok([0, 1].some((i) => cluster.events(i, "catchup_sent").some((f) => f.to === "s2")));
  assertAgreed(cluster, F0 + 6);
  for (const i of [0, 1, 2]) assert.deepEqual(cluster.events(i, "lying"), [], `s${i}`);
});

Deno.test("a replica hearing of later frames asks for a commit (want) and adopts the one it is sent", () => {
  const cluster = new Cluster();
  // s2 hears nothing until F0 + 1 is decided, and is never heard except for its wants.
  let deaf = true;
  cluster.route = (m) => (m.from === 2 ? m.msg.code === Code.want : !(deaf && m.to === 2));
  cluster.runUntil(endOf(1) + 600);
  assert.equal(cluster.replica(2).committed.frame, F0 - 1);
  deaf = false;
  cluster.runUntil(endOf(3) + 600);
  const wants = cluster.sent(2).filter((m) => m.code === Code.want);
  assert.ok(wants.length >= 1, "s2 asked");
  assert.equal(wants[0]!.height, F0, "for a commit of F0 or later");
  assert.ok(cluster.events(2, "catchup_received").length >= 1);
  assert.ok(cluster.replica(2).committed.frame >= F0 + 2);
});

Deno.test("a commit whose state does not hash to its certified digest (recent ids removed) is refused and its sender logged lying", async () => {
  const tx = await payment();
  const genuine = certify(F0, { txs: [tx] });
  assert.ok(genuine.state.recent.some((r) => r.ids.has(tx.id)));
  // The replay protection stripped: the same balances and certificate, the transfer's id gone.
  const stripped: Commit = {
    ...genuine,
    state: {
      ledger: genuine.state.ledger,
      recent: genuine.state.recent.map((r) => ({ frame: r.frame, ids: new Set() })),
    },
  };
  const replica = newReplica(2, endOf(0) + 300);
  const refused = replica.peerMessage(endOf(0) + 300, commitBody(1, stripped));
  assert.equal(refused.listed, true);
  assert.deepEqual(events(refused.actions, "lying"), [{
    from: "s1",
    key: serverKeys[1]!.publicHex.slice(0, 16),
    frame: F0,
    reason: "its certified state is not: its state does not hash to the digest its certificate signs",
  }]);
  assert.deepEqual(ofType(refused.actions, "persist"), []);
  assert.equal(replica.committed.frame, F0 - 1);

  const cases: [string, Commit, string][] = [
    [
      "one signature",
      certify(F0, { txs: [tx], signers: [0] }),
      "certificate holds 1 signatures, fewer than the quorum 2",
    ],
    [
      "a signature under another signer's index",
      {
        ...genuine,
        cert: {
          ...genuine.cert,
          signatures: [genuine.cert.signatures[0]!, { ...genuine.cert.signatures[1]!, signer: 1 }],
        },
      },
      "certificate signature of s1 does not verify",
    ],
  ];
  for (const [what, commit, problem] of cases) {
    const { actions } = replica.peerMessage(endOf(0) + 301, commitBody(1, commit));
    assert.deepEqual(events(actions, "lying").map((f) => f.reason), [
      `its certified state is not: ${problem}`,
    ], what);
    assert.deepEqual(ofType(actions, "persist"), [], what);
  }

  replica.tick(endOf(0) + 302);
  replica.peerMessage(endOf(0) + 302, commitBody(1, genuine));
  const adopted = replica.tick(endOf(0) + 302 + DECIDE_WAIT_MS);
  assert.equal(events(adopted, "catchup_received").length, 1);
  assert.equal(replica.committed.hash, genuine.cert.digest);
});

Deno.test("a replica does not adopt a commit while its own last commit is still being written", () => {
  const replica = newReplica(1, T0 + 900);
  replica.tick(endOf(0));
  // F0 decided here (s0's proposal, s0's prevote and precommit, s1's own), its votes written at once and
  // its archive entry left in flight.
  const { digest, state } = outcome(F0);
  const voted = settle(replica, endOf(0) + 5, [
    ...replica.peerMessage(endOf(0) + 5, proposalBody(0)).actions,
    ...replica.peerMessage(endOf(0) + 5, voteBody(0, "prevote", digest)).actions,
    ...replica.peerMessage(endOf(0) + 5, voteBody(0, "precommit", digest)).actions,
  ], (p) => p.commit === undefined);
  const t = endOf(0) + 5 + DECIDE_WAIT_MS;
  const actions = [...voted, ...settle(replica, t, replica.tick(t), (p) => p.commit === undefined)];
  assert.equal(replica.committed.frame, F0);
  assert.equal(commitWrites(actions).length, 1);
  assert.equal(replica.status(t).durableFrame, F0 - 1);
  const later = certify(F0 + 1, { parent: state, prevDigest: digest, signers: [0, 2] });
  assert.deepEqual(replica.peerMessage(t + 1, commitBody(2, later)).actions, [], "held, not a lie");
  assert.equal(replica.committed.frame, F0);
  // Once written, and once F0 + 1's agreement started and its certificate stood 2Δ, it is adopted.
  replica.written(t + 2, commitWrites(actions)[0]!.id);
  replica.tick(endOf(1) + 8);
  replica.tick(endOf(1) + 8 + DECIDE_WAIT_MS);
  assert.equal(replica.committed.frame, F0 + 1);
  assert.equal(replica.committed.hash, later.cert.digest);
});

Deno.test("a certified state that does not build on the committed frame is not adopted: it would undo it", () => {
  // Two certified histories exist only with more liars than tolerated; a server must still never leave the
  // one it committed for the other. Without the check it adopted the second history's frame F0 here.
  const replica = newReplica(1, endOf(0) + 1);
  const other = "cd".repeat(32);
  const forked = certify(F0, { prevDigest: other, signers: [0, 2] }); // a height-F0 state not on the genesis
  const { actions } = replica.peerMessage(endOf(0) + 2, commitBody(2, forked));
  assert.deepEqual(events(actions, "dropped").map((f) => f.reason), [
    `its certified frame ${F0} builds on another state than frame ${F0 - 1} committed here: two certified ` +
    `histories (more dishonest servers than the network tolerates); not adopted`,
  ]);
  const next = certify(F0 + 1, { parent: forked.state, prevDigest: forked.cert.digest, signers: [0, 2] });
  replica.peerMessage(endOf(0) + 3, commitBody(2, next)); // chains to the refused one: nothing to adopt
  replica.tick(endOf(1) + 10);
  assert.equal(replica.committed.frame, F0 - 1);
  // The genuine history's state of F0 is held as usual.
  const genuine = certify(F0, { signers: [0, 2] });
  assert.deepEqual(events(replica.peerMessage(endOf(1) + 20, commitBody(2, genuine)).actions, "dropped"), []);
});

Deno.test("a certified state held while it could not be checked is checked again before it is adopted", () => {
  // Review of 005e50c: x1 (F0 + 3, of another history) came while this server was at the genesis, too far
  // behind to check it, and was held; once the genuine F0 to F0 + 2 were committed, x2 chained to x1 and
  // x1 was adopted over the committed F0 + 2.
  const replica = newReplica(1, endOf(10));
  let t = endOf(10) + 1;
  const send = (c: Commit) => settle(replica, t, replica.peerMessage(t++, commitBody(2, c)).actions);
  const g0 = certify(F0, { signers: [0, 2] });
  const g1 = certify(F0 + 1, { parent: g0.state, prevDigest: g0.cert.digest, signers: [0, 2] });
  const g2 = certify(F0 + 2, { parent: g1.state, prevDigest: g1.cert.digest, signers: [0, 2] });
  const g3 = certify(F0 + 3, { parent: g2.state, prevDigest: g2.cert.digest, signers: [0, 2] });
  const x1 = certify(F0 + 3, { prevDigest: "cd".repeat(32), signers: [0, 2] });
  const x2 = certify(F0 + 4, { parent: x1.state, prevDigest: x1.cert.digest, signers: [0, 2] });
  send(x1);
  for (const g of [g0, g1, g2, g3]) send(g);
  assert.equal(replica.committed.hash, g2.cert.digest);
  const actions = send(x2);
  assert.equal(replica.committed.hash, g2.cert.digest, "g2 stays committed");
  assert.equal(events(actions, "dropped").length, 1, "x1 refused");
});

Deno.test("after an outage longer than SKIP_AFTER_FRAMES, one agreement skips to the newest ended frame, empty", () => {
  const cluster = new Cluster();
  let down = true;
  cluster.route = () => !down;
  cluster.runUntil(endOf(6) + 100);
  for (const i of [0, 1, 2]) assert.equal(cluster.replica(i).committed.frame, F0 - 1);
  down = false;
  cluster.runUntil(endOf(9) + 600);
  const [skip] = commitWrites(cluster.actions(0));
  const { commit } = decodeCommit(skip!.files[0]!.bytes);
  assert.equal(commit.cert.height, F0, "decided by the agreement on F0");
  assert.ok(commit.frame > F0 + SKIP_AFTER_FRAMES, `it certifies frame F0 + ${commit.frame - F0}`);
  const decidedAt = cluster.history[0]!.find(({ action }) => action === skip)!.at;
  assert.ok(frameStartMs(commit.frame + 1, 1000) <= decidedAt, "a frame that had ended");
  assert.equal(commit.state.ledger.hash, GENESIS.state.ledger.hash, "nothing in it");
  assertAgreed(cluster, commit.frame);
  for (const i of [0, 1, 2]) {
    assert.equal(cluster.events(i, "consensus")[0]!.skipped_from, F0, `s${i}`);
    assert.ok(cluster.replica(i).committed.frame >= F0 + 8, `s${i} goes on frame by frame`);
  }
});

// ---- amnesia -------------------------------------------------------------------------------------------

Deno.test("a replica whose votes are lost signs nothing for a frame that ended before its start plus the skew", () => {
  const cluster = new Cluster(T0, { start: [0, 2] });
  cluster.runUntil(endOf(0) + 500);
  assert.equal(cluster.replica(0).headFrame, F0, "s0 and s2 still decide F0 (2Δ after its certificate)");

  // s1 starts on an empty data directory at F0's end + 500 ms: F0 may have had its vote before.
  cluster.start(1, genesisStart({ votes: "lost", fresh: true }));
  const started = cluster.actions(1);
  assert.equal(events(started, "start")[0]!.votes, "lost");
  assert.deepEqual(events(started, "amnesic"), [{
    reason: "empty data directory",
    signs_from_frame: F0 + 1,
    detail: "this server may have voted before and will not vote for those frames again; " +
      "it waits for a certified state from its peers",
  }]);
  // The rule is written down at once: a restart finding this file knows it signed nothing since.
  const [floor] = votesWrites(started);
  assert.equal(floor?.record.height, F0 + 1);
  assert.deepEqual(floor?.record.memory.signed, []);

  cluster.runUntil(endOf(4) + 600);
  assert.deepEqual(cluster.events(1, "waiting"), [{
    frame: F0,
    reason: "this server may have voted for this frame before and lost that vote; it only listens",
  }]);
  const slots = [...cluster.sentVotes[1]!.keys()];
  assert.ok(!slots.some((slot) => slot.startsWith(`${F0}:`)), "no vote for F0");
  assert.ok(
    !votesWrites(cluster.actions(1)).some((v) => v.record.memory.signed.length > 0 && v.record.height <= F0),
  );
  assert.ok(slots.some((slot) => slot.startsWith(`${F0 + 1}:`)), "it votes again from F0 + 1 on");
  assertAgreed(cluster, F0, [0, 2]);
  assertAgreed(cluster, F0 + 4);
});

Deno.test("a replica whose votes are lost but that started before the next frame could end signs at once, quietly", () => {
  const replica = startReplica(1, T0 + 500, { recovered: genesisStart({ votes: "lost", fresh: true }) });
  const started = replica.drain();
  assert.deepEqual(events(started, "amnesic"), [], "F0 ends after T0 + 500 + the skew: nothing to say");
  const [floor] = votesWrites(started);
  assert.equal(floor?.record.height, F0);
  const actions = settle(replica, T0 + 510, started);
  actions.push(...replica.tick(endOf(0)));
  assert.deepEqual(events(actions, "waiting"), []);
  const [prevote] = votesWrites(replica.peerMessage(endOf(0) + 5, proposalBody(0)).actions);
  assert.deepEqual(prevote?.record.memory.signed, [{
    round: 0,
    step: "prevote",
    digest: outcome(F0).digest,
  }]);
});

Deno.test("a replica whose votes file is damaged is amnesic too, and says why", () => {
  const replica = startReplica(1, endOf(2) + 100, { recovered: genesisStart({ votes: "lost" }) });
  const started = replica.drain();
  assert.deepEqual(events(started, "amnesic").map((f) => [f.reason, f.signs_from_frame]), [
    ["votes file missing or damaged", F0 + 3],
  ]);
  settle(replica, endOf(2) + 110, started);
  const actions = replica.tick(endOf(2) + 120);
  assert.deepEqual(events(actions, "waiting").map((f) => f.frame), [F0]);
  const proposal = replica.peerMessage(endOf(2) + 130, proposalBody(0)).actions;
  assert.deepEqual(votesWrites(proposal), [], "no prevote");
});

// ---- transfer status -----------------------------------------------------------------------------------

Deno.test("a transfer is answered committed only once the archive entry holding it is written", async () => {
  const tx = await payment();
  const cluster = new Cluster();
  cluster.writeHook = (node, p) => node === 1 && p.commit !== undefined;
  cluster.runUntil(T0 + 100);
  cluster.request(0, 1, Kind.submit, tx.bytes);
  cluster.runUntil(endOf(0) + 600);
  const status = () => answerOf(cluster.request(1, 2, Kind.txStatus, txQuery(tx)));
  assert.equal(cluster.replica(1).committed.frame, F0, "decided");
  const last = lastFrameFor(tx.timestampMs, NETWORK.timing);
  assert.deepEqual(status(), {
    ok: true,
    id: tx.id,
    server: "s1",
    committedFrame: F0 - 1,
    state: "pending",
    lastFrame: last,
    code: "ok",
    frame: F0,
  });
  assert.equal(answerOf(cluster.request(0, 3, Kind.txStatus, txQuery(tx))).state, "committed", "s0 wrote it");

  cluster.writeHook = () => false;
  cluster.releaseWrites();
  cluster.runUntil(cluster.now + 50);
  assert.deepEqual(status(), {
    ok: true,
    id: tx.id,
    server: "s1",
    committedFrame: F0,
    state: "committed",
    frame: F0,
  });
});

Deno.test("a transfer is answered never only once every frame of its window is durably committed", async () => {
  // Stamped in F0 + 3 and never submitted: it could be applied in F0 + 1 to F0 + 3.
  const tx = await payment(1, endOf(2) + 100);
  const last = lastFrameFor(tx.timestampMs, NETWORK.timing);
  assert.equal(last, F0 + 3);
  assert.equal(SPAN, 3);
  const cluster = new Cluster();
  cluster.writeHook = (node, p) => node === 1 && p.commit?.frame === last;
  let request = 1;
  const status = () => answerOf(cluster.request(1, request++, Kind.txStatus, txQuery(tx)));

  cluster.runUntil(endOf(2) + 600);
  assert.deepEqual(status(), {
    ok: true,
    id: tx.id,
    server: "s1",
    committedFrame: F0 + 2,
    state: "pending",
    lastFrame: last,
  });
  cluster.runUntil(endOf(3) + 600);
  assert.equal(cluster.replica(1).committed.frame, F0 + 3, "its last frame is decided");
  assert.equal(status().state, "pending", "but not on disk yet");

  cluster.writeHook = () => false;
  cluster.releaseWrites();
  cluster.runUntil(cluster.now + 50);
  assert.deepEqual(status(), {
    ok: true,
    id: tx.id,
    server: "s1",
    committedFrame: F0 + 3,
    state: "never",
    code: "not_included",
    lastFrame: last,
  });
});

// BUG (lib/replica.ts, constructor): a replica starting from the genesis sets its transfer index's
// knownFromFrame to the start frame, so a transfer whose window reaches back before the start frame (one
// stamped in the network's first recentFrames - 1 frames, or before the start) is answered "pending" for
// ever instead of "never", although no frame before the start frame exists. tests/faults/hostile_bytes_test.ts
// waits past those frames because of it. Un-ignore once frames before the start frame count as known.
Deno.test({
  name: "a transfer stamped in the network's first frame and never included is answered never in the end",

  fn: async () => {
    const tx = await payment(1, T0 + 100);
    const cluster = new Cluster();
    cluster.runUntil(endOf(SPAN) + 600);
    const status = answerOf(cluster.request(1, 1, Kind.txStatus, txQuery(tx)));
    assert.equal(status.state, "never");
  },
});

// ---- losing the quorum ---------------------------------------------------------------------------------

Deno.test("a lone replica halts once no quorum certified a frame for too long after the startup grace", () => {
  const cluster = new Cluster(T0, { start: [1] });
  cluster.runUntil(endOf(STARTUP_GRACE_FRAMES + 2 + BEHIND_GRACE_INTERVALS));
  const s1 = cluster.replica(1);
  assert.ok(s1.halted);
  const halt = cluster.history[1]!.find(({ action }) => action.type === "halt")!;
  // Grace: until 10 frames after the start frame (and after this start), then two intervals asking its
  // peers for a certified state. The first tick after that halts.
  const graceEnd = T0 + (STARTUP_GRACE_FRAMES + 1 + BEHIND_GRACE_INTERVALS) * 1_000;
  assert.ok(halt.at >= graceEnd && halt.at < graceEnd + 300, `halted at T0 + ${halt.at - T0}`);
  const lag = STARTUP_GRACE_FRAMES + 1 + BEHIND_GRACE_INTERVALS;
  assert.ok(lag > MAX_MISSED_FRAMES + 1);
  // It never had consensus: the halt says what it waited for, how long, who is silent and what to do.
  assert.deepEqual(halt.action, {
    type: "halt",
    reason: `No quorum since this server started ${Math.round((halt.at - T0) / 1000)} s ago: a frame needs ` +
      `2 of 3 servers and none was agreed; heard from no other server (s0, s2); stopping. Start the other ` +
      `servers and check that they reach each other, or keep this one waiting for them with --wait-for-quorum`,
  });
  assert.deepEqual(cluster.events(1, "no_consensus"), [{ frame: F0, round: 0, need: 2, missed: lag }]);
  assert.deepEqual(commitWrites(cluster.actions(1)), []);
  assert.deepEqual(s1.tick(cluster.now + 1_000), [], "a halted replica does nothing");
  const refused = answerOf(s1.request(cluster.now + 1_000, 1, Kind.submit, new Uint8Array(144)));
  assert.equal(refused.code, "no_quorum");
});

Deno.test("replicas that vote but cannot agree wait instead of halting; without a quorum voting they halt", () => {
  // Campaign seed 26 (b = 1) stayed stuck for good after its chaos: rounds had grown long, and each server
  // halted when its grace ran out although it heard every other server, was restarted, and halted again,
  // so that no round ever had its servers in it together.
  const cluster = new Cluster(T0, { start: [0, 1] });
  let talking = true;
  // They hear each other (their nil votes, round after round) but never see a proposal: no frame can be
  // agreed.
  cluster.route = (m) => talking && m.msg.code !== Code.proposal;
  cluster.runUntil(endOf(STARTUP_GRACE_FRAMES + 10 + BEHIND_GRACE_INTERVALS));
  for (const i of [0, 1]) {
    assert.ok(!cluster.replica(i).halted, `s${i} halted though it heard a quorum`);
    assert.deepEqual(cluster.events(i, "no_quorum").map((f) => f.action), [
      "a quorum of servers takes part in the agreement, so it waits for them to agree instead of stopping; " +
      "refusing transfers until they do",
    ]);
  }
  const refused = answerOf(cluster.replica(0).request(cluster.now, 1, Kind.submit, new Uint8Array(144)));
  assert.equal(refused.code, "no_quorum");
  talking = false;
  cluster.runUntil(cluster.now + (TAKING_PART_INTERVALS + 1) * 1_000);
  assert.ok(cluster.replica(0).halted && cluster.replica(1).halted, "without a quorum voting, they stop");
});

Deno.test("a lone replica sent a replayed message of another server's again and again still halts", () => {
  // Review of 9e33097: counting any signed message as a server heard let anyone who captured one (traffic is
  // not encrypted) keep a cut-off server waiting for good. A replay is a repeat: it shows no one takes part.
  const replica = newReplica(0, T0);
  const vote = voteBody(1, "prevote", NIL);
  const want = signedBody(serverKeys[1]!, [wantPayload(NETWORK.id, F0)]);
  for (let t = T0; t < endOf(60) && !replica.halted; t += 250) {
    replica.tick(t);
    if (t % 2_000 === 0) {
      replica.peerMessage(t, vote);
      replica.peerMessage(t, want);
    }
  }
  assert.ok(replica.halted, `it never halted; committed ${replica.committed.frame}`);
});

Deno.test("a lone replica waiting for quorum refuses transfers with no_quorum, and takes them again once a certified state comes", async () => {
  const cluster = new Cluster(T0, { start: [0], waitForQuorum: true });
  cluster.runUntil(endOf(STARTUP_GRACE_FRAMES + 2 + BEHIND_GRACE_INTERVALS));
  const s0 = cluster.replica(0);
  assert.equal(s0.halted, false);
  assert.deepEqual(ofType(cluster.actions(0), "halt"), []);
  assert.equal(cluster.events(0, "no_consensus").length, 1);
  assert.deepEqual(cluster.events(0, "no_quorum").map((f) => f.action), [
    "refusing transfers until a quorum agrees",
  ]);
  const tx = await payment(1, cluster.now);
  const refused = answerOf(cluster.request(0, 1, Kind.submit, tx.bytes));
  assert.equal(refused.code, "no_quorum");
  assert.equal(refused.id, tx.id);
  assert.deepEqual(s0.health(cluster.now), {
    ok: false,
    reason: "no quorum of servers agrees (waiting for quorum)",
  });

  // s1 and s2 certified the newest ended frame, skipping the outage (an agreement on F0 deciding it).
  const newest = Math.floor(cluster.now / 1_000) - 1;
  // Its certificate counts as the precommits of s0's own agreement on F0, and decides after 2Δ.
  cluster.inject(0, commitBody(1, certify(newest, { height: F0, signers: [1, 2] })));
  cluster.runUntil(cluster.now + DECIDE_WAIT_MS + 50);
  assert.deepEqual(cluster.events(0, "quorum_back").map((f) => f.frame), [newest]);
  assert.deepEqual(s0.health(cluster.now), { ok: true, reason: `certified frame ${newest}` });
  const taken = cluster.request(0, 2, Kind.submit, (await payment(2, cluster.now)).bytes);
  assert.deepEqual(events(taken, "rejected_transfers"), []);
  assert.notEqual(ofType(taken, "answer")[0]?.response.code, "no_quorum");
});

// ---- determinism ---------------------------------------------------------------------------------------

Deno.test("the same inputs give byte-identical actions", async () => {
  const tx = await payment();
  const run = () => {
    const cluster = new Cluster();
    cluster.runUntil(T0 + 100);
    cluster.request(0, 1, Kind.submit, tx.bytes);
    cluster.runUntil(endOf(2) + 600);
    return cluster.history.map((h) => serialise(h));
  };
  const [first, second] = [run(), run()];
  for (const i of [0, 1, 2]) {
    assert.ok(first[i]!.length > 1_000, `s${i} did something`);
    assert.equal(second[i], first[i], `s${i}`);
  }
});

Deno.test("a replica far behind that keeps receiving certified states does not halt: it is catching up, not without a quorum", () => {
  const cluster = new Cluster();
  cluster.route = (m) => m.from !== 2 && m.to !== 2; // s2 hears nothing but what is injected below
  const end = endOf(STARTUP_GRACE_FRAMES + 4 * BEHIND_GRACE_INTERVALS + 8);
  cluster.runUntil(endOf(STARTUP_GRACE_FRAMES));
  const s2 = cluster.replica(2);
  const entry = (frame: number) => commitWrites(cluster.actions(1)).find((p) => p.commit!.frame === frame);
  // One certified state a frame, far behind the clock: each next entry's certificate chains to the one
  // before, so s2 adopts one frame per interval, while the others commit one per interval too.
  let next = F0;
  while (cluster.now < end) {
    const e = entry(next);
    if (e !== undefined) {
      cluster.inject(2, signedBody(serverKeys[1]!, [e.files[0]!.bytes]));
      next++;
    }
    cluster.runUntil(cluster.now + 1_000);
  }
  const lag = Math.floor(cluster.now / 1_000) - 1 - s2.committed.frame;
  assert.ok(lag > MAX_MISSED_FRAMES + 1, `s2 stayed far behind (${lag} frames)`);
  assert.ok(
    s2.committed.frame > F0 + 2 * BEHIND_GRACE_INTERVALS,
    `s2 made progress (${s2.committed.frame - F0})`,
  );
  assert.equal(s2.halted, false, "s2 did not halt while certified states kept coming");
  assert.deepEqual(ofType(cluster.actions(2), "halt"), []);

  // Once they stop coming, the usual grace runs out and it halts.
  cluster.runUntil(cluster.now + (BEHIND_GRACE_INTERVALS + 2) * 1_000);
  assert.equal(s2.halted, true);
});

Deno.test("a locked server that sees a late prevote quorum for contents it lacks still proposes its locked value", async () => {
  // Review of a6d794b: taking such a value as valid made s1 propose an empty frame in its own round (it
  // cannot propose what it lacks), prevote nil on it (its lock refuses it), and write its votes file with
  // the lock but without the locked transfers.
  const tx = await payment();
  const X = outcome(F0, [tx]).digest; // s2's proposal of round 2
  const Y = "ab".repeat(32); // a value of round 3 whose proposal s1 never saw
  const t0 = endOf(0);
  const s1 = newReplica(1, T0 + 900);
  const all: Action[] = [];
  const feed = (at: number, body: Uint8Array) =>
    all.push(...settle(s1, at + 1, s1.peerMessage(at, body).actions));
  all.push(...settle(s1, t0 + 1, s1.tick(t0)));
  feed(t0 + 5, voteBody(0, "prevote", NIL, { round: 2 })); // b + 1 servers in round 2: it goes there
  feed(t0 + 10, proposalBody(2, { round: 2, txs: [tx] }));
  feed(t0 + 15, voteBody(2, "prevote", X, { round: 2 }));
  let record = votesWrites(all).at(-1)!.record;
  assert.deepEqual([record.memory.lockedRound, record.memory.lockedDigest], [2, X]);
  feed(t0 + 20, voteBody(0, "prevote", NIL, { round: 5 })); // to round 5
  feed(t0 + 25, voteBody(0, "prevote", Y, { round: 3 }));
  feed(t0 + 30, voteBody(2, "prevote", Y, { round: 3 })); // a quorum for Y in round 3
  feed(t0 + 35, voteBody(0, "prevote", NIL, { round: 7 })); // to round 7, s1's own
  record = votesWrites(all).at(-1)!.record;
  assert.deepEqual([record.memory.validRound, record.memory.validDigest], [2, X]);
  assert.equal(record.locked?.digest, X, "the locked transfers stay in the votes file");
  const mine = messagesIn(all).filter((m) => m.signer === 1 && m.round === 7);
  const proposal = mine.find((m) => m.code === Code.proposal);
  assert.equal(proposal?.txs, 1, "s1 proposes X again in round 7");
  assert.equal(viewOf(proposal.body.subarray(PEER_HEAD_BYTES)).getUint32(77), 2, "with round 2's quorum");
  assert.equal(mine.find((m) => m.code === Code.prevote)?.digest, X, "and prevotes it");
});

Deno.test("b = 0: a vote from a round too far ahead to count still stops a certificate for another value", async () => {
  // Review of 2d27138 (a fork within the bound): the liar (s2) moved s1 alone 29 rounds ahead with its
  // proposals, and completed a certificate for X there with it; s1's votes for X were then more than
  // MAX_ROUND_LEAD rounds ahead of s0, which dropped them unseen while it waited out its certificate for D
  // of round 0, and decided D. Every message between the honest servers arrives within 200 ms < Δ.
  const tx = await payment();
  const cluster = new Cluster(T0, { start: [0, 1] });
  cluster.route = (m) => (m.to === 2 ? false : m.from === 0 && m.to === 1 ? 200 : true);
  cluster.runUntil(endOf(0) + 50);
  const D = outcome(F0).digest; // s0's round-0 proposal: its empty alpha buffer
  const X = outcome(F0, [tx]).digest; // the liar's other value
  cluster.inject(0, voteBody(2, "prevote", D));
  cluster.inject(0, voteBody(2, "precommit", D)); // s0 holds a certificate for D of round 0
  cluster.inject(1, proposalBody(2, { round: 14, polRound: 0 })); // s1 goes to round 14
  cluster.inject(1, proposalBody(2, { round: 29, txs: [tx] })); // then to 29 (<= 14 + MAX_ROUND_LEAD)
  cluster.inject(1, voteBody(2, "prevote", X, { round: 29 }));
  cluster.inject(1, voteBody(2, "precommit", X, { round: 29 }));
  cluster.runUntil(endOf(0) + 1500);
  const decided = [0, 1].map((i) =>
    commitWrites(cluster.actions(i)).filter((p) => p.commit!.frame === F0).map((p) =>
      decodeCommit(p.files[0]!.bytes).commit.cert.digest
    )
  );
  assert.ok(
    decided[0]!.length === 0 || decided[1]!.length === 0 || decided[0]![0] === decided[1]![0],
    `no fork: s0 committed ${decided[0]} and s1 ${decided[1]}`,
  );
  assert.ok(
    cluster.events(0, "dropped").some((f) => String(f.reason).includes("too far ahead")),
    "s0 did drop s1's votes of round 29 (what the test is about)",
  );
});
