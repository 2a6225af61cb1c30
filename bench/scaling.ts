// `deno task bench:scaling`: how the state kernels grow from 10,000 to 10,000,000 accounts and how
// consensus time grows from 3 to 7 servers. Each point runs `coin bench` in its own process so its
// memory is its own. Prints Markdown tables for BENCHMARKS.md.

const main = new URL("../main.ts", import.meta.url).pathname;

async function coinBench(args: string[]): Promise<Record<string, unknown>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, "bench", "--json", ...args],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`coin bench ${args.join(" ")} failed`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

const sizes = (Deno.args[0] ?? "10000,100000,1000000,10000000").split(",").map(Number);
const servers = (Deno.args[1] ?? "3,5,7").split(",").map(Number);

console.log(
  "| accounts | database | apply 5,000 transfers | pack+hash | catch-up (send, verify, load) | peak RSS |",
);
console.log("|---:|---:|---:|---:|---:|---:|");
for (const accounts of sizes) {
  const r = await coinBench(["--only", "state", "--accounts", String(accounts)]);
  const s = r.state as Record<string, number>;
  console.log(
    `| ${accounts.toLocaleString("en")} | ${(s.db_bytes! / 1e6).toFixed(1)} MB | ${s.apply_ms} ms | ` +
      `${s.pack_hash_ms} ms | ${s.catchup_ms} ms | ${s.peak_rss_mb} MB |`,
  );
}
console.log();
console.log(
  "| servers | offered | committed | frames agreed | lost | consensus p50 | consensus p95 | peak RSS per server |",
);
console.log("|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const n of servers) {
  const r = await coinBench([
    "--only",
    "network",
    "--servers",
    String(n),
    "--seconds",
    "15",
    "--rate",
    "3000",
  ]);
  const w = r.network as Record<string, unknown>;
  console.log(
    `| ${n} | ${w.offered_tx_per_s}/s | ${w.commit_tx_per_s}/s | ${w.frames_agreed}/${w.frames_total} | ${w.lost} | ` +
      `${w.consensus_ms_p50} ms | ${w.consensus_ms_p95} ms | ${(w.peak_rss_mb as number[]).join(", ")} MB |`,
  );
}
