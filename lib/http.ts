// The operator's HTTP endpoint (`coin serve --http PORT`): /health for load balancers and alerts,
// /status as JSON, /metrics in the Prometheus text format. Loopback only unless told otherwise.

import type { Server } from "./server.ts";

/** Starts the endpoint; close it with the returned server's `shutdown()`. */
export function serveHttp(
  server: Server,
  options: { hostname: string; port: number; onListen?: (addr: Deno.NetAddr) => void },
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({
    hostname: options.hostname,
    port: options.port,
    onListen: options.onListen ?? (() => {}),
  }, (request) => handle(server, request));
}

function handle(server: Server, request: Request): Response {
  const url = new URL(request.url);
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response("Only GET is served\n", { status: 405, headers: { allow: "GET, HEAD" } });
  }
  switch (url.pathname) {
    case "/health": {
      const h = server.health();
      return new Response(h.reason + "\n", {
        status: h.ok ? 200 : 503,
        headers: { "content-type": "text/plain" },
      });
    }
    case "/status":
      return Response.json({ ...server.status(), health: server.health(), metrics: server.metrics });
    case "/metrics":
      return new Response(prometheus(server), {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
      });
    default:
      return new Response("Not found: try /health, /status or /metrics\n", { status: 404 });
  }
}

/** The metrics in the Prometheus text exposition format. */
export function prometheus(server: Server): string {
  const m = server.metrics;
  const s = server.status();
  const lines: string[] = [];
  const metric = (name: string, type: string, help: string, values: [string, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of values) lines.push(`${name}${labels} ${v}`);
  };
  const agree = typeof s.agree === "string" ? Number(s.agree.split("/")[0]) : 0;
  metric("coin_frames_processed_total", "counter", "Frames this server applied and voted on.", [[
    "",
    m.framesProcessed,
  ]]);
  metric("coin_frames_agreed_total", "counter", "Frames certified by a quorum (committed here).", [[
    "",
    m.framesAgreed,
  ]]);
  metric(
    "coin_frames_missed_total",
    "counter",
    "Frames the committed state lagged the clock by, when last judged without a quorum.",
    [[
      "",
      m.framesMissed,
    ]],
  );
  metric(
    "coin_agreement_servers",
    "gauge",
    "Servers that voted the consensus hash of the last agreed frame.",
    [["", agree]],
  );
  metric("coin_servers", "gauge", "Servers in peers.json.", [["", server.network.servers.length]]);
  metric("coin_in_sync", "gauge", "1 when this server agreed with the last consensus.", [[
    "",
    s.inSync ? 1 : 0,
  ]]);
  metric("coin_transfers_accepted_total", "counter", "Transfers accepted into this server's alpha buffer.", [[
    "",
    m.txAccepted,
  ]]);
  metric(
    "coin_transfers_rejected_total",
    "counter",
    "Transfers refused by this server, by code.",
    Object.entries(m.txRejected).map(([code, n]) => [`{code="${code}"}`, n]),
  );
  metric("coin_transfers_committed_total", "counter", "Transfers in databases this server agreed on.", [[
    "",
    m.txCommitted,
  ]]);
  metric("coin_catchups_sent_total", "counter", "Databases sent to out-of-sync servers (code 1).", [[
    "",
    m.catchupsSent,
  ]]);
  metric("coin_catchups_received_total", "counter", "Databases adopted from another server (code 1).", [[
    "",
    m.catchupsReceived,
  ]]);
  metric("coin_messages_dropped_total", "counter", "Server messages and connections dropped as invalid.", [[
    "",
    m.messagesDropped,
  ]]);
  metric(
    "coin_apply_seconds",
    "gauge",
    "Duration of the last apply, packing included (the database is kept packed).",
    [["", m.lastApplyMs / 1000]],
  );
  metric("coin_hash_seconds", "gauge", "Duration of the last database hash.", [["", m.lastHashMs / 1000]]);
  metric("coin_database_accounts", "gauge", "Accounts in the last agreed database.", [[
    "",
    Number(s.accounts),
  ]]);
  metric("coin_database_bytes", "gauge", "Bytes of the last agreed packed database.", [[
    "",
    Number(s.dbBytes),
  ]]);
  metric("coin_uptime_seconds", "gauge", "Seconds since this server started.", [[
    "",
    Number(s.uptimeMs) / 1000,
  ]]);
  return lines.join("\n") + "\n";
}
