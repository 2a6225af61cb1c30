// A real network for end-to-end tests: keys, peers.json on free loopback ports, and `coin serve`
// processes started and stopped like an operator would, with their logs kept for assertions.

import { firstFrameStart } from "../../lib/devnet.ts";
import { generateKeyPair, type KeyPair, writeKeyFile } from "../../lib/keys.ts";
import { DEFAULT_SKEW_MS, type Network, parseNetwork } from "../../lib/peers.ts";
import { runCoin } from "../_helpers.ts";

export const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** Output and status of one `coin` command. */
export interface CoinResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `coin ARGS` to completion in `cwd`. */
export async function coin(
  args: string[],
  options: { cwd?: string; stdin?: string } = {},
): Promise<CoinResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    ...(options.cwd ? { cwd: options.cwd } : {}),
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Free loopback ports: bound on port 0, read back, released. */
export function freePorts(n: number): number[] {
  const listeners = Array.from({ length: n }, () => Deno.listen({ hostname: "127.0.0.1", port: 0 }));
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  return ports;
}

/** A running (or stopped) `coin serve` process. */
export class ServerProcess {
  readonly index: number;
  readonly name: string;
  readonly net: TestNetwork;
  log = "";
  #child: Deno.ChildProcess | undefined;
  #exit: Promise<Deno.CommandStatus> | undefined;
  #pump: Promise<void> | undefined;
  extraArgs: string[] = [];
  /** The program and command it runs (a test may run a dishonest server instead of `coin serve`). */
  entry: string[] = [MAIN, "serve"];

  constructor(net: TestNetwork, index: number) {
    this.net = net;
    this.index = index;
    this.name = `s${index + 1}`;
  }

  get dataDir(): string {
    return `${this.net.dir}/${this.name}`;
  }

  get archiveDir(): string {
    return `${this.dataDir}/archive`;
  }

  get address(): string {
    return `127.0.0.1:${this.net.ports[this.index]}`;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  start(args: string[] = this.extraArgs): void {
    if (this.#child) throw new Error(`${this.name} is already running`);
    Deno.mkdirSync(this.dataDir, { recursive: true });
    this.log += `--- start ${new Date().toISOString()}\n`;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        ...this.entry,
        "--peers",
        this.net.peersFile,
        "--key",
        `${this.net.dir}/${this.name}.key`,
        "--data",
        this.dataDir,
        ...args,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.#child = child;
    this.#pump = (async () => {
      const dec = new TextDecoder();
      for await (const chunk of child.stderr) this.log += dec.decode(chunk, { stream: true });
    })();
    this.#exit = child.status;
  }

  /** Sends `signal` and waits for the exit; returns its status. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    const child = this.#child;
    if (!child) throw new Error(`${this.name} is not running`);
    try {
      child.kill(signal);
    } catch {
      // already exited
    }
    return await this.waitExit();
  }

  /** Waits for the process to exit by itself (within `timeoutMs`). */
  async waitExit(timeoutMs = 30_000): Promise<Deno.CommandStatus> {
    const exit = this.#exit!;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.name} did not exit within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      const status = await Promise.race([exit, timeout]);
      await this.#pump;
      this.#child = undefined;
      this.log += `--- exit ${status.code} ${status.signal ?? ""}\n`;
      return status;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Lines of this server's log that mention `event`. */
  events(event: string): string[] {
    return this.log.split("\n").filter((l) => l.split(" ")[2] === event);
  }
}

/** A network of `count` servers and two funded accounts in a temporary directory. */
export class TestNetwork {
  readonly dir: string;
  readonly ports: number[];
  readonly servers: ServerProcess[];
  readonly accounts: KeyPair[];
  readonly serverKeys: KeyPair[];
  readonly genesisAmount: number;
  readonly intervalSeconds: number;

  private constructor(
    dir: string,
    ports: number[],
    serverKeys: KeyPair[],
    accounts: KeyPair[],
    genesisAmount: number,
    intervalSeconds: number,
  ) {
    this.dir = dir;
    this.ports = ports;
    this.serverKeys = serverKeys;
    this.accounts = accounts;
    this.genesisAmount = genesisAmount;
    this.intervalSeconds = intervalSeconds;
    this.servers = serverKeys.map((_, i) => new ServerProcess(this, i));
  }

  get peersFile(): string {
    return `${this.dir}/peers.json`;
  }

  /** peers.json as the servers read it (it may have been rewritten since create()). */
  get network(): Network {
    return parseNetwork(JSON.parse(Deno.readTextFileSync(this.peersFile)), this.peersFile);
  }

  /** The network's first frame ("start" in peers.json): nothing is committed or accepted before it. */
  get startFrame(): number {
    return this.network.startFrame;
  }

  /**
   * `skew` (seconds) goes into peers.json when given; "start" leaves the servers 4 s (plus the skew) to
   * start before the first frame.
   */
  static async create(
    options: {
      servers?: number;
      interval?: number;
      accounts?: number;
      genesisAmount?: number;
      skew?: number;
    } = {},
  ): Promise<TestNetwork> {
    const n = options.servers ?? 3;
    const dir = await Deno.makeTempDir({ prefix: "coin-e2e-" });
    const serverKeys = await Promise.all(Array.from({ length: n }, () => generateKeyPair()));
    const accounts = await Promise.all(
      Array.from({ length: options.accounts ?? 2 }, () => generateKeyPair()),
    );
    const ports = freePorts(n);
    const genesisAmount = options.genesisAmount ?? 1_000_000;
    const interval = options.interval ?? 1;
    for (let i = 0; i < n; i++) await writeKeyFile(`${dir}/s${i + 1}.key`, serverKeys[i]!);
    for (let i = 0; i < accounts.length; i++) await writeKeyFile(`${dir}/a${i + 1}.key`, accounts[i]!);
    const peers = {
      // Servers start one after another: allow them 4 s before the first frame must end.
      start: firstFrameStart(
        Date.now(),
        4_000,
        options.skew === undefined ? DEFAULT_SKEW_MS : options.skew * 1000,
      ),
      interval,
      ...(options.skew === undefined ? {} : { skew: options.skew }),
      servers: serverKeys.map((k, i) => ({
        name: `s${i + 1}`,
        key: k.publicHex,
        host: "127.0.0.1",
        port: ports[i],
      })),
      genesis: { [accounts[0]!.publicHex]: genesisAmount },
    };
    await Deno.writeTextFile(`${dir}/peers.json`, JSON.stringify(peers, null, 2));
    return new TestNetwork(dir, ports, serverKeys, accounts, genesisAmount, interval);
  }

  /** Runs `coin` against this network from its directory. */
  coin(args: string[], options: { stdin?: string } = {}): Promise<CoinResult> {
    return coin(args, { cwd: this.dir, ...options });
  }

  /** Polls `check` every 100 ms until it returns a truthy value or `timeoutMs` passes. */
  async until<T>(
    what: string,
    check: () => Promise<T | undefined | false> | T | undefined | false,
    timeoutMs = 20_000,
  ): Promise<T> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const value = await check();
      if (value) return value;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`Timed out after ${timeoutMs} ms waiting for: ${what}\n${this.logs()}`);
  }

  /**
   * `coin send` of `amount` coins from account file a`from`.key (default a1) to `to` (default the
   * second account), with `--wait` when asked.
   */
  send(
    amount: number | string,
    options: { from?: number; to?: string; wait?: boolean } = {},
  ): Promise<CoinResult> {
    // In-process: the client needs no process of its own (the servers are real ones), and a process per
    // call cost the suite seconds of CPU on a two-core machine.
    return runCoin([
      "send",
      "--peers",
      this.peersFile,
      "--key",
      `${this.dir}/a${options.from ?? 1}.key`,
      "--to",
      options.to ?? this.accounts[1]!.publicHex,
      "--amount",
      String(amount),
      ...(options.wait ? ["--wait"] : []),
    ]);
  }

  /** `coin status --json` rows. */
  async status(): Promise<Record<string, unknown>[]> {
    const r = await runCoin(["status", "--peers", this.peersFile, "--json"]);
    return JSON.parse(r.stdout || "[]");
  }

  /**
   * Waits until every server in `indices` (default: the running ones) committed the network's first
   * frame: before it the servers refuse transfers ("not_started") and agree only on the genesis.
   */
  async untilStarted(indices?: number[], timeoutMs = 30_000): Promise<void> {
    const startFrame = this.startFrame;
    await this.until(`the network's first frame ${startFrame} is committed`, async () => {
      const which = indices ?? this.servers.filter((s) => s.running).map((s) => s.index);
      const rows = await this.status();
      return which.length > 0 &&
        which.every((i) => rows[i]?.reachable === true && Number(rows[i]!.committedFrame) >= startFrame);
    }, timeoutMs);
  }

  /**
   * Waits until every running server is in sync on one agreed hash, past the network's first frame (the
   * genesis that all share before it is no agreement).
   */
  async untilAgreed(timeoutMs = 20_000): Promise<string> {
    const startFrame = this.startFrame;
    return await this.until("all running servers agree", async () => {
      const rows = (await this.status()).filter((_, i) => this.servers[i]!.running);
      if (rows.length === 0 || rows.some((r) => r.reachable !== true || r.inSync !== true)) return undefined;
      if (rows.some((r) => Number(r.committedFrame) < startFrame)) return undefined;
      const hashes = new Set(rows.map((r) => r.committedHash));
      return hashes.size === 1 ? String(rows[0]!.committedHash) : undefined;
    }, timeoutMs);
  }

  /** Every server's log, for failure messages. */
  logs(): string {
    return this.servers.map((s) => `==== ${s.name}\n${s.log.split("\n").slice(-40).join("\n")}`).join("\n");
  }

  /** Stops every running server and removes the directory. */
  async close(): Promise<void> {
    await Promise.all(this.servers.filter((s) => s.running).map((s) => s.stop("SIGKILL")));
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
