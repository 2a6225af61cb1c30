// lib/wire.ts: signed peer messages, the peer proof on a connection, length-prefixed framing over a byte
// stream (read in random small chunks), the ordered writer, client requests and responses, and the limits.
// The payloads themselves (proposals, votes, commits, wants) are lib/certificate.ts's: certificate_test.ts.

import assert from "node:assert/strict";
import { concatBytes, toHex, viewOf } from "../lib/_bytes.ts";
import {
  Code,
  type Commit,
  decodeCommit,
  encodeCommit,
  proposalPayload,
  type Slot,
  VOTE_HEAD_BYTES,
  votePayload,
} from "../lib/certificate.ts";
import { HASH_BYTES, sha256 } from "../lib/hash.ts";
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES, signerOf } from "../lib/keys.ts";
import { Ledger, MAX_DB_BYTES, type RecentIds } from "../lib/ledger.ts";
import { decodeTx, type Tx, TX_BYTES } from "../lib/tx.ts";
import {
  AUTH_CONTEXT,
  authDigest,
  type ByteReader,
  type ByteWriter,
  CHALLENGE_BYTES,
  checkAuth,
  COALESCE_BYTES,
  decodeResponse,
  encodeAuth,
  encodePeerMessage,
  encodeRequest,
  encodeResponse,
  Kind,
  LENGTH_PREFIX_BYTES,
  MAX_CLIENT_MESSAGE_BYTES,
  MAX_FRAME_TXS,
  MAX_PEER_MESSAGE_BYTES,
  MAX_RECENT_FRAMES,
  MAX_RECENT_IDS,
  messageBody,
  MessageReader,
  MessageWriter,
  openPeerMessage,
  PEER_HEAD_BYTES,
  ProtocolError,
  signPeerMessage,
} from "../lib/wire.ts";
import {
  assertRejectsError,
  assertThrowsError,
  makeKeyPair,
  makeKeyPairs,
  seededRandom,
  signTransfer,
} from "./_helpers.ts";

const T0 = 1_700_000_000_000;
const NETWORK_ID = "ab".repeat(32);
const SLOT: Slot = { height: 77, round: 0, prevDigest: "cd".repeat(32) };

function bytesOf(n: number, seed: number): Uint8Array {
  const random = seededRandom(seed);
  return Uint8Array.from({ length: n }, () => random.int(256));
}

/** A stream over `bytes` that hands out chunks of 1 to `maxChunk` bytes, sizes drawn from `seed`. */
function chunkedReader(bytes: Uint8Array, seed: number, maxChunk = 7): ByteReader & { reads: number } {
  const random = seededRandom(seed);
  let off = 0;
  const reader = {
    reads: 0,
    read(p: Uint8Array): Promise<number | null> {
      reader.reads++;
      if (off >= bytes.length) return Promise.resolve(null);
      const n = Math.min(p.length, bytes.length - off, 1 + random.int(maxChunk));
      p.set(bytes.subarray(off, off + n));
      off += n;
      return Promise.resolve(n);
    },
  };
  return reader;
}

async function readAll(reader: MessageReader): Promise<Uint8Array[]> {
  const bodies: Uint8Array[] = [];
  for (let body = await reader.next(); body !== null; body = await reader.next()) bodies.push(body);
  return bodies;
}

async function threeTransfers(): Promise<Tx[]> {
  const [alice, bob, carol] = await makeKeyPairs(3);
  return await Promise.all([
    signTransfer(alice!, bob!, { amount: 10, timestampMs: T0 }),
    signTransfer(bob!, carol!, { amount: 5, timestampMs: T0 + 1 }),
    signTransfer(carol!, alice!, { amount: 1, timestampMs: T0 + 2 }),
  ]);
}

/** A prevote payload for a digest drawn from `seed`. */
function prevote(seed: number): Uint8Array {
  return votePayload("prevote", NETWORK_ID, SLOT, toHex(bytesOf(32, seed)));
}

/** A proposal payload (as chunks) carrying `txBytes` cut into 144-byte transfers (signatures unchecked). */
function proposal(txBytes: Uint8Array): Uint8Array[] {
  const txs: Tx[] = [];
  for (let off = 0; off < txBytes.length; off += TX_BYTES) {
    txs.push(decodeTx(txBytes.subarray(off, off + TX_BYTES))!);
  }
  return proposalPayload(NETWORK_ID, SLOT, -1, SLOT.height, txs);
}

function sampleRecent(): RecentIds {
  return [
    { frame: 7, ids: new Set([toHex(sha256(new Uint8Array([1]))), toHex(sha256(new Uint8Array([2])))]) },
    { frame: 8, ids: new Set() },
    { frame: 9, ids: new Set([toHex(sha256(new Uint8Array([3])))]) },
  ];
}

function sampleLedger(): Ledger {
  return Ledger.fromBalances([["11".repeat(32), 100], ["22".repeat(32), 50]]);
}

/** A commit whose certificate is not checked here (wire only carries its bytes). */
function sampleCommit(): Commit {
  return {
    frame: 9,
    state: { ledger: sampleLedger(), recent: sampleRecent() },
    txsDigest: bytesOf(32, 30),
    cert: {
      height: 9,
      round: 2,
      prevDigest: "cd".repeat(32),
      digest: "ef".repeat(32),
      signatures: [{ signer: 0, signature: bytesOf(64, 31) }, { signer: 2, signature: bytesOf(64, 32) }],
    },
  };
}

function assertSameRecent(actual: RecentIds, expected: RecentIds): void {
  assert.deepEqual(
    actual.map((r) => ({ frame: r.frame, ids: [...r.ids] })),
    expected.map((r) => ({ frame: r.frame, ids: [...r.ids] })),
  );
}

// --- Signed peer messages

Deno.test("encodePeerMessage and openPeerMessage: a listed sender's vote opens with its payload", async () => {
  const server = await makeKeyPair(7);
  const payload = prevote(5);
  const message = concatBytes(await encodePeerMessage(server, [payload]));
  assert.equal(
    viewOf(message).getUint32(0),
    message.length - LENGTH_PREFIX_BYTES,
    "prefix counts the body only",
  );
  const body = message.subarray(LENGTH_PREFIX_BYTES);
  assert.equal(body[0], Kind.peer);
  assert.equal(toHex(body.subarray(1, 33)), server.publicHex);
  assert.equal(body.length, PEER_HEAD_BYTES + payload.length);
  const opened = openPeerMessage(body, (key) => key === server.publicHex);
  assert.ok("payload" in opened, JSON.stringify(opened));
  assert.equal(opened.sender, server.publicHex);
  assert.equal(toHex(opened.payload), toHex(payload));
  assert.equal(opened.payload[0], Code.prevote);
  assert.equal(toHex(messageBody(await encodePeerMessage(server, [payload]))), toHex(body));
});

Deno.test("signPeerMessage with a synchronous signer writes the same bytes as encodePeerMessage", async () => {
  const server = await makeKeyPair(13);
  const payload = proposal(concatBytes((await threeTransfers()).map((t) => t.bytes)));
  const viaAsync = concatBytes(await encodePeerMessage(server, payload));
  const viaSync = concatBytes(signPeerMessage(server.publicKey, signerOf(server), payload));
  assert.equal(toHex(viaSync), toHex(viaAsync), "Ed25519 signatures are deterministic");
  const opened = openPeerMessage(messageBody([viaSync]), (key) => key === server.publicHex);
  assert.ok("payload" in opened, JSON.stringify(opened));
  assert.equal(toHex(opened.payload), toHex(concatBytes(payload)));
});

Deno.test("encodePeerMessage signs a payload given in chunks as one payload (a commit)", async () => {
  const server = await makeKeyPair(8);
  const chunks = encodeCommit(NETWORK_ID, sampleCommit());
  assert.ok(chunks.length > 1);
  const body = concatBytes(await encodePeerMessage(server, chunks)).subarray(LENGTH_PREFIX_BYTES);
  const opened = openPeerMessage(body, () => true);
  assert.ok("payload" in opened, JSON.stringify(opened));
  const { networkId, commit } = decodeCommit(opened.payload);
  assert.equal(networkId, NETWORK_ID);
  assert.equal(commit.frame, 9);
  assert.equal(commit.state.ledger.hash, sampleLedger().hash);
  assertSameRecent(commit.state.recent, sampleRecent());
});

Deno.test("openPeerMessage drops unlisted senders, bad signatures, changed payloads and short bodies", async () => {
  const [server, other] = await makeKeyPairs(2);
  const body = concatBytes(await encodePeerMessage(server!, [prevote(6)])).subarray(4);
  const listed = (key: string) => key === server!.publicHex || key === other!.publicHex;

  const unlisted = openPeerMessage(body, (key) => key === other!.publicHex);
  assert.deepEqual(unlisted, { problem: "sender key is not in peers.json", sender: server!.publicHex });

  const badSignature = body.slice();
  badSignature[33 + 10]! ^= 0x01;
  assert.deepEqual(openPeerMessage(badSignature, listed), {
    problem: "signature does not verify",
    sender: server!.publicHex,
  });

  for (const offset of [PEER_HEAD_BYTES, PEER_HEAD_BYTES + 1, body.length - 1]) {
    const changed = body.slice();
    changed[offset]! ^= 0x01;
    assert.deepEqual(openPeerMessage(changed, listed), {
      problem: "signature does not verify",
      sender: server!.publicHex,
    }, `payload byte ${offset}`);
  }

  const otherKey = body.slice();
  otherKey.set(other!.publicKey, 1); // claims to come from another listed server
  assert.deepEqual(openPeerMessage(otherKey, listed), {
    problem: "signature does not verify",
    sender: other!.publicHex,
  });

  assert.deepEqual(openPeerMessage(body.subarray(0, PEER_HEAD_BYTES), listed), {
    problem: "message is shorter than its head",
  });
});

// --- Proving a server's key on a connection

Deno.test("authDigest is SHA-256 of the context, the network id, the listener's key and the challenge", async () => {
  const listener = await makeKeyPair(20);
  const challenge = bytesOf(CHALLENGE_BYTES, 40);
  const expected = sha256(concatBytes([
    new TextEncoder().encode(AUTH_CONTEXT),
    new Uint8Array(32).fill(0xab),
    listener.publicKey,
    challenge,
  ]));
  assert.equal(toHex(authDigest(NETWORK_ID, listener.publicKey, challenge)), toHex(expected));
  assert.notEqual(
    toHex(authDigest("ac".repeat(32), listener.publicKey, challenge)),
    toHex(expected),
    "bound to the network",
  );
});

Deno.test("checkAuth accepts a listed server's proof for this challenge and refuses any other", async () => {
  const [listener, peer, stranger] = await makeKeyPairs(3);
  const challenge = bytesOf(CHALLENGE_BYTES, 41);
  const isListed = (key: string) => key === listener!.publicHex || key === peer!.publicHex;
  const context = { networkId: NETWORK_ID, listenerKey: listener!.publicKey, challenge, isListed };
  const proof = (keyPair: typeof peer, digest: Uint8Array) =>
    encodeAuth(keyPair!.publicKey, signerOf(keyPair!)(digest));
  const good = proof(peer, authDigest(NETWORK_ID, listener!.publicKey, challenge));
  assert.equal(good.length, PUBLIC_KEY_BYTES + SIGNATURE_BYTES);
  assert.equal(checkAuth(good, context), peer!.publicHex);

  assert.equal(checkAuth(good.subarray(0, good.length - 1), context), undefined, "wrong length");
  assert.equal(checkAuth(concatBytes([good, new Uint8Array(1)]), context), undefined, "wrong length");
  const unlisted = proof(stranger, authDigest(NETWORK_ID, listener!.publicKey, challenge));
  assert.equal(checkAuth(unlisted, context), undefined, "a key not in peers.json");
  const otherChallenge = proof(peer, authDigest(NETWORK_ID, listener!.publicKey, bytesOf(32, 42)));
  assert.equal(checkAuth(otherChallenge, context), undefined, "a replayed proof of another challenge");
  const otherListener = proof(peer, authDigest(NETWORK_ID, stranger!.publicKey, challenge));
  assert.equal(checkAuth(otherListener, context), undefined, "a proof made for another server");
  const otherNetwork = proof(peer, authDigest("ac".repeat(32), listener!.publicKey, challenge));
  assert.equal(checkAuth(otherNetwork, context), undefined, "a proof made for another network");
  const flipped = good.slice();
  flipped[PUBLIC_KEY_BYTES + 3]! ^= 1;
  assert.equal(checkAuth(flipped, context), undefined, "a damaged signature");
  const stolen = good.slice();
  stolen.set(listener!.publicKey, 0);
  assert.equal(checkAuth(stolen, context), undefined, "another listed key claiming the signature");
});

// --- Limits

Deno.test("MAX_PEER_MESSAGE_BYTES holds the largest commit and the largest proposal", () => {
  const commitHead = 1 + HASH_BYTES + 8 + 4 + HASH_BYTES + HASH_BYTES + 8 + HASH_BYTES + 1;
  const largestCommit = commitHead + 255 * (1 + SIGNATURE_BYTES) + 8 + MAX_DB_BYTES + 4 +
    MAX_RECENT_FRAMES * 12 + MAX_RECENT_IDS * HASH_BYTES;
  assert.ok(PEER_HEAD_BYTES + largestCommit <= MAX_PEER_MESSAGE_BYTES);
  const largestProposal = VOTE_HEAD_BYTES + 12 + MAX_FRAME_TXS * TX_BYTES;
  assert.ok(PEER_HEAD_BYTES + largestProposal <= MAX_PEER_MESSAGE_BYTES);
  assert.ok(MAX_PEER_MESSAGE_BYTES < 2 ** 32, "fits the u32 length prefix");
  assert.ok(MAX_CLIENT_MESSAGE_BYTES < PEER_HEAD_BYTES + VOTE_HEAD_BYTES + 12 + 30 * TX_BYTES);
});

// --- Framing

function status(): Uint8Array {
  return encodeRequest(Kind.status);
}

Deno.test("MessageReader returns pipelined messages in order from random small chunks, then null", async () => {
  const server = await makeKeyPair(9);
  const messages = [
    status(),
    encodeRequest(Kind.balance, bytesOf(32, 7)),
    encodeResponse({ ok: true, balance: 12 }),
    concatBytes(
      await encodePeerMessage(server, proposal(concatBytes((await threeTransfers()).map((t) => t.bytes)))),
    ),
    encodeRequest(Kind.submit, bytesOf(TX_BYTES, 9)),
    status(),
  ];
  const stream = concatBytes(messages);
  for (let seed = 1; seed <= 25; seed++) {
    const reader = new MessageReader(chunkedReader(stream, seed), { maxBytes: MAX_CLIENT_MESSAGE_BYTES });
    const bodies = await readAll(reader);
    assert.deepEqual(
      bodies.map(toHex),
      messages.map((m) => toHex(m.subarray(LENGTH_PREFIX_BYTES))),
      `seed ${seed}`,
    );
    assert.equal(reader.buffered, 0);
  }
});

Deno.test("MessageReader returns null at once on an empty stream", async () => {
  const reader = new MessageReader(chunkedReader(new Uint8Array(0), 1), { maxBytes: 100 });
  assert.equal(await reader.next(), null);
  assert.equal(await reader.next(), null);
});

Deno.test("MessageReader refuses a length above maxBytes with ProtocolError unless allowLarge accepts it", async () => {
  const server = await makeKeyPair(10);
  const big = proposal(new Uint8Array(30 * TX_BYTES)); // 4441 bytes of payload
  const message = concatBytes(await encodePeerMessage(server, big));
  const size = message.length - LENGTH_PREFIX_BYTES;
  assert.ok(size > MAX_CLIENT_MESSAGE_BYTES);
  const stream = concatBytes([message, status()]);

  await assertRejectsError(
    () => new MessageReader(chunkedReader(stream, 1), { maxBytes: MAX_CLIENT_MESSAGE_BYTES }).next(),
    ProtocolError,
    new RegExp(`message of ${size} bytes is above the limit of ${MAX_CLIENT_MESSAGE_BYTES}`),
  );
  await assertRejectsError(
    () =>
      new MessageReader(chunkedReader(stream, 2), {
        maxBytes: MAX_CLIENT_MESSAGE_BYTES,
        allowLarge: () => false,
      })
        .next(),
    ProtocolError,
    /above the limit/,
  );

  const seen: { head: string; bytes: number }[] = [];
  const reader = new MessageReader(chunkedReader(stream, 3), {
    maxBytes: MAX_CLIENT_MESSAGE_BYTES,
    allowLarge: (head, bytes) => {
      seen.push({ head: toHex(head), bytes });
      return head[0] === Kind.peer && toHex(head.subarray(1, 33)) === server.publicHex;
    },
  });
  const bodies = await readAll(reader);
  assert.deepEqual(
    seen,
    [{ head: toHex(message.subarray(4, 4 + 33)), bytes: size }],
    "shown the kind and sender key",
  );
  assert.equal(bodies.length, 2);
  assert.equal(toHex(bodies[0]!), toHex(message.subarray(4)));
  assert.equal(toHex(bodies[1]!), toHex(status().subarray(4)));
});

Deno.test("MessageReader reads a message larger than its buffer, between small ones", async () => {
  const server = await makeKeyPair(11);
  const huge = concatBytes(
    await encodePeerMessage(server, proposal(bytesOf(600 * TX_BYTES, 12))),
  );
  assert.ok(huge.length > 64 * 1024);
  const stream = concatBytes([status(), huge, status()]);
  for (const seed of [1, 2, 3]) {
    const reader = new MessageReader(chunkedReader(stream, seed, 9000), {
      maxBytes: MAX_CLIENT_MESSAGE_BYTES,
      allowLarge: (head) => head[0] === Kind.peer,
    });
    const bodies = await readAll(reader);
    assert.deepEqual(bodies.map((b) => b.length), [1, huge.length - 4, 1], `seed ${seed}`);
    assert.equal(toHex(sha256(bodies[1]!)), toHex(sha256(huge.subarray(4))));
  }
});

Deno.test("MessageReader throws ProtocolError when the stream ends in the middle of a message", async () => {
  const message = encodeRequest(Kind.submit, bytesOf(TX_BYTES, 13));
  const cuts = [
    ["inside the length prefix", 2],
    ["halfway through the body", LENGTH_PREFIX_BYTES + 70],
    ["one byte short", message.length - 1],
  ] as const;
  for (const [name, at] of cuts) {
    for (const seed of [1, 2, 3]) {
      const stream = concatBytes([status(), message.subarray(0, at)]);
      const reader = new MessageReader(chunkedReader(stream, seed), { maxBytes: MAX_CLIENT_MESSAGE_BYTES });
      assert.equal(toHex((await reader.next())!), toHex(status().subarray(4)), name);
      await assertRejectsError(() => reader.next(), ProtocolError, /closed in the middle of a message/);
    }
  }
});

Deno.test("MessageReader throws ProtocolError when a large message is cut off", async () => {
  const server = await makeKeyPair(12);
  const huge = concatBytes(
    await encodePeerMessage(server, proposal(bytesOf(600 * TX_BYTES, 15))),
  );
  const reader = new MessageReader(chunkedReader(huge.subarray(0, huge.length - 100), 1, 9000), {
    maxBytes: MAX_CLIENT_MESSAGE_BYTES,
    allowLarge: () => true,
  });
  await assertRejectsError(() => reader.next(), ProtocolError, /closed in the middle of a message/);
});

Deno.test({
  // Regression: next() used to return `size` stale bytes of its buffer here instead of throwing.
  name: "MessageReader throws ProtocolError when the stream ends right after a length prefix",

  async fn() {
    const stream = concatBytes([status(), new Uint8Array([0, 0, 0, 10])]);
    for (const seed of [1, 2, 3]) {
      const reader = new MessageReader(chunkedReader(stream, seed), { maxBytes: MAX_CLIENT_MESSAGE_BYTES });
      await reader.next();
      await assertRejectsError(() => reader.next(), ProtocolError, /closed in the middle of a message/);
    }
  },
});

Deno.test("MessageReader refuses a zero length with ProtocolError", async () => {
  const reader = new MessageReader(chunkedReader(new Uint8Array([0, 0, 0, 0, 0x12]), 1), { maxBytes: 100 });
  await assertRejectsError(() => reader.next(), ProtocolError, /empty message/);
});

// --- Writer

/** A connection that accepts at most `maxWrite` bytes per call, after a macrotask, and records them. */
function slowWriter(maxWrite: number): ByteWriter & { received: number[] } {
  const writer = {
    received: [] as number[],
    async write(p: Uint8Array): Promise<number> {
      await new Promise((resolve) => setTimeout(resolve, 0));
      const n = Math.min(p.length, maxWrite);
      writer.received.push(...p.subarray(0, n));
      return n;
    },
  };
  return writer;
}

Deno.test("MessageWriter writes queued messages whole and in order over short writes", async () => {
  const conn = slowWriter(5);
  const writer = new MessageWriter(conn, { maxQueuedBytes: 1 << 20 });
  const messages = [
    [encodeRequest(Kind.balance, bytesOf(32, 16))],
    [status()],
    [encodeResponse({ n: 1 }), encodeResponse({ n: 2 })],
    [encodeRequest(Kind.submit, bytesOf(TX_BYTES, 17))],
  ];
  await Promise.all(messages.map((m) => writer.write(m)));
  assert.equal(toHex(Uint8Array.from(conn.received)), toHex(concatBytes(messages.flat())));
});

Deno.test("MessageWriter writes a large message of many small chunks in pieces of about COALESCE_BYTES, not chunk by chunk", async () => {
  // A proposal of 5,000 transfers is 5,000 chunks of 144 bytes: one write each made it arrive 0.5 s late.
  const sizes: number[] = [];
  const received: Uint8Array[] = [];
  const conn: ByteWriter = {
    write(p: Uint8Array): Promise<number> {
      sizes.push(p.length);
      received.push(p.slice());
      return Promise.resolve(p.length);
    },
  };
  const writer = new MessageWriter(conn, { maxQueuedBytes: 64 << 20 });
  const big = bytesOf(COALESCE_BYTES + 10, 3);
  const chunks = [
    ...Array.from({ length: 5_000 }, (_, i) => bytesOf(TX_BYTES, i)),
    big,
    bytesOf(TX_BYTES, 1),
  ];
  await writer.write(chunks);
  assert.equal(toHex(concatBytes(received)), toHex(concatBytes(chunks)), "the same bytes in the same order");
  // Small chunks are joined until a piece reaches COALESCE_BYTES; the big chunk ends the last piece.
  const piece = Math.ceil(COALESCE_BYTES / TX_BYTES) * TX_BYTES;
  const small = 5_000 * TX_BYTES;
  assert.deepEqual(sizes, [piece, piece, small - 2 * piece, big.length, TX_BYTES]);
});

Deno.test("MessageWriter refuses a message that would queue more than maxQueuedBytes", async () => {
  const conn = slowWriter(1000);
  const writer = new MessageWriter(conn, { maxQueuedBytes: 40 });
  const first = writer.write([new Uint8Array(30)]);
  await assertRejectsError(() => writer.write([new Uint8Array(20)]), ProtocolError, /too many bytes waiting/);
  await first;
  await writer.write([new Uint8Array(20)]); // the queue has drained
  assert.equal(conn.received.length, 50);
});

Deno.test("MessageWriter.drained resolves only once the queue is down to the given bytes", async () => {
  // A writer that takes a write only when the test lets it: the queue stays full until then.
  const gates: (() => void)[] = [];
  const gated: ByteWriter = {
    write: (p) => new Promise((resolve) => gates.push(() => resolve(p.length))),
  };
  const writer = new MessageWriter(gated, { maxQueuedBytes: 1 << 20 });
  await writer.drained(0); // nothing queued
  const big = new Uint8Array(70 * 1024); // the pump takes the first before the second is queued
  const writes = [writer.write([big]), writer.write([big])];
  let done = false;
  const waiting = writer.drained(80 * 1024).then(() => done = true);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(done, false, "140 KiB queued is above 80 KiB");
  gates.shift()!();
  await waiting;
  assert.equal(writer.queuedBytes, 70 * 1024);
  gates.shift()!();
  await Promise.all(writes);
});

Deno.test("MessageWriter.drained rejects when the connection fails while waiting", async () => {
  let fail: (err: Error) => void = () => {};
  const failing: ByteWriter = { write: () => new Promise((_, reject) => fail = reject) };
  const writer = new MessageWriter(failing, { maxQueuedBytes: 1 << 20 });
  const write = writer.write([new Uint8Array(1000)]);
  const waiting = writer.drained(10);
  fail(new Deno.errors.BrokenPipe("pipe closed"));
  await assertRejectsError(() => waiting, Deno.errors.BrokenPipe, /pipe closed/);
  await assertRejectsError(() => write, Deno.errors.BrokenPipe, /pipe closed/);
});

Deno.test("MessageWriter rejects every later write once the connection failed", async () => {
  const broken: ByteWriter = { write: () => Promise.reject(new Deno.errors.BrokenPipe("pipe closed")) };
  const writer = new MessageWriter(broken, { maxQueuedBytes: 1000 });
  await assertRejectsError(() => writer.write([status()]), Deno.errors.BrokenPipe, /pipe closed/);
  await assertRejectsError(() => writer.write([status()]), Deno.errors.BrokenPipe, /pipe closed/);
});

// --- Client requests and responses

Deno.test("encodeRequest writes the length prefix, the kind and the argument", () => {
  const id = bytesOf(32, 18);
  const argument = concatBytes([id, new Uint8Array([0, 0, 1, 0x8b, 0xcf, 0xe5, 0x68, 0])]);
  const request = encodeRequest(Kind.txStatus, argument);
  assert.equal(viewOf(request).getUint32(0), 41);
  assert.equal(request[4], 0x13);
  assert.equal(toHex(request.subarray(5)), toHex(argument));
  assert.equal(toHex(status()), "0000000112");
});

Deno.test("encodeResponse and decodeResponse round-trip a MessagePack map", async () => {
  const value = {
    ok: true,
    code: "insufficient_funds",
    balance: 2 ** 53 - 1,
    frame: 28_333_333,
    list: [1, "a"],
  };
  const message = encodeResponse({ ...value, missing: undefined });
  assert.equal(viewOf(message).getUint32(0), message.length - 4);
  const [body] = await readAll(new MessageReader(chunkedReader(message, 1), { maxBytes: 4096 }));
  assert.equal(body![0], Kind.response);
  assert.deepEqual(decodeResponse(body!), value, "undefined fields are left out");
});

Deno.test("decodeResponse refuses a body that is not a response map with SyntaxError", () => {
  const body = (message: Uint8Array) => message.subarray(4);
  assertThrowsError(() => decodeResponse(body(status())), SyntaxError, /not a response/);
  assertThrowsError(() => decodeResponse(new Uint8Array(0)), SyntaxError, /not a response/);
  assertThrowsError(() => decodeResponse(new Uint8Array([0x20, 0x92, 0x01, 0x02])), SyntaxError, /not a map/);
  assertThrowsError(() => decodeResponse(new Uint8Array([0x20, 0xc0])), SyntaxError, /not a map/);
  assertThrowsError(() => decodeResponse(new Uint8Array([0x20, 0x2a])), SyntaxError, /not a map/);
});

Deno.test({
  // Regression: @msgpack/msgpack's RangeError or DecodeError used to pass through decodeResponse.
  name: "decodeResponse refuses bytes that are not MessagePack with SyntaxError",

  fn() {
    for (const bytes of [[0x20], [0x20, 0xc1], [0x20, 0x82, 0xa1]]) {
      assert.throws(() => decodeResponse(new Uint8Array(bytes)), SyntaxError, toHex(new Uint8Array(bytes)));
    }
  },
});
