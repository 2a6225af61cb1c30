// Measurements behind `coin bench` and BENCHMARKS.md: raw signature checks, the state kernels
// (apply, hash, catch-up) at a chosen number of accounts, one server's ingest rate, and a whole local
// network under load. Nothing here is asserted on; tests only check that the figures are produced.

import { sleep } from "./_sleep.ts";
import { CoinError } from "./errors.ts";
import { compare32, readU64, toHex, viewOf, writeU64 } from "./_bytes.ts";
import { ServerConnection } from "./client.ts";
import { firstFrameStart, generateDevnet, ServerChild } from "./devnet.ts";
import { acceptingFrame, alphaIndex, frameAt } from "./frames.ts";
import { generateKeyPair, type KeyPair, keyPairFromSeed, signerOf, verifySignature } from "./keys.ts";
import { apply, DB_HEADER_BYTES, DB_RECORD_BYTES, Ledger, type State } from "./ledger.ts";
import { readNetwork } from "./peers.ts";
import { decodeTx, signTxWith, type Tx, TX_SIGNED_BYTES } from "./tx.ts";
import { decodeCommit, encodeCommit, frameDigest, txsHash } from "./certificate.ts";
import {
  decodeResponse,
  encodePeerMessage,
  encodeRequest,
  Kind,
  MAX_PEER_MESSAGE_BYTES,
  MessageReader,
  MessageWriter,
  openPeerMessage,
} from "./wire.ts";

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CoinError("Benchmark interrupted; its servers were stopped");
}

/** Payer accounts with real keys used by the load generator. */
export const LOAD_PAYERS = 256;
/** Transfers signed to estimate how long signing the ingest load takes. */
export const INGEST_PROBE_TXS = 2_000;
/** The ingest rate the load's timestamps are spread for (transfers/s): about what one server accepts. */
export const INGEST_SPREAD_PER_S = 15_000;
/** Requests a load connection may have unanswered. */
export const LOAD_WINDOW = 1024;

/** Signatures checked per second, one at a time, through node:crypto and through WebCrypto (all in flight). */
export async function measureVerify(count = 20_000): Promise<{ node: number; webcrypto: number }> {
  const kp = await generateKeyPair();
  const msg = crypto.getRandomValues(new Uint8Array(TX_SIGNED_BYTES));
  const sig = new Uint8Array(await crypto.subtle.sign("Ed25519", kp.privateKey, msg));
  verifySignature(kp.publicKey, msg, sig);
  let t = performance.now();
  for (let i = 0; i < count; i++) verifySignature(kp.publicKey, msg, sig);
  const node = count / ((performance.now() - t) / 1000);
  const key = await crypto.subtle.importKey(
    "raw",
    kp.publicKey as Uint8Array<ArrayBuffer>,
    "Ed25519",
    false,
    [
      "verify",
    ],
  );
  t = performance.now();
  const all = [];
  for (let i = 0; i < count; i++) all.push(crypto.subtle.verify("Ed25519", key, sig, msg));
  await Promise.all(all);
  const webcrypto = count / ((performance.now() - t) / 1000);
  return { node, webcrypto };
}

/** Key pairs from fixed seeds, so repeated runs use the same accounts. */
export async function loadKeys(count: number): Promise<KeyPair[]> {
  const keys = [];
  for (let i = 0; i < count; i++) {
    const seed = new Uint8Array(32);
    viewOf(seed).setUint32(0, 0xbe4c0000 + i);
    keys.push(await keyPairFromSeed(seed));
  }
  return keys;
}

/**
 * A database of `accounts` accounts, `payers` of them real keys holding `funds` each, the others
 * synthetic ids holding 1. Built straight in packed form: synthetic ids ascend by construction.
 */
export function syntheticLedger(accounts: number, payers: KeyPair[], funds: number): Ledger {
  const synthetic = Math.max(0, accounts - payers.length);
  const real = payers.map((p) => p.publicKey).sort((a, b) => compare32(a, 0, b, 0));
  const bytes = new Uint8Array(DB_HEADER_BYTES + (synthetic + real.length) * DB_RECORD_BYTES);
  const view = viewOf(bytes);
  view.setUint32(0, 0x434f494e);
  view.setUint16(4, 1);
  writeU64(view, 8, synthetic + real.length);
  const random = crypto.getRandomValues(new Uint8Array(65536));
  let r = 0;
  let n = 0;
  let j = 0;
  const put = (key: Uint8Array | undefined, balance: number, prefix?: number) => {
    const off = DB_HEADER_BYTES + n * DB_RECORD_BYTES;
    if (key) bytes.set(key, off);
    else {
      view.setUint32(off, prefix!);
      for (let k = 4; k < 32; k++) {
        bytes[off + k] = random[r++ & 65535]!;
      }
    }
    writeU64(view, off + 32, balance);
    n++;
  };
  const step = 0x1_0000_0000 / Math.max(1, synthetic);
  for (let i = 0; i < synthetic; i++) {
    const prefix = Math.floor(i * step);
    while (
      j < real.length &&
      ((real[j]![0]! << 24) | (real[j]![1]! << 16) | (real[j]![2]! << 8) | real[j]![3]!) >>> 0 < prefix
    ) {
      put(real[j], funds);
      j++;
    }
    put(undefined, 1, prefix);
  }
  for (; j < real.length; j++) put(real[j], funds);
  // A real key sharing a 4-byte prefix with a synthetic id could break the order: rebuild then.
  try {
    return Ledger.fromPacked(bytes);
  } catch {
    const entries: [string, number][] = [];
    for (let i = 0; i < n; i++) {
      const off = DB_HEADER_BYTES + i * DB_RECORD_BYTES;
      entries.push([toHex(bytes.subarray(off, off + 32)), readU64(view, off + 32)]);
    }
    return Ledger.fromBalances(entries);
  }
}

/** Signs `count` transfers among `payers`, timestamps spread over [fromMs, toMs). */
export async function signLoad(
  payers: KeyPair[],
  count: number,
  fromMs: number,
  toMs: number,
  signal?: AbortSignal,
): Promise<Tx[]> {
  const txs: Tx[] = [];
  // node:crypto signs synchronously, several times faster than awaiting WebCrypto once per transfer.
  const signers = payers.map((p) => signerOf(p));
  for (let i = 0; i < count; i++) {
    if (i % 1000 === 0) {
      checkAbort(signal);
      await sleep(0, signal); // lets the event loop read the servers' output meanwhile
    }
    const from = i % payers.length;
    const to = payers[(i + 1 + Math.floor(i / payers.length)) % payers.length]!;
    const payee = to === payers[from] ? payers[(i + 2) % payers.length]! : to;
    const timestampMs = Math.floor(fromMs + ((toMs - fromMs) * i) / count);
    const fields = { to: payee.publicKey, amount: 1 + (i % 97), timestampMs };
    txs.push(decodeTx(signTxWith(payers[from]!.publicKey, signers[from]!, fields))!);
  }
  return txs;
}

/** State kernels at `accounts` accounts. */
export async function measureState(accounts: number): Promise<{
  accounts: number;
  db_bytes: number;
  apply_ms: number;
  apply_txs: number;
  pack_hash_ms: number;
  catchup_ms: number;
  peak_rss_mb: number;
}> {
  const payers = await loadKeys(LOAD_PAYERS);
  const ledger = syntheticLedger(accounts, payers, 1_000_000_000);
  const state: State = { ledger, recent: [] };
  const now = Date.now();
  const txs = await signLoad(payers, 5_000, now, now + 1);
  let t = performance.now();
  const result = apply(state, txs, {
    frame: frameAt(now, 1000),
    windowFromMs: now - 10_000,
    windowToMs: now + 10_000,
    recentFrames: 12,
  });
  const applyMs = performance.now() - t;
  if (result.applied !== txs.length) {
    throw new Error(`Benchmark transfers were refused: ${result.applied} of ${txs.length}`);
  }
  // The database is kept packed, so "pack" is free; its digest (Merkle root, recent ids) is the cost.
  t = performance.now();
  const txsDigest = txsHash(txs);
  const digest = frameDigest(BENCH_NETWORK_ID, 1, BENCH_NETWORK_ID, result.state, txsDigest);
  const packHashMs = performance.now() - t;
  const catchupMs = await measureCatchup(result.state, digest, txsDigest);
  return {
    accounts,
    db_bytes: ledger.bytes.length,
    apply_ms: round(applyMs),
    apply_txs: txs.length,
    pack_hash_ms: round(packHashMs),
    catchup_ms: round(catchupMs),
    peak_rss_mb: peakRssMb(Deno.pid) ?? Math.round(Deno.memoryUsage().rss / 1e6),
  };
}

/** The network id of the state benchmark's digests (any 32 bytes). */
const BENCH_NETWORK_ID = "11".repeat(32);

/**
 * A catch-up as a server does it, over loopback TCP: sign and send a commit; receive, check the
 * signature, decode, recompute the digest against the certificate's. (The certificate's own quorum of
 * signature checks is left out: a handful of verifications.) Returns the wall time.
 */
export async function measureCatchup(
  state: State,
  digest: string,
  txsDigest: Uint8Array = txsHash([]),
): Promise<number> {
  const commit = {
    frame: 1,
    state,
    txsDigest,
    cert: { height: 1, round: 0, prevDigest: BENCH_NETWORK_ID, digest, signatures: [] },
  };
  const sender = await generateKeyPair();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const t = performance.now();
  const receiving = (async () => {
    const conn = await listener.accept();
    try {
      const reader = new MessageReader(conn, {
        maxBytes: 4096,
        allowLarge: (_h, size) => size <= MAX_PEER_MESSAGE_BYTES,
      });
      const body = await reader.next();
      const opened = openPeerMessage(body!, (k) => k === sender.publicHex);
      if ("problem" in opened) throw new Error(opened.problem);
      const { commit } = decodeCommit(opened.payload.slice());
      const again = frameDigest(BENCH_NETWORK_ID, 1, BENCH_NETWORK_ID, commit.state, commit.txsDigest);
      if (again !== commit.cert.digest) throw new Error("catch-up does not match its digest");
    } finally {
      conn.close();
    }
  })();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const writer = new MessageWriter(conn, { maxQueuedBytes: MAX_PEER_MESSAGE_BYTES });
    await writer.write(await encodePeerMessage(sender, encodeCommit(BENCH_NETWORK_ID, commit)));
    await receiving;
  } finally {
    conn.close();
    listener.close();
  }
  return performance.now() - t;
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

/** Peak resident memory of a process in MB (Linux /proc), or null elsewhere. */
export function peakRssMb(pid: number): number | null {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = /VmHWM:\s+(\d+) kB/.exec(status);
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

/** Sends pre-encoded requests over one connection with at most LOAD_WINDOW unanswered. */
class LoadConnection {
  #conn: Deno.TcpConn;
  #reader: MessageReader;
  #outstanding = 0;
  #closed = false;
  #waiters: (() => void)[] = [];
  #reading: Promise<void>;
  accepted = 0;
  rejected: Record<string, number> = {};
  acceptedFrames: number[] = [];

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    this.#reader = new MessageReader(conn, { maxBytes: 1 << 20 });
    this.#reading = this.#readLoop();
  }

  async #readLoop(): Promise<void> {
    try {
      while (true) {
        const body = await this.#reader.next();
        if (body === null) break;
        const r = decodeResponse(body);
        if (r.ok === true) {
          this.accepted++;
          this.acceptedFrames.push(Number(r.frame));
        } else this.rejected[String(r.code)] = (this.rejected[String(r.code)] ?? 0) + 1;
        this.#outstanding--;
        this.#waiters.shift()?.();
      }
    } catch {
      // connection closed
    }
    this.#closed = true;
    if (this.#outstanding > 0) {
      this.rejected.connection_closed = (this.rejected.connection_closed ?? 0) + this.#outstanding;
      this.#outstanding = 0;
    }
    for (const w of this.#waiters.splice(0)) w();
  }

  async send(batch: Uint8Array): Promise<void> {
    const count = batch.length / (5 + 144);
    while (!this.#closed && this.#outstanding > 0 && this.#outstanding + count > LOAD_WINDOW) {
      await new Promise<void>((r) => this.#waiters.push(r));
    }
    if (this.#closed) {
      this.rejected.connection_closed = (this.rejected.connection_closed ?? 0) + count;
      return;
    }
    this.#outstanding += count;
    let off = 0;
    try {
      while (off < batch.length) off += await this.#conn.write(batch.subarray(off));
    } catch {
      // The server closed the connection: what it had not answered is counted as refused, not lost.
      this.#closed = true;
      this.rejected.connection_closed = (this.rejected.connection_closed ?? 0) + this.#outstanding;
      this.#outstanding = 0;
      for (const w of this.#waiters.splice(0)) w();
    }
  }

  async drain(): Promise<void> {
    while (this.#outstanding > 0) await new Promise<void>((r) => this.#waiters.push(r));
  }

  async close(): Promise<void> {
    try {
      this.#conn.close();
    } catch {
      // closed
    }
    await this.#reading;
  }
}

function encodeBatch(txs: Tx[]): Uint8Array {
  const out = new Uint8Array(txs.length * (5 + 144));
  txs.forEach((tx, i) => out.set(encodeRequest(Kind.submit, tx.bytes), i * (5 + 144)));
  return out;
}

/** What `coin bench` reports for the network. */
export interface NetworkResult {
  servers: number;
  interval_s: number;
  seconds: number;
  offered_tx_per_s: number;
  ingest_tx_per_s: number;
  accepted: number;
  committed: number;
  commit_tx_per_s: number;
  offered_seconds: number;
  frames_agreed: number;
  frames_total: number;
  lost: number;
  committed_unconfirmed: number;
  rejected: Record<string, number>;
  consensus_ms_p50: number | null;
  consensus_ms_p95: number | null;
  peak_rss_mb: (number | null)[];
}

/**
 * Starts a local network, offers `rate` transfers per second for `seconds`, sending each to the alpha
 * that accepts it at that moment (as a client that knows peers.json does), and counts what the
 * servers commit. Transfers are signed before the clock starts so signing does not compete with the
 * servers for the CPU.
 */
export async function measureNetwork(options: {
  servers: number;
  intervalSeconds: number;
  seconds: number;
  rate: number;
  connectionsPerServer?: number;
  progress?: (line: string) => void;
  signal?: AbortSignal;
}): Promise<NetworkResult> {
  const dir = await Deno.makeTempDir({ prefix: "coin-bench-" });
  const payers = await loadKeys(LOAD_PAYERS);
  const files = await generateDevnet(dir, {
    servers: options.servers,
    intervalSeconds: options.intervalSeconds,
    accounts: [],
  });
  // Fund the load accounts in the genesis. The load is signed ahead of time: the default skew (5 s) admits
  // it, and the first frame then starts once the servers surely run (lib/devnet.ts, firstFrameStart).
  const peers = JSON.parse(await Deno.readTextFile(files.peersFile));
  peers.genesis = Object.fromEntries(payers.map((p) => [p.publicHex, 1_000_000_000]));
  delete peers.skew;
  peers.start = firstFrameStart(Date.now(), 2_000);
  await Deno.writeTextFile(files.peersFile, JSON.stringify(peers));
  const network = await readNetwork(files.peersFile);

  const applied = new Map<number, number>();
  const decided = new Map<number, number>();
  const agreedFrames = new Set<number>();
  const children = files.servers.map((_, i) =>
    new ServerChild(files, i, (_server, e) => {
      if (e.event === "consensus" && typeof e.frame === "number") {
        agreedFrames.add(e.frame);
        applied.set(e.frame, Math.max(applied.get(e.frame) ?? 0, Number(e.applied ?? 0)));
        if (e.decided_ms !== undefined) {
          decided.set(e.frame, Math.max(decided.get(e.frame) ?? 0, Number(e.decided_ms)));
        }
      }
    })
  );
  const conns: LoadConnection[][] = [];
  try {
    const intervalMs = options.intervalSeconds * 1000;
    // Wait for the first agreed frames.
    const readyBy = Date.now() + 15_000;
    while (agreedFrames.size < 2 && Date.now() < readyBy) await sleep(100, options.signal);
    checkAbort(options.signal);
    const total = Math.floor(options.rate * options.seconds);
    const t0 = performance.now();
    await signLoad(payers, Math.min(1000, total), Date.now(), Date.now() + 1);
    const signRate = Math.min(1000, total) / ((performance.now() - t0) / 1000);
    // Signing slows as the batch grows (measured: up to three times the first thousand's time).
    const startMs = Date.now() + Math.ceil((total / signRate) * 4) + 5000;
    options.progress?.(`signing ${total} transfers (about ${Math.ceil(total / signRate)} s)…`);
    const txs = await signLoad(payers, total, startMs, startMs + options.seconds * 1000, options.signal);
    // Connect just before the load: a server closes a connection idle for 10 s.
    while (Date.now() < startMs - 500) {
      checkAbort(options.signal);
      await sleep(5);
    }
    for (const s of files.servers) {
      const list = [];
      for (let c = 0; c < (options.connectionsPerServer ?? 2); c++) {
        list.push(new LoadConnection(await Deno.connect({ hostname: "127.0.0.1", port: s.port })));
      }
      conns.push(list);
    }
    while (Date.now() < startMs) {
      checkAbort(options.signal);
      await sleep(5);
    }
    options.progress?.(`offering ${options.rate} transfers/s for ${options.seconds} s…`);
    const firstFrame = frameAt(Date.now(), intervalMs);
    // If signing ran past the planned start, transfers already a second old are not offered: the
    // run is measured over the part of the schedule that was really offered.
    let next = 0;
    while (next < txs.length && txs[next]!.timestampMs < Date.now() - 1000) next++;
    if (next > 0) options.progress?.(`signing ran late: ${next} transfers not offered`);
    const offeredSeconds = txs.length > next
      ? (txs[txs.length - 1]!.timestampMs - txs[next]!.timestampMs) / 1000 + 1 / options.rate
      : 0;
    const sendStart = performance.now();
    const sliceMs = 20;
    let turn = 0;
    const sends: Promise<void>[] = [];
    while (next < txs.length) {
      checkAbort(options.signal);
      const nowMs = Date.now();
      let end = next;
      while (end < txs.length && txs[end]!.timestampMs <= nowMs) end++;
      // Group the due transfers by the alpha that accepts them now.
      const byServer = new Map<number, Tx[]>();
      const alpha = alphaIndex(acceptingFrame(Date.now(), network.timing), network.servers.length);
      for (let i = next; i < end; i++) {
        const list = byServer.get(alpha) ?? [];
        list.push(txs[i]!);
        byServer.set(alpha, list);
      }
      for (const [server, list] of byServer) {
        const lc = conns[server]![turn++ % conns[server]!.length]!;
        sends.push(lc.send(encodeBatch(list)));
      }
      next = end;
      if (next < txs.length) await sleep(sliceMs);
    }
    await Promise.all(sends);
    await Promise.all(conns.flat().map((c) => c.drain()));
    const sendSeconds = (performance.now() - sendStart) / 1000;
    const lastFrame = frameAt(Date.now(), intervalMs);
    // Let the last frames be decided.
    const settleBy = Date.now() + 4 * intervalMs + 2000;
    while (
      Date.now() < settleBy &&
      ![...Array(lastFrame - firstFrame + 1).keys()].every((k) => agreedFrames.has(firstFrame + k))
    ) {
      await sleep(100);
    }
    await sleep(2 * intervalMs);
    let accepted = 0;
    const rejected: Record<string, number> = {};
    for (const c of conns.flat()) {
      accepted += c.accepted;
      for (const [k, v] of Object.entries(c.rejected)) rejected[k] = (rejected[k] ?? 0) + v;
    }
    let committed = 0;
    for (const [, n] of applied) committed += n;
    let framesAgreed = 0;
    for (let f = firstFrame; f <= lastFrame; f++) if (agreedFrames.has(f)) framesAgreed++;
    const latencies = [...decided.entries()].filter(([f]) => f >= firstFrame && f <= lastFrame).map(([, v]) =>
      v
    )
      .sort((a, b) => a - b);
    const pct = (p: number) =>
      latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]! : null;
    const rss = children.map((c) => peakRssMb(c.pid));
    return {
      servers: options.servers,
      interval_s: options.intervalSeconds,
      seconds: options.seconds,
      offered_tx_per_s: options.rate,
      ingest_tx_per_s: Math.round(accepted / sendSeconds),
      accepted,
      committed,
      commit_tx_per_s: offeredSeconds > 0 ? Math.round(committed / offeredSeconds) : 0,
      offered_seconds: Math.round(offeredSeconds * 10) / 10,
      frames_agreed: framesAgreed,
      frames_total: lastFrame - firstFrame + 1,
      lost: Math.max(0, accepted - committed),
      // A relay that timed out answers alpha_unreachable although the alpha may have taken the transfer.
      committed_unconfirmed: Math.max(0, committed - accepted),
      rejected,
      consensus_ms_p50: pct(0.5),
      consensus_ms_p95: pct(0.95),
      peak_rss_mb: rss,
    };
  } finally {
    await Promise.all(conns.flat().map((c) => c.close()));
    await Promise.all(children.map((c) => c.stop()));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * One server's ingest: a single-server network with a long frame (so it stays the alpha), several
 * pipelined loopback connections sending pre-signed transfers as fast as it answers.
 */
export async function measureIngest(
  options: { count: number; connections: number; signal?: AbortSignal },
): Promise<{
  ingest_tx_per_s: number;
  accepted: number;
  rejected: Record<string, number>;
  peak_rss_mb: number | null;
}> {
  const dir = await Deno.makeTempDir({ prefix: "coin-bench-ingest-" });
  const payers = await loadKeys(LOAD_PAYERS);
  const files = await generateDevnet(dir, { servers: 1, intervalSeconds: 60, accounts: [] });
  const peers = JSON.parse(await Deno.readTextFile(files.peersFile));
  peers.genesis = Object.fromEntries(payers.map((p) => [p.publicHex, 1_000_000_000]));
  // Admission only: the current 60 s frame, already begun, and the default skew for load signed ahead.
  peers.start = Math.floor(Date.now() / 60_000) * 60;
  delete peers.skew;
  await Deno.writeTextFile(files.peersFile, JSON.stringify(peers));
  let started = false;
  const child = new ServerChild(files, 0, (_s, e) => {
    if (e.event === "start") started = true;
  });
  const conns: LoadConnection[] = [];
  try {
    const readyBy = Date.now() + 10_000;
    while (!started && Date.now() < readyBy) await sleep(50);
    // Timestamps must be within the skew of the moment they arrive: the first are stamped for the expected
    // end of signing (a probe long enough that making the 256 payers' key objects does not dominate it), the
    // rest spread as if the server took INGEST_SPREAD_PER_S, so that whether it is faster or slower (by up to
    // a skew's worth over the run) none arrives too old or too early.
    const probe = performance.now();
    await signLoad(payers, INGEST_PROBE_TXS, Date.now(), Date.now() + 1);
    const signMs = ((performance.now() - probe) / INGEST_PROBE_TXS) * options.count;
    const at = Date.now() + signMs;
    const spreadMs = (options.count / INGEST_SPREAD_PER_S) * 1000;
    const txs = await signLoad(payers, options.count, at, at + spreadMs, options.signal);
    for (let c = 0; c < options.connections; c++) {
      conns.push(
        new LoadConnection(await Deno.connect({ hostname: "127.0.0.1", port: files.servers[0]!.port })),
      );
    }
    const t = performance.now();
    const per = Math.ceil(txs.length / conns.length);
    await Promise.all(conns.map(async (c, i) => {
      const mine = txs.slice(i * per, (i + 1) * per);
      for (let k = 0; k < mine.length; k += 256) {
        checkAbort(options.signal);
        await c.send(encodeBatch(mine.slice(k, k + 256)));
      }
      await c.drain();
    }));
    const seconds = (performance.now() - t) / 1000;
    let accepted = 0;
    const rejected: Record<string, number> = {};
    for (const c of conns) {
      accepted += c.accepted;
      for (const [k, v] of Object.entries(c.rejected)) rejected[k] = (rejected[k] ?? 0) + v;
    }
    return {
      ingest_tx_per_s: Math.round(accepted / seconds),
      accepted,
      rejected,
      peak_rss_mb: peakRssMb(child.pid),
    };
  } finally {
    await Promise.all(conns.map((c) => c.close()));
    await child.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

export { ServerConnection };
