// Named scenarios: each case the review found, as a fixed configuration and the targeted faults that
// provoke it. `expect` names the invariants whose violation shows the flaw; against a protocol that has
// the flaw the checker reports one of them (tests/sim/scenarios_test.ts), against a fixed one none.

import { alphaIndex } from "../frames.ts";
import { readU64, viewOf } from "../_bytes.ts";
import { Code, VOTE_HEAD_BYTES } from "../certificate.ts";
import { PEER_HEAD_BYTES } from "../wire.ts";
import type { Invariant } from "./checker.ts";
import type { FaultKind, ScenarioHooks, SimConfig, Simulation } from "./simulator.ts";

/** A named scenario. */
export interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly config: SimConfig;
  readonly hooks: ScenarioHooks;
  /** The invariants a violation of which shows this flaw. */
  readonly expect: readonly Invariant[];
  /** True once the protocol is fixed: the scenario must then break none of them, whatever the seed. */
  readonly fixed: boolean;
}

function config(overrides: Partial<SimConfig> & { faults?: ReadonlySet<FaultKind> }): SimConfig {
  return {
    seed: 7,
    frames: 60,
    servers: 3,
    liars: 0,
    faults: new Set(),
    intervalMs: 1000,
    skewMs: 2000,
    blackoutMs: 100,
    calmFrames: 12,
    clients: 4,
    waitForQuorum: true,
    ...overrides,
  };
}

/** The frame (height) of a prevote or precommit message, or undefined for anything else. */
function voteFrame(body: Uint8Array): number | undefined {
  const p = body.subarray(PEER_HEAD_BYTES);
  if (p.length < VOTE_HEAD_BYTES || (p[0] !== Code.prevote && p[0] !== Code.precommit)) return undefined;
  return readU64(viewOf(p), 33);
}

/** Every `period` frames from frame `from` (run-relative), calls `fn` with the run-relative frame. */
function everyFrames(
  sim: Simulation,
  from: number,
  period: number,
  fn: (relative: number, at: number) => void,
): void {
  const first = sim.firstFrame;
  for (let f = from; f < sim.config.frames - sim.config.calmFrames; f += period) {
    fn(f, sim.frameStartElapsed(first + f));
  }
}

/** Runs that already dropped their one message. */
const dropped = new WeakSet<Simulation>();

/** Every invariant: what a scenario of a fault the protocol must survive is judged on. */
const ALL: readonly Invariant[] = [
  "agreement",
  "chain",
  "validity",
  "once_only",
  "durability",
  "truthful",
  "acked",
  "blame",
  "liveness",
  "assertion",
];

export const SCENARIOS: readonly Scenario[] = [
  {
    name: "equivocating-beta-n3",
    description:
      "a beta sends two buffers, each with the hash honest servers compute for it, in a 3-server network " +
      "(b = 0, messages between honest servers within the bound)",
    // With "dishonest": 0 a liar sits in every quorum intersection: the 2Δ commit rule stops it while
    // messages between honest servers arrive within Δ (seed 1 forked before the rule was built).
    config: config({ seed: 1, servers: 3, liars: 1, faults: new Set(["equivocate"]), boundMs: 250 }),
    hooks: {},
    expect: ["agreement", "chain", "once_only"],
    fixed: true,
  },
  {
    name: "equivocating-beta-n5",
    description: "the same equivocation in a 5-server network (3 of 5 on each side)",
    config: config({ seed: 1, servers: 5, liars: 1, faults: new Set(["equivocate"]), boundMs: 250 }),
    hooks: {},
    expect: ["agreement", "chain", "once_only"],
    fixed: true,
  },
  {
    name: "far-split-n3",
    description:
      "a beta moves one honest server alone 30 rounds ahead and certifies its second buffer there, while " +
      "the other waits out a certificate of round 0 for the first (b = 0, within the bound)",
    // Forked before a vote too far ahead to count was kept against certificates for other values (the
    // review of 2d27138): the waiting server dropped the far one's votes unseen.
    config: config({
      seed: 1,
      servers: 3,
      liars: 1,
      faults: new Set(["equivocate", "far_split"]),
      boundMs: 250,
    }),
    hooks: {},
    expect: ["agreement", "chain", "once_only"],
    fixed: true,
  },
  {
    name: "equivocating-proposer-b1-n4",
    description:
      'with "dishonest": 1, a liar proposes two values and votes for each to a different half (4 servers)',
    config: config({ servers: 4, dishonest: 1, liars: 1, faults: new Set(["equivocate"]) }),
    hooks: {},
    expect: ALL,
    fixed: true,
  },
  {
    name: "equivocating-proposer-b1-n5",
    description: 'the same with "dishonest": 1 and 5 servers (a quorum of 4)',
    config: config({ servers: 5, dishonest: 1, liars: 1, faults: new Set(["equivocate"]) }),
    hooks: {},
    expect: ALL,
    fixed: true,
  },
  {
    name: "forged-catchup-ids",
    description:
      "a liar catches a restarted server up with the right database and no replay ids, then replays",
    config: config({ servers: 3, liars: 1, faults: new Set(["forge_catchup"]), frames: 80 }),
    // Fixed: the recent ids are in the certified digest, so a forged catch-up no longer verifies.
    hooks: {
      setup(sim) {
        // s2 is down for two frames every eight, so it needs a catch-up again and again.
        const s2 = sim.nodes[1]!;
        everyFrames(sim, 6, 8, (_f, at) => {
          sim.at(at + 300, "crash s2", () => sim.crash(s2));
          sim.at(at + 2300, "restart s2", () => sim.start(s2));
        });
      },
    },
    expect: ["once_only", "truthful"],
    fixed: true,
  },
  {
    name: "early-next-buffer",
    description:
      "a liar sends its next frame's buffer early to the current beta, which reverts an agreed frame",
    config: config({ servers: 3, liars: 1, faults: new Set(["early_buffer"]) }),
    hooks: {},
    expect: ["chain", "truthful"],
    fixed: true,
  },
  {
    name: "committed-without-consensus",
    description: "a frame ends without consensus; its transfers are later reported committed",
    config: config({ servers: 3 }),
    hooks: {
      setup(sim) {
        const s3 = sim.nodes[2]!;
        sim.at(sim.frameStartElapsed(sim.firstFrame + 3), "crash s3 for the run", () => sim.crash(s3));
      },
      // Every vote of every fourth frame is lost between the two servers left: the frame has no majority.
      dropPeer(_from, _to, body, sim) {
        const f = voteFrame(body);
        const calm = sim.firstFrame + sim.config.frames - sim.config.calmFrames;
        return f !== undefined && f > sim.firstFrame + 3 && f < calm && (f - sim.firstFrame) % 4 === 0;
      },
    },
    expect: ["truthful"],
    fixed: true,
  },
  {
    name: "restart-in-own-alpha-frame",
    description: "a server restarts during its own alpha frame and loses the transfers it accepted",
    config: config({ servers: 3 }),
    hooks: {
      setup(sim) {
        const s1 = sim.nodes[0]!;
        everyFrames(sim, 4, 1, (f, at) => {
          if (alphaIndex(sim.firstFrame + f, 3) !== 0 || f % 2 !== 0) return;
          sim.at(at + 600, "crash s1 in its alpha frame", () => sim.crash(s1));
          sim.at(at + 650, "restart s1", () => sim.start(s1));
        });
      },
    },
    // Fixed: an accepted transfer is answered "ok" only once appended to the frame's alpha log.
    expect: ["acked"],
    fixed: true,
  },
  {
    name: "majority-one-vote-lost",
    description: "exactly a majority is up and one vote is lost: the two servers diverge for good",
    config: config({ servers: 3, frames: 60 }),
    hooks: {
      setup(sim) {
        const s3 = sim.nodes[2]!;
        sim.at(sim.frameStartElapsed(sim.firstFrame + 2), "crash s3 until the calm end", () => sim.crash(s3));
      },
      // One vote never reaches s1: the first one s2 sends for the first frame after the tenth whose beta
      // is s1 (the old protocol then had s2 commit the frame and s1 not, for good).
      dropPeer(from, to, body, sim) {
        let f = sim.firstFrame + 10;
        while (alphaIndex(f, 3) !== 0) f++;
        if (from !== 1 || to !== 0 || voteFrame(body) !== f || dropped.has(sim)) return false;
        dropped.add(sim);
        return true;
      },
    },
    expect: ["liveness", "chain", "agreement", "truthful"],
    fixed: true,
  },
  {
    name: "two-wiped-restarts",
    description: "two of three servers restart on empty data directories while the third keeps the history",
    config: config({ servers: 3 }),
    hooks: {
      setup(sim) {
        const at = sim.frameStartElapsed(sim.firstFrame + 15) + 500;
        for (const i of [0, 1]) {
          const node = sim.nodes[i]!;
          sim.at(at, `crash s${i + 1}`, () => sim.crash(node));
          sim.at(at + 400, `restart s${i + 1} on an empty directory`, () => {
            node.disk.wipe();
            node.durable = undefined;
            sim.start(node);
          });
        }
      },
    },
    // Fixed: they adopt the third's certified history instead of the genesis. With two of three votes
    // lost the network then waits for good (it cannot know what the lost votes decided): safe, not live.
    expect: ["chain", "agreement", "durability", "once_only"],
    fixed: true,
  },
  {
    name: "subsecond-same-second",
    description: "at a 250 ms interval two frames share a second; a restart loads the older archive entry",
    config: config({
      servers: 3,
      intervalMs: 250,
      skewMs: 1000,
      blackoutMs: 25,
      frames: 160,
      calmFrames: 20,
    }),
    hooks: {
      setup(sim) {
        const s1 = sim.nodes[0]!;
        everyFrames(sim, 12, 9, (_f, at) => {
          sim.at(at + 120, "crash s1", () => sim.crash(s1));
          sim.at(at + 180, "restart s1", () => sim.start(s1));
        });
      },
    },
    expect: ["durability", "chain"],
    fixed: true,
  },
  {
    name: "clock-off-40-percent",
    description: "one server's clock 40% of the interval ahead, then (restarted) 40% behind",
    config: config({ servers: 3, frames: 60, calmFrames: 12 }),
    hooks: {
      setup(sim) {
        const s3 = sim.nodes[2]!;
        s3.clockOffsetMs = 400;
        const at = sim.frameStartElapsed(sim.firstFrame + 24) + 300;
        sim.at(at, "crash s3", () => sim.crash(s3));
        sim.at(at + 200, "restart s3 with its clock 400 ms behind", () => {
          s3.clockOffsetMs = -400;
          sim.start(s3);
        });
      },
    },
    expect: ALL,
    fixed: true,
  },
];
