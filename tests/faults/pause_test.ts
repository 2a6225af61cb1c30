// Item 2 of the fault suite: a server frozen with SIGSTOP for several frames, then SIGCONT, catches up
// with the others while transfers go on, and the others never stop agreeing.

import assert from "node:assert/strict";
import {
  balanceOn,
  checkArchive,
  fundedNetwork,
  keepLogs,
  sleep,
  startNetwork,
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
        `paused for ${pauseMs / 1000} s, it resumes, is sent the database and agrees`,
        async () => {
          const before = {
            consensus: net.servers[0]!.events("consensus").length,
            received: s2.events("catchup_received").length,
          };
          Deno.kill(s2.pid!, "SIGSTOP");
          await sleep(pauseMs);
          const during = net.servers[0]!.events("consensus").slice(before.consensus);
          Deno.kill(s2.pid!, "SIGCONT");
          assert.ok(
            during.filter((l) => l.includes("agree=2/3")).length >= pauseMs / 1000 - 3,
            `the other two kept agreeing while s2 was frozen\n${net.logs()}`,
          );
          await net.until(
            "s2 is sent the database",
            () => s2.events("catchup_received").length > before.received,
          );
          await untilAgreedOn(net, [0, 1, 2]);
          const resumed = s2.log.split("\n").filter((l) =>
            / s2 (skip_ahead|out_of_sync|catchup_received) /.test(l)
          );
          assert.ok(resumed.length > 0, s2.log);
        },
      );
    }

    await t.step("after the pauses every transfer is accounted for on every server", async () => {
      await stream.stop();
      await stream.settle();
      assert.deepEqual(stream.contradictions, []);
      await sleep(1_000);
      await untilAgreedOn(net, [0, 1, 2]);
      const expected = stream.expected(new Map(net.accounts.map((a) => [a.publicHex, FUNDS])));
      for (const i of [0, 1, 2]) {
        for (const a of net.accounts) {
          assert.equal(await balanceOn(net, i, a.publicKey), expected.get(a.publicHex), `s${i + 1}`);
        }
      }
      for (const s of net.servers) await checkArchive(net, s, 3 * FUNDS);
      const halted = net.servers.filter((s) => s.events("halt").length > 0);
      assert.deepEqual(halted.map((s) => s.name), []);
      console.log(
        `pause: ${stream.count("committed")} transfers committed, ${stream.count("never")} never; ` +
          `s2 catch-ups received: ${s2.events("catchup_received").length}, ` +
          `stale votes dropped by s1/s3: ${
            [0, 2].map((i) => net.servers[i]!.events("dropped").filter((l) => l.includes("stale")).length)
              .join("/")
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
