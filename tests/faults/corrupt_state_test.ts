// Item 4 of the fault suite: a server's local state damaged while it was stopped. A damaged archive entry
// (a certified commit) or votes file is detected, set aside (renamed, never deleted), and the server
// re-syncs from the others.

import assert from "node:assert/strict";
import { readNetwork } from "../../lib/peers.ts";
import { VOTES_FILE } from "../../lib/votes_file.ts";
import {
  balanceOn,
  checkArchive,
  fundedNetwork,
  keepLogs,
  logFields,
  type ServerProcess,
  statusOf,
  type TestNetwork,
  untilAgreedOn,
} from "./_faults.ts";

const FUNDS = 1_000_000;

/** Archive entry file names of a server, newest first. */
async function entries(net: TestNetwork, s: ServerProcess): Promise<string[]> {
  const r = await net.coin(["archive", "ls", "--dir", s.archiveDir, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { file: string }[]).map((e) => e.file);
}

async function flipByte(path: string, at: (size: number) => number): Promise<void> {
  const bytes = await Deno.readFile(path);
  const i = at(bytes.length);
  bytes[i] = bytes[i]! ^ 0x01;
  await Deno.writeFile(path, bytes);
}

Deno.test("a corrupt archive entry is set aside and the server re-syncs", async (t) => {
  const net = await fundedNetwork({ servers: 3, accounts: 2, funded: 1, amount: FUNDS });
  const bob = net.accounts[1]!;
  const s2 = net.servers[1]!;
  let paid = 0;
  const send = async (amount: number) => {
    const r = await net.send(String(amount), { wait: true });
    assert.equal(r.code, 0, r.stderr + net.logs());
    paid += amount;
  };
  try {
    for (const s of net.servers) s.start();
    // peers.json's "start" lies a few seconds ahead (lib/devnet.ts firstFrameStart): until the network's
    // first frame, every server refuses transfers. Wait until all three committed a frame of their own.
    const { startFrame } = await readNetwork(net.peersFile);
    await net.until("the network's first frame is committed", async () => {
      const rows = await Promise.all([0, 1, 2].map((i) => statusOf(net, i)));
      return rows.every((r) => r !== undefined && Number(r.committedFrame) >= startFrame);
    }, 30_000);
    await untilAgreedOn(net, [0, 1, 2]);
    await send(10);
    await send(20);
    await untilAgreedOn(net, [0, 1, 2]);

    await t.step("a flipped byte in the newest entry: set aside, older entry loaded, re-synced", async () => {
      await s2.stop();
      const newest = (await entries(net, s2))[0]!;
      await flipByte(`${s2.archiveDir}/${newest}`, (n) => n - 3); // inside the recent ids at the end
      // Checked against the network's peers.json (./peers.json in the network's directory).
      const verify = await net.coin(["archive", "verify", "--dir", s2.archiveDir]);
      assert.equal(verify.code, 1, `verify names the damaged entry\n${verify.stdout}${verify.stderr}`);
      assert.match(verify.stdout, new RegExp(`^CORRUPT  ${newest.replace(".", "\\.")}: `, "m"));
      await send(5); // the others move on while s2 is down
      s2.start();
      await net.until("s2 logs the corrupt entry", () => s2.events("corrupt_entry_set_aside").length > 0);
      const line = s2.events("corrupt_entry_set_aside")[0]!;
      assert.equal(logFields(line).file, newest, line);
      const aside = await Deno.stat(`${s2.archiveDir}/${newest}.corrupt`);
      assert.ok(aside.isFile, "the damaged entry is kept as .corrupt");
      assert.ok(!(await entries(net, s2)).includes(newest), "and no longer counts as an entry");
      const start = logFields(s2.events("start").at(-1)!);
      assert.notEqual(start.loaded, newest, "an older entry was loaded");
      await net.until("s2 is sent the database", () => s2.events("catchup_received").length > 0);
      await untilAgreedOn(net, [0, 1, 2]);
      assert.equal(await balanceOn(net, 1, bob.publicKey), paid);
    });

    await t.step("every entry damaged: the server starts from the genesis and re-syncs", async () => {
      await s2.stop();
      // Byte 0 is the commit code: none of them is a commit any more.
      for (const name of await entries(net, s2)) await flipByte(`${s2.archiveDir}/${name}`, () => 0);
      const received = s2.events("catchup_received").length;
      s2.start();
      await net.until("s2 started", () => s2.events("start").length === 3);
      assert.equal(logFields(s2.events("start").at(-1)!).loaded, "genesis", s2.log);
      await net.until("s2 is sent the database", () => s2.events("catchup_received").length > received);
      await untilAgreedOn(net, [0, 1, 2]);
      assert.equal(await balanceOn(net, 1, bob.publicKey), paid);
    });

    await t.step(
      "a damaged votes file is set aside, the votes are lost, and the server still agrees",
      async () => {
        await s2.stop();
        await flipByte(`${s2.archiveDir}/${VOTES_FILE}`, (n) => n - 1);
        const before = s2.events("corrupt_entry_set_aside").length;
        const starts = s2.events("start").length;
        s2.start();
        await net.until(
          "s2 logs the damaged votes file",
          () =>
            s2.events("corrupt_entry_set_aside").slice(before).some((l) => logFields(l).file === VOTES_FILE),
        );
        assert.ok(
          (await Deno.stat(`${s2.archiveDir}/${VOTES_FILE}.corrupt`)).isFile,
          "kept as votes.corrupt",
        );
        await net.until("s2 started", () => s2.events("start").length > starts);
        const start = logFields(s2.events("start").at(-1)!);
        assert.equal(start.votes, "lost", s2.events("start").at(-1));
        assert.notEqual(start.loaded, "genesis", "its archive entries are sound and one was loaded");
        await send(7);
        await untilAgreedOn(net, [0, 1, 2]);
        assert.equal(await balanceOn(net, 1, bob.publicKey), paid);
        assert.ok((await Deno.stat(`${s2.archiveDir}/${VOTES_FILE}`)).isFile, "a new votes file is written");
      },
    );

    await t.step("every archive verifies and holds the genesis supply", async () => {
      for (const s of net.servers) await checkArchive(net, s, FUNDS);
      const corrupt = [...Deno.readDirSync(s2.archiveDir)].filter((e) => e.name.endsWith(".corrupt"));
      console.log(`corrupt state: ${corrupt.length} files set aside on s2, none deleted`);
    });
  } finally {
    keepLogs(net, "corrupt");
    await net.close();
  }
});
