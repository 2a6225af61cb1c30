// Tests of lib/tx.ts: the 144-byte layout, decoding, signing and each stateless refusal code.

import { encodeAddress } from "../lib/address.ts";
import assert from "node:assert/strict";
import { toHex } from "../lib/_bytes.ts";
import { sha256Hex } from "../lib/hash.ts";
import {
  checkTimestamp,
  checkTxStateless,
  decodeTx,
  decodeTxHex,
  MAX_AMOUNT,
  signTx,
  TX_BYTES,
  TX_CODES,
  TX_SIGNED_BYTES,
  txToJson,
  verifyTx,
} from "../lib/tx.ts";
import { makeAccount, makeKeyPair, signTransfer } from "./_helpers.ts";

const T0 = 1_700_000_000_000;
const alice = await makeKeyPair(1);
const bob = await makeKeyPair(2);

Deno.test("signTx() lays out timestamp, amount, payee, payer and signature big-endian", async () => {
  const bytes = await signTx(alice, { to: bob.publicKey, amount: 0x0102_0304, timestampMs: T0 });
  assert.equal(bytes.length, TX_BYTES);
  const view = new DataView(bytes.buffer);
  assert.equal(view.getBigUint64(0), BigInt(T0));
  assert.deepEqual(bytes.subarray(8, 16), Uint8Array.of(0, 0, 0, 0, 1, 2, 3, 4));
  assert.deepEqual(bytes.subarray(16, 48), bob.publicKey);
  assert.deepEqual(bytes.subarray(48, 80), alice.publicKey);
  assert.equal(TX_SIGNED_BYTES, 80);
});

Deno.test("decodeTx() reads back every field signTx() wrote", async () => {
  const bytes = await signTx(alice, { to: bob.publicKey, amount: 1234, timestampMs: T0 });
  const tx = decodeTx(bytes)!;
  assert.equal(tx.timestampMs, T0);
  assert.equal(tx.amount, 1234);
  assert.equal(tx.amountRaw, 1234n);
  assert.deepEqual(tx.payee, bob.publicKey);
  assert.deepEqual(tx.payer, alice.publicKey);
  assert.deepEqual(tx.signature, bytes.subarray(80, 144));
  assert.equal(tx.bytes, bytes);
  assert.equal(tx.id, sha256Hex(bytes.subarray(0, 80)), "the id is the hash of the signed part");
  assert.equal(verifyTx(tx), true);
  assert.equal(checkTxStateless(tx), undefined);
});

Deno.test("signTx() is deterministic, so a transfer and its id are reproducible", async () => {
  const fields = { to: bob.publicKey, amount: 5, timestampMs: T0 };
  assert.deepEqual(await signTx(alice, fields), await signTx(alice, fields));
});

Deno.test("signTx() throws RangeError for a payee that is not 32 bytes", async () => {
  await assert.rejects(
    () => signTx(alice, { to: new Uint8Array(31), amount: 1, timestampMs: T0 }),
    RangeError,
  );
});

Deno.test("decodeTx() returns undefined for any length but 144", () => {
  for (const length of [0, 80, 143, 145, 288]) assert.equal(decodeTx(new Uint8Array(length)), undefined);
});

Deno.test("decodeTxHex() decodes 288 hex digits in either case with surrounding whitespace", async () => {
  const bytes = await signTx(alice, { to: bob.publicKey, amount: 9, timestampMs: T0 });
  const hex = toHex(bytes);
  for (const text of [hex, hex.toUpperCase(), ` ${hex}\n`, `\t${hex}\r\n`]) {
    const tx = decodeTxHex(text);
    assert.ok(tx !== undefined);
    assert.deepEqual(tx.bytes, bytes);
    assert.equal(checkTxStateless(tx), undefined);
  }
});

Deno.test("decodeTxHex() returns undefined for a malformed transfer", async (t) => {
  const hex = toHex(await signTx(alice, { to: bob.publicKey, amount: 9, timestampMs: T0 }));
  assert.ok(TX_CODES.malformed.includes("144 bytes"));
  const cases: [string, string][] = [
    ["the empty string", ""],
    ["one byte short", hex.slice(0, -2)],
    ["one byte too many", hex + "00"],
    ["an odd number of digits", hex.slice(0, -1)],
    ["a digit that is not hex", "g" + hex.slice(1)],
    ["whitespace inside", hex.slice(0, 100) + " " + hex.slice(101)],
    ["a 0x prefix", "0x" + hex.slice(2)],
  ];
  for (const [what, text] of cases) {
    await t.step(`with ${what}`, () => assert.equal(decodeTxHex(text), undefined));
  }
});

Deno.test("checkTxStateless() refuses a zero amount with amount_must_be_positive", async () => {
  const tx = await signTransfer(alice, bob, { amount: 0, timestampMs: T0 });
  assert.equal(checkTxStateless(tx), "amount_must_be_positive");
});

Deno.test("checkTxStateless() refuses an amount above 2^53 - 1 with amount_too_large", async () => {
  for (const amount of [2n ** 53n, 2n ** 63n, 2n ** 64n - 1n]) {
    const tx = await signTransfer(alice, bob, { amount, timestampMs: T0 });
    assert.equal(tx.amountRaw, amount);
    assert.equal(verifyTx(tx), true, "the signature itself is fine");
    assert.equal(checkTxStateless(tx), "amount_too_large");
  }
});

Deno.test("checkTxStateless() accepts exactly 2^53 - 1 and 1", async () => {
  for (const amount of [MAX_AMOUNT, 1]) {
    const tx = await signTransfer(alice, bob, { amount, timestampMs: T0 });
    assert.equal(tx.amount, amount);
    assert.equal(checkTxStateless(tx), undefined);
  }
});

Deno.test("checkTxStateless() refuses a transfer to oneself with accounts_must_be_different", async () => {
  const tx = await signTransfer(alice, alice, { amount: 1, timestampMs: T0 });
  assert.equal(verifyTx(tx), true);
  assert.equal(checkTxStateless(tx), "accounts_must_be_different");
});

Deno.test("checkTxStateless() refuses a single flipped byte anywhere in the 144 bytes", async (t) => {
  const original = await signTx(alice, { to: bob.publicKey, amount: 1000, timestampMs: T0 });
  const flipped = (index: number, mask: number) => {
    const bytes = original.slice();
    bytes[index]! ^= mask;
    return decodeTx(bytes)!;
  };

  await t.step("in the signed part, signature_invalid unless the amount became out of range", () => {
    for (let i = 0; i < TX_SIGNED_BYTES; i++) {
      for (const mask of [0x01, 0x80]) {
        const tx = flipped(i, mask);
        assert.equal(verifyTx(tx), false, `byte ${i} mask ${mask}`);
        const expected = tx.amountRaw > BigInt(MAX_AMOUNT) ? "amount_too_large" : "signature_invalid";
        assert.equal(checkTxStateless(tx), expected, `byte ${i} mask ${mask}`);
      }
    }
  });
  await t.step("in the low amount bytes, always signature_invalid", () => {
    for (let i = 10; i < 16; i++) assert.equal(checkTxStateless(flipped(i, 0x01)), "signature_invalid");
  });
  await t.step("in the signature, signature_invalid", () => {
    for (let i = TX_SIGNED_BYTES; i < TX_BYTES; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const tx = flipped(i, mask);
        assert.equal(tx.id, decodeTx(original)!.id, "the id does not cover the signature");
        assert.equal(checkTxStateless(tx), "signature_invalid", `byte ${i} mask ${mask}`);
      }
    }
  });
});

Deno.test("checkTxStateless() refuses a transfer signed by someone other than the payer", async () => {
  const bytes = await signTx(bob, { to: makeAccount(9), amount: 1, timestampMs: T0 });
  bytes.set(alice.publicKey, 48); // claims to be from alice
  assert.equal(checkTxStateless(decodeTx(bytes)!), "signature_invalid");
});

Deno.test("checkTxStateless() skips only the signature check when verify is false", async () => {
  const bytes = await signTx(alice, { to: bob.publicKey, amount: 1, timestampMs: T0 });
  bytes[100]! ^= 1;
  const tx = decodeTx(bytes)!;
  assert.equal(checkTxStateless(tx, { verify: false }), undefined);
  assert.equal(checkTxStateless(tx, { verify: true }), "signature_invalid");
  const zero = await signTransfer(alice, bob, { amount: 0, timestampMs: T0 });
  assert.equal(checkTxStateless(zero, { verify: false }), "amount_must_be_positive");
});

Deno.test("checkTxStateless() checks the cheap rules before the signature", async () => {
  const bytes = await signTx(alice, { to: alice.publicKey, amount: 0, timestampMs: T0 });
  bytes[100]! ^= 1;
  assert.equal(checkTxStateless(decodeTx(bytes)!), "amount_must_be_positive");
  const self = await signTx(alice, { to: alice.publicKey, amount: 1, timestampMs: T0 });
  self[100]! ^= 1;
  assert.equal(checkTxStateless(decodeTx(self)!), "accounts_must_be_different");
});

Deno.test("checkTimestamp() accepts the window [fromMs, toMs) and names each side it misses", async () => {
  const tx = await signTransfer(alice, bob, { amount: 1, timestampMs: T0 });
  assert.equal(checkTimestamp(tx, T0, T0 + 1), undefined);
  assert.equal(checkTimestamp(tx, T0 - 5000, T0 + 5000), undefined);
  assert.equal(checkTimestamp(tx, T0 + 1, T0 + 5000), "timestamp_too_old");
  assert.equal(checkTimestamp(tx, T0 - 5000, T0), "timestamp_in_future");
  assert.equal(checkTimestamp(tx, T0 - 5000, T0 - 1), "timestamp_in_future");
});

Deno.test("every refusal code has a sentence", () => {
  const codes = Object.keys(TX_CODES);
  assert.deepEqual(codes.sort(), [
    "accounts_must_be_different",
    "amount_must_be_positive",
    "amount_too_large",
    "duplicate",
    "insufficient_funds",
    "ledger_full",
    "malformed",
    "payer_not_found",
    "signature_invalid",
    "timestamp_in_future",
    "timestamp_too_old",
  ]);
  for (const sentence of Object.values(TX_CODES)) {
    assert.ok(sentence.length > 0 && !sentence.endsWith("."), sentence);
  }
});

Deno.test("txToJson() shows every field in hex, the accounts also as addresses, the time in ISO and an exact amount", async () => {
  const tx = await signTransfer(alice, bob, { amount: 42, timestampMs: T0 });
  assert.deepEqual(txToJson(tx), {
    id: tx.id,
    timestamp: T0,
    time: new Date(T0).toISOString(),
    amount: 42,
    payee: bob.publicHex,
    payer: alice.publicHex,
    payeeAddress: encodeAddress(bob.publicKey),
    payerAddress: encodeAddress(alice.publicKey),
    signature: toHex(tx.signature),
  });
});

Deno.test("txToJson() shows an out-of-range amount as a decimal string and no time for a huge timestamp", async () => {
  const bytes = await signTx(alice, { to: bob.publicKey, amount: 2n ** 64n - 1n, timestampMs: 0 });
  new DataView(bytes.buffer).setBigUint64(0, 2n ** 63n);
  const json = txToJson(decodeTx(bytes)!);
  assert.equal(json.amount, "18446744073709551615");
  assert.equal(json.time, null);
});
