// The seed's twelve-step test plan (part 9), automated with real `coin serve` processes on 127.0.0.1
// at a one-second interval.

import assert from "node:assert/strict";
import { TestNetwork } from "./_network.ts";

async function archiveSupplies(net: TestNetwork, index: number): Promise<number[]> {
  const r = await net.coin(["archive", "ls", "--dir", net.servers[index]!.archiveDir, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { supply: number }[]).map((e) => e.supply);
}

async function balanceOf(net: TestNetwork, account: string, server?: string) {
  const args = [
    "balance",
    account,
    "--peers",
    net.peersFile,
    "--json",
    ...(server ? ["--server", server] : []),
  ];
  const r = await net.coin(args);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { balance: number; agree: boolean; hash: string; frame: number };
}

Deno.test("the seed's test plan passes on three real servers", async (t) => {
  const net = await TestNetwork.create({ servers: 3, interval: 1 });
  const [s1, s2, s3] = net.servers as [typeof net.servers[0], typeof net.servers[0], typeof net.servers[0]];
  const bob = net.accounts[1]!;
  const send = (amount: number, extra: string[] = []) => net.send(amount, { wait: extra.includes("--wait") });
  let sent = 0;
  try {
    await t.step("three servers started together exchange votes and agree every frame", async () => {
      for (const s of net.servers) s.start();
      await net.untilAgreed();
      await net.until(
        "each server logs frames agreed 3/3",
        () =>
          net.servers.every((s) => s.events("consensus").filter((l) => l.includes("agree=3/3")).length >= 3),
      );
      for (const s of net.servers) assert.equal(s.events("no_consensus").length, 0, s.log);
    });

    await t.step(
      "with one server stopped the other two keep agreeing, and it rejoins on restart",
      async () => {
        await s3.stop();
        const before = s1.events("consensus").length;
        await net.until(
          "two servers agree 2/3 for three more frames",
          () => s1.events("consensus").slice(before).filter((l) => l.includes("agree=2/3")).length >= 3,
        );
        assert.ok(s1.running && s2.running);
        s3.start();
        await net.untilAgreed();
      },
    );

    await t.step("with two servers stopped the third exits with status 3", async () => {
      await Promise.all([s1.stop(), s2.stop()]);
      const status = await s3.waitExit(15_000);
      assert.equal(status.code, 3, s3.log);
      assert.match(s3.log, /Consensus lost/);
    });

    await t.step("restarted, the three agree on transfers and report the same balances", async () => {
      for (const s of net.servers) s.start();
      await net.untilAgreed();
      for (const amount of [10, 20, 30]) {
        const r = await send(amount, ["--wait"]);
        assert.equal(r.code, 0, r.stderr + net.logs());
        assert.match(r.stdout, /committed in frame \d+/);
        sent += amount;
      }
      await net.untilAgreed();
      const b = await balanceOf(net, bob.publicHex);
      assert.equal(b.balance, sent);
      assert.equal(b.agree, true);
      for (const s of net.servers) {
        assert.equal((await balanceOf(net, bob.publicHex, s.address)).balance, sent);
      }
    });

    await t.step(
      "a server stopped while transfers happen receives the database (code 1) and rejoins",
      async () => {
        await s2.stop();
        const entriesBefore = (await net.coin(["archive", "ls", "--dir", s2.archiveDir, "--json"])).stdout;
        for (const amount of [1, 2]) {
          const r = await send(amount, ["--wait"]);
          assert.equal(r.code, 0, r.stderr + net.logs());
          sent += amount;
        }
        s2.start();
        await net.untilAgreed();
        await net.until("s2 logs a received catch-up", () => s2.events("catchup_received").length > 0);
        assert.ok(
          s1.events("catchup_sent").length + s3.events("catchup_sent").length > 0,
          "someone sent the database",
        );
        const names =
          (JSON.parse((await net.coin(["archive", "ls", "--dir", s2.archiveDir, "--json"])).stdout) as {
            file: string;
          }[]).map((e) => e.file);
        for (const old of JSON.parse(entriesBefore) as { file: string }[]) {
          assert.ok(names.includes(old.file), `entry ${old.file} from before the stop is kept`);
        }
        assert.ok(
          names.length > (JSON.parse(entriesBefore) as unknown[]).length,
          "corrected entries were added",
        );
        assert.equal((await balanceOf(net, bob.publicHex, s2.address)).balance, sent);
      },
    );

    await t.step(
      "when the beta is stopped mid-frame the others go on and send --wait gives a definite outcome",
      async () => {
        // A stream of transfers, one started every 150 ms; halfway through some frame the alpha of that
        // frame is killed, so what it buffered is never broadcast.
        const intervalMs = net.intervalSeconds * 1000;
        const waits: Promise<{ amount: number; code: number; stdout: string; stderr: string }>[] = [];
        const streamEnd = Date.now() + 3_000;
        const killAt = (Math.floor(Date.now() / intervalMs) + 2) * intervalMs + intervalMs / 2;
        const victim = net.servers[Math.floor(killAt / intervalMs) % 3]!;
        let killed = false;
        for (let i = 0; Date.now() < streamEnd; i++) {
          const amount = 100 + i;
          waits.push(send(amount, ["--wait"]).then((r) => ({ amount, ...r })));
          await new Promise((r) => setTimeout(r, 150));
          if (!killed && Date.now() >= killAt) {
            killed = true;
            await victim.stop("SIGKILL");
          }
        }
        assert.ok(killed);
        const results = await Promise.all(waits);
        for (const r of results) {
          assert.ok(r.code === 0 || r.code === 1, `definite exit code, got ${r.code}: ${r.stderr}`);
          if (r.code === 0) assert.match(r.stdout, /committed in frame \d+/);
          else assert.match(r.stderr, /Not committed|Refused/);
        }
        assert.ok(results.some((r) => r.code === 1), `some transfer was lost with the alpha\n${net.logs()}`);
        assert.ok(results.some((r) => r.code === 0), "transfers before and after the kill were committed");
        sent += results.filter((r) => r.code === 0).reduce((a, r) => a + r.amount, 0);
        const others = net.servers.filter((s) => s !== victim);
        const before = others[0]!.events("consensus").length;
        await net.until(
          "the other two keep agreeing",
          () =>
            others[0]!.events("consensus").slice(before).filter((l) => l.includes("agree=2/3")).length >= 2,
        );
        victim.start();
        await net.untilAgreed();
        const b = await balanceOf(net, bob.publicHex);
        assert.equal(
          b.balance,
          sent,
          `balance matches exactly the transfers reported committed\n${net.logs()}`,
        );
        assert.equal(b.agree, true);
      },
    );

    await t.step("a server whose data directory was wiped rejoins", async () => {
      await s3.stop();
      await Deno.remove(s3.dataDir, { recursive: true });
      s3.start();
      await net.untilAgreed();
      assert.equal((await balanceOf(net, bob.publicHex, s3.address)).balance, sent);
    });

    await t.step("every archive entry of every server holds the genesis supply and verifies", async () => {
      for (let i = 0; i < 3; i++) {
        const supplies = await archiveSupplies(net, i);
        assert.ok(supplies.length > 0);
        for (const s of supplies) assert.equal(s, net.genesisAmount);
        const v = await net.coin(["archive", "verify", "--dir", net.servers[i]!.archiveDir]);
        assert.equal(v.code, 0, v.stdout + v.stderr);
      }
    });
  } finally {
    await net.close();
  }
});
