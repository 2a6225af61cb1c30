// Tests of lib/keys.ts: Ed25519 key derivation and signatures (RFC 8032 vectors) and the key file, whose
// every refusal must be one CoinError line an operator can act on.

import assert from "node:assert/strict";
import { fromHex, toHex } from "../lib/_bytes.ts";
import { CoinError } from "../lib/errors.ts";
import {
  generateKeyPair,
  keyPairFromSeed,
  PUBLIC_KEY_BYTES,
  readKeyFile,
  SEED_BYTES,
  sign,
  SIGNATURE_BYTES,
  verifySignature,
  writeKeyFile,
} from "../lib/keys.ts";
import { assertRejectsError, makeKeyPair, makeTempDir } from "./_helpers.ts";

// RFC 8032, section 7.1, TEST 1 (empty message) and TEST 2 (one byte).
const RFC_SEED_1 = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const RFC_PUBLIC_1 = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const RFC_SIGNATURE_1 =
  "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
const RFC_SEED_2 = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
const RFC_PUBLIC_2 = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
const RFC_SIGNATURE_2 =
  "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00";

/** Writes `text` as a key file private to its owner, the way a hand-edited key file would be. */
async function writePrivateText(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(path, text, { mode: 0o600 });
  await Deno.chmod(path, 0o600);
}

/** The JSON of a valid key file for `n`'s test key pair, as an object to spoil. */
async function keyFileJson(n: number): Promise<Record<string, unknown>> {
  const keyPair = await makeKeyPair(n);
  return { kind: "coin-ed25519-key", version: 1, public: keyPair.publicHex, seed: toHex(keyPair.seed) };
}

Deno.test("keyPairFromSeed() derives the RFC 8032 public keys", async () => {
  const one = await keyPairFromSeed(fromHex(RFC_SEED_1)!);
  assert.equal(one.publicHex, RFC_PUBLIC_1);
  assert.equal(toHex(one.publicKey), RFC_PUBLIC_1);
  assert.equal(toHex(one.seed), RFC_SEED_1);
  const two = await keyPairFromSeed(fromHex(RFC_SEED_2)!);
  assert.equal(two.publicHex, RFC_PUBLIC_2);
});

Deno.test("sign() produces the RFC 8032 signatures", async () => {
  const one = await keyPairFromSeed(fromHex(RFC_SEED_1)!);
  assert.equal(toHex(await sign(one, new Uint8Array(0))), RFC_SIGNATURE_1);
  const two = await keyPairFromSeed(fromHex(RFC_SEED_2)!);
  assert.equal(toHex(await sign(two, Uint8Array.of(0x72))), RFC_SIGNATURE_2);
});

Deno.test("keyPairFromSeed() of a generated key pair's seed gives the same key pair", async () => {
  const generated = await generateKeyPair();
  assert.equal(generated.publicKey.length, PUBLIC_KEY_BYTES);
  assert.equal(generated.seed.length, SEED_BYTES);
  assert.equal(generated.publicHex, toHex(generated.publicKey));
  const again = await keyPairFromSeed(generated.seed);
  assert.equal(again.publicHex, generated.publicHex);
  const message = new TextEncoder().encode("round trip");
  assert.deepEqual(await sign(again, message), await sign(generated, message));
});

Deno.test("generateKeyPair() returns a different key pair each time", async () => {
  const a = await generateKeyPair();
  const b = await generateKeyPair();
  assert.notEqual(a.publicHex, b.publicHex);
});

Deno.test("keyPairFromSeed() keeps its own copy of the seed", async () => {
  const seed = new Uint8Array(32).fill(9);
  const keyPair = await keyPairFromSeed(seed);
  seed.fill(0);
  assert.deepEqual(keyPair.seed, new Uint8Array(32).fill(9));
});

Deno.test("keyPairFromSeed() throws RangeError for a seed that is not 32 bytes", async () => {
  await assertRejectsError(() => keyPairFromSeed(new Uint8Array(31)), RangeError, /32 bytes/);
  await assertRejectsError(() => keyPairFromSeed(new Uint8Array(33)), RangeError, /32 bytes/);
});

Deno.test("verifySignature() accepts a signature and refuses any change to it", async (t) => {
  const keyPair = await makeKeyPair(1);
  const other = await makeKeyPair(2);
  const message = new TextEncoder().encode("pay bob 5");
  const signature = await sign(keyPair, message);
  assert.equal(signature.length, SIGNATURE_BYTES);

  await t.step("the signature verifies", () => {
    assert.equal(verifySignature(keyPair.publicKey, message, signature), true);
  });
  await t.step("another message does not", () => {
    assert.equal(verifySignature(keyPair.publicKey, new TextEncoder().encode("pay bob 6"), signature), false);
  });
  await t.step("another key does not", () => {
    assert.equal(verifySignature(other.publicKey, message, signature), false);
  });
  await t.step("a flipped bit anywhere in the signature does not", () => {
    for (let i = 0; i < SIGNATURE_BYTES; i++) {
      const bad = signature.slice();
      bad[i]! ^= 1;
      assert.equal(verifySignature(keyPair.publicKey, message, bad), false, `bit flipped in byte ${i}`);
    }
  });
  await t.step("wrong lengths return false instead of throwing", () => {
    assert.equal(verifySignature(keyPair.publicKey.subarray(0, 31), message, signature), false);
    assert.equal(verifySignature(keyPair.publicKey, message, signature.subarray(0, 63)), false);
    assert.equal(verifySignature(keyPair.publicKey, message, new Uint8Array(65)), false);
  });
});

Deno.test("verifySignature() returns false for public keys that are not curve points", () => {
  // Roughly half of all 32-byte strings do not decode to a point; none of them may throw.
  const random = crypto.getRandomValues(new Uint8Array(32 * 64));
  const message = Uint8Array.of(1, 2, 3);
  for (let i = 0; i < 64; i++) {
    const key = random.subarray(32 * i, 32 * (i + 1));
    assert.equal(verifySignature(key, message, new Uint8Array(SIGNATURE_BYTES)), false);
  }
  assert.equal(verifySignature(new Uint8Array(32).fill(0xff), message, new Uint8Array(64)), false);
});

Deno.test("writeKeyFile() writes a file readKeyFile() reads back", async () => {
  await using dir = await makeTempDir();
  const path = `${dir.path}/alice.key`;
  const keyPair = await makeKeyPair(7);
  await writeKeyFile(path, keyPair);
  const read = await readKeyFile(path);
  assert.equal(read.publicHex, keyPair.publicHex);
  assert.deepEqual(read.seed, keyPair.seed);
  const json = JSON.parse(await Deno.readTextFile(path));
  assert.deepEqual(json, {
    kind: "coin-ed25519-key",
    version: 1,
    public: keyPair.publicHex,
    seed: toHex(keyPair.seed),
  });
});

Deno.test("writeKeyFile() creates the file with mode 0600", async () => {
  await using dir = await makeTempDir();
  const path = `${dir.path}/alice.key`;
  await writeKeyFile(path, await makeKeyPair(7));
  const info = await Deno.stat(path);
  assert.equal(info.mode! & 0o777, 0o600);
  await writeKeyFile(path, await makeKeyPair(8), { force: true });
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600, "a replaced key file is private too");
});

Deno.test("writeKeyFile() refuses to replace an existing file unless forced", async (t) => {
  await using dir = await makeTempDir();
  const path = `${dir.path}/alice.key`;
  const first = await makeKeyPair(1);
  const second = await makeKeyPair(2);
  await writeKeyFile(path, first);

  await t.step("without force it throws CoinError and leaves the file as it was", async () => {
    const before = await Deno.readFile(path);
    const err = await assertRejectsError(() => writeKeyFile(path, second), CoinError, /already exists/);
    assert.ok(err.message.includes(path));
    assert.deepEqual(await Deno.readFile(path), before);
    assert.equal((await readKeyFile(path)).publicHex, first.publicHex);
  });
  await t.step("force: false behaves as the default", async () => {
    await assertRejectsError(() => writeKeyFile(path, second, { force: false }), CoinError, /already exists/);
  });
  await t.step("with force it replaces the file", async () => {
    await writeKeyFile(path, second, { force: true });
    assert.equal((await readKeyFile(path)).publicHex, second.publicHex);
  });
  await t.step("no temporary file is left behind", async () => {
    const names = [];
    for await (const entry of Deno.readDir(dir.path)) names.push(entry.name);
    assert.deepEqual(names, ["alice.key"]);
  });
});

Deno.test("readKeyFile() refuses a bad key file with a one-line CoinError", async (t) => {
  await using dir = await makeTempDir();

  async function refuses(name: string, pattern: RegExp): Promise<void> {
    const path = `${dir.path}/${name}`;
    const err = await assertRejectsError(() => readKeyFile(path), CoinError, pattern);
    assert.ok(!err.message.includes("\n"), `one line: ${err.message}`);
    assert.ok(err.message.includes(`"${path}"`), `names the file: ${err.message}`);
  }

  await t.step("a missing file", async () => {
    await refuses("missing.key", /does not exist/);
  });
  await t.step("a directory", async () => {
    await Deno.mkdir(`${dir.path}/dir.key`);
    await refuses("dir.key", /not a file/);
  });
  await t.step("a file that is not JSON", async () => {
    await writePrivateText(`${dir.path}/text.key`, "seed=abc\n");
    await refuses("text.key", /not valid JSON/);
  });
  await t.step("a file that is too large to be a key file", async () => {
    await writePrivateText(`${dir.path}/large.key`, " ".repeat(5000));
    await refuses("large.key", /larger than 4096 bytes/);
  });
  await t.step("JSON of another kind", async () => {
    const json = { ...await keyFileJson(1), kind: "ssh-key" };
    await writePrivateText(`${dir.path}/kind.key`, JSON.stringify(json));
    await refuses("kind.key", /not a coin key file/);
  });
  await t.step("JSON that is not an object", async () => {
    await writePrivateText(`${dir.path}/null.key`, "null");
    await refuses("null.key", /not a coin key file/);
  });
  await t.step("an unsupported version", async () => {
    const json = { ...await keyFileJson(1), version: 2 };
    await writePrivateText(`${dir.path}/version.key`, JSON.stringify(json));
    await refuses("version.key", /unsupported version 2/);
  });
  await t.step("a seed that is not 64 hex digits", async () => {
    for (const [i, seed] of ["zz".repeat(32), "ab".repeat(31), 42].entries()) {
      const json = { ...await keyFileJson(1), seed };
      await writePrivateText(`${dir.path}/seed${i}.key`, JSON.stringify(json));
      await refuses(`seed${i}.key`, /"seed" is not 64 hex digits/);
    }
  });
  await t.step("a public key that does not match the seed", async () => {
    const json = { ...await keyFileJson(1), public: (await makeKeyPair(2)).publicHex };
    await writePrivateText(`${dir.path}/public.key`, JSON.stringify(json));
    await refuses("public.key", /"public" does not match its seed/);
  });
  await t.step("a file other users can read", async () => {
    const path = `${dir.path}/open.key`;
    await writeKeyFile(path, await makeKeyPair(1));
    await Deno.chmod(path, 0o644);
    await refuses("open.key", /other users can access it \(mode 0644\); run chmod 600/);
    await Deno.chmod(path, 0o640);
    await refuses("open.key", /mode 0640/);
    await Deno.chmod(path, 0o604);
    await refuses("open.key", /mode 0604/);
    await Deno.chmod(path, 0o600);
    assert.equal((await readKeyFile(path)).publicHex, (await makeKeyPair(1)).publicHex);
  });
});
