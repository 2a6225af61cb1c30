// `coin status`: every server's frame, role, last agreed hash and whether it is in sync.

import { CoinError, UsageError } from "../errors.ts";
import { candidates } from "../client.ts";
import { readNetwork } from "../peers.ts";
import { Kind } from "../wire.ts";
import { askAll } from "./balance.ts";
import { type Command, parseFlags } from "./_command.ts";

export const status: Command = {
  name: "status",
  summary: "Show every server's frame, role and consensus",
  help: `Usage: coin status --peers FILE [--json]

Asks every server of peers.json for its status: reachable, current frame, role (alpha, beta or
other), last agreed frame and hash, agreement count and whether it is in sync. Below the table,
what each server found wrong with the others, in its words: a network file that differs from its
own (and which parts), a clock that looks off. Exits 1 when no server answers. --json prints one
array, one object per server (see README).

Example:
  coin status --peers peers.json`,
  async run(args, io) {
    const { values } = parseFlags("status", args, { peers: { type: "string" }, json: { type: "boolean" } });
    if (values.help) return io.out(this.help);
    if (values.peers === undefined) {
      throw new UsageError(`Missing --peers for "coin status" (see coin status --help)`);
    }
    const network = await readNetwork(values.peers);
    const answers = await askAll(candidates(network), Kind.status);
    const rows = answers.map((a) => {
      const r = a.response;
      return {
        server: a.name,
        address: `${a.host}:${a.port}`,
        reachable: r !== undefined,
        frame: r?.frame ?? null,
        role: r?.role ?? null,
        committedFrame: r?.committedFrame ?? null,
        committedHash: r?.committedHash ?? null,
        agree: r?.agree ?? null,
        inSync: r?.inSync ?? null,
        noQuorum: r?.noQuorum ?? null,
        accounts: r?.accounts ?? null,
        network: r?.network ?? null,
        problems: r === undefined ? null : problemsOf(r.problems),
        error: a.error ?? null,
      };
    });
    if (values.json) io.out(JSON.stringify(rows));
    else {
      io.out(
        "SERVER        ADDRESS               FRAME        ROLE   AGREED-FRAME  HASH          AGREE  IN-SYNC",
      );
      for (const r of rows) {
        if (!r.reachable) {
          io.out(`${r.server.padEnd(12)}  ${r.address.padEnd(20)}  unreachable: ${r.error}`);
          continue;
        }
        io.out([
          r.server.padEnd(12),
          r.address.padEnd(20),
          String(r.frame).padEnd(11),
          String(r.role).padEnd(5),
          String(r.committedFrame).padEnd(12),
          String(r.committedHash).slice(0, 12),
          String(r.agree ?? "-").padEnd(5),
          r.noQuorum ? "no quorum" : r.inSync ? "yes" : "no",
        ].join("  "));
      }
      for (const r of rows) for (const p of r.problems ?? []) io.out(`${r.server} says: ${p.reason}`);
    }
    // Servers with different peers.json files are different networks: say so instead of letting them
    // look like liars or laggards.
    const ids = new Map<string, string[]>();
    for (const r of rows) {
      if (typeof r.network === "string") ids.set(r.network, [...(ids.get(r.network) ?? []), r.server]);
    }
    if (ids.size > 1) {
      const groups = [...ids].map(([id, names]) => `${names.join(",")} on ${id.slice(0, 16)}`).join("; ");
      io.err(`warning: these servers run different networks (their peers.json files differ): ${groups}`);
    }
    if (rows.every((r) => !r.reachable)) throw new CoinError("No server answered");
  },
};

/** Most problems shown per server, and characters of each one's words. */
const MAX_PROBLEMS = 64;
const MAX_REASON_CHARS = 300;

/** One problem a server reports with another (lib/events.ts, PeerProblem), as `coin status` shows it. */
interface ShownProblem {
  problem: string;
  peer: string;
  key: string | null;
  parts?: string[];
  aheadMs?: number;
  reason: string;
}

/**
 * The `problems` of a status answer, kept to the known fields and types; null when the server sent none
 * (an older server). The words are the server's own, so control characters are taken out of them.
 */
function problemsOf(value: unknown): ShownProblem[] | null {
  if (!Array.isArray(value)) return null;
  const text = (v: unknown) => String(v).replace(/\p{Cc}/gu, "?").slice(0, MAX_REASON_CHARS);
  const shown: ShownProblem[] = [];
  for (const p of value.slice(0, MAX_PROBLEMS)) {
    if (typeof p !== "object" || p === null) continue;
    const { problem, peer, key, parts, aheadMs, reason } = p as Record<string, unknown>;
    if (typeof problem !== "string" || typeof peer !== "string" || typeof reason !== "string") continue;
    shown.push({
      problem: text(problem),
      peer: text(peer),
      key: typeof key === "string" ? text(key) : null,
      ...(Array.isArray(parts) ? { parts: parts.filter((x) => typeof x === "string").map(text) } : {}),
      ...(typeof aheadMs === "number" ? { aheadMs } : {}),
      reason: text(reason),
    });
  }
  return shown;
}
