// `deno task sim`: runs seeded simulations and prints one line per seed; on a violation, the seed, the
// invariant and the steps that led to it, so that `--seed S` replays it exactly.

import { parseArgs } from "node:util";
import { UsageError } from "../errors.ts";
import {
  BOUND_KEEPING_FAULTS,
  FAULT_KINDS,
  type FaultKind,
  type SimConfig,
  type SimResult,
  Simulation,
} from "./simulator.ts";
import { LIE_KINDS } from "./adversary.ts";
import { Rng } from "./rng.ts";
import { SCENARIOS } from "./scenarios.ts";

export const SIM_HELP = `Usage: deno task sim [options]

Runs the real replica core in a seeded simulation with faults and checks the invariants after every
step. One line per seed; a violation prints its seed, invariant and trace, and the exit status is 1.

Options:
  --seed S         first seed (default 1)
  --seeds K        number of seeds (default 1)
  --frames F       frames per run (default 200)
  --servers N      servers per run (default: drawn per seed from 3 to 5)
  --dishonest B    dishonest servers the network tolerates ("dishonest" in peers.json; default 0)
  --liars L        dishonest servers in the run (default: drawn per seed, 0 or 1, at most B)
  --faults LIST    comma-separated fault kinds, or "all" (default all), or "none"
  --within-bound   every message between honest servers arrives within a quarter of the interval
                   (the timing bound): of the world faults only ${BOUND_KEEPING_FAULTS.join(", ")} are drawn
  --interval MS    frame interval in ms (default 1000)
  --ablate-decide-wait
                   with b = 0, decide certificates at once (the 2Δ rule off: shows what it prevents)
  --judge-liveness judge liveness also with more liars than the network tolerates (b = 0 with one),
                   where it is not claimed: to measure it
  --scenario NAME  run one named scenario (see --list)
  --workers W      threads to run seeds on (default: one per core, at most 8)
  --list           list fault kinds and scenarios
  --quiet          print only violations and the summary
  -h, --help       this help

Fault kinds: ${FAULT_KINDS.join(", ")}
`;

/** Output of a sim run. */
export interface SimIo {
  out(line: string): void;
}

/** The configuration of one seed, drawn from the seed where the options leave it open. */
export function configFor(
  seed: number,
  options: {
    frames: number;
    servers?: number;
    liars?: number;
    dishonest?: number;
    faults: ReadonlySet<FaultKind>;
    intervalMs: number;
    withinBound?: boolean;
    ablateDecideWait?: boolean;
    judgeLiveness?: boolean;
  },
): SimConfig {
  // Every value is drawn whether or not an option overrides it, so that the replay line (which names
  // every value) draws the same schedule as the run it came from.
  const rng = new Rng(seed ^ 0x5eed);
  const drawnServers = rng.int(3, 5);
  const drawnLiar = rng.chance(0.5);
  const drawnWait = rng.chance(0.5);
  const dishonest = options.dishonest ?? 0;
  // Enough servers for the tolerance asked for: 3b + 1 at least.
  const servers = options.servers ?? Math.max(drawnServers, 3 * dishonest + 1);
  const liarKinds = [...options.faults].some((f) => !isWorldFault(f));
  // By default a run has no more liars than the network tolerates: what the protocol claims.
  const liars = options.liars ?? (liarKinds && drawnLiar ? Math.min(1, dishonest) : 0);
  const faults = options.withinBound
    ? new Set(
      [...options.faults].filter((f) => !isWorldFault(f) || BOUND_KEEPING_FAULTS.includes(f as never)),
    )
    : options.faults;
  return {
    seed,
    frames: options.frames,
    servers,
    dishonest,
    liars: Math.min(liars, servers - 1),
    faults,
    ...(options.withinBound ? { boundMs: Math.floor(options.intervalMs / 4) } : {}),
    ...(options.ablateDecideWait ? { ablateDecideWait: true } : {}),
    ...(options.judgeLiveness ? { judgeLiveness: true } : {}),
    intervalMs: options.intervalMs,
    skewMs: Math.max(options.intervalMs, 2_000),
    blackoutMs: Math.floor(options.intervalMs / 10),
    calmFrames: Math.min(30, Math.max(10, Math.floor(options.frames / 5))),
    clients: 4,
    // Within the bound every honest server stays up: one halting for want of a quorum would miss messages.
    waitForQuorum: options.withinBound ? true : drawnWait,
  };
}

function isWorldFault(f: FaultKind): boolean {
  return !(LIE_KINDS as readonly string[]).includes(f);
}

/** One line for a run. */
export function summaryLine(r: SimResult): string {
  const c = r.config;
  const verdict = r.violations.length === 0 ? "ok" : `VIOLATION ${r.violations[0]!.invariant}`;
  return `seed ${c.seed} n=${c.servers} b=${
    c.dishonest ?? 0
  } liars=${c.liars} frames=${c.frames} ${verdict} ` +
    `committed=${r.stats.framesCommitted} transfers=${r.stats.transfersCommitted} crashes=${r.stats.crashes} ` +
    `steps=${r.stats.steps}`;
}

/** The report of a violation: what, when, and the steps before it. */
export function violationReport(r: SimResult): string[] {
  const v = r.violations[0]!;
  return [
    `seed ${r.config.seed}: ${v.invariant} broken at ${(v.atMs / 1000).toFixed(3)}s: ${v.detail}`,
    `replay: deno task sim --seed ${r.config.seed} --frames ${r.config.frames} --servers ${r.config.servers} ` +
    `--dishonest ${r.config.dishonest ?? 0} --liars ${r.config.liars} --faults ${
      [...r.config.faults].join(",") || "none"
    } --interval ${r.config.intervalMs}${r.config.boundMs === undefined ? "" : " --within-bound"}${
      r.config.ablateDecideWait ? " --ablate-decide-wait" : ""
    }${r.config.judgeLiveness ? " --judge-liveness" : ""}`,
    "trace (last steps):",
    ...r.trace.map((t) => `  ${t}`),
  ];
}

/** Parses the fault list. */
export function parseFaults(text: string): Set<FaultKind> {
  if (text === "all") return new Set(FAULT_KINDS);
  if (text === "none" || text === "") return new Set();
  const out = new Set<FaultKind>();
  for (const f of text.split(",")) {
    if (!(FAULT_KINDS as readonly string[]).includes(f)) {
      throw new UsageError(`Unknown fault kind "${f}": try one of ${FAULT_KINDS.join(", ")}`);
    }
    out.add(f as FaultKind);
  }
  return out;
}

function positive(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new UsageError(`--${name} must be a whole number (got "${text}")`);
  }
  return n;
}

/** Seeds for a worker, and the options every seed shares. */
export interface SeedJob {
  seeds: number[];
  options: {
    frames: number;
    faults: string;
    intervalMs: number;
    servers?: number;
    liars?: number;
    dishonest?: number;
    withinBound?: boolean;
    ablateDecideWait?: boolean;
    judgeLiveness?: boolean;
  };
}

/** One seed's outcome as `deno task sim` prints it. */
export interface SeedReport {
  seed: number;
  summary: string;
  violation: string | undefined;
  report: string[];
}

/** Runs one seed (in this thread) and describes it. */
export function runSeed(seed: number, options: SeedJob["options"]): SeedReport {
  const { faults, ...rest } = options;
  const r = new Simulation(configFor(seed, { ...rest, faults: parseFaults(faults) })).run();
  const v = r.violations[0];
  return { seed, summary: summaryLine(r), violation: v?.invariant, report: v ? violationReport(r) : [] };
}

/** Runs `seeds` on `workers` threads (1: this one) and yields the reports in seed order. */
async function* runSeeds(
  seeds: number[],
  options: SeedJob["options"],
  workers: number,
): AsyncGenerator<SeedReport> {
  if (workers <= 1 || seeds.length < 4) {
    for (const seed of seeds) yield runSeed(seed, options);
    return;
  }
  const done = new Map<number, SeedReport>();
  let wake: (() => void) | undefined;
  const threads = Array.from({ length: workers }, (_, w) => {
    const worker = new Worker(new URL("./_worker.ts", import.meta.url), { type: "module" });
    const finished = Promise.withResolvers<void>();
    const mine = seeds.filter((_, i) => i % workers === w);
    let left = mine.length;
    worker.onmessage = (e: MessageEvent<SeedReport>) => {
      done.set(e.data.seed, e.data);
      wake?.();
      if (--left === 0) finished.resolve();
    };
    worker.onerror = (e) => {
      e.preventDefault();
      finished.reject(new Error(`Simulator worker failed: ${e.message}`));
      wake?.();
    };
    worker.postMessage({ seeds: mine, options } satisfies SeedJob);
    return { worker, finished: finished.promise };
  });
  const all = Promise.all(threads.map((t) => t.finished));
  let failure: unknown;
  all.catch((err) => failure = err);
  try {
    for (const seed of seeds) {
      while (!done.has(seed)) {
        if (failure !== undefined) throw failure;
        await new Promise<void>((resolve) => wake = resolve);
      }
      yield done.get(seed)!;
      done.delete(seed);
    }
    await all;
  } finally {
    for (const t of threads) t.worker.terminate();
  }
}

/** Runs the command; returns the exit status (0 clean, 1 a violation). */
export async function runSim(args: string[], io: SimIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        seed: { type: "string" },
        seeds: { type: "string" },
        frames: { type: "string" },
        servers: { type: "string" },
        liars: { type: "string" },
        dishonest: { type: "string" },
        faults: { type: "string" },
        interval: { type: "string" },
        scenario: { type: "string" },
        workers: { type: "string" },
        "within-bound": { type: "boolean" },
        "ablate-decide-wait": { type: "boolean" },
        "judge-liveness": { type: "boolean" },
        list: { type: "boolean" },
        quiet: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) {
    io.out(SIM_HELP);
    return 0;
  }
  if (v.list) {
    io.out(`fault kinds: ${FAULT_KINDS.join(", ")}`);
    for (const s of SCENARIOS) io.out(`scenario ${s.name}: ${s.description}`);
    return 0;
  }
  if (v.scenario !== undefined) {
    const scenario = SCENARIOS.find((s) => s.name === v.scenario);
    if (scenario === undefined) {
      throw new UsageError(
        `Unknown scenario "${v.scenario}": try one of ${SCENARIOS.map((s) => s.name).join(", ")}`,
      );
    }
    const r = new Simulation(scenario.config, scenario.hooks).run({ stopOn: new Set(scenario.expect) });
    io.out(`scenario ${scenario.name}: ${summaryLine(r)}`);
    if (r.violations.length > 0) { for (const line of violationReport(r)) io.out(line); }
    return r.violations.length > 0 ? 1 : 0;
  }
  const first = positive("seed", v.seed, 1);
  const count = positive("seeds", v.seeds, 1);
  const faults = parseFaults(v.faults ?? "all");
  const frames = positive("frames", v.frames, 200);
  if (frames < 20) throw new UsageError("--frames must be at least 20");
  const options = {
    frames,
    faults,
    intervalMs: positive("interval", v.interval, 1000),
    ...(v.servers === undefined ? {} : { servers: positive("servers", v.servers, 3) }),
    ...(v.liars === undefined ? {} : { liars: positive("liars", v.liars, 0) }),
    ...(v.dishonest === undefined ? {} : { dishonest: positive("dishonest", v.dishonest, 0) }),
    ...(v["within-bound"] ? { withinBound: true } : {}),
    ...(v["ablate-decide-wait"] ? { ablateDecideWait: true } : {}),
    ...(v["judge-liveness"] ? { judgeLiveness: true } : {}),
  };
  if (options.servers !== undefined && (options.servers < 1 || options.servers > 16)) {
    throw new UsageError("--servers must be from 1 to 16");
  }
  if (options.intervalMs < 100) throw new UsageError("--interval must be at least 100 ms");
  const workers = positive("workers", v.workers, Math.max(1, Math.min(navigator.hardwareConcurrency, 8)));
  let violations = 0;
  const byInvariant = new Map<string, number>();
  const t0 = performance.now();
  const seeds = Array.from({ length: count }, (_, i) => first + i);
  const job = { ...options, faults: [...faults].join(",") || "none" };
  for await (const r of runSeeds(seeds, job, workers)) {
    if (r.violation !== undefined) {
      violations++;
      byInvariant.set(r.violation, (byInvariant.get(r.violation) ?? 0) + 1);
      io.out(r.summary);
      for (const line of r.report) io.out(line);
    } else if (!v.quiet) io.out(r.summary);
  }
  const seconds = ((performance.now() - t0) / 1000).toFixed(1);
  const kinds = [...byInvariant].map(([k, n]) => `${k}:${n}`).join(",");
  io.out(`${count} seeds, ${violations} with a violation${kinds ? ` (${kinds})` : ""}, ${seconds}s`);
  return violations > 0 ? 1 : 0;
}
