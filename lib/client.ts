// Talking to a server as a client: one TCP connection with pipelined requests (answered in order),
// and the fallback over the servers of peers.json that every client command uses.

import { CoinError } from "./errors.ts";
import type { Network, Peer } from "./peers.ts";
import {
  decodeResponse,
  encodeRequest,
  Kind,
  MAX_RESPONSE_BYTES,
  MessageReader,
  MessageWriter,
  ProtocolError,
} from "./wire.ts";

/**
 * How long a connection attempt and a request may take. A connection attempt that finds a server's accept
 * queue full (a flood of connections) is retried by the kernel after 1 s: 2 s allows for one retry.
 */
export const CONNECT_TIMEOUT_MS = 2_000;
export const REQUEST_TIMEOUT_MS = 5_000;
/** Most requests one connection may have waiting for answers. */
export const MAX_PIPELINED_REQUESTS = 4096;

/** A response map from a server. */
export type Response = Record<string, unknown>;

/** Opens a TCP connection or fails after `timeoutMs`. */
export async function connectWithTimeout(
  host: string,
  port: number,
  timeoutMs: number,
): Promise<Deno.TcpConn> {
  const attempt = Deno.connect({ hostname: host, port, transport: "tcp" });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`connection timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([attempt, timeout]);
  } catch (err) {
    attempt.then((c) => c.close(), () => {});
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** A client connection to one server. */
export class ServerConnection {
  readonly host: string;
  readonly port: number;
  #conn: Deno.TcpConn;
  #writer: MessageWriter;
  #pending: {
    resolve: (r: Response) => void;
    reject: (e: Error) => void;
    timer: ReturnType<typeof setTimeout>;
  }[] = [];
  #closed: Error | undefined;
  #reading: Promise<void>;

  private constructor(conn: Deno.TcpConn, host: string, port: number) {
    this.#conn = conn;
    this.host = host;
    this.port = port;
    this.#writer = new MessageWriter(conn, { maxQueuedBytes: 16 * 1024 * 1024 });
    this.#reading = this.#readLoop();
  }

  /** Connects to `host:port`; throws CoinError when the server cannot be reached. */
  static async open(host: string, port: number, timeoutMs = CONNECT_TIMEOUT_MS): Promise<ServerConnection> {
    try {
      const conn = await connectWithTimeout(host, port, timeoutMs);
      conn.setNoDelay(true);
      return new ServerConnection(conn, host, port);
    } catch (err) {
      throw new CoinError(`Cannot reach server ${host}:${port}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** True once the connection failed or was closed. */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  async #readLoop(): Promise<void> {
    const reader = new MessageReader(this.#conn, { maxBytes: MAX_RESPONSE_BYTES });
    try {
      while (true) {
        const body = await reader.next();
        if (body === null) throw new ProtocolError("server closed the connection");
        if (this.#pending.length === 0) throw new ProtocolError("server sent an unrequested response");
        // Decoded while the request still waits in the queue: a reply that is not a response then fails
        // that request too (in #fail), instead of leaving it waiting forever.
        const response = decodeResponse(body);
        const next = this.#pending.shift()!;
        clearTimeout(next.timer);
        next.resolve(response);
      }
    } catch (err) {
      this.#fail(err instanceof Error ? err : new Error(String(err)));
    }
  }

  #fail(err: Error): void {
    if (this.#closed === undefined) {
      this.#closed = err;
      try {
        this.#conn.close();
      } catch {
        // already closed
      }
    }
    for (const p of this.#pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(new CoinError(`Lost server ${this.host}:${this.port}: ${err.message}`, { cause: err }));
    }
  }

  /** Sends one request and waits for its response. */
  request(kind: number, argument?: Uint8Array, timeoutMs = REQUEST_TIMEOUT_MS): Promise<Response> {
    if (this.#closed !== undefined) {
      return Promise.reject(new CoinError(`Lost server ${this.host}:${this.port}: ${this.#closed.message}`));
    }
    if (this.#pending.length >= MAX_PIPELINED_REQUESTS) {
      return Promise.reject(new CoinError(`Too many requests waiting on ${this.host}:${this.port}`));
    }
    return new Promise<Response>((resolve, reject) => {
      const timer = setTimeout(() => this.#fail(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      this.#pending.push({ resolve, reject, timer });
      this.#writer.write([encodeRequest(kind, argument)]).catch((err) => this.#fail(err as Error));
    });
  }

  /** Closes the connection; waiting requests fail. */
  async close(): Promise<void> {
    this.#fail(new Error("connection closed"));
    await this.#reading;
  }
}

/** The servers to try, in order: `--server` alone when given, else those of peers.json. */
export function candidates(network: Network | undefined, server?: { host: string; port: number }) {
  if (server !== undefined) return [{ name: `${server.host}:${server.port}`, ...server }];
  if (network === undefined) throw new Error("Either a network or a server is required");
  return network.servers.map((s: Peer) => ({ name: s.name, host: s.host, port: s.port }));
}

/**
 * Runs `fn` on the first server that accepts a connection; a server that fails mid-way is skipped.
 * Throws a CoinError naming every server tried when none answers.
 */
export async function withAnyServer<T>(
  servers: { name: string; host: string; port: number }[],
  fn: (conn: ServerConnection) => Promise<T>,
): Promise<T> {
  const problems: string[] = [];
  for (const s of servers) {
    let conn: ServerConnection;
    try {
      conn = await ServerConnection.open(s.host, s.port);
    } catch (err) {
      problems.push(`${s.name} (${(err as Error).message.replace(/^Cannot reach server [^:]+:\d+: /, "")})`);
      continue;
    }
    try {
      return await fn(conn);
    } catch (err) {
      if (!(err instanceof CoinError) || !err.message.startsWith("Lost server")) throw err;
      problems.push(`${s.name} (${err.message})`);
    } finally {
      await conn.close();
    }
  }
  throw new CoinError(`No server answered: ${problems.join("; ")}`);
}

export { Kind };
