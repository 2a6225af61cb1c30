// Agreement on one frame: Tendermint's rounds with locks ("The latest gossip on BFT consensus",
// Buchman, Kwon, Milosevic, 2018, algorithm 1), with the quorum q = floor((n + b) / 2) + 1 of a network
// that tolerates b dishonest servers. Pure and deterministic: it is told proposals, votes and the time, and
// answers with intents (propose, vote, decide) that the replica signs, persists and sends.
//
// Safety with at most b dishonest servers and any message delay: any two quorums share b + 1 servers, so
// one honest one. A decision in round r means q servers locked the value in r; an honest locked server
// prevotes only that value in a later round unless shown a prevote quorum for another value from a round
// at or after its lock, which cannot exist (it would need an honest server of the r-quorum to prevote
// twice). The guards that argument needs are kept here: a server locks and precommits only in its current
// round at the prevote step, its locked round never decreases, a proposal's polRound is below its round,
// and it never signs two different votes for one (round, step), across restarts too (`restored`).
//
// With b = 0 a liar sits in every quorum intersection and can complete a certificate for each of two
// values. Then (`decideWaitMs`, Sync HotStuff's commit rule, "Sync HotStuff: Simple and Practical
// Synchronous State Machine Replication", Abraham et al., 2019) a certificate decides only after it stood
// 2Δ with no vote against it seen, every server locks on the highest certificate it sees, and the replica
// relays every vote it counts. As long as messages between honest servers arrive within Δ, a decision
// means every honest server locked on it within Δ and none had voted against it before: no honest vote can
// ever help another value.

/** The digest of "no value" (a nil prevote or precommit): 32 zero bytes in hex. */
export const NIL = "0".repeat(64);

/** The two votes of a round. */
export type VoteStep = "prevote" | "precommit";

/** Where a server is within its current round. */
export type Step = "propose" | "prevote" | "precommit";

/** Highest round number accepted in a message (a liar's huge round must not overflow anything). */
export const MAX_ROUND = 0x7fff_ffff;

/** What the agreement asks the replica to do. */
export type Intent =
  /** This server proposes in `round`: `validDigest` when it must re-propose a value with a prevote quorum. */
  | {
    readonly type: "propose";
    readonly round: number;
    readonly polRound: number;
    readonly validDigest: string | undefined;
  }
  /** Sign, persist, then send this vote. */
  | { readonly type: "vote"; readonly step: VoteStep; readonly round: number; readonly digest: string }
  /** A quorum precommitted `digest` in `round`: the frame is decided. */
  | { readonly type: "decide"; readonly round: number; readonly digest: string };

/** What a server must remember across a restart so that it never signs two different votes. */
export interface AgreementMemory {
  readonly round: number;
  readonly lockedRound: number;
  readonly lockedDigest: string | undefined;
  /** With b = 0: the lock comes from a certificate of `lockedRound` (ranked above a prevote quorum's). */
  readonly lockedByCertificate: boolean;
  readonly validRound: number;
  readonly validDigest: string | undefined;
  /** Every vote this server signed in this agreement. */
  readonly signed: readonly { readonly round: number; readonly step: VoteStep; readonly digest: string }[];
  /** The rounds this server proposed in (the replica sends a proposal only once this is on disk). */
  readonly proposed: readonly number[];
}

/** Options of one frame's agreement. */
export interface AgreementOptions {
  /** Servers in the network and this server's index. */
  readonly n: number;
  readonly me: number;
  readonly quorum: number;
  /** Dishonest servers tolerated: b + 1 servers in a later round make this one move there. */
  readonly dishonest: number;
  /** The proposer of a round. */
  readonly proposer: (round: number) => number;
  /** How long each step of `round` waits before giving up on it, ms. */
  readonly timeoutMs: (round: number) => number;
  /** When round 0's proposal is given up on (unix ms). */
  readonly round0DeadlineMs: number;
  /**
   * True for a server proven to have lied (two signed messages that conflict, a forged transfer): its
   * proposals are not waited for. Only liveness depends on it: voting nil is always safe.
   */
  readonly provenLiar?: (server: number) => boolean;
  /** False while this server may not sign anything in this agreement (it lost its memory of it). */
  readonly canSign: boolean;
  /**
   * True when this server holds the contents of the value `digest` (it could propose it again). A prevote
   * quorum seen late becomes the valid value only then: a valid value it cannot propose would replace one
   * it can, and it would offer a fresh value in its rounds that its own lock refuses. Default: always.
   */
  readonly holds?: (digest: string) => boolean;
  /** What this server signed before a restart. */
  readonly restored?: AgreementMemory | undefined;
  /**
   * With b = 0 (a liar sits in every quorum intersection): how long a certificate must stand, with no
   * vote against it seen, before it is a decision (Sync HotStuff's rule; 2Δ). Undefined: at once.
   */
  readonly decideWaitMs?: number | undefined;
}

/**
 * One step's votes of a round: by value, the signers and their signatures. A dishonest server's second,
 * different vote is kept too: it is a signed statement, and a proof-of-lock that counts it is still sound
 * (two quorums for different values share an honest server, which never signs twice).
 */
class StepVotes {
  readonly #byValue = new Map<string, Map<number, Uint8Array>>();
  readonly #signers = new Set<number>();

  /** Records a vote: counted, a repeat, or a second value from the signer (counted too). */
  add(signer: number, digest: string, signature: Uint8Array): VoteOutcome {
    let voters = this.#byValue.get(digest);
    if (voters?.has(signer)) return "repeat";
    const second = this.#signers.has(signer);
    if (voters === undefined) this.#byValue.set(digest, voters = new Map());
    voters.set(signer, signature);
    this.#signers.add(signer);
    return second ? "conflict" : "counted";
  }

  /** Distinct servers that voted. */
  get size(): number {
    return this.#signers.size;
  }

  count(digest: string): number {
    return this.#byValue.get(digest)?.size ?? 0;
  }

  signatures(digest: string): Map<number, Uint8Array> {
    return this.#byValue.get(digest) ?? new Map();
  }

  /** The values voted for, each with its number of signers. */
  values(): IterableIterator<[string, Map<number, Uint8Array>]> {
    return this.#byValue.entries();
  }
}

interface RoundVotes {
  readonly prevote: StepVotes;
  readonly precommit: StepVotes;
  /** Servers seen sending anything in this round. */
  readonly senders: Set<number>;
  /** The proposal of the round's proposer: its digest (undefined: invalid) and polRound. */
  proposal: { digest: string | undefined; polRound: number } | undefined;
  prevoteTimeoutAt: number | undefined;
  precommitTimeoutAt: number | undefined;
  /** Rule "q prevotes for the proposal" already ran in this round. */
  validSeen: boolean;
}

/**
 * A vote's outcome: counted, a repeat of one already counted, or a second, different vote from its signer
 * (a lie, kept as evidence and counted for its value).
 */
export type VoteOutcome = "counted" | "repeat" | "conflict";

/** One frame's rounds. */
export class Agreement {
  readonly #o: AgreementOptions;
  #round = 0;
  #step: Step = "propose";
  #lockedRound = -1;
  #lockedDigest: string | undefined;
  /** The lock comes from a certificate (q precommits) of `#lockedRound`, not only a prevote quorum. */
  #lockedByCertificate = false;
  /** With a decision wait: when each certificate (`round:digest`) was first seen here. */
  #certificates = new Map<string, { round: number; digest: string; seenMs: number }>();
  #validRound = -1;
  #validDigest: string | undefined;
  #rounds = new Map<number, RoundVotes>();
  #signed = new Map<string, string>();
  #proposeTimeoutAt: number | undefined;
  #decision: { round: number; digest: string } | undefined;
  #started = false;
  /**
   * The rounds this server proposed in, before a restart too: a second, different proposal of a round
   * would read as a lie, so it proposes nothing in them again.
   */
  readonly #proposed = new Set<number>();
  #nowMs = 0;
  #out: Intent[] = [];
  /**
   * Votes of rounds too far ahead to be counted (the replica keeps memory bounded), by signer: their values,
   * at most two (two different values contradict any certificate). With b = 0 a vote against a certificate
   * must never go unseen: a liar could otherwise move one honest server that far ahead and let its votes for
   * another value be dropped by the others while they wait out a certificate.
   */
  readonly #far = new Map<number, Set<string>>();

  constructor(options: AgreementOptions) {
    if (options.quorum < 1 || options.quorum > options.n) {
      throw new RangeError(`Quorum ${options.quorum} is not between 1 and ${options.n}`);
    }
    this.#o = options;
    const r = options.restored;
    if (r !== undefined) {
      this.#round = r.round;
      this.#lockedRound = r.lockedRound;
      this.#lockedDigest = r.lockedDigest;
      this.#lockedByCertificate = r.lockedByCertificate;
      this.#validRound = r.validRound;
      this.#validDigest = r.validDigest;
      for (const s of r.signed) this.#signed.set(`${s.round}:${s.step}`, s.digest);
      for (const round of r.proposed) this.#proposed.add(round);
    }
  }

  // ---- what the replica reads ---------------------------------------------------------------------

  get round(): number {
    return this.#round;
  }

  get step(): Step {
    return this.#step;
  }

  get decision(): { readonly round: number; readonly digest: string } | undefined {
    return this.#decision;
  }

  get lockedDigest(): string | undefined {
    return this.#lockedDigest;
  }

  get validDigest(): string | undefined {
    return this.#validDigest;
  }

  /** What must be persisted before any vote of this agreement is sent. */
  memory(): AgreementMemory {
    return {
      round: this.#round,
      lockedRound: this.#lockedRound,
      lockedDigest: this.#lockedDigest,
      lockedByCertificate: this.#lockedByCertificate,
      validRound: this.#validRound,
      validDigest: this.#validDigest,
      signed: [...this.#signed].map(([key, digest]) => {
        const [round, step] = key.split(":");
        return { round: Number(round), step: step as VoteStep, digest };
      }),
      proposed: [...this.#proposed],
    };
  }

  /** The votes this server signed in `round` (to send again). */
  signedIn(round: number): { step: VoteStep; digest: string }[] {
    const out: { step: VoteStep; digest: string }[] = [];
    for (const step of ["prevote", "precommit"] as const) {
      const digest = this.#signed.get(`${round}:${step}`);
      if (digest !== undefined) out.push({ step, digest });
    }
    return out;
  }

  /** The servers whose prevote in `round` was for `digest` (signer index order). */
  prevoters(round: number, digest: string): number[] {
    const votes = this.#rounds.get(round)?.prevote.signatures(digest) ?? new Map<number, Uint8Array>();
    return [...votes.keys()].sort((a, b) => a - b);
  }

  /** The signatures of a quorum of precommits for `digest` in `round` (signer index order). */
  certificate(round: number, digest: string): { signer: number; signature: Uint8Array }[] {
    const votes = this.#rounds.get(round)?.precommit.signatures(digest) ?? new Map<number, Uint8Array>();
    const out: { signer: number; signature: Uint8Array }[] = [];
    for (const [signer, signature] of votes) out.push({ signer, signature });
    out.sort((a, b) => a.signer - b.signer);
    return out.slice(0, this.#o.quorum);
  }

  /** The earliest time a time-out of the current round is due, if one is pending. */
  nextDeadlineMs(): number | undefined {
    const r = this.#rounds.get(this.#round);
    // Only the time-outs that can still fire in the current step.
    const times = [
      this.#step === "propose" ? this.#proposeTimeoutAt : undefined,
      this.#step === "prevote" ? r?.prevoteTimeoutAt : undefined,
      this.#awaitingDecision() ? undefined : r?.precommitTimeoutAt,
    ].filter((t): t is number => t !== undefined);
    const wait = this.#o.decideWaitMs;
    if (wait !== undefined && this.#decision === undefined) {
      for (const c of this.#certificates.values()) {
        if (!this.#contradicted(c.round, c.digest)) times.push(c.seenMs + wait);
      }
    }
    return times.length === 0 ? undefined : Math.min(...times);
  }

  // ---- inputs -------------------------------------------------------------------------------------

  /** Starts round 0, or the round this server was in before a restart. */
  start(nowMs: number): Intent[] {
    if (this.#started) throw new Error("Invariant broken: an agreement started twice");
    this.#started = true;
    this.#nowMs = nowMs;
    this.#startRound(this.#round);
    this.#update();
    return this.#drain();
  }

  /**
   * The proposal of `round` by its proposer (the replica checked the sender and evaluated the buffer:
   * `digest` is undefined when the proposal is invalid). A second proposal for one round is ignored.
   */
  proposal(nowMs: number, round: number, polRound: number, digest: string | undefined): Intent[] {
    this.#at(nowMs);
    const r = this.#roundVotes(round);
    r.senders.add(this.#o.proposer(round));
    // A proposal is never "no value": a nil digest would lock servers on nothing.
    if (r.proposal === undefined) r.proposal = { digest: digest === NIL ? undefined : digest, polRound };
    this.#update();
    return this.#drain();
  }

  /** A signed vote (this server's own votes are counted when they are signed). */
  vote(
    nowMs: number,
    step: VoteStep,
    round: number,
    signer: number,
    digest: string,
    signature: Uint8Array,
  ): { outcome: VoteOutcome; intents: Intent[] } {
    this.#at(nowMs);
    const r = this.#roundVotes(round);
    const outcome = r[step].add(signer, digest, signature);
    if (outcome === "repeat") return { outcome, intents: [] };
    r.senders.add(signer);
    this.#update();
    return { outcome, intents: this.#drain() };
  }

  /**
   * A signed vote of a round too far ahead of this server's to be counted: not counted, but held against
   * every certificate for another value (its round is beyond any this server counted).
   */
  farVote(signer: number, digest: string): void {
    if (digest === NIL) return;
    let values = this.#far.get(signer);
    if (values === undefined) this.#far.set(signer, values = new Set());
    if (values.size < 2) values.add(digest);
  }

  /** The clock moved: time-outs that are due fire. */
  tick(nowMs: number): Intent[] {
    this.#at(nowMs);
    this.#update();
    return this.#drain();
  }

  // ---- the rules ----------------------------------------------------------------------------------

  #at(nowMs: number): void {
    if (nowMs > this.#nowMs) this.#nowMs = nowMs;
  }

  #drain(): Intent[] {
    const out = this.#out;
    this.#out = [];
    return out;
  }

  #roundVotes(round: number): RoundVotes {
    let r = this.#rounds.get(round);
    if (r === undefined) {
      r = {
        prevote: new StepVotes(),
        precommit: new StepVotes(),
        senders: new Set(),
        proposal: undefined,
        prevoteTimeoutAt: undefined,
        precommitTimeoutAt: undefined,
        validSeen: false,
      };
      this.#rounds.set(round, r);
    }
    return r;
  }

  /** The order of locks: by round, and within a round a certificate's above a prevote quorum's. */
  #lockRank(): number {
    return this.#lockedRound < 0 ? -1 : 2 * this.#lockedRound + (this.#lockedByCertificate ? 1 : 0);
  }

  /**
   * Decides on a certificate: at once, or with a decision wait, once it stood that long with no vote
   * against it seen. A new certificate is recorded and locked on (Sync HotStuff's lock on the highest
   * certificate: a server that sees one stops helping any other value of that round or an earlier one).
   */
  #decideRule(): boolean {
    const wait = this.#o.decideWaitMs;
    for (const [round, r] of this.#rounds) {
      for (const [digest, voters] of r.precommit.values()) {
        if (digest === NIL || voters.size < this.#o.quorum) continue;
        if (wait !== undefined) {
          const key = `${round}:${digest}`;
          const seen = this.#certificates.get(key);
          if (seen === undefined) {
            this.#certificates.set(key, { round, digest, seenMs: this.#nowMs });
            this.#lockOnCertificate(round, digest);
            return true;
          }
          if (this.#nowMs < seen.seenMs + wait || this.#contradicted(round, digest)) continue;
        }
        this.#decision = { round, digest };
        this.#out.push({ type: "decide", round, digest });
        return true;
      }
    }
    return false;
  }

  #lockOnCertificate(round: number, digest: string): void {
    if (round > this.#lockedRound || (round === this.#lockedRound && !this.#lockedByCertificate)) {
      this.#lockedRound = round;
      this.#lockedDigest = digest;
      this.#lockedByCertificate = true;
    }
  }

  /**
   * A vote seen against a certificate of `digest` in `round`: a precommit for another value in that
   * round or a later one, or a prevote for another value in a later one. Within the timing bound, an
   * honest server's vote that could help another value reach a certificate arrives within Δ of being
   * sent, and one sent after it saw this certificate cannot exist (it locked on it). A proven liar's votes
   * alone contradict nothing: with the one dishonest server that b = 0 is claimed against, a certificate
   * or prevote quorum for another value holds q - 1 ≥ 1 honest votes, and those are seen in time; counted,
   * they would let the liar stop every decision with one vote a round.
   */
  #contradicted(round: number, digest: string): boolean {
    const against = (voters: Map<number, Uint8Array>) => {
      for (const signer of voters.keys()) if (!(this.#o.provenLiar?.(signer) ?? false)) return true;
      return false;
    };
    for (const [k, r] of this.#rounds) {
      if (k < round) continue;
      for (const [d, voters] of r.precommit.values()) {
        if (d !== digest && d !== NIL && against(voters)) return true;
      }
      if (k === round) continue;
      for (const [d, voters] of r.prevote.values()) {
        if (d !== digest && d !== NIL && against(voters)) return true;
      }
    }
    for (const [signer, values] of this.#far) {
      if (this.#o.provenLiar?.(signer) ?? false) continue;
      for (const d of values) if (d !== digest) return true;
    }
    return false;
  }

  /** A certificate waits out its decision wait with nothing against it: the round stays. */
  #awaitingDecision(): boolean {
    if (this.#o.decideWaitMs === undefined) return false;
    for (const c of this.#certificates.values()) if (!this.#contradicted(c.round, c.digest)) return true;
    return false;
  }

  #startRound(round: number): void {
    if (round < this.#round) throw new Error(`Invariant broken: round ${round} after ${this.#round}`);
    this.#round = round;
    this.#step = "propose";
    this.#proposeTimeoutAt = undefined;
    // A server that may not sign proposes nothing either: it may have proposed in this round before its
    // votes were lost, and a second, different proposal proves its proposer a liar to the others.
    if (this.#o.canSign && this.#o.proposer(round) === this.#o.me && !this.#proposed.has(round)) {
      this.#proposed.add(round);
      this.#out.push({
        type: "propose",
        round,
        polRound: this.#validRound,
        validDigest: this.#validDigest,
      });
      // The replica answers with proposal(); should it not, the time-out still moves the round on.
    }
    this.#proposeTimeoutAt = this.#o.provenLiar?.(this.#o.proposer(round))
      ? this.#nowMs
      : round === 0
      ? Math.max(this.#o.round0DeadlineMs, this.#nowMs)
      : this.#nowMs + this.#o.timeoutMs(round);
  }

  #sign(step: VoteStep, digest: string): void {
    const round = this.#round;
    if (step === "prevote") this.#step = "prevote";
    else this.#step = "precommit";
    if (!this.#o.canSign) return;
    const key = `${round}:${step}`;
    const earlier = this.#signed.get(key);
    // After a restart the rules may ask for another value: the vote signed before stands.
    if (earlier !== undefined) return;
    this.#signed.set(key, digest);
    this.#out.push({ type: "vote", step, round, digest });
  }

  /** Applies every rule until none fires. */
  #update(): void {
    if (!this.#started) return;
    for (let guard = 0; guard < 1000; guard++) {
      if (!this.#step1()) return;
    }
    throw new Error("Invariant broken: the agreement rules did not settle");
  }

  /** The latest round before this one, and after the valid value's, with q prevotes for one value. */
  #laterPolka(q: number): { round: number; digest: string } | undefined {
    let found: { round: number; digest: string } | undefined;
    for (const [round, votes] of this.#rounds) {
      if (
        round >= this.#round || round <= this.#validRound || (found !== undefined && round <= found.round)
      ) {
        continue;
      }
      for (const [digest, signers] of votes.prevote.values()) {
        if (digest !== NIL && signers.size >= q && (this.#o.holds?.(digest) ?? true)) {
          found = { round, digest };
        }
      }
    }
    return found;
  }

  /** Fires the first rule that applies; false when none does. */
  #step1(): boolean {
    const q = this.#o.quorum;
    const now = this.#nowMs;
    // Decide: a quorum of precommits for one value in any round.
    if (this.#decision === undefined && this.#decideRule()) return true;
    if (this.#decision !== undefined) return false;
    // Move to a later round that b + 1 servers have reached.
    let later = -1;
    for (const [round, r] of this.#rounds) {
      if (round > this.#round && round > later && r.senders.size >= this.#o.dishonest + 1) later = round;
    }
    if (later > this.#round) {
      this.#startRound(later);
      return true;
    }
    const r = this.#roundVotes(this.#round);
    const p = r.proposal;
    if (this.#step === "propose") {
      if (p !== undefined && p.polRound === -1) {
        const ok = p.digest !== undefined && (this.#lockedRound === -1 || this.#lockedDigest === p.digest);
        this.#sign("prevote", ok ? p.digest! : NIL);
        return true;
      }
      if (p !== undefined && p.polRound >= this.#round) {
        this.#sign("prevote", NIL);
        return true;
      }
      if (p !== undefined && p.polRound >= 0 && p.digest !== undefined) {
        const pol = this.#rounds.get(p.polRound);
        if (pol !== undefined && pol.prevote.count(p.digest) >= q) {
          // A prevote quorum of round p outranks a lock of a round before p, and one of p that came from
          // a prevote quorum; a certificate of round p (b = 0) also one from another certificate of p: a
          // liar's two certificates of one round, neither of which could decide, must not lock the honest
          // servers apart for good.
          const rank = 2 * p.polRound + (pol.precommit.count(p.digest) >= q ? 1 : 0);
          const ok = this.#lockRank() <= rank || this.#lockedDigest === p.digest;
          this.#sign("prevote", ok ? p.digest : NIL);
          return true;
        }
      }
      if (p !== undefined && p.polRound >= 0 && p.digest === undefined) {
        this.#sign("prevote", NIL);
        return true;
      }
      if (this.#proposeTimeoutAt !== undefined && now >= this.#proposeTimeoutAt) {
        this.#sign("prevote", NIL);
        return true;
      }
    }
    if (this.#step === "prevote" && r.prevoteTimeoutAt === undefined && r.prevote.size >= q) {
      r.prevoteTimeoutAt = now + this.#o.timeoutMs(this.#round);
      return true;
    }
    if (
      !r.validSeen && this.#step !== "propose" && p?.digest !== undefined &&
      r.prevote.count(p.digest) >= q
    ) {
      r.validSeen = true;
      if (this.#step === "prevote") {
        if (
          this.#lockedByCertificate && this.#lockedRound >= this.#round && this.#lockedDigest !== p.digest
        ) {
          // A certificate of this round for another value was seen (a liar voted for both): precommitting
          // this one would complete a second certificate of the round.
          this.#sign("precommit", NIL);
          return true;
        }
        if (!(this.#lockedRound === this.#round && this.#lockedDigest === p.digest)) {
          this.#lockedByCertificate = false;
        }
        this.#lockedRound = this.#round;
        this.#lockedDigest = p.digest;
        this.#sign("precommit", p.digest);
      }
      this.#validRound = this.#round;
      this.#validDigest = p.digest;
      return true;
    }
    // A prevote quorum of an earlier round seen only now (a server locked on its value sends it again): that
    // value becomes the one this server proposes, with its round, as a quorum seen in time would have made it.
    // Without this the servers that missed the quorum propose new values the locked one refuses, for good.
    // Which value a proposer offers decides nothing: the prevote rules above do.
    const earlier = this.#laterPolka(q);
    if (earlier !== undefined) {
      this.#validRound = earlier.round;
      this.#validDigest = earlier.digest;
      return true;
    }
    if (this.#step === "prevote" && r.prevote.count(NIL) >= q) {
      this.#sign("precommit", NIL);
      return true;
    }
    if (this.#step === "prevote" && r.prevoteTimeoutAt !== undefined && now >= r.prevoteTimeoutAt) {
      this.#sign("precommit", NIL);
      return true;
    }
    if (r.precommitTimeoutAt === undefined && r.precommit.size >= q) {
      r.precommitTimeoutAt = now + this.#o.timeoutMs(this.#round);
      return true;
    }
    if (
      r.precommitTimeoutAt !== undefined && now >= r.precommitTimeoutAt && this.#round < MAX_ROUND &&
      !this.#awaitingDecision()
    ) {
      this.#startRound(this.#round + 1);
      return true;
    }
    return false;
  }
}
