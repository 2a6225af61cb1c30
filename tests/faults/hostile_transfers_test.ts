// Item 7 of the fault suite: hostile transfers through `coin sign` and `coin submit`. Bad amounts, paying
// oneself, a payer without an account, insufficient funds, a flipped byte, timestamps out of the window,
// and one signed transfer submitted twice (to one server, to two servers, and in a later frame). Each
// gets its own code, and nothing is applied twice.

import assert from "node:assert/strict";
import { toHex } from "../../lib/_bytes.ts";
import { readKeyFile } from "../../lib/keys.ts";
import { signTx } from "../../lib/tx.ts";
import {
  balanceOn,
  checkArchive,
  type CoinResult,
  fundedNetwork,
  keepLogs,
  sleep,
  startNetwork,
  untilAgreedOn,
  untilFrameOffset,
} from "./_faults.ts";

const FUNDS = 1_000_000;

Deno.test("hostile transfers each get their own code and nothing is applied twice", async (t) => {
  const net = await fundedNetwork({ servers: 3, accounts: 4, funded: 1, amount: FUNDS });
  const [alice, bob, carol, dave] = net.accounts as [
    typeof net.accounts[0],
    typeof net.accounts[0],
    typeof net.accounts[0],
    typeof net.accounts[0],
  ];
  const key = (a: typeof alice) => `${net.dir}/a${net.accounts.indexOf(a) + 1}.key`;
  const sign = async (payer: typeof alice, amount: string, extra: string[] = []) =>
    await net.coin(["sign", "--key", key(payer), "--to", bob.publicHex, "--amount", amount, ...extra]);
  const submit = async (hex: string, extra: string[] = []) =>
    await net.coin(["submit", "--peers", net.peersFile, ...extra, hex]);
  const refusedWith = (r: CoinResult, code: string) => {
    assert.equal(r.code, 1, `exit 1 for ${code}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`Refused: ${code}:`), r.stderr);
  };
  let paidToBob = 0;
  try {
    await startNetwork(net, [0, 1, 2]);

    await t.step("coin sign refuses the amounts 0, -5, 1.5, 2^53 and abc", async () => {
      refusedWith(await sign(alice, "0"), "amount_must_be_positive");
      refusedWith(
        await net.coin(["sign", "--key", key(alice), "--to", bob.publicHex, "--amount=-5"]),
        "amount_must_be_positive",
      );
      const dash = await sign(alice, "-5");
      assert.equal(dash.code, 2, "a value starting with - is a usage error");
      assert.match(dash.stderr, /write --amount=-5/);
      for (const text of ["1.5", "abc"]) {
        const r = await sign(alice, text);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /expected a whole number/);
      }
      refusedWith(await sign(alice, String(2 ** 53)), "amount_too_large");
      refusedWith(
        await net.coin(["sign", "--key", key(alice), "--to", alice.publicHex, "--amount", "5"]),
        "accounts_must_be_different",
      );
    });

    await t.step("transfers signed by hand with those faults are refused by the servers", async () => {
      const payer = await readKeyFile(key(alice));
      const now = Date.now();
      const cases: [string, Uint8Array][] = [
        ["amount_must_be_positive", await signTx(payer, { to: bob.publicKey, amount: 0, timestampMs: now })],
        ["amount_too_large", await signTx(payer, { to: bob.publicKey, amount: 2n ** 53n, timestampMs: now })],
        [
          "amount_too_large",
          await signTx(payer, { to: bob.publicKey, amount: 2n ** 64n - 5n, timestampMs: now }),
        ],
        [
          "accounts_must_be_different",
          await signTx(payer, { to: alice.publicKey, amount: 5, timestampMs: now }),
        ],
      ];
      for (const [code, bytes] of cases) refusedWith(await submit(toHex(bytes)), code);
      refusedWith(await submit("00".repeat(100)), "malformed");
    });

    await t.step("a payer with no account, and one without enough funds", async () => {
      refusedWith(await submit((await sign(carol, "5")).stdout.trim()), "payer_not_found");
      // Give dave 10 coins, then let him try to pay 11.
      const fund = await net.coin([
        "send",
        "--peers",
        net.peersFile,
        "--key",
        key(alice),
        "--to",
        dave.publicHex,
        "--amount",
        "10",
        "--wait",
      ]);
      assert.equal(fund.code, 0, fund.stderr);
      refusedWith(await submit((await sign(dave, "11")).stdout.trim()), "insufficient_funds");
    });

    await t.step("one flipped byte anywhere in the signed part or the signature", async () => {
      const hex = (await sign(alice, "7")).stdout.trim();
      // Byte 15 (the amount), byte 40 (the payee), byte 100 (the signature).
      for (const byte of [15, 40, 100]) {
        // The high digit of the byte: the amount becomes 23, not 0 (which has a code of its own).
        const digit = hex[2 * byte]!;
        const flipped = hex.slice(0, 2 * byte) + (digit === "0" ? "1" : "0") + hex.slice(2 * byte + 1);
        refusedWith(await submit(flipped), "signature_invalid");
      }
    });

    await t.step("timestamps 10 s old and 10 s ahead", async () => {
      const old = (await sign(alice, "8", ["--timestamp", String(Date.now() - 10_000)])).stdout.trim();
      refusedWith(await submit(old), "timestamp_too_old");
      const ahead = (await sign(alice, "8", ["--timestamp", String(Date.now() + 10_000)])).stdout.trim();
      refusedWith(await submit(ahead), "timestamp_in_future");
    });

    await t.step("the same signed transfer twice to one server, and to two servers", async () => {
      for (const servers of [["0", "0"], ["0", "1"]]) {
        const hex = (await sign(alice, "20")).stdout.trim();
        // Both at once, early in a frame, so both reach the same alpha.
        await untilFrameOffset(30);
        const results = await Promise.all(
          servers.map((i) => submit(hex, ["--server", `127.0.0.1:${net.ports[Number(i)]}`])),
        );
        // Both exit 0: one is accepted, the other finds the transfer already held (it is not refused).
        const all = results.map((r) => `${r.code} ${r.stderr}`).join("\n");
        assert.deepEqual(results.map((r) => r.code), [0, 0], all);
        assert.equal(results.filter((r) => /^accepted by /.test(r.stderr)).length, 1, all);
        assert.equal(results.filter((r) => /^already held by the network/.test(r.stderr)).length, 1, all);
        paidToBob += 20;
      }
    });

    await t.step("the same signed transfer again in a later frame", async () => {
      const hex = (await sign(alice, "30")).stdout.trim();
      const first = await submit(hex, ["--wait"]);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /committed in frame (\d+)/);
      paidToBob += 30;
      const frame = first.stdout.match(/committed in frame (\d+)/)![1];
      // Still inside its time window: every server holds it, and --wait reports its real outcome.
      for (const i of [0, 1, 2]) {
        const again = await submit(hex, ["--server", `127.0.0.1:${net.ports[i]}`, "--wait"]);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stderr, /^already held by the network/, again.stderr);
        assert.match(again.stdout, new RegExp(`committed in frame ${frame}`));
      }
      // Once its window has passed it is too old to submit again; --wait still finds it committed.
      await sleep(6_500);
      refusedWith(await submit(hex), "timestamp_too_old");
      const late = await submit(hex, ["--wait"]);
      assert.equal(late.code, 0, late.stderr);
      assert.match(late.stdout, new RegExp(`committed in frame ${frame}`));
    });

    await t.step(
      "bob got exactly what was accepted, once; the archives hold the genesis supply",
      async () => {
        await sleep(1_500);
        await untilAgreedOn(net, [0, 1, 2]);
        for (const i of [0, 1, 2]) {
          assert.equal(await balanceOn(net, i, bob.publicKey), paidToBob, `s${i + 1}`);
          assert.equal(await balanceOn(net, i, dave.publicKey), 10);
          assert.equal(await balanceOn(net, i, carol.publicKey), 0);
          assert.equal(await balanceOn(net, i, alice.publicKey), FUNDS - paidToBob - 10);
        }
        for (const s of net.servers) await checkArchive(net, s, FUNDS);
      },
    );
  } finally {
    keepLogs(net, "hostile-transfers");
    await net.close();
  }
});
