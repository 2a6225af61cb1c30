// A coin server: the shell around the replica (lib/replica.ts). It owns the clock, the timer, the
// sockets, the files and the log, feeds the replica its inputs and carries out the actions it returns.
// No global state: a test can run several Server objects in one process.

import { CORRUPT_SUFFIX, parseArchiveName, pruneArchive, removeStaleTemporaries } from "./archive.ts";
import { REQUEST_TIMEOUT_MS, ServerConnection } from "./client.ts";
import { Connections } from "./connections.ts";
import { CoinError, ConsensusLostError } from "./errors.ts";
import { describePeerProblem, type PeerProblem } from "./events.ts";
import { type KeyPair, signerOf } from "./keys.ts";
import type { Logger } from "./log.ts";
import { type Network, networkParts, type Peer } from "./peers.ts";
import { clockWarnMs, judgeClock, PEER_PROBE_MS, type PeerCheck, PeerLink } from "./_peer_link.ts";
import { appendFileDurable, writeFileAtomic } from "./_files.ts";
import { type Action, Replica, type ReplicaMetrics } from "./replica.ts";
import { directoryReader, recover } from "./recovery.ts";
import { Kind } from "./wire.ts";

/** Shortest wait for the alpha's answer to a relayed transfer. */
export const RELAY_MIN_TIMEOUT_MS = 500;

/** Options of a server. */
export interface ServerOptions {
  network: Network;
  keyPair: KeyPair;
  /** Holds archive/ and anything else the server keeps. */
  dataDir: string;
  logger: Logger;
  /** Stay up without a majority, refusing transfers, instead of stopping with status 3. */
  waitForQuorum?: boolean;
  archiveKeep?: number;
  /**
   * Where to listen, when not at peers.json's address (which is what the other servers dial): behind NAT or
   * on a cloud machine whose public address is not its own, for example 0.0.0.0 and the same port.
   */
  listen?: { host: string; port: number };
  /** Test-only: added to this server's clock. */
  clockOffsetMs?: number;
  /**
   * Test-only: a dishonest server built on this code (tests/faults/_liar_server.ts): rewrites what the
   * replica sends and adds lies of its own. `coin serve` never sets it.
   */
  lies?: Lies;
}

/** What a dishonest server does with the replica's actions (lib/sim/adversary.ts implements it). */
export interface Lies {
  /** The actions to carry out instead of `actions`. */
  outgoing(nowMs: number, actions: Action[], replica: Replica): Action[];
  /** Lies told on its own schedule, at each tick. */
  tick(nowMs: number, replica: Replica): Action[];
  /** Sees each peer message that came in. */
  observe(body: Uint8Array): void;
}

/** Counters exposed by /metrics and `coin status`. */
export type ServerMetrics = ReplicaMetrics;

/** A running coin server. */

/** The shortest time between two log lines about one problem with one server (an answer to `hello` is not
 * authenticated: whoever answers at a server's address must not fill the log). */
export const PROBLEM_LOG_MIN_MS = 60_000;

/** The same problem for a log: the same network parts, or a clock off on the same side. */
function sameProblem(a: PeerProblem, b: PeerProblem): boolean {
  if (a.problem === "network_differs" && b.problem === "network_differs") {
    return a.parts.join(",") === b.parts.join(",");
  }
  if (a.problem === "clock_off" && b.problem === "clock_off") {
    return Math.sign(a.aheadMs) === Math.sign(b.aheadMs);
  }
  return false;
}

export class Server {
  readonly network: Network;
  readonly me: Peer;
  readonly #replica: Replica;
  readonly #log: Logger;
  readonly #archiveDir: string;
  readonly #clockOffsetMs: number;
  readonly #lies: Lies | undefined;
  readonly #listener: Deno.TcpListener;
  readonly #connections: Connections;
  #links = new Map<number, PeerLink>();
  /** This server's last signed vote without transfers: the first message on each new peer connection. */
  #greeting: Uint8Array[] | undefined;
  #relays = new Map<number, Promise<ServerConnection>>();
  #nextRequest = 1;
  #answers = new Map<number, (response: Record<string, unknown>) => void>();
  #writes: Promise<void> = Promise.resolve();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #probeTimer: ReturnType<typeof setInterval> | undefined;
  #closing = false;
  #done = Promise.withResolvers<void>();
  /** What is wrong between this server and others, by `index:problem`: the latest word on each. */
  #problems = new Map<string, PeerProblem>();
  /** When each problem (by `index:kind`) was last logged, and whether that line said it began. */
  #problemLogged = new Map<string, { ms: number; open: boolean }>();

  private constructor(options: ServerOptions, replica: Replica, listener: Deno.TcpListener) {
    this.network = options.network;
    this.#replica = replica;
    this.me = replica.me;
    this.#log = options.logger;
    this.#archiveDir = `${options.dataDir}/archive`;
    this.#clockOffsetMs = options.clockOffsetMs ?? 0;
    this.#lies = options.lies;
    this.#listener = listener;
    const parts = networkParts(options.network);
    const identity = {
      networkId: options.network.id,
      parts,
      publicKey: this.me.key,
      signer: signerOf(options.keyPair),
    };
    for (const peer of options.network.servers) {
      if (peer.index !== this.me.index) {
        this.#links.set(
          peer.index,
          new PeerLink(peer, identity, {
            greeting: () => this.#greeting,
            now: () => this.#now(),
            onCheck: (check) => this.#onCheck(peer, check),
          }),
        );
      }
    }
    this.#connections = new Connections(listener, {
      peer: (body) => {
        this.#lies?.observe(body);
        const { actions, listed } = this.#replica.peerMessage(this.#now(), body);
        this.#execute(actions);
        return listed;
      },
      request: (kind, arg) => this.#request(kind, arg),
      isListed: (key) => this.network.servers.some((s) => s.keyHex === key),
      receiving: (key, bytes) => this.#log.event("receiving", { from: this.#peerName(key), bytes }),
      dropped: (remote, reason) => {
        this.#replica.metrics.messagesDropped++;
        this.#log.event("dropped_connection", { remote, reason });
      },
    }, {
      intervalMs: options.network.intervalMs,
      networkId: options.network.id,
      parts,
      me: this.me.key,
      now: () => this.#now(),
    });
  }

  /**
   * Loads the newest archive entry that verifies (else the genesis), listens on this server's
   * address from peers.json and starts the frame clock.
   */
  static async start(options: ServerOptions): Promise<Server> {
    const me = options.network.servers.find((s) => s.keyHex === options.keyPair.publicHex);
    if (me === undefined) {
      throw new CoinError(
        `This key (${options.keyPair.publicHex.slice(0, 16)}…) is not a server in peers.json`,
      );
    }
    const archiveDir = `${options.dataDir}/archive`;
    try {
      await Deno.mkdir(archiveDir, { recursive: true });
    } catch (err) {
      throw new CoinError(`Cannot create archive directory "${archiveDir}": ${(err as Error).message}`);
    }
    await removeStaleTemporaries(archiveDir);
    const recovered = recover(directoryReader(archiveDir), options.network);
    for (const { name, problem } of recovered.setAside) {
      await Deno.rename(`${archiveDir}/${name}`, `${archiveDir}/${name}${CORRUPT_SUFFIX}`).catch(() => {});
      options.logger.event("corrupt_entry_set_aside", { file: name, problem });
    }
    let listener: Deno.TcpListener;
    const at = options.listen ?? { host: me.host, port: me.port };
    try {
      listener = Deno.listen({ hostname: at.host, port: at.port, transport: "tcp" });
    } catch (err) {
      const hint = options.listen === undefined && err instanceof Deno.errors.AddrNotAvailable
        ? ` (this machine does not own the address peers.json gives it: behind NAT or on a cloud machine, ` +
          `listen with --listen 0.0.0.0:${me.port})`
        : "";
      throw new CoinError(`Cannot listen on ${at.host}:${at.port}: ${(err as Error).message}${hint}`);
    }
    const replica = new Replica({
      network: options.network,
      me: me.index,
      signer: signerOf(options.keyPair),
      recovered,
      nowMs: Date.now() + (options.clockOffsetMs ?? 0),
      ...(options.waitForQuorum === undefined ? {} : { waitForQuorum: options.waitForQuorum }),
      ...(options.archiveKeep === undefined ? {} : { archiveKeep: options.archiveKeep }),
      stopwatch: () => performance.now(),
    });
    const server = new Server(options, replica, listener);
    server.#execute(replica.drain());
    server.#connections.serve((error) => server.#log.event("error_listen", { error }));
    server.#schedule();
    server.#probe();
    server.#probeTimer = setInterval(() => server.#probe(), PEER_PROBE_MS);
    return server;
  }

  /** The bound TCP port. */
  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** Counters for /metrics. */
  get metrics(): ServerMetrics {
    return this.#replica.metrics;
  }

  #now(): number {
    return Date.now() + this.#clockOffsetMs;
  }

  /** Resolves once stopped by `signal`; rejects with ConsensusLostError when the network lost its majority. */
  run(signal: AbortSignal): Promise<void> {
    const onAbort = () => this.close().then(() => this.#done.resolve());
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    return this.#done.promise.finally(() => signal.removeEventListener("abort", onAbort));
  }

  /** Stops listening, closes every connection and waits for pending archive writes. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    clearTimeout(this.#timer);
    clearInterval(this.#probeTimer);
    this.#connections.close();
    await Promise.all([...this.#links.values()].map((link) => link.close()));
    await Promise.all([...this.#relays.values()].map((r) => r.then((c) => c.close(), () => {})));
    await this.#writes;
  }

  /** Healthy when this server agreed with the consensus of the last frame that could be decided. */
  health(): { ok: boolean; reason: string } {
    return this.#replica.health(this.#now());
  }

  /** This server's state as `coin status` and GET /status show it. */
  status(): Record<string, unknown> {
    return { ...this.#replica.status(this.#now()), problems: this.problems() };
  }

  /** What is wrong between this server and others (a different network file, a clock off), in words too. */
  problems(): (PeerProblem & { reason: string })[] {
    // By server, in peers.json order, and a differing network file before a clock.
    const rank = (id: string) => parseInt(id) * 2 + (id.endsWith(":clock_off") ? 1 : 0);
    return [...this.#problems.entries()]
      .sort(([a], [b]) => rank(a) - rank(b))
      .map(([, p]) => ({ ...p, reason: describePeerProblem(p) }));
  }

  /**
   * Takes what a link learnt from another server's answer to `hello`. Words only: nothing here changes
   * what the replica decides, and anyone who can answer at that address can say anything.
   */
  #onCheck(peer: Peer, check: PeerCheck): void {
    const who = { peer: peer.name, key: peer.keyHex };
    this.#setProblem(
      peer,
      "network_differs",
      check.networkDiffers === undefined
        ? undefined
        : { problem: "network_differs", ...who, parts: check.networkDiffers },
    );
    if (check.clock === undefined) return;
    const verdict = judgeClock(check.clock, clockWarnMs(this.network.timing.skewMs));
    if (verdict === "off") {
      this.#setProblem(peer, "clock_off", {
        problem: "clock_off",
        ...who,
        aheadMs: Math.round(check.clock.offsetMs),
      }, Math.ceil(check.clock.uncertaintyMs));
    } else if (verdict === "ok") this.#setProblem(peer, "clock_off", undefined);
  }

  /**
   * Records the latest word on one problem with `peer` (status always shows it) and logs what matters: the
   * problem appearing, its network parts changing or its clock changing side, and its end. An answer to
   * `hello` is not authenticated, so an impostor at that address could make it flap: a problem that
   * appears again within PROBLEM_LOG_MIN_MS of its last line is not logged again (nor its end).
   */
  #setProblem(
    peer: Peer,
    kind: PeerProblem["problem"],
    problem: PeerProblem | undefined,
    uncertaintyMs?: number,
  ): void {
    const id = `${peer.index}:${kind}`;
    const before = this.#problems.get(id);
    const key = peer.keyHex.slice(0, 16);
    const logged = this.#problemLogged.get(id);
    const now = this.#now();
    if (problem === undefined) {
      if (before === undefined) return;
      this.#problems.delete(id);
      if (logged?.open !== true) return; // its appearance was not logged either
      this.#problemLogged.set(id, { ms: now, open: false });
      this.#log.event(kind === "network_differs" ? "network_same" : "clock_ok", { peer: peer.name, key });
      return;
    }
    this.#problems.set(id, problem);
    if (before !== undefined && sameProblem(before, problem)) return; // seconds rounding is not news
    if (logged !== undefined && now - logged.ms < PROBLEM_LOG_MIN_MS) return;
    this.#problemLogged.set(id, { ms: now, open: true });
    const reason = describePeerProblem(problem);
    this.#log.event(kind, {
      peer: peer.name,
      key,
      ...(problem.problem === "network_differs"
        ? { parts: problem.parts.length === 0 ? undefined : problem.parts.join(",") }
        : { ahead_ms: problem.aheadMs, uncertainty_ms: uncertaintyMs }),
      reason,
    });
  }

  /** Connects to every other server it is not connected to: what they say is checked on each connection. */
  #probe(): void {
    if (this.#closing) return;
    for (const link of this.#links.values()) link.probe();
  }

  #schedule(): void {
    if (this.#closing) return;
    const now = this.#now();
    this.#timer = setTimeout(() => {
      try {
        if (!this.#closing) this.#execute(this.#replica.tick(this.#now()));
        if (!this.#closing && this.#lies !== undefined) {
          this.#execute(this.#lies.tick(this.#now(), this.#replica));
        }
      } finally {
        this.#schedule();
      }
    }, Math.max(1, this.#replica.nextTickMs(now) - now));
  }

  #request(kind: number, arg: Uint8Array): Promise<Record<string, unknown>> {
    const id = this.#nextRequest++;
    const answered = new Promise<Record<string, unknown>>((resolve) => this.#answers.set(id, resolve));
    this.#execute(this.#replica.request(this.#now(), id, kind, arg));
    if (kind !== Kind.status) return answered;
    // The shell's own knowledge: what the links learnt about the other servers.
    return answered.then((r) => r.ok === true ? { ...r, problems: this.problems() } : r);
  }

  /** Carries out the replica's actions, in order. */
  #execute(actions: Action[]): void {
    if (this.#lies !== undefined) actions = this.#lies.outgoing(this.#now(), actions, this.#replica);
    for (const action of actions) {
      switch (action.type) {
        case "send":
          this.#links.get(action.to)?.send(action.message);
          break;
        case "broadcast":
          if (action.greeting) this.#greeting = action.message;
          for (const link of this.#links.values()) link.send(action.message);
          break;
        case "persist":
          this.#persist(action);
          break;
        case "log":
          this.#log.event(action.event, action.fields);
          break;
        case "answer": {
          const resolve = this.#answers.get(action.request);
          this.#answers.delete(action.request);
          resolve?.(action.response);
          break;
        }
        case "relay":
          this.#relay(action.request, action.to, action.bytes, action.timeoutMs);
          break;
        case "halt": {
          // What this server learnt about the others often says why no quorum formed.
          const known = this.problems().map((p) => p.reason);
          const message = known.length === 0 ? action.reason : `${action.reason}. ${known.join("; ")}`;
          this.close().then(() => this.#done.reject(new ConsensusLostError(message)));
          break;
        }
      }
    }
  }

  /** Writes run one after another, so a frame is durable only after every earlier one. */
  #persist(action: Extract<Action, { type: "persist" }>): void {
    this.#writes = this.#writes.then(async () => {
      let error: string | undefined;
      try {
        for (const file of action.files) {
          const path = `${this.#archiveDir}/${file.name}`;
          if (file.append) await appendFileDurable(path, file.bytes);
          else await writeFileAtomic(path, file.bytes, { overwrite: true });
        }
        if (action.files.some((f) => parseArchiveName(f.name) !== undefined)) {
          await pruneArchive(this.#archiveDir, action.keep);
        }
        for (const name of action.remove) {
          await Deno.remove(`${this.#archiveDir}/${name}`).catch((err) => {
            if (!(err instanceof Deno.errors.NotFound)) throw err;
          });
        }
      } catch (err) {
        error = (err as Error).message;
      }
      this.#execute(this.#replica.written(this.#now(), action.id, error));
    });
  }

  async #relay(request: number, to: number, bytes: Uint8Array, timeoutMs: number): Promise<void> {
    const alpha = this.network.servers[to]!;
    let answer: Record<string, unknown> | { error: string };
    let opening = this.#relays.get(to);
    try {
      // One connection per alpha, shared by every relay: a burst of transfers must not open one each (the
      // alpha's connection limit would then close its clients').
      if (opening === undefined || (await opening).closed) {
        opening = ServerConnection.open(alpha.host, alpha.port, 1_000);
        this.#relays.set(to, opening);
      }
      const conn = await opening;
      const wait = Math.min(Math.max(RELAY_MIN_TIMEOUT_MS, timeoutMs), REQUEST_TIMEOUT_MS);
      answer = await conn.request(Kind.relay, bytes, wait);
    } catch (err) {
      if (this.#relays.get(to) === opening) this.#relays.delete(to);
      answer = { error: (err as Error).message };
    }
    this.#execute(this.#replica.relayed(this.#now(), request, to, answer));
  }

  #peerName(keyHex: string): string {
    return this.network.servers.find((s) => s.keyHex === keyHex)?.name ?? keyHex.slice(0, 8);
  }
}
