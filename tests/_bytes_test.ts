// Tests of lib/_bytes.ts: strict hex, big-endian u64 limits and the small byte utilities every
// wire format relies on.

import assert from "node:assert/strict";
import { compare32, equalBytes, fromHex, isHex32, readU64, toHex, viewOf, writeU64 } from "../lib/_bytes.ts";

Deno.test("toHex() and fromHex() round-trip every byte value", () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const hex = toHex(all);
  assert.equal(hex.length, 512);
  assert.match(hex, /^[0-9a-f]+$/);
  assert.equal(hex.slice(0, 6), "000102");
  assert.equal(hex.slice(-4), "feff");
  assert.deepEqual(fromHex(hex), all);
  assert.deepEqual(fromHex(hex, 256), all);
});

Deno.test("toHex() of no bytes is the empty string", () => {
  assert.equal(toHex(new Uint8Array(0)), "");
  assert.deepEqual(fromHex(""), new Uint8Array(0));
});

Deno.test("fromHex() accepts upper and mixed case", () => {
  assert.deepEqual(fromHex("ABCDEF"), Uint8Array.of(0xab, 0xcd, 0xef));
  assert.deepEqual(fromHex("aBcD"), Uint8Array.of(0xab, 0xcd));
});

Deno.test("fromHex() returns undefined for text that is not hex", async (t) => {
  const cases: [string, string][] = [
    ["an odd number of digits", "abc"],
    ["a letter past f", "0g"],
    ["a leading space", " 00"],
    ["a trailing newline", "00\n"],
    ["a 0x prefix", "0x00"],
    ["a sign", "-1"],
    ["a non-ASCII digit", "0\u0660"],
  ];
  for (const [what, text] of cases) {
    await t.step(`with ${what}`, () => assert.equal(fromHex(text), undefined));
  }
});

Deno.test("fromHex() returns undefined when the length is not the one asked for", () => {
  assert.equal(fromHex("0011", 1), undefined);
  assert.equal(fromHex("0011", 3), undefined);
  assert.deepEqual(fromHex("0011", 2), Uint8Array.of(0, 0x11));
});

Deno.test("isHex32() accepts exactly 64 hex digits", () => {
  assert.equal(isHex32("ab".repeat(32)), true);
  assert.equal(isHex32("AB".repeat(32)), true);
  assert.equal(isHex32("ab".repeat(31)), false);
  assert.equal(isHex32("ab".repeat(33)), false);
  assert.equal(isHex32("ab".repeat(31) + "zz"), false);
  assert.equal(isHex32(""), false);
});

Deno.test("writeU64() and readU64() round-trip values up to 2^53 - 1 big-endian", () => {
  const bytes = new Uint8Array(8);
  const view = viewOf(bytes);
  for (
    const value of [
      0,
      1,
      255,
      256,
      2 ** 32 - 1,
      2 ** 32,
      2 ** 32 + 1,
      2 ** 40 + 12345,
      Number.MAX_SAFE_INTEGER,
    ]
  ) {
    writeU64(view, 0, value);
    assert.equal(readU64(view, 0), value);
    assert.equal(view.getBigUint64(0), BigInt(value), "the layout is big-endian");
  }
  writeU64(view, 0, 0x0102_0304_0506);
  assert.deepEqual(bytes, Uint8Array.of(0, 0, 1, 2, 3, 4, 5, 6));
});

Deno.test("readU64() returns -1 for values above 2^53 - 1", () => {
  const view = viewOf(new Uint8Array(8));
  view.setBigUint64(0, 2n ** 53n);
  assert.equal(readU64(view, 0), -1);
  view.setBigUint64(0, 2n ** 64n - 1n);
  assert.equal(readU64(view, 0), -1);
  view.setBigUint64(0, 2n ** 53n - 1n);
  assert.equal(readU64(view, 0), Number.MAX_SAFE_INTEGER);
});

Deno.test("writeU64() throws RangeError for values it cannot write exactly", async (t) => {
  const view = viewOf(new Uint8Array(8));
  for (const value of [-1, 1.5, 2 ** 53, NaN, Infinity]) {
    await t.step(`for ${value}`, () => assert.throws(() => writeU64(view, 0, value), RangeError));
  }
});

Deno.test("readU64() and writeU64() honour the offset", () => {
  const bytes = new Uint8Array(20);
  const view = viewOf(bytes);
  writeU64(view, 12, 0xdead_beef_cafe);
  assert.deepEqual(bytes.subarray(0, 12), new Uint8Array(12));
  assert.equal(readU64(view, 12), 0xdead_beef_cafe);
});

Deno.test("compare32() orders 32-byte ranges lexicographically at any offsets", () => {
  const a = new Uint8Array(40);
  const b = new Uint8Array(40);
  a.set(new Uint8Array(32).fill(7), 8);
  b.set(new Uint8Array(32).fill(7), 0);
  assert.equal(compare32(a, 8, b, 0), 0);
  a[8 + 31] = 8;
  assert.ok(compare32(a, 8, b, 0) > 0);
  assert.ok(compare32(b, 0, a, 8) < 0);
  b[0] = 6; // the first byte decides, whatever follows
  assert.ok(compare32(a, 8, b, 0) > 0);
  // Bytes outside the 32-byte range are ignored.
  a[0] = 255;
  a.fill(7, 8, 40);
  b.fill(7, 0, 32);
  b[33] = 1;
  assert.equal(compare32(a, 8, b, 0), 0);
});

Deno.test("equalBytes() compares length and content", () => {
  assert.equal(equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 2)), true);
  assert.equal(equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 3)), false);
  assert.equal(equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 0)), false);
  assert.equal(equalBytes(new Uint8Array(0), new Uint8Array(0)), true);
});

Deno.test("viewOf() sees only the bytes of a subarray", () => {
  const buffer = Uint8Array.from({ length: 16 }, (_, i) => i);
  const part = buffer.subarray(4, 12);
  const view = viewOf(part);
  assert.equal(view.byteLength, 8);
  assert.equal(view.getUint8(0), 4);
  assert.equal(view.getUint32(4), 0x0809_0a0b);
});
