// The entry of a simulator worker: runs the seeds it is sent and posts each seed's report back, so that
// a long `deno task sim` run uses every core.

/// <reference lib="deno.worker" />

import { runSeed, type SeedJob } from "./run.ts";

self.onmessage = (e: MessageEvent<SeedJob>) => {
  for (const seed of e.data.seeds) self.postMessage(runSeed(seed, e.data.options));
  self.close();
};
