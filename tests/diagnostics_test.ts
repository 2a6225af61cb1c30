// What a server learns about another from its answer to `hello` (docs/protocol.md, 8.1): which parts of
// their network files differ, and how far its clock is. The real link (lib/_peer_link.ts) and the real
// server (lib/server.ts) against a fake peer that answers `hello` as told.

import assert from "node:assert/strict";
import {
  CLOCK_NOISE_MS,
  CLOCK_WARN_MS,
  clockWarnMs,
  estimateClock,
  judgeClock,
  type PeerCheck,
  PeerLink,
} from "../lib/_peer_link.ts";
import { describePeerProblem } from "../lib/events.ts";
import { signerOf } from "../lib/keys.ts";
import { createLogger, type Logger } from "../lib/log.ts";
import { type Network, networkParts, parseNetwork } from "../lib/peers.ts";
import { Server } from "../lib/server.ts";
import { Kind } from "../lib/wire.ts";
import { closedPort, type FakeReply, makeKeyPairs, makeTempDir, startFakeServer } from "./_helpers.ts";

const [k1, k2, holder] = await makeKeyPairs(3) as [
  Awaited<ReturnType<typeof makeKeyPairs>>[0],
  Awaited<ReturnType<typeof makeKeyPairs>>[0],
  Awaited<ReturnType<typeof makeKeyPairs>>[0],
];

/** A network of s1 (this process, at `options.port`) and s2 (at `port`); `genesis` changes its genesis amount. */
function twoServers(
  port: number,
  options: { genesis?: number; startS?: number; port?: number } = {},
): Network {
  return parseNetwork({
    start: options.startS ?? Math.floor(Date.now() / 1000) + 3600,
    interval: 1,
    servers: [
      { name: "s1", key: k1.publicHex, host: "127.0.0.1", port: options.port ?? closedPort() },
      { name: "s2", key: k2.publicHex, host: "127.0.0.1", port },
    ],
    genesis: { [holder.publicHex]: options.genesis ?? 1000 },
  });
}

/** What the fake s2 puts in its answer to `hello`. */
interface Answer {
  network?: Network | undefined;
  clockAheadMs?: number | undefined;
}

/**
 * A fake s2: answers `hello` with what `answer` holds at the time (the test changes it), and `auth` with
 * ok, or by closing the connection when `closeAfterAuth`.
 */
function fakePeer(answer: Answer, options: { closeAfterAuth?: boolean } = {}) {
  return startFakeServer((body): FakeReply => {
    if (body[0] === Kind.hello) {
      const { network, clockAheadMs } = answer;
      return {
        ok: true,
        challenge: new Uint8Array(32).fill(7),
        ...(network === undefined ? {} : { network: { id: network.id, ...networkParts(network) } }),
        ...(clockAheadMs === undefined ? {} : { timeMs: Date.now() + clockAheadMs }),
      };
    }
    if (body[0] === Kind.auth) return options.closeAfterAuth ? "close" : { ok: true };
    return undefined;
  });
}

/** s1's link to s2, reporting what it learns into `checks`. */
function linkTo(network: Network, checks: PeerCheck[]): PeerLink {
  return new PeerLink(network.servers[1]!, {
    networkId: network.id,
    parts: networkParts(network),
    publicKey: k1.publicKey,
    signer: signerOf(k1),
  }, { onCheck: (check) => checks.push(check) });
}

/** Polls `check` every 20 ms for up to `timeoutMs`. */
async function until(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("estimateClock() puts the other clock's reading at the midpoint of the round trip, give or take half of it", () => {
  assert.deepEqual(estimateClock(1_000, 1_010, 8_005), { offsetMs: 7_000, uncertaintyMs: 5 });
  assert.deepEqual(estimateClock(1_000, 1_000, 1_000), { offsetMs: 0, uncertaintyMs: 0 });
  assert.deepEqual(estimateClock(5_000, 5_400, 1_200), { offsetMs: -4_000, uncertaintyMs: 200 });
});

Deno.test("clockWarnMs() is half the skew, at most CLOCK_WARN_MS and at least CLOCK_NOISE_MS", () => {
  assert.equal(clockWarnMs(5_000), CLOCK_WARN_MS);
  assert.equal(clockWarnMs(1_000), 500);
  assert.equal(clockWarnMs(0), CLOCK_NOISE_MS);
  assert.equal(clockWarnMs(600_000), CLOCK_WARN_MS);
});

Deno.test("judgeClock() says off or ok only when the uncertainty cannot change the answer", () => {
  assert.equal(judgeClock({ offsetMs: 7_000, uncertaintyMs: 3 }, 1_000), "off");
  assert.equal(judgeClock({ offsetMs: -7_000, uncertaintyMs: 3 }, 1_000), "off");
  assert.equal(judgeClock({ offsetMs: 12, uncertaintyMs: 3 }, 1_000), "ok");
  assert.equal(judgeClock({ offsetMs: 1_000, uncertaintyMs: 0 }, 1_000), "ok");
  // A slow answer: the clock may be 1.2 s off, or 0.4 s.
  assert.equal(judgeClock({ offsetMs: 800, uncertaintyMs: 400 }, 1_000), "unsure");
  assert.equal(judgeClock({ offsetMs: 1_500, uncertaintyMs: 600 }, 1_000), "unsure");
});

Deno.test("describePeerProblem() says what is wrong in words", () => {
  const who = { peer: "ann", key: "ab".repeat(32) };
  assert.equal(
    describePeerProblem({ problem: "network_differs", ...who, parts: ["genesis"] }),
    "ann's network file differs from mine (genesis): compare peers.json",
  );
  assert.equal(
    describePeerProblem({ problem: "network_differs", ...who, parts: ["start", "interval"] }),
    "ann's network file differs from mine (start, interval): compare peers.json",
  );
  assert.equal(
    describePeerProblem({ problem: "network_differs", ...who, parts: [] }),
    "ann's network file differs from mine: compare peers.json",
  );
  const clock = (aheadMs: number) => describePeerProblem({ problem: "clock_off", ...who, aheadMs });
  assert.equal(clock(7_012), "ann's clock looks about 7 s ahead of mine: check NTP");
  assert.equal(clock(-7_600), "ann's clock looks about 8 s behind mine: check NTP");
  assert.equal(clock(970), "ann's clock looks about 1 s ahead of mine: check NTP");
  assert.equal(clock(-340), "ann's clock looks about 300 ms behind mine: check NTP");
  assert.equal(clock(60), "ann's clock looks about 100 ms ahead of mine: check NTP");
});

Deno.test("network_differs and clock_off are warnings on a terminal; network_same and clock_ok are not", () => {
  const lines: string[] = [];
  const log = createLogger({ write: (l) => lines.push(l), format: "text", server: "s1", colour: true });
  for (const name of ["network_differs", "clock_off", "network_same", "clock_ok"]) {
    log.event(name, { peer: "s2" });
  }
  assert.deepEqual(lines.map((l) => l.startsWith("\x1b[33m")), [true, true, false, false]);
});

Deno.test("a link measures a peer whose clock is 7 s ahead, then proves its key as before", async () => {
  const answer: Answer = { clockAheadMs: 7_000 };
  await using fake = fakePeer(answer);
  const network = answer.network = twoServers(fake.port);
  const checks: PeerCheck[] = [];
  const link = linkTo(network, checks);
  try {
    assert.equal(await link.send([new Uint8Array([0, 0, 0, 1, Kind.peer])]), true);
    assert.equal(checks.length, 1);
    const { networkDiffers, clock } = checks[0]!;
    assert.equal(networkDiffers, undefined);
    assert.ok(clock !== undefined);
    assert.ok(Math.abs(clock.offsetMs - 7_000) <= clock.uncertaintyMs + 2, JSON.stringify(clock));
    assert.ok(clock.uncertaintyMs < 500, JSON.stringify(clock));
    assert.equal(judgeClock(clock, clockWarnMs(network.timing.skewMs)), "off");
    await until("the message arrives", () => fake.requests.length === 3);
    assert.deepEqual(fake.requests.map((r) => r[0]), [Kind.hello, Kind.auth, Kind.peer]);
  } finally {
    await link.close();
  }
});

Deno.test("a link to a peer whose network file has another genesis names it and does not answer the challenge", async () => {
  const answer: Answer = { clockAheadMs: 0 };
  await using fake = fakePeer(answer);
  const mine = twoServers(fake.port);
  answer.network = twoServers(fake.port, { genesis: 999, port: mine.servers[0]!.port });
  const checks: PeerCheck[] = [];
  const link = linkTo(mine, checks);
  try {
    assert.equal(await link.send([new Uint8Array([0, 0, 0, 1, Kind.peer])]), false);
    assert.deepEqual(checks.map((c) => c.networkDiffers), [["genesis"]]);
    assert.equal(judgeClock(checks[0]!.clock!, clockWarnMs(mine.timing.skewMs)), "ok");
    assert.deepEqual(fake.requests.map((r) => r[0]), [Kind.hello], "no auth, no message");
  } finally {
    await link.close();
  }
});

Deno.test("a link to an older peer that sends neither network nor time proves its key and reports the same network", async () => {
  await using fake = fakePeer({});
  const network = twoServers(fake.port);
  const checks: PeerCheck[] = [];
  const link = linkTo(network, checks);
  try {
    assert.equal(await link.send([new Uint8Array([0, 0, 0, 1, Kind.peer])]), true);
    assert.deepEqual(checks, [{ networkDiffers: undefined, clock: undefined }]);
  } finally {
    await link.close();
  }
});

/** s1 as a real Server whose peer s2 is `fake`, with its log lines kept as `event key=value…`. */
async function startS1(network: Network) {
  const dir = await makeTempDir();
  const lines: string[] = [];
  const logger: Logger = {
    event: (name, fields = {}) => {
      const kv = Object.entries(fields).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
      lines.push([name, ...kv].join(" "));
    },
  };
  const server = await Server.start({ network, keyPair: k1, dataDir: dir.path, logger, waitForQuorum: true });
  return {
    server,
    lines,
    [Symbol.asyncDispose]: async () => {
      await server.close();
      await dir[Symbol.asyncDispose]();
    },
  };
}

Deno.test("a server logs a peer's clock once while it stays off, shows it in its status, and says when it is fixed", async () => {
  const answer: Answer = { clockAheadMs: 7_000 };
  // Closing after each proof makes the link connect (and measure) again and again.
  await using fake = fakePeer(answer, { closeAfterAuth: true });
  const network = answer.network = twoServers(fake.port, { startS: Math.floor(Date.now() / 1000) - 1 });
  await using s1 = await startS1(network);
  const hellos = () => fake.requests.filter((r) => r[0] === Kind.hello).length;
  await until("s1 connected to s2 three times", () => hellos() >= 3, 10_000).catch((e) => {
    console.log(s1.lines, fake.requests);
    throw e;
  });
  const off = s1.lines.filter((l) => l.startsWith("clock_off"));
  assert.equal(off.length, 1, s1.lines.join("\n"));
  assert.match(
    off[0]!,
    new RegExp(
      `^clock_off peer=s2 key=${k2.publicHex.slice(0, 16)} ahead_ms=(69|70)\\d\\d uncertainty_ms=\\d+ ` +
        `reason=s2's clock looks about 7 s ahead of mine: check NTP$`,
    ),
  );
  const problems = s1.server.status().problems as Record<string, unknown>[];
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.problem, "clock_off");
  assert.equal(problems[0]!.peer, "s2");
  assert.equal(problems[0]!.key, k2.publicHex);
  assert.ok(Math.abs(Number(problems[0]!.aheadMs) - 7_000) < 100);
  assert.equal(problems[0]!.reason, "s2's clock looks about 7 s ahead of mine: check NTP");

  answer.clockAheadMs = 0;
  await until("s1 says the clock is fixed", () => s1.lines.some((l) => l.startsWith("clock_ok")), 10_000);
  assert.equal(s1.lines.filter((l) => l.startsWith("clock_ok")).length, 1);
  assert.deepEqual(s1.server.status().problems, []);
  assert.ok(!s1.lines.some((l) => l.startsWith("network_differs")), s1.lines.join("\n"));
});

Deno.test("a server logs once that a peer's network file differs, and when it is the same again", async () => {
  const answer: Answer = { clockAheadMs: 0 };
  await using fake = fakePeer(answer, { closeAfterAuth: true });
  const mine = twoServers(fake.port, { startS: Math.floor(Date.now() / 1000) - 1 });
  const port = mine.servers[0]!.port;
  answer.network = twoServers(fake.port, { startS: Math.floor(Date.now() / 1000) - 1, genesis: 5, port });
  await using s1 = await startS1(mine);
  await until("s1 asked s2 three times", () => fake.requests.length >= 3, 10_000);
  assert.ok(fake.requests.every((r) => r[0] === Kind.hello), "never an auth to another network");
  const differs = s1.lines.filter((l) => l.startsWith("network_differs"));
  assert.deepEqual(differs, [
    `network_differs peer=s2 key=${k2.publicHex.slice(0, 16)} parts=genesis ` +
    `reason=s2's network file differs from mine (genesis): compare peers.json`,
  ]);
  assert.deepEqual(
    (s1.server.status().problems as Record<string, unknown>[]).map((p) => [p.problem, p.parts]),
    [["network_differs", ["genesis"]]],
  );
  answer.network = mine;
  await until("s1 says the network is the same", () => s1.lines.some((l) => l.startsWith("network_same")));
  assert.deepEqual(s1.server.status().problems, []);
  assert.ok(!s1.lines.some((l) => l.startsWith("clock_off")), s1.lines.join("\n"));
});

Deno.test("a peer whose answers flap is logged once a minute at most: the impostor at an address cannot fill the log", async () => {
  const answer: Answer = { clockAheadMs: 7_000 };
  // Each hello answered with a clock off or right, in turn, and with its own network or another, in turn.
  let hellos = 0;
  await using fake = startFakeServer((body): FakeReply => {
    if (body[0] === Kind.hello) {
      hellos++;
      const network = hellos % 4 < 2 ? answer.network! : other;
      return {
        ok: true,
        challenge: new Uint8Array(32).fill(7),
        network: { id: network.id, ...networkParts(network) },
        timeMs: Date.now() + (hellos % 2 === 0 ? 7_000 : 0),
      };
    }
    return "close";
  });
  const network = answer.network = twoServers(fake.port, { startS: Math.floor(Date.now() / 1000) - 1 });
  const other = twoServers(fake.port, { genesis: 999, port: network.servers[0]!.port });
  await using s1 = await startS1(network);
  await until("s1 connected to s2 eight times", () => hellos >= 8, 15_000);
  const count = (event: string) => s1.lines.filter((l) => l.startsWith(`${event} `)).length;
  for (const [appeared, ended] of [["clock_off", "clock_ok"], ["network_differs", "network_same"]]) {
    assert.ok(count(appeared!) <= 1, `${appeared} logged ${count(appeared!)} times\n${s1.lines.join("\n")}`);
    assert.ok(count(ended!) <= count(appeared!), `${ended} only after a logged ${appeared}`);
  }
  assert.ok(count("network_differs") === 1, s1.lines.join("\n"));
});
