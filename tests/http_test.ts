// `coin serve --http`: /health, /status and /metrics of a real server, in consensus and once its two
// peers are gone, on the loopback address by default; and the JSON log lines of that server.

import assert from "node:assert/strict";
import { Kind, ServerConnection } from "../lib/client.ts";
import { DB_HEADER_BYTES, DB_RECORD_BYTES } from "../lib/ledger.ts";
import { assertOneLineError, linesOf, runCoin } from "./_helpers.ts";
import { type ServerProcess, TestNetwork } from "./e2e/_network.ts";

/** The JSON log lines of a server run with `--log-format json` (TestNetwork's own markers left out). */
function jsonLines(server: ServerProcess): string[] {
  return linesOf(server.log).filter((l) => !l.startsWith("--- "));
}

function jsonEvents(server: ServerProcess): Record<string, unknown>[] {
  return jsonLines(server).flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

/**
 * Waits until the network's first frame has begun ("start" in peers.json, unix seconds): before it the
 * servers refuse transfers (not_started) and nothing commits.
 */
async function untilStarted(net: TestNetwork): Promise<void> {
  const { start } = JSON.parse(await Deno.readTextFile(net.peersFile)) as { start: number };
  const wait = start * 1000 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

/** GET (or another method) on the server's HTTP endpoint; the body is always read. */
async function http(
  port: number,
  path: string,
  method = "GET",
): Promise<{ status: number; type: string | null; allow: string | null; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
  return {
    status: res.status,
    type: res.headers.get("content-type"),
    allow: res.headers.get("allow"),
    body: await res.text(),
  };
}

/** One sample of the Prometheus text format. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format strictly: every line a HELP, a TYPE or a sample of a declared metric. */
function parsePrometheus(text: string): { samples: Sample[]; types: Map<string, string> } {
  assert.ok(text.endsWith("\n"), "the exposition ends with a newline");
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const samples: Sample[] = [];
  for (const line of linesOf(text)) {
    let m;
    if ((m = /^# HELP ([a-z_][a-z0-9_]*) \S.*$/.exec(line))) {
      helps.add(m[1]!);
    } else if ((m = /^# TYPE ([a-z_][a-z0-9_]*) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      assert.ok(!types.has(m[1]!), `one TYPE line for ${m[1]}`);
      types.set(m[1]!, m[2]!);
    } else if ((m = /^([a-z_][a-z0-9_]*)(?:\{(.*)\})? (\S+)$/.exec(line))) {
      const [, name, labelText, valueText] = m;
      assert.ok(types.has(name!) && helps.has(name!), `${name} is declared before its sample: ${line}`);
      const labels: Record<string, string> = {};
      for (const pair of (labelText ?? "").split(",").filter((p) => p !== "")) {
        const lm = /^([a-z_][a-z0-9_]*)="((?:[^"\\]|\\.)*)"$/.exec(pair);
        assert.ok(lm, `label ${pair} in ${line}`);
        labels[lm[1]!] = lm[2]!;
      }
      const value = Number(valueText);
      assert.ok(!Number.isNaN(value), `a number in ${line}`);
      if (types.get(name!) === "counter") assert.ok(value >= 0, `a counter is not negative: ${line}`);
      samples.push({ name: name!, labels, value });
    } else {
      assert.fail(`not a Prometheus line: ${JSON.stringify(line)}`);
    }
  }
  return { samples, types };
}

function sampleValue(
  samples: Sample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  return samples.find((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
}

Deno.test("coin serve --http answers /health, /status and /metrics in and out of consensus", async (t) => {
  const net = await TestNetwork.create({ servers: 3, interval: 1 });
  const [s1, s2, s3] = net.servers as [ServerProcess, ServerProcess, ServerProcess];
  s1.extraArgs = ["--http", "0", "--wait-for-quorum", "--log-format", "json"];
  let port = 0;
  try {
    await t.step("--http 0 binds a free port on 127.0.0.1 and logs it", async () => {
      for (const s of net.servers) s.start();
      const listen = await net.until("s1 logs its http event", () => {
        const event = jsonEvents(s1).find((e) => e.event === "http");
        return event === undefined ? undefined : String(event.listen);
      });
      const m = /^127\.0\.0\.1:(\d+)$/.exec(listen);
      assert.ok(m, `the default --http-host is the loopback address: ${listen}`);
      port = Number(m[1]);
      assert.ok(port > 0);
    });

    await t.step("in consensus: /health is 200 and /status and /metrics say so", async () => {
      const alice = net.accounts[0]!;
      const bob = net.accounts[1]!;
      await untilStarted(net);
      const [sent] = await Promise.all([
        net.send("7", { wait: true }),
        net.until("/health is 200", async () => (await http(port, "/health")).status === 200),
      ]);
      assert.equal(sent.code, 0, sent.stderr + net.logs());
      assert.notEqual(alice.publicHex, bob.publicHex);

      const health = await http(port, "/health");
      assert.equal(health.status, 200, health.body);
      assert.match(health.body, /^certified frame \d+\n$/);
      assert.match(health.type ?? "", /^text\/plain/);

      // A malformed transfer sent to s1 itself is refused there, and counted by code.
      const conn = await ServerConnection.open("127.0.0.1", net.ports[0]!);
      try {
        const refused = await conn.request(Kind.submit, new Uint8Array(3));
        assert.equal(refused.code, "malformed");
      } finally {
        await conn.close();
      }

      const status = await net.until("/status shows the transfer and 3/3", async () => {
        const res = await http(port, "/status");
        assert.equal(res.status, 200, res.body);
        assert.match(res.type ?? "", /^application\/json/);
        const json = JSON.parse(res.body) as Record<string, unknown>;
        return json.accounts === 2 && json.agree === "3/3" ? json : undefined;
      });
      assert.equal(status.server, "s1");
      assert.equal(typeof status.frame, "number");
      assert.ok(["alpha", "beta", "other"].includes(String(status.role)), String(status.role));
      assert.match(String(status.committedHash), /^[0-9a-f]{64}$/);
      assert.ok((status.committedFrame as number) <= (status.frame as number));
      assert.equal(status.inSync, true);
      assert.equal(status.noQuorum, false);
      assert.equal(status.peersSeen, 3);
      assert.equal(status.dbBytes, DB_HEADER_BYTES + 2 * DB_RECORD_BYTES, "a header and two accounts");
      assert.equal(status.supply, net.genesisAmount);
      assert.ok((status.uptimeMs as number) > 0);
      assert.deepEqual(status.health, { ok: true, reason: (status.health as { reason: string }).reason });
      const metrics = status.metrics as Record<string, unknown>;
      assert.ok((metrics.framesAgreed as number) >= 1);
      assert.ok((metrics.txCommitted as number) >= 1);
      assert.equal((metrics.txRejected as Record<string, number>).malformed, 1);

      const res = await http(port, "/metrics");
      assert.equal(res.status, 200);
      assert.equal(res.type, "text/plain; version=0.0.4; charset=utf-8");
      const { samples, types } = parsePrometheus(res.body);
      for (
        const name of [
          "coin_frames_processed_total",
          "coin_frames_agreed_total",
          "coin_frames_missed_total",
          "coin_agreement_servers",
          "coin_servers",
          "coin_in_sync",
          "coin_transfers_accepted_total",
          "coin_transfers_rejected_total",
          "coin_transfers_committed_total",
          "coin_catchups_sent_total",
          "coin_catchups_received_total",
          "coin_apply_seconds",
          "coin_hash_seconds",
          "coin_database_accounts",
          "coin_database_bytes",
          "coin_uptime_seconds",
        ]
      ) assert.ok(types.has(name), `/metrics has ${name}`);
      for (const [name, type] of types) {
        assert.equal(type === "counter", name.endsWith("_total"), `${name} is a ${type}`);
      }
      assert.equal(sampleValue(samples, "coin_servers"), 3);
      assert.equal(sampleValue(samples, "coin_in_sync"), 1);
      assert.equal(sampleValue(samples, "coin_agreement_servers"), 3);
      assert.equal(sampleValue(samples, "coin_database_accounts"), 2);
      assert.equal(sampleValue(samples, "coin_database_bytes"), status.dbBytes);
      assert.equal(sampleValue(samples, "coin_transfers_rejected_total", { code: "malformed" }), 1);
      assert.ok(sampleValue(samples, "coin_frames_agreed_total")! >= 1);
      assert.ok(sampleValue(samples, "coin_transfers_committed_total")! >= 1);
      assert.ok(sampleValue(samples, "coin_uptime_seconds")! > 0);
    });

    await t.step("other paths are 404, other methods 405, HEAD answers without a body", async () => {
      const [missing, post, put, head] = await Promise.all([
        http(port, "/nope"),
        http(port, "/health", "POST"),
        http(port, "/status", "PUT"),
        http(port, "/health", "HEAD"),
      ]);
      assert.equal(missing.status, 404);
      assert.match(missing.body, /\/health/);
      for (const r of [post, put]) {
        assert.equal(r.status, 405);
        assert.equal(r.allow, "GET, HEAD");
      }
      assert.equal(head.status, 200);
      assert.equal(head.body, "");
    });

    await t.step(
      "without its two peers s1 stays up, /health turns 503 and /status shows noQuorum",
      async () => {
        await Promise.all([s2.stop(), s3.stop()]);
        const unhealthy = await net.until("/health is 503", async () => {
          const r = await http(port, "/health");
          return r.status === 503 ? r : undefined;
        });
        assert.match(unhealthy.body, /^\S.*\n$/, "a reason");
        const status = await net.until("/status shows noQuorum", async () => {
          const json = JSON.parse((await http(port, "/status")).body) as Record<string, unknown>;
          return json.noQuorum === true ? json : undefined;
        }, 15_000);
        assert.equal(status.inSync, false);
        assert.equal((status.health as { ok: boolean }).ok, false);
        const health = await http(port, "/health");
        assert.equal(health.status, 503);
        assert.equal(health.body, "no quorum of servers agrees (waiting for quorum)\n");
        const { samples } = parsePrometheus((await http(port, "/metrics")).body);
        assert.equal(sampleValue(samples, "coin_in_sync"), 0);
        assert.ok(sampleValue(samples, "coin_frames_missed_total")! >= 3);
        assert.ok(s1.running, "--wait-for-quorum kept s1 running");
      },
    );

    await t.step("an --http port already in use is one error line and exit 1", async () => {
      s2.start(["--http", String(port)]);
      const exit = await s2.waitExit(15_000);
      assert.equal(exit.code, 1, s2.log);
      const lines = linesOf(s2.log).filter((l) => l.startsWith("coin: "));
      assert.equal(lines.length, 1, s2.log);
      assert.match(lines[0]!, new RegExp(`^coin: Cannot serve HTTP on port ${port}: `));
      assert.doesNotMatch(s2.log, /^\s+at /m);
    });

    await t.step(
      "--log-format json: every line s1 wrote is one JSON object with time, server, event",
      async () => {
        const status = await s1.stop("SIGTERM");
        assert.equal(status.code, 0, s1.log);
        const lines = jsonLines(s1);
        assert.ok(lines.length >= 5, s1.log);
        for (const line of lines) {
          const e = JSON.parse(line) as Record<string, unknown>;
          assert.match(String(e.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, line);
          assert.ok(Math.abs(Date.parse(String(e.time)) - Date.now()) < 120_000, line);
          assert.equal(e.server, "s1", line);
          assert.match(String(e.event), /^[a-z_]+$/, line);
        }
        const events = jsonEvents(s1).map((e) => e.event);
        for (const name of ["start", "http", "consensus", "no_quorum", "stopped"]) {
          assert.ok(events.includes(name), `s1 logged ${name}: ${events.join(" ")}`);
        }
        assert.equal(events.at(-1), "stopped");
        const consensus = jsonEvents(s1).find((e) => e.event === "consensus")!;
        assert.equal(typeof consensus.frame, "number", "numbers stay numbers in JSON");
        assert.match(String(consensus.agree), /^\d\/3$/);
      },
    );
  } finally {
    await net.close();
  }
});

Deno.test("coin serve refuses a bad --http or --log-format before it starts anything", async () => {
  const net = await TestNetwork.create({ servers: 1, interval: 1 });
  try {
    const base = ["serve", "--peers", net.peersFile, "--key", `${net.dir}/s1.key`, "--data", `${net.dir}/s1`];
    const runs = await Promise.all([
      runCoin([...base, "--http", "abc"]),
      runCoin([...base, "--http", "65536"]),
      runCoin([...base, "--log-format", "xml"]),
      runCoin([...base, "--http-hots", "0.0.0.0"]),
    ]);
    assertOneLineError(runs[0]!, 2, /^coin: Invalid --http "abc" for "coin serve": expected a whole number$/);
    assertOneLineError(runs[1]!, 2, /^coin: Invalid --http "65536": expected a port from 0 to 65535$/);
    assertOneLineError(
      runs[2]!,
      2,
      /^coin: Invalid --log-format "xml" for "coin serve": expected text or json$/,
    );
    assertOneLineError(runs[3]!, 2, /did you mean --http-host\?/);
    // Nothing was started: no archive, and the server's port is still free.
    await assert.rejects(Deno.stat(`${net.dir}/s1/archive`), Deno.errors.NotFound);
    const listener = Deno.listen({ hostname: "127.0.0.1", port: net.ports[0]! });
    listener.close();
  } finally {
    await net.close();
  }
});
