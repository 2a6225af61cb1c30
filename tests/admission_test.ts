// Tests of lib/admission.ts: the alpha's buffer and the checks a transfer passes before it joins it
// (clock first, then the stateless rules, duplicates, the payer's funds counting the buffer, the limit).

import assert from "node:assert/strict";
import { admit, type AlphaBuffer, newAlphaBuffer } from "../lib/admission.ts";
import { genesisState, type State } from "../lib/ledger.ts";
import { decodeTx, type Tx } from "../lib/tx.ts";
import { MAX_FRAME_TXS } from "../lib/wire.ts";
import { makeKeyPair, signTransfer } from "./_helpers.ts";

const NOW = 1_700_000_000_000;
const SKEW = 5_000;

const alice = await makeKeyPair(1);
const bob = await makeKeyPair(2);
const carol = await makeKeyPair(3);

const STATE: State = genesisState([[alice.publicHex, 1000], [bob.publicHex, 10]]);

function context(options: { nowMs?: number; seen?: (id: string) => boolean; state?: State } = {}) {
  return {
    nowMs: options.nowMs ?? NOW,
    skewMs: SKEW,
    state: options.state ?? STATE,
    seen: options.seen ?? (() => false),
  };
}

/** A copy of `tx` with one bit of its signature flipped. */
function tampered(tx: Tx): Tx {
  const bytes = tx.bytes.slice();
  bytes[100]! ^= 1;
  return decodeTx(bytes)!;
}

function assertUnchanged(buffer: AlphaBuffer, txs: readonly Tx[]): void {
  assert.deepEqual(buffer.txs.map((t) => t.id), txs.map((t) => t.id));
  assert.equal(buffer.ids.size, txs.length);
}

Deno.test("newAlphaBuffer() is empty", () => {
  const buffer = newAlphaBuffer();
  assert.deepEqual(buffer.txs, []);
  assert.equal(buffer.ids.size, 0);
  assert.equal(buffer.deltas.size, 0);
});

Deno.test("admit() adds a valid transfer with its id, its balance changes and its checked signature", async () => {
  const buffer = newAlphaBuffer();
  const tx = await signTransfer(alice, bob, { amount: 300, timestampMs: NOW });
  assert.equal(admit(buffer, tx, context()), undefined);
  assert.deepEqual(buffer.txs, [tx]);
  assert.deepEqual([...buffer.ids], [tx.id]);
  assert.deepEqual([...buffer.deltas], [[alice.publicHex, -300], [bob.publicHex, 300]]);
  assert.ok(buffer.verified.has(tx));
});

Deno.test("admit() accepts timestamps from now - skew to now + skew", async () => {
  const buffer = newAlphaBuffer();
  const earliest = await signTransfer(alice, bob, { amount: 1, timestampMs: NOW - SKEW });
  const latest = await signTransfer(alice, bob, { amount: 1, timestampMs: NOW + SKEW });
  assert.equal(admit(buffer, earliest, context()), undefined);
  assert.equal(admit(buffer, latest, context()), undefined);
  assert.equal(buffer.txs.length, 2);
});

Deno.test("admit() refuses a timestamp outside the skew with its code", async () => {
  const buffer = newAlphaBuffer();
  const old = await signTransfer(alice, bob, { amount: 1, timestampMs: NOW - SKEW - 1 });
  const future = await signTransfer(alice, bob, { amount: 1, timestampMs: NOW + SKEW + 1 });
  assert.equal(admit(buffer, old, context()), "timestamp_too_old");
  assert.equal(admit(buffer, future, context()), "timestamp_in_future");
  assertUnchanged(buffer, []);
});

Deno.test("admit() checks the clock before the signature", async () => {
  const stale = tampered(await signTransfer(alice, bob, { amount: 1, timestampMs: NOW - SKEW - 1 }));
  assert.equal(admit(newAlphaBuffer(), stale, context()), "timestamp_too_old");
});

Deno.test("admit() refuses a transfer breaking a stateless rule with its code", async (t) => {
  const cases: [string, () => Promise<Tx>, string][] = [
    [
      "an amount of 0",
      () => signTransfer(alice, bob, { amount: 0, timestampMs: NOW }),
      "amount_must_be_positive",
    ],
    [
      "an amount above 2^53 - 1",
      () => signTransfer(alice, bob, { amount: 2n ** 53n, timestampMs: NOW }),
      "amount_too_large",
    ],
    [
      "a payment to oneself",
      () => signTransfer(alice, alice, { amount: 1, timestampMs: NOW }),
      "accounts_must_be_different",
    ],
    [
      "a broken signature",
      async () => tampered(await signTransfer(alice, bob, { amount: 1, timestampMs: NOW })),
      "signature_invalid",
    ],
  ];
  for (const [what, make, code] of cases) {
    await t.step(`for ${what}`, async () => {
      const buffer = newAlphaBuffer();
      assert.equal(admit(buffer, await make(), context()), code);
      assertUnchanged(buffer, []);
      assert.equal(buffer.deltas.size, 0);
    });
  }
});

Deno.test("admit() refuses a transfer already in the buffer as a duplicate", async () => {
  const buffer = newAlphaBuffer();
  const tx = await signTransfer(alice, bob, { amount: 5, timestampMs: NOW });
  assert.equal(admit(buffer, tx, context()), undefined);
  assert.equal(admit(buffer, decodeTx(tx.bytes.slice())!, context()), "duplicate");
  assertUnchanged(buffer, [tx]);
  assert.equal(buffer.deltas.get(alice.publicHex), -5, "charged once");
});

Deno.test("admit() refuses a transfer the replica has seen elsewhere as a duplicate", async () => {
  const tx = await signTransfer(alice, bob, { amount: 5, timestampMs: NOW });
  const asked: string[] = [];
  const buffer = newAlphaBuffer();
  const code = admit(buffer, tx, context({ seen: (id) => (asked.push(id), id === tx.id) }));
  assert.equal(code, "duplicate");
  assert.deepEqual(asked, [tx.id]);
  assertUnchanged(buffer, []);
});

Deno.test("admit() refuses a payer with no balance and nothing received in the buffer", async () => {
  const buffer = newAlphaBuffer();
  const tx = await signTransfer(carol, alice, { amount: 1, timestampMs: NOW });
  assert.equal(admit(buffer, tx, context()), "payer_not_found");
  assertUnchanged(buffer, []);
});

Deno.test("admit() lets a payee of an earlier transfer in the buffer pay what it received", async () => {
  const buffer = newAlphaBuffer();
  const toCarol = await signTransfer(alice, carol, { amount: 40, timestampMs: NOW });
  const fromCarol = await signTransfer(carol, bob, { amount: 40, timestampMs: NOW });
  const tooMuch = await signTransfer(carol, bob, { amount: 1, timestampMs: NOW + 1 });
  assert.equal(admit(buffer, toCarol, context()), undefined);
  assert.equal(admit(buffer, fromCarol, context()), undefined);
  assert.equal(admit(buffer, tooMuch, context()), "insufficient_funds");
  assertUnchanged(buffer, [toCarol, fromCarol]);
  assert.equal(buffer.deltas.get(carol.publicHex), 0);
  assert.equal(buffer.deltas.get(alice.publicHex), -40);
  assert.equal(buffer.deltas.get(bob.publicHex), 40);
});

Deno.test("admit() counts earlier buffered spending against the payer's stored balance", async () => {
  const buffer = newAlphaBuffer();
  const first = await signTransfer(alice, bob, { amount: 600, timestampMs: NOW });
  const second = await signTransfer(alice, carol, { amount: 600, timestampMs: NOW });
  const rest = await signTransfer(alice, carol, { amount: 400, timestampMs: NOW });
  assert.equal(admit(buffer, first, context()), undefined);
  assert.equal(admit(buffer, second, context()), "insufficient_funds");
  assert.equal(admit(buffer, rest, context()), undefined, "exactly the balance left");
  assertUnchanged(buffer, [first, rest]);
  assert.equal(buffer.deltas.get(alice.publicHex), -1000);
});

Deno.test("admit() counts money received in the buffer toward a funded payer's balance", async () => {
  const buffer = newAlphaBuffer();
  const toBob = await signTransfer(alice, bob, { amount: 90, timestampMs: NOW });
  const fromBob = await signTransfer(bob, carol, { amount: 100, timestampMs: NOW });
  assert.equal(admit(buffer, fromBob, context()), "insufficient_funds", "bob holds only 10");
  assert.equal(admit(buffer, toBob, context()), undefined);
  assert.equal(admit(buffer, fromBob, context()), undefined);
  assert.equal(buffer.deltas.get(bob.publicHex), -10);
});

Deno.test("admit() refuses a transfer once the buffer holds MAX_FRAME_TXS", async () => {
  const buffer = newAlphaBuffer();
  buffer.txs.length = MAX_FRAME_TXS; // a sparse array: the limit without a million signatures
  const tx = await signTransfer(alice, bob, { amount: 1, timestampMs: NOW });
  assert.equal(admit(buffer, tx, context()), "frame_full");
  assert.equal(buffer.txs.length, MAX_FRAME_TXS);
  assert.equal(buffer.ids.size, 0);
  assert.equal(buffer.deltas.size, 0);
});

Deno.test("admit() judges the payer against the state it is given", async () => {
  const tx = await signTransfer(carol, alice, { amount: 7, timestampMs: NOW });
  const funded = genesisState([[carol.publicHex, 7]]);
  assert.equal(admit(newAlphaBuffer(), tx, context()), "payer_not_found");
  assert.equal(admit(newAlphaBuffer(), tx, context({ state: funded })), undefined);
});
