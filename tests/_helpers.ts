// Helpers shared by the unit tests: temporary directories, deterministic key pairs, signed transfers,
// a seeded random source and error assertions that check both the class and the message.

import assert from "node:assert/strict";
import { type KeyPair, keyPairFromSeed } from "../lib/keys.ts";
import { decodeTx, signTx, type Tx } from "../lib/tx.ts";

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

// --- Command-line helpers: run `coin` as a real process (tests/cli/).

/** What a `coin` process printed and how it exited. */
export interface CoinRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Absolute path of a file of this repository (from this module's URL, whatever the cwd). */
export function repoPath(relative: string): string {
  return decodeURIComponent(new URL(`../${relative}`, import.meta.url).pathname);
}

/**
 * Runs `deno run -A main.ts ...args` as a child process in `cwd` (default: the current directory),
 * with `stdin` as its standard input (default: none) and NO_COLOR set, and returns its exit status and
 * output. The repository's deno.json is named explicitly, so the cwd can be any temporary directory.
 */
export async function runCoin(
  args: string[],
  options: { cwd?: string; stdin?: string; env?: Record<string, string> } = {},
): Promise<CoinRun> {
  const command = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--frozen",
      "--quiet",
      `--config=${repoPath("deno.json")}`,
      repoPath("main.ts"),
      ...args,
    ],
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
