// Everything on the TCP port: length-prefixed frames, the signed server-to-server messages (their payloads
// are in lib/certificate.ts: proposals, votes, commits and wants) and the client requests and responses.
// docs/protocol.md describes every byte; this file and that document say the same thing.

import { decode as msgpackDecode, encode as msgpackEncode } from "@msgpack/msgpack";
import { concatBytes, fromHex, toHex, viewOf } from "./_bytes.ts";
import { HASH_BYTES, sha256, sha256Of } from "./hash.ts";
import {
  type KeyPair,
  PUBLIC_KEY_BYTES,
  sign,
  SIGNATURE_BYTES,
  type Signer,
  type Verifier,
  verifySignature,
} from "./keys.ts";
import { MAX_DB_BYTES } from "./ledger.ts";

/** Bytes of the length prefix (u32 big-endian) before every message. */
export const LENGTH_PREFIX_BYTES = 4;
/** Most transfers one frame's buffer may hold. */
export const MAX_FRAME_TXS = 1_000_000;
/** Largest message from anyone not yet known to be a listed server (client requests are tiny). */
export const MAX_CLIENT_MESSAGE_BYTES = 4096;
/** Largest response a client accepts. */
export const MAX_RESPONSE_BYTES = 1024 * 1024;
/** Most recent-id frames and ids a commit may carry. */
export const MAX_RECENT_FRAMES = 4096;
export const MAX_RECENT_IDS = 4 * MAX_FRAME_TXS;
/**
 * Largest server-to-server message: a commit of the largest database and its recent ids, with a
 * certificate of up to 255 signatures (its fixed head is under 512 bytes).
 */
export const MAX_PEER_MESSAGE_BYTES = 1 + PUBLIC_KEY_BYTES + SIGNATURE_BYTES + 512 +
  255 * (1 + SIGNATURE_BYTES) +
  8 + MAX_DB_BYTES + 4 + MAX_RECENT_FRAMES * 12 + MAX_RECENT_IDS * HASH_BYTES;

/** First byte of every message body. */
export const Kind = {
  /** Signed server-to-server message: key | signature | payload. */
  peer: 0x01,
  /** Client: submit a transfer (144 bytes follow). */
  submit: 0x10,
  /** Client: balance of an account (32 bytes follow). */
  balance: 0x11,
  /** Client: this server's status (nothing follows). */
  status: 0x12,
  /** Client: outcome of a transfer (id 32 | timestamp u64 follow). */
  txStatus: 0x13,
  /** Server to the alpha: a transfer received by another server (144 bytes follow). */
  relay: 0x14,
  /** A connecting server asks for a challenge (nothing follows); the answer carries 32 random bytes. */
  hello: 0x15,
  /** A connecting server answers the challenge: its key 32 | its signature 64 (see `authDigest`). */
  auth: 0x16,
  /** Response to any client request: a MessagePack map follows. */
  response: 0x20,
} as const;

/** Bytes of a peer message before its payload. */
export const PEER_HEAD_BYTES = 1 + PUBLIC_KEY_BYTES + SIGNATURE_BYTES;

function header(kind: number, bodyBytes: number): Uint8Array {
  const b = new Uint8Array(LENGTH_PREFIX_BYTES + 1);
  viewOf(b).setUint32(0, bodyBytes);
  b[4] = kind;
  return b;
}

/**
 * Signs a payload (given as chunks) as `keyPair` and returns the message chunks ready to write,
 * length prefix included: the seed's layout, sender key | signature of SHA-256(payload) | payload.
 */
export async function encodePeerMessage(keyPair: KeyPair, payload: Uint8Array[]): Promise<Uint8Array[]> {
  const signature = await sign(keyPair, sha256Of(payload));
  return peerMessageChunks(keyPair.publicKey, signature, payload);
}

/** encodePeerMessage with a synchronous signer: what the replica core uses. */
export function signPeerMessage(publicKey: Uint8Array, signer: Signer, payload: Uint8Array[]): Uint8Array[] {
  return peerMessageChunks(publicKey, signer(sha256Of(payload)), payload);
}

function peerMessageChunks(
  publicKey: Uint8Array,
  signature: Uint8Array,
  payload: Uint8Array[],
): Uint8Array[] {
  let payloadBytes = 0;
  for (const p of payload) payloadBytes += p.length;
  const head = new Uint8Array(LENGTH_PREFIX_BYTES + PEER_HEAD_BYTES);
  viewOf(head).setUint32(0, PEER_HEAD_BYTES + payloadBytes);
  head[4] = Kind.peer;
  head.set(publicKey, 5);
  head.set(signature, 5 + PUBLIC_KEY_BYTES);
  return [head, ...payload];
}

/**
 * Checks a peer message body (kind byte included): a listed sender and a valid signature. Returns
 * undefined with a reason in `problem` when it must be dropped.
 */
export function openPeerMessage(
  body: Uint8Array,
  isListed: (keyHex: string) => boolean,
  verifier: Verifier = verifySignature,
): { sender: string; payload: Uint8Array } | { problem: string; sender?: string } {
  if (body.length < PEER_HEAD_BYTES + 1) return { problem: "message is shorter than its head" };
  const key = body.subarray(1, 1 + PUBLIC_KEY_BYTES);
  const sender = toHex(key);
  if (!isListed(sender)) return { problem: "sender key is not in peers.json", sender };
  const signature = body.subarray(1 + PUBLIC_KEY_BYTES, PEER_HEAD_BYTES);
  const payload = body.subarray(PEER_HEAD_BYTES);
  if (!verifier(key, sha256(payload), signature)) {
    return { problem: "signature does not verify", sender };
  }
  return { sender, payload };
}

/** A message's body (kind byte first) from its length-prefixed chunks, as a receiver reads it. */
export function messageBody(chunks: readonly Uint8Array[]): Uint8Array {
  return concatBytes(chunks).subarray(LENGTH_PREFIX_BYTES);
}

/** Bytes of the challenge a server sends in answer to `hello`. */
export const CHALLENGE_BYTES = 32;
/** What a server signs to prove its key on a connection: the start of the signed text. */
export const AUTH_CONTEXT = "coin-peer-auth-v1";

/**
 * The 32 bytes a connecting server signs to answer a challenge: SHA-256 of `coin-peer-auth-v1` (ASCII) |
 * network id 32 | the accepting server's key 32 | the challenge 32. Bound to the network, to the server
 * asked and to a fresh challenge, so no signature seen elsewhere or earlier can be replayed.
 */
export function authDigest(networkId: string, listenerKey: Uint8Array, challenge: Uint8Array): Uint8Array {
  return sha256Of([
    new TextEncoder().encode(AUTH_CONTEXT),
    fromHex(networkId, HASH_BYTES)!,
    listenerKey,
    challenge,
  ]);
}

/** The argument of an `auth` request: key 32 | signature 64. */
export function encodeAuth(publicKey: Uint8Array, signature: Uint8Array): Uint8Array {
  const out = new Uint8Array(PUBLIC_KEY_BYTES + SIGNATURE_BYTES);
  out.set(publicKey);
  out.set(signature, PUBLIC_KEY_BYTES);
  return out;
}

/**
 * The key an `auth` argument proves for `challenge`, or undefined when it proves nothing: wrong length,
 * a key not allowed, or a signature that does not verify.
 */
export function checkAuth(
  arg: Uint8Array,
  context: {
    networkId: string;
    listenerKey: Uint8Array;
    challenge: Uint8Array;
    isListed: (keyHex: string) => boolean;
  },
): string | undefined {
  if (arg.length !== PUBLIC_KEY_BYTES + SIGNATURE_BYTES) return undefined;
  const key = arg.subarray(0, PUBLIC_KEY_BYTES);
  const keyHex = toHex(key);
  if (!context.isListed(keyHex)) return undefined;
  const digest = authDigest(context.networkId, context.listenerKey, context.challenge);
  return verifySignature(key, digest, arg.subarray(PUBLIC_KEY_BYTES)) ? keyHex : undefined;
}

/** A client request with its fixed-size argument. */
export function encodeRequest(kind: number, argument: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(LENGTH_PREFIX_BYTES + 1 + argument.length);
  out.set(header(kind, 1 + argument.length));
  out.set(argument, 5);
  return out;
}

/** A response: kind 0x20 and a MessagePack map. */
export function encodeResponse(value: Record<string, unknown>): Uint8Array {
  const packed = msgpackEncode(value, { ignoreUndefined: true });
  const out = new Uint8Array(LENGTH_PREFIX_BYTES + 1 + packed.length);
  out.set(header(Kind.response, 1 + packed.length));
  out.set(packed, 5);
  return out;
}

/** Decodes a response body; throws SyntaxError when it is not one. */
export function decodeResponse(body: Uint8Array): Record<string, unknown> {
  if (body[0] !== Kind.response) throw new SyntaxError("Reply is not a response");
  let value: unknown;
  try {
    value = msgpackDecode(body.subarray(1));
  } catch (err) {
    throw new SyntaxError(`Response is not MessagePack: ${(err as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new SyntaxError("Response is not a map");
  }
  return value as Record<string, unknown>;
}

/** What MessageReader reads from (a Deno.Conn). */
export interface ByteReader {
  read(p: Uint8Array): Promise<number | null>;
}

/** What MessageWriter writes to (a Deno.Conn). */
export interface ByteWriter {
  write(p: Uint8Array): Promise<number>;
}

/** Thrown by MessageReader when the peer breaks the framing rules; the connection is closed. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
}

/**
 * Reads length-prefixed messages from a connection. A message above `maxBytes` is refused unless
 * `allowLarge` accepts its first 33 bytes (kind and sender key), so only listed servers can make the
 * reader allocate more than MAX_CLIENT_MESSAGE_BYTES.
 */
export class MessageReader {
  #conn: ByteReader;
  #buf: Uint8Array;
  #start = 0;
  #end = 0;
  #maxBytes: number;
  #allowLarge: ((head: Uint8Array, bytes: number) => boolean) | undefined;

  /** `bufferBytes` (default 64 KiB) is read at a time; larger messages get a buffer of their own. */
  constructor(
    conn: ByteReader,
    options: {
      maxBytes: number;
      allowLarge?: (head: Uint8Array, bytes: number) => boolean;
      bufferBytes?: number;
    },
  ) {
    this.#conn = conn;
    this.#maxBytes = options.maxBytes;
    this.#allowLarge = options.allowLarge;
    this.#buf = new Uint8Array(
      Math.max(LENGTH_PREFIX_BYTES + 1 + PUBLIC_KEY_BYTES, options.bufferBytes ?? 64 * 1024),
    );
  }

  /** Bytes received but not yet returned. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  async #fill(): Promise<boolean> {
    if (this.#start === this.#end) this.#start = this.#end = 0;
    if (this.#end === this.#buf.length) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    const n = await this.#conn.read(this.#buf.subarray(this.#end));
    if (n === null) return false;
    this.#end += n;
    return true;
  }

  /** Waits for `n` buffered bytes; false at a clean end of stream before any of them (when allowed). */
  async #ensure(n: number, endAllowed = false): Promise<boolean> {
    while (this.#end - this.#start < n) {
      if (!(await this.#fill())) {
        if (endAllowed && this.#end === this.#start) return false;
        throw new ProtocolError("connection closed in the middle of a message");
      }
    }
    return true;
  }

  /** The next message body, or null at a clean end of stream. */
  async next(): Promise<Uint8Array | null> {
    if (!(await this.#ensure(LENGTH_PREFIX_BYTES, true))) return null;
    const size = viewOf(this.#buf).getUint32(this.#start);
    if (size === 0) throw new ProtocolError("empty message");
    this.#start += LENGTH_PREFIX_BYTES;
    if (size > this.#maxBytes) {
      const headBytes = Math.min(size, 1 + PUBLIC_KEY_BYTES);
      await this.#ensure(headBytes);
      const head = this.#buf.subarray(this.#start, this.#start + headBytes);
      if (this.#allowLarge === undefined || !this.#allowLarge(head, size)) {
        throw new ProtocolError(`message of ${size} bytes is above the limit of ${this.#maxBytes}`);
      }
    }
    if (size <= this.#buf.length) {
      await this.#ensure(size);
      const body = this.#buf.slice(this.#start, this.#start + size);
      this.#start += size;
      return body;
    }
    // A large message is read straight into its own buffer.
    const body = new Uint8Array(size);
    let have = this.#end - this.#start;
    body.set(this.#buf.subarray(this.#start, this.#end));
    this.#start = this.#end = 0;
    while (have < size) {
      const n = await this.#conn.read(body.subarray(have));
      if (n === null) throw new ProtocolError("connection closed in the middle of a message");
      have += n;
    }
    return body;
  }
}

/**
 * Messages smaller than this are copied together into one write. A larger message is written in pieces of
 * about this size: its small chunks (a proposal's transfers are 144 bytes each) are copied together, and
 * chunks at least this large are written as they are.
 */
export const COALESCE_BYTES = 256 * 1024;

interface Queued {
  chunks: Uint8Array[];
  size: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Writes messages to a connection in order. Messages queued while a write is in flight are sent
 * together in one write, so many small responses cost one system call.
 */
export class MessageWriter {
  #conn: ByteWriter;
  #queue: Queued[] = [];
  #pumping = false;
  #queuedBytes = 0;
  #failed: Error | undefined;
  #drainWaiters: { bytes: number; resolve: () => void; reject: (err: Error) => void }[] = [];
  /** Most bytes allowed to wait unwritten before the connection counts as stuck. */
  readonly maxQueuedBytes: number;

  constructor(conn: ByteWriter, options: { maxQueuedBytes: number }) {
    this.#conn = conn;
    this.maxQueuedBytes = options.maxQueuedBytes;
  }

  /** Bytes queued and not yet written. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Queues a message; resolves once written. Rejects if the connection failed or is stuck. */
  write(chunks: Uint8Array[]): Promise<void> {
    if (this.#failed) return Promise.reject(this.#failed);
    let size = 0;
    for (const c of chunks) size += c.length;
    if (this.#queuedBytes > 0 && this.#queuedBytes + size > this.maxQueuedBytes) {
      return Promise.reject(new ProtocolError("too many bytes waiting to be written"));
    }
    this.#queuedBytes += size;
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#queue.push({ chunks, size, resolve, reject });
    if (!this.#pumping) this.#pump();
    return promise;
  }

  /**
   * Resolves once at most `bytes` are queued unwritten (at once if so now); rejects if the connection
   * fails first. A reader that pauses on this stops a client that does not read its answers from making
   * the server compute more of them.
   */
  drained(bytes: number): Promise<void> {
    if (this.#failed) return Promise.reject(this.#failed);
    if (this.#queuedBytes <= bytes) return Promise.resolve();
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#drainWaiters.push({ bytes, resolve, reject });
    return promise;
  }

  #wakeDrained(): void {
    if (this.#drainWaiters.length === 0) return;
    const waiting = [];
    for (const w of this.#drainWaiters) {
      if (this.#queuedBytes <= w.bytes) w.resolve();
      else waiting.push(w);
    }
    this.#drainWaiters = waiting;
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  /** Writes one large message's chunks, copying runs of small ones together (one write per piece). */
  async #writeChunks(chunks: readonly Uint8Array[]): Promise<void> {
    let run: Uint8Array[] = [];
    let runBytes = 0;
    const flush = async () => {
      if (runBytes > 0) await this.#writeAll(run.length === 1 ? run[0]! : concatBytes(run));
      run = [];
      runBytes = 0;
    };
    for (const chunk of chunks) {
      if (chunk.length >= COALESCE_BYTES) {
        await flush();
        await this.#writeAll(chunk);
        continue;
      }
      run.push(chunk);
      runBytes += chunk.length;
      if (runBytes >= COALESCE_BYTES) await flush();
    }
    await flush();
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    let batch: Queued[] = [];
    try {
      while (this.#queue.length > 0) {
        const first = this.#queue[0]!;
        if (first.size >= COALESCE_BYTES) {
          batch = [this.#queue.shift()!];
          await this.#writeChunks(first.chunks);
          this.#queuedBytes -= first.size;
          first.resolve();
          this.#wakeDrained();
          batch = [];
          continue;
        }
        batch = [];
        let bytes = 0;
        while (this.#queue.length > 0 && this.#queue[0]!.size < COALESCE_BYTES && bytes < COALESCE_BYTES) {
          const item = this.#queue.shift()!;
          batch.push(item);
          bytes += item.size;
        }
        const joined = new Uint8Array(bytes);
        let off = 0;
        for (const item of batch) {
          for (const chunk of item.chunks) {
            joined.set(chunk, off);
            off += chunk.length;
          }
        }
        await this.#writeAll(joined);
        this.#queuedBytes -= bytes;
        for (const item of batch) item.resolve();
        this.#wakeDrained();
        batch = [];
      }
    } catch (err) {
      this.#failed = err as Error;
      for (const item of [...batch, ...this.#queue.splice(0)]) item.reject(this.#failed);
      for (const w of this.#drainWaiters.splice(0)) w.reject(this.#failed);
    } finally {
      this.#pumping = false;
    }
  }
}
