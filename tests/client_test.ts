// lib/client.ts against fake servers on 127.0.0.1: connecting (refused, timed out), one request and its
// response in the wire's framing, pipelined requests answered in order, every way a connection is lost,
// and withAnyServer's fallback to the next server.

import assert from "node:assert/strict";
import { concatBytes } from "../lib/_bytes.ts";
import {
  candidates,
  connectWithTimeout,
  MAX_PIPELINED_REQUESTS,
  type Response,
  ServerConnection,
  withAnyServer,
} from "../lib/client.ts";
import { CoinError } from "../lib/errors.ts";
import { parseNetwork } from "../lib/peers.ts";
import { encodeResponse, Kind, LENGTH_PREFIX_BYTES, MAX_RESPONSE_BYTES } from "../lib/wire.ts";
import { assertRejectsError, closedPort, makeKeyPairs, startFakeServer } from "./_helpers.ts";

const HOST = "127.0.0.1";

/** What the server side of `conn` reads first: null at end of stream, "open" when nothing comes in `ms`. */
async function firstRead(conn: Deno.Conn, ms: number): Promise<number | null | "open" | "error"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const open = new Promise<"open">((resolve) => timer = setTimeout(() => resolve("open"), ms));
  try {
    return await Promise.race([conn.read(new Uint8Array(1)).catch(() => "error" as const), open]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until `check()` holds, polling every 10 ms for at most `timeoutMs`. */
async function until(what: string, check: () => boolean, timeoutMs = 2_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("ServerConnection.open() refuses a closed port at once with one CoinError naming the server", async () => {
  const port = closedPort();
  const started = Date.now();
  const err = await assertRejectsError(
    () => ServerConnection.open(HOST, port, 5_000),
    CoinError,
    new RegExp(`^Cannot reach server 127\\.0\\.0\\.1:${port}: .*refused`, "i"),
  );
  assert.ok(Date.now() - started < 5_000, "refused, not timed out");
  assert.ok(err.cause instanceof Deno.errors.ConnectionRefused, String(err.cause));
});

Deno.test({
  name: "connectWithTimeout() gives up after timeoutMs and closes the connection that comes late",
  // A listener whose accept queue is full makes Linux drop the next SYN (the client retries it a
  // second later): a connection attempt that hangs, on the loopback address.
  ignore: Deno.build.os !== "linux",
  async fn() {
    const listener = Deno.listen({ hostname: HOST, port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const queued: Deno.TcpConn[] = [];
    let timedOut: Error | undefined;
    try {
      // Fill the accept queue (nothing accepts) until an attempt hangs past its timeout.
      while (timedOut === undefined && queued.length < 10_000) {
        try {
          queued.push(await connectWithTimeout(HOST, port, 500));
        } catch (err) {
          timedOut = err as Error;
        }
      }
      assert.ok(timedOut !== undefined, `the accept queue never filled (${queued.length} connections)`);
      assert.equal(timedOut.message, "connection timed out after 500 ms");
      assert.ok(queued.length > 0);
    } finally {
      for (const conn of queued) conn.close();
    }
    // Accept the queued connections (each reads end of stream: closed above), then the late one: the
    // attempt that timed out, which connectWithTimeout must close as soon as it connects.
    try {
      for (let i = 0; i <= queued.length; i++) {
        const conn = await listener.accept();
        try {
          const read = await firstRead(conn, 5_000);
          assert.equal(read, null, `connection ${i + 1} of ${queued.length + 1} was closed by its client`);
        } finally {
          conn.close();
        }
      }
    } finally {
      listener.close();
    }
  },
});

Deno.test("request() sends one length-prefixed request and decodes the response map", async () => {
  await using server = startFakeServer((body) => ({ ok: true, kind: body[0], bytes: body.length - 1 }));
  const conn = await ServerConnection.open(HOST, server.port);
  try {
    assert.deepEqual([conn.host, conn.port, conn.closed], [HOST, server.port, false]);
    const argument = new Uint8Array(32).fill(7);
    assert.deepEqual(await conn.request(Kind.balance, argument), { ok: true, kind: Kind.balance, bytes: 32 });
    assert.deepEqual(await conn.request(Kind.status), { ok: true, kind: Kind.status, bytes: 0 });
    assert.deepEqual(server.requests, [Uint8Array.of(Kind.balance, ...argument), Uint8Array.of(Kind.status)]);
  } finally {
    await conn.close();
  }
  assert.equal(conn.closed, true);
  assert.equal(server.accepted, 1, "both requests on one connection");
});

Deno.test("request() reassembles a response that arrives a few bytes at a time", async () => {
  const bytes = encodeResponse({ ok: true, text: "x".repeat(300), n: 2 ** 40 });
  await using server = startFakeServer(() => ({
    raw: [bytes.subarray(0, 2), bytes.subarray(2, 5), bytes.subarray(5, 100), bytes.subarray(100)],
  }));
  const conn = await ServerConnection.open(HOST, server.port);
  try {
    assert.deepEqual(await conn.request(Kind.status), { ok: true, text: "x".repeat(300), n: 2 ** 40 });
  } finally {
    await conn.close();
  }
});

Deno.test("pipelined requests on one connection get their own responses, in order", async () => {
  // The server holds its answers until all ten requests are in, then writes them in one go.
  const args: number[] = [];
  await using server = startFakeServer((body, index) => {
    args.push(body[1]!);
    if (index < 9) return undefined;
    return { raw: [concatBytes(args.map((arg, i) => encodeResponse({ ok: true, index: i, arg })))] };
  });
  const conn = await ServerConnection.open(HOST, server.port);
  try {
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => conn.request(Kind.balance, new Uint8Array(32).fill(i))),
    );
    assert.deepEqual(answers, Array.from({ length: 10 }, (_, i) => ({ ok: true, index: i, arg: i })));
  } finally {
    await conn.close();
  }
});

Deno.test("a server that closes the connection fails the waiting request and every later one", async () => {
  await using server = startFakeServer(() => "close");
  const conn = await ServerConnection.open(HOST, server.port);
  try {
    await assertRejectsError(
      () => conn.request(Kind.status),
      CoinError,
      new RegExp(`^Lost server 127\\.0\\.0\\.1:${server.port}: server closed the connection$`),
    );
    assert.equal(conn.closed, true);
    await assertRejectsError(
      () => conn.request(Kind.status),
      CoinError,
      /^Lost server .*: server closed the connection$/,
    );
    assert.equal(server.requests.length, 1, "the later request was not sent");
  } finally {
    await conn.close();
  }
});

Deno.test("a response the client did not ask for, or that breaks the framing, loses the connection", async (t) => {
  const oversize = new Uint8Array(LENGTH_PREFIX_BYTES + 33); // the length, then as far as the reader looks
  new DataView(oversize.buffer).setUint32(0, MAX_RESPONSE_BYTES + 1);
  oversize[4] = Kind.response;
  const cases: [string, { raw: Uint8Array[]; close?: boolean }, RegExp][] = [
    [
      "two responses to one request",
      { raw: [encodeResponse({ ok: true }), encodeResponse({ ok: true })] },
      /: server sent an unrequested response$/,
    ],
    ["an empty message", { raw: [Uint8Array.of(0, 0, 0, 0)] }, /: empty message$/],
    [
      "a response above MAX_RESPONSE_BYTES",
      { raw: [oversize] },
      new RegExp(`: message of ${MAX_RESPONSE_BYTES + 1} bytes is above the limit of ${MAX_RESPONSE_BYTES}$`),
    ],
    [
      "a response cut off by the end of the connection",
      { raw: [encodeResponse({ ok: true }).subarray(0, 6)], close: true },
      /: connection closed in the middle of a message$/,
    ],
  ];
  for (const [name, reply, pattern] of cases) {
    await t.step(name, async () => {
      await using server = startFakeServer((_, index) => index === 0 ? reply : { ok: true, late: true });
      const conn = await ServerConnection.open(HOST, server.port);
      try {
        // The first request gets its answer when the break comes after it (two responses), else fails.
        const first = await conn.request(Kind.status).catch((err: Error) => err);
        if (!(first instanceof Error)) assert.deepEqual(first, { ok: true });
        await until("the connection is lost", () => conn.closed);
        const err = await conn.request(Kind.status).catch((e: Error) => e);
        assert.ok(err instanceof CoinError, String(err));
        assert.match(err.message, /^Lost server 127\.0\.0\.1:\d+: /);
        assert.match(err.message, pattern);
        if (first instanceof Error) assert.equal(first.message, err.message);
      } finally {
        await conn.close();
      }
    });
  }
});

/** Replies that are framed well but are not a response map: the client cannot decode them. */
const UNDECODABLE: [string, Uint8Array, RegExp][] = [
  [
    "a reply whose kind is not a response",
    Uint8Array.of(0, 0, 0, 1, Kind.status),
    /: Reply is not a response$/,
  ],
  [
    "a response that is not a map",
    Uint8Array.of(0, 0, 0, 2, Kind.response, 0x01),
    /: Response is not a map$/,
  ],
];

Deno.test("a reply that is not a response map loses the connection: the requests behind it fail", async (t) => {
  for (const [name, bytes, pattern] of UNDECODABLE) {
    await t.step(name, async () => {
      // The server answers the first request only once the second is in, with the bad reply.
      await using server = startFakeServer((_, index) => index === 1 ? { raw: [bytes] } : undefined);
      const conn = await ServerConnection.open(HOST, server.port);
      try {
        // The request the bad reply answers fails with the rest (see the next test).
        conn.request(Kind.status).catch(() => {});
        const err = await conn.request(Kind.status).catch((e: Error) => e);
        assert.ok(err instanceof CoinError, String(err));
        assert.match(err.message, /^Lost server 127\.0\.0\.1:\d+: /);
        assert.match(err.message, pattern);
        assert.equal(conn.closed, true);
      } finally {
        await conn.close();
      }
    });
  }
});

Deno.test({
  name: "the request a reply that is not a response map answers fails too",
  // It used to wait forever: the request was taken off the queue before the reply was decoded.
  async fn() {
    for (const [, bytes, pattern] of UNDECODABLE) {
      await using server = startFakeServer(() => ({ raw: [bytes] }));
      const conn = await ServerConnection.open(HOST, server.port);
      try {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const waited = new Promise<"waiting">((resolve) =>
          timer = setTimeout(() => resolve("waiting"), 2_000)
        );
        const err = await Promise.race([conn.request(Kind.status).catch((e: Error) => e), waited]);
        clearTimeout(timer);
        assert.ok(err instanceof CoinError, String(err));
        assert.match(err.message, pattern);
      } finally {
        await conn.close();
      }
    }
  },
});

Deno.test("a request without an answer within its timeout fails and closes the connection", async () => {
  await using server = startFakeServer(() => undefined);
  const conn = await ServerConnection.open(HOST, server.port);
  try {
    const started = Date.now();
    await assertRejectsError(
      () => conn.request(Kind.status, undefined, 150),
      CoinError,
      /^Lost server 127\.0\.0\.1:\d+: no answer within 150 ms$/,
    );
    assert.ok(Date.now() - started >= 140, `waited ${Date.now() - started} ms`);
    assert.equal(conn.closed, true);
  } finally {
    await conn.close();
  }
});

Deno.test("close() fails the waiting requests; at most MAX_PIPELINED_REQUESTS may wait", async () => {
  await using server = startFakeServer(() => undefined);
  const conn = await ServerConnection.open(HOST, server.port);
  const waiting: Promise<Error>[] = [];
  try {
    for (let i = 0; i < MAX_PIPELINED_REQUESTS; i++) {
      waiting.push(conn.request(Kind.status).then(() => new Error("answered"), (err: Error) => err));
    }
    await assertRejectsError(
      () => conn.request(Kind.status),
      CoinError,
      new RegExp(`^Too many requests waiting on 127\\.0\\.0\\.1:${server.port}$`),
    );
    assert.equal(conn.closed, false, "a refused request does not close the connection");
  } finally {
    await conn.close();
  }
  const errors = await Promise.all(waiting);
  assert.equal(errors.length, MAX_PIPELINED_REQUESTS);
  for (const err of errors) {
    assert.ok(err instanceof CoinError);
    assert.match(err.message, /^Lost server 127\.0\.0\.1:\d+: connection closed$/);
  }
  await assertRejectsError(() => conn.request(Kind.status), CoinError, /: connection closed$/);
});

Deno.test("withAnyServer() skips a server it cannot reach and one lost mid-request", async () => {
  await using lost = startFakeServer(() => "close");
  await using good = startFakeServer(() => ({ ok: true, server: "s3" }));
  const servers = [
    { name: "s1", host: HOST, port: closedPort() },
    { name: "s2", host: HOST, port: lost.port },
    { name: "s3", host: HOST, port: good.port },
  ];
  const tried: string[] = [];
  const answer = await withAnyServer(servers, (conn) => {
    tried.push(`${conn.host}:${conn.port}`);
    return conn.request(Kind.status);
  });
  assert.deepEqual(answer, { ok: true, server: "s3" });
  assert.deepEqual(tried, [`${HOST}:${lost.port}`, `${HOST}:${good.port}`]);
  assert.deepEqual([lost.accepted, good.accepted], [1, 1]);
});

Deno.test("withAnyServer() names every server tried when none answers", async () => {
  await using lost = startFakeServer(() => "close");
  const refused = closedPort();
  const servers = [
    { name: "s1", host: HOST, port: refused },
    { name: "s2", host: HOST, port: lost.port },
  ];
  const err = await assertRejectsError(
    () => withAnyServer(servers, (conn) => conn.request(Kind.status)),
    CoinError,
    /^No server answered: s1 \(.*refused.*\); s2 \(Lost server 127\.0\.0\.1:\d+: server closed the connection\)$/i,
  );
  assert.doesNotMatch(err.message, /Cannot reach server/, "the server is named once");
});

Deno.test("withAnyServer() stops at an error that is not a lost server and closes the connection", async () => {
  await using first = startFakeServer(() => ({ ok: false, code: "insufficient_funds" }));
  await using second = startFakeServer(() => ({ ok: true }));
  const servers = [
    { name: "s1", host: HOST, port: first.port },
    { name: "s2", host: HOST, port: second.port },
  ];
  let used: ServerConnection | undefined;
  await assertRejectsError(
    () =>
      withAnyServer(servers, async (conn) => {
        used = conn;
        const r: Response = await conn.request(Kind.submit, new Uint8Array(144));
        throw new CoinError(`Refused: ${r.code}`);
      }),
    CoinError,
    /^Refused: insufficient_funds$/,
  );
  assert.equal(used?.closed, true, "withAnyServer closed the connection it opened");
  assert.equal(second.accepted, 0, "the next server was not tried");
});

Deno.test("candidates() is --server alone when given, else the servers of peers.json in order", async () => {
  const keys = await makeKeyPairs(2);
  const network = parseNetwork({
    start: 1_800_000_000,
    interval: 1,
    servers: keys.map((k, i) => ({ name: `s${i + 1}`, key: k.publicHex, host: HOST, port: 7001 + i })),
    genesis: {},
  });
  assert.deepEqual(candidates(network), [
    { name: "s1", host: HOST, port: 7001 },
    { name: "s2", host: HOST, port: 7002 },
  ]);
  assert.deepEqual(candidates(network, { host: "::1", port: 9 }), [{ name: "::1:9", host: "::1", port: 9 }]);
  assert.deepEqual(candidates(undefined, { host: HOST, port: 9 }), [{
    name: `${HOST}:9`,
    host: HOST,
    port: 9,
  }]);
  assert.throws(() => candidates(undefined), /^Error: Either a network or a server is required$/);
});
