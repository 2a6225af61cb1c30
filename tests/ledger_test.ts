// Tests of lib/ledger.ts: the packed database (layout, checks on adoption) and apply(), which must give
// byte-identical databases on every server, conserve supply and refuse each bad transfer with its code.

import assert from "node:assert/strict";
import { equalBytes, toHex } from "../lib/_bytes.ts";
import { frameContext, recentFrames, type Timing } from "../lib/frames.ts";
import { sha256Hex } from "../lib/hash.ts";
import type { KeyPair } from "../lib/keys.ts";
import {
  apply,
  DB_HEADER_BYTES,
  DB_MAGIC,
  DB_RECORD_BYTES,
  DB_VERSION,
  genesisState,
  Ledger,
  type State,
} from "../lib/ledger.ts";
import { decodeTx, MAX_AMOUNT, type Tx, type TxCode } from "../lib/tx.ts";
import {
  assertThrowsError,
  makeAccount,
  makeKeyPair,
  makeKeyPairs,
  seededRandom,
  signTransfer,
} from "./_helpers.ts";

const TIMING: Timing = { intervalMs: 1_000, skewMs: 5_000, blackoutMs: 100, servers: 3 };
/** A frame far from 0 so timestamps look real. */
const F0 = 1_700_000_000;
const T0 = F0 * TIMING.intervalMs;

const alice = await makeKeyPair(1);
const bob = await makeKeyPair(2);
const carol = await makeKeyPair(3);

/** apply()'s context for frame F0 + `offset`. */
function ctx(offset = 0) {
  return frameContext(F0 + offset, TIMING);
}

function state(balances: [KeyPair | Uint8Array, number][]): State {
  return genesisState(
    balances.map(([who, n]) => [toHex(who instanceof Uint8Array ? who : who.publicKey), n]),
  );
}

function pay(
  payer: KeyPair,
  payee: KeyPair | Uint8Array,
  amount: number | bigint,
  timestampMs = T0,
): Promise<Tx> {
  return signTransfer(payer, payee, { amount, timestampMs });
}

function balance(s: State, who: KeyPair | Uint8Array): number {
  return s.ledger.balanceOf(who instanceof Uint8Array ? who : who.publicKey);
}

/** Packs raw records (account, balance as bigint) with a header whose fields a test may spoil. */
function pack(
  records: [Uint8Array, bigint][],
  header: { magic?: number; version?: number; reserved?: number; count?: bigint } = {},
): Uint8Array {
  const bytes = new Uint8Array(DB_HEADER_BYTES + records.length * DB_RECORD_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, header.magic ?? DB_MAGIC);
  view.setUint16(4, header.version ?? DB_VERSION);
  view.setUint16(6, header.reserved ?? 0);
  view.setBigUint64(8, header.count ?? BigInt(records.length));
  records.forEach(([account, amount], i) => {
    bytes.set(account, DB_HEADER_BYTES + i * DB_RECORD_BYTES);
    view.setBigUint64(DB_HEADER_BYTES + i * DB_RECORD_BYTES + 32, amount);
  });
  return bytes;
}

/** Asserts two ledgers are the same database: same bytes, same hash, same supply. */
function assertSameLedger(a: Ledger, b: Ledger): void {
  assert.ok(equalBytes(a.bytes, b.bytes), "packed bytes differ");
  assert.equal(a.hash, b.hash);
  assert.equal(a.count, b.count);
  assert.equal(a.supply, b.supply);
}

/** Asserts `ledger` is in canonical packed form: it re-adopts, and equals fromBalances() of its entries. */
function assertCanonical(ledger: Ledger): void {
  const adopted = Ledger.fromPacked(ledger.bytes.slice());
  assertSameLedger(adopted, ledger);
  assertSameLedger(Ledger.fromBalances(ledger.entries()), ledger);
}

Deno.test("Ledger.fromBalances() packs a header and records sorted by account", () => {
  const low = makeAccount(0x01);
  const high = makeAccount(0xf0);
  const ledger = Ledger.fromBalances([[toHex(high), 7], [toHex(low), 0x0102]]);
  assert.equal(ledger.count, 2);
  assert.equal(ledger.supply, 0x0109);
  assert.equal(ledger.bytes.length, DB_HEADER_BYTES + 2 * DB_RECORD_BYTES);
  assert.equal(new TextDecoder().decode(ledger.bytes.subarray(0, 4)), "COIN");
  assert.deepEqual(ledger.bytes.subarray(4, 16), Uint8Array.of(0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2));
  assert.deepEqual(ledger.bytes.subarray(16, 48), low);
  assert.deepEqual(ledger.bytes.subarray(48, 56), Uint8Array.of(0, 0, 0, 0, 0, 0, 1, 2));
  assert.deepEqual(ledger.bytes.subarray(56, 88), high);
  assert.deepEqual([...ledger.entries()], [[toHex(low), 0x0102], [toHex(high), 7]]);
  assert.equal(ledger.hash, sha256Hex(ledger.bytes));
});

Deno.test("Ledger.fromBalances() gives the same bytes whatever the insertion order", () => {
  const random = seededRandom(11);
  const entries: [string, number][] = Array.from(
    { length: 200 },
    (_, i) => [toHex(makeAccount(random.int(256), i)), 1 + random.int(1_000_000)],
  );
  const reference = Ledger.fromBalances(entries);
  for (let round = 0; round < 5; round++) {
    const shuffled = entries.slice().sort(() => random.next() - 0.5);
    assertSameLedger(Ledger.fromBalances(shuffled), reference);
  }
  assertSameLedger(Ledger.fromBalances(entries.slice().reverse()), reference);
  assertSameLedger(Ledger.fromBalances(new Map(entries.slice().reverse())), reference);
});

Deno.test("Ledger.fromBalances() drops zero balances and lowercases account hex", () => {
  const a = toHex(makeAccount(0xab));
  const b = toHex(makeAccount(0xcd));
  const ledger = Ledger.fromBalances([[a.toUpperCase(), 5], [b, 0]]);
  assert.equal(ledger.count, 1);
  assert.deepEqual([...ledger.entries()], [[a, 5]]);
  assert.equal(ledger.balanceOf(makeAccount(0xcd)), 0);
  assertSameLedger(ledger, Ledger.fromBalances([[a, 5]]));
});

Deno.test("Ledger.fromBalances() of nothing is a header with no accounts", () => {
  const empty = Ledger.fromBalances([]);
  assert.equal(empty.bytes.length, DB_HEADER_BYTES);
  assert.equal(empty.count, 0);
  assert.equal(empty.supply, 0);
  assert.equal(empty.balanceOf(makeAccount(1)), 0);
  assertSameLedger(Ledger.fromPacked(empty.bytes), empty);
});

Deno.test("Ledger.fromBalances() throws RangeError for bad input", async (t) => {
  const a = toHex(makeAccount(0xaa));
  const cases: [string, [string, number][], RegExp][] = [
    ["an account that is not hex", [["xyz", 1]], /not 64 hex digits/],
    ["a short account", [[a.slice(2), 1]], /not 64 hex digits/],
    ["a negative balance", [[a, -1]], /whole number/],
    ["a fractional balance", [[a, 1.5]], /whole number/],
    ["a balance above 2^53 - 1", [[a, 2 ** 53]], /whole number/],
    ["an account twice", [[a, 1], [a.toUpperCase(), 2]], /appears twice/],
    ["a supply above 2^53 - 1", [[a, MAX_AMOUNT], [toHex(makeAccount(0xbb)), 1]], /Total supply/],
  ];
  for (const [what, entries, pattern] of cases) {
    await t.step(`for ${what}`, () => {
      assertThrowsError(() => Ledger.fromBalances(entries), RangeError, pattern);
    });
  }
});

Deno.test("Ledger.balanceOf() finds every account by binary search and 0 for others", () => {
  const accounts = Array.from({ length: 101 }, (_, i) => makeAccount(i * 2 + 1, i));
  const ledger = Ledger.fromBalances(accounts.map((a, i) => [toHex(a), i + 1]));
  accounts.forEach((a, i) => assert.equal(ledger.balanceOf(a), i + 1));
  for (let i = 0; i <= 101; i++) assert.equal(ledger.balanceOf(makeAccount(i * 2, i)), 0);
  assert.equal(ledger.balanceOf(new Uint8Array(32).fill(0xff)), 0);
});

Deno.test("Ledger.fromPacked() adopts valid bytes", () => {
  const original = Ledger.fromBalances([[toHex(makeAccount(1)), 10], [
    toHex(makeAccount(2)),
    MAX_AMOUNT - 10,
  ]]);
  const adopted = Ledger.fromPacked(original.bytes.slice());
  assertSameLedger(adopted, original);
  assert.equal(adopted.supply, MAX_AMOUNT);
});

Deno.test("Ledger.fromPacked() rejects bytes that are not a canonical database with SyntaxError", async (t) => {
  const a = makeAccount(0x10);
  const b = makeAccount(0x20);
  const cases: [string, Uint8Array, RegExp][] = [
    ["bytes shorter than the header", new Uint8Array(15), /shorter than its header/],
    ["a wrong magic", pack([[a, 1n]], { magic: 0x434f494f }), /wrong magic/],
    ["a wrong version", pack([[a, 1n]], { version: 2 }), /version 2 is not supported/],
    ["version 0", pack([], { version: 0 }), /version 0 is not supported/],
    ["non-zero reserved bytes", pack([[a, 1n]], { reserved: 1 }), /reserved/],
    ["a count above 2^53 - 1", pack([[a, 1n]], { count: 2n ** 60n }), /count is out of range/],
    ["a count above the account limit", pack([], { count: 16_777_217n }), /count is out of range/],
    ["a count larger than the records", pack([[a, 1n]], { count: 2n }), /wrong length/],
    ["a count smaller than the records", pack([[a, 1n], [b, 1n]], { count: 1n }), /wrong length/],
    ["a trailing byte", Uint8Array.of(...pack([[a, 1n]]), 0), /wrong length/],
    ["a truncated record", pack([[a, 1n]]).subarray(0, 55), /wrong length/],
    ["unsorted accounts", pack([[b, 1n], [a, 1n]]), /not strictly ascending at record 1/],
    ["a duplicate account", pack([[a, 1n], [a, 1n]]), /not strictly ascending at record 1/],
    ["a zero balance", pack([[a, 1n], [b, 0n]]), /record 1 has a zero or oversized balance/],
    ["a balance above 2^53 - 1", pack([[a, 2n ** 53n]]), /record 0 has a zero or oversized balance/],
    ["a supply above 2^53 - 1", pack([[a, 2n ** 53n - 1n], [b, 1n]]), /total supply/],
  ];
  for (const [what, bytes, pattern] of cases) {
    await t.step(`with ${what}`, () => {
      assertThrowsError(() => Ledger.fromPacked(bytes), SyntaxError, pattern);
    });
  }
});

Deno.test("apply() moves the amount from payer to payee and leaves the old state untouched", async () => {
  const before = state([[alice, 100], [bob, 5]]);
  const beforeBytes = before.ledger.bytes.slice();
  const tx = await pay(alice, bob, 30);
  const { state: after, results, applied } = apply(before, [tx], ctx());
  assert.deepEqual(results, ["ok"]);
  assert.equal(applied, 1);
  assert.equal(balance(after, alice), 70);
  assert.equal(balance(after, bob), 35);
  assert.equal(after.ledger.supply, 105);
  assert.ok(equalBytes(before.ledger.bytes, beforeBytes), "the previous ledger is immutable");
  assert.equal(balance(before, alice), 100);
  assert.deepEqual(after.recent, [{ frame: F0, ids: new Set([tx.id]) }]);
  assertCanonical(after.ledger);
});

Deno.test("apply() skips a transfer whose payer lacks funds", async () => {
  const before = state([[alice, 10]]);
  const { state: after, results, applied } = apply(before, [await pay(alice, bob, 11)], ctx());
  assert.deepEqual(results, ["insufficient_funds"]);
  assert.equal(applied, 0);
  assert.equal(after.ledger, before.ledger, "nothing applied, same database");
  assert.deepEqual(after.recent, [{ frame: F0, ids: new Set() }]);
});

Deno.test("apply() skips a transfer whose payer has no account", async () => {
  const before = state([[alice, 10]]);
  const { results } = apply(before, [await pay(bob, alice, 1)], ctx());
  assert.deepEqual(results, ["payer_not_found"]);
});

Deno.test("apply() lets a payer spend exactly its whole balance", async () => {
  const before = state([[alice, 10], [bob, 1]]);
  const { state: after, results } = apply(before, [await pay(alice, bob, 10)], ctx());
  assert.deepEqual(results, ["ok"]);
  assert.equal(balance(after, alice), 0);
  assert.equal(balance(after, bob), 11);
});

Deno.test("apply() skips each statelessly invalid transfer with its code", async (t) => {
  const before = state([[alice, 1000]]);
  const { windowFromMs: fromMs, windowToMs: toMs } = ctx();
  const tampered = (await pay(alice, bob, 1)).bytes.slice();
  tampered[120]! ^= 0x40;
  const cases: [TxCode, Tx][] = [
    ["amount_must_be_positive", await pay(alice, bob, 0)],
    ["amount_too_large", await pay(alice, bob, 2n ** 53n)],
    ["accounts_must_be_different", await pay(alice, alice, 1)],
    ["signature_invalid", decodeTx(tampered)!],
    ["timestamp_too_old", await pay(alice, bob, 1, fromMs - 1)],
    ["timestamp_in_future", await pay(alice, bob, 1, toMs)],
  ];
  for (const [code, tx] of cases) {
    await t.step(code, () => {
      const { state: after, results } = apply(before, [tx], ctx());
      assert.deepEqual(results, [code]);
      assert.equal(after.ledger, before.ledger);
    });
  }
  await t.step("the window edges themselves", async () => {
    const { results } = apply(
      before,
      [await pay(alice, bob, 1, fromMs), await pay(alice, bob, 2, toMs - 1)],
      ctx(),
    );
    assert.deepEqual(results, ["ok", "ok"]);
  });
});

Deno.test("apply() skips the same transfer given twice in one frame as duplicate", async () => {
  const before = state([[alice, 100]]);
  const tx = await pay(alice, bob, 10);
  const copy = decodeTx(tx.bytes.slice())!; // equal bytes from another source, not the same object
  const { state: after, results, applied } = apply(before, [tx, tx, copy], ctx());
  assert.deepEqual(results, ["ok", "duplicate", "duplicate"]);
  assert.equal(applied, 1);
  assert.equal(balance(after, alice), 90);
});

Deno.test("apply() skips a transfer applied in an earlier frame as duplicate", async (t) => {
  const tx = await pay(alice, bob, 10);
  let s = apply(state([[alice, 100]]), [tx], ctx(0)).state;
  await t.step("in the next frame", () => {
    const { results } = apply(s, [tx], ctx(1));
    assert.deepEqual(results, ["duplicate"]);
  });
  await t.step("in every later frame whose window still holds its timestamp", () => {
    for (let offset = 1;; offset++) {
      const context = ctx(offset);
      if (tx.timestampMs < context.windowFromMs) break;
      const result = apply(s, [tx], context);
      assert.deepEqual(result.results, ["duplicate"], `frame F0 + ${offset}`);
      s = result.state;
    }
    assert.equal(balance(s, alice), 90);
  });
});

Deno.test("apply() does not remember a refused transfer, so it may succeed later", async () => {
  const tx = await pay(alice, carol, 50);
  const first = apply(state([[alice, 10], [bob, 100]]), [tx], ctx(0));
  assert.deepEqual(first.results, ["insufficient_funds"]);
  const second = apply(first.state, [await pay(bob, alice, 40), tx], ctx(1));
  assert.deepEqual(second.results, ["ok", "ok"]);
  assert.equal(balance(second.state, carol), 50);
  assert.equal(balance(second.state, alice), 0);
});

Deno.test("apply() remembers ids for recentFrames frames and no longer", async () => {
  let s = state([[alice, 100]]);
  const keep = recentFrames(TIMING);
  for (let offset = 0; offset < 3 * keep; offset++) {
    const txs = offset % 2 === 0 ? [await pay(alice, bob, 1, T0 + offset * TIMING.intervalMs)] : [];
    s = apply(s, txs, ctx(offset)).state;
    const frames = s.recent.map((r) => r.frame);
    const expected = Array.from({ length: Math.min(offset + 1, keep) }, (_, i) => F0 + offset - i).reverse();
    assert.deepEqual(frames, expected, "the last recentFrames frames, oldest first, empty ones too");
  }
});

Deno.test("apply() trusts the signature of a transfer listed as verified", async () => {
  // The alpha verified its own buffer on arrival; apply() must not pay that cost twice.
  const bytes = (await pay(alice, bob, 5)).bytes.slice();
  bytes[100]! ^= 1;
  const tx = decodeTx(bytes)!;
  const before = state([[alice, 10]]);
  assert.deepEqual(apply(before, [tx], ctx()).results, ["signature_invalid"]);
  assert.deepEqual(apply(before, [tx], { ...ctx(), verified: new WeakSet([tx]) }).results, ["ok"]);
  const other = decodeTx(bytes.slice())!;
  assert.deepEqual(apply(before, [other], { ...ctx(), verified: new WeakSet([tx]) }).results, [
    "signature_invalid",
  ]);
});

Deno.test("apply() drops an account whose balance reaches zero from the packed form", async () => {
  const before = state([[alice, 10], [bob, 5], [carol, 1]]);
  const { state: after } = apply(before, [await pay(alice, bob, 10)], ctx());
  assert.equal(after.ledger.count, 2);
  assert.equal(after.ledger.bytes.length, DB_HEADER_BYTES + 2 * DB_RECORD_BYTES);
  assert.ok(![...after.ledger.entries()].some(([hex]) => hex === alice.publicHex));
  assertCanonical(after.ledger);
  const next = apply(after, [await pay(alice, carol, 1, T0 + 1)], ctx(1));
  assert.deepEqual(next.results, ["payer_not_found"], "an emptied account no longer exists");
});

Deno.test("apply() keeps an account emptied and refilled within one frame", async () => {
  const before = state([[alice, 10], [bob, 5]]);
  const { state: after, results } = apply(
    before,
    [await pay(alice, bob, 10), await pay(bob, alice, 3)],
    ctx(),
  );
  assert.deepEqual(results, ["ok", "ok"]);
  assert.equal(balance(after, alice), 3);
  assert.equal(balance(after, bob), 12);
  assertCanonical(after.ledger);
});

Deno.test("apply() reports insufficient_funds for an account emptied earlier in the same frame", async () => {
  // Within a frame the emptied record still exists; the server's admission check says the same.
  const before = state([[alice, 10], [bob, 5]]);
  const { results } = apply(before, [await pay(alice, bob, 10), await pay(alice, bob, 1)], ctx());
  assert.deepEqual(results, ["ok", "insufficient_funds"]);
});

Deno.test("apply() inserts new accounts in sorted order", async () => {
  const low = makeAccount(0x00, 1);
  const middle = makeAccount(0x80, 1);
  const high = makeAccount(0xff, 1);
  const existing = [makeAccount(0x40), makeAccount(0xc0)];
  const before = genesisState([
    [alice.publicHex, 100],
    ...existing.map((a) => [toHex(a), 1] as [string, number]),
  ]);
  const txs = [await pay(alice, high, 1), await pay(alice, low, 2), await pay(alice, middle, 3)];
  const { state: after, results } = apply(before, txs, ctx());
  assert.deepEqual(results, ["ok", "ok", "ok"]);
  const hexes = [...after.ledger.entries()].map(([hex]) => hex);
  assert.deepEqual(hexes, hexes.slice().sort());
  assert.equal(after.ledger.count, 6);
  assert.equal(after.ledger.balanceOf(low), 2);
  assert.equal(after.ledger.balanceOf(middle), 3);
  assert.equal(after.ledger.balanceOf(high), 1);
  assertCanonical(after.ledger);
});

Deno.test("apply() lets an account created in a frame pay onward in the same frame", async () => {
  const before = state([[alice, 100]]);
  const txs = [await pay(alice, bob, 40), await pay(bob, carol, 15), await pay(carol, bob, 15)];
  const { state: after, results } = apply(before, txs, ctx());
  assert.deepEqual(results, ["ok", "ok", "ok"]);
  assert.equal(balance(after, bob), 40);
  assert.equal(balance(after, carol), 0);
  assert.equal(after.ledger.count, 2, "carol, created and emptied in the frame, has no record");
  assertCanonical(after.ledger);
});

Deno.test("apply() moves the largest possible amount", async () => {
  const before = state([[alice, MAX_AMOUNT]]);
  const { state: after, results } = apply(before, [await pay(alice, bob, MAX_AMOUNT)], ctx());
  assert.deepEqual(results, ["ok"]);
  assert.equal(balance(after, bob), MAX_AMOUNT);
  assert.equal(after.ledger.supply, MAX_AMOUNT);
  assertCanonical(after.ledger);
});

Deno.test("apply() with no transfers keeps the database and records the frame", () => {
  const before = state([[alice, 1]]);
  const { state: after, results, applied } = apply(before, [], ctx());
  assert.equal(after.ledger, before.ledger);
  assert.deepEqual(results, []);
  assert.equal(applied, 0);
  assert.deepEqual(after.recent, [{ frame: F0, ids: new Set() }]);
});

Deno.test("apply() gives byte-identical databases for independently built states", async () => {
  const keys = await makeKeyPairs(6);
  const genesis: [string, number][] = keys.slice(0, 4).map((k, i) => [k.publicHex, 1000 * (i + 1)]);
  // Transfers that all succeed however they are split into frames: new accounts, emptied ones, chains.
  // Transfer i is stamped in frame F0 + i, so frames F0 + 2 to F0 + 4 accept them all.
  const txs = [
    await pay(keys[0]!, keys[4]!, 1000, T0),
    await pay(keys[1]!, makeAccount(0x00, 9), 700, T0 + 1000),
    await pay(keys[2]!, keys[0]!, 3000, T0 + 2000),
    await pay(keys[4]!, keys[5]!, 400, T0 + 3000),
    await pay(keys[3]!, makeAccount(0xff, 9), 4000, T0 + 4000),
    await pay(keys[0]!, keys[1]!, 2500, T0 + 5000),
    await pay(keys[5]!, makeAccount(0x7f, 9), 1, T0 + 6000),
  ];

  const one = apply(genesisState(genesis), txs, ctx(3));
  assert.ok(one.results.every((r) => r === "ok"), one.results.join());

  const reversedGenesis = genesisState(genesis.slice().reverse());
  assert.ok(equalBytes(reversedGenesis.ledger.bytes, genesisState(genesis).ledger.bytes));
  let split = reversedGenesis;
  split = apply(split, txs.slice(0, 3), ctx(2)).state;
  split = apply(split, txs.slice(3), ctx(4)).state;

  let single = genesisState(new Map(genesis));
  txs.forEach((tx, i) => {
    const result = apply(single, [decodeTx(tx.bytes.slice())!], ctx(i));
    assert.deepEqual(result.results, ["ok"]);
    single = result.state;
  });

  assertSameLedger(split.ledger, one.state.ledger);
  assertSameLedger(single.ledger, one.state.ledger);
  assert.equal(one.state.ledger.supply, 10_000);
  assertCanonical(one.state.ledger);
});

Deno.test("apply() over random frames agrees with a simple balance model and conserves supply", async () => {
  const seed = 20240601;
  const random = seededRandom(seed);
  const keys = await makeKeyPairs(20);
  const strangers = Array.from({ length: 8 }, (_, i) => makeAccount(random.int(256), 1000 + i));
  const hexOf = (account: KeyPair | Uint8Array) =>
    toHex(account instanceof Uint8Array ? account : account.publicKey);

  // Half the keys start funded, the rest must be paid before they can pay.
  const genesis: [string, number][] = keys.slice(0, 10).map((k) => [k.publicHex, 1 + random.int(1_000_000)]);
  const supply = genesis.reduce((sum, [, n]) => sum + n, 0);
  const model = new Map(genesis);
  const everApplied = new Set<string>();
  const tampered = new WeakSet<Tx>();
  const history: Tx[] = [];
  const frames: Tx[][] = [];
  let s = genesisState(genesis);
  const seen = new Map<TxCode | "ok", number>();

  for (let offset = 0; offset < 120; offset++) {
    const context = ctx(offset);
    const frameStart = T0 + offset * TIMING.intervalMs;
    const txs: Tx[] = [];
    const count = random.int(4) === 0 ? 0 : 1 + random.int(14);
    for (let i = 0; i < count; i++) {
      const roll = random.int(100);
      if (roll < 10 && history.length > 0) {
        txs.push(history[history.length - 1 - random.int(Math.min(history.length, 30))]!); // a replay
        continue;
      }
      const payer = keys[random.int(keys.length)]!;
      const payee = random.int(10) === 0
        ? strangers[random.int(strangers.length)]!
        : keys[random.int(keys.length)]!;
      const have = model.get(payer.publicHex) ?? 0;
      const amount = roll < 14
        ? 0
        : roll < 22
        ? have + 1 + random.int(10)
        : 1 + random.int(Math.max(have, 1));
      const timestampMs = roll >= 90 && roll < 94
        ? context.windowFromMs - 1 - random.int(3000)
        : roll >= 94 && roll < 97
        ? context.windowToMs + random.int(3000)
        : frameStart - 2000 + random.int(4000);
      let tx = await pay(payer, payee, amount, timestampMs);
      if (roll >= 97) {
        const bytes = tx.bytes.slice();
        bytes[80 + random.int(64)]! ^= 1 << random.int(8);
        tx = decodeTx(bytes)!;
        tampered.add(tx);
      }
      history.push(tx);
      txs.push(tx);
      if (random.int(20) === 0) txs.push(tx); // the same transfer twice in a frame
    }

    // The model: the rules in the order TX_CODES lists them, over a plain map of balances. A payer
    // exists if it had a balance when the frame began or was paid earlier in it; an id applied once
    // must never apply again, however many frames later it comes back.
    const existing = new Set(model.keys());
    const expected = txs.map((tx): TxCode | "ok" => {
      const payer = hexOf(tx.payer);
      const payee = hexOf(tx.payee);
      if (tx.amountRaw === 0n) return "amount_must_be_positive";
      if (payer === payee) return "accounts_must_be_different";
      if (tampered.has(tx)) return "signature_invalid";
      if (tx.timestampMs < context.windowFromMs) return "timestamp_too_old";
      if (tx.timestampMs >= context.windowToMs) return "timestamp_in_future";
      if (everApplied.has(tx.id)) return "duplicate";
      if (!existing.has(payer)) return "payer_not_found";
      if (model.get(payer)! < tx.amount) return "insufficient_funds";
      model.set(payer, model.get(payer)! - tx.amount);
      model.set(payee, (model.get(payee) ?? 0) + tx.amount);
      existing.add(payee);
      everApplied.add(tx.id);
      return "ok";
    });
    for (const [hex, n] of model) if (n === 0) model.delete(hex);

    const result = apply(s, txs, context);
    assert.deepEqual(result.results, expected, `frame F0 + ${offset}, seed ${seed}`);
    assert.equal(result.applied, expected.filter((r) => r === "ok").length);
    s = result.state;
    frames.push(txs);
    for (const r of expected) seen.set(r, (seen.get(r) ?? 0) + 1);

    assert.equal(s.ledger.supply, supply, `supply after frame F0 + ${offset}`);
    assert.deepEqual([...s.ledger.entries()], [...model].sort(([a], [b]) => (a < b ? -1 : 1)));
    assert.ok(s.recent.length <= recentFrames(TIMING));
    assertCanonical(s.ledger);
  }

  // Every way the model can refuse a transfer actually happened, so the comparison meant something.
  for (
    const code of [
      "ok",
      "amount_must_be_positive",
      "accounts_must_be_different",
      "signature_invalid",
      "timestamp_too_old",
      "timestamp_in_future",
      "duplicate",
      "payer_not_found",
      "insufficient_funds",
    ] as const
  ) {
    assert.ok((seen.get(code) ?? 0) > 0, `no transfer ended as ${code}`);
  }

  // Replaying the same frames on a genesis built in another order reaches the same database.
  let replay = genesisState(genesis.slice().reverse());
  frames.forEach((txs, offset) => {
    replay = apply(replay, txs.map((tx) => decodeTx(tx.bytes.slice())!), ctx(offset)).state;
  });
  assertSameLedger(replay.ledger, s.ledger);
});
