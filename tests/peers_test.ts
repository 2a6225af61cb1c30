// Tests of lib/peers.ts: a valid network file, its defaults, the majority, the start frame, and a
// CoinError naming the field for each way the file can be wrong.

import assert from "node:assert/strict";
import { fromHex } from "../lib/_bytes.ts";
import { encodeAddress } from "../lib/address.ts";
import { CoinError } from "../lib/errors.ts";
import {
  checkHost,
  differingParts,
  findPeer,
  MAX_SERVERS,
  MAX_START_S,
  NETWORK_PARTS,
  type NetworkJson,
  networkParts,
  parseNetwork,
  readNetwork,
} from "../lib/peers.ts";
import { sha256Hex } from "../lib/hash.ts";
import { MAX_AMOUNT } from "../lib/tx.ts";
import { assertRejectsError, assertThrowsError, makeTempDir } from "./_helpers.ts";

function key(n: number): string {
  return n.toString(16).padStart(2, "0").repeat(32);
}

/** Unix seconds of the first frame in these tests (a whole second, so frame START_S with interval 1). */
const START_S = 1_700_000_000;

/** A valid network of `servers` servers on localhost, two funded accounts. */
function networkJson(servers = 3): NetworkJson {
  return {
    start: START_S,
    interval: 1,
    servers: Array.from(
      { length: servers },
      (_, i) => ({ name: `s${i}`, key: key(i + 1), host: "127.0.0.1", port: 7000 + i }),
    ),
    genesis: { [key(0xa1)]: 1000, [key(0xa2)]: 500 },
  };
}

/** Asserts that `json` is refused with a one-line CoinError whose message matches `pattern`. */
function refuses(json: unknown, pattern: RegExp): void {
  const err = assertThrowsError(() => parseNetwork(json, "net.json"), CoinError, pattern);
  assert.ok(err.message.startsWith(`Invalid network file "net.json": `), err.message);
  assert.ok(!err.message.includes("\n"));
}

Deno.test("parseNetwork() reads servers in order, the timing and the genesis", () => {
  const network = parseNetwork({ ...networkJson(), skew: 2, blackout: 0.25 });
  assert.equal(network.intervalMs, 1000);
  assert.deepEqual(network.timing, { intervalMs: 1000, skewMs: 2000, blackoutMs: 250, servers: 3 });
  assert.deepEqual(network.servers.map((s) => [s.index, s.name, s.keyHex, s.host, s.port]), [
    [0, "s0", key(1), "127.0.0.1", 7000],
    [1, "s1", key(2), "127.0.0.1", 7001],
    [2, "s2", key(3), "127.0.0.1", 7002],
  ]);
  assert.deepEqual(network.servers[0]!.key, new Uint8Array(32).fill(1));
  assert.deepEqual(network.genesis, [[key(0xa1), 1000], [key(0xa2), 500]]);
  assert.equal(network.supply, 1500);
  assert.equal(network.startFrame, START_S, "with a 1 s interval the start second is the frame");
});

Deno.test('parseNetwork() refuses a file without "start", naming the field and what it means', () => {
  const { start: _, ...json } = networkJson();
  const err = assertThrowsError(() => parseNetwork(json, "net.json"), CoinError, /"start"/);
  assert.equal(
    err.message,
    'Invalid network file "net.json": "start" must be the unix time in seconds at which the network\'s ' +
      "first frame begins (got undefined); coin devnet writes one",
  );
});

Deno.test('parseNetwork() refuses a "start" that is not a number of seconds in range', () => {
  for (const bad of ["1700000000", null, true, [1], NaN, Infinity, -1, MAX_START_S + 1]) {
    const err = assertThrowsError(
      () => parseNetwork({ ...networkJson(), start: bad }),
      CoinError,
      /^Invalid network file "peers\.json": "start" must be the unix time in seconds at which /,
    );
    assert.ok(err.message.includes(`(got ${JSON.stringify(bad)})`), err.message);
  }
  assert.equal(parseNetwork({ ...networkJson(), start: 0 }).startFrame, 0, "0 is the epoch, allowed");
  assert.equal(parseNetwork({ ...networkJson(), start: MAX_START_S }).startFrame, MAX_START_S);
});

Deno.test('parseNetwork() rounds "start" up to the next frame boundary', () => {
  const startFrame = (start: number, interval: number) =>
    parseNetwork({ ...networkJson(), start, interval }).startFrame;
  // Interval 1 s: frame k starts at k s.
  assert.equal(startFrame(START_S, 1), START_S, "a boundary stays");
  assert.equal(startFrame(START_S + 0.001, 1), START_S + 1, "a millisecond past it moves to the next");
  assert.equal(startFrame(START_S + 0.999, 1), START_S + 1);
  // Interval 4 s: frame k starts at 4k s.
  assert.equal(startFrame(1_000, 4), 250);
  assert.equal(startFrame(1_001, 4), 251);
  assert.equal(startFrame(1_003.5, 4), 251);
  // Interval 0.25 s: frame k starts at k / 4 s.
  assert.equal(startFrame(10.1, 0.25), 41);
  for (const [start, interval] of [[START_S + 0.3, 1], [1_001, 4], [7.77, 0.25], [5_000, 3_600]]) {
    const frame = startFrame(start!, interval!);
    const frameStartMs = frame * interval! * 1000;
    assert.ok(frameStartMs >= start! * 1000, `frame ${frame} starts at or after ${start}`);
    assert.ok(frameStartMs - interval! * 1000 < start! * 1000, `frame ${frame} is the first such frame`);
  }
});

Deno.test("parseNetwork() defaults the skew to 5 s and the blackout to a tenth of the interval", () => {
  const network = parseNetwork({ ...networkJson(), interval: 2 });
  assert.equal(network.timing.skewMs, 5000);
  assert.equal(network.timing.blackoutMs, 200);
});

Deno.test("parseNetwork() lowercases keys and names unnamed servers by their key", () => {
  const json = networkJson(1);
  json.servers[0] = { key: "AB".repeat(32), host: "example.org", port: 443 };
  json.genesis = { ["CD".repeat(32)]: 1 };
  const network = parseNetwork(json);
  assert.equal(network.servers[0]!.keyHex, "ab".repeat(32));
  assert.equal(network.servers[0]!.name, "abababab");
  assert.deepEqual(network.genesis, [["cd".repeat(32), 1]]);
});

Deno.test("parseNetwork() accepts an empty genesis", () => {
  const network = parseNetwork({ ...networkJson(), genesis: {} });
  assert.deepEqual(network.genesis, []);
  assert.equal(network.supply, 0);
});

Deno.test("parseNetwork() sets the quorum to more than half of the servers when no liar is tolerated", () => {
  const quorum = (n: number) => parseNetwork(networkJson(n)).quorum;
  assert.equal(quorum(1), 1);
  assert.equal(quorum(2), 2);
  assert.equal(quorum(3), 2);
  assert.equal(quorum(4), 3);
  assert.equal(quorum(5), 3);
  assert.equal(quorum(7), 4);
  assert.equal(parseNetwork(networkJson(3)).dishonest, 0);
});

Deno.test("parseNetwork() sets the quorum to floor((n + dishonest) / 2) + 1", () => {
  const quorum = (n: number, dishonest: number) => parseNetwork({ ...networkJson(n), dishonest }).quorum;
  assert.equal(quorum(4, 1), 3);
  assert.equal(quorum(5, 1), 4);
  assert.equal(quorum(7, 2), 5);
  assert.equal(quorum(10, 3), 7);
});

Deno.test("parseNetwork() refuses a dishonest count whose quorum could never be reached with them silent", () => {
  assertThrowsError(
    () => parseNetwork({ ...networkJson(3), dishonest: 1 }),
    CoinError,
    /^Invalid network file "peers\.json": "dishonest": 1 cannot be tolerated by 3 servers: a decision needs 3 votes and only 2 remain with 1 silent \(4 servers at least\)$/,
  );
  assertThrowsError(() => parseNetwork({ ...networkJson(6), dishonest: 2 }), CoinError, /needs 5 votes/);
  for (const bad of [-1, 1.5, "1", null]) {
    assertThrowsError(
      () => parseNetwork({ ...networkJson(4), dishonest: bad }),
      CoinError,
      /"dishonest" must be a whole number from 0/,
    );
  }
});

Deno.test("the network id covers keys, their order, genesis, timing and dishonest, not addresses or names", () => {
  const base = networkJson(3);
  const id = (json: unknown) => parseNetwork(json).id;
  assert.match(id(base), /^[0-9a-f]{64}$/);
  assert.equal(id(base), id(structuredClone(base)));
  const moved = structuredClone(base);
  moved.servers[0]!.host = "10.1.2.3";
  moved.servers[0]!.port = 4000;
  moved.servers[0]!.name = "renamed";
  assert.equal(id(moved), id(base));
  const reordered = structuredClone(base);
  reordered.servers.reverse();
  for (const s of reordered.servers) s.port += 100; // addresses stay unique
  assert.notEqual(id(reordered), id(base));
  assert.notEqual(id({ ...base, interval: base.interval * 2 }), id(base));
  assert.notEqual(id({ ...base, skew: 7 }), id(base));
  assert.notEqual(id({ ...base, genesis: { ["ab".repeat(32)]: 1 } }), id(base));
  assert.notEqual(id({ ...networkJson(4), dishonest: 1 }), id(networkJson(4)));
});

Deno.test('the network id covers the start frame: a later "start" is another network', () => {
  const base = networkJson(3);
  const id = (json: unknown) => parseNetwork(json).id;
  assert.notEqual(id({ ...base, start: START_S + 1 }), id(base));
  assert.notEqual(id({ ...base, start: START_S - 10 }), id(base));
  // What counts is the frame: two starts rounded up to the same frame are the same network.
  assert.equal(id({ ...base, start: START_S - 0.5 }), id(base));
  assert.equal(id({ ...base, start: START_S - 0.001 }), id(base));
});

Deno.test("networkParts() hashes each part with its name, as docs/protocol.md section 7 writes it", () => {
  const network = parseNetwork({ ...networkJson(3), skew: 2, blackout: 0.25, dishonest: 0 });
  const parts = networkParts(network);
  assert.deepEqual(Object.keys(parts), [...NETWORK_PARTS]);
  const hash = (name: string, json: string) =>
    sha256Hex(new TextEncoder().encode(`coin-network-part-v1\n${name}\n${json}`));
  assert.equal(parts.servers, hash("servers", JSON.stringify([key(1), key(2), key(3)])));
  assert.equal(parts.genesis, hash("genesis", `[["${key(0xa1)}",1000],["${key(0xa2)}",500]]`));
  assert.equal(parts.start, hash("start", String(START_S * 1000)));
  assert.equal(parts.interval, hash("interval", "1000"));
  assert.equal(parts.skew, hash("skew", "2000"));
  assert.equal(parts.blackout, hash("blackout", "250"));
  assert.equal(parts.dishonest, hash("dishonest", "0"));
  // Domain-separated: two parts with equal values still hash differently.
  const same = networkParts(parseNetwork({ ...networkJson(3), skew: 1, blackout: 0.5 }));
  assert.notEqual(same.interval, same.skew);
});

Deno.test("differingParts() names exactly the parts of peers.json that differ, and they cover the network id", () => {
  const base = networkJson(4);
  const parts = (json: unknown) => networkParts(parseNetwork(json));
  const differ = (json: unknown) => differingParts(parts(base), parts(json));
  const reordered = structuredClone(base);
  reordered.servers.reverse();
  for (const s of reordered.servers) s.port += 100;
  const cases: [unknown, string[]][] = [
    [structuredClone(base), []],
    [{ ...base, genesis: { [key(0xa1)]: 1001, [key(0xa2)]: 500 } }, ["genesis"]],
    [reordered, ["servers"]],
    // START_S is even: the first frame starts at the same ms. The default blackout is a tenth of the interval.
    [{ ...base, interval: 2 }, ["interval", "blackout"]],
    [{ ...base, blackout: 0.1, interval: 2 }, ["interval"]],
    [{ ...base, interval: 2, start: START_S + 1 }, ["start", "interval", "blackout"]],
    [{ ...base, skew: 7 }, ["skew"]],
    [{ ...base, blackout: 0.3 }, ["blackout"]],
    [{ ...base, dishonest: 1 }, ["dishonest"]],
    [{ ...base, start: START_S + 5, genesis: {} }, ["genesis", "start"]],
  ];
  for (const [json, expected] of cases) {
    assert.deepEqual(differ(json), expected, JSON.stringify(json));
    // Two ids differ exactly when a part does.
    assert.equal(parseNetwork(json).id !== parseNetwork(base).id, expected.length > 0, JSON.stringify(json));
  }
  // Names and addresses are in no part, as in no id.
  const moved = structuredClone(base);
  moved.servers[0]!.host = "10.1.2.3";
  moved.servers[0]!.name = "renamed";
  assert.deepEqual(differ(moved), []);
});

Deno.test("differingParts() skips parts another server left out or sent as something else than text", () => {
  const mine = networkParts(parseNetwork(networkJson(3)));
  assert.deepEqual(differingParts(mine, undefined), []);
  assert.deepEqual(differingParts(mine, "genesis"), []);
  assert.deepEqual(differingParts(mine, { id: "ab", genesis: 7, servers: null, skew: "00" }), ["skew"]);
  assert.deepEqual(differingParts(mine, { ...mine, dishonest: "11".repeat(32) }), ["dishonest"]);
});

Deno.test("parseNetwork() accepts genesis amounts summing to exactly 2^53 - 1", () => {
  const network = parseNetwork({
    ...networkJson(),
    genesis: { [key(0xa1)]: MAX_AMOUNT - 1, [key(0xa2)]: 1 },
  });
  assert.equal(network.supply, MAX_AMOUNT);
});

Deno.test("parseNetwork() refuses a wrong network file with a CoinError naming the field", async (t) => {
  const valid = networkJson();
  // A key with letters in it, so the same key in upper case can be offered as a duplicate.
  valid.servers[1]!.key = key(0xab);
  const withServer = (i: number, change: Record<string, unknown>) => ({
    ...valid,
    servers: valid.servers.map((s, j) => (j === i ? { ...s, ...change } : s)),
  });
  const cases: [string, unknown, RegExp][] = [
    ["not an object", [], /it is not a JSON object/],
    ["null", null, /it is not a JSON object/],
    ["an unknown field", { ...valid, intervall: 1 }, /unknown field "intervall"/],
    ["a missing interval", { ...valid, interval: undefined }, /"interval" must be a number of seconds/],
    ["an interval that is a string", { ...valid, interval: "1" }, /"interval" must be a number of seconds/],
    ["an interval below 0.2 s", { ...valid, interval: 0.1 }, /"interval" must be from 0.2 to 3600 seconds/],
    [
      "an interval above an hour",
      { ...valid, interval: 3601 },
      /"interval" must be from 0.2 to 3600 seconds/,
    ],
    ["a negative skew", { ...valid, skew: -1 }, /"skew" must be from 0 to 600 seconds/],
    [
      "a blackout above half the interval",
      { ...valid, blackout: 0.6 },
      /"blackout" must be from 0 to 0.5 seconds/,
    ],
    ["no servers", { ...valid, servers: [] }, /"servers" must be a non-empty list/],
    ["servers that are not a list", { ...valid, servers: {} }, /"servers" must be a non-empty list/],
    [
      "too many servers",
      { ...valid, servers: networkJson(MAX_SERVERS + 1).servers },
      /"servers" has more than 64 entries/,
    ],
    [
      "a server that is not an object",
      { ...valid, servers: [...valid.servers, 5] },
      /servers\[3\] must be an object/,
    ],
    [
      "a key that is not hex",
      withServer(1, { key: "zz".repeat(32) }),
      /servers\[1\]\.key must be 64 hex digits/,
    ],
    ["a short key", withServer(1, { key: key(9).slice(2) }), /servers\[1\]\.key must be 64 hex digits/],
    ["a missing key", withServer(0, { key: undefined }), /servers\[0\]\.key must be 64 hex digits/],
    [
      "a duplicate key",
      withServer(2, { key: key(1) }),
      /servers\[2\]\.key duplicates an earlier server's key/,
    ],
    [
      "a duplicate key in another case",
      withServer(2, { key: key(0xab).toUpperCase() }),
      /servers\[2\]\.key duplicates an earlier server's key/,
    ],
    ["an empty host", withServer(0, { host: "" }), /servers\[0\]\.host "" must be a host name or address/],
    [
      "a host with a port",
      withServer(0, { host: "127.0.0.1:47401" }),
      /^Invalid network file "net\.json": servers\[0\]\.host "127\.0\.0\.1:47401" holds a port: give only the host name or address \(the port goes in "port"\)$/,
    ],
    [
      "a host name with a port",
      withServer(0, { host: "ann.example.org:7001" }),
      /servers\[0\]\.host "ann\.example\.org:7001" holds a port/,
    ],
    [
      "a URL as host",
      withServer(1, { host: "http://ann.example.org" }),
      /servers\[1\]\.host "http:\/\/ann\.example\.org" is a URL/,
    ],
    ["a bracketed IPv6 host", withServer(1, { host: "[::1]" }), /servers\[1\]\.host "\[::1\]" has brackets/],
    [
      "a host with a space",
      withServer(1, { host: "ann example" }),
      /servers\[1\]\.host "ann example" is not a host name or address/,
    ],
    ["a host with a path", withServer(1, { host: "ann.org/coin" }), /is not a host name or address/],
    ["an IPv4 address out of range", withServer(1, { host: "10.0.0.256" }), /is not an IPv4 address/],
    [
      "a repeated name",
      withServer(2, { name: "s0" }),
      /^Invalid network file "net\.json": servers\[2\]\.name "s0" is already the name of servers\[0\]$/,
    ],
    [
      "a port of 0",
      withServer(1, { port: 0 }),
      /servers\[1\]\.port must be an integer from 1 to 65535 \(got 0\)/,
    ],
    ["a port above 65535", withServer(1, { port: 65536 }), /servers\[1\]\.port .*\(got 65536\)/],
    ["a fractional port", withServer(1, { port: 80.5 }), /servers\[1\]\.port .*\(got 80.5\)/],
    ["a port that is a string", withServer(1, { port: "80" }), /servers\[1\]\.port .*\(got "80"\)/],
    ["a repeated address", withServer(1, { port: 7000 }), /servers\[1\] repeats the address 127.0.0.1:7000/],
    ["a long name", withServer(0, { name: "n".repeat(65) }), /servers\[0\]\.name must be a string/],
    ["a genesis that is a list", { ...valid, genesis: [] }, /"genesis" must be an object/],
    [
      "a genesis account that is not hex",
      { ...valid, genesis: { alice: 5 } },
      /genesis account "alice" is not 64/,
    ],
    [
      "a genesis account twice",
      { ...valid, genesis: { [key(0xab)]: 1, [key(0xab).toUpperCase()]: 2 } },
      new RegExp(`genesis account ${key(0xab)} appears twice`),
    ],
    [
      "a zero genesis amount",
      { ...valid, genesis: { [key(0xa1)]: 0 } },
      /genesis amount of a1a1.* must be a whole/,
    ],
    [
      "a fractional genesis amount",
      { ...valid, genesis: { [key(0xa1)]: 1.5 } },
      /genesis amount of .* whole number/,
    ],
    [
      "a genesis amount as text",
      { ...valid, genesis: { [key(0xa1)]: "5" } },
      /genesis amount of .* whole number/,
    ],
    [
      "genesis amounts summing above 2^53 - 1",
      { ...valid, genesis: { [key(0xa1)]: MAX_AMOUNT, [key(0xa2)]: 1 } },
      /genesis amounts sum to more than 2\^53 - 1/,
    ],
  ];
  for (const [what, json, pattern] of cases) {
    await t.step(`with ${what}`, () => refuses(json, pattern));
  }
});

Deno.test("readNetwork() reads and validates a file", async () => {
  await using dir = await makeTempDir();
  const path = `${dir.path}/peers.json`;
  await Deno.writeTextFile(path, JSON.stringify(networkJson(), null, 2));
  const network = await readNetwork(path);
  assert.equal(network.servers.length, 3);
  await Deno.writeTextFile(path, JSON.stringify({ ...networkJson(), servers: [] }));
  const err = await assertRejectsError(
    () => readNetwork(path),
    CoinError,
    /"servers" must be a non-empty list/,
  );
  assert.ok(err.message.includes(`"${path}"`), "names the file it read");
});

Deno.test("readNetwork() refuses a missing file and a file that is not JSON", async () => {
  await using dir = await makeTempDir();
  await assertRejectsError(() => readNetwork(`${dir.path}/missing.json`), CoinError, /does not exist/);
  await Deno.writeTextFile(`${dir.path}/bad.json`, "{ interval: 1 }");
  await assertRejectsError(() => readNetwork(`${dir.path}/bad.json`), CoinError, /not valid JSON/);
});

Deno.test("findPeer() finds a server by its lowercase key hex", () => {
  const network = parseNetwork(networkJson());
  assert.equal(findPeer(network, key(2))?.name, "s1");
  assert.equal(findPeer(network, key(9)), undefined);
});

Deno.test("checkHost accepts host names, IPv4 and IPv6 addresses, and says what is wrong with anything else", () => {
  for (
    const host of [
      "localhost",
      "ann.example.org",
      "coin-1.local.",
      "10.0.0.1",
      "::1",
      "fe80::1",
      "2001:db8::8a2e:370:7334",
      "::ffff:10.0.0.1",
    ]
  ) {
    assert.equal(checkHost(host), undefined, host);
  }
  const refused: [string, RegExp][] = [
    ["", /1 to 253 characters/],
    ["a".repeat(254), /1 to 253 characters/],
    ["127.0.0.1:47401", /holds a port/],
    ["https://ann.org", /is a URL/],
    ["[fe80::1]:7001", /has brackets/],
    ["-ann.org", /is not a host name/],
    ["ann..org", /is not a host name/],
    ["1::2::3", /is not a host name or address/],
    ["300.1.1.1", /is not an IPv4 address/],
  ];
  for (const [host, pattern] of refused) assert.match(checkHost(host) ?? "accepted", pattern, host);
});

Deno.test("parseNetwork() takes addresses for server keys and genesis accounts: the same network as hex", () => {
  const hex = networkJson();
  const asAddress = (h: string) => encodeAddress(fromHex(h, 32)!);
  const addressed: NetworkJson = {
    ...hex,
    servers: hex.servers.map((s) => ({ ...s, key: asAddress(s.key) })),
    genesis: Object.fromEntries(Object.entries(hex.genesis).map(([k, v]) => [asAddress(k).toUpperCase(), v])),
  };
  const a = parseNetwork(hex);
  const b = parseNetwork(addressed);
  assert.equal(b.id, a.id);
  assert.deepEqual(b.genesis, a.genesis);
  assert.deepEqual(b.servers.map((s) => s.keyHex), a.servers.map((s) => s.keyHex));
  // One account written both ways is still written twice.
  refuses(
    { ...hex, genesis: { [key(0xa1)]: 1, [asAddress(key(0xa1))]: 2 } },
    new RegExp(`genesis account ${key(0xa1)} appears twice`),
  );
  const typo = (address: string) =>
    address.slice(0, 20) + (address[20] === "q" ? "p" : "q") + address.slice(21);
  refuses(
    { ...hex, genesis: { [typo(asAddress(key(0xa1)))]: 1 } },
    /genesis account "coin1.*" is not a valid address: its checksum does not match: it was mistyped or garbled/,
  );
  refuses(
    { ...hex, servers: [{ ...hex.servers[0]!, key: typo(asAddress(key(1))) }, ...hex.servers.slice(1)] },
    /servers\[0\]\.key is not a valid address: its checksum does not match/,
  );
});
