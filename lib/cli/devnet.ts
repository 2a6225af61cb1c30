// `coin devnet`: the main job on an embedded default. A whole network on this machine, a live view
// of its frames, and a stream of demo transfers, until Ctrl-C.

import { encodeAddress } from "../address.ts";
import { sleep } from "../_sleep.ts";
import { ServerConnection } from "../client.ts";
import { coinCommand, DEMO_FUNDS, type DevnetFiles, generateDevnet, ServerChild } from "../devnet.ts";
import { UsageError } from "../errors.ts";
import { decodeTx, signTx } from "../tx.ts";
import { Kind } from "../wire.ts";
import { type Command, type Io, parseFlags, wholeNumber } from "./_command.ts";

/** Limits of a local network. */
export const MAX_DEVNET_SERVERS = 15;
/** Frames the live view remembers after printing them, so a late report does not print one again. */
export const VIEW_MEMORY_FRAMES = 64;

interface FrameView {
  agree?: string;
  hash?: string;
  applied: number;
  reported: Set<string>;
  notes: string[];
  printed: boolean;
}

/** Prints one line per frame once every running server reported it (or two frames later). */
export class LiveView {
  #frames = new Map<number, FrameView>();
  #io: Io;
  #running: () => number;
  committed = 0;
  agreedFrames = 0;
  framesSeen = 0;
  constructor(io: Io, running: () => number) {
    this.#io = io;
    this.#running = running;
  }

  #frame(f: number): FrameView {
    let v = this.#frames.get(f);
    if (v === undefined) {
      this.#frames.set(f, v = { applied: 0, reported: new Set(), notes: [], printed: false });
    }
    return v;
  }

  onEvent(server: string, e: Record<string, unknown>): void {
    const frame = typeof e.frame === "number" ? e.frame : undefined;
    // A server that reports a frame after its line was printed (a slow one, or after another died) must
    // neither print it twice nor count it twice.
    if (frame !== undefined && this.#frames.get(frame)?.printed) return;
    switch (e.event) {
      case "consensus": {
        const v = this.#frame(frame!);
        v.reported.add(server);
        v.agree = String(e.agree);
        v.hash = String(e.digest);
        v.applied = Math.max(v.applied, Number(e.applied ?? 0));
        break;
      }
      case "catchup_received":
        this.#frame(frame!).notes.push(`${server} caught up to a certified frame`);
        break;
      case "no_consensus":
        this.#frame(frame!).notes.push(`${server}: no quorum for ${e.missed} frames (round ${e.round})`);
        break;
      case "halt":
        this.#io.out(`! ${server} halted: ${e.reason}`);
        break;
      case "output":
        this.#io.out(`! ${server}: ${e.text}`);
        break;
    }
    this.flush(frame);
  }

  flush(latest?: number): void {
    for (const [f, v] of [...this.#frames].sort((a, b) => a[0] - b[0])) {
      const complete = v.reported.size >= this.#running();
      const late = latest !== undefined && f <= latest - 2;
      if (v.printed || !(complete || late)) continue;
      v.printed = true;
      this.framesSeen++;
      if (v.agree !== undefined) {
        this.agreedFrames++;
        this.committed += v.applied;
      }
      const time = new Date().toISOString().slice(11, 19);
      this.#io.out(
        `${time}  frame ${f}  ` +
          (v.agree === undefined
            ? "no consensus"
            : `${v.agree.padEnd(5)} ${v.hash}  ${String(v.applied).padStart(3)} committed`) +
          (v.notes.length ? `  (${v.notes.join("; ")})` : ""),
      );
    }
    // Printed lines are kept a while (see onEvent), then forgotten.
    const newest = Math.max(...this.#frames.keys());
    for (const [f, v] of this.#frames) {
      if (v.printed && f < newest - VIEW_MEMORY_FRAMES) this.#frames.delete(f);
    }
  }
}

/** Sends a random small transfer between the demo accounts now and then. */
async function demoLoop(files: DevnetFiles, intervalMs: number, signal: AbortSignal, io: Io): Promise<void> {
  const conns = new Map<number, ServerConnection>();
  try {
    while (!signal.aborted) {
      await sleep(Math.max(250, intervalMs / 3), signal);
      if (signal.aborted) break;
      const from = files.accounts[Math.floor(Math.random() * files.accounts.length)]!;
      const others = files.accounts.filter((a) => a !== from);
      const to = others[Math.floor(Math.random() * others.length)]!;
      const amount = 1 + Math.floor(Math.random() * 100);
      const tx = decodeTx(await signTx(from.key, { to: to.key.publicKey, amount, timestampMs: Date.now() }))!;
      const i = Math.floor(Math.random() * files.servers.length);
      try {
        let conn = conns.get(i);
        if (conn === undefined || conn.closed) {
          conn = await ServerConnection.open("127.0.0.1", files.servers[i]!.port, 500);
          conns.set(i, conn);
        }
        const r = await conn.request(Kind.submit, tx.bytes, 2_000);
        if (r.ok !== true && io.verbose) io.err(`demo transfer refused: ${r.code}`);
      } catch {
        // that server is down; the view reports it
      }
    }
  } finally {
    await Promise.all([...conns.values()].map((c) => c.close()));
  }
}

export const devnet: Command = {
  name: "devnet",
  summary: "Run a whole network on this machine, with a live view",
  help: `Usage: coin devnet [--servers N] [--interval S] [--dir DIR] [--no-demo] [--seconds T]

Generates server and account keys, a peers.json and a funded genesis in DIR (default: a new
temporary directory), starts N servers on free loopback ports and shows each frame: agreement
(3/3), hash prefix, transfers committed, and any server out of sync or catching up. Unless
--no-demo, it sends small demo transfers between the generated accounts (alice, bob, carol,
dave). Ctrl-C stops every server it started.

Options:
  --servers N    number of servers (default 3, at most ${MAX_DEVNET_SERVERS})
  --interval S   frame length in whole seconds (default 2)
  --dir DIR      where to write keys, peers.json and data (default: a new temporary directory)
  --no-demo      do not send demo transfers
  --seconds T    stop by itself after T seconds

Example:
  coin devnet --servers 5 --interval 1`,
  async run(args, io) {
    const { values } = parseFlags("devnet", args, {
      servers: { type: "string" },
      interval: { type: "string" },
      dir: { type: "string" },
      "no-demo": { type: "boolean" },
      seconds: { type: "string" },
    });
    if (values.help) return io.out(this.help);
    const servers = values.servers === undefined ? 3 : wholeNumber("devnet", "servers", values.servers);
    if (typeof servers !== "number" || servers < 1 || servers > MAX_DEVNET_SERVERS) {
      throw new UsageError(`Invalid --servers "${values.servers}": expected 1 to ${MAX_DEVNET_SERVERS}`);
    }
    const interval = values.interval === undefined ? 2 : wholeNumber("devnet", "interval", values.interval);
    if (typeof interval !== "number" || interval < 1 || interval > 3600) {
      throw new UsageError(`Invalid --interval "${values.interval}": expected 1 to 3600 seconds`);
    }
    let seconds: number | undefined;
    if (values.seconds !== undefined) {
      const s = wholeNumber("devnet", "seconds", values.seconds);
      if (typeof s !== "number" || s < 1) throw new UsageError(`Invalid --seconds "${values.seconds}"`);
      seconds = s;
    }
    let dir = values.dir;
    if (dir === undefined) dir = await Deno.makeTempDir({ prefix: "coin-devnet-" });
    else {
      try {
        await Deno.stat(`${dir}/peers.json`);
        throw new UsageError(`Directory "${dir}" already holds a network (peers.json); choose another --dir`);
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
    }
    const files = await generateDevnet(dir, { servers, intervalSeconds: interval });
    const coin = coinCommand().display;
    const [alice, bob] = files.accounts;
    io.out(`coin devnet: ${servers} servers, ${interval} s frames, files in ${dir}`);
    io.out(`  servers: ${files.servers.map((s) => `${s.name} 127.0.0.1:${s.port}`).join(", ")}`);
    io.out(`  accounts: ${files.accounts.map((a) => a.name).join(", ")} (${DEMO_FUNDS} coins each)`);
    io.out(`From a second terminal:`);
    io.out(
      `  ${coin} send --peers ${files.peersFile} --key ${alice!.keyFile} --to ${
        encodeAddress(bob!.key.publicKey)
      } --amount 5 --wait`,
    );
    io.out(`  ${coin} status --peers ${files.peersFile}`);
    io.out(`Press Ctrl-C to stop.`);

    const stop = new AbortController();
    const onAbort = () => stop.abort();
    io.signal.addEventListener("abort", onAbort, { once: true });
    // A Ctrl-C that came while the keys were being generated stops the network at once.
    if (io.signal.aborted) stop.abort();
    let running = servers;
    const view = new LiveView(io, () => running);
    const children = files.servers.map((_, i) => new ServerChild(files, i, (s, e) => view.onEvent(s, e)));
    const exits = children.map((c) =>
      c.exited.then((status) => {
        running--;
        if (!stop.signal.aborted) {
          io.out(
            `! ${c.name} exited with status ${status.code}${status.signal ? ` (${status.signal})` : ""}`,
          );
        }
      })
    );
    const timer = seconds === undefined ? undefined : setTimeout(() => stop.abort(), seconds * 1000);
    const demo = values["no-demo"] ? Promise.resolve() : demoLoop(files, interval * 1000, stop.signal, io);
    await new Promise<void>((resolve) => {
      if (stop.signal.aborted) resolve();
      stop.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    clearTimeout(timer);
    io.signal.removeEventListener("abort", onAbort);
    await demo;
    const statuses = await Promise.all(children.map((c) => c.stop()));
    await Promise.all(exits);
    view.flush(Infinity);
    io.out(
      `Stopped ${statuses.length} servers (pids ${children.map((c) => c.pid).join(", ")}). ` +
        `${view.agreedFrames} frames agreed, ${view.committed} transfers committed; files kept in ${dir}`,
    );
  },
};
