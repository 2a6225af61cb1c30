// `coin devnet`: a whole network from one command. It reaches consensus in the first frames, commits its
// demo transfers, reports a server that dies, and leaves no process behind on Ctrl-C, SIGTERM or --seconds.

import assert from "node:assert/strict";
import { assertOneLineError, coinArgs, makeTempDir, runCoin } from "../_helpers.ts";
import type { Io } from "../../lib/cli/_command.ts";
import { LiveView } from "../../lib/cli/devnet.ts";

/** A frame line of the live view: time, frame, agreement, hash prefix, transfers committed. */
const FRAME_LINE = /^\d\d:\d\d:\d\d {2}frame (\d+) {2}(\d+\/\d+) +([0-9a-f]{12}) +(\d+) committed/;
const STOPPED_LINE =
  /^Stopped (\d+) servers \(pids ([\d, ]+)\)\. (\d+) frames agreed, (\d+) transfers committed/;
/** Signals and /proc: the process checks below are Linux's. */
const ignore = Deno.build.os !== "linux";

/** A `coin devnet` child process whose stdout is read line by line while it runs. */
class Devnet implements AsyncDisposable {
  readonly dir: string;
  readonly startedMs = Date.now();
  readonly lines: string[] = [];
  stderr = "";
  readonly #child: Deno.ChildProcess;
  readonly #done: Promise<Deno.CommandStatus>;
  #status: Deno.CommandStatus | undefined;

  constructor(dir: string, args: string[]) {
    this.dir = dir;
    this.#child = new Deno.Command(Deno.execPath(), {
      args: coinArgs(["devnet", "--dir", dir, ...args]),
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const child = this.#child;
    const pumpOut = (async () => {
      const decoder = new TextDecoder();
      let rest = "";
      for await (const chunk of child.stdout) {
        rest += decoder.decode(chunk, { stream: true });
        const parts = rest.split("\n");
        rest = parts.pop()!;
        this.lines.push(...parts);
      }
      if (rest !== "") this.lines.push(rest);
    })();
    const pumpErr = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of child.stderr) this.stderr += decoder.decode(chunk, { stream: true });
    })();
    this.#done = Promise.all([child.status, pumpOut, pumpErr]).then(([status]) => this.#status = status);
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** Everything printed so far, for failure messages. */
  get output(): string {
    return `stdout:\n${this.lines.join("\n")}\nstderr:\n${this.stderr}`;
  }

  /** The first line (from line `from` on) that matches `pattern`, waiting up to `timeoutMs` for it. */
  async waitFor(
    pattern: RegExp,
    timeoutMs: number,
    from = 0,
  ): Promise<{ index: number; match: RegExpMatchArray }> {
    const end = Date.now() + timeoutMs;
    for (let i = from;;) {
      for (; i < this.lines.length; i++) {
        const match = this.lines[i]!.match(pattern);
        if (match) return { index: i, match };
      }
      if (this.#status !== undefined) break;
      if (Date.now() > end) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`No line matching ${pattern} within ${timeoutMs} ms\n${this.output}`);
  }

  kill(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  /** Waits for the devnet to exit by itself, up to `timeoutMs`. */
  async exit(timeoutMs: number): Promise<Deno.CommandStatus> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`devnet still running after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.#done, timeout]);
      return this.#status!;
    } finally {
      clearTimeout(timer);
    }
  }

  /** On a failed test: stop the devnet (and so its servers), or kill it, before the next test. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#status !== undefined) return;
    this.kill("SIGTERM");
    try {
      await this.exit(10_000);
    } catch {
      this.kill("SIGKILL");
      for (const pid of serverPids(this.dir).values()) Deno.kill(pid, "SIGKILL");
      await this.#done;
    }
  }
}

/** The `coin serve` processes of the network in `dir`, by server name, found in /proc. */
function serverPids(dir: string): Map<string, number> {
  const pids = new Map<string, number>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    let args: string[];
    try {
      args = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).split("\0");
    } catch {
      continue; // exited meanwhile
    }
    if (!args.includes("serve")) continue;
    const key = args.find((a) => a.startsWith(`${dir}/s`) && a.endsWith(".key"));
    if (key !== undefined) pids.set(key.slice(dir.length + 1, -".key".length), Number(entry.name));
  }
  return pids;
}

/** True while `pid` is a process that has not exited (a zombie has exited). */
function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Waits until the devnet shows its first frames; returns the pids of its servers by name. */
async function untilServersRun(net: Devnet, servers: number): Promise<Map<string, number>> {
  await net.waitFor(FRAME_LINE, 15_000);
  const pids = serverPids(net.dir);
  assert.equal(pids.size, servers, `${servers} coin serve processes for ${net.dir}\n${net.output}`);
  return pids;
}

/** Checks the last line and that no server of the network is left running. */
function assertStoppedEverything(net: Devnet, pids: Map<string, number>): RegExpMatchArray {
  const last = net.lines.at(-1) ?? "";
  const stopped = last.match(STOPPED_LINE);
  assert.ok(stopped, `last line is the summary\n${net.output}`);
  const printed = stopped[2]!.split(", ").map(Number);
  assert.equal(Number(stopped[1]), pids.size, net.output);
  assert.deepEqual(printed.toSorted(), [...pids.values()].toSorted(), "the printed pids are its servers'");
  for (const pid of printed) assert.equal(alive(pid), false, `server pid ${pid} is gone\n${net.output}`);
  assert.deepEqual([...serverPids(net.dir)], [], "no coin serve process of this network is left");
  assert.match(last, new RegExp(`files kept in ${net.dir}$`));
  assert.doesNotMatch(net.stderr, /^\s+at /m, net.output);
  return stopped;
}

Deno.test({
  name: "coin devnet agrees 3/3 in the first frames, commits demo transfers and stops everything on SIGINT",
  ignore,
  async fn() {
    await using tmp = await makeTempDir();
    const dir = `${tmp.path}/net`;
    await using net = new Devnet(dir, ["--interval", "1"]);

    const head = await net.waitFor(/^Press Ctrl-C to stop\.$/, 10_000);
    assert.match(net.lines[0]!, new RegExp(`^coin devnet: 3 servers, 1 s frames, files in ${dir}$`));
    assert.match(
      net.lines[1]!,
      /^ {2}servers: s1 127\.0\.0\.1:\d+, s2 127\.0\.0\.1:\d+, s3 127\.0\.0\.1:\d+$/,
    );
    assert.match(net.lines[2]!, /^ {2}accounts: alice, bob, carol, dave \(1000000 coins each\)$/);
    const hint = await net.waitFor(
      / send --peers (\S+) --key (\S+) --to (coin1[02-9ac-hj-np-z]{58}) --amount 5 --wait$/,
      0,
    );
    assert.ok(hint.index < head.index);
    assert.equal(hint.match[1], `${dir}/peers.json`);
    assert.equal(hint.match[2], `${dir}/alice.key`);
    await net.waitFor(new RegExp(` status --peers ${dir}/peers\\.json$`), 0);
    for (const file of ["peers.json", "s1.key", "s2.key", "s3.key", "alice.key", "bob.key"]) {
      await Deno.stat(`${dir}/${file}`);
    }

    const agreed = await net.waitFor(/^\d\d:\d\d:\d\d {2}frame \d+ {2}3\/3 /, 10_000);
    assert.ok(Date.now() - net.startedMs < 10_000, `3/3 within 10 s\n${net.output}`);
    const pids = await untilServersRun(net, 3);
    const committed = await net.waitFor(/ [1-9]\d* committed/, 10_000, agreed.index);
    assert.match(net.lines[committed.index]!, FRAME_LINE);

    // The hint works as printed, from a second terminal.
    // Printed as "deno run -A MAIN …", or "npx -y deno@VERSION run -A MAIN …" when deno came from npx.
    const words = net.lines[hint.index]!.trim().split(" ");
    const at = words.indexOf("run");
    assert.ok(
      words[0] === "deno" || (words[0] === "npx" && words[2] === `deno@${Deno.version.deno}`),
      words[0],
    );
    assert.equal(words[at + 1], "-A");
    const send = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", ...words.slice(at + 2)],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const sent = new TextDecoder().decode(send.stdout);
    assert.equal(send.code, 0, `${sent}\n${new TextDecoder().decode(send.stderr)}\n${net.output}`);
    assert.match(sent, /committed in frame \d+/);

    net.kill("SIGINT");
    const status = await net.exit(15_000);
    assert.equal(status.code, 0, net.output);
    const stopped = assertStoppedEverything(net, pids);
    assert.ok(Number(stopped[3]) >= 1 && Number(stopped[4]) >= 1, net.output);
    assert.ok(!net.lines.some((l) => l.startsWith("! ")), `no server reported dead\n${net.output}`);
  },
});

Deno.test({
  name: "coin devnet reports a server that dies, goes on at 2/3, and stops the rest on SIGTERM",
  ignore,
  async fn() {
    await using tmp = await makeTempDir();
    await using net = new Devnet(`${tmp.path}/net`, ["--interval", "1"]);
    const first = await net.waitFor(/^\d\d:\d\d:\d\d {2}frame \d+ {2}3\/3 /, 10_000);
    const pids = await untilServersRun(net, 3);

    Deno.kill(pids.get("s1")!, "SIGKILL");
    const died = await net.waitFor(/^! s1 exited with status 137 \(SIGKILL\)$/, 5_000, first.index);
    await net.waitFor(/^\d\d:\d\d:\d\d {2}frame \d+ {2}2\/3 /, 8_000, died.index);

    net.kill("SIGTERM");
    const status = await net.exit(15_000);
    assert.equal(status.code, 0, net.output);
    assertStoppedEverything(net, pids);
    const reports = net.lines.filter((l) => l.startsWith("! "));
    assert.deepEqual(
      reports,
      [net.lines[died.index]],
      "only the dead server is reported, not the stopped ones",
    );
  },
});

Deno.test({
  name: "coin devnet --no-demo --seconds N commits nothing and exits 0 by itself",
  ignore,
  async fn() {
    await using tmp = await makeTempDir();
    await using net = new Devnet(`${tmp.path}/net`, ["--interval", "1", "--no-demo", "--seconds", "5"]);
    const pids = await untilServersRun(net, 3);
    const status = await net.exit(20_000);
    assert.equal(status.code, 0, net.output);
    assert.ok(Date.now() - net.startedMs >= 5_000, "ran for the seconds asked");
    const stopped = assertStoppedEverything(net, pids);
    assert.equal(stopped[4], "0", net.output);
    assert.ok(Number(stopped[3]) >= 1, `some frame was agreed\n${net.output}`);
    // The network starts 2 to 3 s after the command: the few frames of the run are each certified by a
    // quorum (agree=K/3 counts the precommits a server saw, so a slow third server may show as 2/3).
    const frames = net.lines.filter((l) => FRAME_LINE.test(l));
    assert.ok(frames.length >= 1, net.output);
    for (const line of frames) {
      const [, , agree, , committed] = line.match(FRAME_LINE)!;
      assert.match(agree!, /^[23]\/3$/, line);
      assert.equal(committed, "0", line);
    }
  },
});

Deno.test("coin devnet refuses bad flags with one line and exit 2", async () => {
  await using tmp = await makeTempDir();
  await Deno.writeTextFile(`${tmp.path}/peers.json`, "{}");
  const runs = await Promise.all([
    runCoin(["devnet", "--servers", "0"]),
    runCoin(["devnet", "--servers", "16"]),
    runCoin(["devnet", "--interval", "abc"]),
    runCoin(["devnet", "--interval", "0"]),
    runCoin(["devnet", "--seconds", "0"]),
    runCoin(["devnet", "--sever", "2"]),
    runCoin(["devnet", "--no-demo=yes"]),
    runCoin(["devnet", "extra"]),
    runCoin(["devnet", "--dir", tmp.path]),
  ]);
  const expected = [
    /Invalid --servers "0": expected 1 to 15/,
    /Invalid --servers "16": expected 1 to 15/,
    /Invalid --interval "abc" for "coin devnet": expected a whole number/,
    /Invalid --interval "0": expected 1 to 3600 seconds/,
    /Invalid --seconds "0"/,
    /Unknown flag --sever for "coin devnet"; did you mean --servers\?/,
    /--no-demo/,
    /Unexpected argument "extra" for "coin devnet"/,
    new RegExp(`Directory "${tmp.path}" already holds a network \\(peers\\.json\\); choose another --dir`),
  ];
  runs.forEach((run, i) => assertOneLineError(run, 2, expected[i]!));
  assert.equal(await Deno.readTextFile(`${tmp.path}/peers.json`), "{}", "an existing network is left alone");
});

Deno.test("the live view prints each frame once and counts it once, however late a server reports it", () => {
  const lines: string[] = [];
  const io = { out: (line: string) => void lines.push(line), err: () => {} } as unknown as Io;
  let running = 3;
  const view = new LiveView(io, () => running);
  const consensus = (frame: number, applied = 2) => ({
    event: "consensus",
    frame,
    agree: "3/3",
    digest: "abcdef012345",
    applied,
  });
  view.onEvent("s1", consensus(10));
  view.onEvent("s2", consensus(10));
  // s3 is slow (or dying): frame 12 makes frame 10 late, so its line is printed with two reports.
  view.onEvent("s1", consensus(12));
  assert.equal(lines.filter((l) => l.includes("frame 10")).length, 1);
  running = 2; // s3 died
  view.onEvent("s3", consensus(10));
  view.onEvent("s2", consensus(12));
  view.flush(Infinity);
  assert.deepEqual(lines.map((l) => l.replace(/^\S+ {2}/, "")), [
    "frame 10  3/3   abcdef012345    2 committed",
    "frame 12  3/3   abcdef012345    2 committed",
  ]);
  assert.equal(view.agreedFrames, 2);
  assert.equal(view.committed, 4);
});
