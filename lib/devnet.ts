// A local network on this machine: generated keys, a funded genesis, a peers.json on free loopback
// ports, and one `coin serve` child process per server. Used by `coin devnet` and `coin bench`.

import { generateKeyPair, type KeyPair, writeKeyFile } from "./keys.ts";
import { DEFAULT_SKEW_MS, type NetworkJson } from "./peers.ts";

/** Names given to the generated demo accounts. */
export const DEMO_ACCOUNTS = ["alice", "bob", "carol", "dave"];
/** Coins each generated account starts with. */
export const DEMO_FUNDS = 1_000_000;
/** How long a server may take to stop after SIGTERM before it is killed. */
export const STOP_TIMEOUT_MS = 5_000;

/** The command line that runs coin itself: the compiled binary, or deno with main.ts. */
export function coinCommand(): { program: string; prefix: string[]; display: string } {
  const exe = Deno.execPath();
  const base = exe.split(/[\\/]/).pop() ?? exe;
  if (base === "deno" || base === "deno.exe") {
    const main = new URL("../main.ts", import.meta.url).pathname;
    return {
      program: exe,
      prefix: ["run", "--allow-read", "--allow-write", "--allow-net", "--allow-env", "--allow-run", main],
      // Fetched by npx, deno is not on the PATH: show the command that works as typed.
      display: exe.includes("/_npx/")
        ? `npx -y deno@${Deno.version.deno} run -A ${main}`
        : `deno run -A ${main}`,
    };
  }
  return { program: exe, prefix: [], display: exe };
}

/** Free TCP ports on 127.0.0.1 (bound to port 0, read back, released). */
export function freeLoopbackPorts(count: number): number[] {
  const listeners = Array.from({ length: count }, () => Deno.listen({ hostname: "127.0.0.1", port: 0 }));
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  return ports;
}

/** A generated network on disk. */
export interface DevnetFiles {
  dir: string;
  peersFile: string;
  servers: { name: string; keyFile: string; dataDir: string; port: number; key: KeyPair }[];
  accounts: { name: string; keyFile: string; key: KeyPair }[];
}

/** Writes keys, accounts and peers.json for `servers` servers into `dir`. */
export async function generateDevnet(
  dir: string,
  options: { servers: number; intervalSeconds: number; accounts?: string[]; funds?: number },
): Promise<DevnetFiles> {
  await Deno.mkdir(dir, { recursive: true });
  const ports = freeLoopbackPorts(options.servers);
  const servers = [];
  for (let i = 0; i < options.servers; i++) {
    const name = `s${i + 1}`;
    const key = await generateKeyPair();
    const keyFile = `${dir}/${name}.key`;
    await writeKeyFile(keyFile, key, { force: true });
    servers.push({ name, keyFile, dataDir: `${dir}/${name}`, port: ports[i]!, key });
  }
  const accounts = [];
  for (const name of options.accounts ?? DEMO_ACCOUNTS) {
    const key = await generateKeyPair();
    const keyFile = `${dir}/${name}.key`;
    await writeKeyFile(keyFile, key, { force: true });
    accounts.push({ name, keyFile, key });
  }
  // Servers on one machine share a clock: a 1 s skew lets the network start 2 s from now.
  const json: NetworkJson = {
    start: firstFrameStart(Date.now(), 1_000, DEVNET_SKEW_MS),
    interval: options.intervalSeconds,
    skew: DEVNET_SKEW_MS / 1000,
    servers: servers.map((s) => ({ name: s.name, key: s.key.publicHex, host: "127.0.0.1", port: s.port })),
    genesis: Object.fromEntries(accounts.map((a) => [a.key.publicHex, options.funds ?? DEMO_FUNDS])),
  };
  const peersFile = `${dir}/peers.json`;
  await Deno.writeTextFile(peersFile, JSON.stringify(json, null, 2) + "\n");
  return { dir, peersFile, servers, accounts };
}

/**
 * The "start" of a new network (unix seconds): the skew (default 5 s) and `marginMs` from now, rounded up.
 * A server with an empty data directory signs nothing for a frame that ended before its start plus the
 * skew (it may have lost votes it cast there), so a network's first frame must end after every server of
 * a quorum started: `marginMs` is the time they take to start.
 */
export function firstFrameStart(
  nowMs: number = Date.now(),
  marginMs = 1_000,
  skewMs = DEFAULT_SKEW_MS,
): number {
  return Math.ceil((nowMs + skewMs + marginMs) / 1_000);
}

/** The skew a devnet's peers.json gives (its servers share this machine's clock). */
export const DEVNET_SKEW_MS = 1_000;

/** One `coin serve` child whose JSON log lines are handed to `onEvent`. */
export class ServerChild {
  readonly name: string;
  #child: Deno.ChildProcess;
  #pump: Promise<void>;
  readonly exited: Promise<Deno.CommandStatus>;

  constructor(
    files: DevnetFiles,
    index: number,
    onEvent: (server: string, event: Record<string, unknown>) => void,
    extraArgs: string[] = [],
  ) {
    const s = files.servers[index]!;
    const name = s.name;
    this.name = name;
    const coin = coinCommand();
    // COIN_CPU_PROF=DIR profiles every server (deno run --cpu-prof), for BENCHMARKS.md's analysis.
    const profileDir = Deno.env.get("COIN_CPU_PROF");
    const prefix = profileDir && coin.prefix[0] === "run"
      ? ["run", "--cpu-prof", `--cpu-prof-dir=${profileDir}`, ...coin.prefix.slice(1)]
      : coin.prefix;
    const child = new Deno.Command(coin.program, {
      args: [
        ...prefix,
        "serve",
        "--peers",
        files.peersFile,
        "--key",
        s.keyFile,
        "--data",
        s.dataDir,
        "--log-format",
        "json",
        ...extraArgs,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.exited = child.status;
    this.#pump = (async () => {
      let rest = "";
      const dec = new TextDecoder();
      for await (const chunk of child.stderr) {
        rest += dec.decode(chunk, { stream: true });
        let nl;
        while ((nl = rest.indexOf("\n")) >= 0) {
          const line = rest.slice(0, nl);
          rest = rest.slice(nl + 1);
          try {
            onEvent(name, JSON.parse(line));
          } catch {
            onEvent(name, { event: "output", text: line });
          }
        }
      }
    })();
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** Sends SIGTERM, then SIGKILL after STOP_TIMEOUT_MS; resolves with the exit status. */
  async stop(): Promise<Deno.CommandStatus> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // already exited
    }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // already exited
      }
    }, STOP_TIMEOUT_MS);
    try {
      const status = await this.exited;
      await this.#pump;
      return status;
    } finally {
      clearTimeout(timer);
    }
  }
}
