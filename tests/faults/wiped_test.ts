// Two of three servers lose their data directories and restart empty: they catch up to the third's
// certified history instead of agreeing on the genesis again and overwriting it.
//
// With more than n − q servers amnesic the network then stops for good (SECURITY.md: nobody can know what
// their lost votes decided), so this test checks what the two adopt, not that frames go on.

import assert from "node:assert/strict";
import { balanceOn, checkArchive, fundedNetwork, keepLogs, startNetwork, statusOf } from "./_faults.ts";

const FUNDS = 1_000_000;

Deno.test("two of three servers restarted on empty data directories adopt the third's history, not the genesis", async () => {
  const net = await fundedNetwork({ servers: 3, accounts: 2, funded: 1, amount: FUNDS });
  const [alice, bob] = net.accounts;
  const keeper = net.servers[2]!;
  // The third stays up without a quorum rather than stopping with status 3.
  keeper.extraArgs = ["--wait-for-quorum"];
  try {
    await startNetwork(net, [0, 1, 2]);
    for (const amount of [1_000, 2_000, 3_000]) {
      const r = await net.send(String(amount), { from: 1, to: bob!.publicHex, wait: true });
      assert.equal(r.code, 0, r.stdout + r.stderr);
    }
    const before = await statusOf(net, 2);
    assert.ok(before !== undefined);
    assert.equal(await balanceOn(net, 2, bob!.publicKey), 6_000);

    for (const s of net.servers.slice(0, 2)) {
      await s.stop("SIGKILL");
      await Deno.remove(s.dataDir, { recursive: true });
    }
    const kept = await statusOf(net, 2);
    assert.ok(kept !== undefined, "the third is still up");
    for (const s of net.servers.slice(0, 2)) s.start();

    for (const i of [0, 1]) {
      await net.until(`s${i + 1} adopts s3's certified state`, async () => {
        const s = await statusOf(net, i);
        return s !== undefined && s.committedHash === kept.committedHash;
      }, 30_000);
      assert.equal(await balanceOn(net, i, bob!.publicKey), 6_000, `s${i + 1}: bob's coins`);
      assert.equal(await balanceOn(net, i, alice!.publicKey), FUNDS - 6_000, `s${i + 1}: alice's coins`);
      assert.ok(net.servers[i]!.events("amnesic").length > 0, `s${i + 1} knew it lost its votes`);
    }
    // Nobody went back to the genesis: the keeper's archive is intact, and no archive holds a state
    // without bob's coins after the transfers.
    assert.equal(await balanceOn(net, 2, bob!.publicKey), 6_000);
    for (const s of net.servers) await checkArchive(net, s, FUNDS);
  } finally {
    keepLogs(net, "wiped");
    await net.close();
  }
});
