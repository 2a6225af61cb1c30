// The server's TCP connections: accepting, the connection limit and who is evicted first, idle
// time-outs, the size limit on messages from strangers, and backpressure on clients that do not read.
// What a message means is the replica's business; this module only moves bytes.

import { toHex } from "./_bytes.ts";
import {
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
/** Messages at least this large are announced in the log when they start to arrive. */
export const LARGE_MESSAGE_LOG_BYTES = 4 * 1024 * 1024;

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
  /** Delivered a correctly signed message of a listed server. */
  trusted: boolean;
}

/** The connections accepted on one listener. */
export class Connections {
  readonly #listener: Deno.TcpListener;
  readonly #handlers: ConnectionHandlers;
  readonly #idleMs: number;
  #conns = new Map<Deno.TcpConn, ConnInfo>();
  #closing = false;

  constructor(listener: Deno.TcpListener, handlers: ConnectionHandlers, options: { intervalMs: number }) {
    this.#listener = listener;
    this.#handlers = handlers;
    this.#idleMs = Math.max(MIN_IDLE_TIMEOUT_MS, 3 * options.intervalMs);
  }

  /** Accepts connections until closed; reports a listener failure through `onError`. */
  async serve(onError: (message: string) => void): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        if (this.#closing) {
          closeQuietly(conn);
          break;
        }
        this.#handle(conn);
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
    const info: ConnInfo = { lastActiveMs: Date.now(), spoke: false, trusted: false };
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
    // Only a connection that already delivered a correctly signed message may send a large one: the
    // sender key in a head is public, so a stranger could otherwise make this server buffer 800 MB.
    const reader = new MessageReader(source, {
      maxBytes: MAX_CLIENT_MESSAGE_BYTES,
      bufferBytes: CONNECTION_BUFFER_BYTES,
      allowLarge: (head, size) => {
        const key = head.length > 32 ? toHex(head.subarray(1, 33)) : "";
        const ok = info.trusted && head[0] === Kind.peer && this.#handlers.isListed(key) &&
          size <= MAX_PEER_MESSAGE_BYTES;
        // Progress for the operator: a large database can take seconds to arrive.
        if (ok && size >= LARGE_MESSAGE_LOG_BYTES) this.#handlers.receiving(key, size);
        return ok;
      },
    });
    const writer = new MessageWriter(conn, { maxQueuedBytes: MAX_CLIENT_QUEUED_BYTES });
    try {
      while (!this.#closing) {
        const body = await reader.next();
        if (body === null) break;
        info.spoke = true;
        if (body[0] === Kind.peer) {
          if (this.#handlers.peer(body)) info.trusted = true;
          continue;
        }
        if (!CLIENT_KINDS.has(body[0]!)) {
          throw new ProtocolError(`unknown message kind 0x${body[0]!.toString(16)}`);
        }
        const response = await this.#handlers.request(body[0]!, body.subarray(1));
        const written = writer.write([encodeResponse(response)]).catch(() => closeQuietly(conn));
        // A client that does not read its answers stops being read (and times out as idle).
        if (writer.queuedBytes > CLIENT_PAUSE_QUEUED_BYTES) await written;
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
      clearTimeout(idle);
      this.#conns.delete(conn);
      closeQuietly(conn);
    }
  }
}

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
