// Entry point of `deno task sim`: the simulator is a developer's tool, not a `coin` subcommand.

import { UsageError } from "../lib/errors.ts";
import { runSim } from "../lib/sim/run.ts";

if (import.meta.main) {
  try {
    Deno.exit(await runSim(Deno.args, { out: (line) => console.log(line) }));
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`error: ${err.message}`);
      Deno.exit(2);
    }
    throw err;
  }
}
