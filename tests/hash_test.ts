// Tests of lib/hash.ts against the FIPS 180-2 SHA-256 test vectors.

import assert from "node:assert/strict";
import { HASH_BYTES, sha256, sha256Hex, sha256HexOf, toHex } from "../lib/hash.ts";

const encoder = new TextEncoder();
const EMPTY_HASH = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const ABC_HASH = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const TWO_BLOCK_TEXT = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
const TWO_BLOCK_HASH = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";

Deno.test("sha256Hex() matches the standard test vectors", () => {
  assert.equal(sha256Hex(new Uint8Array(0)), EMPTY_HASH);
  assert.equal(sha256Hex(encoder.encode("abc")), ABC_HASH);
  assert.equal(sha256Hex(encoder.encode(TWO_BLOCK_TEXT)), TWO_BLOCK_HASH);
});

Deno.test("sha256() returns the 32 digest bytes of sha256Hex()", () => {
  const digest = sha256(encoder.encode("abc"));
  assert.ok(digest instanceof Uint8Array);
  assert.equal(digest.length, HASH_BYTES);
  assert.equal(toHex(digest), ABC_HASH);
});

Deno.test("sha256() hashes only the bytes of a subarray", () => {
  const buffer = encoder.encode("xxabcxx");
  assert.equal(toHex(sha256(buffer.subarray(2, 5))), ABC_HASH);
  assert.equal(sha256Hex(buffer.subarray(2, 5)), ABC_HASH);
});

Deno.test("sha256HexOf() over chunks equals sha256Hex() of their concatenation", () => {
  const text = encoder.encode(TWO_BLOCK_TEXT);
  assert.equal(sha256HexOf([text.subarray(0, 1), text.subarray(1, 40), text.subarray(40)]), TWO_BLOCK_HASH);
  assert.equal(sha256HexOf([]), EMPTY_HASH);
  assert.equal(sha256HexOf([new Uint8Array(0), encoder.encode("abc"), new Uint8Array(0)]), ABC_HASH);
});

Deno.test("sha256() gives independent results for successive calls", () => {
  // A digest that shared a pooled buffer would change under a later call.
  const first = sha256(encoder.encode("abc"));
  sha256(new Uint8Array(0));
  assert.equal(toHex(first), ABC_HASH);
});
