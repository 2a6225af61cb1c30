// An outgoing connection to one other server, opened on first use and again after a failure. Each new
// connection first proves this server's key: it asks for a challenge and signs it (docs/protocol.md, 8.1).
// The answer also says what the other server's network file is and what its clock reads, so a server on
// another network is told apart from a broken one, and a clock that is off is named.
// Messages to a server that cannot be reached are dropped: votes are resent every frame anyway.

import { connectWithTimeout } from "./client.ts";
import type { Signer } from "./keys.ts";
import { differingParts, type NetworkPart, type NetworkParts, type Peer } from "./peers.ts";
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
/** A server makes sure it is connected to each other server this often, even with nothing to send. */
export const PEER_PROBE_MS = 1_000;
/** On a connection that stays open, the other server's clock is read again this often. */
export const CLOCK_CHECK_MS = 30_000;
/** A clock is never reported as off when it is within this of this server's (see clockWarnMs). */
export const CLOCK_WARN_MS = 1_000;
/** Nor within this: what NTP keeps between healthy machines over the internet. */
export const CLOCK_NOISE_MS = 50;

/** Who this server is, to prove it on each connection, and its network file's parts, to compare. */
export interface LinkIdentity {
  readonly networkId: string;
  readonly parts: NetworkParts;
  readonly publicKey: Uint8Array;
  readonly signer: Signer;
}

/** Another server's clock minus this server's, from one question and its answer. */
export interface ClockEstimate {
  readonly offsetMs: number;
  /** The true offset is within offsetMs ± uncertaintyMs. */
  readonly uncertaintyMs: number;
}

/** What one answer to `hello` told about the other server (docs/protocol.md, 8.1). */
export interface PeerCheck {
  /**
   * The parts of its network file that differ from this server's (possibly none it named) when its network
   * id differs; undefined when it is the same network.
   */
  readonly networkDiffers: readonly NetworkPart[] | undefined;
  /** Undefined when it did not say what its clock reads (an older server). */
  readonly clock: ClockEstimate | undefined;
}

/**
 * The other clock's offset from `timeMs`, which it read between `sentMs` and `receivedMs` by this clock: at
 * the midpoint, give or take half the round trip, however the trip was split.
 *
 * @example
 * ```ts
 * estimateClock(1_000, 1_010, 8_005); // { offsetMs: 7_000, uncertaintyMs: 5 }
 * ```
 */
export function estimateClock(sentMs: number, receivedMs: number, timeMs: number): ClockEstimate {
  return { offsetMs: timeMs - (sentMs + receivedMs) / 2, uncertaintyMs: (receivedMs - sentMs) / 2 };
}

/**
 * How far another server's clock may be from this one's before it is reported: half the skew peers.json
 * tolerates between clocks (servers judge timestamps and the end of a frame with it), so the warning comes
 * while there is margin left; at most CLOCK_WARN_MS, since a clock a second off is broken whatever the skew;
 * at least CLOCK_NOISE_MS, so that a network with no skew does not warn about healthy clocks.
 */
export function clockWarnMs(skewMs: number): number {
  return Math.min(CLOCK_WARN_MS, Math.max(CLOCK_NOISE_MS, skewMs / 2));
}

/**
 * "off" when the clock is surely more than `warnMs` away, "ok" when surely within it, "unsure" when the
 * measurement cannot tell (a slow answer): the last verdict stands.
 */
export function judgeClock(clock: ClockEstimate, warnMs: number): "off" | "ok" | "unsure" {
  const distance = Math.abs(clock.offsetMs);
  if (distance - clock.uncertaintyMs > warnMs) return "off";
  if (distance + clock.uncertaintyMs <= warnMs) return "ok";
  return "unsure";
}

export class PeerLink {
  readonly peer: Peer;
  readonly #identity: LinkIdentity;
  #conn: Deno.TcpConn | undefined;
  #writer: MessageWriter | undefined;
  #connecting: Promise<boolean> | undefined;
  /** The connection being proved, closed if the link closes meanwhile. */
  #proving: Deno.TcpConn | undefined;
  #retryAfterMs = 0;
  #closed = false;
  #greeting: (() => Uint8Array[] | undefined) | undefined;
  readonly #now: () => number;
  readonly #onCheck: ((check: PeerCheck) => void) | undefined;
  /** When the next clock reading on the open connection is due, and when the pending one was asked. */
  #nextCheckMs = 0;
  #checkSentMs: number | undefined;

  /**
   * `greeting` gives a small signed message to send first on every new connection (this server's last
   * vote), so a server that reconnects has its latest vote at once. `onCheck` is told what each answer to
   * `hello` said about the other server; `now` is this server's clock (unix ms).
   */
  constructor(
    peer: Peer,
    identity: LinkIdentity,
    options: {
      greeting?: () => Uint8Array[] | undefined;
      now?: () => number;
      onCheck?: (check: PeerCheck) => void;
    } = {},
  ) {
    this.peer = peer;
    this.#identity = identity;
    this.#greeting = options.greeting;
    this.#now = options.now ?? Date.now;
    this.#onCheck = options.onCheck;
  }

  #drop(): void {
    try {
      this.#conn?.close();
    } catch {
      // already closed
    }
    this.#conn = undefined;
    this.#writer = undefined;
    this.#checkSentMs = undefined;
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
        this.#proving = conn;
        await this.#prove(conn, reader, writer);
        if (this.#closed) throw new Error("closed");
        this.#conn = conn;
        this.#writer = writer;
        this.#nextCheckMs = this.#now() + CLOCK_CHECK_MS;
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
        this.#proving = undefined;
        this.#connecting = undefined;
      }
    })();
    return await this.#connecting;
  }

  /** What an answer to `hello` asked at `sentMs` says about the other server. */
  #check(answer: Record<string, unknown>, sentMs: number): PeerCheck {
    const receivedMs = this.#now();
    const network = answer.network;
    const id = typeof network === "object" && network !== null
      ? (network as Record<string, unknown>).id
      : undefined;
    const time = answer.timeMs;
    return {
      networkDiffers: typeof id === "string" && id !== this.#identity.networkId
        ? differingParts(this.#identity.parts, network)
        : undefined,
      clock: typeof time === "number" && Number.isFinite(time)
        ? estimateClock(sentMs, receivedMs, time)
        : undefined,
    };
  }

  /**
   * Asks for a challenge and answers it with this server's signature; throws when it is not accepted, or
   * without answering when the other server says it runs another network (its proof would fail anyway).
   */
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
      const sentMs = this.#now();
      await Promise.race([writer.write([encodeRequest(Kind.hello)]), timeout]);
      const hello = await Promise.race([answer(), timeout]);
      const check = this.#check(hello, sentMs);
      // An older server says nothing of its network: the proof below tells whether it is the same one.
      if (hello.network !== undefined) this.#onCheck?.(check);
      if (check.networkDiffers !== undefined) throw new Error("the server runs another network");
      const challenge = hello.challenge;
      if (!(challenge instanceof Uint8Array) || challenge.length !== CHALLENGE_BYTES) {
        throw new Error("the server sent no challenge");
      }
      const { networkId, publicKey, signer } = this.#identity;
      const proof = encodeAuth(publicKey, signer(authDigest(networkId, this.peer.key, challenge)));
      await Promise.race([writer.write([encodeRequest(Kind.auth, proof)]), timeout]);
      const accepted = await Promise.race([answer(), timeout]);
      if (accepted.ok !== true) throw new Error("the server did not accept the key proof");
      if (hello.network === undefined) this.#onCheck?.(check);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The other side writes nothing more than the answers to this side's later `hello`s (clock readings);
   * reading tells at once when it closed, so the next send reconnects.
   */
  async #watch(conn: Deno.TcpConn, reader: MessageReader): Promise<void> {
    try {
      let body: Uint8Array | null;
      while ((body = await reader.next()) !== null) {
        const sentMs = this.#checkSentMs;
        if (sentMs === undefined || this.#conn !== conn) continue;
        this.#checkSentMs = undefined;
        let answer: Record<string, unknown>;
        try {
          answer = decodeResponse(body);
        } catch {
          continue;
        }
        this.#onCheck?.(this.#check(answer, sentMs));
      }
    } catch {
      // closed or reset
    }
    if (this.#conn === conn) this.#drop();
  }

  /**
   * Reads the other clock again on a connection that stays open (a clock can jump, or be fixed): a new
   * `hello`, whose challenge is left unanswered. One at a time.
   */
  #checkClock(writer: MessageWriter): void {
    const now = this.#now();
    if (now < this.#nextCheckMs || this.#checkSentMs !== undefined) return;
    this.#nextCheckMs = now + CLOCK_CHECK_MS;
    this.#checkSentMs = now;
    writer.write([encodeRequest(Kind.hello)]).catch(() => {});
  }

  /** Sends one message; resolves false when it could not be written. */
  async send(chunks: Uint8Array[]): Promise<boolean> {
    if (this.#closed || !(await this.#connect())) return false;
    const writer = this.#writer!;
    this.#checkClock(writer);
    try {
      await writer.write(chunks);
      return true;
    } catch {
      if (this.#writer === writer) this.#drop();
      return false;
    }
  }

  /**
   * Connects if not connected, and reads the other clock again when due, without sending anything: so a
   * server learns about the others before the network's first frame too, and while it has nothing to say.
   */
  async probe(): Promise<void> {
    if (this.#closed || !(await this.#connect())) return;
    const writer = this.#writer;
    if (writer !== undefined) this.#checkClock(writer);
  }

  /** Closes the connection; resolves once a connection attempt under way has ended too. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#drop();
    try {
      this.#proving?.close();
    } catch {
      // already closed
    }
    await this.#connecting;
  }
}
