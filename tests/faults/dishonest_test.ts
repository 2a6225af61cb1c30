// A dishonest server built on the real code (tests/faults/_liar_server.ts: lib/server.ts with the
// simulator's adversary rewriting what it sends) in real 3-, 4- and 5-server networks: it equivocates with
// correct digests, forges catch-ups and sends its proposals early, while a stream of transfers (with
// replays) goes to the honest servers. No fork, no rollback, no transfer applied twice, and every
// answer the honest servers gave is what their archives hold.
//
// 3 and 5 servers run with "dishonest": 0 (the 2Δ rule of b = 0, messages between the honest servers
// arriving well within a quarter of the interval on one machine); 4 servers with "dishonest": 1.

import assert from "node:assert/strict";
import {
  assertNoFork,
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

const LIAR = new URL("./_liar_server.ts", import.meta.url).pathname;
const LIES = "equivocate,forge_catchup,early_buffer";
const FUNDS = 1_000_000;
/** How long the stream runs with the liar in the network. */
const STREAM_MS = 12_000;

for (
  const { servers, dishonest } of [{ servers: 3, dishonest: 0 }, { servers: 4, dishonest: 1 }, {
    servers: 5,
    dishonest: 0,
  }]
) {
  Deno.test(`${servers} servers ("dishonest": ${dishonest}): a lying server built on the real code cannot fork, roll back or double-apply`, async (t) => {
    const net = await fundedNetwork({ servers, accounts: 4, funded: 4, amount: FUNDS, skew: 2 });
    const peers = JSON.parse(await Deno.readTextFile(net.peersFile));
    peers.dishonest = dishonest;
    await Deno.writeTextFile(net.peersFile, JSON.stringify(peers, null, 2));
    const liar = net.servers[servers - 1]!;
    liar.entry = [LIAR, "--lies", LIES, "--seed", String(servers)];
    const honest = net.servers.slice(0, -1).map((s) => s.index);
    const stream = new TransferStream(net, net.accounts, net.accounts);
    stream.only = honest;
    stream.replayEvery = 5;
    // Each honest server's committed frame, sampled: it never goes back.
    const rollbacks: string[] = [];
    let sampling = true;
    const sampler = (async () => {
      const last = new Map<number, number>();
      while (sampling) {
        for (const i of honest) {
          const s = await statusOf(net, i);
          if (s === undefined) continue;
          const frame = Number(s.committedFrame);
          if (frame < (last.get(i) ?? -1)) rollbacks.push(`s${i + 1}: ${last.get(i)} then ${frame}`);
          last.set(i, frame);
        }
        await sleep(200);
      }
    })();
    try {
      await t.step("the honest servers agree with the liar running", async () => {
        liar.start();
        await startNetwork(net, honest);
      });

      await t.step("a stream of transfers, relayed to the liar whenever it is the alpha", async () => {
        stream.start(40);
        await sleep(STREAM_MS);
        await stream.stop();
        await stream.settle();
        assert.deepEqual(stream.contradictions, [], "no honest server contradicts another on an outcome");
        assert.ok(stream.count("committed") > 50, `committed ${stream.count("committed")}`);
      });

      await t.step("the liar lied, and was caught at it", () => {
        const caught = honest.flatMap((i) =>
          net.servers[i]!.events("lying").filter((l) => l.includes(`from=${liar.name} `))
        );
        assert.ok(caught.length > 0, `an honest server logged ${liar.name} lying\n${net.logs()}`);
      });

      await t.step(
        "balances are exactly what the answered outcomes say, on every honest server",
        async () => {
          await untilAgreedOn(net, honest);
          const genesis = new Map(net.accounts.map((a) => [a.publicHex, FUNDS]));
          const expected = stream.expected(genesis);
          for (const i of honest) {
            for (const a of net.accounts) {
              assert.equal(await balanceOn(net, i, a.publicKey), expected.get(a.publicHex), `s${i + 1}`);
            }
          }
        },
      );

      await t.step(
        "no fork and no rollback: the honest archives verify and agree frame by frame",
        async () => {
          sampling = false;
          await sampler;
          assert.deepEqual(rollbacks, []);
          const archives = [];
          for (const i of honest) archives.push(await checkArchive(net, net.servers[i]!, 4 * FUNDS));
          assert.ok(assertNoFork(archives) >= 5, "frames compared between honest servers");
          console.log(
            `dishonest n=${servers} b=${dishonest}: ${stream.count("committed")} committed, ` +
              `${stream.count("never")} never, replays ${JSON.stringify(Object.fromEntries(stream.replays))}`,
          );
        },
      );
    } finally {
      sampling = false;
      await sampler;
      await stream.close();
      keepLogs(net, `dishonest-${servers}`);
      await net.close();
    }
  });
}
