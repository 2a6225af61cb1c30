// coin: the process. Dispatches the subcommand, turns errors into one line and an exit status
// (0 ok, 1 failed or refused, 2 usage error, 3 consensus lost), and turns SIGINT/SIGTERM into an abort.

import denoJson from "./deno.json" with { type: "json" };
import { closest, type Io } from "./lib/cli/_command.ts";
import { COMMANDS } from "./lib/cli/commands.ts";
import { askTerminal } from "./lib/cli/_terminal.ts";
import {
  CoinError,
  ConsensusLostError,
  InterruptedError,
  OutcomeUnknownError,
  UsageError,
} from "./lib/errors.ts";

/** The version printed by `coin --version`, from deno.json. */
export const VERSION: string = denoJson.version;

function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    `coin ${VERSION}: a cryptocurrency for local communities`,
    "",
    "Usage: coin <command> [options]",
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "Options:",
    "  -h, --help     show help (also: coin help <command>, coin <command> --help)",
    "  --version      print the version",
    "  --verbose      add detail to errors (or set COIN_DEBUG=1)",
    "",
    "Examples:",
    "  coin devnet                          run a local three-server network",
    "  coin keygen --out alice.key          create an account",
    "  coin serve --peers peers.json --key server.key",
  ].join("\n");
}

function findCommand(name: string) {
  const command = COMMANDS.find((c) => c.name === name);
  if (command !== undefined) return command;
  const hint = closest(name, COMMANDS.map((c) => c.name));
  throw new UsageError(
    `Unknown command "${name}"` + (hint ? `; did you mean "${hint}"?` : "") + " (see coin --help)",
  );
}

/**
 * True when errors carry their detail: `--verbose` anywhere in `args`, or COIN_DEBUG=1 in `env`.
 * The process passes Deno.args and Deno.env; in-process tests pass their own.
 */
export function isVerbose(args: readonly string[], env: { get(name: string): string | undefined }): boolean {
  return args.includes("--verbose") || env.get("COIN_DEBUG") === "1";
}

/**
 * Runs coin with `args`, writing through `io`; returns the exit status. Never calls Deno.exit itself,
 * so tests call it in-process with an io of their own (see runCoin in tests/_helpers.ts).
 */
export async function main(args: string[], io: Io): Promise<number> {
  try {
    // `--verbose` is read by the process (see below) wherever it is; before the command it is skipped
    // here, so `coin --verbose send …` works like `coin send … --verbose`.
    const start = args.findIndex((a) => a !== "--verbose");
    const [first, ...rest] = start < 0 ? [] : args.slice(start);
    if (first === undefined || first === "--help" || first === "-h") {
      io.out(topHelp());
      return 0;
    }
    if (first === "--version" || first === "-V") {
      io.out(`coin ${VERSION}`);
      return 0;
    }
    if (first === "help") {
      const topic = rest.find((a) => a !== "--verbose");
      if (topic === undefined) io.out(topHelp());
      else io.out(findCommand(topic).help);
      return 0;
    }
    if (first.startsWith("-")) {
      throw new UsageError(`Unknown option "${first}"; a command comes first (see coin --help)`);
    }
    await findCommand(first).run(rest, io);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`coin: ${err.message}`);
      return 2;
    }
    if (err instanceof InterruptedError) {
      io.err(`coin: ${err.message}`);
      return 130;
    }
    if (err instanceof OutcomeUnknownError) {
      io.err(`coin: ${err.message}`);
      return 4;
    }
    if (err instanceof CoinError) {
      io.err(`coin: ${err.message}`);
      // The detail: where it went wrong, in coin or in the runtime call beneath it.
      if (io.verbose) io.err(String((err.cause as Error | undefined)?.stack ?? err.cause ?? err.stack));
      return 1;
    }
    if (err instanceof ConsensusLostError) {
      io.err(`coin: ${err.message}`);
      return 3;
    }
    throw err; // a bug: crash loudly, with the stack
  }
}

if (import.meta.main) {
  const controller = new AbortController();
  const stop = () => controller.abort();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    try {
      Deno.addSignalListener(signal, stop);
    } catch {
      // SIGTERM cannot be listened to on Windows.
    }
  }
  const encoder = new TextEncoder();
  const colour = Deno.stderr.isTerminal() && Deno.env.get("NO_COLOR") === undefined;
  const verbose = isVerbose(Deno.args, Deno.env);
  const io: Io = {
    out: (line) => Deno.stdout.writeSync(encoder.encode(line + "\n")),
    err: (line) => {
      const text = colour && line.startsWith("coin: ") ? `\x1b[31m${line}\x1b[0m` : line;
      Deno.stderr.writeSync(encoder.encode(text + "\n"));
    },
    readStdin: async () => await new Response(Deno.stdin.readable).text(),
    progress: (line) => {
      if (Deno.stderr.isTerminal()) Deno.stderr.writeSync(encoder.encode(`\r\x1b[2K${line}`));
    },
    errIsTerminal: Deno.stderr.isTerminal(),
    signal: controller.signal,
    verbose,
    env: Deno.env,
    ...(Deno.stdin.isTerminal()
      ? {
        ask: (prompt: string, options?: { secret?: boolean }) =>
          askTerminal(prompt, { ...options, signal: controller.signal }),
      }
      : {}),
  };
  const status = await main(Deno.args, io);
  Deno.exit(status);
}
