// Tests of lib/recovery.ts: what a replica starts from, read through an in-memory DiskReader: the newest
// archive entry that verifies (the others set aside), and the recent ids saved with it.

import assert from "node:assert/strict";
import { toHex } from "../lib/_bytes.ts";
import { archiveName } from "../lib/archive.ts";
import { encodeRecentIds, RECENT_IDS_FILE } from "../lib/catchup.ts";
import { CoinError } from "../lib/errors.ts";
import { sha256Hex } from "../lib/hash.ts";
import { genesisState, Ledger, type RecentIds } from "../lib/ledger.ts";
import { parseNetwork } from "../lib/peers.ts";
import { type DiskReader, recover } from "../lib/recovery.ts";
import { assertThrowsError, makeAccount } from "./_helpers.ts";

const A1 = toHex(makeAccount(1));
const A2 = toHex(makeAccount(2));
const NETWORK = parseNetwork({
  interval: 1,
  servers: [{ name: "s0", key: "01".repeat(32), host: "127.0.0.1", port: 7000 }],
  genesis: { [A1]: 600, [A2]: 400 },
});
const GENESIS = genesisState(NETWORK.genesis).ledger;
/** Two later databases of the same network (same supply). */
const OLDER = Ledger.fromBalances([[A1, 500], [A2, 500]]);
const NEWER = Ledger.fromBalances([[A1, 100], [A2, 900]]);
const RECENT: RecentIds = [
  { frame: 1_700_000_001, ids: new Set(["0a".repeat(32)]) },
  { frame: 1_700_000_002, ids: new Set(["0b".repeat(32), "0c".repeat(32)]) },
];

/** An in-memory data directory that records which files were read. */
function memoryDisk(files: Record<string, Uint8Array>): DiskReader & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    names: () => Object.keys(files),
    read(name) {
      reads.push(name);
      return files[name];
    },
  };
}

function entry(ledger: Ledger, seconds: number): Record<string, Uint8Array> {
  return { [archiveName(ledger.hash, seconds)]: ledger.bytes };
}

function assertRecent(actual: RecentIds, expected: RecentIds): void {
  assert.deepEqual(actual.map((r) => [r.frame, [...r.ids]]), expected.map((r) => [r.frame, [...r.ids]]));
}

Deno.test("recover() of an empty directory starts from the genesis", () => {
  const recovered = recover(memoryDisk({}), NETWORK);
  assert.equal(recovered.state.ledger.hash, GENESIS.hash);
  assert.equal(recovered.state.ledger.supply, 1000);
  assert.deepEqual(recovered.state.recent, []);
  assert.equal(recovered.frame, -1);
  assert.equal(recovered.loaded, undefined);
  assert.equal(recovered.archivedHash, undefined);
  assert.equal(recovered.recentComplete, false);
  assert.deepEqual(recovered.setAside, []);
});

Deno.test("recover() loads the newest archive entry", () => {
  const disk = memoryDisk({ ...entry(OLDER, 1_700_000_001), ...entry(NEWER, 1_700_000_002) });
  const recovered = recover(disk, NETWORK);
  assert.equal(recovered.loaded, archiveName(NEWER.hash, 1_700_000_002));
  assert.equal(recovered.archivedHash, NEWER.hash);
  assert.equal(recovered.state.ledger.hash, NEWER.hash);
  assert.equal(recovered.state.ledger.balanceOf(makeAccount(2)), 900);
  assert.deepEqual(recovered.state.recent, []);
  assert.equal(recovered.frame, -1, "no recent ids say which frame it was");
  assert.deepEqual(recovered.setAside, []);
  assert.deepEqual(
    [...disk.reads].sort(),
    [archiveName(NEWER.hash, 1_700_000_002), RECENT_IDS_FILE],
    "the older is not read",
  );
});

Deno.test("recover() orders entries by their seconds, not by name", () => {
  // "….999" sorts after "….1000" as text; and the lower hash sorts first.
  const same = recover(memoryDisk({ ...entry(NEWER, 999), ...entry(NEWER, 1000) }), NETWORK);
  assert.equal(same.loaded, archiveName(NEWER.hash, 1000));
  const [low, high] = [OLDER, NEWER].sort((a, b) => (a.hash < b.hash ? -1 : 1));
  const mixed = recover(memoryDisk({ ...entry(low!, 999), ...entry(high!, 1000) }), NETWORK);
  assert.equal(mixed.loaded, archiveName(high!.hash, 1000));
});

Deno.test("recover() breaks a tie of seconds by the lower name", () => {
  const [low, high] = [OLDER, NEWER].sort((a, b) => (a.hash < b.hash ? -1 : 1));
  const recovered = recover(memoryDisk({ ...entry(high!, 5), ...entry(low!, 5) }), NETWORK);
  assert.equal(recovered.loaded, archiveName(low!.hash, 5));
});

Deno.test("recover() sets aside a newer entry whose bytes do not hash to its name and loads the next", () => {
  const spoilt = NEWER.bytes.slice();
  spoilt[spoilt.length - 1]! ^= 1;
  const newerName = archiveName(NEWER.hash, 20);
  const recovered = recover(memoryDisk({ ...entry(OLDER, 10), [newerName]: spoilt }), NETWORK);
  assert.equal(recovered.loaded, archiveName(OLDER.hash, 10));
  assert.equal(recovered.state.ledger.hash, OLDER.hash);
  assert.equal(recovered.setAside.length, 1);
  assert.equal(recovered.setAside[0]!.name, newerName);
  assert.match(recovered.setAside[0]!.problem, /^content hashes to [0-9a-f]{16}…, not to its name$/);
});

Deno.test("recover() sets aside an entry that hashes to its name but is not a database", () => {
  const garbage = new TextEncoder().encode("COIX and then nothing sensible");
  const name = archiveName(sha256Hex(garbage), 30);
  const recovered = recover(memoryDisk({ ...entry(OLDER, 10), [name]: garbage }), NETWORK);
  assert.equal(recovered.loaded, archiveName(OLDER.hash, 10));
  assert.deepEqual(recovered.setAside, [{ name, problem: "Packed database has a wrong magic" }]);
});

Deno.test("recover() falls back to the genesis when every entry is corrupt", () => {
  const name = archiveName(NEWER.hash, 20);
  const recovered = recover(memoryDisk({ [name]: OLDER.bytes }), NETWORK);
  assert.equal(recovered.loaded, undefined);
  assert.equal(recovered.state.ledger.hash, GENESIS.hash);
  assert.deepEqual(recovered.setAside.map((s) => s.name), [name]);
});

Deno.test("recover() ignores files that are not archive entries", () => {
  const name = archiveName(OLDER.hash, 10);
  const disk = memoryDisk({
    ...entry(OLDER, 10),
    [`${archiveName(NEWER.hash, 20)}.corrupt`]: NEWER.bytes,
    [`${archiveName(NEWER.hash, 21)}.tmp-0a1b2c3d`]: NEWER.bytes,
    [archiveName(NEWER.hash.toUpperCase(), 22)]: NEWER.bytes,
    "README.md": new Uint8Array(3),
  });
  const recovered = recover(disk, NETWORK);
  assert.equal(recovered.loaded, name);
  assert.deepEqual(recovered.setAside, []);
  assert.deepEqual([...disk.reads].sort(), [name, RECENT_IDS_FILE].sort());
});

Deno.test("recover() passes over an entry that vanished between listing and reading", () => {
  const disk: DiskReader = {
    names: () => [archiveName(NEWER.hash, 20), archiveName(OLDER.hash, 10)],
    read: (name) => (name === archiveName(OLDER.hash, 10) ? OLDER.bytes : undefined),
  };
  const recovered = recover(disk, NETWORK);
  assert.equal(recovered.loaded, archiveName(OLDER.hash, 10));
  assert.deepEqual(recovered.setAside, [], "a file that is gone is not corrupt");
});

Deno.test("recover() refuses an entry of another network with a CoinError", () => {
  const foreign = Ledger.fromBalances([[A1, 999]]);
  const name = archiveName(foreign.hash, 10);
  const err = assertThrowsError(
    () => recover(memoryDisk({ ...entry(foreign, 10) }), NETWORK),
    CoinError,
    /holds a total supply of 999, not the genesis 1000: it belongs to another network/,
  );
  assert.ok(err.message.includes(`"${name}"`), err.message);
});

Deno.test("recover() reads the recent ids saved with the loaded entry as the whole story", () => {
  const recovered = recover(
    memoryDisk({
      ...entry(OLDER, 10),
      ...entry(NEWER, 20),
      [RECENT_IDS_FILE]: encodeRecentIds(NEWER.hash, 1_700_000_002, RECENT),
    }),
    NETWORK,
  );
  assert.equal(recovered.state.ledger.hash, NEWER.hash);
  assertRecent(recovered.state.recent, RECENT);
  assert.equal(recovered.frame, 1_700_000_002);
  assert.equal(recovered.recentComplete, true);
  assert.deepEqual(recovered.setAside, []);
});

Deno.test("recover() keeps recent ids saved with an older database but not as the whole story", () => {
  const recovered = recover(
    memoryDisk({
      ...entry(NEWER, 20),
      [RECENT_IDS_FILE]: encodeRecentIds(OLDER.hash, 1_700_000_001, RECENT),
    }),
    NETWORK,
  );
  assert.equal(recovered.state.ledger.hash, NEWER.hash);
  assertRecent(recovered.state.recent, RECENT);
  assert.equal(recovered.recentComplete, false);
  assert.equal(recovered.frame, -1, "the ids do not date the loaded database");
});

Deno.test("recover() dates the genesis from recent ids saved with the genesis hash", () => {
  const recovered = recover(
    memoryDisk({ [RECENT_IDS_FILE]: encodeRecentIds(GENESIS.hash, 1_700_000_002, RECENT) }),
    NETWORK,
  );
  assert.equal(recovered.loaded, undefined);
  assert.equal(recovered.state.ledger.hash, GENESIS.hash);
  assertRecent(recovered.state.recent, RECENT);
  assert.equal(recovered.frame, 1_700_000_002);
  assert.equal(recovered.recentComplete, false, "no archive entry was loaded");
});

Deno.test("recover() does not call an empty list of recent ids the whole story", () => {
  const recovered = recover(
    memoryDisk({ ...entry(NEWER, 20), [RECENT_IDS_FILE]: encodeRecentIds(NEWER.hash, 1_700_000_002, []) }),
    NETWORK,
  );
  assert.deepEqual(recovered.state.recent, []);
  assert.equal(recovered.frame, 1_700_000_002);
  assert.equal(recovered.recentComplete, false);
});

Deno.test("recover() sets aside a recent-ids file that fails its checksum and keeps the entry", () => {
  const bytes = encodeRecentIds(NEWER.hash, 1_700_000_002, RECENT);
  bytes[bytes.length - 1]! ^= 1;
  const recovered = recover(memoryDisk({ ...entry(NEWER, 20), [RECENT_IDS_FILE]: bytes }), NETWORK);
  assert.equal(recovered.state.ledger.hash, NEWER.hash);
  assert.deepEqual(recovered.state.recent, []);
  assert.equal(recovered.frame, -1);
  assert.equal(recovered.recentComplete, false);
  assert.deepEqual(recovered.setAside, [{
    name: RECENT_IDS_FILE,
    problem: "its checksum does not match its content",
  }]);
});

Deno.test("recover() loads the entry its recent ids name when two frames share a second", () => {
  // Both entries carry the same second; whichever sorts first by name, the saved ids say which is newest.
  for (const [newest, older] of [[NEWER, OLDER], [OLDER, NEWER]] as const) {
    const disk = memoryDisk({
      [archiveName(older.hash, 1_700_000_005)]: older.bytes,
      [archiveName(newest.hash, 1_700_000_005)]: newest.bytes,
      [RECENT_IDS_FILE]: encodeRecentIds(newest.hash, 42, RECENT),
    });
    const recovered = recover(disk, NETWORK);
    assert.equal(recovered.state.ledger.hash, newest.hash);
    assert.equal(recovered.frame, 42);
    assert.equal(recovered.recentComplete, true);
  }
});
