// lib/agreement.ts: one frame's rounds (Tendermint with locks, quorum q of n tolerating b dishonest servers).
// First the rules one by one, told as short stories with n = 4, q = 3, b = 1 and n = 3, q = 2, b = 0; then a
// randomized safety test: several agreements exchanging messages in random order, with loss, duplication,
// restarts and (with b = 1) a server that lies, must never decide two different values.
//
// Digests stand for values: A, B and C are arbitrary 64-hex-digit strings; NIL is "no value".

import assert from "node:assert/strict";
import { seededRandom } from "./_helpers.ts";
import { Agreement, type AgreementMemory, type Intent, NIL, type VoteStep } from "../lib/agreement.ts";

const A = "a".repeat(64);
const B = "b".repeat(64);
const C = "c".repeat(64);

/** The network sizes under test. */
interface Config {
  readonly n: number;
  readonly q: number;
  readonly b: number;
}
const FOUR: Config = { n: 4, q: 3, b: 1 };
const THREE: Config = { n: 3, q: 2, b: 0 };

/** Round r's proposer is server r mod n; every step of round r waits 100 (r + 1) ms; round 0 waits until 1000. */
const ROUND0_DEADLINE = 1000;
function timeoutMs(round: number): number {
  return 100 * (round + 1);
}

function agreement(
  config: Config,
  me: number,
  options: {
    canSign?: boolean;
    restored?: AgreementMemory;
    decideWaitMs?: number;
    holds?: (digest: string) => boolean;
    provenLiar?: (server: number) => boolean;
  } = {},
): Agreement {
  return new Agreement({
    n: config.n,
    me,
    quorum: config.q,
    dishonest: config.b,
    proposer: (round) => round % config.n,
    timeoutMs,
    round0DeadlineMs: ROUND0_DEADLINE,
    canSign: options.canSign ?? true,
    restored: options.restored,
    decideWaitMs: options.decideWaitMs,
    ...(options.holds === undefined ? {} : { holds: options.holds }),
    ...(options.provenLiar === undefined ? {} : { provenLiar: options.provenLiar }),
  });
}

/** A stand-in signature of `signer` (the agreement does not check signatures: the replica does). */
function sig(signer: number, tag = 0): Uint8Array {
  return new Uint8Array(64).fill(signer * 16 + tag);
}

const prevote = (round: number, digest: string): Intent => ({ type: "vote", step: "prevote", round, digest });
const precommit = (round: number, digest: string): Intent => ({
  type: "vote",
  step: "precommit",
  round,
  digest,
});
const decide = (round: number, digest: string): Intent => ({ type: "decide", round, digest });

/**
 * Counts the votes of `signers`, one after another; every one must be counted. Returns the intents of each
 * vote, so a test can say which vote made something happen.
 */
function votes(
  a: Agreement,
  nowMs: number,
  step: VoteStep,
  round: number,
  signers: readonly number[],
  digest: string,
): Intent[][] {
  return signers.map((signer) => {
    const { outcome, intents } = a.vote(nowMs, step, round, signer, digest, sig(signer));
    assert.equal(outcome, "counted", `${step} of ${signer} in round ${round}`);
    return intents;
  });
}

/** The intents of the last of `votes(...)`, after checking that the ones before it asked for nothing. */
function lastOf(intents: Intent[][]): Intent[] {
  for (const [i, x] of intents.slice(0, -1).entries()) assert.deepEqual(x, [], `vote ${i} asked for nothing`);
  return intents.at(-1)!;
}

// --- Round 0

for (const config of [FOUR, THREE]) {
  const { n, q, b } = config;
  Deno.test(`n=${n}, q=${q}, b=${b}: round 0 decides on the proposal: prevote, then precommit, then decide`, () => {
    const me = 1; // round 0's proposer is server 0
    const a = agreement(config, me);
    assert.deepEqual(a.start(0), []);
    assert.equal(a.round, 0);
    assert.equal(a.step, "propose");

    assert.deepEqual(a.proposal(10, 0, -1, A), [prevote(0, A)]);
    assert.equal(a.step, "prevote");

    // The quorum of prevotes (this server's own first, as the replica counts it once signed).
    const prevoters = [me, ...[0, 2, 3].slice(0, q - 1)];
    assert.deepEqual(lastOf(votes(a, 20, "prevote", 0, prevoters, A)), [precommit(0, A)]);
    assert.equal(a.step, "precommit");
    assert.equal(a.lockedDigest, A);
    assert.equal(a.decision, undefined);

    assert.deepEqual(lastOf(votes(a, 30, "precommit", 0, prevoters, A)), [decide(0, A)]);
    assert.deepEqual(a.decision, { round: 0, digest: A });
    // Decided: nothing more happens, whatever comes.
    assert.deepEqual(a.tick(100_000), []);
    assert.deepEqual(a.vote(100_000, "prevote", 1, 0, B, sig(0)).intents, []);
  });

  Deno.test(`n=${n}, q=${q}, b=${b}: round 0's proposer is asked to propose, then votes on its own proposal`, () => {
    const a = agreement(config, 0);
    assert.deepEqual(a.start(0), [{ type: "propose", round: 0, polRound: -1, validDigest: undefined }]);
    assert.deepEqual(a.proposal(1, 0, -1, A), [prevote(0, A)]);
    // A second proposal for the round is ignored.
    assert.deepEqual(a.proposal(2, 0, -1, B), []);
    const signers = Array.from({ length: q }, (_, i) => i);
    assert.deepEqual(lastOf(votes(a, 3, "prevote", 0, signers, A)), [precommit(0, A)]);
    assert.deepEqual(lastOf(votes(a, 4, "precommit", 0, signers, A)), [decide(0, A)]);
  });

  Deno.test(`n=${n}, q=${q}, b=${b}: an invalid proposal gets a nil prevote, and a nil quorum a nil precommit`, () => {
    const a = agreement(config, 1);
    a.start(0);
    assert.deepEqual(a.proposal(10, 0, -1, undefined), [prevote(0, NIL)]);
    const signers = [1, 0, 2, 3].slice(0, q);
    assert.deepEqual(lastOf(votes(a, 20, "prevote", 0, signers, NIL)), [precommit(0, NIL)]);
    // A quorum of nil precommits decides nothing: the precommit time-out moves to round 1.
    assert.deepEqual(lastOf(votes(a, 30, "precommit", 0, signers, NIL)), []);
    assert.equal(a.decision, undefined);
    // Round 1's proposer is server 1, this one.
    assert.deepEqual(a.tick(30 + timeoutMs(0)), [{
      type: "propose",
      round: 1,
      polRound: -1,
      validDigest: undefined,
    }]);
    assert.equal(a.round, 1);
  });
}

// --- Locks

Deno.test("n=4: a locked server prevotes nil for another value without a proof-of-lock, and for it with one", () => {
  const a = agreement(FOUR, 3);
  a.start(0);
  // Round 0: server 3 prevotes A, sees a quorum of prevotes for A, locks on it and precommits it.
  assert.deepEqual(a.proposal(10, 0, -1, A), [prevote(0, A)]);
  assert.deepEqual(a.memory(), {
    round: 0,
    lockedRound: -1,
    lockedDigest: undefined,
    lockedByCertificate: false,
    validRound: -1,
    validDigest: undefined,
    signed: [{ round: 0, step: "prevote", digest: A }],
    proposed: [],
  });
  assert.deepEqual(lastOf(votes(a, 20, "prevote", 0, [3, 0, 1], A)), [precommit(0, A)]);
  assert.deepEqual(a.memory(), {
    round: 0,
    lockedRound: 0,
    lockedDigest: A,
    lockedByCertificate: false,
    validRound: 0,
    validDigest: A,
    signed: [{ round: 0, step: "prevote", digest: A }, { round: 0, step: "precommit", digest: A }],
    proposed: [],
  });
  // The others precommitted nil (their prevote time-out beat the votes): round 1 after the time-out.
  assert.deepEqual(lastOf(votes(a, 30, "precommit", 0, [3], A)), []);
  assert.deepEqual(lastOf(votes(a, 30, "precommit", 0, [0, 1], NIL)), []);
  assert.deepEqual(a.tick(30 + timeoutMs(0) - 1), []);
  assert.deepEqual(a.tick(30 + timeoutMs(0)), []); // round 1's proposer is server 1
  assert.equal(a.round, 1);
  assert.equal(a.memory().round, 1);
  assert.equal(a.memory().lockedRound, 0, "the lock survives the round change");

  // Round 1: a proposal of B with no proof-of-lock (polRound -1): nil.
  assert.deepEqual(a.proposal(140, 1, -1, B), [prevote(1, NIL)]);
  // Round 1: the proposal of A again, in a later round: the locked value is prevoted.
  const b = agreement(FOUR, 3);
  b.start(0);
  b.proposal(10, 0, -1, A);
  votes(b, 20, "prevote", 0, [3, 0, 1], A);
  votes(b, 30, "precommit", 0, [3], A);
  votes(b, 30, "precommit", 0, [0, 1], NIL);
  b.tick(30 + timeoutMs(0));
  assert.deepEqual(b.proposal(140, 1, -1, A), [prevote(1, A)]);

  // Round 2, reached because two servers (b + 1) are there: B proposed with polRound 1. Server 3 waits
  // for the proof, a quorum of prevotes for B in round 1, a round at or after its lock (round 0).
  assert.deepEqual(a.proposal(150, 2, 1, B), []);
  assert.equal(a.round, 1, "one server (the proposer) is not enough to move with b = 1");
  assert.deepEqual(a.vote(150, "prevote", 2, 0, B, sig(0)).intents, []);
  assert.equal(a.round, 2);
  assert.equal(a.step, "propose");
  assert.deepEqual(lastOf(votes(a, 160, "prevote", 1, [0, 1, 2], B)), [prevote(2, B)]);
  assert.equal(a.lockedDigest, A, "prevoting B does not move the lock; a quorum in round 2 would");
});

Deno.test("n=4: a prevote quorum from a round before the lock does not unlock", () => {
  const a = agreement(FOUR, 3);
  a.start(0);
  // Two servers are in round 1 already: server 3 follows, prevotes A there and locks on it in round 1.
  votes(a, 10, "prevote", 1, [0], A);
  assert.equal(a.round, 0);
  votes(a, 10, "prevote", 1, [1], A);
  assert.equal(a.round, 1);
  assert.deepEqual(a.proposal(20, 1, -1, A), [prevote(1, A)]);
  assert.deepEqual(lastOf(votes(a, 30, "prevote", 1, [3], A)), [precommit(1, A)]);
  assert.deepEqual(a.memory().lockedRound, 1);
  // Round 2: B with polRound 0, and a quorum of prevotes for B in round 0 does exist. Round 0 is before
  // the lock (round 1): nil.
  votes(a, 40, "prevote", 2, [0, 2], B);
  assert.equal(a.round, 2);
  assert.deepEqual(a.proposal(50, 2, 0, B), []);
  assert.deepEqual(lastOf(votes(a, 60, "prevote", 0, [0, 1, 2], B)), [prevote(2, NIL)]);

  // The same proof for the locked value itself is fine.
  const c = agreement(FOUR, 3);
  c.start(0);
  votes(c, 10, "prevote", 1, [0, 1], A);
  c.proposal(20, 1, -1, A);
  votes(c, 30, "prevote", 1, [3], A);
  votes(c, 40, "prevote", 2, [0, 2], A);
  c.proposal(50, 2, 0, A);
  assert.deepEqual(lastOf(votes(c, 60, "prevote", 0, [0, 1, 2], A)), [prevote(2, A)]);
});

Deno.test("n=4: a proposal whose polRound is not below its round gets a nil prevote", () => {
  const a = agreement(FOUR, 3);
  a.start(0);
  votes(a, 10, "prevote", 1, [0, 2], A);
  assert.equal(a.round, 1);
  assert.deepEqual(a.proposal(20, 1, 1, A), [prevote(1, NIL)]);
  const b = agreement(FOUR, 3);
  b.start(0);
  votes(b, 10, "prevote", 1, [0, 2], A);
  assert.deepEqual(b.proposal(20, 1, 5, A), [prevote(1, NIL)]);
});

Deno.test("n=4: memory() keeps the valid value seen after a nil precommit, without a lock", () => {
  const a = agreement(FOUR, 3);
  a.start(0);
  a.tick(ROUND0_DEADLINE);
  a.proposal(ROUND0_DEADLINE + 1, 0, -1, A);
  votes(a, ROUND0_DEADLINE + 2, "prevote", 0, [3], NIL);
  votes(a, ROUND0_DEADLINE + 2, "prevote", 0, [0, 1], A);
  // Three prevotes, two values: the prevote time-out, then a nil precommit.
  assert.equal(a.step, "prevote");
  assert.deepEqual(a.tick(ROUND0_DEADLINE + 2 + timeoutMs(0)), [precommit(0, NIL)]);
  // The third prevote for A arrives: A is the valid value of round 0, but the precommit is cast: no lock.
  assert.deepEqual(lastOf(votes(a, ROUND0_DEADLINE + 200, "prevote", 0, [2], A)), []);
  const m = a.memory();
  assert.equal(m.lockedRound, -1);
  assert.equal(m.lockedDigest, undefined);
  assert.equal(m.validRound, 0);
  assert.equal(m.validDigest, A);
  // Round 3's proposer (this server) proposes the valid value with its proof-of-lock round.
  const jumped = votes(a, ROUND0_DEADLINE + 300, "prevote", 3, [0, 1], NIL);
  assert.deepEqual(jumped.at(-1), [{ type: "propose", round: 3, polRound: 0, validDigest: A }]);
});

// --- Lies and repeats

// A second, different vote of one signer for one (round, step) is a lie: the outcome says "conflict" (the
// replica keeps both signed votes as evidence). It is counted for its value: two quorums for different
// values still share an honest server, which never signs twice, so with at most b liars no two values
// reach a quorum in one round and step.
Deno.test("n=4: a repeat is a repeat; a second, different vote is a conflict, kept and counted for its value", () => {
  const a = agreement(FOUR, 3);
  a.start(0);
  assert.equal(a.vote(20, "precommit", 0, 0, A, sig(0)).outcome, "counted");
  assert.deepEqual(a.vote(20, "precommit", 0, 0, A, sig(0, 1)), { outcome: "repeat", intents: [] });
  assert.deepEqual(a.certificate(0, A), [{ signer: 0, signature: sig(0) }], "a repeat changes nothing");
  assert.deepEqual(a.vote(20, "precommit", 0, 0, B, sig(0, 2)), { outcome: "conflict", intents: [] });
  assert.deepEqual(a.vote(21, "precommit", 0, 0, B, sig(0, 2)), { outcome: "repeat", intents: [] });
  assert.deepEqual(a.vote(21, "precommit", 0, 0, A, sig(0)), { outcome: "repeat", intents: [] });
  // Each value keeps its own signature of server 0.
  assert.deepEqual(a.certificate(0, A), [{ signer: 0, signature: sig(0) }]);
  assert.deepEqual(a.certificate(0, B), [{ signer: 0, signature: sig(0, 2) }]);
  // One server counts once towards the precommit time-out, however many values it signed.
  assert.equal(a.nextDeadlineMs(), ROUND0_DEADLINE, "no precommit time-out yet: one server");
  votes(a, 30, "precommit", 0, [1], B);
  assert.equal(a.nextDeadlineMs(), ROUND0_DEADLINE, "two servers");
  assert.equal(a.decision, undefined);
  // Servers 0 (its second vote), 1 and 2 precommitted B: a quorum.
  assert.deepEqual(lastOf(votes(a, 40, "precommit", 0, [2], B)), [decide(0, B)]);
  assert.deepEqual(a.certificate(0, B).map((s) => s.signer), [0, 1, 2]);
  // Prevotes and precommits are apart, and so are rounds.
  assert.equal(a.vote(50, "prevote", 0, 0, B, sig(0)).outcome, "counted");
  assert.equal(a.vote(50, "prevote", 0, 0, A, sig(0)).outcome, "conflict");
  assert.equal(a.vote(50, "prevote", 1, 0, A, sig(0)).outcome, "counted", "another round is another vote");
});

Deno.test("n=4: a liar's second prevote counts for its value; honest servers leave a quorum to one value", () => {
  // Server 0 lies (prevotes B, then A); 1 and 3 prevote A, 2 prevotes B: A has a quorum, B cannot.
  const a = agreement(FOUR, 3);
  a.start(0);
  assert.deepEqual(a.proposal(10, 0, -1, A), [prevote(0, A)]);
  assert.equal(a.vote(20, "prevote", 0, 0, B, sig(0)).outcome, "counted");
  assert.equal(a.vote(20, "prevote", 0, 0, A, sig(0)).outcome, "conflict");
  votes(a, 20, "prevote", 0, [2], B);
  assert.equal(a.step, "prevote", "A: server 0 only; B: servers 0 and 2");
  assert.deepEqual(lastOf(votes(a, 20, "prevote", 0, [1], A)), []);
  assert.deepEqual(lastOf(votes(a, 20, "prevote", 0, [3], A)), [precommit(0, A)]);
});

// --- Time-outs

Deno.test("n=4: time-outs: propose gives a nil prevote, mixed prevotes a nil precommit, precommits round 1", () => {
  const a = agreement(FOUR, 1); // server 1 proposes in round 1
  assert.deepEqual(a.start(0), []);
  assert.deepEqual(a.tick(ROUND0_DEADLINE - 1), []);
  assert.deepEqual(a.tick(ROUND0_DEADLINE), [prevote(0, NIL)]);
  assert.equal(a.step, "prevote");

  // q prevotes of three different values: no quorum for any; the prevote time-out starts.
  const t1 = ROUND0_DEADLINE + 10;
  assert.deepEqual(lastOf(votes(a, t1, "prevote", 0, [1], NIL)), []);
  assert.deepEqual(lastOf(votes(a, t1, "prevote", 0, [0], A)), []);
  assert.deepEqual(lastOf(votes(a, t1, "prevote", 0, [2], B)), []);
  assert.deepEqual(a.tick(t1 + timeoutMs(0) - 1), []);
  assert.deepEqual(a.tick(t1 + timeoutMs(0)), [precommit(0, NIL)]);
  assert.equal(a.step, "precommit");

  // q precommits, no value with a quorum: the precommit time-out, then round 1, which server 1 proposes.
  const t2 = t1 + 200;
  assert.deepEqual(lastOf(votes(a, t2, "precommit", 0, [1, 0], NIL)), []);
  assert.deepEqual(lastOf(votes(a, t2, "precommit", 0, [2], A)), []);
  assert.equal(a.round, 0);
  assert.deepEqual(a.tick(t2 + timeoutMs(0) - 1), []);
  assert.deepEqual(a.tick(t2 + timeoutMs(0)), [{
    type: "propose",
    round: 1,
    polRound: -1,
    validDigest: undefined,
  }]);
  assert.equal(a.round, 1);
  assert.equal(a.step, "propose");

  // Round 1's propose time-out is timeoutMs(1) from the round's start.
  const t3 = t2 + timeoutMs(0);
  assert.deepEqual(a.tick(t3 + timeoutMs(1) - 1), []);
  assert.deepEqual(a.tick(t3 + timeoutMs(1)), [prevote(1, NIL)]);
});

Deno.test("n=3: time-outs with b = 0 lead to round 1 the same way", () => {
  const a = agreement(THREE, 2);
  a.start(0);
  assert.deepEqual(a.tick(ROUND0_DEADLINE), [prevote(0, NIL)]);
  votes(a, ROUND0_DEADLINE, "prevote", 0, [2], NIL);
  assert.deepEqual(lastOf(votes(a, ROUND0_DEADLINE, "prevote", 0, [0], A)), []);
  assert.deepEqual(a.tick(ROUND0_DEADLINE + timeoutMs(0)), [precommit(0, NIL)]);
  votes(a, 1200, "precommit", 0, [2], NIL);
  assert.deepEqual(lastOf(votes(a, 1200, "precommit", 0, [1], A)), []);
  assert.deepEqual(a.tick(1200 + timeoutMs(0)), []); // round 1's proposer is server 1
  assert.equal(a.round, 1);
});

// --- b = 0: a certificate decides after standing 2Δ unopposed (Sync HotStuff's commit rule)

/** The decision wait of these stories: 2Δ with Δ = 250 ms. */
const WAIT = 500;

/** n = 3, b = 0, server 1 with a decision wait, in round 0 with prevotes and precommits of 0 and 1 for A. */
function certifiedAt20(provenLiar?: (server: number) => boolean): Agreement {
  const a = agreement(THREE, 1, { decideWaitMs: WAIT, ...(provenLiar === undefined ? {} : { provenLiar }) });
  a.start(0);
  assert.deepEqual(a.proposal(10, 0, -1, A), [prevote(0, A)]);
  assert.deepEqual(lastOf(votes(a, 15, "prevote", 0, [1, 0], A)), [precommit(0, A)]);
  assert.deepEqual(lastOf(votes(a, 20, "precommit", 0, [1, 0], A)), [], "a certificate, not yet a decision");
  return a;
}

Deno.test("b = 0: a certificate decides only once it stood the decision wait, and the round waits for it", () => {
  const a = certifiedAt20();
  assert.equal(a.nextDeadlineMs(), 20 + WAIT);
  // The precommit time-out (100 ms) passes: the round does not move on while the certificate stands.
  assert.deepEqual(a.tick(20 + timeoutMs(0) + 1), []);
  assert.equal(a.round, 0);
  assert.deepEqual(a.tick(20 + WAIT - 1), []);
  assert.deepEqual(a.tick(20 + WAIT), [decide(0, A)]);
});

for (
  const [what, step, round, digest] of [
    ["a precommit for another value in its round", "precommit", 0, B],
    ["a precommit for another value in a later round", "precommit", 2, B],
    ["a prevote for another value in a later round", "prevote", 1, B],
  ] as const
) {
  Deno.test(`b = 0: ${what}, seen within the wait, stops the certificate deciding`, () => {
    const a = certifiedAt20();
    a.vote(300, step, round, 2, digest, sig(2, 1));
    assert.deepEqual(a.tick(20 + WAIT).filter((i) => i.type === "decide"), []);
    assert.equal(a.decision, undefined);
  });
}

Deno.test("b = 0: a proven liar's votes against a certificate, alone, do not stop it", () => {
  // With the one dishonest server b = 0 is claimed against, a certificate or prevote quorum for another
  // value needs q - 1 honest votes, which are seen in time: counting the liar's would let it stop every
  // decision with one vote a round.
  const a = certifiedAt20((server) => server === 2);
  a.vote(100, "precommit", 0, 2, B, sig(2, 1));
  a.vote(100, "prevote", 1, 2, B, sig(2, 2));
  assert.deepEqual(a.tick(20 + WAIT).filter((i) => i.type === "decide"), [decide(0, A)]);
  // The same votes from a server not proven lying stop it.
  const b = certifiedAt20();
  b.vote(100, "precommit", 0, 2, B, sig(2, 1));
  assert.deepEqual(b.tick(20 + WAIT).filter((i) => i.type === "decide"), []);
});

Deno.test("b = 0: a liar's two certificates of one round do not lock the honest servers apart for good", () => {
  // The liar (0) proposed A to server 2 and B to server 1 with its prevote and precommit for each: each
  // honest server holds a certificate of round 0 (its own votes and the liar's), neither decides (each
  // sees the other's precommit), and each is locked on its own. Round 2's proposer (2) proposes A with
  // round 0's certificate: server 1, locked on B's certificate of the same round, prevotes it.
  const liars = new Set<number>();
  const a = agreement(THREE, 1, { decideWaitMs: WAIT, provenLiar: (server) => liars.has(server) });
  a.start(0);
  assert.deepEqual(a.proposal(10, 0, -1, B), [prevote(0, B)]);
  assert.deepEqual(lastOf(votes(a, 12, "prevote", 0, [0, 1], B)), [precommit(0, B)]);
  votes(a, 14, "precommit", 0, [0, 1], B);
  assert.deepEqual([a.memory().lockedRound, a.memory().lockedDigest, a.memory().lockedByCertificate], [
    0,
    B,
    true,
  ]);
  votes(a, 16, "prevote", 0, [2], A);
  a.vote(16, "prevote", 0, 0, A, sig(0, 1)); // the liar's other prevote, relayed by 2: a proof
  liars.add(0);
  votes(a, 18, "precommit", 0, [2], A);
  a.vote(18, "precommit", 0, 0, A, sig(0, 1)); // and its other precommit
  assert.deepEqual(a.tick(14 + WAIT).filter((i) => i.type === "decide"), [], "contradicted by server 2");
  assert.equal(a.memory().lockedDigest, B, "a certificate of the same round does not move the lock");
  votes(a, 1000, "prevote", 2, [2], NIL); // to round 2
  assert.equal(a.round, 2);
  assert.deepEqual(a.proposal(1010, 2, 0, A), [prevote(2, A)], "A's certificate of round 0 justifies it");
});

Deno.test("b = 0: votes that cannot help another value do not stop a certificate", () => {
  const a = certifiedAt20();
  // A prevote for another value in the certificate's own round (the liar's second one), nil votes, and
  // votes for the same value in later rounds.
  a.vote(100, "prevote", 0, 2, B, sig(2, 1));
  a.vote(100, "precommit", 1, 2, NIL, sig(2, 2));
  a.vote(100, "prevote", 1, 0, A, sig(0, 3));
  assert.deepEqual(a.tick(20 + WAIT).filter((i) => i.type === "decide"), [decide(0, A)]);
});

Deno.test("b = 0: a server that sees a certificate locks on it, above a prevote quorum of the same round", () => {
  // Server 2 prevoted and precommitted nothing yet in round 0: it sees the liar (0) and server 1
  // precommit A while a prevote quorum for B (0's second value and its own prevote) forms.
  const a = agreement(THREE, 2, { decideWaitMs: WAIT });
  a.start(0);
  assert.deepEqual(a.proposal(10, 0, -1, B), [prevote(0, B)]);
  votes(a, 12, "precommit", 0, [0, 1], A);
  assert.equal(a.lockedDigest, A, "locked on the certificate");
  // The prevote quorum for B would have made it precommit B: it precommits nil instead.
  a.vote(13, "prevote", 0, 2, B, sig(2));
  assert.deepEqual(a.vote(14, "prevote", 0, 0, B, sig(0)).intents, [precommit(0, NIL)]);
  assert.equal(a.lockedDigest, A);
  // Round 1: a proposal of B justified by round 0's prevote quorum does not unlock it.
  const b = agreement(THREE, 2, { decideWaitMs: WAIT });
  b.start(0);
  votes(b, 12, "precommit", 0, [0, 1], A);
  votes(b, 13, "prevote", 0, [2, 0], B);
  votes(b, 14, "prevote", 1, [1], NIL); // round 1 reached
  assert.equal(b.round, 1);
  assert.deepEqual(b.proposal(15, 1, 0, B), [prevote(1, NIL)]);
  // Restarted with what it wrote to disk, it keeps the lock's rank: B with round 0's quorum is refused still.
  const memory = b.memory();
  assert.equal(memory.lockedByCertificate, true);
  const c = agreement(THREE, 2, { decideWaitMs: WAIT, restored: { ...memory, signed: [] } });
  c.start(0);
  votes(c, 13, "prevote", 0, [2, 0], B); // the polka of round 0, sent again
  assert.deepEqual(c.proposal(15, 1, 0, B), [prevote(1, NIL)]);
});

Deno.test("b = 0: without a decision wait (b ≥ 1) a certificate decides at once, as before", () => {
  const a = agreement(THREE, 1);
  a.start(0);
  a.proposal(10, 0, -1, A);
  votes(a, 15, "prevote", 0, [1, 0], A);
  assert.deepEqual(lastOf(votes(a, 20, "precommit", 0, [1, 0], A)), [decide(0, A)]);
});

Deno.test("a round 0 deadline already past when the agreement starts fires at once", () => {
  const a = agreement(FOUR, 3);
  assert.deepEqual(a.start(ROUND0_DEADLINE + 500), [prevote(0, NIL)]);
});

// --- Moving to a later round

Deno.test("n=4, b=1: messages of b + 1 = 2 servers from a later round make it jump there; one does not", () => {
  const a = agreement(FOUR, 3);
  a.start(0);
  assert.deepEqual(a.vote(10, "prevote", 5, 0, A, sig(0)).intents, []);
  assert.deepEqual(a.vote(10, "precommit", 5, 0, A, sig(0)).intents, []);
  assert.equal(a.round, 0, "two messages of one server are one server");
  assert.deepEqual(a.vote(10, "precommit", 7, 2, A, sig(2)).intents, []);
  assert.equal(a.round, 0, "one server in round 5, another in round 7");
  assert.deepEqual(a.vote(11, "prevote", 5, 2, B, sig(2)).intents, []); // round 5's proposer is server 1
  assert.equal(a.round, 5);
  assert.equal(a.step, "propose");
  // Earlier rounds never move it back.
  votes(a, 12, "prevote", 2, [0, 1, 2], A);
  assert.equal(a.round, 5);
  // The proposer of a round counts as one of its servers: round 6's (server 2), and one more.
  assert.deepEqual(a.proposal(13, 6, -1, A), []);
  assert.equal(a.round, 5);
  const jumped = a.vote(14, "prevote", 6, 0, A, sig(0)).intents;
  assert.equal(a.round, 6);
  assert.deepEqual(jumped, [prevote(6, A)], "round 6's proposal was waiting");
});

Deno.test("n=3, b=0: one message from a later round makes it jump", () => {
  const a = agreement(THREE, 2);
  a.start(0);
  assert.deepEqual(a.vote(10, "precommit", 4, 0, NIL, sig(0)).intents, []); // round 4's proposer is server 1
  assert.equal(a.round, 4);
  assert.deepEqual(a.vote(10, "prevote", 5, 1, A, sig(1)).intents, [{
    type: "propose",
    round: 5,
    polRound: -1,
    validDigest: undefined,
  }]);
  assert.equal(a.round, 5);
});

Deno.test("a prevote quorum of an earlier round seen late makes its value the one this server proposes, with that round", () => {
  // Campaign seed 90 (b = 1): s3 locked on A in round 2; the others missed that round's quorum and proposed
  // new values, which s3 refused, round after round; s3's own rounds came while they had given up on it.
  const a = agreement(FOUR, 1);
  a.start(0);
  votes(a, 10, "prevote", 4, [0, 2], NIL); // b + 1 servers in round 4: it goes there
  assert.equal(a.round, 4);
  assert.equal(a.memory().validRound, -1);
  votes(a, 20, "prevote", 2, [0, 2], A);
  assert.equal(a.memory().validRound, -1, "two prevotes are not a quorum");
  votes(a, 30, "prevote", 2, [3], A);
  assert.deepEqual([a.memory().validRound, a.memory().validDigest], [2, A]);
  assert.deepEqual([a.memory().lockedRound, a.memory().lockedDigest], [-1, undefined], "no lock from it");
  votes(a, 40, "prevote", 1, [0, 2, 3], B);
  assert.deepEqual(
    [a.memory().validRound, a.memory().validDigest],
    [2, A],
    "an older quorum changes nothing",
  );
  const next = votes(a, 50, "prevote", 5, [0, 2], NIL);
  assert.deepEqual(next.flat().filter((i) => i.type === "propose"), [
    { type: "propose", round: 5, polRound: 2, validDigest: A },
  ], "its own round 5: it proposes A with round 2's quorum");
});

Deno.test("a late prevote quorum for a value whose contents this server lacks leaves its valid value as it is", () => {
  // Review of a6d794b: a locked server that took such a value as valid proposed a fresh value in its own
  // round (it cannot propose contents it lacks), which its own lock then refused: with the servers that
  // hold the contents restarted, no round could release the lock.
  const held = new Set([A]);
  const a = agreement(FOUR, 1, { holds: (d) => held.has(d) });
  a.start(0);
  votes(a, 10, "precommit", 4, [0, 2], NIL); // b + 1 servers in round 4: it goes there
  votes(a, 20, "prevote", 2, [0, 2, 3], A);
  assert.deepEqual([a.memory().validRound, a.memory().validDigest], [2, A]);
  votes(a, 30, "prevote", 3, [0, 2, 3], B);
  assert.deepEqual([a.memory().validRound, a.memory().validDigest], [2, A], "B's contents are not here");
  held.add(B);
  a.tick(40); // any later input: now it holds B
  assert.deepEqual([a.memory().validRound, a.memory().validDigest], [3, B], "once they are, B is valid");
  const next = votes(a, 50, "prevote", 5, [0, 2], NIL);
  assert.deepEqual(next.flat().filter((i) => i.type === "propose"), [
    { type: "propose", round: 5, polRound: 3, validDigest: B },
  ]);
});

// --- A server that may not sign

Deno.test("canSign false: no vote intents and no proposals (it may have proposed before), but decisions still", () => {
  const a = agreement(FOUR, 0, { canSign: false });
  assert.deepEqual(a.start(0), []);
  assert.deepEqual(a.proposal(10, 0, -1, A), []);
  assert.equal(a.step, "prevote");
  assert.deepEqual(lastOf(votes(a, 20, "prevote", 0, [1, 2, 3], A)), []);
  assert.equal(a.step, "precommit");
  assert.deepEqual(lastOf(votes(a, 30, "precommit", 0, [1, 2, 3], A)), [decide(0, A)]);
  assert.deepEqual(a.memory().signed, []);

  const t = agreement(THREE, 1, { canSign: false });
  assert.deepEqual(t.start(0), []);
  assert.deepEqual(t.tick(ROUND0_DEADLINE), [], "no nil prevote either");
  votes(t, 1100, "prevote", 0, [0, 2], NIL);
  assert.deepEqual(t.tick(1100), []);
  votes(t, 1100, "precommit", 0, [0, 2], NIL);
  assert.deepEqual(t.tick(1100 + timeoutMs(0)), [], "its own round 1 comes: no proposal");
  assert.equal(t.round, 1);
  assert.deepEqual(t.signedIn(0), []);
});

// --- Restarts

/** What server 3 of FOUR remembers: locked on A in round 1, and a nil prevote in round 2. */
function lockedMemory(signedInRound2: AgreementMemory["signed"]): AgreementMemory {
  return {
    round: 2,
    lockedRound: 1,
    lockedDigest: A,
    lockedByCertificate: false,
    validRound: 1,
    validDigest: A,
    signed: [
      { round: 0, step: "prevote", digest: NIL },
      { round: 0, step: "precommit", digest: NIL },
      { round: 1, step: "prevote", digest: A },
      { round: 1, step: "precommit", digest: A },
      ...signedInRound2,
    ],
    proposed: [],
  };
}

Deno.test("restored memory: resumes in the saved round with its lock, and never signs another vote for a (round, step)", () => {
  const memory = lockedMemory([{ round: 2, step: "prevote", digest: NIL }]);
  const a = agreement(FOUR, 3, { restored: memory });
  assert.equal(a.round, 2);
  assert.equal(a.lockedDigest, A);
  assert.deepEqual(a.memory(), memory);
  assert.deepEqual(a.start(5000), []); // round 2's proposer is server 2
  assert.equal(a.round, 2);
  // The rules now ask for a prevote of A (the locked value): the nil prevote signed before stands.
  assert.deepEqual(a.proposal(5010, 2, -1, A), []);
  assert.equal(a.step, "prevote");
  assert.deepEqual(a.signedIn(2), [{ step: "prevote", digest: NIL }]);
  // The precommit was not signed before: it is now.
  assert.deepEqual(lastOf(votes(a, 5020, "prevote", 2, [0, 1, 2], A)), [precommit(2, A)]);
  assert.deepEqual(a.signedIn(2), [{ step: "prevote", digest: NIL }, { step: "precommit", digest: A }]);
  // Votes of earlier rounds do not take it back.
  votes(a, 5030, "prevote", 1, [0, 1, 2], B);
  assert.equal(a.round, 2);

  // With the precommit of round 2 signed too (nil), nothing is signed again in round 2.
  const both = lockedMemory([
    { round: 2, step: "prevote", digest: NIL },
    { round: 2, step: "precommit", digest: NIL },
  ]);
  const b = agreement(FOUR, 3, { restored: both });
  assert.deepEqual(b.start(5000), []);
  assert.deepEqual(b.proposal(5010, 2, -1, A), []);
  assert.deepEqual(lastOf(votes(b, 5020, "prevote", 2, [0, 1, 2], A)), []);
  assert.deepEqual(b.tick(5020 + timeoutMs(2)), []);
  assert.deepEqual(b.signedIn(2), [{ step: "prevote", digest: NIL }, { step: "precommit", digest: NIL }]);
  // The quorum for A in round 2 made it the valid value of round 2 (and the lock, though the precommit
  // signed before stays nil).
  assert.equal(b.memory().validRound, 2);
  assert.equal(b.memory().validDigest, A);
  // Round 3 is new, and this server proposes there: its own proposal of A with polRound 2 is prevoted.
  votes(b, 5400, "precommit", 2, [0, 1], B);
  votes(b, 5400, "precommit", 2, [2], NIL);
  assert.deepEqual(b.tick(5400 + timeoutMs(2)), [{ type: "propose", round: 3, polRound: 2, validDigest: A }]);
  assert.equal(b.round, 3);
  assert.deepEqual(b.proposal(5700, 3, 2, A), [prevote(3, A)]);
});

Deno.test("restored memory: a restarted proposer proposes nothing in a round it proposed in, and proposes in the others", () => {
  // A second, different proposal of a round would read as a lie: it proves its proposer dishonest.
  const memory: AgreementMemory = { ...lockedMemory([]), round: 3, proposed: [3] };
  const a = agreement(FOUR, 3, { restored: memory });
  assert.deepEqual(a.start(5000), []);
  assert.equal(a.round, 3);
  assert.deepEqual(a.memory().proposed, [3], "still remembered");

  const fresh = agreement(FOUR, 3, { restored: { ...lockedMemory([]), round: 3 } });
  assert.deepEqual(fresh.start(5000), [{ type: "propose", round: 3, polRound: 1, validDigest: A }]);
  assert.deepEqual(fresh.memory().proposed, [3], "recorded as the intent is given");
});

Deno.test("restored memory: the restored signed votes, counted again, decide with the others' votes", () => {
  // What the replica does after a restart: it counts its own signed votes again before start().
  const memory: AgreementMemory = {
    round: 0,
    lockedRound: 0,
    lockedDigest: A,
    lockedByCertificate: false,
    validRound: 0,
    validDigest: A,
    signed: [{ round: 0, step: "prevote", digest: A }, { round: 0, step: "precommit", digest: A }],
    proposed: [],
  };
  const a = agreement(THREE, 2, { restored: memory });
  for (const v of memory.signed) {
    assert.equal(a.vote(0, v.step, v.round, 2, v.digest, sig(2)).outcome, "counted");
  }
  assert.deepEqual(a.start(0), []);
  assert.deepEqual(a.proposal(1, 0, -1, A), []);
  assert.deepEqual(lastOf(votes(a, 2, "precommit", 0, [0], A)), [decide(0, A)]);
});

// --- Certificates

Deno.test("certificate() gives a quorum of precommit signatures for the value, in signer order", () => {
  const a = agreement(FOUR, 0);
  a.start(0);
  a.proposal(1, 0, -1, A);
  votes(a, 2, "prevote", 0, [0, 1, 2], A);
  assert.deepEqual(a.vote(3, "precommit", 0, 3, A, sig(3)).intents, []);
  assert.deepEqual(a.vote(3, "precommit", 0, 1, NIL, sig(1)).intents, []);
  assert.deepEqual(a.vote(3, "precommit", 0, 2, A, sig(2)).intents, []);
  assert.deepEqual(a.vote(3, "precommit", 0, 0, A, sig(0)).intents, [decide(0, A)]);
  assert.deepEqual(a.certificate(0, A), [
    { signer: 0, signature: sig(0) },
    { signer: 2, signature: sig(2) },
    { signer: 3, signature: sig(3) },
  ]);
  assert.deepEqual(a.certificate(0, B), []);
  assert.deepEqual(a.certificate(1, A), []);

  // More than a quorum: the first q by signer index.
  const b = agreement(FOUR, 0);
  b.start(0);
  for (const s of [3, 2, 1, 0]) b.vote(3, "precommit", 4, s, B, sig(s));
  assert.deepEqual(b.decision, { round: 4, digest: B }, "a quorum of precommits decides in any round");
  assert.deepEqual(b.certificate(4, B).map((x) => x.signer), [0, 1, 2]);
});

Deno.test("the constructor refuses a quorum that is not between 1 and n", () => {
  assert.throws(() => agreement({ n: 4, q: 5, b: 1 }, 0), RangeError);
  assert.throws(() => agreement({ n: 4, q: 0, b: 1 }, 0), RangeError);
  const a = agreement(FOUR, 0);
  a.start(0);
  assert.throws(() => a.start(1), /started twice/);
});

// --- Randomized safety

/** What one server sends another. */
type Payload =
  | { readonly kind: "proposal"; readonly round: number; readonly polRound: number; readonly digest: string }
  | {
    readonly kind: "vote";
    readonly step: VoteStep;
    readonly round: number;
    readonly signer: number;
    readonly digest: string;
  };
type Message = Payload & { readonly to: number };

function describe(m: Message): string {
  return m.kind === "proposal"
    ? `proposal r${m.round} pol${m.polRound} ${m.digest.slice(0, 1)} -> ${m.to}`
    : `${m.step} r${m.round} by ${m.signer} ${m.digest.slice(0, 1)} -> ${m.to}`;
}

interface Run {
  /** The digest each server decided, by index (a restarted server's decisions are checked against it). */
  readonly decisions: (string | undefined)[];
  /** Different decisions seen, with the trace that led to them. */
  readonly violation: string | undefined;
}

/**
 * One randomized run: `config.n` servers, one of them lying when `liar` (it is not an Agreement: it sends
 * each honest server its own proposals and votes, see `lie`), messages delivered in random order, lost
 * with a random rate and duplicated with another, time moving in random steps, and honest servers crashing
 * and restarting from what they persisted (their memory at their last vote, as the votes file holds it).
 * Honest servers resend their current round's votes and proposal now and then, as the replica does. The
 * trace of a run that breaks safety is in the returned violation: replay it with `run(seed, ...)`.
 */
function run(seed: number, config: Config, liar: boolean, steps = 3000): Run {
  const random = seededRandom(seed);
  const { n, q, b } = config;
  const liarIndex = liar ? random.int(n) : -1;
  const honest = Array.from({ length: n }, (_, i) => i).filter((i) => i !== liarIndex);
  const values = [A, B, C];
  const loss = random.next() * 0.5;
  /** How often a step delivers a message rather than lets time pass: slow networks make more rounds. */
  const pace = 0.6 + random.next() * 0.35;
  const duplication = random.next() * 0.2;
  const restarts = random.next() < 0.5;
  const trace: string[] = [
    `seed ${seed} n=${n} q=${q} b=${b} liar=${liarIndex} loss=${loss.toFixed(2)} pace=${pace.toFixed(2)}`,
  ];
  const decisions: (string | undefined)[] = new Array(n).fill(undefined);
  let violation: string | undefined;

  let now = 0;
  const queue: Message[] = [];
  const persisted = new Map<number, AgreementMemory>();
  const proposals = new Map<number, Map<number, { polRound: number; digest: string }>>();
  const deadlines = new Map<number, number>(honest.map((i) => [i, ROUND0_DEADLINE + random.int(200)]));

  const make = (i: number, restored?: AgreementMemory) =>
    new Agreement({
      n,
      me: i,
      quorum: q,
      dishonest: b,
      proposer: (round) => round % n,
      timeoutMs,
      round0DeadlineMs: deadlines.get(i)!,
      canSign: true,
      restored,
    });
  const servers = new Map<number, Agreement>(honest.map((i) => [i, make(i)]));

  const broadcast = (from: number, m: Payload) => {
    for (const to of honest) if (to !== from) queue.push({ ...m, to });
  };

  /** The prevotes each honest server was shown: server, round, digest, signers (what the liar looks at). */
  const seen = new Map<number, Map<number, Map<string, Set<number>>>>(honest.map((i) => [i, new Map()]));
  const see = (to: number, round: number, digest: string, signer: number) => {
    const rounds = seen.get(to)!;
    if (!rounds.has(round)) rounds.set(round, new Map());
    const digests = rounds.get(round)!;
    if (!digests.has(digest)) digests.set(digest, new Set());
    digests.get(digest)!.add(signer);
  };

  const handle = (i: number, first: Intent[]) => {
    const work = [...first];
    while (work.length > 0) {
      const intent = work.shift()!;
      const a = servers.get(i)!;
      if (intent.type === "propose") {
        const digest = intent.validDigest ?? values[random.int(values.length)]!;
        const p = { polRound: intent.validDigest === undefined ? -1 : intent.polRound, digest };
        trace.push(`${i} proposes r${intent.round} pol${p.polRound} ${digest.slice(0, 1)}`);
        if (!proposals.has(i)) proposals.set(i, new Map());
        proposals.get(i)!.set(intent.round, p);
        broadcast(i, { kind: "proposal", round: intent.round, ...p });
        work.push(...a.proposal(now, intent.round, p.polRound, p.digest));
      } else if (intent.type === "vote") {
        persisted.set(i, a.memory());
        if (intent.step === "prevote") see(i, intent.round, intent.digest, i);
        trace.push(`${i} signs ${intent.step} r${intent.round} ${intent.digest.slice(0, 1)}`);
        broadcast(i, {
          kind: "vote",
          step: intent.step,
          round: intent.round,
          signer: i,
          digest: intent.digest,
        });
        const { outcome, intents } = a.vote(now, intent.step, intent.round, i, intent.digest, sig(i));
        assert.equal(outcome, "counted", `seed ${seed}: ${i}'s own ${intent.step} in round ${intent.round}`);
        work.push(...intents);
      } else {
        trace.push(`${i} decides r${intent.round} ${intent.digest.slice(0, 1)} at ${now}`);
        const earlier = decisions.find((d) => d !== undefined && d !== intent.digest);
        if (earlier !== undefined && violation === undefined) {
          violation = `${i} decided ${intent.digest.slice(0, 1)} after another server decided ` +
            `${earlier.slice(0, 1)}\n${trace[0]}\n...\n${trace.slice(-400).join("\n")}`;
        }
        decisions[i] = intent.digest;
      }
    }
  };

  for (const i of honest) handle(i, servers.get(i)!.start(now));

  /**
   * The liar: to each honest server its own proposal (in the liar's rounds) and votes of a round near the
   * newest. Its way of lying is drawn per run: anything at random; what each server already leans to (its
   * lock, its valid value, the round's proposal), so that servers see quorums for what they prefer; or two
   * camps of servers, told two different values.
   */
  const strategy = (["random", "leaning", "camps"] as const)[random.int(3)]!;
  if (liar) trace[0] += ` liar strategy=${strategy}`;
  const lie = () => {
    let top = 0;
    for (const a of servers.values()) top = Math.max(top, a.round);
    const round = random.next() < 0.5 ? random.int(top + 2) : Math.max(0, top + 1 - random.int(3));
    const anything = () => [...values, NIL][random.int(values.length + 1)]!;
    const leaning = (to: number) => {
      const a = servers.get(to)!;
      const options = [a.lockedDigest, a.validDigest, proposals.get(round % n)?.get(round)?.digest]
        .filter((d) => d !== undefined);
      return options.length > 0 && random.next() < 0.7 ? options[random.int(options.length)]! : anything();
    };
    const camps = [anything(), anything()];
    const campOf = new Map(honest.map((i) => [i, random.int(2)]));
    // Once a server decided, the liar pushes the others towards another value.
    const decided = decisions.find((d) => d !== undefined);
    const other = () => {
      const others = values.filter((v) => v !== decided);
      return others[random.int(others.length)]!;
    };
    const tell = (to: number) =>
      decided !== undefined && random.next() < 0.7
        ? other()
        : strategy === "random"
        ? anything()
        : strategy === "leaning"
        ? leaning(to)
        : camps[campOf.get(to)!]!;
    /** A value and an earlier round in which `to` saw all but one of a quorum of prevotes for it. */
    const proofOfLock = (to: number) => {
      const options: { round: number; digest: string }[] = [];
      for (const [r, digests] of seen.get(to)!) {
        if (r >= round) continue;
        for (const [digest, signers] of digests) {
          const honestSigners = [...signers].filter((s) => s !== liarIndex).length;
          if (digest !== NIL && digest !== decided && honestSigners >= q - 1) {
            options.push({ round: r, digest });
          }
        }
      }
      return options.length === 0 ? undefined : options[random.int(options.length)]!;
    };
    for (const to of honest) {
      const pol = round % n === liarIndex && random.next() < 0.5 ? proofOfLock(to) : undefined;
      if (pol !== undefined) {
        // The liar completes the proof with its own prevote and proposes that value in its round.
        queue.push({
          kind: "vote",
          to,
          step: "prevote",
          round: pol.round,
          signer: liarIndex,
          digest: pol.digest,
        });
        queue.push({ kind: "proposal", to, round, polRound: pol.round, digest: pol.digest });
      } else if (round % n === liarIndex) {
        const polRound = random.int(round + 3) - 1; // from -1 to round + 1: some are not below the round
        // A proposal's digest is a hash the receiver computes: never NIL, whatever the liar wants.
        const told = tell(to);
        const digest = told === NIL ? values[random.int(values.length)]! : told;
        queue.push({ kind: "proposal", to, round, polRound, digest });
      }
      for (const step of ["prevote", "precommit"] as const) {
        queue.push({ kind: "vote", to, step, round, signer: liarIndex, digest: tell(to) });
      }
    }
  };

  /** What a replica does on its timer: send again its votes and proposal of the current round. */
  const resend = (i: number) => {
    const a = servers.get(i)!;
    for (const { step, digest } of a.signedIn(a.round)) {
      broadcast(i, { kind: "vote", step, round: a.round, signer: i, digest });
    }
    const p = proposals.get(i)?.get(a.round);
    if (p !== undefined) broadcast(i, { kind: "proposal", round: a.round, ...p });
  };

  for (let step = 0; step < steps && violation === undefined; step++) {
    // The last part of a run is calm (messages arrive in order, none lost, no crash), so most runs decide.
    const calm = step >= steps * 0.7;
    const r = random.next();
    if (queue.length > 0 && r < (calm ? 0.97 : pace)) {
      let m: Message;
      if (calm) m = queue.shift()!;
      else {
        const k = random.int(queue.length);
        m = queue[k]!;
        queue[k] = queue[queue.length - 1]!;
        queue.pop();
        if (random.next() < loss) continue;
        if (random.next() < duplication) queue.push(m);
      }
      trace.push(`  ${describe(m)}`);
      if (m.kind === "vote" && m.step === "prevote") see(m.to, m.round, m.digest, m.signer);
      const a = servers.get(m.to)!;
      if (m.kind === "proposal") handle(m.to, a.proposal(now, m.round, m.polRound, m.digest));
      else handle(m.to, a.vote(now, m.step, m.round, m.signer, m.digest, sig(m.signer)).intents);
    } else if (liar && random.next() < 0.1) {
      lie();
    } else if (restarts && !calm && random.next() < 0.02) {
      // A crash: everything not persisted is lost; the replica counts its persisted votes again.
      const i = honest[random.int(honest.length)]!;
      const memory = persisted.get(i);
      trace.push(`${i} restarts in round ${memory?.round ?? 0}`);
      const a = make(i, memory);
      servers.set(i, a);
      for (const v of memory?.signed ?? []) a.vote(now, v.step, v.round, i, v.digest, sig(i));
      handle(i, a.start(now));
    } else {
      now += 1 + random.int(60);
      for (const i of honest) {
        handle(i, servers.get(i)!.tick(now));
        if (random.next() < 0.1) resend(i);
      }
    }
  }
  return { decisions, violation };
}

for (const [config, liar] of [[FOUR, true], [THREE, false]] as const) {
  const { n, q, b } = config;
  Deno.test(`randomized safety, n=${n}, q=${q}, b=${b}${liar ? " with one lying server" : ""}: no two servers decide differently over 300 seeds`, () => {
    let decided = 0;
    let allDecided = 0;
    const digests = new Set<string>();
    for (let seed = 1; seed <= 300; seed++) {
      const { decisions, violation } = run(seed, config, liar);
      assert.equal(violation, undefined, violation);
      const made = decisions.filter((d) => d !== undefined);
      if (made.length > 0) decided++;
      if (made.length >= n - (liar ? 1 : 0)) allDecided++;
      for (const d of made) digests.add(d);
    }
    // The test is not vacuous: most runs decide, on various values.
    assert.ok(decided >= 260, `only ${decided} of 300 runs decided`);
    assert.ok(allDecided >= 200, `only ${allDecided} of 300 runs had every honest server decide`);
    assert.ok(digests.size >= 2, "runs decided different values across seeds");
  });
}

Deno.test("a proven liar's proposal is not waited for: its round prevotes nil at once, any other round waits", () => {
  // Server 1 of FOUR is proven lying; round 0's proposer (0) is waited for until ROUND0_DEADLINE as usual.
  const a = new Agreement({
    n: FOUR.n,
    me: 3,
    quorum: FOUR.q,
    dishonest: FOUR.b,
    proposer: (round) => round % FOUR.n,
    timeoutMs,
    round0DeadlineMs: ROUND0_DEADLINE,
    provenLiar: (server) => server === 1,
    canSign: true,
  });
  a.start(0);
  assert.deepEqual(a.tick(ROUND0_DEADLINE - 1), [], "round 0's honest proposer is waited for");
  assert.deepEqual(a.tick(ROUND0_DEADLINE), [prevote(0, NIL)]);
  // Round 1 (proposer 1, the liar) starts once q precommits of round 0 came and their time-out passed.
  votes(a, ROUND0_DEADLINE + 1, "prevote", 0, [0, 1, 2], NIL);
  votes(a, ROUND0_DEADLINE + 2, "precommit", 0, [0, 1, 2], NIL);
  const startOne = ROUND0_DEADLINE + 2 + timeoutMs(0);
  const intents = a.tick(startOne);
  assert.deepEqual(intents.filter((i) => i.type === "vote"), [prevote(1, NIL)], "no wait for the liar");
});
