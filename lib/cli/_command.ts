// What every subcommand shares: its description, the output it writes to, flag parsing with
// one-line usage errors that suggest the closest valid name.

import { parseArgs } from "node:util";
import { UsageError } from "../errors.ts";

/** Where a command writes, and the signal that asks it to stop (Ctrl-C, SIGTERM). */
export interface Io {
  /** Writes one line to standard output. */
  out(line: string): void;
  /** Writes one line to standard error (logs, progress, warnings). */
  err(line: string): void;
  /** Reads all of standard input (for `-` arguments). */
  readStdin(): Promise<string>;
  /** Rewrites one progress line on a terminal's standard error ("" clears it). */
  progress?(line: string): void;
  /** True when standard error is a terminal (colour, progress). */
  readonly errIsTerminal: boolean;
  readonly signal: AbortSignal;
  /** Extra detail on errors (`--verbose` or COIN_DEBUG=1). */
  readonly verbose: boolean;
  /** The environment (Deno.env for the process; tests pass their own, so no user's files are read). */
  readonly env: Env;
  /**
   * Asks a question on the terminal: the prompt on standard error, one line of answer from standard
   * input; `secret` hides what is typed. Absent (or resolving undefined) when no one can answer,
   * because standard input is not a terminal: scripts are never asked.
   */
  ask?(prompt: string, options?: { secret?: boolean }): Promise<string | undefined>;
}

/** Environment variables, as Deno.env reads them. */
export interface Env {
  get(name: string): string | undefined;
}

/** One subcommand. */
export interface Command {
  readonly name: string;
  /** One line for `coin --help`. */
  readonly summary: string;
  /** Full help: usage, flags, examples. */
  readonly help: string;
  run(args: string[], io: Io): Promise<void>;
}

type FlagSpec = Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }>;

/**
 * Edit distance for "did you mean" suggestions, counting a swap of two adjacent letters as one edit
 * (optimal string alignment): the commonest typo, "sing", is then one edit from "sign", not a tie with
 * "send", a command that moves money.
 */
export function editDistance(a: string, b: string): number {
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      let d = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, before[j - 2]! + 1);
      }
      row.push(d);
    }
    before = previous;
    previous = row;
  }
  return previous[b.length]!;
}

/** The candidate closest to `name`, when close enough to be a likely typo. */
export function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(name, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

/**
 * Parses `args` for `command` with node:util's parseArgs. Unknown flags, missing values and stray
 * positionals become one-line UsageErrors. `--help`/`-h` and `--verbose` are always accepted.
 */
export function parseFlags<T extends FlagSpec>(
  command: string,
  args: string[],
  spec: T,
  options: { positionals?: number } = {},
) {
  const full = { ...spec, help: { type: "boolean", short: "h" }, verbose: { type: "boolean" } } as const;
  for (const arg of args) {
    if (arg === "--") break;
    if (!arg.startsWith("--")) continue;
    const name = arg.slice(2).split("=")[0]!;
    if (!(name in full)) {
      const hint = closest(name, Object.keys(full));
      throw new UsageError(
        `Unknown flag --${name} for "coin ${command}"` + (hint ? `; did you mean --${hint}?` : "") +
          ` (see coin ${command} --help)`,
      );
    }
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options: full as FlagSpec, allowPositionals: true, strict: true });
  } catch (err) {
    const msg = (err as Error).message.split("\n")[0]!.replace(/\.$/, "");
    const ambiguous = /^Option '--([a-z-]+)/.exec(msg);
    if (ambiguous && msg.includes("ambiguous")) {
      const flag = ambiguous[1]!;
      const value = args[args.indexOf(`--${flag}`) + 1] ?? "";
      throw new UsageError(
        `Value "${value}" for --${flag} starts with "-"; write --${flag}=${value} if it is meant (see coin ${command} --help)`,
      );
    }
    throw new UsageError(`${msg} (see coin ${command} --help)`);
  }
  const max = options.positionals ?? 0;
  if (parsed.positionals.length > max && !parsed.values.help) {
    throw new UsageError(
      `Unexpected argument "${parsed.positionals[max]}" for "coin ${command}" (see coin ${command} --help)`,
    );
  }
  return parsed as unknown as {
    values: { [K in keyof T]?: T[K]["type"] extends "boolean" ? boolean : string } & {
      help?: boolean;
      verbose?: boolean;
    };
    positionals: string[];
  };
}

/** The value of a required flag, or a UsageError naming it. */
export function required(command: string, flag: string, value: string | undefined): string {
  if (value === undefined || value === "") {
    throw new UsageError(`Missing --${flag} for "coin ${command}" (see coin ${command} --help)`);
  }
  return value;
}

/** Parses a whole number flag (digits only); UsageError otherwise. */
export function wholeNumber(command: string, flag: string, text: string): number | bigint {
  if (!/^-?[0-9]+$/.test(text)) {
    throw new UsageError(`Invalid --${flag} "${text}" for "coin ${command}": expected a whole number`);
  }
  const big = BigInt(text);
  return big <= BigInt(Number.MAX_SAFE_INTEGER) && big >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(big) : big;
}

/** Parses `HOST:PORT`; UsageError otherwise. */
export function hostPort(command: string, flag: string, text: string): { host: string; port: number } {
  const i = text.lastIndexOf(":");
  const host = text.slice(0, i).replace(/^\[(.*)\]$/, "$1");
  const port = Number(text.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`Invalid --${flag} "${text}" for "coin ${command}": expected HOST:PORT`);
  }
  return { host, port };
}
