// lib/wire.ts: payload codes 0 and 1, signed peer messages, length-prefixed framing over a byte stream
// (read in random small chunks), the ordered writer, and client requests and responses.

import assert from "node:assert/strict";
import { concatBytes, toHex, viewOf } from "../lib/_bytes.ts";
import { sha256 } from "../lib/hash.ts";
import { Ledger, MAX_DB_BYTES, type RecentIds } from "../lib/ledger.ts";
import { TX_BYTES } from "../lib/tx.ts";
import {
  type ByteReader,
  type ByteWriter,
  type Catchup,
  Code,
  decodePayload,
  decodeResponse,
  encodeCatchup,
  encodePeerMessage,
  encodeRequest,
  encodeResponse,
  encodeVote,
  Kind,
  LENGTH_PREFIX_BYTES,
  MAX_CLIENT_MESSAGE_BYTES,
  MAX_FRAME_TXS,
  MAX_RECENT_FRAMES,
  MessageReader,
  MessageWriter,
  openPeerMessage,
  PEER_HEAD_BYTES,
  ProtocolError,
  type Vote,
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

async function threeTransfers(): Promise<Uint8Array> {
  const [alice, bob, carol] = await makeKeyPairs(3);
  const txs = await Promise.all([
    signTransfer(alice!, bob!, { amount: 10, timestampMs: T0 }),
    signTransfer(bob!, carol!, { amount: 5, timestampMs: T0 + 1 }),
    signTransfer(carol!, alice!, { amount: 1, timestampMs: T0 + 2 }),
  ]);
  return concatBytes(txs.map((t) => t.bytes));
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

function assertSameRecent(actual: RecentIds, expected: RecentIds): void {
  assert.deepEqual(
    actual.map((r) => ({ frame: r.frame, ids: [...r.ids] })),
    expected.map((r) => ({ frame: r.frame, ids: [...r.ids] })),
  );
}

// --- Payloads

Deno.test("encodeVote and decodePayload round-trip a vote without transfers", () => {
  const hash = sha256(new TextEncoder().encode("db"));
  const payload = encodeVote(123_456, hash);
  assert.equal(payload.length, 1 + 8 + 32);
  assert.equal(payload[0], Code.vote);
  const vote = decodePayload(payload) as Vote;
  assert.equal(vote.code, 0);
  assert.equal(vote.frame, 123_456);
  assert.equal(vote.hash, toHex(hash));
  assert.equal(vote.txBytes.length, 0);
});

Deno.test("encodeVote and decodePayload round-trip a beta's vote with its transfers in order", async () => {
  const txBytes = await threeTransfers();
  const hash = bytesOf(32, 1);
  const payload = encodeVote(Number.MAX_SAFE_INTEGER, hash, txBytes);
  assert.equal(payload.length, 41 + 3 * TX_BYTES);
  assert.equal(
    viewOf(payload).getBigUint64(1),
    BigInt(Number.MAX_SAFE_INTEGER),
    "frame is big-endian at offset 1",
  );
  const vote = decodePayload(payload) as Vote;
  assert.equal(vote.frame, Number.MAX_SAFE_INTEGER);
  assert.equal(vote.hash, toHex(hash));
  assert.equal(toHex(vote.txBytes), toHex(txBytes));
});

Deno.test("encodeVote refuses a buffer that is not a whole number of transfers", () => {
  assertThrowsError(
    () => encodeVote(1, bytesOf(32, 2), new Uint8Array(TX_BYTES + 1)),
    RangeError,
    /whole number/,
  );
});

Deno.test("encodeCatchup and decodePayload round-trip a database and its recent ids", () => {
  const ledger = sampleLedger();
  const recent = sampleRecent();
  const chunks = encodeCatchup(42, ledger.bytes, recent);
  assert.equal(chunks[1], ledger.bytes, "the database is sent as it is, not copied");
  const payload = concatBytes(chunks);
  assert.equal(payload.length, 17 + ledger.bytes.length + 4 + 3 * 12 + 3 * 32);
  assert.equal(payload[0], Code.catchup);
  assert.equal(viewOf(payload).getBigUint64(9), BigInt(ledger.bytes.length));
  const catchup = decodePayload(payload) as Catchup;
  assert.equal(catchup.code, 1);
  assert.equal(catchup.frame, 42);
  assert.equal(toHex(catchup.db), toHex(ledger.bytes));
  assert.equal(Ledger.fromPacked(catchup.db).hash, ledger.hash);
  assertSameRecent(catchup.recent, recent);
});

Deno.test("encodeCatchup and decodePayload round-trip an empty database with no recent ids", () => {
  const empty = Ledger.fromBalances([]);
  const catchup = decodePayload(concatBytes(encodeCatchup(0, empty.bytes, []))) as Catchup;
  assert.equal(catchup.frame, 0);
  assert.equal(toHex(catchup.db), toHex(empty.bytes));
  assert.deepEqual(catchup.recent, []);
});

Deno.test("decodePayload refuses truncated and malformed payloads with SyntaxError", async () => {
  const vote = encodeVote(5, bytesOf(32, 3), await threeTransfers());
  const catchup = concatBytes(encodeCatchup(9, sampleLedger().bytes, sampleRecent()));
  const withU64 = (base: Uint8Array, offset: number, value: bigint) => {
    const copy = base.slice();
    viewOf(copy).setBigUint64(offset, value);
    return copy;
  };
  const withU32 = (base: Uint8Array, offset: number, value: number) => {
    const copy = base.slice();
    viewOf(copy).setUint32(offset, value);
    return copy;
  };
  const framesOffset = 17 + sampleLedger().bytes.length;
  const cases: [string, Uint8Array, RegExp][] = [
    ["empty", new Uint8Array(0), /shorter than its code and frame/],
    ["code and half a frame", new Uint8Array([0, 0, 0, 0]), /shorter than its code and frame/],
    [
      "unknown code",
      new Uint8Array(9).fill(0).map((_, i) => (i === 0 ? 7 : 0)),
      /Unknown peer payload code 7/,
    ],
    ["frame above 2^53 - 1", withU64(vote, 1, 1n << 53n), /frame is out of range/],
    ["vote without its hash", vote.subarray(0, 40), /shorter than its hash/],
    ["vote with a partial transfer", vote.subarray(0, 41 + TX_BYTES + 10), /whole number of transfers/],
    ["catch-up without its length", catchup.subarray(0, 16), /shorter than its header/],
    [
      "catch-up database length beyond the payload",
      withU64(catchup, 9, 1_000_000n),
      /length is out of range/,
    ],
    [
      "catch-up database length above MAX_DB_BYTES",
      withU64(catchup, 9, BigInt(MAX_DB_BYTES + 1)),
      /out of range/,
    ],
    ["catch-up database length above 2^53 - 1", withU64(catchup, 9, 1n << 60n), /out of range/],
    [
      "catch-up with too many recent frames",
      withU32(catchup, framesOffset, MAX_RECENT_FRAMES + 1),
      /too many/,
    ],
    ["catch-up whose last id is cut off", catchup.subarray(0, catchup.length - 1), /cut off/],
    ["catch-up with a trailing byte", concatBytes([catchup, new Uint8Array(1)]), /trailing bytes/],
    ["catch-up claiming more ids than it has", withU32(catchup, framesOffset + 4 + 8, 3), /cut off/],
  ];
  for (const [name, payload, pattern] of cases) {
    const err = assertThrowsError(() => decodePayload(payload), SyntaxError, pattern);
    assert.ok(err instanceof SyntaxError, name);
  }
});

Deno.test("decodePayload refuses every proper prefix of a catch-up, and every vote prefix that splits a field", async () => {
  const catchup = concatBytes(encodeCatchup(9, sampleLedger().bytes, sampleRecent()));
  for (let n = 0; n < catchup.length; n++) {
    assert.throws(() => decodePayload(catchup.subarray(0, n)), SyntaxError, `catch-up prefix of ${n} bytes`);
  }
  const vote = encodeVote(5, bytesOf(32, 4), await threeTransfers());
  for (let n = 0; n < vote.length; n++) {
    const splitsField = n < 41 || (n - 41) % TX_BYTES !== 0;
    if (splitsField) {
      assert.throws(() => decodePayload(vote.subarray(0, n)), SyntaxError, `vote prefix of ${n} bytes`);
    } else assert.equal((decodePayload(vote.subarray(0, n)) as Vote).txBytes.length, n - 41);
  }
});

Deno.test("decodePayload either decodes random bytes or throws SyntaxError, never another error", () => {
  const random = seededRandom(20240601);
  for (let i = 0; i < 2000; i++) {
    const payload = Uint8Array.from({ length: random.int(200) }, () => random.int(256));
    if (payload.length > 0) payload[0] = random.int(3); // mostly codes 0 and 1, to reach their checks
    try {
      decodePayload(payload);
    } catch (err) {
      assert.ok(err instanceof SyntaxError, `payload ${toHex(payload)} threw ${err}`);
    }
  }
});

Deno.test("decodePayload refuses a vote of more than MAX_FRAME_TXS transfers", () => {
  const payload = new Uint8Array(41 + (MAX_FRAME_TXS + 1) * TX_BYTES);
  assertThrowsError(() => decodePayload(payload), SyntaxError, /too many transfers/);
});

// --- Signed peer messages

Deno.test("encodePeerMessage and openPeerMessage: a listed sender's vote opens with its payload", async () => {
  const server = await makeKeyPair(7);
  const payload = encodeVote(77, bytesOf(32, 5));
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
  assert.deepEqual(decodePayload(opened.payload), decodePayload(payload));
});

Deno.test("encodePeerMessage signs a payload given in chunks as one payload (a catch-up)", async () => {
  const server = await makeKeyPair(8);
  const chunks = encodeCatchup(3, sampleLedger().bytes, sampleRecent());
  const body = concatBytes(await encodePeerMessage(server, chunks)).subarray(LENGTH_PREFIX_BYTES);
  const opened = openPeerMessage(body, () => true);
  assert.ok("payload" in opened, JSON.stringify(opened));
  const catchup = decodePayload(opened.payload) as Catchup;
  assert.equal(catchup.frame, 3);
  assertSameRecent(catchup.recent, sampleRecent());
});

Deno.test("openPeerMessage drops unlisted senders, bad signatures, changed payloads and short bodies", async () => {
  const [server, other] = await makeKeyPairs(2);
  const body = concatBytes(await encodePeerMessage(server!, [encodeVote(77, bytesOf(32, 6))])).subarray(4);
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
    concatBytes(await encodePeerMessage(server, [encodeVote(1, bytesOf(32, 8), await threeTransfers())])),
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
  const bigVote = encodeVote(2, bytesOf(32, 10), new Uint8Array(30 * TX_BYTES)); // 4361 bytes of payload
  const message = concatBytes(await encodePeerMessage(server, [bigVote]));
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
    await encodePeerMessage(server, [encodeVote(3, bytesOf(32, 11), bytesOf(600 * TX_BYTES, 12))]),
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
    await encodePeerMessage(server, [encodeVote(3, bytesOf(32, 14), bytesOf(600 * TX_BYTES, 15))]),
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

Deno.test("MessageWriter refuses a message that would queue more than maxQueuedBytes", async () => {
  const conn = slowWriter(1000);
  const writer = new MessageWriter(conn, { maxQueuedBytes: 40 });
  const first = writer.write([new Uint8Array(30)]);
  await assertRejectsError(() => writer.write([new Uint8Array(20)]), ProtocolError, /too many bytes waiting/);
  await first;
  await writer.write([new Uint8Array(20)]); // the queue has drained
  assert.equal(conn.received.length, 50);
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
