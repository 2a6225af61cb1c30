// Item 5 of the fault suite: a lying server. The test process holds s5's listed key and, instead of
// running `coin serve`, speaks the peer protocol by hand: wrong hashes, catch-ups that do not match the
// consensus, a beta that sends different buffers to different servers, replays of earlier frames'
// messages and a buffer of forged and replayed transfers. The four honest servers keep agreeing, their
// balances are exactly those of the transfers they committed, and every lie is logged with its key.

import assert from "node:assert/strict";
import { alphaIndex } from "../../lib/frames.ts";
import { Ledger } from "../../lib/ledger.ts";
import { encodeCatchup, encodeVote, Kind, openPeerMessage } from "../../lib/wire.ts";
import {
  assertNoFork,
  balanceOn,
  checkArchive,
  fundedNetwork,
  keepLogs,
  Liar,
  makeTx,
  prefix,
  randomHash,
  type ServerProcess,
  sleep,
  startNetwork,
  statusOf,
  TransferStream,
  untilAgreedOn,
  untilFrameOffset,
} from "./_faults.ts";

const FUNDS = 1_000_000;
const HONEST = [0, 1, 2, 3];
const LIAR = 4;

/** Lines of `s`'s log for `event` that name the key `keyHex` (its first 16 hex digits). */
function loggedWithKey(s: ServerProcess, event: string, keyHex: string, since = 0): string[] {
  return s.log.slice(since).split("\n").filter((l) =>
    l.split(" ")[2] === event && l.includes(`key=${keyHex.slice(0, 16)}`)
  );
}

Deno.test("a lying server cannot change the honest majority's balances, and each lie is logged with its key", async (t) => {
  const net = await fundedNetwork({ servers: 5, accounts: 4, funded: 3, amount: FUNDS, skew: 2 });
  const liar = await Liar.create(net, LIAR);
  const liarKey = liar.keyPair.publicHex;
  const [alice, bob, carol, dave] = net.accounts as [
    typeof net.accounts[0],
    typeof net.accounts[0],
    typeof net.accounts[0],
    typeof net.accounts[0],
  ];
  const stream = new TransferStream(net, [alice, bob, carol], [alice, bob, carol]);
  const honest = HONEST.map((i) => net.servers[i]!);
  const marks = () => honest.map((s) => s.log.length);
  try {
    liar.listen();
    await startNetwork(net, HONEST);
    stream.start(250);

    await t.step("it reports wrong hashes: the four honest servers agree without it", async () => {
      const since = marks();
      for (let i = 0; i < 4; i++) {
        const f = await untilFrameOffset(100) - 1;
        for (const to of HONEST) await liar.send(to, [encodeVote(f, randomHash())]);
      }
      await sleep(1_500);
      for (const [k, s] of honest.entries()) {
        const lines = loggedWithKey(s, "disagreed", liarKey, since[k]);
        assert.ok(
          lines.length >= 3,
          `${s.name} logs the liar's wrong hashes with its key\n${s.log.slice(since[k])}`,
        );
        assert.ok(s.events("consensus").some((l) => l.includes("agree=4/5")), s.log);
      }
      await untilAgreedOn(net, HONEST);
    });

    await t.step("it sends catch-ups that do not match the consensus: refused and logged", async () => {
      const since = marks();
      // A database with every coin in the liar's pocket, and plain garbage, for the frame just agreed.
      const forged = Ledger.fromBalances([[dave.publicHex, 3 * FUNDS]]);
      const f = await untilFrameOffset(300) - 1;
      for (const to of HONEST) {
        await liar.send(to, encodeCatchup(f, forged.bytes, []));
        await liar.send(to, encodeCatchup(f, crypto.getRandomValues(new Uint8Array(96)), []));
      }
      // And while an honest server is out of sync and needs the real database, keep sending forgeries.
      const s4 = net.servers[3]!;
      await s4.stop();
      const left = (await statusOf(net, 0))?.committedHash;
      await net.until("the others agree on new transfers", async () => {
        const now = await statusOf(net, 0);
        return now?.committedHash !== left && Number(now?.accounts) > 0;
      });
      const received = s4.events("catchup_received").length;
      s4.start();
      const flood = (async () => {
        for (let i = 0; i < 12; i++) {
          const g = Math.floor(Date.now() / 1000);
          for (const frame of [g - 1, g]) {
            await liar.send(3, encodeCatchup(frame, forged.bytes, [])).catch(() => {});
          }
          await sleep(250);
        }
      })();
      await net.until("s4 is sent the real database", () => s4.events("catchup_received").length > received);
      await flood;
      await untilAgreedOn(net, HONEST);
      for (const [k, s] of honest.entries()) {
        if (s === s4) continue;
        assert.ok(
          loggedWithKey(s, "lying", liarKey, since[k]).some((l) => l.includes("catch-up")),
          `${s.name} logs the forged catch-up with the liar's key\n${s.log.slice(since[k])}`,
        );
      }
      assert.equal(await balanceOn(net, 3, dave.publicKey), 0, "the forged database was not adopted");
    });

    await t.step("as beta it sends different buffers to different servers: caught, no fork", async () => {
      const since = marks();
      // Wait for a frame whose alpha is the liar; at the start of the next frame it is the beta.
      let f = Math.floor(Date.now() / 1000);
      while (alphaIndex(f, 5) !== LIAR || f <= Math.floor(Date.now() / 1000)) f++;
      const txA = await makeTx(alice, dave.publicKey, 11, f * 1000 + 200);
      const txB = await makeTx(bob, dave.publicKey, 13, f * 1000 + 200);
      const voteA = await liar.sign([encodeVote(f, randomHash(), txA.bytes)]);
      const voteB = await liar.sign([encodeVote(f, randomHash(), txB.bytes)]);
      await sleep((f + 1) * 1000 + 20 - Date.now());
      await Promise.all([
        liar.sendRaw(0, voteA),
        liar.sendRaw(1, voteA),
        liar.sendRaw(2, voteB),
        liar.sendRaw(3, voteB),
      ]);
      await sleep(4_000);
      // A server that got both signed buffers (directly, or passed on by another) logs the liar. Which
      // ones do depends on which copy came first; at least one always does.
      const caught = honest.filter((s, k) =>
        loggedWithKey(s, "lying", liarKey, since[k]).some((l) => l.includes(`frame=${f}`))
      );
      assert.ok(caught.length > 0, `the two buffers signed for frame ${f} were caught\n${net.logs()}`);
      await untilAgreedOn(net, HONEST);
      const daves = await Promise.all(HONEST.map((i) => balanceOn(net, i, dave.publicKey)));
      assert.equal(new Set(daves).size, 1, `the honest servers agree on dave: ${daves}`);
      assert.ok([0, 11, 13].includes(daves[0]!), `each transfer applied at most once, not both: ${daves[0]}`);
      for (const s of honest) assert.equal(s.events("halt").length, 0, s.log);
    });

    await t.step(
      "it replays messages of earlier frames: dropped as stale and logged with the key",
      async () => {
        const since = marks();
        // Votes the honest servers sent the liar (it listens on s5's port) a few frames ago.
        const old = liar.received.filter((m) => m.body[0] === Kind.peer && Date.now() - m.atMs > 4_000).slice(
          -8,
        );
        assert.ok(old.length > 0, "the liar kept some honest votes");
        for (const m of old) {
          for (const to of HONEST) await liar.sendRaw(to, [prefix(m.body.length), m.body]);
        }
        // Its own signed vote of an earlier frame, too.
        const stale = Math.floor(Date.now() / 1000) - 5;
        for (const to of HONEST) await liar.send(to, [encodeVote(stale, randomHash())]);
        await sleep(500);
        for (const [k, s] of honest.entries()) {
          const dropped = s.log.slice(since[k]).split("\n").filter((l) =>
            l.split(" ")[2] === "dropped" && l.includes("stale")
          );
          assert.ok(dropped.length > 0, `${s.name} drops the replays\n${s.log.slice(since[k])}`);
          assert.ok(
            loggedWithKey(s, "dropped", liarKey, since[k]).some((l) => l.includes(`frame=${stale}`)),
            `${s.name} names the liar's key`,
          );
          // A replayed vote is logged with the key of the server that signed it.
          const signers = old.map((m) => openPeerMessage(m.body, () => true)).flatMap((o) =>
            "sender" in o && o.sender ? [o.sender] : []
          );
          assert.ok(signers.some((key) => dropped.some((l) => l.includes(`key=${key.slice(0, 16)}`))));
        }
        await untilAgreedOn(net, HONEST);
      },
    );

    await t.step(
      "as beta it broadcasts a forged transfer among others: the buffer counts as empty",
      async () => {
        // A committed transfer to replay: the stream's latest.
        const committed = stream.txs.findLast((x) => x.state === "committed");
        assert.ok(committed !== undefined);
        let f = Math.floor(Date.now() / 1000);
        while (alphaIndex(f, 5) !== LIAR || f <= Math.floor(Date.now() / 1000)) f++;
        const good = await makeTx(carol, dave.publicKey, 1_000, f * 1000 + 100);
        const forged = new Uint8Array(good.bytes);
        forged[8 + 7] = 0xff; // the amount, after signing: the signature no longer verifies
        const tooMuch = await makeTx(alice, dave.publicKey, 10 * FUNDS, f * 1000 + 100);
        const before = await balanceOn(net, 0, dave.publicKey);
        await sleep((f + 1) * 1000 + 20 - Date.now());
        const buffer = new Uint8Array([...forged, ...committed.tx.bytes, ...tooMuch.bytes]);
        const vote = await liar.sign([encodeVote(f, randomHash(), buffer)]);
        for (const to of HONEST) await liar.sendRaw(to, vote);
        await sleep(2_500);
        await untilAgreedOn(net, HONEST);
        for (const i of HONEST) assert.equal(await balanceOn(net, i, dave.publicKey), before);
        for (const s of honest) {
          const line = s.events("consensus").find((l) => l.includes(`frame=${f} `));
          assert.ok(
            line !== undefined && /agree=4\/5/.test(line) && /applied=0/.test(line),
            `${s.name}: ${line}`,
          );
          // One bad signature proves the beta dishonest: the whole buffer counts as empty, checking
          // stopped there, and the lie is logged once with the liar's key.
          assert.match(line, / txs=0 /);
          const lies = loggedWithKey(s, "lying", liarKey).filter((l) => l.includes(`frame=${f} `));
          assert.equal(lies.length, 1, s.log);
          assert.match(lies[0]!, /transfer 0 has a signature that does not verify/);
        }
      },
    );

    await t.step("the honest balances are exactly the committed transfers; archives verify", async () => {
      await stream.stop();
      await stream.settle();
      assert.deepEqual(stream.contradictions, []);
      await sleep(1_000);
      await untilAgreedOn(net, HONEST);
      const genesis = new Map([alice, bob, carol].map((a) => [a.publicHex, FUNDS]));
      const expected = stream.expected(genesis);
      // Dave got at most one of the equivocating beta's transfers; take it from the balances.
      const dave0 = await balanceOn(net, 0, dave.publicKey);
      if (dave0 === 11) expected.set(alice.publicHex, expected.get(alice.publicHex)! - 11);
      if (dave0 === 13) expected.set(bob.publicHex, expected.get(bob.publicHex)! - 13);
      for (const i of HONEST) {
        for (const a of [alice, bob, carol]) {
          assert.equal(await balanceOn(net, i, a.publicKey), expected.get(a.publicHex), `s${i + 1}`);
        }
      }
      for (const s of honest) await checkArchive(net, s, 3 * FUNDS);
      const lies = honest.map((s) =>
        `${s.name} lying=${loggedWithKey(s, "lying", liarKey).length} ` +
        `disagreed=${loggedWithKey(s, "disagreed", liarKey).length}`
      );
      console.log(`liar: ${stream.count("committed")} transfers committed; ${lies.join(", ")}`);
    });
  } finally {
    await stream.close();
    await liar.close();
    keepLogs(net, "liar");
    await net.close();
  }
});

Deno.test("with three servers, a beta that signs two buffers costs a frame, never a fork", async () => {
  const net = await fundedNetwork({ servers: 3, accounts: 3, funded: 2, amount: FUNDS, skew: 2 });
  const liar = await Liar.create(net, 2);
  const [alice, bob, dave] = net.accounts as [
    typeof net.accounts[0],
    typeof net.accounts[0],
    typeof net.accounts[0],
  ];
  const stream = new TransferStream(net, [alice, bob], [alice, bob]);
  const honest = [net.servers[0]!, net.servers[1]!];
  try {
    liar.listen();
    await startNetwork(net, [0, 1]);
    stream.start(150);
    await sleep(2_000);
    let f = Math.floor(Date.now() / 1000);
    while (alphaIndex(f, 3) !== 2 || f <= Math.floor(Date.now() / 1000)) f++;
    const txA = await makeTx(alice, dave.publicKey, 11, f * 1000 + 200);
    const txB = await makeTx(bob, dave.publicKey, 13, f * 1000 + 200);
    const voteA = await liar.sign([encodeVote(f, randomHash(), txA.bytes)]);
    const voteB = await liar.sign([encodeVote(f, randomHash(), txB.bytes)]);
    await sleep((f + 1) * 1000 + 20 - Date.now());
    await Promise.all([liar.sendRaw(0, voteA), liar.sendRaw(1, voteB)]);
    // Then the liar falls silent: the two honest servers must agree with each other alone.
    await sleep(8_000);
    assert.ok(
      honest.some((s) =>
        loggedWithKey(s, "lying", liar.keyPair.publicHex).some((l) => l.includes(`frame=${f}`))
      ),
      `the two buffers were caught\n${net.logs()}`,
    );
    for (const s of honest) assert.equal(s.events("halt").length, 0, `${s.name} did not stop\n${s.log}`);
    await stream.stop();
    await stream.settle();
    await untilAgreedOn(net, [0, 1]);
    const expected = stream.expected(new Map([alice, bob].map((a) => [a.publicHex, FUNDS])));
    const daveGot = await balanceOn(net, 0, dave.publicKey);
    assert.ok([0, 11, 13].includes(daveGot), `at most one of the two buffers was applied: ${daveGot}`);
    if (daveGot === 11) expected.set(alice.publicHex, expected.get(alice.publicHex)! - 11);
    if (daveGot === 13) expected.set(bob.publicHex, expected.get(bob.publicHex)! - 13);
    for (const i of [0, 1]) {
      for (const a of [alice, bob]) {
        assert.equal(await balanceOn(net, i, a.publicKey), expected.get(a.publicHex), `s${i + 1}`);
      }
    }
    const archives = [];
    for (const s of honest) archives.push(await checkArchive(net, s, 2 * FUNDS));
    assertNoFork(archives);
    const lost = honest.map((s) => s.events("no_consensus").length);
    console.log(`liar, three servers: frames without consensus per honest server: ${lost.join(", ")}`);
  } finally {
    await stream.close();
    await liar.close();
    keepLogs(net, "liar3");
    await net.close();
  }
});
