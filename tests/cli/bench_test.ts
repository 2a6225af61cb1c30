// A smoke run of `coin bench`: every figure is produced and has the right type. Benchmarks are
// never timed assertions; BENCHMARKS.md records the real runs.

import assert from "node:assert/strict";
import { runCoin } from "../_helpers.ts";

Deno.test("coin bench --json reports every figure from a short run", async () => {
  const r = await runCoin([
    "bench",
    "--json",
    "--accounts",
    "10000",
    "--seconds",
    "3",
    "--rate",
    "300",
    "--ingest",
    "2000",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  for (
    const key of [
      "verify_per_s",
      "ingest_tx_per_s",
      "commit_tx_per_s",
      "frames_agreed",
      "frames_total",
      "lost",
      "pack_hash_ms",
      "catchup_ms",
      "apply_ms",
    ]
  ) {
    assert.equal(typeof j[key], "number", `${key} is a number`);
  }
  assert.ok(Array.isArray(j.peak_rss_mb) && j.peak_rss_mb.length === 3);
  assert.ok(j.frames_total >= 1);
  assert.equal(j.accounts, 10000);
  // Figures of something that happened: the ingest server took transfers (none refused as sent before the
  // network's first frame), and the network agreed on frames and committed the offered transfers.
  assert.ok(j.ingest.accepted > 0, `the ingest server accepted transfers: ${JSON.stringify(j.ingest)}`);
  assert.equal(j.ingest.rejected.not_started, undefined, JSON.stringify(j.ingest));
  assert.ok(j.frames_agreed >= 1 && j.network.committed > 0, JSON.stringify(j.network));
});

Deno.test("coin bench refuses an unknown --only part", async () => {
  const r = await runCoin(["bench", "--only", "disk"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Invalid --only "disk"/);
});
