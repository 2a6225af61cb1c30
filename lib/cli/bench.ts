// `coin bench`: measure this machine: signature checks, state kernels, one server's ingest, and a
// local network under load. Figures only; nothing is asserted.

import { measureIngest, measureNetwork, measureState, measureVerify } from "../bench.ts";
import { UsageError } from "../errors.ts";
import { type Command, parseFlags, wholeNumber } from "./_command.ts";

function positive(name: string, text: string | undefined, fallback: number, max: number): number {
  if (text === undefined) return fallback;
  const n = wholeNumber("bench", name, text);
  if (typeof n !== "number" || n < 1 || n > max) {
    throw new UsageError(`Invalid --${name} "${text}" for "coin bench": expected 1 to ${max}`);
  }
  return n;
}

/** The measurements `--only` can pick. */
export const PARTS = ["state", "ingest", "network"];

export const bench: Command = {
  name: "bench",
  summary: "Measure throughput and state costs on this machine",
  help: `Usage: coin bench [--json] [--servers N] [--interval S] [--accounts M] [--seconds T] [--rate R]
                  [--ingest N] [--only LIST]

Measures, in order:
  verify      Ed25519 signature checks per second in this process (node:crypto, and WebCrypto)
  state       with M accounts: apply of 5,000 transfers, pack+hash, and a full catch-up over
              loopback TCP (sign, send, receive, verify, load)
  ingest      transfers accepted per second by one server from pipelined loopback clients
  network     N servers at an S-second interval offered R transfers/s for T seconds: transfers
              committed per second, frames agreed, transfers lost, consensus time, peak memory
Progress goes to stderr on a terminal; --json prints one object on stdout (see BENCHMARKS.md).

Options:
  --servers N    servers in the network (default 3)
  --interval S   frame length in seconds (default 1)
  --accounts M   accounts for the state measurements (default 1000000)
  --seconds T    length of the network run (default 20)
  --rate R       transfers per second offered to the network (default 6000)
  --ingest N     transfers sent for the ingest measurement (default 60000)
  --only LIST    measure only these of state,ingest,network (verify always runs)

Example:
  coin bench --json --accounts 1000000 --seconds 60`,
  async run(args, io) {
    const { values } = parseFlags("bench", args, {
      json: { type: "boolean" },
      servers: { type: "string" },
      interval: { type: "string" },
      accounts: { type: "string" },
      seconds: { type: "string" },
      rate: { type: "string" },
      ingest: { type: "string" },
      only: { type: "string" },
    });
    if (values.help) return io.out(this.help);
    const servers = positive("servers", values.servers, 3, 15);
    const interval = positive("interval", values.interval, 1, 60);
    const accounts = positive("accounts", values.accounts, 1_000_000, 16_000_000);
    const seconds = positive("seconds", values.seconds, 20, 3600);
    const rate = positive("rate", values.rate, 6000, 100_000);
    const ingestCount = positive("ingest", values.ingest, 60_000, 1_000_000);
    const parts = new Set((values.only ?? PARTS.join(",")).split(","));
    for (const p of parts) {
      if (!PARTS.includes(p)) {
        throw new UsageError(`Invalid --only "${p}" for "coin bench": expected ${PARTS.join(", ")}`);
      }
    }
    // Progress only on a terminal: piped, stderr stays quiet unless something fails.
    const progress = (line: string) => {
      if (io.errIsTerminal) io.err(`bench: ${line}`);
    };

    progress("verify…");
    const verify = await measureVerify();
    let state;
    if (parts.has("state")) {
      progress(`state with ${accounts} accounts…`);
      state = await measureState(accounts);
    }
    let ingest;
    if (parts.has("ingest")) {
      progress(`ingest of ${ingestCount} transfers by one server…`);
      ingest = await measureIngest({ count: ingestCount, connections: 4, signal: io.signal });
    }
    let network;
    if (parts.has("network")) {
      progress(`network of ${servers} servers…`);
      network = await measureNetwork({
        servers,
        intervalSeconds: interval,
        seconds,
        rate,
        progress,
        signal: io.signal,
      });
    }

    const result = {
      verify_per_s: Math.round(verify.node),
      verify_webcrypto_per_s: Math.round(verify.webcrypto),
      ingest_tx_per_s: ingest?.ingest_tx_per_s ?? null,
      ingest_share_of_verify: ingest ? Math.round((ingest.ingest_tx_per_s / verify.node) * 100) / 100 : null,
      commit_tx_per_s: network?.commit_tx_per_s ?? null,
      frames_agreed: network?.frames_agreed ?? null,
      frames_total: network?.frames_total ?? null,
      lost: network?.lost ?? null,
      accounts: state?.accounts ?? null,
      apply_ms: state?.apply_ms ?? null,
      pack_hash_ms: state?.pack_hash_ms ?? null,
      catchup_ms: state?.catchup_ms ?? null,
      peak_rss_mb: network?.peak_rss_mb ?? null,
      consensus_ms_p50: network?.consensus_ms_p50 ?? null,
      consensus_ms_p95: network?.consensus_ms_p95 ?? null,
      ingest: ingest ?? null,
      state: state ?? null,
      network: network ?? null,
    };
    if (values.json) return io.out(JSON.stringify(result));
    io.out(`verify      ${result.verify_per_s}/s node:crypto, ${result.verify_webcrypto_per_s}/s WebCrypto`);
    if (state) {
      io.out(
        `state       ${accounts} accounts (${
          (state.db_bytes / 1e6).toFixed(1)
        } MB): apply ${state.apply_ms} ms ` +
          `(${state.apply_txs} transfers), pack+hash ${state.pack_hash_ms} ms, catch-up ${state.catchup_ms} ms`,
      );
    }
    if (ingest) {
      io.out(
        `ingest      ${ingest.ingest_tx_per_s}/s accepted by one server ` +
          `(${Math.round(result.ingest_share_of_verify! * 100)}% of verify)`,
      );
    }
    if (network) {
      io.out(
        `network     ${servers} servers, ${interval} s frames, ${rate}/s offered for ${seconds} s: ` +
          `${network.commit_tx_per_s}/s committed, ${network.frames_agreed}/${network.frames_total} frames agreed, ` +
          `${network.lost} lost, consensus ${network.consensus_ms_p50} ms (p95 ${network.consensus_ms_p95} ms), ` +
          `peak RSS ${network.peak_rss_mb.join("/")} MB`,
      );
    }
  },
};
