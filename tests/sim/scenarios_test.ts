// The named scenarios of lib/sim/scenarios.ts. Against a flaw not yet fixed the checker must report it
// (that proves the simulator can see it); once fixed, the scenario must break none of its invariants
// under several seeds.

import assert from "node:assert/strict";
import { SCENARIOS } from "../../lib/sim/scenarios.ts";
import { Simulation } from "../../lib/sim/simulator.ts";

/** Seeds a fixed scenario is run with. */
const FIXED_SEEDS = [7, 1, 2, 3, 4, 5];

for (const scenario of SCENARIOS) {
  const verdict = scenario.fixed ? "breaks no invariant" : "is caught";
  Deno.test(`${scenario.name} ${verdict}: ${scenario.description}`, () => {
    const seeds = scenario.fixed ? FIXED_SEEDS : [scenario.config.seed];
    for (const seed of seeds) {
      const r = new Simulation({ ...scenario.config, seed }, scenario.hooks).run({
        stopOn: new Set(scenario.expect),
      });
      const found = r.violations.find((v) => scenario.expect.includes(v.invariant));
      if (scenario.fixed) {
        assert.equal(
          found,
          undefined,
          `seed ${seed}: ${found?.invariant}: ${found?.detail}\n${r.trace.join("\n")}`,
        );
      } else {
        assert.ok(
          found !== undefined,
          `expected a violation of ${scenario.expect.join(" or ")}; got ${
            r.violations.map((v) => `${v.invariant}: ${v.detail}`).join("; ") || "none"
          }`,
        );
      }
    }
  });
}
