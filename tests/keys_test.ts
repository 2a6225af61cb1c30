// Tests of lib/keys.ts: Ed25519 key derivation and signatures (RFC 8032 vectors) and the key file, plain or
// encrypted with a passphrase, whose every refusal must be one CoinError line an operator can act on.

import assert from "node:assert/strict";
import { fromHex, toHex } from "../lib/_bytes.ts";
import { CoinError } from "../lib/errors.ts";
import * as keysModule from "../lib/keys.ts";
import {
  generateKeyPair,
  keyPairFromSeed,
  MAX_PASSPHRASE_BYTES,
  MIN_PASSPHRASE_CHARS,
  passphraseProblem,
  PUBLIC_KEY_BYTES,
  readKeyFile,
  readKeyFileSummary,
  SCRYPT_N,
  SCRYPT_P,
  SCRYPT_R,
  SEED_BYTES,
  sign,
  SIGNATURE_BYTES,
  verifySignature,
  writeKeyFile,
} from "../lib/keys.ts";
import { assertRejectsError, makeKeyPair, makeTempDir, repoPath } from "./_helpers.ts";

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
    const json = { ...await keyFileJson(1), version: 3 };
    await writePrivateText(`${dir.path}/version.key`, JSON.stringify(json));
    await refuses("version.key", /unsupported version 3/);
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

// --- Encrypted key files (version 2). Every scrypt call costs about half a second: the tests run them
// concurrently (node:crypto's scrypt runs off the main thread) and reuse the documented example file.

const PASSPHRASE = "correct horse battery staple";

/** A passphrase source that answers `passphrase` and counts how often it was asked. */
function answering(passphrase: string): ((path: string) => Promise<string>) & { asked: number } {
  const source = Object.assign(() => {
    source.asked++;
    return Promise.resolve(passphrase);
  }, { asked: 0 });
  return source;
}

/** The fenced block titled `title` in docs/protocol.md. */
async function docBlock(title: string): Promise<string> {
  const doc = await Deno.readTextFile(repoPath("docs/protocol.md"));
  const match = new RegExp('^```json title="' + title + '"\n([\\s\\S]*?)^```$', "m").exec(doc);
  assert.ok(match !== null, `docs/protocol.md has a block titled "${title}"`);
  return match[1]!;
}

/** The encrypted key file example of docs/protocol.md (seed 32 × 0x01, passphrase PASSPHRASE). */
const EXAMPLE = JSON.parse(await docBlock("encrypted-key-file-example")) as {
  public: string;
  kdf: { N: number; salt: string };
  cipher: { nonce: string };
  sealed: string;
};

Deno.test("writeKeyFile() with a passphrase writes a version-2 file that only the passphrase opens", async (t) => {
  await using dir = await makeTempDir();
  const path = `${dir.path}/alice.key`;
  const keyPair = await makeKeyPair(7);
  await Promise.all([
    writeKeyFile(path, keyPair, { passphrase: PASSPHRASE }),
    writeKeyFile(`${dir.path}/again.key`, keyPair, { passphrase: PASSPHRASE }),
  ]);
  const text = await Deno.readTextFile(path);
  const json = JSON.parse(text);

  await t.step(
    "the layout of docs/protocol.md, with fresh salt and nonce, and no seed in clear",
    async () => {
      assert.deepEqual(Object.keys(json), ["kind", "version", "public", "kdf", "cipher", "sealed"]);
      assert.deepEqual({ ...json, kdf: { ...json.kdf, salt: "" }, cipher: { ...json.cipher, nonce: "" } }, {
        kind: "coin-ed25519-key",
        version: 2,
        public: keyPair.publicHex,
        kdf: { name: "scrypt", N: SCRYPT_N, r: SCRYPT_R, p: SCRYPT_P, salt: "" },
        cipher: { name: "aes-256-gcm", nonce: "" },
        sealed: json.sealed,
      });
      assert.equal([SCRYPT_N, SCRYPT_R, SCRYPT_P].join(), "131072,8,1");
      assert.match(json.kdf.salt, /^[0-9a-f]{32}$/);
      assert.match(json.cipher.nonce, /^[0-9a-f]{24}$/);
      assert.match(json.sealed, /^[0-9a-f]{96}$/);
      assert.ok(!text.includes(toHex(keyPair.seed)), "the seed is not in the file");
      assert.ok(!text.includes(PASSPHRASE), "nor the passphrase");
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
      const again = JSON.parse(await Deno.readTextFile(`${dir.path}/again.key`));
      assert.notEqual(again.kdf.salt, json.kdf.salt);
      assert.notEqual(again.cipher.nonce, json.cipher.nonce);
    },
  );
  await t.step("readKeyFile() asks once and opens it; readKeyFileSummary() needs no passphrase", async () => {
    const source = answering(PASSPHRASE);
    const read = await readKeyFile(path, { passphrase: source });
    assert.equal(source.asked, 1);
    assert.equal(read.publicHex, keyPair.publicHex);
    assert.deepEqual(read.seed, keyPair.seed);
    assert.deepEqual(await readKeyFileSummary(path), { publicHex: keyPair.publicHex, version: 2 });
  });
  await t.step("a wrong, an empty or no passphrase is refused in one line naming the file", async () => {
    const [wrong, empty, none] = await Promise.all([
      assertRejectsError(
        () => readKeyFile(path, { passphrase: answering("correct horse battery stapler") }),
        CoinError,
        /^Cannot read key file ".*alice\.key": wrong passphrase \(or the file was altered\)$/,
      ),
      assertRejectsError(
        () => readKeyFile(path, { passphrase: answering("") }),
        CoinError,
        /^Cannot read key file ".*alice\.key": the passphrase is empty$/,
      ),
      assertRejectsError(
        () => readKeyFile(path),
        CoinError,
        /^Cannot read key file ".*alice\.key": it is encrypted and no passphrase was given$/,
      ),
    ]);
    for (const err of [wrong, empty, none]) assert.ok(err.message.includes(`"${path}"`));
  });
});

Deno.test("readKeyFile() never asks for the passphrase of a plain key file", async () => {
  await using dir = await makeTempDir();
  const keyPair = await makeKeyPair(3);
  await writeKeyFile(`${dir.path}/plain.key`, keyPair);
  const source = answering(PASSPHRASE);
  assert.equal(
    (await readKeyFile(`${dir.path}/plain.key`, { passphrase: source })).publicHex,
    keyPair.publicHex,
  );
  assert.equal(source.asked, 0);
  assert.deepEqual(await readKeyFileSummary(`${dir.path}/plain.key`), {
    publicHex: keyPair.publicHex,
    version: 1,
  });
});

Deno.test("the encrypted key file example of docs/protocol.md opens with its passphrase to its seed", async () => {
  await using dir = await makeTempDir();
  await writePrivateText(`${dir.path}/example.key`, await docBlock("encrypted-key-file-example"));
  const keyPair = await readKeyFile(`${dir.path}/example.key`, { passphrase: answering(PASSPHRASE) });
  assert.deepEqual(keyPair.seed, new Uint8Array(32).fill(1));
  assert.equal(keyPair.publicHex, EXAMPLE.public);
  assert.equal(EXAMPLE.public, JSON.parse(await docBlock("key-file-example")).public, "the same payer");
});

Deno.test("the constants table of docs/protocol.md section 2.1 names the values of lib/keys.ts", async () => {
  const doc = await Deno.readTextFile(repoPath("docs/protocol.md"));
  const section = doc.slice(doc.indexOf("### 2.1 Encrypted key file"), doc.indexOf("## 3. Transfer"));
  const rows = [...section.matchAll(/^\| `([A-Z_]+)` +\| ([0-9,]+) +\|$/gm)];
  assert.equal(rows.length, 13);
  const constants = keysModule as unknown as Record<string, unknown>;
  for (const [, name, written] of rows) {
    assert.equal(constants[name!], Number(written!.replace(/,/g, "")), `${name} is written as ${written}`);
  }
});

Deno.test("readKeyFile() refuses an altered encrypted file as it refuses a wrong passphrase", async () => {
  await using dir = await makeTempDir();
  const flip = (hex: string, at: number) =>
    hex.slice(0, at) + (hex[at] === "0" ? "1" : "0") + hex.slice(at + 1);
  const cases: [string, Record<string, unknown>][] = [
    ["a ciphertext byte", { ...EXAMPLE, sealed: flip(EXAMPLE.sealed, 0) }],
    ["the nonce", { ...EXAMPLE, cipher: { ...EXAMPLE.cipher, nonce: flip(EXAMPLE.cipher.nonce, 3) } }],
    ["the salt", { ...EXAMPLE, kdf: { ...EXAMPLE.kdf, salt: flip(EXAMPLE.kdf.salt, 5) } }],
    ["N", { ...EXAMPLE, kdf: { ...EXAMPLE.kdf, N: EXAMPLE.kdf.N / 2 } }],
    ["the public key (another account's)", { ...EXAMPLE, public: (await makeKeyPair(2)).publicHex }],
  ];
  await Promise.all(cases.map(async ([what, json], i) => {
    const path = `${dir.path}/altered${i}.key`;
    await writePrivateText(path, JSON.stringify(json));
    const err = await assertRejectsError(
      () => readKeyFile(path, { passphrase: answering(PASSPHRASE) }),
      CoinError,
      /wrong passphrase \(or the file was altered\)$/,
    );
    assert.ok(err.message.includes(`"${path}"`), what);
  }));
});

Deno.test("readKeyFile() refuses hostile or malformed version-2 fields before asking for a passphrase", async (t) => {
  await using dir = await makeTempDir();
  const BOUNDS =
    /are outside the bounds coin accepts \(N a power of two from 16384 to 1048576, r at most 16, p at most 4, 128 × N × r at most 1073741824 bytes\)$/;
  const kdf = (fields: Record<string, unknown>) => ({ ...EXAMPLE, kdf: { ...EXAMPLE.kdf, ...fields } });
  const cases: [string, unknown, RegExp][] = [
    ["N of 2^30 (128 GiB)", kdf({ N: 2 ** 30 }), /scrypt parameters \(N 1073741824, r 8, p 1\)/],
    ["N above 2^20", kdf({ N: 2 ** 21 }), BOUNDS],
    ["N below 2^14", kdf({ N: 2 ** 13 }), BOUNDS],
    ["N not a power of two", kdf({ N: 100_000 }), BOUNDS],
    ["N as a string", kdf({ N: "131072" }), /\(N 131072, r 8, p 1\) are outside/],
    ["N missing", kdf({ N: undefined }), /\(N undefined, r 8, p 1\)/],
    ["r of 32", kdf({ r: 32 }), BOUNDS],
    ["r of 0", kdf({ r: 0 }), BOUNDS],
    ["r fractional", kdf({ r: 1.5 }), BOUNDS],
    ["p of 8", kdf({ p: 8 }), BOUNDS],
    ["N 2^20 and r 16 (2 GiB)", kdf({ N: 2 ** 20, r: 16 }), BOUNDS],
    ["another KDF", kdf({ name: "pbkdf2" }), /"kdf" is not \{"name": "scrypt", \.\.\.\}$/],
    ["no KDF", { ...EXAMPLE, kdf: "scrypt" }, /"kdf" is not/],
    ["a short salt", kdf({ salt: "0001" }), /"kdf\.salt" is not 32 hex digits$/],
    [
      "another cipher",
      { ...EXAMPLE, cipher: { name: "aes-128-gcm", nonce: "00".repeat(12) } },
      /"cipher" is not/,
    ],
    [
      "a long nonce",
      { ...EXAMPLE, cipher: { name: "aes-256-gcm", nonce: "00".repeat(16) } },
      /"cipher\.nonce" is not 24 hex digits$/,
    ],
    [
      "a short sealed seed",
      { ...EXAMPLE, sealed: EXAMPLE.sealed.slice(0, 64) },
      /"sealed" is not 96 hex digits$/,
    ],
    [
      "a sealed seed that is not hex",
      { ...EXAMPLE, sealed: "zz".repeat(48) },
      /"sealed" is not 96 hex digits$/,
    ],
    [
      "an uppercase public key",
      { ...EXAMPLE, public: EXAMPLE.public.toUpperCase() },
      /"public" is not 64 lowercase hex digits$/,
    ],
    ["no public key", { ...EXAMPLE, public: undefined }, /"public" is not 64 lowercase hex digits$/],
  ];
  for (const [i, [what, json, pattern]] of cases.entries()) {
    await t.step(what, async () => {
      const path = `${dir.path}/hostile${i}.key`;
      await writePrivateText(path, JSON.stringify(json));
      const source = answering(PASSPHRASE);
      const err = await assertRejectsError(
        () => readKeyFile(path, { passphrase: source }),
        CoinError,
        pattern,
      );
      assert.ok(err.message.startsWith(`Cannot read key file "${path}": `), err.message);
      assert.ok(!err.message.includes("\n"));
      assert.equal(source.asked, 0, "refused before the passphrase is asked for");
      await assertRejectsError(() => readKeyFileSummary(path), CoinError, pattern);
    });
  }
  await t.step("an encrypted file other users can access", async () => {
    const path = `${dir.path}/open.key`;
    await writePrivateText(path, JSON.stringify(EXAMPLE));
    await Deno.chmod(path, 0o640);
    await assertRejectsError(
      () => readKeyFile(path, { passphrase: answering(PASSPHRASE) }),
      CoinError,
      /mode 0640/,
    );
  });
});

Deno.test("passphraseProblem() refuses an empty, short or overlong new passphrase; writeKeyFile() too", async () => {
  assert.equal(passphraseProblem(""), "the passphrase is empty");
  assert.equal(
    passphraseProblem("x".repeat(MIN_PASSPHRASE_CHARS - 1)),
    "the passphrase is shorter than 8 characters",
  );
  assert.equal(passphraseProblem("x".repeat(MIN_PASSPHRASE_CHARS)), undefined);
  // Characters, not bytes or UTF-16 units: 8 emoji are 8 characters.
  assert.equal(passphraseProblem("🔑".repeat(MIN_PASSPHRASE_CHARS)), undefined);
  assert.equal(
    passphraseProblem("🔑".repeat(MIN_PASSPHRASE_CHARS - 4)),
    "the passphrase is shorter than 8 characters",
  );
  assert.equal(passphraseProblem("é".repeat(MAX_PASSPHRASE_BYTES / 2)), undefined);
  assert.equal(
    passphraseProblem("é".repeat(MAX_PASSPHRASE_BYTES / 2) + "x"),
    "the passphrase is longer than 512 bytes",
  );
  await using dir = await makeTempDir();
  const keyPair = await makeKeyPair(4);
  await assertRejectsError(
    () => writeKeyFile(`${dir.path}/short.key`, keyPair, { passphrase: "short" }),
    CoinError,
    /^Cannot encrypt key file ".*short\.key": the passphrase is shorter than 8 characters$/,
  );
  assert.deepEqual([...Deno.readDirSync(dir.path)], [], "nothing is written");
});

Deno.test("a passphrase opens its file however its accents were composed (NFC)", async () => {
  await using dir = await makeTempDir();
  const composed = "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e";
  const decomposed = composed.normalize("NFD");
  assert.notEqual(composed, decomposed);
  const keyPair = await makeKeyPair(5);
  await writeKeyFile(`${dir.path}/nfc.key`, keyPair, { passphrase: composed });
  const read = await readKeyFile(`${dir.path}/nfc.key`, { passphrase: answering(decomposed) });
  assert.equal(read.publicHex, keyPair.publicHex);
});

Deno.test("readKeyFileSummary() checks a plain file's seed against its public key", async () => {
  await using dir = await makeTempDir();
  const json = { ...await keyFileJson(1), public: (await makeKeyPair(2)).publicHex };
  await writePrivateText(`${dir.path}/mismatch.key`, JSON.stringify(json));
  await assertRejectsError(
    () => readKeyFileSummary(`${dir.path}/mismatch.key`),
    CoinError,
    /"public" does not match its seed$/,
  );
});
