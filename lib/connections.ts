// The server's TCP connections: accepting, the connection limit and who is evicted first, idle
// time-outs, the size limit on messages from strangers, and backpressure on clients that do not read.
// What a message means is the replica's business; this module only moves bytes.

import { toHex } from "./_bytes.ts";
import type { NetworkParts } from "./peers.ts";
import {
  CHALLENGE_BYTES,
  checkAuth,
  encodeResponse,
  Kind,
  MAX_CLIENT_MESSAGE_BYTES,
  MAX_PEER_MESSAGE_BYTES,
  MessageReader,
  MessageWriter,
  ProtocolError,
} from "./wire.ts";

/** Most simultaneous TCP connections; past it the least recently active one is closed. */
export const MAX_CONNECTIONS = 256;
/** A connection that sends nothing for this long is closed (at least 3 frames for peers). */
export const MIN_IDLE_TIMEOUT_MS = 10_000;
/** Bytes a client connection may leave unread in responses before it is dropped. */
export const MAX_CLIENT_QUEUED_BYTES = 4 * 1024 * 1024;
/** Read buffer of each connection (a client request is at most MAX_CLIENT_MESSAGE_BYTES). */
export const CONNECTION_BUFFER_BYTES = 8 * 1024;
/** Above this many bytes of unwritten responses, a client's next requests wait (are not read). */
export const CLIENT_PAUSE_QUEUED_BYTES = 64 * 1024;
/** Requests one connection may have unanswered before it stops being read. */
export const MAX_UNANSWERED_REQUESTS = 256;
/**
 * Queries (status, balance, transfer status) taken from one connection before the others get a turn: a
 * reader's buffer of pipelined requests is handled without returning to the event loop, so a client that
 * pipelines thousands of cheap queries (the kernel's socket buffers hold megabytes of their answers) would
 * keep every other connection, timer and new client waiting. Submissions are not counted: they are what
 * load is made of, and a turn given up (a timer) at every 64 of them cost a tenth of the benchmark's
 * throughput at frame boundaries.
 */
export const CLIENT_QUERIES_PER_TURN = 64;
/**
 * Connections accepted before the accept loop gives the others a turn. While the kernel's accept queue holds
 * a burst (a flood of connections), accepting can go on without the event loop reading what the connections
 * already accepted sent: an honest client's request then waited unread while 255 newer connections came,
 * and it was closed as the oldest that never spoke (seen in tests/faults/hostile_bytes_test.ts).
 */
export const ACCEPTS_PER_TURN = 16;
/** Messages at least this large are announced in the log when they start to arrive. */
export const LARGE_MESSAGE_LOG_BYTES = 4 * 1024 * 1024;
/**
 * Bytes of large messages (above MAX_CLIENT_MESSAGE_BYTES) being read at once, from all servers together;
 * one server may have at most MAX_PEER_MESSAGE_BYTES of them in flight, however many connections it opens.
 */
export const MAX_LARGE_MESSAGES_BYTES = 2 * MAX_PEER_MESSAGE_BYTES;

/** What the connections hand to the server. */
export interface ConnectionHandlers {
  /** A peer message body; returns true when it was signed by a listed server. */
  peer(body: Uint8Array): boolean;
  /** A client request; resolves to its response. */
  request(kind: number, arg: Uint8Array): Promise<Record<string, unknown>>;
  /** True when `keyHex` is a listed server's key. */
  isListed(keyHex: string): boolean;
  /** A large message from a listed server starts to arrive. */
  receiving(keyHex: string, bytes: number): void;
  /** A connection broke the framing rules and was closed. */
  dropped(remote: string, reason: string): void;
}

interface ConnInfo {
  lastActiveMs: number;
  /** Sent at least one whole message. */
  spoke: boolean;
  /** Answered a fresh challenge with a listed server's signature. */
  trusted: boolean;
  /** The key it proved (hex), once trusted. */
  peerKey: string | undefined;
  /** The challenge it was sent and has not answered yet. */
  challenge: Uint8Array | undefined;
  /** Bytes of the large message being read on it, counted in the budget. */
  largeBytes: number;
}

/** The connections accepted on one listener. */
export class Connections {
  readonly #listener: Deno.TcpListener;
  readonly #handlers: ConnectionHandlers;
  readonly #idleMs: number;
  readonly #networkId: string;
  readonly #hello: Record<string, unknown>;
  readonly #now: () => number;
  readonly #me: Uint8Array;
  #conns = new Map<Deno.TcpConn, ConnInfo>();
  /** Large-message bytes being read, in total and per server key. */
  #largeTotal = 0;
  #largeByKey = new Map<string, number>();
  #closing = false;

  /**
   * `networkId` and `me` (this server's key) bind the challenges it sends; `parts` (the hashes of the
   * network file's parts) and `now` (this server's clock, unix ms) go with each challenge, so that a
   * server connecting here can tell what differs between the two (docs/protocol.md, 8.1).
   */
  constructor(
    listener: Deno.TcpListener,
    handlers: ConnectionHandlers,
    options: {
      intervalMs: number;
      networkId: string;
      parts: NetworkParts;
      me: Uint8Array;
      now?: () => number;
    },
  ) {
    this.#listener = listener;
    this.#handlers = handlers;
    this.#idleMs = Math.max(MIN_IDLE_TIMEOUT_MS, 3 * options.intervalMs);
    this.#networkId = options.networkId;
    this.#hello = { id: options.networkId, ...options.parts };
    this.#now = options.now ?? Date.now;
    this.#me = options.me;
  }

  /** Reserves `bytes` of the large-message budget for `key`; false when it would go over. */
  #reserve(info: ConnInfo, key: string, bytes: number): boolean {
    const mine = this.#largeByKey.get(key) ?? 0;
    if (mine + bytes > MAX_PEER_MESSAGE_BYTES || this.#largeTotal + bytes > MAX_LARGE_MESSAGES_BYTES) {
      return false;
    }
    this.#largeByKey.set(key, mine + bytes);
    this.#largeTotal += bytes;
    info.largeBytes = bytes;
    return true;
  }

  #release(info: ConnInfo): void {
    if (info.largeBytes === 0 || info.peerKey === undefined) return;
    const left = (this.#largeByKey.get(info.peerKey) ?? 0) - info.largeBytes;
    if (left > 0) this.#largeByKey.set(info.peerKey, left);
    else this.#largeByKey.delete(info.peerKey);
    this.#largeTotal -= info.largeBytes;
    info.largeBytes = 0;
  }

  /** The answer to `hello` and `auth`: the challenge, then the proof of a listed server's key. */
  #authenticate(info: ConnInfo, kind: number, arg: Uint8Array): Record<string, unknown> {
    if (kind === Kind.hello) {
      info.challenge = crypto.getRandomValues(new Uint8Array(CHALLENGE_BYTES));
      // Diagnostics for the server asking, not proofs: anyone who can answer on this port can say anything.
      return { ok: true, challenge: info.challenge, network: this.#hello, timeMs: this.#now() };
    }
    const challenge = info.challenge;
    info.challenge = undefined; // one answer per challenge
    const key = challenge === undefined ? undefined : checkAuth(arg, {
      networkId: this.#networkId,
      listenerKey: this.#me,
      challenge,
      isListed: (k) => this.#handlers.isListed(k) && k !== toHex(this.#me),
    });
    if (key === undefined) {
      throw new ProtocolError("the answer to the challenge does not prove a listed server's key");
    }
    info.trusted = true;
    info.peerKey = key;
    return { ok: true };
  }

  /** Accepts connections until closed; reports a listener failure through `onError`. */
  async serve(onError: (message: string) => void): Promise<void> {
    let accepted = 0;
    try {
      for await (const conn of this.#listener) {
        if (this.#closing) {
          closeQuietly(conn);
          break;
        }
        this.#handle(conn);
        if (++accepted % ACCEPTS_PER_TURN === 0) await new Promise((resolve) => setTimeout(resolve, 0));
      }
    } catch (err) {
      if (!this.#closing) onError((err as Error).message);
    }
  }

  /** Stops accepting and closes every connection. */
  close(): void {
    this.#closing = true;
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    for (const conn of this.#conns.keys()) closeQuietly(conn);
  }

  /**
   * Closes the least recently active connection among those that never sent a whole message, else among
   * clients, a server's last: a flood of idle strangers must not cut off clients or servers.
   */
  #evict(): void {
    const tier = (s: ConnInfo) => s.trusted ? 2 : s.spoke ? 1 : 0;
    let oldest: Deno.TcpConn | undefined;
    let o: ConnInfo | undefined;
    for (const [c, s] of this.#conns) {
      if (o === undefined || tier(s) < tier(o) || (tier(s) === tier(o) && s.lastActiveMs < o.lastActiveMs)) {
        [oldest, o] = [c, s];
      }
    }
    if (oldest !== undefined) {
      this.#conns.delete(oldest);
      closeQuietly(oldest);
    }
  }

  async #handle(conn: Deno.TcpConn): Promise<void> {
    if (this.#conns.size >= MAX_CONNECTIONS) this.#evict();
    const info: ConnInfo = {
      lastActiveMs: Date.now(),
      spoke: false,
      trusted: false,
      peerKey: undefined,
      challenge: undefined,
      largeBytes: 0,
    };
    this.#conns.set(conn, info);
    try {
      conn.setNoDelay(true);
    } catch {
      // not fatal
    }
    let idle = setTimeout(() => closeQuietly(conn), this.#idleMs);
    const source = {
      read: async (p: Uint8Array) => {
        const n = await conn.read(p);
        info.lastActiveMs = Date.now();
        clearTimeout(idle);
        idle = setTimeout(() => closeQuietly(conn), this.#idleMs);
        return n;
      },
    };
    // Only a connection that answered a fresh challenge as a listed server may send a large message (its
    // own or another listed server's, relayed), within that server's memory budget: the key in a message's
    // head is public, and an old signed message can be replayed, so neither proves who is sending.
    const reader = new MessageReader(source, {
      maxBytes: MAX_CLIENT_MESSAGE_BYTES,
      bufferBytes: CONNECTION_BUFFER_BYTES,
      allowLarge: (head, size) => {
        // The message may be signed by another listed server (a relayed proposal or vote): the memory it
        // takes is charged to, and logged against, the server that proved itself on this connection.
        const key = head.length > 32 ? toHex(head.subarray(1, 33)) : "";
        const prover = info.peerKey ?? "";
        const ok = info.trusted && head[0] === Kind.peer && this.#handlers.isListed(key) &&
          size <= MAX_PEER_MESSAGE_BYTES && this.#reserve(info, prover, size);
        // Progress for the operator: a large database can take seconds to arrive.
        if (ok && size >= LARGE_MESSAGE_LOG_BYTES) this.#handlers.receiving(prover, size);
        return ok;
      },
    });
    const writer = new MessageWriter(conn, { maxQueuedBytes: MAX_CLIENT_QUEUED_BYTES });
    // Answers are written in the order of the requests, but a request is not waited for before the next
    // is read: an alpha answers a transfer only once it is on disk, and one write covers every transfer
    // that came meanwhile.
    let answered: Promise<void> = Promise.resolve();
    let unanswered = 0;
    const respond = (answer: Promise<Record<string, unknown>> | Record<string, unknown>) => {
      unanswered++;
      answered = Promise.all([answered, answer]).then(([, response]) => {
        unanswered--;
        writer.write([encodeResponse(response)]).catch(() => closeQuietly(conn));
      }).catch(() => closeQuietly(conn));
    };
    let thisTurn = 0;
    try {
      while (!this.#closing) {
        const body = await reader.next();
        if (body === null) break;
        info.spoke = true;
        if (body[0] === Kind.peer) {
          try {
            this.#handlers.peer(body);
          } finally {
            this.#release(info);
          }
          continue;
        }
        if (body[0] === Kind.hello || body[0] === Kind.auth) {
          respond(this.#authenticate(info, body[0], body.subarray(1)));
          continue;
        }
        if (!CLIENT_KINDS.has(body[0]!)) {
          throw new ProtocolError(`unknown message kind 0x${body[0]!.toString(16)}`);
        }
        respond(this.#handlers.request(body[0]!, body.subarray(1)));
        if (QUERY_KINDS.has(body[0]!) && ++thisTurn >= CLIENT_QUERIES_PER_TURN) {
          thisTurn = 0;
          await new Promise((resolve) => setTimeout(resolve, 0)); // a turn for everyone else
        }
        // A client that does not read its answers, or has too many unanswered, stops being read (and
        // times out as idle).
        if (unanswered > MAX_UNANSWERED_REQUESTS) await answered;
        if (writer.queuedBytes > CLIENT_PAUSE_QUEUED_BYTES) {
          await writer.drained(CLIENT_PAUSE_QUEUED_BYTES / 2);
        }
      }
    } catch (err) {
      if (err instanceof ProtocolError) this.#handlers.dropped(remoteOf(conn), err.message);
      else if (
        !(err instanceof Deno.errors.BadResource || err instanceof Deno.errors.ConnectionReset ||
          err instanceof Deno.errors.Interrupted || err instanceof Deno.errors.BrokenPipe)
      ) {
        throw err;
      }
    } finally {
      this.#release(info);
      clearTimeout(idle);
      this.#conns.delete(conn);
      closeQuietly(conn);
    }
  }
}

/** Client requests that only read: the ones counted by CLIENT_QUERIES_PER_TURN. */
const QUERY_KINDS: ReadonlySet<number> = new Set([Kind.status, Kind.balance, Kind.txStatus]);

const CLIENT_KINDS: ReadonlySet<number> = new Set([
  Kind.submit,
  Kind.relay,
  Kind.balance,
  Kind.status,
  Kind.txStatus,
]);

/** Closes a connection that may already be closed. */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

function remoteOf(conn: Deno.TcpConn): string {
  const a = conn.remoteAddr as Deno.NetAddr;
  return `${a.hostname}:${a.port}`;
}
