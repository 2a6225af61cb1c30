// Item 3 of the fault suite: two of three servers stop. By default the third exits with status 3; with
// --wait-for-quorum it stays up refusing transfers, and when the two return the network resumes from
// the last agreed hash without a fork.

import assert from "node:assert/strict";
import { Kind } from "../../lib/wire.ts";
import {
  archivedCommit,
  ask,
  assertNoFork,
  balanceOn,
  checkArchive,
  fundedNetwork,
  keepLogs,
  logFields,
  makeTx,
  sleep,
  statusOf,
  untilAgreedOn,
} from "./_faults.ts";

const FUNDS = 1_000_000;

Deno.test("without a majority the last server exits with status 3", async () => {
  const net = await fundedNetwork({ servers: 3, accounts: 2, funded: 1, amount: FUNDS });
  const [s1, s2, s3] = net.servers as [typeof net.servers[0], typeof net.servers[0], typeof net.servers[0]];
  try {
    for (const s of net.servers) s.start();
    await untilAgreedOn(net, [0, 1, 2]);
    await Promise.all([s1.stop("SIGKILL"), s2.stop("SIGKILL")]);
    // It waits MAX_MISSED_FRAMES, and longer in the network's first STARTUP_GRACE_FRAMES frames.
    const status = await s3.waitExit(20_000);
    assert.equal(status.code, 3, s3.log);
    assert.equal(s3.events("halt").length, 1, s3.log);
    assert.match(s3.log, /Consensus lost: no quorum \(2 of 3\) certified a frame/);
    // It says who went silent, and how to wait instead.
    assert.match(
      s3.log,
      /heard from no other server \(s1, s2\); stopping rather than fork \(--wait-for-quorum waits instead\)/,
    );
  } finally {
    keepLogs(net, "quorum-exit");
    await net.close();
  }
});

Deno.test("with --wait-for-quorum the last server waits, refuses transfers, and the network resumes without a fork", async (t) => {
  const net = await fundedNetwork({ servers: 3, accounts: 2, funded: 1, amount: FUNDS });
  const [alice, bob] = net.accounts as [typeof net.accounts[0], typeof net.accounts[0]];
  const [s1, s2, s3] = net.servers as [typeof net.servers[0], typeof net.servers[0], typeof net.servers[0]];
  for (const s of net.servers) s.extraArgs = ["--wait-for-quorum"];
  let paid = 0;
  let lastAgreed = "";
  let lastAgreedFrame = 0;
  try {
    await t.step("the three agree on some transfers", async () => {
      for (const s of net.servers) s.start();
      await untilAgreedOn(net, [0, 1, 2]);
      for (const amount of [3, 4]) {
        const r = await net.send(String(amount), { wait: true });
        assert.equal(r.code, 0, r.stderr);
        paid += amount;
      }
      lastAgreed = await untilAgreedOn(net, [0, 1, 2]);
      lastAgreedFrame = Number((await statusOf(net, 2))?.committedFrame);
    });

    await t.step("two stop: the third stays up, reports no quorum and refuses transfers", async () => {
      await Promise.all([s1.stop("SIGKILL"), s2.stop("SIGKILL")]);
      await net.until("s3 reports no quorum", () => s3.events("no_quorum").length > 0, 15_000);
      const status = await statusOf(net, 2);
      assert.equal(status?.noQuorum, true);
      // s3 keeps the last agreed database: the one agreed above, or a later one certified with s1 or s2
      // before they stopped (frames go on every second), as its archive holds it.
      const frame = Number(status?.committedFrame);
      assert.ok(frame >= lastAgreedFrame, `s3 kept frame ${frame}, agreed ${lastAgreedFrame}`);
      if (frame === lastAgreedFrame) assert.equal(status?.committedHash, lastAgreed);
      assert.equal((await archivedCommit(s3, frame))?.cert.digest, status?.committedHash);
      lastAgreed = String(status?.committedHash);
      lastAgreedFrame = frame;
      const tx = await makeTx(alice, bob.publicKey, 5);
      const refused = await ask(net, 2, Kind.submit, tx.bytes);
      assert.equal(refused.ok, false);
      assert.equal(refused.code, "no_quorum");
      const cli = await net.send("5");
      assert.equal(cli.code, 1);
      assert.match(cli.stderr, /Refused: no_quorum/);
      await sleep(2_000);
      assert.ok((await statusOf(net, 2)) !== undefined, "s3 is still running");
      assert.equal(s3.events("halt").length, 0, s3.log);
    });

    await t.step("the two return: the network resumes from the last agreed hash", async () => {
      s1.start();
      s2.start();
      await net.until("s3 logs quorum_back", () => s3.events("quorum_back").length > 0, 20_000);
      await untilAgreedOn(net, [0, 1, 2]);
      // The first frame agreed after the outage is built on the database agreed before it: its
      // certificate is for the next height and names that digest as the previous one (after a long
      // outage the agreement may skip to a later, empty frame).
      const back = logFields(s3.events("quorum_back")[0]!);
      const resumed = await archivedCommit(s3, Number(back.frame));
      assert.ok(resumed !== undefined, `s3 archived frame ${back.frame}`);
      assert.equal(resumed.cert.digest.slice(0, 12), back.digest);
      assert.equal(
        resumed.cert.height,
        lastAgreedFrame + 1,
        `resumed after the last agreed frame\n${s3.log}`,
      );
      assert.equal(resumed.cert.prevDigest, lastAgreed, `resumed from the last agreed hash\n${s3.log}`);
      const r = await net.send("6", { wait: true });
      assert.equal(r.code, 0, r.stderr + net.logs());
      paid += 6;
      await untilAgreedOn(net, [0, 1, 2]);
      for (const i of [0, 1, 2]) assert.equal(await balanceOn(net, i, bob.publicKey), paid);
    });

    await t.step("all archives agree frame by frame and hold the genesis supply", async () => {
      const archives = [];
      for (const s of net.servers) archives.push(await checkArchive(net, s, FUNDS));
      const shared = assertNoFork(archives);
      assert.ok(shared > 0, "some frames are archived by several servers");
      console.log(`quorum: ${shared} frames archived by more than one server, all identical`);
    });
  } finally {
    keepLogs(net, "quorum-wait");
    await net.close();
  }
});
