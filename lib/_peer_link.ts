// An outgoing connection to one other server, opened on first use and again after a failure.
// Messages to a server that cannot be reached are dropped: votes are resent every frame anyway.

import { connectWithTimeout } from "./client.ts";
import type { Peer } from "./peers.ts";
import { MAX_PEER_MESSAGE_BYTES, MessageWriter } from "./wire.ts";

/** How long to wait for a connection to another server. */
export const PEER_CONNECT_TIMEOUT_MS = 1_000;
/** After a failed attempt, wait this long before trying that server again. */
export const PEER_RETRY_MS = 250;

export class PeerLink {
  readonly peer: Peer;
  #conn: Deno.TcpConn | undefined;
  #writer: MessageWriter | undefined;
  #connecting: Promise<boolean> | undefined;
  #retryAfterMs = 0;
  #closed = false;
  #greeting: (() => Uint8Array[] | undefined) | undefined;

  /**
   * `greeting` gives a small signed message to send first on every new connection (this server's last
   * vote): the receiver takes large messages only on a connection that proved a listed key.
   */
  constructor(peer: Peer, options: { greeting?: () => Uint8Array[] | undefined } = {}) {
    this.peer = peer;
    this.#greeting = options.greeting;
  }

  #drop(): void {
    try {
      this.#conn?.close();
    } catch {
      // already closed
    }
    this.#conn = undefined;
    this.#writer = undefined;
  }

  async #connect(): Promise<boolean> {
    if (this.#conn !== undefined) return true;
    if (Date.now() < this.#retryAfterMs) return false;
    this.#connecting ??= (async () => {
      try {
        const conn = await connectWithTimeout(this.peer.host, this.peer.port, PEER_CONNECT_TIMEOUT_MS);
        if (this.#closed) {
          conn.close();
          return false;
        }
        conn.setNoDelay(true);
        this.#conn = conn;
        this.#writer = new MessageWriter(conn, { maxQueuedBytes: MAX_PEER_MESSAGE_BYTES });
        const greeting = this.#greeting?.();
        if (greeting !== undefined) this.#writer.write(greeting).catch(() => {});
        this.#watch(conn);
        return true;
      } catch {
        this.#retryAfterMs = Date.now() + PEER_RETRY_MS;
        return false;
      } finally {
        this.#connecting = undefined;
      }
    })();
    return await this.#connecting;
  }

  /** The other side never writes; reading tells at once when it closed, so the next send reconnects. */
  async #watch(conn: Deno.TcpConn): Promise<void> {
    const scratch = new Uint8Array(64);
    try {
      while ((await conn.read(scratch)) !== null) {
        // ignore
      }
    } catch {
      // closed or reset
    }
    if (this.#conn === conn) this.#drop();
  }

  /** Sends one message; resolves false when it could not be written. */
  async send(chunks: Uint8Array[]): Promise<boolean> {
    if (this.#closed || !(await this.#connect())) return false;
    const writer = this.#writer!;
    try {
      await writer.write(chunks);
      return true;
    } catch {
      if (this.#writer === writer) this.#drop();
      return false;
    }
  }

  close(): void {
    this.#closed = true;
    this.#drop();
  }
}
