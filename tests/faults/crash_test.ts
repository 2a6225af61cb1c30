// Item 1 of the fault suite: servers SIGKILLed at random moments under a continuous stream of transfers.
// Every restart rejoins, no committed transfer is lost or applied twice, and every archive verifies
// and holds the genesis supply.

import assert from "node:assert/strict";
import type { KeyPair } from "../../lib/keys.ts";
import { Kind } from "../../lib/wire.ts";
import {
  ask,
  balanceOn,
  checkArchive,
  fundedNetwork,
  keepLogs,
  makeTx,
  peakRssKiB,
  sleep,
  startNetwork,
  statusOf,
  TransferStream,
  untilAgreedOn,
} from "./_faults.ts";

const CYCLES = 20;
const FUNDS = 100_000_000_000_000; // a5 can pay 3^0 + 3^1 + … + 3^28

/** Digits of `n` in base 3, least significant first. */
function base3(n: number): number[] {
  const digits: number[] = [];
  for (; n > 0; n = Math.floor(n / 3)) digits.push(n % 3);
  return digits;
}

Deno.test("servers killed at random moments under a stream of transfers lose nothing", async (t) => {
  // A skew of 2 s keeps each transfer's window (and so the wait for its outcome) to a few frames.
  const net = await fundedNetwork({ servers: 3, accounts: 6, funded: 5, amount: FUNDS, skew: 2 });
  const streamAccounts = net.accounts.slice(0, 4);
  const sink = net.accounts[5]!;
  const stream = new TransferStream(net, streamAccounts, streamAccounts);
  // `coin send --wait` from a5 to a6, the k-th for 3^k coins: a6's final balance written in base 3 says
  // exactly how many times each of those transfers was applied, whatever the CLI reported.
  const sends: Promise<{ k: number; code: number; stdout: string; stderr: string }>[] = [];
  let sendsRunning = true;
  let sendLoop = Promise.resolve();
  const startSends = () =>
    sendLoop = (async () => {
      for (let k = 0; sendsRunning && k < 30; k++) {
        sends.push(
          net.send(String(3 ** k), { from: 5, to: sink.publicHex, wait: true }).then((r) => ({ k, ...r })),
        );
        await sleep(2_500);
      }
    })();
  const peaks = new Map<string, number>();
  const notePeak = (i: number) => {
    const pid = net.servers[i]!.pid;
    if (pid === undefined) return;
    try {
      peaks.set(net.servers[i]!.name, Math.max(peaks.get(net.servers[i]!.name) ?? 0, peakRssKiB(pid)));
    } catch {
      // exited
    }
  };
  try {
    await t.step("three servers start and agree", async () => {
      await startNetwork(net, [0, 1, 2]);
      stream.replayEvery = 5;
      stream.start(100);
      startSends();
    });

    await t.step(
      `${CYCLES} cycles: SIGKILL a random server at a random moment, restart it, it rejoins`,
      async () => {
        for (let cycle = 0; cycle < CYCLES; cycle++) {
          await sleep(200 + Math.random() * 1_300);
          const victim = net.servers[Math.floor(Math.random() * 3)]!;
          notePeak(victim.index);
          const status = await victim.stop("SIGKILL");
          assert.equal(status.signal, "SIGKILL", `${victim.name} was still running before cycle ${cycle}`);
          const others = net.servers.filter((s) => s !== victim).map((s) => s.index);
          for (const i of others) {
            assert.ok((await statusOf(net, i)) !== undefined, `${net.servers[i]!.name} is up\n${net.logs()}`);
          }
          await sleep(Math.random() * 1_000);
          const downFrame = Math.floor(Date.now() / 1000);
          victim.start();
          await net.until(`${victim.name} rejoins after cycle ${cycle}`, async () => {
            const s = await statusOf(net, victim.index);
            return s !== undefined && s.inSync === true && Number(s.committedFrame) > downFrame;
          }, 20_000);
        }
      },
    );

    await t.step("every transfer gets a definite outcome and the balances match exactly", async () => {
      await stream.stop();
      sendsRunning = false;
      await sendLoop;
      const cli = await Promise.all(sends);
      await stream.settle();
      assert.deepEqual(stream.contradictions, [], "no server contradicts another on an outcome");
      await sleep(1_500);
      await untilAgreedOn(net, [0, 1, 2]);
      const genesis = new Map(net.accounts.slice(0, 5).map((a) => [a.publicHex, FUNDS]));
      const expected = stream.expected(genesis);
      for (const i of [0, 1, 2]) {
        for (const a of streamAccounts) {
          assert.equal(
            await balanceOn(net, i, a.publicKey),
            expected.get(a.publicHex),
            `${net.servers[i]!.name}: balance of an account of the stream`,
          );
        }
      }
      const digits = base3(await balanceOn(net, 0, sink.publicKey));
      const payer = await balanceOn(net, 0, net.accounts[4]!.publicKey);
      const sinkBalance = await balanceOn(net, 0, sink.publicKey);
      assert.equal(payer + sinkBalance, FUNDS, "a5 paid exactly what a6 received");
      let committed = 0;
      for (const r of cli) {
        const applied = digits[r.k] ?? 0;
        assert.ok(applied <= 1, `send ${r.k} was applied ${applied} times`);
        if (r.code === 0) {
          assert.match(r.stdout, /committed in frame \d+/);
          assert.equal(
            applied,
            1,
            `send ${r.k} reported committed is in the balances\n${r.stdout}${r.stderr}`,
          );
          committed++;
        } else {
          assert.equal(r.code, 1, r.stderr);
          assert.equal(applied, 0, `send ${r.k} reported failed is not in the balances: ${r.stderr}`);
        }
      }
      const failures = cli.filter((r) => r.code !== 0).map((r) => r.stderr.trim());
      console.log(
        `crash: stream ${stream.count("committed")} committed, ${stream.count("never")} never, ` +
          `${stream.count("unsent")} unsent, refused ${
            JSON.stringify(Object.fromEntries(stream.refused))
          }, ` +
          `replays ${JSON.stringify(Object.fromEntries(stream.replays))}; ` +
          `coin send --wait: ${committed}/${cli.length} committed` +
          (failures.length ? `; failed: ${failures.join(" | ")}` : ""),
      );
      assert.ok(stream.count("committed") > 100, "the stream kept committing through the crashes");
      assert.ok(committed >= cli.length / 2, "most CLI transfers were committed");
    });

    await t.step("every archive verifies and holds the genesis supply on every server", async () => {
      for (const s of net.servers) await checkArchive(net, s, 5 * FUNDS);
      for (const s of net.servers) notePeak(s.index);
      console.log(
        `crash: peak RSS ${[...peaks].map(([n, kib]) => `${n} ${(kib / 1024).toFixed(1)} MiB`).join(", ")}`,
      );
    });
  } finally {
    sendsRunning = false;
    await sendLoop;
    await Promise.allSettled(sends);
    await stream.close();
    keepLogs(net, "crash");
    await net.close();
  }
});

Deno.test("a transfer replayed right after two of three servers restart is not applied twice", async () => {
  const net = await fundedNetwork({ servers: 3, accounts: 2, funded: 1, amount: 1_000_000 });
  const [alice, bob] = net.accounts as [KeyPair, KeyPair];
  try {
    for (const s of net.servers) s.start();
    await untilAgreedOn(net, [0, 1, 2]);
    const tx = await makeTx(alice, bob.publicKey, 25);
    const accepted = await ask(net, 0, Kind.submit, tx.bytes);
    assert.equal(accepted.ok, true, JSON.stringify(accepted));
    await net.until("the transfer is committed on every server", async () => {
      const balances = await Promise.all([0, 1, 2].map((i) => balanceOn(net, i, bob.publicKey)));
      return balances.every((b) => b === 25);
    });
    // A crash of two servers at once (a power cut), and both come back at once.
    await Promise.all([net.servers[0]!.stop("SIGKILL"), net.servers[1]!.stop("SIGKILL")]);
    net.servers[0]!.start();
    net.servers[1]!.start();
    const codes = new Map<string, number>();
    // Replay the same signed bytes to every server until its timestamp window has closed.
    while (Date.now() < tx.timestampMs + 7_000) {
      for (const i of [0, 1, 2]) {
        const r = await ask(net, i, Kind.submit, tx.bytes).catch(() => undefined);
        const code = r === undefined ? "unreachable" : r.ok === true ? "accepted" : String(r.code);
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }
      await sleep(200);
    }
    await sleep(2_000);
    await untilAgreedOn(net, [0, 1, 2]);
    for (const i of [0, 1, 2]) {
      assert.equal(
        await balanceOn(net, i, bob.publicKey),
        25,
        `s${i + 1}: the transfer was applied once (replays: ${JSON.stringify(Object.fromEntries(codes))})\n` +
          net.logs(),
      );
    }
    for (const s of net.servers) await checkArchive(net, s, 1_000_000);
  } finally {
    keepLogs(net, "crash-replay");
    await net.close();
  }
});
