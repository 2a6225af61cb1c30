// `coin serve` and `coin status` say in words what is wrong between servers: a network file that differs
// (and which part), a clock that is off. Real `coin serve` processes on free 127.0.0.1 ports, against a
// fake server or against each other.

import assert from "node:assert/strict";
import { type KeyPair, writeKeyFile } from "../../lib/keys.ts";
import { type NetworkJson, networkParts, parseNetwork } from "../../lib/peers.ts";
import { Kind } from "../../lib/wire.ts";
import {
  closedPort,
  coinArgs,
  type CoinRun,
  linesOf,
  makeKeyPair,
  makeTempDir,
  runCoin,
  startFakeServer,
} from "../_helpers.ts";

const s1Key = await makeKeyPair(11);
const s2Key = await makeKeyPair(12);
const holder = await makeKeyPair(13);

/** peers.json of s1 and s2 at `ports`; the first frame is far ahead, so nothing halts meanwhile. */
function peersJson(ports: [number, number], genesis = 1000): NetworkJson {
  return {
    start: Math.floor(Date.now() / 1000) + 3600,
    interval: 1,
    servers: [
      { name: "s1", key: s1Key.publicHex, host: "127.0.0.1", port: ports[0] },
      { name: "s2", key: s2Key.publicHex, host: "127.0.0.1", port: ports[1] },
    ],
    genesis: { [holder.publicHex]: genesis },
  };
}

/** A `coin serve` process; its stderr is collected as it comes. */
function serve(
  dir: string,
  name: string,
  key: KeyPair,
  peers: string,
  extra: string[] = [],
  options: { waitForQuorum?: boolean } = {},
) {
  const child = new Deno.Command(Deno.execPath(), {
    args: coinArgs([
      "serve",
      "--peers",
      peers,
      "--key",
      `${dir}/${name}.key`,
      "--data",
      `${dir}/${name}`,
      ...(options.waitForQuorum === false ? [] : ["--wait-for-quorum"]),
      ...extra,
    ]),
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const decoder = new TextDecoder();
  const pump = (async () => {
    for await (const chunk of child.stderr) stderr += decoder.decode(chunk, { stream: true });
  })();
  const stdout = new Response(child.stdout).text();
  const exited = async (): Promise<CoinRun> => {
    const { code } = await child.status;
    await pump;
    return { code, stdout: await stdout, stderr };
  };
  return {
    get stderr() {
      return stderr;
    },
    /** Stops it as an operator would (SIGTERM) and returns how it exited. */
    stop(): Promise<CoinRun> {
      child.kill("SIGTERM");
      return exited();
    },
    /** Waits until it stops by itself. */
    exited,
    written: writeKeyFile(`${dir}/${name}.key`, key),
  };
}

/** Polls `check` every 100 ms for up to 20 s. */
async function until(what: string, check: () => boolean, context: () => string): Promise<void> {
  const end = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}\n${context()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The one line of `stderr` that logs `event`, checked to be the only one. */
function onlyLine(stderr: string, event: string): string {
  const lines = linesOf(stderr).filter((l) => l.split(" ")[2] === event);
  assert.equal(lines.length, 1, `one ${event} line expected:\n${stderr}`);
  return lines[0]!;
}

const TIME = String.raw`\d\d:\d\d:\d\d\.\d{3}`;
const KEY1 = s1Key.publicHex.slice(0, 16);
const KEY2 = s2Key.publicHex.slice(0, 16);

Deno.test("coin serve and coin status say that a peer's network file differs (genesis) and its clock is 7 s ahead", async () => {
  await using dir = await makeTempDir();
  const s1Port = closedPort();
  let hellos = 0;
  // s2 is a fake: another genesis in its network file, a clock 7 s ahead; it answers no status.
  const theirs = parseNetwork(peersJson([s1Port, 1], 999));
  await using fake = startFakeServer((body) => {
    if (body[0] !== Kind.hello) return "close";
    hellos++;
    return {
      ok: true,
      challenge: new Uint8Array(32),
      network: { id: theirs.id, ...networkParts(theirs) },
      timeMs: Date.now() + 7_000,
    };
  });
  const peers = `${dir.path}/peers.json`;
  await Deno.writeTextFile(peers, JSON.stringify(peersJson([s1Port, fake.port])));
  const s1 = serve(dir.path, "s1", s1Key, peers);
  await s1.written;
  let run: CoinRun | undefined;
  try {
    await until(
      "s1 said both, and asked s2 again since",
      () => /clock_off/.test(s1.stderr) && /network_differs/.test(s1.stderr) && hellos >= 3,
      () => s1.stderr,
    );
    const text = await runCoin(["status", "--peers", peers]);
    assert.equal(text.code, 0, text.stderr);
    assert.equal(text.stderr, "");
    const lines = linesOf(text.stdout);
    assert.match(lines[0]!, /^SERVER +ADDRESS +FRAME/);
    assert.match(lines[1]!, new RegExp(`^s1 +127\\.0\\.0\\.1:${s1Port} +\\d+ +(alpha|beta|other)`));
    assert.match(lines[2]!, new RegExp(`^s2 +127\\.0\\.0\\.1:${fake.port} +unreachable: `));
    assert.deepEqual(lines.slice(3), [
      "s1 says: s2's network file differs from mine (genesis): compare peers.json",
      "s1 says: s2's clock looks about 7 s ahead of mine: check NTP",
    ]);

    const json = await runCoin(["status", "--peers", peers, "--json"]);
    assert.equal(json.code, 0, json.stderr);
    assert.equal(json.stderr, "");
    const rows = JSON.parse(json.stdout) as Record<string, unknown>[];
    assert.equal(rows[1]!.problems, null, "s2 did not answer");
    const [differs, clock] = rows[0]!.problems as Record<string, unknown>[];
    assert.deepEqual(differs, {
      problem: "network_differs",
      peer: "s2",
      key: s2Key.publicHex,
      parts: ["genesis"],
      reason: "s2's network file differs from mine (genesis): compare peers.json",
    });
    assert.equal(clock!.problem, "clock_off");
    assert.ok(Math.abs(Number(clock!.aheadMs) - 7_000) < 200, JSON.stringify(clock));
    assert.equal(clock!.reason, "s2's clock looks about 7 s ahead of mine: check NTP");
  } finally {
    run = await s1.stop();
  }
  assert.equal(run.code, 0, run.stderr);
  assert.match(
    onlyLine(run.stderr, "network_differs"),
    new RegExp(
      `^${TIME} s1 network_differs peer=s2 key=${KEY2} parts=genesis ` +
        `reason="s2's network file differs from mine \\(genesis\\): compare peers\\.json"$`,
    ),
  );
  assert.match(
    onlyLine(run.stderr, "clock_off"),
    new RegExp(
      `^${TIME} s1 clock_off peer=s2 key=${KEY2} ahead_ms=(69|70)\\d\\d uncertainty_ms=\\d+ ` +
        `reason="s2's clock looks about 7 s ahead of mine: check NTP"$`,
    ),
  );
  assert.ok(!/dropped_connection|lying/.test(run.stderr), run.stderr);
});

Deno.test("two servers whose peers.json differ only in genesis each say the other's network file differs", async () => {
  await using dir = await makeTempDir();
  const ports: [number, number] = [closedPort(), closedPort()];
  const a = `${dir.path}/a.json`;
  const b = `${dir.path}/b.json`;
  await Deno.writeTextFile(a, JSON.stringify(peersJson(ports)));
  await Deno.writeTextFile(b, JSON.stringify(peersJson(ports, 2000)));
  const s1 = serve(dir.path, "s1", s1Key, a);
  const s2 = serve(dir.path, "s2", s2Key, b);
  await Promise.all([s1.written, s2.written]);
  let runs: CoinRun[] = [];
  try {
    await until(
      "each said it",
      () => /network_differs/.test(s1.stderr) && /network_differs/.test(s2.stderr),
      () => `${s1.stderr}\n${s2.stderr}`,
    );
    const text = await runCoin(["status", "--peers", a]);
    assert.equal(text.code, 0, text.stderr);
    assert.deepEqual(linesOf(text.stdout).slice(3), [
      "s1 says: s2's network file differs from mine (genesis): compare peers.json",
      "s2 says: s1's network file differs from mine (genesis): compare peers.json",
    ]);
    // What coin status saw itself: the two report different network ids.
    assert.match(
      text.stderr,
      /^warning: these servers run different networks \(their peers\.json files differ\): /,
    );
  } finally {
    runs = await Promise.all([s1.stop(), s2.stop()]);
  }
  const [r1, r2] = runs as [CoinRun, CoinRun];
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(r2.code, 0, r2.stderr);
  assert.match(
    onlyLine(r1.stderr, "network_differs"),
    new RegExp(`^${TIME} s1 network_differs peer=s2 key=${KEY2} parts=genesis reason="s2's network file`),
  );
  assert.match(
    onlyLine(r2.stderr, "network_differs"),
    new RegExp(`^${TIME} s2 network_differs peer=s1 key=${KEY1} parts=genesis reason="s1's network file`),
  );
  // Neither sends a proof that would fail: no endless dropped connections.
  assert.ok(!/dropped_connection|lying/.test(r1.stderr + r2.stderr), r1.stderr + r2.stderr);
});

Deno.test("two servers whose clocks are 7 s apart each name the other's clock, ahead or behind", async () => {
  await using dir = await makeTempDir();
  const peers = `${dir.path}/peers.json`;
  await Deno.writeTextFile(peers, JSON.stringify(peersJson([closedPort(), closedPort()])));
  const s1 = serve(dir.path, "s1", s1Key, peers);
  const s2 = serve(dir.path, "s2", s2Key, peers, ["--test-clock-offset-ms", "7000"]);
  await Promise.all([s1.written, s2.written]);
  let runs: CoinRun[] = [];
  try {
    await until(
      "each said it",
      () => /clock_off/.test(s1.stderr) && /clock_off/.test(s2.stderr),
      () => `${s1.stderr}\n${s2.stderr}`,
    );
    const text = await runCoin(["status", "--peers", peers]);
    assert.equal(text.code, 0, text.stderr);
    assert.equal(text.stderr, "");
    assert.deepEqual(linesOf(text.stdout).slice(3), [
      "s1 says: s2's clock looks about 7 s ahead of mine: check NTP",
      "s2 says: s1's clock looks about 7 s behind mine: check NTP",
    ]);
  } finally {
    runs = await Promise.all([s1.stop(), s2.stop()]);
  }
  const [r1, r2] = runs as [CoinRun, CoinRun];
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(r2.code, 0, r2.stderr);
  assert.match(
    onlyLine(r1.stderr, "clock_off"),
    new RegExp(
      `^${TIME} s1 clock_off peer=s2 key=${KEY2} ahead_ms=(69|70)\\d\\d uncertainty_ms=\\d+ reason=`,
    ),
  );
  assert.match(
    onlyLine(r2.stderr, "clock_off"),
    new RegExp(
      `^${TIME} s2 clock_off peer=s1 key=${KEY1} ahead_ms=-(69|70)\\d\\d uncertainty_ms=\\d+ reason=`,
    ),
  );
  assert.ok(!/network_differs/.test(r1.stderr + r2.stderr));
});

Deno.test("a server that stops for want of a quorum names the clock that is off in its last line, exit 3", async () => {
  await using dir = await makeTempDir();
  const s1Port = closedPort();
  const at = (s2Port: number) => ({
    ...peersJson([s1Port, s2Port]),
    start: Math.floor(Date.now() / 1000),
    interval: 0.2,
  });
  // s2 is a fake on the same network (addresses are not part of it), with a clock 7 s ahead, that never
  // completes a connection.
  const same = parseNetwork(at(1));
  const network = { id: same.id, ...networkParts(same) };
  await using fake = startFakeServer((body) =>
    body[0] === Kind.hello
      ? { ok: true, challenge: new Uint8Array(32), network, timeMs: Date.now() + 7_000 }
      : "close"
  );
  const peers = `${dir.path}/peers.json`;
  await Deno.writeTextFile(peers, JSON.stringify(at(fake.port)));
  const s1 = serve(dir.path, "s1", s1Key, peers, [], { waitForQuorum: false });
  await s1.written;
  const run = await s1.exited();
  assert.equal(run.code, 3, run.stderr);
  const last = linesOf(run.stderr).at(-1)!;
  assert.match(last, /^coin: No quorum since this server started .*; stopping\. /);
  assert.match(last, /\. s2's clock looks about 7 s ahead of mine: check NTP$/);
});
