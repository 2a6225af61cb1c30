// Item 2 of the fault suite: a server frozen with SIGSTOP for several frames, then SIGCONT, catches up
// with the others while transfers go on, and the others never stop agreeing.

import assert from "node:assert/strict";
import {
  assertNoFork,
  balanceOn,
  checkArchive,
  fundedNetwork,
  keepLogs,
  logFields,
  sleep,
  startNetwork,
  statusOf,
  TransferStream,
  untilAgreedOn,
} from "./_faults.ts";

const FUNDS = 1_000_000;

Deno.test("a server paused for several frames catches up after SIGCONT", async (t) => {
  const net = await fundedNetwork({ servers: 3, accounts: 3, funded: 3, amount: FUNDS, skew: 2 });
  const stream = new TransferStream(net, net.accounts, net.accounts);
  const s2 = net.servers[1]!;
  try {
    await startNetwork(net, [0, 1, 2]);
    stream.start(200);

    for (const pauseMs of [5_000, 12_000]) {
      await t.step(
        `paused for ${pauseMs / 1000} s, it resumes, catches up and agrees`,
        async () => {
          const before = {
            consensus: net.servers[0]!.events("consensus").length,
            received: s2.events("catchup_received").length,
            decided: s2.events("consensus").length,
          };
          Deno.kill(s2.pid!, "SIGSTOP");
          await sleep(pauseMs);
          const during = net.servers[0]!.events("consensus").slice(before.consensus);
          const resumedAt = Math.floor(Date.now() / 1000);
          Deno.kill(s2.pid!, "SIGCONT");
          assert.ok(
            during.filter((l) => l.includes("agree=2/3")).length >= pauseMs / 1000 - 3,
            `the other two kept agreeing while s2 was frozen\n${net.logs()}`,
          );
          // The others kept a quorum all along: s2 must not take its own pause for a lost consensus.
          await net.until(`s2 commits a frame after ${resumedAt}`, async () => {
            if (s2.events("halt").length > 0) {
              throw new Error(`s2 halted when it resumed, though s1 and s3 kept agreeing:\n${s2.log}`);
            }
            const status = await statusOf(net, 1);
            return status !== undefined && Number(status.committedFrame) > resumedAt;
          });
          await untilAgreedOn(net, [0, 1, 2]);
          // It caught up with a certified state sent to it, or decided the frames it missed from the
          // votes that waited in its sockets.
          const received = s2.events("catchup_received").length - before.received;
          const decided = s2.events("consensus").slice(before.decided)
            .filter((l) => Number(logFields(l).frame) < resumedAt).length;
          assert.ok(received + decided > 0, s2.log);
          console.log(
            `pause ${pauseMs / 1000} s: s2 caught up with ${received} certified states sent to it ` +
              `and ${decided} frames decided from held votes`,
          );
        },
      );
    }

    // Clients must not wait on a frozen server until their transfer expires (it did, with the first server
    // of peers.json frozen: every send failed with timestamp_too_old after 5 s).
    let sentByHand = 0;
    await t.step(
      "with the first server of peers.json frozen, coin send still commits, 3 times of 3",
      async () => {
        const s1 = net.servers[0]!;
        Deno.kill(s1.pid!, "SIGSTOP");
        try {
          for (let k = 0; k < 3; k++) {
            const r = await net.coin([
              "send",
              "--peers",
              net.peersFile,
              "--key",
              `${net.dir}/a1.key`,
              "--to",
              net.accounts[1]!.publicHex,
              "--amount",
              "1",
              "--wait",
            ]);
            assert.equal(r.code, 0, `send ${k + 1}: exit ${r.code}\n${r.stdout}${r.stderr}`);
            assert.match(r.stdout, /committed in frame \d+/);
            sentByHand++;
          }
        } finally {
          Deno.kill(s1.pid!, "SIGCONT");
        }
      },
    );

    await t.step("after the pauses every transfer is accounted for on every server", async () => {
      if (s2.events("halt").length > 0) {
        // Reported by the step that paused it; its data directory is intact, so the accounting can
        // still be checked on all three.
        await s2.waitExit();
        s2.start();
      }
      await stream.stop();
      await stream.settle();
      assert.deepEqual(stream.contradictions, []);
      await sleep(1_000);
      await untilAgreedOn(net, [0, 1, 2]);
      const start = new Map(net.accounts.map((a) => [a.publicHex, FUNDS]));
      start.set(net.accounts[0]!.publicHex, FUNDS - sentByHand);
      start.set(net.accounts[1]!.publicHex, FUNDS + sentByHand);
      const expected = stream.expected(start);
      for (const i of [0, 1, 2]) {
        for (const a of net.accounts) {
          assert.equal(await balanceOn(net, i, a.publicKey), expected.get(a.publicHex), `s${i + 1}`);
        }
      }
      const archives = [];
      for (const s of net.servers) archives.push(await checkArchive(net, s, 3 * FUNDS));
      assertNoFork(archives);
      console.log(
        `pause: ${stream.count("committed")} transfers committed, ${stream.count("never")} never; ` +
          `s2 catch-ups received: ${s2.events("catchup_received").length}, ` +
          `messages dropped by s1/s3: ${
            [0, 2].map((i) => net.servers[i]!.events("dropped").length).join("/")
          }`,
      );
    });
  } finally {
    try {
      if (s2.pid !== undefined) Deno.kill(s2.pid, "SIGCONT");
    } catch {
      // not running
    }
    await stream.close();
    keepLogs(net, "pause");
    await net.close();
  }
});
