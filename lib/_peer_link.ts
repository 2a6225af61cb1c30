// An outgoing connection to one other server, opened on first use and again after a failure. Each new
// connection first proves this server's key: it asks for a challenge and signs it (docs/protocol.md, 8.2).
// Messages to a server that cannot be reached are dropped: votes are resent every frame anyway.

import { connectWithTimeout } from "./client.ts";
import type { Signer } from "./keys.ts";
import type { Peer } from "./peers.ts";
import {
  authDigest,
  CHALLENGE_BYTES,
  decodeResponse,
  encodeAuth,
  encodeRequest,
  Kind,
  MAX_PEER_MESSAGE_BYTES,
  MAX_RESPONSE_BYTES,
  MessageReader,
  MessageWriter,
} from "./wire.ts";

/** How long to wait for a connection to another server, its challenge and the answer to the proof. */
export const PEER_CONNECT_TIMEOUT_MS = 1_000;
/** After a failed attempt, wait this long before trying that server again. */
export const PEER_RETRY_MS = 250;

/** Who this server is, to prove it on each connection. */
export interface LinkIdentity {
  readonly networkId: string;
  readonly publicKey: Uint8Array;
  readonly signer: Signer;
}

export class PeerLink {
  readonly peer: Peer;
  readonly #identity: LinkIdentity;
  #conn: Deno.TcpConn | undefined;
  #writer: MessageWriter | undefined;
  #connecting: Promise<boolean> | undefined;
  #retryAfterMs = 0;
  #closed = false;
  #greeting: (() => Uint8Array[] | undefined) | undefined;

  /**
   * `greeting` gives a small signed message to send first on every new connection (this server's last
   * vote), so a server that reconnects has its latest vote at once.
   */
  constructor(
    peer: Peer,
    identity: LinkIdentity,
    options: { greeting?: () => Uint8Array[] | undefined } = {},
  ) {
    this.peer = peer;
    this.#identity = identity;
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
      let conn: Deno.TcpConn | undefined;
      try {
        conn = await connectWithTimeout(this.peer.host, this.peer.port, PEER_CONNECT_TIMEOUT_MS);
        if (this.#closed) {
          conn.close();
          return false;
        }
        conn.setNoDelay(true);
        const writer = new MessageWriter(conn, { maxQueuedBytes: MAX_PEER_MESSAGE_BYTES });
        const reader = new MessageReader(conn, { maxBytes: MAX_RESPONSE_BYTES, bufferBytes: 1024 });
        await this.#prove(conn, reader, writer);
        this.#conn = conn;
        this.#writer = writer;
        const greeting = this.#greeting?.();
        if (greeting !== undefined) writer.write(greeting).catch(() => {});
        this.#watch(conn, reader);
        return true;
      } catch {
        try {
          conn?.close();
        } catch {
          // already closed
        }
        this.#retryAfterMs = Date.now() + PEER_RETRY_MS;
        return false;
      } finally {
        this.#connecting = undefined;
      }
    })();
    return await this.#connecting;
  }

  /** Asks for a challenge and answers it with this server's signature; throws when it is not accepted. */
  async #prove(conn: Deno.TcpConn, reader: MessageReader, writer: MessageWriter): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        conn.close();
        reject(new Error("no answer to the key proof"));
      }, PEER_CONNECT_TIMEOUT_MS);
    });
    const answer = async () => {
      const body = await reader.next();
      if (body === null) throw new Error("connection closed during the key proof");
      return decodeResponse(body);
    };
    try {
      await Promise.race([writer.write([encodeRequest(Kind.hello)]), timeout]);
      const hello = await Promise.race([answer(), timeout]);
      const challenge = hello.challenge;
      if (!(challenge instanceof Uint8Array) || challenge.length !== CHALLENGE_BYTES) {
        throw new Error("the server sent no challenge");
      }
      const { networkId, publicKey, signer } = this.#identity;
      const proof = encodeAuth(publicKey, signer(authDigest(networkId, this.peer.key, challenge)));
      await Promise.race([writer.write([encodeRequest(Kind.auth, proof)]), timeout]);
      const accepted = await Promise.race([answer(), timeout]);
      if (accepted.ok !== true) throw new Error("the server did not accept the key proof");
    } finally {
      clearTimeout(timer);
    }
  }

  /** The other side writes nothing more; reading tells at once when it closed, so the next send reconnects. */
  async #watch(conn: Deno.TcpConn, reader: MessageReader): Promise<void> {
    try {
      while ((await reader.next()) !== null) {
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
