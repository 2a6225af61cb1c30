// Tests of lib/replica.ts: three replicas driven by hand in one process, no clock, socket or disk. The
// test is the shell: it chooses the time of every input and delivers each replica's send and broadcast
// actions to the others' peerMessage(), holding back what a cut-off replica would not have received.

import assert from "node:assert/strict";
import { concatBytes, fromHex, toHex } from "../lib/_bytes.ts";
import { archiveName } from "../lib/archive.ts";
import { RECENT_IDS_FILE } from "../lib/catchup.ts";
import { type KeyPair, signerOf } from "../lib/keys.ts";
import { genesisState, Ledger } from "../lib/ledger.ts";
import { type Network, parseNetwork } from "../lib/peers.ts";
import { recover } from "../lib/recovery.ts";
import {
  type Action,
  EVIDENCE_PREFIX,
  MAX_MISSED_FRAMES,
  Replica,
  STARTUP_GRACE_FRAMES,
} from "../lib/replica.ts";
import { type Tx, TX_BYTES } from "../lib/tx.ts";
import {
  decodePayload,
  encodeCatchup,
  encodeVote,
  Kind,
  LENGTH_PREFIX_BYTES,
  PEER_HEAD_BYTES,
  signPeerMessage,
} from "../lib/wire.ts";
import { assertThrowsError, makeKeyPair, makeKeyPairs, signTransfer } from "./_helpers.ts";

/** A frame whose alpha (and beta) is servers[0]; frames F0 + 1 and F0 + 2 belong to s1 and s2. */
const F0 = 1_700_000_001;
const T0 = F0 * 1_000;

const serverKeys = await makeKeyPairs(3);
const alice = await makeKeyPair(10);
const bob = await makeKeyPair(11);
const stranger = await makeKeyPair(99);

const NETWORK: Network = parseNetwork({
  interval: 1,
  servers: serverKeys.map((k, i) => ({ name: `s${i}`, key: k.publicHex, host: "127.0.0.1", port: 7000 + i })),
  genesis: { [alice.publicHex]: 1000 },
});
const GENESIS_HASH = genesisState(NETWORK.genesis).ledger.hash;

/** An empty data directory, as recover() reads it. */
const EMPTY_DISK = { names: () => [], read: () => undefined };

/** Server `me` of NETWORK started at `nowMs` on an empty disk; its start event not yet drained. */
function startReplica(me: number, nowMs = T0, options: { waitForQuorum?: boolean } = {}): Replica {
  return new Replica({
    network: NETWORK,
    me,
    signer: signerOf(serverKeys[me]!),
    recovered: recover(EMPTY_DISK, NETWORK),
    nowMs,
    ...options,
  });
}

/** startReplica() with its start event drained, so the next actions are the test's. */
function newReplica(me: number, nowMs = T0, options: { waitForQuorum?: boolean } = {}): Replica {
  const replica = startReplica(me, nowMs, options);
  replica.drain();
  return replica;
}

/** The body of a length-prefixed message (kind byte first), checking the prefix. */
function bodyOf(message: readonly Uint8Array[]): Uint8Array {
  const bytes = concatBytes(message);
  assert.equal(new DataView(bytes.buffer).getUint32(0), bytes.length - LENGTH_PREFIX_BYTES);
  return bytes.subarray(LENGTH_PREFIX_BYTES);
}

/** A peer message signed by `keyPair` (listed or not), as its body. */
function signedBody(keyPair: KeyPair, payload: Uint8Array): Uint8Array {
  return bodyOf(signPeerMessage(keyPair.publicKey, signerOf(keyPair), [payload]));
}

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

/** Actions as text, every byte array in hex: two equal texts are byte-identical actions. */
function serialise(actions: readonly Action[]): string {
  return JSON.stringify(actions, (_, v) => (v instanceof Uint8Array ? toHex(v) : v));
}

/** Three replicas and the messages between them. */
class Cluster {
  readonly replicas: Replica[];
  /** Every action each replica returned, in order. */
  readonly actions: Action[][];
  /** Replicas whose incoming messages are held back until release(). */
  readonly cut = new Set<number>();
  #queue: { to: number; body: Uint8Array }[] = [];
  #held: { to: number; body: Uint8Array }[] = [];

  constructor(nowMs = T0) {
    this.replicas = [0, 1, 2].map((i) => startReplica(i, nowMs));
    this.actions = this.replicas.map((r) => r.drain());
  }

  /** Records replica `from`'s actions and queues its messages. */
  take(from: number, actions: Action[]): Action[] {
    this.actions[from]!.push(...actions);
    for (const a of actions) {
      if (a.type === "broadcast") {
        for (const to of [0, 1, 2]) if (to !== from) this.#queue.push({ to, body: bodyOf(a.message) });
      } else if (a.type === "send") {
        this.#queue.push({ to: a.to, body: bodyOf(a.message) });
      }
    }
    return actions;
  }

  tick(nowMs: number, which: readonly number[] = [0, 1, 2]): void {
    for (const i of which) this.take(i, this.replicas[i]!.tick(nowMs));
  }

  request(i: number, nowMs: number, request: number, kind: number, arg: Uint8Array): Action[] {
    return this.take(i, this.replicas[i]!.request(nowMs, request, kind, arg));
  }

  /** Delivers queued messages (and the ones they cause) until none is left. */
  deliver(nowMs: number): void {
    for (let m = this.#queue.shift(); m !== undefined; m = this.#queue.shift()) {
      if (this.cut.has(m.to)) {
        this.#held.push(m);
        continue;
      }
      const { actions, listed } = this.replicas[m.to]!.peerMessage(nowMs, m.body);
      assert.ok(listed, `a message to s${m.to} was not from a listed server`);
      this.take(m.to, actions);
    }
  }

  /** Ends every cut: held messages are queued again, in the order they were sent unless `newestFirst`. */
  release(options: { newestFirst?: boolean } = {}): void {
    this.cut.clear();
    const held = this.#held.splice(0);
    this.#queue.push(...(options.newestFirst ? held.reverse() : held));
  }

  events(i: number, event: string): Record<string, unknown>[] {
    return events(this.actions[i]!, event);
  }
}

/** The argument of a txStatus request: the transfer's id and timestamp. */
function txQuery(tx: Tx): Uint8Array {
  const query = new Uint8Array(40);
  query.set(fromHex(tx.id, 32)!);
  new DataView(query.buffer).setBigUint64(32, BigInt(tx.timestampMs));
  return query;
}

/** A transfer of 300 from alice to bob stamped inside frame F0. */
async function payment(amount = 300): Promise<Tx> {
  return await signTransfer(alice, bob, { amount, timestampMs: T0 + 100 });
}

/**
 * The script of one frame: a transfer submitted to F0's alpha, the frame's end, every message delivered.
 * Returns the cluster and the submit's answer.
 */
async function runFrame(tx?: Tx): Promise<{ cluster: Cluster; answer: Record<string, unknown> }> {
  const transfer = tx ?? await payment();
  const cluster = new Cluster();
  const answer = answerOf(cluster.request(0, T0 + 100, 1, Kind.submit, transfer.bytes));
  cluster.tick(T0 + 1_001);
  cluster.deliver(T0 + 1_001);
  return { cluster, answer };
}

Deno.test("Replica starts from the recovered state and logs a start event", () => {
  const replica = startReplica(1, T0 + 250);
  const start = events(replica.drain(), "start");
  assert.deepEqual(start, [{
    frame: F0,
    listen: "127.0.0.1:7001",
    loaded: "genesis",
    hash: GENESIS_HASH.slice(0, 12),
    accounts: 1,
    recent_frames: 0,
    servers: 3,
    quorum: 2,
    network: NETWORK.id.slice(0, 16),
    interval_ms: 1000,
  }]);
  assert.deepEqual(replica.drain(), [], "drain() hands the queued actions out once");
  assert.equal(replica.headFrame, F0 - 1);
  assert.equal(replica.committed.frame, -1);
  assert.equal(replica.committed.hash, GENESIS_HASH);
  assert.equal(replica.me.name, "s1");
});

Deno.test("Replica refuses an index that is not a server in peers.json", () => {
  const options = {
    network: NETWORK,
    me: 3,
    signer: signerOf(serverKeys[0]!),
    recovered: recover(EMPTY_DISK, NETWORK),
    nowMs: T0,
  };
  assertThrowsError(() => new Replica(options), RangeError, /^No server 3 in peers\.json$/);
});

Deno.test("Replica answers a submit to the frame's alpha with ok and the frame", async () => {
  const replica = newReplica(0);
  const tx = await payment();
  const actions = replica.request(T0 + 100, 7, Kind.submit, tx.bytes);
  assert.deepEqual(actions, [{
    type: "answer",
    request: 7,
    response: { ok: true, id: tx.id, frame: F0, server: "s0" },
  }]);
  assert.deepEqual(replica.alphaBuffer(F0).map((t) => t.id), [tx.id]);
  assert.equal(replica.metrics.txAccepted, 1);
});

Deno.test("Replica relays a submit to another server toward the frame's alpha", async () => {
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

Deno.test("Replica answers alpha_unreachable when a relayed submit could not reach the alpha", async () => {
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

Deno.test("Replica refuses a relayed transfer when it is not the alpha, instead of relaying again", async () => {
  const replica = newReplica(1);
  const tx = await payment();
  const response = answerOf(replica.request(T0 + 100, 4, Kind.relay, tx.bytes));
  assert.equal(response.ok, false);
  assert.equal(response.code, "not_alpha");
  assert.equal(response.alpha, "s0");
  assert.equal(response.id, tx.id);
});

Deno.test("Replica sends a transfer arriving in the blackout to the next frame's alpha", async () => {
  const tx = await signTransfer(alice, bob, { amount: 1, timestampMs: T0 + 950 });
  const relay = ofType(newReplica(0).request(T0 + 950, 1, Kind.submit, tx.bytes), "relay");
  assert.equal(relay.length, 1);
  assert.equal(relay[0]!.to, 1);
  const response = answerOf(newReplica(1).request(T0 + 950, 2, Kind.relay, tx.bytes));
  assert.equal(response.ok, true);
  assert.equal(response.frame, F0 + 1);
});

Deno.test("Replica refuses a transfer its alpha buffer cannot take with the ledger's code", async () => {
  const replica = newReplica(0);
  const tx = await payment();
  assert.equal(answerOf(replica.request(T0 + 100, 1, Kind.submit, tx.bytes)).ok, true);
  const again = answerOf(replica.request(T0 + 110, 2, Kind.submit, tx.bytes.slice()));
  assert.equal(again.code, "duplicate");
  assert.equal(again.reason, "this transfer was already seen");
  const broke = answerOf(replica.request(T0 + 120, 3, Kind.submit, (await payment(701)).bytes));
  assert.equal(broke.code, "insufficient_funds");
  const malformed = answerOf(replica.request(T0 + 130, 4, Kind.submit, tx.bytes.subarray(1)));
  assert.equal(malformed.code, "malformed");
  assert.deepEqual(replica.metrics.txRejected, { duplicate: 1, insufficient_funds: 1, malformed: 1 });
  assert.deepEqual(replica.alphaBuffer(F0).map((t) => t.id), [tx.id]);
});

Deno.test("Replica answers balance, status and malformed requests", () => {
  const replica = newReplica(2);
  const balance = answerOf(replica.request(T0 + 10, 1, Kind.balance, alice.publicKey));
  assert.deepEqual(balance, {
    ok: true,
    account: alice.publicHex,
    balance: 1000,
    frame: -1,
    hash: GENESIS_HASH,
    inSync: false,
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
  assert.equal(status.supply, 1000);
  const unknown = answerOf(replica.request(T0 + 10, 5, 0x7f, new Uint8Array(0)));
  assert.deepEqual(unknown, { ok: false, code: "malformed", reason: "unknown request kind 0x7f" });
  const query = answerOf(replica.request(T0 + 10, 6, Kind.txStatus, new Uint8Array(39)));
  assert.equal(query.code, "malformed");
});

Deno.test("three replicas processing a frame agree, and each persists it and logs its consensus", async () => {
  const tx = await payment();
  const { cluster, answer } = await runFrame(tx);
  assert.deepEqual(answer, { ok: true, id: tx.id, frame: F0, server: "s0" });
  const hashes = cluster.replicas.map((r) => r.committed.hash);
  assert.notEqual(hashes[0], GENESIS_HASH, "the transfer changed the database");
  for (const [i, replica] of cluster.replicas.entries()) {
    assert.equal(replica.committed.frame, F0, `s${i}`);
    assert.equal(replica.committed.hash, hashes[0], `s${i}`);
    assert.equal(replica.committed.state.ledger.balanceOf(alice.publicKey), 700, `s${i}`);
    assert.equal(replica.committed.state.ledger.balanceOf(bob.publicKey), 300, `s${i}`);
    assert.equal(replica.headFrame, F0);
    const persists = ofType(cluster.actions[i]!, "persist");
    assert.equal(persists.length, 1, `s${i}`);
    assert.deepEqual(persists[0]!.files.map((f) => f.name), [archiveName(hashes[0]!, F0), RECENT_IDS_FILE]);
    assert.deepEqual(persists[0]!.files[0]!.bytes, replica.committed.state.ledger.bytes);
    const consensus = cluster.events(i, "consensus");
    assert.equal(consensus.length, 1, `s${i}`);
    assert.equal(consensus[0]!.frame, F0);
    assert.equal(consensus[0]!.hash, hashes[0]!.slice(0, 12));
    assert.equal(consensus[0]!.agree, "3/3");
    assert.equal(consensus[0]!.role, i === 0 ? "beta" : "other");
    assert.equal(consensus[0]!.txs, 1);
    assert.equal(consensus[0]!.applied, 1);
    assert.deepEqual(cluster.events(i, "no_consensus"), []);
    assert.deepEqual(cluster.events(i, "out_of_sync"), []);
    assert.equal(replica.metrics.framesAgreed, 1);
    assert.equal(replica.metrics.txCommitted, 1);
  }
});

Deno.test("the beta broadcasts its buffer with its vote and the others pass it on once", async () => {
  const { cluster } = await runFrame();
  const [beta, ...others] = cluster.actions;
  const betaVote = ofType(beta!, "broadcast");
  assert.equal(betaVote.length, 1);
  assert.equal(betaVote[0]!.greeting, false, "a vote carrying transfers is no greeting");
  for (const actions of others) {
    const broadcast = ofType(actions, "broadcast");
    assert.equal(broadcast.length, 1);
    assert.equal(broadcast[0]!.greeting, true, "a vote without transfers doubles as a greeting");
    const relayed = ofType(actions, "send");
    assert.equal(relayed.length, 1);
    assert.deepEqual(
      bodyOf(relayed[0]!.message),
      bodyOf(betaVote[0]!.message),
      "the beta's message as it is",
    );
  }
});

Deno.test("the same inputs give byte-identical actions", async () => {
  const tx = await payment();
  const first = await runFrame(tx);
  const second = await runFrame(tx);
  for (let i = 0; i < 3; i++) {
    assert.ok(first.cluster.actions[i]!.length >= 5, `s${i} did something`);
    assert.equal(serialise(second.cluster.actions[i]!), serialise(first.cluster.actions[i]!), `s${i}`);
  }
});

Deno.test("a transfer relayed to the next alpha is applied by all three in that alpha's frame", async () => {
  const { cluster } = await runFrame();
  // Frame F0 + 1 belongs to s1; the client reached s2, which passes the transfer on.
  const tx = await signTransfer(bob, alice, { amount: 100, timestampMs: T0 + 1_100 });
  const relay = ofType(cluster.request(2, T0 + 1_100, 5, Kind.submit, tx.bytes), "relay");
  assert.equal(relay.length, 1);
  assert.equal(relay[0]!.to, 1);
  const alphaAnswer = answerOf(cluster.request(1, T0 + 1_101, 900, Kind.relay, relay[0]!.bytes));
  assert.deepEqual(alphaAnswer, { ok: true, id: tx.id, frame: F0 + 1, server: "s1" });
  const answer = answerOf(cluster.take(2, cluster.replicas[2]!.relayed(T0 + 1_102, 5, 1, alphaAnswer)));
  assert.equal(answer.relayedBy, "s2");

  cluster.tick(T0 + 2_001);
  cluster.deliver(T0 + 2_001);
  const hash = cluster.replicas[1]!.committed.hash;
  for (const [i, replica] of cluster.replicas.entries()) {
    assert.equal(replica.committed.frame, F0 + 1, `s${i}`);
    assert.equal(replica.committed.hash, hash, `s${i}`);
    assert.equal(replica.committed.state.ledger.balanceOf(alice.publicKey), 800, `s${i}`);
    assert.equal(replica.committed.state.ledger.balanceOf(bob.publicKey), 200, `s${i}`);
    assert.deepEqual(cluster.events(i, "consensus").map((f) => f.frame), [F0, F0 + 1], `s${i}`);
    assert.equal(cluster.events(i, "consensus")[1]!.role, i === 1 ? "beta" : "other");
    assert.equal(ofType(cluster.actions[i]!, "persist").length, 2, `s${i}`);
  }
});

Deno.test("the next alpha refuses a transfer applied in an earlier frame as a duplicate", async () => {
  const tx = await payment();
  const { cluster } = await runFrame(tx);
  const response = answerOf(cluster.request(1, T0 + 1_100, 1, Kind.relay, tx.bytes.slice()));
  assert.equal(response.ok, false);
  assert.equal(response.code, "duplicate");
  assert.deepEqual(cluster.replicas[1]!.alphaBuffer(F0 + 1), []);
});

Deno.test("a persist reported written logs the archived entry and makes the transfer committed", async () => {
  const tx = await payment();
  const { cluster } = await runFrame(tx);
  const replica = cluster.replicas[1]!;
  const query = txQuery(tx);

  const before = answerOf(replica.request(T0 + 1_002, 1, Kind.txStatus, query));
  assert.equal(before.state, "pending", "not durable before its write completed");
  assert.equal(before.committedFrame, -1);

  const persist = ofType(cluster.actions[1]!, "persist")[0]!;
  const written = replica.written(T0 + 1_003, persist.id);
  const archived = events(written, "archived");
  assert.equal(archived.length, 1);
  assert.equal(archived[0]!.frame, F0);
  assert.equal(archived[0]!.file, `${replica.committed.hash.slice(0, 12)}….${F0}`);

  const after = answerOf(replica.request(T0 + 1_004, 2, Kind.txStatus, query));
  assert.equal(after.state, "committed");
  assert.equal(after.frame, F0);
  assert.equal(after.committedFrame, F0);
  assertThrowsError(() => replica.written(T0 + 1_005, persist.id), Error, /write \d+ completed twice/);
});

Deno.test("a failed persist is logged and leaves the frame not durable", async () => {
  const tx = await payment();
  const { cluster } = await runFrame(tx);
  const replica = cluster.replicas[2]!;
  const persist = ofType(cluster.actions[2]!, "persist")[0]!;
  const actions = replica.written(T0 + 1_010, persist.id, "disk full");
  assert.deepEqual(events(actions, "error_archive"), [{ frame: F0, error: "disk full" }]);
  assert.deepEqual(events(actions, "archived"), []);
  const status = answerOf(replica.request(T0 + 1_011, 1, Kind.txStatus, txQuery(tx)));
  assert.equal(status.state, "pending");
  assert.equal(status.committedFrame, -1);
});

Deno.test("a replica that missed the beta's buffer votes apart, then adopts the catch-up", async () => {
  const tx = await payment();
  const cluster = new Cluster();
  assert.equal(answerOf(cluster.request(0, T0 + 100, 1, Kind.submit, tx.bytes)).ok, true);
  cluster.cut.add(2);
  cluster.tick(T0 + 1_001);
  cluster.deliver(T0 + 1_001);
  const agreed = cluster.replicas[0]!.committed.hash;
  assert.equal(cluster.replicas[1]!.committed.hash, agreed);

  // s2 heard nothing from the beta: after waiting half a frame it processes F0 empty.
  cluster.tick(T0 + 1_501, [2]);
  assert.deepEqual(cluster.events(2, "beta_silent"), [{ frame: F0, beta: "s0" }]);
  cluster.deliver(T0 + 1_501);
  for (const i of [0, 1]) {
    const disagreed = cluster.events(i, "disagreed");
    assert.equal(disagreed.length, 1, `s${i}`);
    assert.equal(disagreed[0]!.from, "s2");
    assert.equal(disagreed[0]!.hash, GENESIS_HASH.slice(0, 12));
    assert.equal(disagreed[0]!.consensus, agreed.slice(0, 12));
    assert.equal(cluster.events(i, "consensus")[0]!.agree, "2/3");
  }
  // The frame's beta voted with the consensus, so it alone sends the database.
  assert.deepEqual(cluster.events(0, "catchup_sent").map((f) => f.to), ["s2"]);
  assert.deepEqual(cluster.events(1, "catchup_sent"), []);

  cluster.release();
  cluster.deliver(T0 + 1_502);
  const replica = cluster.replicas[2]!;
  assert.equal(cluster.events(2, "out_of_sync").length, 1);
  assert.deepEqual(cluster.events(2, "catchup_received"), [{
    frame: F0,
    from: "s0",
    hash: agreed.slice(0, 12),
    accounts: 2,
  }]);
  assert.equal(replica.committed.frame, F0);
  assert.equal(replica.committed.hash, agreed);
  assert.equal(replica.state.ledger.hash, agreed);
  assert.equal(replica.committed.state.ledger.balanceOf(bob.publicKey), 300);
  assert.equal(replica.metrics.catchupsReceived, 1);
  assert.equal(cluster.replicas[0]!.metrics.catchupsSent, 1);
  const persists = ofType(cluster.actions[2]!, "persist");
  assert.equal(persists.length, 1);
  assert.equal(persists[0]!.files[0]!.name, archiveName(agreed, F0));
});

Deno.test("a catch-up that comes before its frame is decided waits for the decision", async () => {
  const tx = await payment();
  const cluster = new Cluster();
  assert.equal(answerOf(cluster.request(0, T0 + 100, 1, Kind.submit, tx.bytes)).ok, true);
  cluster.cut.add(2);
  cluster.tick(T0 + 1_001);
  cluster.deliver(T0 + 1_001);
  cluster.tick(T0 + 1_501, [2]);
  cluster.deliver(T0 + 1_501);
  const agreed = cluster.replicas[0]!.committed.hash;
  assert.equal(cluster.events(0, "catchup_sent").length, 1);

  // Newest first: s2 gets the database before any vote that decides the frame.
  cluster.release({ newestFirst: true });
  cluster.deliver(T0 + 1_502);
  const replica = cluster.replicas[2]!;
  assert.equal(cluster.events(2, "catchup_received").length, 1);
  assert.equal(replica.committed.frame, F0);
  assert.equal(replica.committed.hash, agreed);
  assert.equal(replica.state.ledger.hash, agreed);
});

Deno.test("a vote signed by a key not in peers.json is dropped with listed false", () => {
  const replica = newReplica(1, T0 + 1_001);
  const { actions, listed } = replica.peerMessage(
    T0 + 1_002,
    signedBody(stranger, encodeVote(F0, new Uint8Array(32).fill(7))),
  );
  assert.equal(listed, false);
  assert.deepEqual(actions, [{
    type: "log",
    event: "dropped",
    fields: { key: stranger.publicHex.slice(0, 16), reason: "sender key is not in peers.json" },
  }]);
  assert.equal(replica.metrics.messagesDropped, 1);
});

Deno.test("a vote with a listed key but a broken signature, or with the replica's own key, is dropped", () => {
  const replica = newReplica(1, T0 + 1_001);
  const forged = signedBody(serverKeys[0]!, encodeVote(F0, new Uint8Array(32).fill(7)));
  forged[forged.length - 1]! ^= 1;
  const bad = replica.peerMessage(T0 + 1_002, forged);
  assert.equal(bad.listed, false);
  assert.deepEqual(events(bad.actions, "dropped").map((f) => f.reason), ["signature does not verify"]);
  const own = replica.peerMessage(T0 + 1_003, signedBody(serverKeys[1]!, encodeVote(F0, new Uint8Array(32))));
  assert.equal(own.listed, false);
  assert.deepEqual(events(own.actions, "dropped").map((f) => f.reason), ["sender key is not in peers.json"]);
  assert.equal(replica.metrics.messagesDropped, 2);
});

Deno.test("a listed server's second, different vote for a frame is logged as lying", () => {
  const replica = newReplica(1, T0 + 1_001);
  const first = replica.peerMessage(
    T0 + 1_002,
    signedBody(serverKeys[2]!, encodeVote(F0, new Uint8Array(32))),
  );
  assert.equal(first.listed, true);
  assert.deepEqual(events(first.actions, "lying"), []);
  const second = replica.peerMessage(
    T0 + 1_003,
    signedBody(serverKeys[2]!, encodeVote(F0, new Uint8Array(32).fill(1))),
  );
  assert.equal(second.listed, true);
  const lying = events(second.actions, "lying");
  assert.equal(lying.length, 1);
  assert.equal(lying[0]!.from, "s2");
  assert.equal(lying[0]!.frame, F0);
  assert.equal(replica.metrics.messagesDropped, 1);
});

Deno.test("a vote for a frame far from the clock is dropped as stale or replayed", () => {
  const replica = newReplica(1, T0 + 5_001);
  const { actions, listed } = replica.peerMessage(
    T0 + 5_002,
    signedBody(serverKeys[2]!, encodeVote(F0, new Uint8Array(32))),
  );
  assert.equal(listed, true, "a stale vote still proves the sender's key");
  const dropped = events(actions, "dropped");
  assert.equal(dropped.length, 1);
  assert.equal(dropped[0]!.frame, F0);
  assert.equal(dropped[0]!.key, serverKeys[2]!.publicHex.slice(0, 16), "the replayed key is named");
  assert.match(String(dropped[0]!.reason), /outside the window/);
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

Deno.test("Replica asks for its next tick just after the next half-frame boundary", () => {
  const replica = newReplica(0);
  assert.equal(replica.nextTickMs(T0), T0 + 501);
  assert.equal(replica.nextTickMs(T0 + 499), T0 + 501);
  assert.equal(replica.nextTickMs(T0 + 500), T0 + 1_001);
  assert.equal(replica.nextTickMs(T0 + 999), T0 + 1_001);
});

/** Ticks a lone replica every half frame from F0 until it halts or `untilMs`; returns its actions. */
function tickAlone(replica: Replica, untilMs: number): Action[] {
  const actions: Action[] = [];
  for (let t = T0 + 1; t <= untilMs && !replica.halted; t = replica.nextTickMs(t)) {
    actions.push(...replica.tick(t));
  }
  return actions;
}

Deno.test("a replica alone halts once frames go without consensus past the startup grace", () => {
  const replica = newReplica(1);
  const actions = tickAlone(replica, T0 + 30_000);
  assert.ok(replica.halted);
  const halts = ofType(actions, "halt");
  assert.equal(halts.length, 1);
  assert.match(halts[0]!.reason, /^Consensus lost: no majority \(2 of 3\) agreed for \d+ frames/);
  const missed = events(actions, "no_consensus");
  // Frames before F0 + STARTUP_GRACE_FRAMES are forgiven; the first after it that makes
  // MAX_MISSED_FRAMES in a row halts.
  assert.equal(missed.at(-1)!.frame, F0 + STARTUP_GRACE_FRAMES);
  assert.ok(Number(missed.at(-1)!.missed) >= MAX_MISSED_FRAMES);
  assert.equal(missed[0]!.frame, F0);
  assert.equal(missed[0]!.seen, "1/3");
  assert.equal(ofType(actions, "persist").length, 0);
  assert.deepEqual(replica.tick(T0 + 40_000), [], "a halted replica does nothing");
});

Deno.test("a replica alone waiting for quorum refuses transfers with no_quorum instead of halting", async () => {
  const replica = newReplica(0, T0, { waitForQuorum: true });
  const actions = tickAlone(replica, T0 + 14_000);
  assert.equal(replica.halted, false);
  assert.equal(ofType(actions, "halt").length, 0);
  assert.equal(events(actions, "no_quorum").length, 1);
  const tx = await signTransfer(alice, bob, { amount: 1, timestampMs: T0 + 14_100 });
  const response = answerOf(replica.request(T0 + 14_100, 1, Kind.submit, tx.bytes));
  assert.equal(response.code, "no_quorum");
  assert.equal(response.id, tx.id);
  assert.deepEqual(replica.health(T0 + 14_100), {
    ok: false,
    reason: "no majority of servers agrees (waiting for quorum)",
  });
});

Deno.test("a beta buffer with one bad signature is applied as empty, logged once and kept as evidence", async () => {
  const good = await payment();
  const forged = await payment(5);
  const forgedBytes = forged.bytes.slice();
  forgedBytes[100]! ^= 1; // breaks the payer's signature
  const buffer = new Uint8Array(2 * TX_BYTES);
  buffer.set(good.bytes, 0);
  buffer.set(forgedBytes, TX_BYTES);
  const replica = newReplica(1, T0);
  const vote = signedBody(serverKeys[0]!, encodeVote(F0, new Uint8Array(32).fill(7), buffer));
  const first = replica.peerMessage(T0 + 1_002, vote);
  assert.equal(first.listed, true);
  // The frame has ended: the buffer is checked, found forged, and the whole of it treated as empty.
  const actions = [...first.actions, ...replica.tick(T0 + 1_003)];
  const lying = events(actions, "lying");
  assert.equal(lying.length, 1);
  assert.equal(lying[0]!.from, NETWORK.servers[0]!.name, "the beta is named");
  assert.equal(lying[0]!.key, serverKeys[0]!.publicHex.slice(0, 16));
  assert.match(String(lying[0]!.reason), /transfer 1 has a signature that does not verify/);
  const evidence = ofType(actions, "persist").find((p) => p.commit === undefined);
  assert.ok(evidence !== undefined, "the signed buffer is written as evidence");
  assert.equal(evidence.files[0]!.name, `${EVIDENCE_PREFIX}${serverKeys[0]!.publicHex.slice(0, 16)}`);
  assert.ok(evidence.files[0]!.bytes.length > buffer.length);
  const broadcast = ofType(actions, "broadcast")[0]!;
  const payload = decodePayload(bodyOf(broadcast.message).subarray(PEER_HEAD_BYTES));
  assert.equal(payload.code, 0);
  assert.equal((payload as { hash: string }).hash, GENESIS_HASH, "nothing of the forged buffer was applied");
  // The same message again (a forwarded copy) is neither a new vote nor a second log line.
  assert.deepEqual(events(replica.peerMessage(T0 + 1_004, vote).actions, "lying"), []);
});

Deno.test("a catch-up whose database is not the agreed one is logged as lying with the key and not adopted", async () => {
  const { cluster } = await runFrame();
  const replica = cluster.replicas[1]!;
  const agreed = replica.committed.hash;
  const forged = Ledger.fromBalances([[bob.publicHex, 1_000_000]]);
  for (const db of [forged.bytes, new Uint8Array(96).fill(7)]) {
    const body = signedBody(serverKeys[2]!, concatBytes(encodeCatchup(F0, db, [])));
    const { actions, listed } = replica.peerMessage(T0 + 1_100, body);
    assert.equal(listed, true);
    const lying = events(actions, "lying");
    assert.equal(lying.length, 1);
    assert.equal(lying[0]!.from, NETWORK.servers[2]!.name);
    assert.equal(lying[0]!.key, serverKeys[2]!.publicHex.slice(0, 16));
    assert.equal(lying[0]!.reason, "catch-up database does not match the consensus hash");
    assert.deepEqual(ofType(actions, "persist"), [], "nothing is written");
  }
  assert.equal(replica.committed.hash, agreed);
  assert.equal(replica.state.ledger.hash, agreed);
});
