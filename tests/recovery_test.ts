// Tests of lib/recovery.ts: what a replica starts from, read through an in-memory DiskReader: the
// highest-frame archive entry whose content, digest and certificate verify (the others set aside), the
// votes file that says what this server signed, and the genesis when there is nothing else.

import assert from "node:assert/strict";
import { toHex } from "../lib/_bytes.ts";
import { archiveName } from "../lib/archive.ts";
import { genesisDigest, votePayload } from "../lib/certificate.ts";
import { CoinError } from "../lib/errors.ts";
import { sha256, sha256Hex } from "../lib/hash.ts";
import { signerOf, verifySignature } from "../lib/keys.ts";
import { genesisState, Ledger, type RecentIds } from "../lib/ledger.ts";
import { checkEntry, type DiskReader, genesisRecovered, recover } from "../lib/recovery.ts";
import { encodeVotes, VOTES_FILE, type VotesRecord } from "../lib/votes_file.ts";
import {
  type CommitFile,
  fileOf,
  genesisDigestOf,
  makeChain,
  makeCommit,
  serverSeed,
  signingNetwork,
  signPrecommit,
  withState,
} from "./_commits.ts";
import { assertThrowsError, makeAccount, makeKeyPair, signTransfer } from "./_helpers.ts";

const A1 = toHex(makeAccount(1));
const A2 = toHex(makeAccount(2));
/** Three servers, quorum 2. */
const NET = signingNetwork({ genesis: { [A1]: 600, [A2]: 400 } });
const NETWORK = NET.network;
const F0 = NETWORK.startFrame;
const GENESIS = genesisState(NETWORK.genesis).ledger;
/** Two later databases of the same network (same supply). */
const OLDER = Ledger.fromBalances([[A1, 500], [A2, 500]]);
const NEWER = Ledger.fromBalances([[A1, 100], [A2, 900]]);
const RECENT: RecentIds = [
  { frame: F0, ids: new Set(["0a".repeat(32)]) },
  { frame: F0 + 1, ids: new Set(["0b".repeat(32), "0c".repeat(32)]) },
];
/** Frames F0 and F0 + 1, chained; the newer one carries recent ids. */
const [OLD, NEW] = makeChain(NET, [OLDER, NEWER], { recent: (i) => (i === 0 ? [] : RECENT) }) as [
  CommitFile,
  CommitFile,
];
/** A server seed that is not in peers.json. */
const OUTSIDER = signerOf({ seed: serverSeed(200) });

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

/** The files of `commits`, by name. */
function entries(...commits: CommitFile[]): Record<string, Uint8Array> {
  return Object.fromEntries(commits.map((c) => [c.name, c.bytes]));
}

function assertRecent(actual: RecentIds, expected: RecentIds): void {
  assert.deepEqual(actual.map((r) => [r.frame, [...r.ids]]), expected.map((r) => [r.frame, [...r.ids]]));
}

/** A votes record with a locked proposal of one transfer. */
async function votesRecord(): Promise<VotesRecord> {
  const tx = await signTransfer(await makeKeyPair(1), makeAccount(9), { amount: 5, timestampMs: F0 * 1000 });
  const digest = "d1".repeat(32);
  return {
    height: F0 + 2,
    prevDigest: NEW.commit.cert.digest,
    memory: {
      round: 1,
      lockedRound: 0,
      lockedDigest: digest,
      lockedByCertificate: false,
      validRound: 0,
      validDigest: digest,
      signed: [
        { round: 0, step: "prevote", digest },
        { round: 0, step: "precommit", digest },
        { round: 1, step: "prevote", digest },
      ],
      proposed: [],
    },
    locked: { frame: F0 + 2, digest, txs: [tx] },
    polka: [],
  };
}

Deno.test("recover() of an empty directory is fresh and starts from the genesis", () => {
  const recovered = recover(memoryDisk({}), NETWORK);
  assert.equal(recovered.state.ledger.hash, GENESIS.hash);
  assert.equal(recovered.state.ledger.supply, 1000);
  assert.deepEqual(recovered.state.recent, []);
  assert.equal(recovered.frame, F0 - 1, "the state before the network's first frame");
  assert.equal(recovered.digest, genesisDigest(NETWORK.id, genesisState(NETWORK.genesis)));
  assert.equal(recovered.commit, undefined);
  assert.equal(recovered.loaded, undefined);
  assert.equal(recovered.votes, "lost", "nothing says what this server signed");
  assert.equal(recovered.fresh, true);
  assert.deepEqual(recovered.setAside, []);
  const genesis = genesisRecovered(NETWORK);
  assert.equal(genesis.digest, recovered.digest);
  assert.equal(genesis.frame, recovered.frame);
  assert.equal(genesis.state.ledger.hash, GENESIS.hash);
  assert.equal(genesis.loaded, undefined);
});

Deno.test("recover() is not fresh when the directory holds a votes file or an entry", async () => {
  const votesOnly = recover(memoryDisk({ [VOTES_FILE]: encodeVotes(await votesRecord()) }), NETWORK);
  assert.equal(votesOnly.fresh, false);
  assert.equal(votesOnly.loaded, undefined);
  assert.equal(votesOnly.digest, genesisDigestOf(NETWORK));
  const entryOnly = recover(memoryDisk(entries(OLD)), NETWORK);
  assert.equal(entryOnly.fresh, false);
  assert.equal(entryOnly.votes, "lost", "an archive without a votes file: what was signed is unknown");
});

Deno.test("recover() loads the highest-frame entry whose certificate verifies", () => {
  const disk = memoryDisk(entries(OLD, NEW));
  const recovered = recover(disk, NETWORK);
  assert.equal(recovered.loaded, NEW.name);
  assert.equal(recovered.frame, F0 + 1);
  assert.equal(recovered.digest, NEW.commit.cert.digest);
  assert.deepEqual(recovered.commit?.cert, NEW.commit.cert);
  assert.equal(recovered.state.ledger.hash, NEWER.hash);
  assert.equal(recovered.state.ledger.balanceOf(makeAccount(2)), 900);
  assertRecent(recovered.state.recent, RECENT);
  assert.deepEqual(recovered.setAside, []);
  // The older one is read once more: the loaded certificate chains to it, so it is kept as the previous
  // commit (with b = 0 a server behind needs both).
  assert.deepEqual([...disk.reads].sort(), [NEW.name, OLD.name, VOTES_FILE].sort());
  assert.deepEqual(recovered.previous?.cert, OLD.commit.cert);
});

Deno.test("recover() keeps no previous commit when the entry before does not chain to the loaded one", () => {
  assert.equal(recover(memoryDisk(entries(NEW)), NETWORK).previous, undefined, "none before it");
  // An older entry certified on another chain (its digest is not the loaded one's previous digest).
  const other = makeCommit(NET, { frame: F0, state: { ledger: NEWER, recent: [] } });
  assert.notEqual(other.commit.cert.digest, NEW.commit.cert.prevDigest);
  assert.equal(recover(memoryDisk(entries(other, NEW)), NETWORK).previous, undefined, "another chain");
  assert.equal(recover(memoryDisk(entries(OLD)), NETWORK).previous, undefined, "the genesis is not a commit");
});

Deno.test("recover() orders entries by their ms, not by name", () => {
  // At 200 ms from unix 0, frame 4 starts at 800 and frame 5 at 1000: "….800" sorts after "….1000" as text.
  const net = signingNetwork({ genesis: { [A1]: 600, [A2]: 400 }, start: 0, interval: 0.2 });
  const [four, five] = makeChain(net, [OLDER, NEWER], { firstFrame: 4 }) as [CommitFile, CommitFile];
  assert.ok(four.name.endsWith(".800") && five.name.endsWith(".1000"));
  assert.equal(recover(memoryDisk(entries(four, five)), net.network).loaded, five.name);
  // Whichever hash is lower.
  const [a, b] = makeChain(net, [NEWER, OLDER], { firstFrame: 4 }) as [CommitFile, CommitFile];
  assert.equal(recover(memoryDisk(entries(a, b)), net.network).loaded, b.name);
});

Deno.test("recover() breaks a tie of ms by the lower name", () => {
  // Two certified states of one frame (rounds 0 and 1): only a forged archive holds both, but it is decided.
  const one = makeCommit(NET, { frame: F0 + 3, state: { ledger: OLDER, recent: [] } });
  const two = makeCommit(NET, { frame: F0 + 3, state: { ledger: NEWER, recent: [] }, round: 1 });
  const [low, high] = [one, two].sort((x, y) => (x.name < y.name ? -1 : 1)) as [CommitFile, CommitFile];
  assert.equal(recover(memoryDisk(entries(high, low)), NETWORK).loaded, low.name);
});

/** Forged or damaged versions of a commit of frame F0 + 2 (newer than OLD and NEW). */
function forgeries(): { what: string; file: CommitFile; problem: RegExp }[] {
  const frame = F0 + 2;
  const state = { ledger: NEWER, recent: RECENT };
  const prevDigest = NEW.commit.cert.digest;
  const good = makeCommit(NET, { frame, state, prevDigest });
  const slot = { height: frame, round: 0, prevDigest };
  const digest = good.commit.cert.digest;
  const sig = (i: number) => signPrecommit(NET.signers[i]!, NETWORK.id, slot, digest);
  return [
    {
      what: "too few signatures",
      file: makeCommit(NET, { frame, state, prevDigest, signers: [0] }),
      problem: /^certificate holds 1 signatures, fewer than the quorum 2$/,
    },
    {
      what: "no signature at all",
      file: makeCommit(NET, { frame, state, prevDigest, signers: [] }),
      problem: /^certificate holds 0 signatures, fewer than the quorum 2$/,
    },
    {
      what: "a signature by a key not in peers.json",
      file: makeCommit(NET, {
        frame,
        state,
        prevDigest,
        signatures: [{ signer: 0, signature: sig(0) }, {
          signer: 1,
          signature: signPrecommit(OUTSIDER, NETWORK.id, slot, digest),
        }],
      }),
      problem: /^certificate signature of s2 does not verify$/,
    },
    {
      what: "one server's signature counted twice",
      file: makeCommit(NET, {
        frame,
        state,
        prevDigest,
        signatures: [{ signer: 0, signature: sig(0) }, { signer: 0, signature: sig(0) }],
      }),
      problem: /^certificate signers are not distinct servers in order$/,
    },
    {
      what: "a signer index beyond peers.json",
      file: makeCommit(NET, {
        frame,
        state,
        prevDigest,
        signatures: [{ signer: 0, signature: sig(0) }, { signer: 3, signature: sig(2) }],
      }),
      problem: /^certificate signers are not distinct servers in order$/,
    },
    {
      what: "signatures of another round",
      file: makeCommit(NET, {
        frame,
        state,
        prevDigest,
        round: 1,
        signatures: [0, 1].map((i) => ({ signer: i, signature: sig(i) })),
      }),
      problem: /^certificate signature of s1 does not verify$/,
    },
    {
      what: "signatures of prevotes, not precommits",
      file: makeCommit(NET, {
        frame,
        state,
        prevDigest,
        signatures: [0, 1].map((i) => ({
          signer: i,
          signature: NET.signers[i]!(sha256(votePayload("prevote", NETWORK.id, slot, digest))),
        })),
      }),
      problem: /^certificate signature of s1 does not verify$/,
    },
    {
      what: "a state that is not the one signed (balances)",
      file: withState(NETWORK, good, { ledger: OLDER, recent: RECENT }),
      problem: /^its state does not hash to the digest its certificate signs$/,
    },
    {
      what: "a state that is not the one signed (recent ids)",
      file: withState(NETWORK, good, { ledger: NEWER, recent: RECENT.slice(1) }),
      problem: /^its state does not hash to the digest its certificate signs$/,
    },
    {
      what: "a frame that is not the one signed",
      file: fileOf(NETWORK, { ...good.commit, frame: frame + 1 }),
      problem: /^its state does not hash to the digest its certificate signs$/,
    },
    {
      what: "a certified database of another supply",
      file: makeCommit(NET, {
        frame,
        state: { ledger: Ledger.fromBalances([[A1, 999]]), recent: [] },
        prevDigest,
      }),
      problem: /^its database holds a total supply of 999, not 1000$/,
    },
  ];
}

Deno.test("recover() sets aside a newer entry with a forged certificate or a state unlike its digest", () => {
  for (const { what, file, problem } of forgeries()) {
    const recovered = recover(memoryDisk(entries(OLD, NEW, file)), NETWORK);
    assert.equal(recovered.loaded, NEW.name, what);
    assert.equal(recovered.frame, F0 + 1, what);
    assert.equal(recovered.setAside.length, 1, what);
    assert.equal(recovered.setAside[0]!.name, file.name, what);
    assert.match(recovered.setAside[0]!.problem, problem, what);
    // checkEntry() says the same of the file alone.
    const checked = checkEntry(NETWORK, file, file.bytes);
    assert.ok(typeof checked === "string", what);
    assert.match(checked, problem, what);
  }
});

Deno.test("recover() sets aside an entry certified by a quorum of other servers", () => {
  // The right network id, but every signature by keys peers.json does not list.
  const outsiders = signingNetwork({ genesis: { [A1]: 600, [A2]: 400 }, firstSeed: 201 });
  const frame = F0 + 2;
  const state = { ledger: NEWER, recent: [] };
  const honest = makeCommit(NET, { frame, state });
  const slot = { height: frame, round: 0, prevDigest: genesisDigestOf(NETWORK) };
  const forged = makeCommit(NET, {
    frame,
    state,
    signatures: [0, 1, 2].map((i) => ({
      signer: i,
      signature: signPrecommit(outsiders.signers[i]!, NETWORK.id, slot, honest.commit.cert.digest),
    })),
  });
  const recovered = recover(memoryDisk(entries(OLD, forged)), NETWORK);
  assert.equal(recovered.loaded, OLD.name);
  assert.deepEqual(recovered.setAside, [{
    name: forged.name,
    problem: "certificate signature of s1 does not verify",
  }]);
});

Deno.test("recover() sets aside a newer entry whose bytes do not hash to its name and loads the next", () => {
  // A sound commit under another commit's hash: its bytes are not the ones its name promises.
  const later = makeCommit(NET, { frame: F0 + 2, state: { ledger: NEWER, recent: [] } });
  const misnamed = archiveName(NEW.hash, later.ms);
  const recovered = recover(memoryDisk({ ...entries(OLD), [misnamed]: later.bytes }), NETWORK);
  assert.equal(recovered.loaded, OLD.name);
  assert.deepEqual(recovered.setAside, [{
    name: misnamed,
    problem: "its content does not hash to its name",
  }]);

  // A flipped byte in the newest entry's database: set aside, whatever check it fails first.
  const spoilt = NEW.bytes.slice();
  spoilt[spoilt.length - 200]! ^= 1;
  const damaged = recover(memoryDisk({ ...entries(OLD), [NEW.name]: spoilt }), NETWORK);
  assert.equal(damaged.loaded, OLD.name);
  assert.equal(damaged.state.ledger.hash, OLDER.hash);
  assert.deepEqual(damaged.setAside.map((s) => s.name), [NEW.name]);
});

Deno.test("recover() sets aside an entry that hashes to its name but is not a commit", () => {
  const garbage = new TextEncoder().encode("COIX and then nothing sensible");
  const name = archiveName(sha256Hex(garbage), NEW.ms + 1000);
  const cut = NEW.bytes.slice(0, NEW.bytes.length - 3);
  const cutName = archiveName(sha256Hex(cut), NEW.ms + 2000);
  const recovered = recover(memoryDisk({ ...entries(OLD), [name]: garbage, [cutName]: cut }), NETWORK);
  assert.equal(recovered.loaded, OLD.name);
  assert.deepEqual(recovered.setAside, [
    { name: cutName, problem: "Recent ids are out of order, too many or cut off" },
    { name, problem: "Not a commit" },
  ]);
});

Deno.test("recover() falls back to the genesis when every entry is corrupt", () => {
  const name = archiveName(NEW.hash, NEW.ms);
  const recovered = recover(memoryDisk({ [name]: OLD.bytes }), NETWORK);
  assert.equal(recovered.loaded, undefined);
  assert.equal(recovered.commit, undefined);
  assert.equal(recovered.state.ledger.hash, GENESIS.hash);
  assert.equal(recovered.frame, F0 - 1);
  assert.equal(recovered.fresh, false, "a directory that held entries is not fresh");
  assert.deepEqual(recovered.setAside.map((s) => s.name), [name]);
});

Deno.test("recover() ignores files that are not archive entries", () => {
  const disk = memoryDisk({
    ...entries(OLD),
    [`${NEW.name}.corrupt`]: NEW.bytes,
    [`${NEW.name}.tmp-0a1b2c3d`]: NEW.bytes,
    [archiveName(NEW.hash.toUpperCase(), NEW.ms)]: NEW.bytes,
    [`${VOTES_FILE}.corrupt`]: new Uint8Array(3),
    "README.md": new Uint8Array(3),
  });
  const recovered = recover(disk, NETWORK);
  assert.equal(recovered.loaded, OLD.name);
  assert.deepEqual(recovered.setAside, []);
  assert.deepEqual([...disk.reads].sort(), [OLD.name, VOTES_FILE].sort());
});

Deno.test("recover() passes over an entry that vanished between listing and reading", () => {
  const disk: DiskReader = {
    names: () => [NEW.name, OLD.name],
    read: (name) => (name === OLD.name ? OLD.bytes : undefined),
  };
  const recovered = recover(disk, NETWORK);
  assert.equal(recovered.loaded, OLD.name);
  assert.deepEqual(recovered.setAside, [], "a file that is gone is not corrupt");
});

Deno.test("recover() refuses an archive of another network with a CoinError", () => {
  // Same balances, other servers: a sound certificate of another network id.
  const other = signingNetwork({ genesis: { [A1]: 600, [A2]: 400 }, firstSeed: 201 });
  const [foreign] = makeChain(other, [OLDER]) as [CommitFile];
  assert.deepEqual(checkEntry(NETWORK, foreign, foreign.bytes), { foreign: true });
  const err = assertThrowsError(
    () => recover(memoryDisk(entries(foreign)), NETWORK),
    CoinError,
    /belongs to another network \(its network id differs from peers\.json's\)/,
  );
  assert.ok(err.message.includes(`"${foreign.name}"`), err.message);
  assert.ok(!err.message.includes("\n"), "one line");
});

Deno.test("recover() checks signatures with the verifier it is given", () => {
  const calls: string[] = [];
  const counting = (key: Uint8Array, message: Uint8Array, signature: Uint8Array) => {
    calls.push(toHex(key));
    return verifySignature(key, message, signature);
  };
  assert.equal(recover(memoryDisk(entries(OLD, NEW)), NETWORK, counting).loaded, NEW.name);
  const quorum = [NETWORK.servers[0]!.keyHex, NETWORK.servers[1]!.keyHex];
  assert.deepEqual(calls, [...quorum, ...quorum], "the newest, then the one it chains to");
  const refusing = recover(memoryDisk(entries(OLD, NEW)), NETWORK, () => false);
  assert.equal(refusing.loaded, undefined);
  assert.deepEqual(refusing.setAside.map((s) => s.name), [NEW.name, OLD.name]);
});

Deno.test("recover() reads back the votes file: what this server signed", async () => {
  const record = await votesRecord();
  const recovered = recover(memoryDisk({ ...entries(OLD, NEW), [VOTES_FILE]: encodeVotes(record) }), NETWORK);
  assert.equal(recovered.loaded, NEW.name);
  assert.deepEqual(recovered.setAside, []);
  assert.equal(recovered.fresh, false);
  const votes = recovered.votes;
  assert.ok(votes !== undefined && votes !== "lost");
  assert.equal(votes.height, record.height);
  assert.equal(votes.prevDigest, record.prevDigest);
  assert.deepEqual(votes.memory, record.memory);
  assert.equal(votes.locked?.frame, record.locked!.frame);
  assert.equal(votes.locked?.digest, record.locked!.digest);
  assert.deepEqual(votes.locked?.txs.map((tx) => tx.bytes), record.locked!.txs.map((tx) => tx.bytes));
  // With nothing locked.
  const bare: VotesRecord = { ...record, locked: undefined, polka: [] };
  const again = recover(memoryDisk({ [VOTES_FILE]: encodeVotes(bare) }), NETWORK).votes;
  assert.ok(again !== undefined && again !== "lost");
  assert.equal(again.locked, undefined);
  assert.deepEqual(again.memory, record.memory);
});

Deno.test("recover() sets aside a damaged votes file: votes lost, the entry still loaded", async () => {
  const good = encodeVotes(await votesRecord());
  const flipped = good.slice();
  flipped[flipped.length - 1]! ^= 1;
  const cases: [string, Uint8Array, string][] = [
    ["a flipped byte", flipped, "its checksum does not match its content"],
    ["a cut file", good.slice(0, good.length - 10), "its checksum does not match its content"],
    ["JSON instead of a votes file", new TextEncoder().encode("{}"), "it is not a votes file"],
    ["an empty file", new Uint8Array(0), "it is not a votes file"],
  ];
  for (const [what, bytes, problem] of cases) {
    const recovered = recover(memoryDisk({ ...entries(OLD, NEW), [VOTES_FILE]: bytes }), NETWORK);
    assert.equal(recovered.votes, "lost", what);
    assert.deepEqual(recovered.setAside, [{ name: VOTES_FILE, problem }], what);
    assert.equal(recovered.loaded, NEW.name, what);
    assert.equal(recovered.fresh, false, what);
  }
});

Deno.test({
  name: "recover() sets aside an entry whose network id bytes are damaged (not another network's)",
  fn() {
    // The content hash is checked before the network id: one flipped bit in bytes 1 to 32 is damage.
    const spoilt = NEW.bytes.slice();
    spoilt[1]! ^= 1;
    const recovered = recover(memoryDisk({ [NEW.name]: spoilt }), NETWORK);
    assert.equal(recovered.loaded, undefined);
    assert.deepEqual(recovered.setAside.map((s) => s.name), [NEW.name]);
  },
});

Deno.test({
  name: "recover() loads the highest certified frame, whatever ms a file's name claims",
  fn() {
    // The ms in a name is not covered by its hash: a name whose ms is not its frame's start is set aside.
    const lying = archiveName(OLD.hash, NEW.ms + 60_000);
    const recovered = recover(memoryDisk({ [lying]: OLD.bytes, [NEW.name]: NEW.bytes }), NETWORK);
    assert.equal(recovered.frame, F0 + 1);
  },
});
