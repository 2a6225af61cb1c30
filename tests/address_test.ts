// lib/address.ts: bech32m addresses of accounts. BIP-350's own test vectors, round trips, and the promise
// that matters for money: every single mistyped character, and every swap of two neighbours, is refused.

import assert from "node:assert/strict";
import { toHex } from "../lib/_bytes.ts";
import {
  ADDRESS_CHARS,
  AddressError,
  BECH32_CHARSET,
  decodeAddress,
  encodeAddress,
  isBech32m,
  looksLikeAddress,
  parseAccountId,
} from "../lib/address.ts";

/** An account id of the bytes 0, 1, …, 31. */
const KEY = Uint8Array.from({ length: 32 }, (_, i) => i);
const ADDRESS = encodeAddress(KEY);

function refuses(text: string, message: RegExp): void {
  assert.throws(
    () => decodeAddress(text),
    (err: Error) => err instanceof AddressError && message.test(err.message),
  );
}

Deno.test("isBech32m() accepts BIP-350's valid bech32m strings and refuses its invalid ones", () => {
  const valid = [
    "A1LQFN3A",
    "a1lqfn3a",
    "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6",
    "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
    "11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllludsr8",
    "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
    "?1v759aa",
  ];
  const invalid = [
    "\x201xj0phk",
    "\x7f1g6xzxy",
    "an84characterslonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11858amb",
    "qyrz8wqd2c9m",
    "1qyrz8wqd2c9m",
    "y1b0jsk6g",
    "lt1igcx5c0",
    "in1muywd",
    "mm1crxm3i",
    "au1s5cgom",
    "M1VUXWEZ",
    "16plkw9",
    "1p2gdwpf",
    // bech32 (BIP-173), not bech32m: the other constant.
    "a12uel5l",
    "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
  ];
  for (const s of valid) assert.ok(isBech32m(s), s);
  for (const s of invalid) assert.ok(!isBech32m(s), JSON.stringify(s));
});

Deno.test("encodeAddress() writes 63 characters starting coin1 that decodeAddress() reads back, in either case", () => {
  assert.equal(ADDRESS.length, ADDRESS_CHARS);
  assert.ok(ADDRESS.startsWith("coin1") && isBech32m(ADDRESS));
  assert.deepEqual(decodeAddress(ADDRESS), KEY);
  assert.deepEqual(decodeAddress(ADDRESS.toUpperCase()), KEY);
  for (let i = 0; i < 200; i++) {
    const key = crypto.getRandomValues(new Uint8Array(32));
    assert.equal(toHex(decodeAddress(encodeAddress(key))), toHex(key));
  }
  assert.throws(() => encodeAddress(new Uint8Array(31)), RangeError);
});

Deno.test("decodeAddress() refuses every single changed character and every swap of neighbours", () => {
  let checked = 0;
  for (let i = 5; i < ADDRESS.length; i++) {
    for (const c of BECH32_CHARSET) {
      if (c === ADDRESS[i]) continue;
      const typo = ADDRESS.slice(0, i) + c + ADDRESS.slice(i + 1);
      refuses(typo, new RegExp(`^its checksum does not match: .* \\(character ${i + 1} looks wrong\\)$`));
      checked++;
    }
    if (i + 1 < ADDRESS.length && ADDRESS[i] !== ADDRESS[i + 1]) {
      const swapped = ADDRESS.slice(0, i) + ADDRESS[i + 1] + ADDRESS[i] + ADDRESS.slice(i + 2);
      refuses(swapped, /^its checksum does not match/);
    }
  }
  assert.equal(checked, 58 * 31);
});

Deno.test("decodeAddress() says what is wrong with text that is not an address", () => {
  refuses(ADDRESS.slice(0, 10) + ADDRESS.slice(10).toUpperCase(), /^it mixes capital and small letters$/);
  refuses("bc1" + ADDRESS.slice(5), /^a coin address starts with "coin1"$/);
  refuses(ADDRESS.slice(0, -1), /^it has 62 characters, an address has 63$/);
  refuses(ADDRESS + "q", /^it has 64 characters, an address has 63$/);
  refuses(
    ADDRESS.slice(0, 9) + "o" + ADDRESS.slice(10),
    /^character 10 "o" is not used in addresses \(they use 0/,
  );
  refuses(ADDRESS.slice(0, 9) + "1" + ADDRESS.slice(10), /^character 10 "1" is not used in addresses/);
  // The Kelvin sign lowercases to "k": an address is ASCII, whatever Unicode's case mapping says.
  const upper = ADDRESS.toUpperCase();
  const k = upper.indexOf("K", 5);
  if (k > 0) {
    refuses(
      upper.slice(0, k) + "\u212a" + upper.slice(k + 1),
      new RegExp(`^character ${k + 1} is not a plain letter or digit \\(U\\+212A\\)$`),
    );
  }
  refuses(
    ADDRESS.slice(0, 20) + " " + ADDRESS.slice(21),
    /^character 21 is not a plain letter or digit \(U\+0020\)$/,
  );
});

Deno.test("decodeAddress() refuses a valid bech32m string of 63 characters whose padding bits are set", () => {
  // The same data with the last data value's padding bits set, and a checksum made for it.
  const values = [...ADDRESS.slice(5, 5 + 52)].map((c) => BECH32_CHARSET.indexOf(c));
  values[51] = values[51]! | 1;
  const withChecksum = bech32mWithChecksum(values);
  assert.ok(isBech32m(withChecksum));
  refuses(withChecksum, /^its last data character has padding bits set$/);
});

/** `coin1` + the values + BIP-350's checksum, written here independently of lib/address.ts. */
function bech32mWithChecksum(values: number[]): string {
  const gen = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
  const polymod = (vs: number[]) => {
    let chk = 1;
    for (const v of vs) {
      const b = chk >>> 25;
      chk = (((chk & 0x1ffffff) << 5) ^ v) >>> 0;
      for (let i = 0; i < 5; i++) if ((b >>> i) & 1) chk = (chk ^ gen[i]!) >>> 0;
    }
    return chk;
  };
  const hrp = [..."coin"].map((c) => c.charCodeAt(0));
  const expanded = [...hrp.map((c) => c >> 5), 0, ...hrp.map((c) => c & 31)];
  const mod = polymod([...expanded, ...values, 0, 0, 0, 0, 0, 0]) ^ 0x2bc830a3;
  const checksum = Array.from({ length: 6 }, (_, i) => (mod >>> (5 * (5 - i))) & 31);
  return "coin1" + [...values, ...checksum].map((v) => BECH32_CHARSET[v]).join("");
}

Deno.test("parseAccountId() reads an address or 64 hex digits, and nothing else", () => {
  assert.deepEqual(parseAccountId(ADDRESS), KEY);
  assert.deepEqual(parseAccountId(toHex(KEY)), KEY);
  assert.deepEqual(parseAccountId(toHex(KEY).toUpperCase()), KEY);
  assert.equal(parseAccountId("bob"), undefined);
  assert.equal(parseAccountId(toHex(KEY).slice(1)), undefined);
  assert.throws(() => parseAccountId(ADDRESS.slice(0, -1) + "x"), AddressError);
  assert.ok(looksLikeAddress("COIN1xyz") && !looksLikeAddress("coin") && !looksLikeAddress("bob"));
});
