// Item 8 of the fault suite: one server's clock off by +40% and then -40% of the interval (the test-only
// --test-clock-offset-ms). It still agrees, or is flagged out of sync and recovers; transfers go on and
// every balance is exact.

import assert from "node:assert/strict";
import {
  balanceOn,
  checkArchive,
  fundedNetwork,
  keepLogs,
  sleep,
  startNetwork,
  statusOf,
  TransferStream,
  untilAgreedOn,
} from "./_faults.ts";

const FUNDS = 1_000_000;

Deno.test("a server whose clock is off by 40% of the interval keeps agreeing", async (t) => {
  const net = await fundedNetwork({ servers: 3, accounts: 3, funded: 3, amount: FUNDS, skew: 2 });
  const stream = new TransferStream(net, net.accounts, net.accounts);
  const s3 = net.servers[2]!;
  try {
    s3.extraArgs = ["--test-clock-offset-ms=400"];
    await startNetwork(net, [0, 1, 2]);
    stream.start(150);

    for (const offsetMs of [400, -400]) {
      await t.step(
        `with s3's clock ${offsetMs > 0 ? "ahead" : "behind"} by ${Math.abs(offsetMs)} ms`,
        async () => {
          const flag = `--test-clock-offset-ms=${offsetMs}`;
          if (s3.extraArgs[0] !== flag) {
            await s3.stop();
            s3.extraArgs = [flag];
            s3.start();
          }
          const from = s3.log.length;
          await sleep(8_000);
          const lines = s3.log.slice(from).split("\n");
          const agreed = lines.filter((l) => l.split(" ")[2] === "consensus");
          const status = await statusOf(net, 2);
          assert.ok(status !== undefined, "s3 is running");
          assert.equal(s3.events("halt").length, 0, s3.log);
          // It agrees every frame, or it was flagged out of sync and came back.
          assert.ok(agreed.length >= 5, `s3 agreed in most frames\n${s3.log.slice(from)}`);
          await untilAgreedOn(net, [0, 1, 2]);
          const outOfSync = lines.filter((l) => l.split(" ")[2] === "out_of_sync").length;
          const three = agreed.filter((l) => l.includes("agree=3/3")).length;
          console.log(
            `clock skew ${offsetMs} ms: s3 logged ${agreed.length} agreed frames (${three} with 3/3), ` +
              `${outOfSync} out of sync`,
          );
        },
      );
    }

    await t.step("every transfer is accounted for, on every server", async () => {
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
      console.log(
        `clock skew: ${stream.count("committed")} transfers committed, ${stream.count("never")} never, ` +
          `refused ${JSON.stringify(Object.fromEntries(stream.refused))}`,
      );
      assert.ok(stream.count("committed") > 50);
    });
  } finally {
    await stream.close();
    keepLogs(net, "clock-skew");
    await net.close();
  }
});
