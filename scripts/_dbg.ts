import { Simulation } from "../lib/sim/simulator.ts";
import { configFor, parseFaults } from "../lib/sim/run.ts";
const seed = Number(Deno.args[0]);
const cfg = configFor(seed, { frames: Number(Deno.args[1] ?? 120), servers: Number(Deno.args[2] ?? 3), liars: 0, dishonest: 0, faults: parseFaults(Deno.args[3] ?? "loss,duplicate,reorder,partition,slow_link,crash,wipe,pause,torn_write,full_disk,clock,clock_beyond"), intervalMs: 1000 });

(globalThis as any).DBG_ID = Deno.args[4];
const sim = new Simulation(cfg);
const r = sim.run();
console.log(r.violations[0]);
for (const n of sim.nodes) {
  const rep = n.replica;
  if (!rep) { console.log(n.index, "down"); continue; }
  const st = rep.status(sim.nowMs);
  console.log(n.index, "committed", st.committedFrame, "round", st.round, JSON.stringify((rep as any).debug?.()));
}
