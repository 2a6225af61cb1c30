// Tests of lib/catchup.ts: checking an agreed database another server sent, choosing the one server
// that sends a frame's catch-ups, and the checksummed recent-ids file kept beside the archive.

import assert from "node:assert/strict";
import { concatBytes, fromHex, toHex } from "../lib/_bytes.ts";
import { checkCatchup, decodeRecentIds, encodeRecentIds, isCatchupSender } from "../lib/catchup.ts";
import { alphaIndex } from "../lib/frames.ts";
import { sha256, sha256Hex } from "../lib/hash.ts";
import { Ledger, type RecentIds } from "../lib/ledger.ts";
import { parseNetwork } from "../lib/peers.ts";
import { type Catchup, encodeCatchup, encodeVote } from "../lib/wire.ts";
import { makeAccount } from "./_helpers.ts";

const LEDGER = Ledger.fromBalances([[toHex(makeAccount(1)), 700], [toHex(makeAccount(2)), 300]]);
const RECENT: RecentIds = [
  { frame: 40, ids: new Set(["01".repeat(32), "02".repeat(32)]) },
  { frame: 41, ids: new Set() },
  { frame: 42, ids: new Set(["03".repeat(32)]) },
];

function catchup(db: Uint8Array, frame = 42): Catchup {
  return { code: 1, frame, db, recent: RECENT };
}

/** A recent-ids file laid out as encodeRecentIds() does, around any payload: checksum | hash | payload. */
function fileAround(hash: string, payload: Uint8Array): Uint8Array {
  const rest = concatBytes([fromHex(hash, 32)!, payload]);
  return concatBytes([sha256(rest), rest]);
}

function assertSameRecent(actual: RecentIds, expected: RecentIds): void {
  assert.deepEqual(actual.map((r) => [r.frame, [...r.ids]]), expected.map((r) => [r.frame, [...r.ids]]));
}

const NETWORK = parseNetwork({
  interval: 1,
  servers: [1, 2, 3, 4].map((n) => ({
    name: `s${n - 1}`,
    key: `0${n}`.repeat(32),
    host: "127.0.0.1",
    port: 7000 + n,
  })),
  genesis: {},
});
const KEYS = NETWORK.servers.map((s) => s.keyHex);
const GOOD = "aa".repeat(32);
const BAD = "bb".repeat(32);

/** The servers for which isCatchupSender() is true. */
function senders(frame: number, votes: [number, string][], hash = GOOD): number[] {
  const map = new Map(votes.map(([i, h]) => [KEYS[i]!, h]));
  return NETWORK.servers.filter((s) => isCatchupSender(NETWORK.servers, s.index, frame, map, hash))
    .map((s) => s.index);
}

Deno.test("checkCatchup() adopts a database that hashes to the consensus and holds the supply", () => {
  const checked = checkCatchup(catchup(LEDGER.bytes.slice()), LEDGER.hash, 1000);
  assert.ok("ledger" in checked, JSON.stringify(checked));
  assert.equal(checked.ledger.hash, LEDGER.hash);
  assert.equal(checked.ledger.balanceOf(makeAccount(1)), 700);
  assert.equal(checked.ledger.supply, 1000);
});

Deno.test("checkCatchup() refuses a database that does not hash to the consensus", () => {
  const other = Ledger.fromBalances([[toHex(makeAccount(1)), 1000]]);
  assert.deepEqual(checkCatchup(catchup(other.bytes), LEDGER.hash, 1000), {
    problem: "catch-up database does not match the consensus hash",
  });
});

Deno.test("checkCatchup() refuses bytes that hash to the consensus but are not a database", () => {
  const garbage = new TextEncoder().encode("not a database at all");
  const checked = checkCatchup(catchup(garbage), sha256Hex(garbage), 1000);
  assert.ok("problem" in checked);
  assert.match(checked.problem, /^catch-up database does not parse: Packed database has a wrong magic$/);
});

Deno.test("checkCatchup() refuses a database whose supply is not the network's", () => {
  assert.deepEqual(checkCatchup(catchup(LEDGER.bytes), LEDGER.hash, 1001), {
    problem: "catch-up database has supply 1000",
  });
});

Deno.test("isCatchupSender() picks the frame's beta when it voted with the consensus", () => {
  const frame = 9; // beta: servers[1]
  assert.equal(alphaIndex(frame, 4), 1);
  assert.deepEqual(senders(frame, [[0, GOOD], [1, GOOD], [2, GOOD], [3, BAD]]), [1]);
});

Deno.test("isCatchupSender() picks the next server in rotation order that voted with the consensus", () => {
  const frame = 9; // rotation from the beta: 1, 2, 3, 0
  assert.deepEqual(senders(frame, [[0, GOOD], [1, BAD], [2, GOOD], [3, GOOD]]), [2]);
  assert.deepEqual(
    senders(frame, [[0, GOOD], [1, BAD], [3, GOOD]]),
    [3],
    "a server that did not vote is passed",
  );
  assert.deepEqual(senders(frame, [[0, GOOD], [1, BAD], [2, BAD], [3, BAD]]), [0], "wraps around");
});

Deno.test("isCatchupSender() picks nobody when no server voted with the hash", () => {
  assert.deepEqual(senders(9, [[0, BAD], [1, BAD]]), []);
  assert.deepEqual(senders(9, []), []);
});

Deno.test("encodeRecentIds() writes a checksum, the hash and the recent ids of a code-1 payload", () => {
  const bytes = encodeRecentIds(LEDGER.hash, 42, RECENT);
  const payload = concatBytes(encodeCatchup(42, new Uint8Array(0), RECENT));
  assert.equal(bytes.length, 32 + 32 + payload.length);
  assert.deepEqual(bytes.subarray(0, 32), sha256(bytes.subarray(32)));
  assert.equal(toHex(bytes.subarray(32, 64)), LEDGER.hash);
  assert.deepEqual(bytes.subarray(64), payload);
});

Deno.test("decodeRecentIds() reads back what encodeRecentIds() wrote", () => {
  const decoded = decodeRecentIds(encodeRecentIds(LEDGER.hash, 42, RECENT));
  assert.ok(!("problem" in decoded), JSON.stringify(decoded));
  assert.equal(decoded.hash, LEDGER.hash);
  assert.equal(decoded.frame, 42);
  assertSameRecent(decoded.recent, RECENT);
});

Deno.test("decodeRecentIds() reads back a file with no recent ids", () => {
  const decoded = decodeRecentIds(encodeRecentIds(LEDGER.hash, 0, []));
  assert.ok(!("problem" in decoded));
  assert.equal(decoded.frame, 0);
  assert.deepEqual(decoded.recent, []);
});

Deno.test("decodeRecentIds() refuses a file it cannot trust and says why", async (t) => {
  const good = encodeRecentIds(LEDGER.hash, 42, RECENT);
  const flipped = good.slice();
  flipped[good.length - 1]! ^= 1;
  const cases: [string, Uint8Array, RegExp][] = [
    ["an empty file", new Uint8Array(0), /^it is shorter than its checksum and hash$/],
    ["a file cut inside its hash", good.subarray(0, 63), /^it is shorter than its checksum and hash$/],
    ["a changed byte", flipped, /^its checksum does not match its content$/],
    ["a file cut after its header", good.subarray(0, 80), /^its checksum does not match its content$/],
    [
      "a valid checksum over a payload that does not parse",
      fileAround(LEDGER.hash, Uint8Array.of(1, 0, 0)),
      /shorter than its code and frame/,
    ],
    [
      "a valid checksum over a vote",
      fileAround(LEDGER.hash, encodeVote(42, new Uint8Array(32))),
      /^it does not hold recent ids$/,
    ],
    [
      "a valid checksum over a catch-up carrying a database",
      fileAround(LEDGER.hash, concatBytes(encodeCatchup(42, LEDGER.bytes, RECENT))),
      /^it does not hold recent ids$/,
    ],
  ];
  for (const [what, bytes, pattern] of cases) {
    await t.step(`for ${what}`, () => {
      const decoded = decodeRecentIds(bytes);
      assert.ok("problem" in decoded, `accepted ${what}`);
      assert.match(decoded.problem, pattern);
    });
  }
});
