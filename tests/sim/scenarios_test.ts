// The named scenarios of lib/sim/scenarios.ts: against today's protocol the checker must report each
// flaw the review found (that proves the simulator can see it). The safe-agreement work turns each of
// these into a run with no violation.

import assert from "node:assert/strict";
import { SCENARIOS } from "../../lib/sim/scenarios.ts";
import { Simulation } from "../../lib/sim/simulator.ts";

for (const scenario of SCENARIOS) {
  Deno.test(`the simulator catches ${scenario.name}: ${scenario.description}`, () => {
    const r = new Simulation(scenario.config, scenario.hooks).run({ stopOn: new Set(scenario.expect) });
    const found = r.violations.find((v) => scenario.expect.includes(v.invariant));
    assert.ok(
      found !== undefined,
      `expected a violation of ${scenario.expect.join(" or ")}; got ${
        r.violations.map((v) => `${v.invariant}: ${v.detail}`).join("; ") || "none"
      }`,
    );
  });
}
