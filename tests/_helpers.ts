// Helpers shared by the unit tests: temporary directories, deterministic key pairs, signed transfers,
// a seeded random source and error assertions that check both the class and the message.

import assert from "node:assert/strict";
import { type KeyPair, keyPairFromSeed } from "../lib/keys.ts";
import { decodeTx, signTx, type Tx } from "../lib/tx.ts";
import { encodeResponse, MAX_CLIENT_MESSAGE_BYTES, MessageReader } from "../lib/wire.ts";
import type { Io } from "../lib/cli/_command.ts";
import { isVerbose, main } from "../main.ts";

/** A temporary directory removed with everything in it when the `await using` scope ends. */
export interface TempDir extends AsyncDisposable {
  readonly path: string;
}

/** Makes a temporary directory; use it as `await using dir = await makeTempDir();`. */
export async function makeTempDir(): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix: "coin_test_" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}

/** The key pair whose seed is 32 copies of `n` (0 to 255): the same keys in every run. */
export async function makeKeyPair(n: number): Promise<KeyPair> {
  return await keyPairFromSeed(new Uint8Array(32).fill(n));
}

/** `count` distinct deterministic key pairs, seeds 1 to `count`. */
export async function makeKeyPairs(count: number): Promise<KeyPair[]> {
  return await Promise.all(Array.from({ length: count }, (_, i) => makeKeyPair(i + 1)));
}

/** A 32-byte account id that no test key owns (first byte `first`, then `n` big-endian). */
export function makeAccount(first: number, n = 0): Uint8Array {
  const id = new Uint8Array(32);
  id[0] = first;
  new DataView(id.buffer).setUint32(28, n);
  return id;
}

/** A transfer of `amount` from `payer` to `payee`, signed and decoded. */
export async function signTransfer(
  payer: KeyPair,
  payee: KeyPair | Uint8Array,
  options: { amount: number | bigint; timestampMs: number },
): Promise<Tx> {
  const to = payee instanceof Uint8Array ? payee : payee.publicKey;
  const tx = decodeTx(await signTx(payer, { to, amount: options.amount, timestampMs: options.timestampMs }));
  assert.ok(tx !== undefined);
  return tx;
}

/** A seeded pseudo-random source (mulberry32), so a failing property test can be replayed. */
export function seededRandom(seed: number): { next(): number; int(below: number): number } {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (below) => Math.floor(next() * below) };
}

// deno-lint-ignore no-explicit-any
type ErrorClass = new (...args: any[]) => Error;

/** Asserts that `fn` throws an instance of `errorClass` whose message matches `pattern`. */
export function assertThrowsError(fn: () => unknown, errorClass: ErrorClass, pattern: RegExp): Error {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  return checkError(caught, errorClass, pattern);
}

/** Asserts that `fn` rejects with an instance of `errorClass` whose message matches `pattern`. */
export async function assertRejectsError(
  fn: () => Promise<unknown>,
  errorClass: ErrorClass,
  pattern: RegExp,
): Promise<Error> {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  return checkError(caught, errorClass, pattern);
}

function checkError(caught: unknown, errorClass: ErrorClass, pattern: RegExp): Error {
  assert.ok(caught !== undefined, `Expected ${errorClass.name}, but nothing was thrown`);
  assert.ok(caught instanceof errorClass, `Expected ${errorClass.name}, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  return caught;
}

// --- Command-line helpers: run `coin` in this process (runCoin) or as a real process (runCoinProcess).

/** What a `coin` run printed and how it exited. */
export interface CoinRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Absolute path of a file of this repository (from this module's URL, whatever the cwd). */
export function repoPath(relative: string): string {
  return decodeURIComponent(new URL(`../${relative}`, import.meta.url).pathname);
}

/** A contacts file that does not exist: in-process runs read it unless a test names another. */
const NO_CONTACTS_FILE = `${Deno.env.get("TMPDIR") ?? "/tmp"}/coin-test-${crypto.randomUUID()}/contacts.json`;

/**
 * Runs `coin ...args` in this process through main.ts's `main()` and returns its exit status and output,
 * as a `coin` process with piped output would print them: no colour, no progress line (standard error is
 * not a terminal), `stdin` as standard input (default: empty), `env` as the only environment variables it
 * sees (COIN_DEBUG, COIN_KEY_PASSPHRASE, COIN_CONTACTS: by default a file that does not exist, so a user's
 * own contacts never change a result), and a bug's stack on stderr with status 1. Relative paths resolve against this test
 * process's cwd, which must not change: pass absolute paths, or use runCoinProcess when the cwd matters.
 */
export async function runCoin(
  args: string[],
  options: { stdin?: string; env?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<CoinRun> {
  let stdout = "";
  let stderr = "";
  // A contacts file that does not exist unless the test names one: never the user's own.
  const env: Record<string, string> = { COIN_CONTACTS: NO_CONTACTS_FILE, ...options.env };
  const io: Io = {
    out: (line) => {
      stdout += line + "\n";
    },
    err: (line) => {
      stderr += line + "\n";
    },
    readStdin: () => Promise.resolve(options.stdin ?? ""),
    errIsTerminal: false,
    signal: options.signal ?? new AbortController().signal,
    verbose: isVerbose(args, { get: (name) => env[name] }),
    env: { get: (name) => env[name] },
  };
  let code: number;
  try {
    code = await main(args, io);
  } catch (err) {
    // What the runtime does with the uncaught error of a real process.
    stderr += `error: Uncaught ${err instanceof Error ? err.stack : String(err)}\n`;
    code = 1;
  }
  return { code, stdout, stderr };
}

/**
 * The arguments of `deno` that run `coin ...args` from this repository in any working directory: its
 * deno.json is named explicitly, the lock file is kept as it is, and Deno's own messages are quiet.
 */
export function coinArgs(args: readonly string[]): string[] {
  return [
    "run",
    "--allow-all",
    "--frozen",
    "--quiet",
    `--config=${repoPath("deno.json")}`,
    repoPath("main.ts"),
    ...args,
  ];
}

/**
 * Runs `deno run -A main.ts ...args` as a child process in `cwd` (default: the current directory),
 * with `stdin` as its standard input (default: none) and NO_COLOR set, and returns its exit status and
 * output. The repository's deno.json is named explicitly, so the cwd can be any temporary directory.
 * For what needs a real process: a cwd of its own, the process's own handling of its environment.
 */
export async function runCoinProcess(
  args: string[],
  options: { cwd?: string; stdin?: string; env?: Record<string, string> } = {},
): Promise<CoinRun> {
  const command = new Deno.Command(Deno.execPath(), {
    args: coinArgs(args),
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    env: { NO_COLOR: "1", ...options.env },
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const child = command.spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** The lines of `text` without the final newline's empty line. */
export function linesOf(text: string): string[] {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines;
}

/**
 * Asserts a refused command: exit status `code`, nothing on stdout unless `stdout` allows it, exactly one
 * stderr line starting with "coin: " and matching `pattern`, and no stack trace.
 */
export function assertOneLineError(
  run: CoinRun,
  code: number,
  pattern: RegExp,
  options: { stdout?: boolean } = {},
): void {
  const context = `exit ${run.code}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`;
  assert.equal(run.code, code, context);
  if (!options.stdout) assert.equal(run.stdout, "", context);
  const lines = linesOf(run.stderr);
  assert.equal(lines.length, 1, context);
  assert.match(lines[0]!, /^coin: /, context);
  assert.match(lines[0]!, pattern, context);
  assert.doesNotMatch(run.stderr, /^\s*at /m, context);
}

// --- A stand-in for a coin server: the client side of the wire (tests/client_test.ts, tests/cli/).

/**
 * What a fake server does with one request: answer with a response map; write raw bytes (each chunk a
 * write of its own), then close the connection when `close` is set; close it without answering; or stay
 * silent.
 */
export type FakeReply =
  | Record<string, unknown>
  | { raw: Uint8Array[]; close?: boolean }
  | "close"
  | undefined;

/** A fake server listening on 127.0.0.1; closes its listener and every connection when disposed. */
export interface FakeServer extends AsyncDisposable {
  readonly port: number;
  /** Every request body received (kind byte first), in order, over all connections. */
  readonly requests: Uint8Array[];
  /** Connections accepted so far. */
  readonly accepted: number;
}

/** A port on 127.0.0.1 that nothing listens on (bound on port 0, read back, released). */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * Listens on 127.0.0.1 port 0 and reads length-prefixed client requests (lib/wire.ts); `reply` is called
 * with each request body and its index in `requests`. Use it as `await using server = startFakeServer(...)`.
 */
export function startFakeServer(
  reply: (body: Uint8Array, index: number) => FakeReply | Promise<FakeReply>,
): FakeServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: Uint8Array[] = [];
  const open = new Set<Deno.Conn>();
  const handlers: Promise<void>[] = [];
  let accepted = 0;
  const close = (conn: Deno.Conn) => {
    if (!open.delete(conn)) return;
    try {
      conn.close();
    } catch {
      // already closed
    }
  };
  const handle = async (conn: Deno.Conn) => {
    const reader = new MessageReader(conn, { maxBytes: MAX_CLIENT_MESSAGE_BYTES });
    try {
      while (true) {
        const body = await reader.next();
        if (body === null) return;
        requests.push(body);
        const answer = await reply(body, requests.length - 1);
        if (answer === "close") return;
        if (answer === undefined) continue;
        const chunks = "raw" in answer ? answer.raw as Uint8Array[] : [encodeResponse(answer)];
        for (const chunk of chunks) {
          for (let off = 0; off < chunk.length;) off += await conn.write(chunk.subarray(off));
        }
        if ("raw" in answer && answer.close === true) return;
      }
    } catch {
      // The client went away, or the server is being disposed.
    } finally {
      close(conn);
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        accepted++;
        open.add(conn);
        handlers.push(handle(conn));
      }
    } catch {
      // the listener was closed
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    requests,
    get accepted() {
      return accepted;
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      for (const conn of [...open]) close(conn);
      await Promise.all(handlers);
    },
  };
}
