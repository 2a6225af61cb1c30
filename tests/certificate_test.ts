// lib/certificate.ts: the frame digest and what it covers, the genesis digest, the byte layouts of the
// signed proposal, vote and want payloads, certificates checked against real Ed25519 signatures, commits
// (encode, decode, check) and the recent-ids encoding.

import assert from "node:assert/strict";
import { concatBytes, fromHex, toHex, viewOf } from "../lib/_bytes.ts";
import {
  type Certificate,
  checkCertificate,
  checkCommit,
  Code,
  type Commit,
  decodeCommit,
  decodeRecent,
  DIGEST_CONTEXT,
  encodeCommit,
  encodeRecent,
  frameDigest,
  genesisDigest,
  proposalPayload,
  recentHash,
  type Slot,
  txsHash,
  VOTE_HEAD_BYTES,
  votePayload,
  wantPayload,
} from "../lib/certificate.ts";
import { HASH_BYTES, sha256, sha256Of } from "../lib/hash.ts";
import { keyPairFromSeed, publicKeyOfSeed, type Signer, signerOf } from "../lib/keys.ts";
import { genesisState, Ledger, type RecentIds, type State } from "../lib/ledger.ts";
import { ledgerRoot } from "../lib/merkle.ts";
import { type Network, parseNetwork } from "../lib/peers.ts";
import { decodeTx, signTx, type Tx, TX_BYTES } from "../lib/tx.ts";
import { MAX_RECENT_FRAMES, MAX_RECENT_IDS } from "../lib/wire.ts";

// --- Fixtures

const ACCOUNT_A = "a1".repeat(32);
const ACCOUNT_B = "a2".repeat(32);
const ZERO = "00".repeat(32);

function seedOf(n: number): Uint8Array {
  return new Uint8Array(32).fill(n);
}

/** A network of `n` servers (seeds `firstSeed`, `firstSeed + 1`, …) tolerating `dishonest`, with their signers. */
function signingNetwork(n: number, dishonest: number, options: { start?: number; firstSeed?: number } = {}): {
  network: Network;
  signers: Signer[];
} {
  const seeds = Array.from({ length: n }, (_, i) => seedOf((options.firstSeed ?? 101) + i));
  const network = parseNetwork({
    start: options.start ?? 1_700_000_000,
    interval: 1,
    dishonest,
    servers: seeds.map((seed, i) => ({
      name: `s${i}`,
      key: toHex(publicKeyOfSeed(seed)),
      host: "127.0.0.1",
      port: 9100 + i,
    })),
    genesis: { [ACCOUNT_A]: 1000, [ACCOUNT_B]: 500 },
  });
  return { network, signers: seeds.map((seed) => signerOf({ seed })) };
}

const FOUR = signingNetwork(4, 1); // quorum 3
const THREE = signingNetwork(3, 0); // quorum 2, the same keys as FOUR's first three
const STRANGERS = signingNetwork(4, 1, { firstSeed: 201 }); // FOUR's layout, other keys

function idOf(n: number): string {
  return toHex(sha256(new Uint8Array([n])));
}

function sampleRecent(): RecentIds {
  return [
    { frame: 7, ids: new Set([idOf(1), idOf(2)]) },
    { frame: 8, ids: new Set() },
    { frame: 9, ids: new Set([idOf(3)]) },
  ];
}

/** The state after a frame that moved 100 from A to B, with recent ids. */
function sampleState(): State {
  return { ledger: Ledger.fromBalances([[ACCOUNT_A, 900], [ACCOUNT_B, 600]]), recent: sampleRecent() };
}

/** Two real signed transfers. */
async function sampleTxs(): Promise<Tx[]> {
  const payer = await keyPairFromSeed(seedOf(7));
  const out: Tx[] = [];
  for (const [amount, ts] of [[10, 1_700_000_000_100], [20, 1_700_000_000_200]] as const) {
    out.push(decodeTx(await signTx(payer, { to: seedOf(8), amount, timestampMs: ts }))!);
  }
  return out;
}

/** Precommit signatures of `signers` (indexes) for `digest` in `slot` of `network`. */
function precommits(
  net: { network: Network; signers: Signer[] },
  slot: Slot,
  digest: string,
  signers: readonly number[],
  networkId = net.network.id,
): { signer: number; signature: Uint8Array }[] {
  const message = sha256(votePayload("precommit", networkId, slot, digest));
  return signers.map((signer) => ({ signer, signature: net.signers[signer]!(message) }));
}

const SLOT: Slot = { height: 12, round: 3, prevDigest: "cd".repeat(32) };
const DIGEST = "ef".repeat(32);

function certOf(signatures: Certificate["signatures"], slot: Slot = SLOT, digest = DIGEST): Certificate {
  return { ...slot, digest, signatures };
}

/** A valid commit of frame 12 of FOUR, certified by servers 0, 1 and 3. */
async function sampleCommit(): Promise<Commit> {
  const state = sampleState();
  const txsDigest = txsHash(await sampleTxs());
  const prevDigest = genesisDigest(FOUR.network.id, genesisState(FOUR.network.genesis));
  const slot = { height: 12, round: 1, prevDigest };
  const digest = frameDigest(FOUR.network.id, 12, prevDigest, state, txsDigest);
  return {
    frame: 12,
    state,
    txsDigest,
    cert: { ...slot, digest, signatures: precommits(FOUR, slot, digest, [0, 1, 3]) },
  };
}

function assertSameCommit(actual: Commit, expected: Commit): void {
  assert.equal(actual.frame, expected.frame);
  assert.equal(toHex(actual.state.ledger.bytes), toHex(expected.state.ledger.bytes));
  assert.equal(toHex(encodeRecent(actual.state.recent)), toHex(encodeRecent(expected.state.recent)));
  assert.equal(toHex(actual.txsDigest), toHex(expected.txsDigest));
  const cert = (c: Certificate) => ({
    ...c,
    signatures: c.signatures.map((s) => ({ signer: s.signer, signature: toHex(s.signature) })),
  });
  assert.deepEqual(cert(actual.cert), cert(expected.cert));
}

// --- The frame digest

Deno.test("frameDigest changes when any of its inputs changes, and only then", async () => {
  const id = FOUR.network.id;
  const state = sampleState();
  const txs = await sampleTxs();
  const base = frameDigest(id, 12, DIGEST, state, txsHash(txs));
  assert.match(base, /^[0-9a-f]{64}$/);
  assert.equal(frameDigest(id, 12, DIGEST, sampleState(), txsHash(txs)), base, "deterministic");

  const variants: [string, string][] = [
    ["network id", frameDigest(THREE.network.id, 12, DIGEST, state, txsHash(txs))],
    ["frame", frameDigest(id, 13, DIGEST, state, txsHash(txs))],
    ["previous digest", frameDigest(id, 12, "ee".repeat(32), state, txsHash(txs))],
    [
      "balances (same supply)",
      frameDigest(
        id,
        12,
        DIGEST,
        { ...state, ledger: Ledger.fromBalances([[ACCOUNT_A, 899], [ACCOUNT_B, 601]]) },
        txsHash(txs),
      ),
    ],
    ["recent ids removed", frameDigest(id, 12, DIGEST, { ...state, recent: [] }, txsHash(txs))],
    [
      "last frame of recent ids removed",
      frameDigest(id, 12, DIGEST, { ...state, recent: sampleRecent().slice(0, 2) }, txsHash(txs)),
    ],
    [
      "one recent id removed",
      frameDigest(
        id,
        12,
        DIGEST,
        { ...state, recent: [{ frame: 7, ids: new Set([idOf(1)]) }, ...sampleRecent().slice(1)] },
        txsHash(txs),
      ),
    ],
    [
      "recent frame renumbered",
      frameDigest(
        id,
        12,
        DIGEST,
        { ...state, recent: [...sampleRecent().slice(0, 2), { frame: 10, ids: new Set([idOf(3)]) }] },
        txsHash(txs),
      ),
    ],
    ["transfers dropped", frameDigest(id, 12, DIGEST, state, txsHash(txs.slice(1)))],
    ["transfers reordered", frameDigest(id, 12, DIGEST, state, txsHash([txs[1]!, txs[0]!]))],
    ["no transfers", frameDigest(id, 12, DIGEST, state, txsHash([]))],
  ];
  const seen = new Set([base]);
  for (const [what, digest] of variants) {
    assert.notEqual(digest, base, what);
    seen.add(digest);
  }
  assert.equal(seen.size, variants.length + 1, "every variant differs from every other");
});

Deno.test("frameDigest is SHA-256 of the context, network id, frame, previous digest and the three hashes", async () => {
  const id = FOUR.network.id;
  const state = sampleState();
  const txs = await sampleTxs();
  const frame = new Uint8Array(8);
  viewOf(frame).setBigUint64(0, 12n);
  const expected = sha256Of([
    new TextEncoder().encode(DIGEST_CONTEXT),
    fromHex(id, 32)!,
    frame,
    new Uint8Array(32).fill(0xef),
    ledgerRoot(state.ledger.bytes),
    sha256(encodeRecent(state.recent)),
    sha256(concatBytes(txs.map((t) => t.bytes))),
  ]);
  assert.equal(frameDigest(id, 12, DIGEST, state, txsHash(txs)), toHex(expected));
  assert.equal(toHex(recentHash(state.recent)), toHex(sha256(encodeRecent(state.recent))));
  assert.equal(toHex(txsHash([])), toHex(sha256(new Uint8Array(0))));
});

Deno.test("genesisDigest: frame marker 2^53 - 1, zero previous digest, genesis balances, nothing recent", () => {
  const id = FOUR.network.id;
  const genesis = genesisState(FOUR.network.genesis);
  const digest = genesisDigest(id, genesis);
  assert.equal(digest, frameDigest(id, -1, ZERO, genesis, txsHash([])));
  assert.equal(digest, frameDigest(id, 2 ** 53 - 1, ZERO, genesis, txsHash([])));
  assert.notEqual(digest, frameDigest(id, 0, ZERO, genesis, txsHash([])));
  assert.equal(genesisDigest(id, genesisState(FOUR.network.genesis)), digest, "deterministic");
  // Another network (other keys, same genesis) and another genesis give other digests.
  assert.notEqual(genesisDigest(THREE.network.id, genesis), digest);
  assert.notEqual(genesisDigest(id, genesisState([[ACCOUNT_A, 1500]])), digest);
  // A network whose peers.json differs only in "start" has another id, so another genesis digest.
  const later = signingNetwork(4, 1, { start: 1_700_000_100 }).network;
  assert.notEqual(later.id, FOUR.network.id);
  assert.notEqual(genesisDigest(later.id, genesis), digest);
});

// --- Payload layouts

/** Checks the common head: code | network id | height u64 | round u32 | previous digest. */
function assertHead(bytes: Uint8Array, code: number, networkId: string, slot: Slot): void {
  const view = viewOf(bytes);
  assert.equal(bytes[0], code);
  assert.equal(toHex(bytes.subarray(1, 33)), networkId);
  assert.equal(view.getBigUint64(33), BigInt(slot.height));
  assert.equal(view.getUint32(41), slot.round);
  assert.equal(toHex(bytes.subarray(45, 77)), slot.prevDigest);
}

Deno.test("votePayload: code 3 or 4 | network id | height | round | previous digest | digest", () => {
  assert.equal(VOTE_HEAD_BYTES, 1 + 32 + 8 + 4 + 32);
  const slot: Slot = { height: 2 ** 53 - 1, round: 0x7fff_ffff, prevDigest: "cd".repeat(32) };
  for (const step of ["prevote", "precommit"] as const) {
    const payload = votePayload(step, FOUR.network.id, slot, DIGEST);
    assert.equal(payload.length, VOTE_HEAD_BYTES + HASH_BYTES);
    assertHead(payload, step === "prevote" ? 3 : 4, FOUR.network.id, slot);
    assert.equal(toHex(payload.subarray(VOTE_HEAD_BYTES)), DIGEST);
  }
  assert.equal(Code.prevote, 3);
  assert.equal(Code.precommit, 4);
  const small = votePayload("prevote", ZERO, { height: 1, round: 2, prevDigest: ZERO }, ZERO);
  assert.equal(
    toHex(small),
    "03" + "00".repeat(32) + "0000000000000001" + "00000002" + "00".repeat(32) + "00".repeat(32),
  );
});

Deno.test("proposalPayload: head with code 2 | polRound u32 (0xffffffff for none) | frame u64 | transfers", async () => {
  const txs = await sampleTxs();
  const chunks = proposalPayload(FOUR.network.id, SLOT, -1, 15, txs);
  const payload = concatBytes(chunks);
  assert.equal(payload.length, VOTE_HEAD_BYTES + 4 + 8 + 2 * TX_BYTES);
  assertHead(payload, 2, FOUR.network.id, SLOT);
  const view = viewOf(payload);
  assert.equal(view.getUint32(VOTE_HEAD_BYTES), 0xffff_ffff);
  assert.equal(view.getBigUint64(VOTE_HEAD_BYTES + 4), 15n);
  assert.equal(toHex(payload.subarray(VOTE_HEAD_BYTES + 12)), toHex(concatBytes(txs.map((t) => t.bytes))));
  assert.equal(chunks.at(-1), txs[1]!.bytes, "transfers are sent as they are, not copied");

  const withPol = concatBytes(proposalPayload(FOUR.network.id, SLOT, 2, 12, []));
  assert.equal(withPol.length, VOTE_HEAD_BYTES + 12);
  assert.equal(viewOf(withPol).getUint32(VOTE_HEAD_BYTES), 2);
  assert.equal(Code.proposal, 2);
});

Deno.test("wantPayload: code 6 | network id | height u64", () => {
  const payload = wantPayload(FOUR.network.id, 0x1234_5678_9a);
  assert.equal(payload.length, 1 + 32 + 8);
  assert.equal(payload[0], Code.want);
  assert.equal(Code.want, 6);
  assert.equal(toHex(payload.subarray(1, 33)), FOUR.network.id);
  assert.equal(viewOf(payload).getBigUint64(33), 0x1234_5678_9an);
});

// --- Certificates

Deno.test("checkCertificate accepts a quorum of real precommit signatures, and more than a quorum", () => {
  for (const net of [FOUR, THREE]) {
    const q = net.network.quorum;
    const all = Array.from({ length: net.network.servers.length }, (_, i) => i);
    assert.equal(
      checkCertificate(net.network, certOf(precommits(net, SLOT, DIGEST, all.slice(0, q)))),
      undefined,
    );
    assert.equal(
      checkCertificate(net.network, certOf(precommits(net, SLOT, DIGEST, all.slice(-q)))),
      undefined,
    );
    assert.equal(checkCertificate(net.network, certOf(precommits(net, SLOT, DIGEST, all))), undefined);
  }
  assert.equal(FOUR.network.quorum, 3);
  assert.equal(THREE.network.quorum, 2);
});

Deno.test("checkCertificate refuses fewer than a quorum, repeated, unordered or unknown signers", () => {
  const refuses = (signatures: Certificate["signatures"], pattern: RegExp, what: string) => {
    const problem = checkCertificate(FOUR.network, certOf(signatures));
    assert.ok(problem !== undefined, what);
    assert.match(problem, pattern, what);
  };
  const sig = (signers: number[]) => precommits(FOUR, SLOT, DIGEST, signers);
  refuses(sig([0, 1]), /holds 2 signatures, fewer than the quorum 3/, "two of four");
  refuses([], /holds 0 signatures/, "none");
  refuses(sig([0, 1, 1]), /not distinct servers in order/, "a repeated signer");
  refuses([...sig([0, 1]), ...sig([0])], /not distinct servers in order/, "a repeated signer, not adjacent");
  refuses(sig([2, 1, 0]), /not distinct servers in order/, "signers in reverse order");
  refuses(sig([0, 2, 1]), /not distinct servers in order/, "signers out of order");
  const valid = sig([0, 1, 2]);
  refuses(
    [...valid.slice(0, 2), { signer: 4, signature: valid[2]!.signature }],
    /not distinct/,
    "index 4 of 4",
  );
  refuses(
    [...valid.slice(0, 2), { signer: 255, signature: valid[2]!.signature }],
    /not distinct/,
    "index 255",
  );
  refuses([{ signer: -1, signature: valid[0]!.signature }, ...valid.slice(1)], /not distinct/, "index -1");
  refuses([{ signer: 0.5, signature: valid[0]!.signature }, ...valid.slice(1)], /not distinct/, "index 0.5");
});

Deno.test("checkCertificate refuses a bad signature, and one made over another digest, round, height or network", () => {
  const good = precommits(FOUR, SLOT, DIGEST, [0, 1, 2]);
  const replace = (sig: Uint8Array) => [...good.slice(0, 2), { signer: 2, signature: sig }];
  const refuses = (signatures: Certificate["signatures"], what: string) => {
    const problem = checkCertificate(FOUR.network, certOf(signatures));
    assert.equal(problem, "certificate signature of s2 does not verify", what);
  };
  const flipped = good[2]!.signature.slice();
  flipped[5]! ^= 1;
  refuses(replace(flipped), "a flipped bit");
  refuses(replace(new Uint8Array(64)), "zeros");
  refuses(replace(good[2]!.signature.subarray(0, 63)), "a short signature");
  refuses(replace(good[1]!.signature), "server 1's signature under server 2's index");
  const other = (slot: Slot, digest: string, networkId = FOUR.network.id) =>
    replace(precommits(FOUR, slot, digest, [2], networkId)[0]!.signature);
  refuses(other(SLOT, "ee".repeat(32)), "another digest");
  refuses(other({ ...SLOT, round: SLOT.round + 1 }, DIGEST), "another round");
  refuses(other({ ...SLOT, height: SLOT.height + 1 }, DIGEST), "another height");
  refuses(other({ ...SLOT, prevDigest: ZERO }, DIGEST), "another previous digest");
  refuses(other(SLOT, DIGEST, THREE.network.id), "another network");
  const prevote = FOUR.signers[2]!(sha256(votePayload("prevote", FOUR.network.id, SLOT, DIGEST)));
  refuses(replace(prevote), "a prevote's signature");
  // A whole certificate signed by the keys of another network's servers.
  assert.match(
    checkCertificate(FOUR.network, certOf(precommits(STRANGERS, SLOT, DIGEST, [0, 1, 2], FOUR.network.id)))!,
    /does not verify/,
  );
});

// --- Commits

Deno.test("encodeCommit and decodeCommit round-trip a commit", async () => {
  const commit = await sampleCommit();
  const chunks = encodeCommit(FOUR.network.id, commit);
  assert.equal(chunks[3], commit.state.ledger.bytes, "the database is sent as it is, not copied");
  const bytes = concatBytes(chunks);
  assert.equal(bytes[0], Code.commit);
  assert.equal(Code.commit, 5);
  assert.equal(toHex(bytes.subarray(1, 33)), FOUR.network.id);
  const decoded = decodeCommit(bytes);
  assert.equal(decoded.networkId, FOUR.network.id);
  assertSameCommit(decoded.commit, commit);
  assert.equal(checkCommit(FOUR.network, decoded.networkId, decoded.commit), undefined);

  // An empty database, no recent ids, a large round and height.
  const empty: Commit = {
    frame: 2 ** 40,
    state: { ledger: Ledger.fromBalances([]), recent: [] },
    txsDigest: txsHash([]),
    cert: { height: 2 ** 40, round: 0x7fff_ffff, prevDigest: ZERO, digest: DIGEST, signatures: [] },
  };
  const back = decodeCommit(concatBytes(encodeCommit(THREE.network.id, empty)));
  assert.equal(back.networkId, THREE.network.id);
  assertSameCommit(back.commit, empty);
});

Deno.test("checkCommit accepts a certified commit and refuses another network, supply, state or certificate", async () => {
  const commit = await sampleCommit();
  const network = FOUR.network;
  assert.equal(checkCommit(network, network.id, commit), undefined);

  assert.equal(
    checkCommit(network, THREE.network.id, commit),
    "it belongs to another network (its network id differs)",
  );
  assert.equal(
    checkCommit(THREE.network, THREE.network.id, commit),
    "its state does not hash to the digest its certificate signs",
  );

  const inflated = {
    ...commit,
    state: { ...commit.state, ledger: Ledger.fromBalances([[ACCOUNT_A, 901], [ACCOUNT_B, 600]]) },
  };
  assert.equal(
    checkCommit(network, network.id, inflated),
    "its database holds a total supply of 1501, not 1500",
  );

  const notSigned = (what: string, c: Commit) =>
    assert.equal(
      checkCommit(network, network.id, c),
      "its state does not hash to the digest its certificate signs",
      what,
    );
  // The forged catch-up: the certified balances with the replay protection removed.
  notSigned("recent ids removed", { ...commit, state: { ...commit.state, recent: [] } });
  notSigned("one frame of recent ids removed", {
    ...commit,
    state: { ...commit.state, recent: sampleRecent().filter((r) => r.frame !== 7) },
  });
  notSigned("balances moved (same supply)", {
    ...commit,
    state: { ...commit.state, ledger: Ledger.fromBalances([[ACCOUNT_A, 1000], [ACCOUNT_B, 500]]) },
  });
  notSigned("another frame", { ...commit, frame: 13 });
  notSigned("other transfers", { ...commit, txsDigest: txsHash([]) });
  notSigned("another previous digest", { ...commit, cert: { ...commit.cert, prevDigest: ZERO } });

  const flipped = commit.cert.signatures.map((s) => ({ ...s, signature: s.signature.slice() }));
  flipped[1]!.signature[0]! ^= 1;
  assert.equal(
    checkCommit(network, network.id, { ...commit, cert: { ...commit.cert, signatures: flipped } }),
    "certificate signature of s1 does not verify",
  );
  assert.match(
    checkCommit(network, network.id, {
      ...commit,
      cert: { ...commit.cert, signatures: commit.cert.signatures.slice(0, 2) },
    })!,
    /fewer than the quorum 3/,
  );
  // The same signatures under another round do not verify.
  assert.match(
    checkCommit(network, network.id, { ...commit, cert: { ...commit.cert, round: commit.cert.round + 1 } })!,
    /does not verify/,
  );
  // Through bytes: a commit decoded from bytes with one signature byte changed.
  const bytes = concatBytes(encodeCommit(network.id, commit));
  const sigOffset = 1 + 32 + 8 + 4 + 32 + 32 + 8 + 32 + 1;
  bytes[sigOffset + 1 + 10]! ^= 0x80;
  const decoded = decodeCommit(bytes);
  assert.equal(
    checkCommit(network, decoded.networkId, decoded.commit),
    "certificate signature of s0 does not verify",
  );
});

Deno.test("decodeCommit throws SyntaxError on every proper prefix of a commit", async () => {
  const bytes = concatBytes(encodeCommit(FOUR.network.id, await sampleCommit()));
  for (let n = 0; n < bytes.length; n++) {
    assert.throws(() => decodeCommit(bytes.subarray(0, n)), SyntaxError, `prefix of ${n} bytes`);
  }
  assert.throws(() => decodeCommit(concatBytes([bytes, new Uint8Array(1)])), SyntaxError, "a trailing byte");
  const wrongCode = bytes.slice();
  wrongCode[0] = Code.precommit;
  assert.throws(() => decodeCommit(wrongCode), /Not a commit/);
});

Deno.test("decodeCommit refuses a frame before the height, a database length out of range and a bad database", async () => {
  const bytes = concatBytes(encodeCommit(FOUR.network.id, await sampleCommit()));
  const view = (b: Uint8Array) => viewOf(b);
  const heightAt = 1 + 32;
  const frameAt = 1 + 32 + 8 + 4 + 32 + 32;
  const countAt = frameAt + 8 + 32;
  const dbLengthAt = countAt + 1 + 3 * 65;

  const early = bytes.slice();
  view(early).setBigUint64(frameAt, 11n);
  assert.throws(() => decodeCommit(early), /frame is out of range/);
  const hugeHeight = bytes.slice();
  view(hugeHeight).setBigUint64(heightAt, 1n << 60n);
  assert.throws(() => decodeCommit(hugeHeight), /frame is out of range/);
  const hugeDb = bytes.slice();
  view(hugeDb).setBigUint64(dbLengthAt, 1n << 60n);
  assert.throws(() => decodeCommit(hugeDb), /database length is out of range/);
  const longDb = bytes.slice();
  view(longDb).setBigUint64(dbLengthAt, BigInt(bytes.length));
  assert.throws(() => decodeCommit(longDb), /database length is out of range/);
  const moreSignatures = bytes.slice();
  moreSignatures[countAt] = 255;
  assert.throws(() => decodeCommit(moreSignatures), SyntaxError);
  const badMagic = bytes.slice();
  badMagic[dbLengthAt + 8]! ^= 1;
  assert.throws(() => decodeCommit(badMagic), /wrong magic/);
});

// --- Recent ids

Deno.test("encodeRecent and decodeRecent round-trip recent ids: frames u32 | (frame u64 | count u32 | ids)", () => {
  const recent = sampleRecent();
  const bytes = encodeRecent(recent);
  assert.equal(bytes.length, 4 + 3 * 12 + 3 * 32);
  assert.equal(viewOf(bytes).getUint32(0), 3);
  assert.equal(viewOf(bytes).getBigUint64(4), 7n);
  assert.equal(viewOf(bytes).getUint32(12), 2);
  assert.equal(toHex(bytes.subarray(16, 48)), idOf(1));
  const back = decodeRecent(bytes);
  assert.deepEqual(
    back.map((r) => ({ frame: r.frame, ids: [...r.ids] })),
    recent.map((r) => ({ frame: r.frame, ids: [...r.ids] })),
  );
  assert.equal(toHex(encodeRecent(back)), toHex(bytes));
  assert.equal(toHex(encodeRecent([])), "00000000");
  assert.deepEqual(decodeRecent(new Uint8Array(4)), []);
  assert.deepEqual(
    decodeRecent(encodeRecent([{ frame: 0, ids: new Set() }])).map((r) => r.frame),
    [0],
    "frame 0 is allowed first",
  );
});

Deno.test("each frame's recent ids are encoded once and shared by later states; a set changed afterwards is a bug that throws", () => {
  const recent = sampleRecent();
  const later = [...recent.slice(1), { frame: 99, ids: new Set([idOf(9)]) }];
  const first = encodeRecent(recent);
  // A later state holding the same entries encodes to what a fresh encoding of equal entries gives.
  const fresh = later.map((r) => ({ frame: r.frame, ids: new Set(r.ids) }));
  assert.equal(toHex(encodeRecent(later)), toHex(encodeRecent(fresh)));
  assert.equal(toHex(encodeRecent(recent)), toHex(first), "the same bytes the second time");
  assert.equal(toHex(recentHash(later)), toHex(sha256(encodeRecent(fresh))));
  (recent[0]!.ids as Set<string>).add(idOf(42));
  assert.throws(
    () => encodeRecent(recent),
    /Invariant broken: the recent ids of frame 7 changed after they were encoded/,
  );
});

Deno.test("decodeRecent refuses frames out of order, trailing bytes, too many frames or ids, and cut-off input", () => {
  const refuses = (bytes: Uint8Array, pattern: RegExp, what: string) =>
    assert.throws(() => decodeRecent(bytes), (err: unknown) => {
      assert.ok(err instanceof SyntaxError, `${what}: ${err}`);
      assert.match(err.message, pattern, what);
      return true;
    });
  const ids = (n: number) => new Set([idOf(n)]);
  refuses(encodeRecent([{ frame: 9, ids: ids(1) }, { frame: 8, ids: ids(2) }]), /out of order/, "decreasing");
  refuses(encodeRecent([{ frame: 9, ids: ids(1) }, { frame: 9, ids: ids(2) }]), /out of order/, "repeated");
  const huge = encodeRecent([{ frame: 1, ids: new Set() }]);
  viewOf(huge).setBigUint64(4, 1n << 60n);
  refuses(huge, /out of order/, "a frame above 2^53 - 1");
  refuses(
    concatBytes([encodeRecent(sampleRecent()), new Uint8Array(1)]),
    /trailing bytes/,
    "a trailing byte",
  );
  refuses(concatBytes([encodeRecent([]), new Uint8Array(12)]), /trailing bytes/, "a frame past the count");

  const tooManyFrames = new Uint8Array(4);
  viewOf(tooManyFrames).setUint32(0, MAX_RECENT_FRAMES + 1);
  refuses(tooManyFrames, /Too many recent frames/, "MAX_RECENT_FRAMES + 1 frames");
  const tooManyIds = new Uint8Array(4 + 12);
  viewOf(tooManyIds).setUint32(0, 1);
  viewOf(tooManyIds).setUint32(12, MAX_RECENT_IDS + 1);
  refuses(tooManyIds, /too many/, "MAX_RECENT_IDS + 1 ids in one frame");

  const bytes = encodeRecent(sampleRecent());
  for (let n = 0; n < bytes.length; n++) {
    assert.throws(() => decodeRecent(bytes.subarray(0, n)), SyntaxError, `prefix of ${n} bytes`);
  }
});
