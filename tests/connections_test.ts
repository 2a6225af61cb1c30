// Connection handling of a real server on 127.0.0.1: a connection may send a large message only after it
// answered a fresh challenge with a listed server's key, and only under that key; a replayed signed
// message or a replayed answer proves nothing.

import assert from "node:assert/strict";
import { toHex } from "../lib/_bytes.ts";
import { votePayload } from "../lib/certificate.ts";
import { LARGE_MESSAGE_LOG_BYTES } from "../lib/connections.ts";
import { signerOf } from "../lib/keys.ts";
import type { Logger } from "../lib/log.ts";
import { networkParts, parseNetwork } from "../lib/peers.ts";
import { Server } from "../lib/server.ts";
import {
  authDigest,
  decodeResponse,
  encodeAuth,
  encodeRequest,
  Kind,
  MessageReader,
  signPeerMessage,
} from "../lib/wire.ts";
import { freePorts } from "./e2e/_network.ts";
import { makeKeyPairs, makeTempDir } from "./_helpers.ts";

const [k1, k2, k3, stranger] = await makeKeyPairs(4) as [
  Awaited<ReturnType<typeof makeKeyPairs>>[0],
  Awaited<ReturnType<typeof makeKeyPairs>>[0],
  Awaited<ReturnType<typeof makeKeyPairs>>[0],
  Awaited<ReturnType<typeof makeKeyPairs>>[0],
];

/** One server of a three-server network (the others never run), with its log lines kept. */
async function startServer(options: { clockOffsetMs?: number } = {}) {
  const ports = freePorts(3);
  const network = parseNetwork({
    start: Math.floor(Date.now() / 1000),
    interval: 1,
    servers: [k1, k2, k3].map((k, i) => ({
      name: `s${i + 1}`,
      key: k.publicHex,
      host: "127.0.0.1",
      port: ports[i],
    })),
    genesis: {},
  });
  const dir = await makeTempDir();
  const lines: string[] = [];
  const logger: Logger = {
    event: (name, fields = {}) => lines.push(`${name} ${JSON.stringify(fields)}`),
  };
  const server = await Server.start({
    network,
    keyPair: k1,
    dataDir: dir.path,
    logger,
    waitForQuorum: true,
    ...options,
  });
  const stop = async () => {
    await server.close();
    await dir[Symbol.asyncDispose]();
  };
  return { network, server, lines, stop, port: server.port };
}

/** A raw connection that can ask for a challenge, answer it, and send bytes. */
async function connect(port: number) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const reader = new MessageReader(conn, { maxBytes: 1 << 20 });
  const request = async (kind: number, arg?: Uint8Array) => {
    await conn.write(encodeRequest(kind, arg));
    const body = await reader.next();
    return body === null ? null : decodeResponse(body);
  };
  return { conn, reader, request };
}

/** A peer message of `bytes` bytes whose head names `key` (the content never gets checked: too large). */
function largeMessage(key: Uint8Array, bytes: number): Uint8Array {
  const out = new Uint8Array(4 + bytes);
  new DataView(out.buffer).setUint32(0, bytes);
  out[4] = Kind.peer;
  out.set(key, 5);
  return out;
}

/** Waits until `lines` has a line matching `pattern`, up to two seconds. */
async function logged(lines: string[], pattern: RegExp): Promise<boolean> {
  for (let i = 0; i < 40; i++) {
    if (lines.some((l) => pattern.test(l))) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

Deno.test("a replayed signed vote does not let a stranger send a large message under a listed key", async () => {
  const s = await startServer();
  try {
    const c = await connect(s.port);
    // A genuine prevote of s2, as a stranger could have recorded it earlier.
    const slot = { height: s.network.startFrame, round: 0, prevDigest: "00".repeat(32) };
    const payload = votePayload("prevote", s.network.id, slot, "00".repeat(32));
    const vote = signPeerMessage(k2.publicKey, signerOf(k2), [payload]);
    for (const chunk of vote) await c.conn.write(chunk);
    await c.conn.write(largeMessage(k2.publicKey, LARGE_MESSAGE_LOG_BYTES + 1));
    assert.ok(await logged(s.lines, /dropped_connection .*above the limit/), s.lines.join("\n"));
    assert.ok(!s.lines.some((l) => l.startsWith("receiving")), "nothing large was taken");
    c.conn.close();
  } finally {
    await s.stop();
  }
});

Deno.test("a connection that answered a fresh challenge as s2 may send a listed server's large message, charged to s2, not a stranger's", async () => {
  const s = await startServer();
  try {
    const c = await connect(s.port);
    const hello = await c.request(Kind.hello);
    const challenge = hello!.challenge as Uint8Array;
    assert.equal(challenge.length, 32);
    const proof = encodeAuth(k2.publicKey, signerOf(k2)(authDigest(s.network.id, k1.publicKey, challenge)));
    assert.deepEqual(await c.request(Kind.auth, proof), { ok: true });
    await c.conn.write(largeMessage(stranger.publicKey, LARGE_MESSAGE_LOG_BYTES + 1));
    assert.ok(
      await logged(s.lines, /dropped_connection .*above the limit/),
      "a key not in peers.json is refused",
    );
    c.conn.close();

    // s2 relaying s3's signed proposal: taken, and charged to s2, the server that proved itself.
    const e = await connect(s.port);
    const c3 = (await e.request(Kind.hello))!.challenge as Uint8Array;
    const proof3 = encodeAuth(k2.publicKey, signerOf(k2)(authDigest(s.network.id, k1.publicKey, c3)));
    assert.deepEqual(await e.request(Kind.auth, proof3), { ok: true });
    const relayed = largeMessage(k3.publicKey, LARGE_MESSAGE_LOG_BYTES + 1);
    await e.conn.write(relayed.subarray(0, 4 + 33));
    assert.ok(
      await logged(s.lines, new RegExp(`receiving .*"from":"s2"`)),
      `a relayed large message is charged to the prover\n${s.lines.join("\n")}`,
    );
    e.conn.close();

    const d = await connect(s.port);
    const again = (await d.request(Kind.hello))!.challenge as Uint8Array;
    const proof2 = encodeAuth(k2.publicKey, signerOf(k2)(authDigest(s.network.id, k1.publicKey, again)));
    assert.deepEqual(await d.request(Kind.auth, proof2), { ok: true });
    const head = largeMessage(k2.publicKey, LARGE_MESSAGE_LOG_BYTES + 1);
    await d.conn.write(head.subarray(0, 4 + 33));
    assert.ok(
      await logged(s.lines, new RegExp(`receiving .*"from":"s2"`)),
      `the proven server's large message is taken\n${s.lines.join("\n")}`,
    );
    d.conn.close();
  } finally {
    await s.stop();
  }
});

Deno.test("an answer to an earlier challenge, or a bad signature, proves nothing and closes the connection", async () => {
  const s = await startServer();
  try {
    const a = await connect(s.port);
    const first = (await a.request(Kind.hello))!.challenge as Uint8Array;
    const oldProof = encodeAuth(k2.publicKey, signerOf(k2)(authDigest(s.network.id, k1.publicKey, first)));
    assert.deepEqual(await a.request(Kind.auth, oldProof), { ok: true });
    a.conn.close();
    // Replayed on a new connection: its challenge is another one.
    const b = await connect(s.port);
    await b.request(Kind.hello);
    assert.equal(await b.request(Kind.auth, oldProof), null, "the connection is closed");
    b.conn.close();
    // Signed by a key that is not listed, or over the wrong server's key.
    const c = await connect(s.port);
    const ch = (await c.request(Kind.hello))!.challenge as Uint8Array;
    const wrong = encodeAuth(k2.publicKey, signerOf(k2)(authDigest(s.network.id, k3.publicKey, ch)));
    assert.equal(await c.request(Kind.auth, wrong), null);
    c.conn.close();
    assert.ok(await logged(s.lines, /does not prove a listed server's key/));
    assert.equal(toHex(k1.publicKey), s.network.servers[0]!.keyHex);
  } finally {
    await s.stop();
  }
});

Deno.test("the answer to hello carries the network id, its parts and the server's clock, to anyone", async () => {
  const s = await startServer({ clockOffsetMs: 7_000 });
  try {
    const c = await connect(s.port);
    const before = Date.now();
    const hello = (await c.request(Kind.hello))!;
    const after = Date.now();
    assert.equal((hello.challenge as Uint8Array).length, 32);
    assert.deepEqual(hello.network, { id: s.network.id, ...networkParts(s.network) });
    const timeMs = hello.timeMs as number;
    assert.ok(timeMs >= before + 7_000 && timeMs <= after + 7_000, `${before} ${timeMs} ${after}`);
    c.conn.close();
  } finally {
    await s.stop();
  }
});

Deno.test("a hello again on a proved connection is answered with the time and leaves the connection proved", async () => {
  const s = await startServer();
  try {
    const c = await connect(s.port);
    const challenge = (await c.request(Kind.hello))!.challenge as Uint8Array;
    const proof = encodeAuth(k2.publicKey, signerOf(k2)(authDigest(s.network.id, k1.publicKey, challenge)));
    assert.deepEqual(await c.request(Kind.auth, proof), { ok: true });
    const again = (await c.request(Kind.hello))!;
    assert.equal(typeof again.timeMs, "number");
    // Still proved: a large message of a listed server is taken.
    await c.conn.write(largeMessage(k2.publicKey, LARGE_MESSAGE_LOG_BYTES + 1).subarray(0, 4 + 33));
    assert.ok(await logged(s.lines, /receiving .*"from":"s2"/), s.lines.join("\n"));
    c.conn.close();
  } finally {
    await s.stop();
  }
});
