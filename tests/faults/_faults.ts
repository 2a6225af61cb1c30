// Helpers of the fault suite: a TestNetwork with several funded accounts, in-process client requests,
// a continuous transfer stream whose every outcome is tracked, archive checks, peak memory, log fields,
// and a "liar": a test process that holds a listed server key and speaks the peer protocol by hand.

import assert from "node:assert/strict";
import { fromHex, toHex } from "../../lib/_bytes.ts";
import { parseArchiveName, readEntryBytes } from "../../lib/archive.ts";
import type { Commit } from "../../lib/certificate.ts";
import { type Response, ServerConnection } from "../../lib/client.ts";
import type { KeyPair } from "../../lib/keys.ts";
import { decodeTx, signTx, type Tx } from "../../lib/tx.ts";
import { Kind } from "../../lib/wire.ts";
import { type CoinResult, type ServerProcess, TestNetwork } from "../e2e/_network.ts";

export { TestNetwork };
export type { CoinResult, ServerProcess };

/** Milliseconds to wait. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * A network whose first `funded` accounts each start with `amount` coins (`skew` in seconds, optional).
 * Its first frame ("start" in peers.json) lies a few seconds ahead: see startNetwork.
 */
export async function fundedNetwork(
  options: { servers: number; accounts: number; funded: number; amount: number; skew?: number },
): Promise<TestNetwork> {
  const net = await TestNetwork.create({
    servers: options.servers,
    interval: 1,
    accounts: options.accounts,
    ...(options.skew === undefined ? {} : { skew: options.skew }),
  });
  const peers = JSON.parse(await Deno.readTextFile(net.peersFile));
  peers.genesis = Object.fromEntries(
    net.accounts.slice(0, options.funded).map((a) => [a.publicHex, options.amount]),
  );
  await Deno.writeTextFile(net.peersFile, JSON.stringify(peers, null, 2));
  return net;
}

/**
 * Starts servers `indices` and waits until they committed the network's first frame and agree: before
 * it ("start" in peers.json) they refuse transfers with "not_started".
 */
export async function startNetwork(net: TestNetwork, indices: number[]): Promise<void> {
  for (const i of indices) net.servers[i]!.start();
  await net.untilStarted(indices);
  await untilAgreedOn(net, indices);
}

/** Sends one request to server `index` on a fresh connection. */
export async function ask(
  net: TestNetwork,
  index: number,
  kind: number,
  argument?: Uint8Array,
  connectTimeoutMs = 1_000,
): Promise<Response> {
  const conn = await ServerConnection.open("127.0.0.1", net.ports[index]!, connectTimeoutMs);
  try {
    return await conn.request(kind, argument, 3_000);
  } finally {
    await conn.close();
  }
}

/** Server `index`'s status response, or undefined when it does not answer. */
export async function statusOf(net: TestNetwork, index: number): Promise<Response | undefined> {
  try {
    return await ask(net, index, Kind.status);
  } catch {
    return undefined;
  }
}

/** The agreed balance of `account` on server `index`. */
export async function balanceOn(net: TestNetwork, index: number, account: Uint8Array): Promise<number> {
  const r = await ask(net, index, Kind.balance, account);
  assert.equal(r.ok, true, JSON.stringify(r));
  return Number(r.balance);
}

/**
 * Waits until every server in `indices` is in sync on one committed hash (a frame digest) past the
 * network's first frame, and returns that hash.
 */
export async function untilAgreedOn(
  net: TestNetwork,
  indices: number[],
  timeoutMs = 20_000,
): Promise<string> {
  const startFrame = net.startFrame;
  return await net.until(`servers ${indices.map((i) => i + 1).join(",")} agree`, async () => {
    const rows = await Promise.all(indices.map((i) => statusOf(net, i)));
    if (rows.some((r) => r === undefined || r.inSync !== true)) return undefined;
    if (rows.some((r) => Number(r!.committedFrame) < startFrame)) return undefined;
    const hashes = new Set(rows.map((r) => r!.committedHash));
    return hashes.size === 1 ? String(rows[0]!.committedHash) : undefined;
  }, timeoutMs);
}

/** The query argument of txStatus: id | timestamp u64. */
export function txQuery(tx: Tx): Uint8Array {
  const q = new Uint8Array(40);
  q.set(fromHex(tx.id, 32)!);
  new DataView(q.buffer).setBigUint64(32, BigInt(tx.timestampMs));
  return q;
}

/** Signs a transfer now (or at `timestampMs`). */
export async function makeTx(
  payer: KeyPair,
  payee: Uint8Array,
  amount: number | bigint,
  timestampMs = Date.now(),
): Promise<Tx> {
  return decodeTx(await signTx(payer, { to: payee, amount, timestampMs }))!;
}

/** Peak resident memory (VmHWM) of a process in KiB, from /proc. */
export function peakRssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const m = /^VmHWM:\s+(\d+) kB/m.exec(status);
  if (m === null) throw new Error(`No VmHWM in /proc/${pid}/status`);
  return Number(m[1]);
}

/** Open file descriptors of a process. */
export function openFds(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}

/** The key=value fields of a text log line. */
export function logFields(line: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const m of line.matchAll(/ ([a-z_]+)=("(?:[^"\\]|\\.)*"|\S+)/g)) {
    fields[m[1]!] = m[2]!.startsWith('"') ? JSON.parse(m[2]!) : m[2]!;
  }
  return fields;
}

/** One archive entry as checkArchive reads it. */
export interface ArchivedFrame {
  /** SHA-256 of the file (its name's first part). */
  hash: string;
  frame: number;
  /** The certified frame digest: the same on every server that committed the frame, unless forked. */
  digest: string;
  supply: number | null;
  file: string;
}

/**
 * Copies the archive entries of `server` to a new directory (with peers.json for `coin archive verify`).
 * A running server prunes old entries every frame: a file listed and then gone is skipped.
 */
async function snapshotArchive(net: TestNetwork, server: ServerProcess): Promise<string> {
  const dir = await Deno.makeTempDir({ dir: net.dir, prefix: `${server.name}-archive-` });
  for await (const item of Deno.readDir(server.archiveDir)) {
    if (!item.isFile || parseArchiveName(item.name) === undefined) continue;
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(`${server.archiveDir}/${item.name}`);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue;
      throw err;
    }
    await Deno.writeFile(`${dir}/${item.name}`, bytes);
  }
  return dir;
}

/**
 * The certified commit of `frame` in `server`'s archive, or undefined when it holds none (any more: a
 * running server prunes old entries).
 */
export async function archivedCommit(server: ServerProcess, frame: number): Promise<Commit | undefined> {
  const ms = frame * server.net.intervalSeconds * 1000;
  for await (const item of Deno.readDir(server.archiveDir)) {
    const parsed = parseArchiveName(item.name);
    if (!item.isFile || parsed === undefined || parsed.ms !== ms) continue;
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(`${server.archiveDir}/${item.name}`);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue;
      throw err;
    }
    const read = readEntryBytes(parsed, bytes);
    if ("problem" in read) throw new Error(`${server.name}: ${item.name}: ${read.problem}`);
    return read.commit;
  }
  return undefined;
}

/**
 * `coin archive verify` passes (content, digest, certificate against peers.json) and every entry of
 * `coin archive ls --json` holds `supply`; returns the entries with their frame digests. The archive is
 * read from a copy, as the server (running or not) left it.
 */
export async function checkArchive(
  net: TestNetwork,
  server: ServerProcess,
  supply: number,
): Promise<ArchivedFrame[]> {
  const dir = await snapshotArchive(net, server);
  try {
    const v = await net.coin(["archive", "verify", "--dir", dir, "--peers", net.peersFile]);
    assert.equal(v.code, 0, `${server.name}: archive verify\n${v.stdout}${v.stderr}`);
    const ls = await net.coin(["archive", "ls", "--dir", dir, "--json"]);
    assert.equal(ls.code, 0, ls.stderr);
    const rows = JSON.parse(ls.stdout) as {
      hash: string;
      frame: number | null;
      supply: number | null;
      file: string;
      ok: boolean;
    }[];
    assert.ok(rows.length > 0, `${server.name} has archive entries`);
    const entries: ArchivedFrame[] = [];
    for (const e of rows) {
      assert.ok(e.ok, `${server.name}: ${e.file} reads`);
      assert.equal(e.supply, supply, `${server.name}: supply of ${e.file}`);
      const read = readEntryBytes(e, await Deno.readFile(`${dir}/${e.file}`));
      if ("problem" in read) throw new Error(`${server.name}: ${e.file}: ${read.problem}`);
      assert.equal(read.commit.frame, e.frame, `${server.name}: frame of ${e.file}`);
      entries.push({ ...e, frame: read.commit.frame, digest: read.commit.cert.digest });
    }
    return entries;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * No fork: wherever two archives hold an entry for the same frame, it certifies the same digest (the
 * files may differ: each holds the signatures its server collected). Returns how many frames were
 * compared between at least two servers.
 */
export function assertNoFork(archives: { frame: number; digest: string }[][]): number {
  const byFrame = new Map<number, Set<string>>();
  const seen = new Map<number, number>();
  for (const entries of archives) {
    for (const e of entries) {
      byFrame.set(e.frame, (byFrame.get(e.frame) ?? new Set()).add(e.digest));
      seen.set(e.frame, (seen.get(e.frame) ?? 0) + 1);
    }
  }
  for (const [frame, digests] of byFrame) {
    assert.equal(digests.size, 1, `archives disagree on frame ${frame}: ${[...digests].join(" ")}`);
  }
  return [...seen.values()].filter((n) => n > 1).length;
}

interface Tracked {
  tx: Tx;
  state: "unsent" | "sent" | "committed" | "never";
  frame?: number;
}

/**
 * A continuous stream of transfers between the funded accounts, submitted in-process to random running
 * servers. Every transfer that was ever put on a connection is tracked until a server says it is
 * committed or never will be, so the expected balances are known exactly.
 */
export class TransferStream {
  readonly net: TestNetwork;
  readonly payers: KeyPair[];
  readonly payees: KeyPair[];
  readonly txs: Tracked[] = [];
  readonly refused = new Map<string, number>();
  /** Transfers that one server called committed and another never (or the other way round). */
  readonly contradictions: string[] = [];
  /** Every `replayEvery`-th submission resubmits an earlier transfer (0: never); results by code. */
  replayEvery = 0;
  readonly replays = new Map<string, number>();
  /** The servers submitted to and asked (default: every running one). */
  only: readonly number[] | undefined;
  #running = false;
  #loop: Promise<void> | undefined;
  #resolver: Promise<void> | undefined;
  #conns = new Map<number, Promise<ServerConnection | undefined>>();
  #seq = 0;

  constructor(net: TestNetwork, payers: KeyPair[], payees: KeyPair[]) {
    this.net = net;
    this.payers = payers;
    this.payees = payees;
  }

  async #conn(index: number): Promise<ServerConnection | undefined> {
    let pending = this.#conns.get(index);
    const c = await pending;
    if (pending !== undefined && c !== undefined && !c.closed) return c;
    if (this.#conns.get(index) === pending) {
      this.#conns.set(
        index,
        pending = ServerConnection.open("127.0.0.1", this.net.ports[index]!, 500).catch(() => undefined),
      );
    } else {
      pending = this.#conns.get(index);
    }
    return await pending;
  }

  #running_servers(): number[] {
    return this.net.servers.filter((s) => s.running && (this.only?.includes(s.index) ?? true))
      .map((s) => s.index);
  }

  /** Starts submitting one transfer every `everyMs`, and following their outcomes as `send --wait` does. */
  start(everyMs = 100): void {
    this.#running = true;
    this.#resolver = (async () => {
      while (this.#running) {
        await this.#resolve();
        await sleep(300);
      }
    })();
    // Like many independent clients: a slow answer does not hold up the next transfer.
    this.#loop = (async () => {
      const inFlight = new Set<Promise<void>>();
      while (this.#running) {
        if (inFlight.size < 50) {
          const p: Promise<void> = this.#one().finally(() => inFlight.delete(p));
          inFlight.add(p);
        }
        await sleep(everyMs);
      }
      await Promise.all(inFlight);
    })();
  }

  async #one(): Promise<void> {
    if (this.replayEvery > 0 && this.#seq % this.replayEvery === this.replayEvery - 1) {
      this.#seq++;
      await this.#replay();
      return;
    }
    const payer = this.payers[this.#seq % this.payers.length]!;
    const choices = this.payees.filter((p) => p !== payer);
    const payee = choices[Math.floor(Math.random() * choices.length)]!;
    const amount = 1 + (this.#seq++ % 97);
    const tracked: Tracked = { tx: await makeTx(payer, payee.publicKey, amount), state: "unsent" };
    this.txs.push(tracked);
    // Retry retryable refusals for a while, as `coin send` does.
    for (let attempt = 0; attempt < 8 && this.#running; attempt++) {
      const servers = this.#running_servers();
      if (servers.length === 0) return;
      const index = servers[Math.floor(Math.random() * servers.length)]!;
      const conn = await this.#conn(index);
      if (conn === undefined) continue;
      tracked.state = "sent";
      let r: Response;
      try {
        r = await conn.request(Kind.submit, tracked.tx.bytes, 6_000);
      } catch {
        continue; // the server died under us; the transfer may or may not be buffered
      }
      if (r.ok === true) return;
      const code = String(r.code);
      if (code === "alpha_unreachable" || code === "not_alpha" || code === "frame_full") {
        await sleep(150);
        continue;
      }
      this.refused.set(code, (this.refused.get(code) ?? 0) + 1);
      return;
    }
  }

  /** Submits again a transfer sent in the last few seconds (it is still inside its time window). */
  async #replay(): Promise<void> {
    const recent = this.txs.filter((t) => t.state !== "unsent" && Date.now() - t.tx.timestampMs < 4_000);
    const t = recent[Math.floor(Math.random() * recent.length)];
    const servers = this.#running_servers();
    if (t === undefined || servers.length === 0) return;
    const conn = await this.#conn(servers[Math.floor(Math.random() * servers.length)]!);
    const r = await conn?.request(Kind.submit, t.tx.bytes, 6_000).catch(() => undefined);
    const code = r === undefined ? "lost" : r.ok === true ? "accepted" : String(r.code);
    this.replays.set(code, (this.replays.get(code) ?? 0) + 1);
  }

  /** Stops submitting. */
  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
    await this.#resolver;
  }

  /** Asks the running servers about every open transfer; checks that no two answers contradict. */
  async #resolve(): Promise<void> {
    const open = this.txs.filter((t) => t.state === "sent");
    if (open.length === 0) return;
    for (const index of this.#running_servers()) {
      const conn = await this.#conn(index);
      if (conn === undefined) continue;
      let answers: Response[];
      try {
        answers = await Promise.all(open.map((t) => conn.request(Kind.txStatus, txQuery(t.tx), 5_000)));
      } catch {
        continue;
      }
      answers.forEach((a, i) => {
        const t = open[i]!;
        const state = a.state === "committed" ? "committed" : a.state === "never" ? "never" : undefined;
        if (state === undefined) return;
        if (t.state !== "sent" && t.state !== state) {
          this.contradictions.push(`${t.tx.id}: ${t.state} and then ${state} from s${index + 1}`);
        }
        t.state = state;
        if (state === "committed") t.frame = Number(a.frame);
      });
    }
  }

  /** Waits until every transfer that was sent is committed or never will be. */
  async settle(timeoutMs = 30_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (true) {
      await this.#resolve();
      const open = this.txs.filter((t) => t.state === "sent");
      if (open.length === 0) return;
      if (Date.now() > end) {
        const samples: string[] = [];
        for (const t of open.slice(0, 3)) {
          for (const index of this.#running_servers()) {
            const conn = await this.#conn(index);
            const a = await conn?.request(Kind.txStatus, txQuery(t.tx), 5_000).catch(() => undefined);
            samples.push(
              `${t.tx.id.slice(0, 12)} ts=${t.tx.timestampMs} s${index + 1}: ${JSON.stringify(a)}`,
            );
          }
        }
        throw new Error(
          `${open.length} transfers without an outcome\n${samples.join("\n")}\n${this.net.logs()}`,
        );
      }
      await sleep(300);
    }
  }

  /** Balances expected from the genesis and the committed transfers. */
  expected(genesis: Map<string, number>): Map<string, number> {
    const balances = new Map(genesis);
    for (const t of this.txs) {
      if (t.state !== "committed") continue;
      const payer = toHex(t.tx.payer);
      const payee = toHex(t.tx.payee);
      balances.set(payer, (balances.get(payer) ?? 0) - t.tx.amount);
      balances.set(payee, (balances.get(payee) ?? 0) + t.tx.amount);
    }
    return balances;
  }

  count(state: Tracked["state"]): number {
    return this.txs.filter((t) => t.state === state).length;
  }

  async close(): Promise<void> {
    await this.stop();
    await Promise.all([...this.#conns.values()].map(async (c) => await (await c)?.close()));
    this.#conns.clear();
  }
}

/** Writes every byte of `bytes`. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

/** A length prefix (u32 big-endian). */
export function prefix(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/** The frame number of unix ms `t` at `intervalMs`. */
export function frameOf(t: number, intervalMs = 1000): number {
  return Math.floor(t / intervalMs);
}

/** Waits until `ms` into the next frame. */
export async function untilFrameOffset(ms: number, intervalMs = 1000): Promise<number> {
  const now = Date.now();
  let target = Math.floor(now / intervalMs) * intervalMs + ms;
  if (target <= now) target += intervalMs;
  await sleep(target - now);
  return frameOf(target, intervalMs);
}

/** Hex of a random 32-byte hash. */
export function randomHash(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

export { toHex };

/** When COIN_FAULT_LOGS names a directory, writes every server's whole log there (for debugging). */
export function keepLogs(net: TestNetwork, test: string): void {
  const dir = Deno.env.get("COIN_FAULT_LOGS");
  if (!dir) return;
  Deno.mkdirSync(dir, { recursive: true });
  for (const s of net.servers) Deno.writeTextFileSync(`${dir}/${test}-${s.name}.log`, s.log);
}
