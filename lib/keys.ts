// Ed25519 key pairs: generation and signing through WebCrypto, verification through node:crypto
// (synchronous, as fast as WebCrypto here: BENCHMARKS.md), and the key file that holds a seed on disk,
// in hex (version 1) or sealed with a passphrase (version 2: scrypt, then AES-256-GCM).

import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  scrypt,
  sign as nodeSign,
  verify as nodeVerify,
} from "node:crypto";
import { fromHex, toHex } from "./_bytes.ts";
import { CoinError } from "./errors.ts";
import { writeFileAtomic } from "./_files.ts";
import { JsonError, parseJson } from "./json.ts";

/** Bytes in a public key, a seed and a signature. */
export const PUBLIC_KEY_BYTES = 32;
export const SEED_BYTES = 32;
export const SIGNATURE_BYTES = 64;
/** A key file is a few hundred bytes; anything larger is not one. */
export const MAX_KEY_FILE_BYTES = 4096;
/** Verification keys kept imported between calls (payers repeat). */
export const VERIFY_KEY_CACHE_ENTRIES = 65_536;

const PKCS8_PREFIX = fromHex("302e020100300506032b657004220420")!;
const SPKI_PREFIX = fromHex("302a300506032b6570032100")!;

/** A signing identity: the 32-byte public key (the account id) and its WebCrypto private key. */
export interface KeyPair {
  readonly publicKey: Uint8Array;
  readonly publicHex: string;
  readonly seed: Uint8Array;
  readonly privateKey: CryptoKey;
}

function base64UrlToBytes(text: string): Uint8Array {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** Builds the key pair of a 32-byte seed. */
export async function keyPairFromSeed(seed: Uint8Array): Promise<KeyPair> {
  if (seed.length !== SEED_BYTES) throw new RangeError(`Seed must be ${SEED_BYTES} bytes`);
  const pkcs8 = new Uint8Array(PKCS8_PREFIX.length + SEED_BYTES);
  pkcs8.set(PKCS8_PREFIX);
  pkcs8.set(seed, PKCS8_PREFIX.length);
  const extractable = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, [
    "sign",
  ]);
  const jwk = await crypto.subtle.exportKey("jwk", extractable);
  const publicKey = base64UrlToBytes(jwk.x!);
  const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, [
    "sign",
  ]);
  return { publicKey, publicHex: toHex(publicKey), seed: seed.slice(), privateKey };
}

/** A new random key pair. */
export async function generateKeyPair(): Promise<KeyPair> {
  return await keyPairFromSeed(crypto.getRandomValues(new Uint8Array(SEED_BYTES)));
}

/** Ed25519 signature of `message` (64 bytes). */
export async function sign(keyPair: KeyPair, message: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.sign("Ed25519", keyPair.privateKey, message as Uint8Array<ArrayBuffer>),
  );
}

/** Checks an Ed25519 signature: `verifySignature`, or a memo of it (the simulator shares one). */
export type Verifier = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean;

/** Signs synchronously: what the deterministic replica core is given (Ed25519 signatures are deterministic). */
export type Signer = (message: Uint8Array) => Uint8Array;

/**
 * A synchronous Ed25519 signer for `keyPair` through node:crypto. Ed25519 is deterministic, so the same
 * key and message give the same signature: the replica core stays a pure function of its inputs.
 */
export function signerOf(keyPair: Pick<KeyPair, "seed">): Signer {
  const pkcs8 = new Uint8Array(PKCS8_PREFIX.length + SEED_BYTES);
  pkcs8.set(PKCS8_PREFIX);
  pkcs8.set(keyPair.seed, PKCS8_PREFIX.length);
  const key = createPrivateKey({ key: pkcs8 as unknown as Buffer, format: "der", type: "pkcs8" });
  return (message) => {
    const sig = nodeSign(null, message, key);
    return new Uint8Array(sig.buffer, sig.byteOffset, sig.byteLength);
  };
}

/** The public key of a seed, computed synchronously (the simulator derives its keys from its seed). */
export function publicKeyOfSeed(seed: Uint8Array): Uint8Array {
  const pkcs8 = new Uint8Array(PKCS8_PREFIX.length + SEED_BYTES);
  pkcs8.set(PKCS8_PREFIX);
  pkcs8.set(seed, PKCS8_PREFIX.length);
  const key = createPrivateKey({ key: pkcs8 as unknown as Buffer, format: "der", type: "pkcs8" });
  const spki = createPublicKey(key).export({ format: "der", type: "spki" });
  return new Uint8Array(spki.buffer, spki.byteOffset + SPKI_PREFIX.length, PUBLIC_KEY_BYTES).slice();
}

const verifyKeys = new Map<string, KeyObject>();

function verifyKey(publicKey: Uint8Array): KeyObject {
  const hex = toHex(publicKey);
  let key = verifyKeys.get(hex);
  if (key === undefined) {
    const spki = new Uint8Array(SPKI_PREFIX.length + PUBLIC_KEY_BYTES);
    spki.set(SPKI_PREFIX);
    spki.set(publicKey, SPKI_PREFIX.length);
    key = createPublicKey({ key: spki as unknown as Buffer, format: "der", type: "spki" });
    if (verifyKeys.size >= VERIFY_KEY_CACHE_ENTRIES) verifyKeys.clear();
    verifyKeys.set(hex, key);
  }
  return key;
}

/** True when `signature` is `publicKey`'s Ed25519 signature of `message`. Never throws on bad input. */
export function verifySignature(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (publicKey.length !== PUBLIC_KEY_BYTES || signature.length !== SIGNATURE_BYTES) return false;
  try {
    return nodeVerify(null, message, verifyKey(publicKey), signature);
  } catch {
    // A 32-byte string that is not a curve point cannot have signed anything.
    return false;
  }
}

/** The version of a key file: 1 holds the seed in hex, 2 holds it encrypted with a passphrase. */
export type KeyFileVersion = 1 | 2;

/** The scrypt cost of a new encrypted key file: N = 2^17, r = 8, p = 1 (128 MiB, about half a second). */
export const SCRYPT_N = 131_072;
export const SCRYPT_R = 8;
export const SCRYPT_P = 1;
/**
 * Bounds on the scrypt parameters a key file may ask for: a hostile file cannot make a reader spend more
 * than MAX_SCRYPT_MEMORY_BYTES (128 × N × r) of memory, nor a weak one go below MIN_SCRYPT_N.
 */
export const MIN_SCRYPT_N = 16_384;
export const MAX_SCRYPT_N = 1_048_576;
export const MAX_SCRYPT_R = 16;
export const MAX_SCRYPT_P = 4;
export const MAX_SCRYPT_MEMORY_BYTES = 1_073_741_824;
/** Bytes of the scrypt salt, the AES-256-GCM nonce and its authentication tag. */
export const KDF_SALT_BYTES = 16;
export const CIPHER_NONCE_BYTES = 12;
export const CIPHER_TAG_BYTES = 16;
/**
 * Bounds on a new passphrase, in Unicode code points after NFC normalization (the minimum) and UTF-8
 * bytes (the maximum, below the terminal's MAX_ANSWER_BYTES so a truncated answer cannot pass).
 */
export const MIN_PASSPHRASE_CHARS = 8;
export const MAX_PASSPHRASE_BYTES = 512;

const KIND = "coin-ed25519-key";
const AES_KEY_BYTES = 32;
const SEALED_BYTES = SEED_BYTES + CIPHER_TAG_BYTES;
const LOWER_HEX_64 = /^[0-9a-f]{64}$/;

/** The JSON of a version-1 key file: the seed in clear. */
interface PlainKeyFileJson {
  kind: typeof KIND;
  version: 1;
  public: string;
  seed: string;
}

/** The JSON of a version-2 key file: the seed sealed with a key derived from a passphrase. */
interface EncryptedKeyFileJson {
  kind: typeof KIND;
  version: 2;
  public: string;
  kdf: { name: "scrypt"; N: number; r: number; p: number; salt: string };
  cipher: { name: "aes-256-gcm"; nonce: string };
  sealed: string;
}

/** A key file checked up to its secret: version 2's seed is still sealed. */
type ParsedKeyFile =
  | { version: 1; publicHex: string; seed: Uint8Array }
  | {
    version: 2;
    publicHex: string;
    kdf: { N: number; r: number; p: number; salt: Uint8Array };
    nonce: Uint8Array;
    sealed: Uint8Array;
  };

/** What a key file says without its passphrase: its public key, and whether its seed is encrypted. */
export interface KeyFileSummary {
  readonly publicHex: string;
  readonly version: KeyFileVersion;
}

/** Why `passphrase` cannot protect a new key file, or undefined when it can. */
export function passphraseProblem(passphrase: string): string | undefined {
  const normalized = passphrase.normalize("NFC");
  if (normalized.length === 0) return "the passphrase is empty";
  const chars = [...normalized].length;
  if (chars < MIN_PASSPHRASE_CHARS) {
    return `the passphrase is shorter than ${MIN_PASSPHRASE_CHARS} characters`;
  }
  if (new TextEncoder().encode(normalized).length > MAX_PASSPHRASE_BYTES) {
    return `the passphrase is longer than ${MAX_PASSPHRASE_BYTES} bytes`;
  }
  return undefined;
}

/** The AES-256 key of `passphrase` (UTF-8 of its NFC form) under scrypt with these parameters. */
async function deriveKey(
  passphrase: string,
  kdf: { N: number; r: number; p: number; salt: Uint8Array },
): Promise<Uint8Array> {
  const secret = new TextEncoder().encode(passphrase.normalize("NFC"));
  // scrypt needs 128 × N × r bytes, plus 128 × r × p; twice the first covers both within the bounds.
  const maxmem = 2 * 128 * kdf.N * kdf.r;
  const key = await new Promise<Buffer>((resolve, reject) =>
    scrypt(secret, kdf.salt, AES_KEY_BYTES, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem }, (err, derived) => {
      if (err) reject(err);
      else resolve(derived);
    })
  );
  return new Uint8Array(key.buffer, key.byteOffset, key.byteLength);
}

/** AES-256-GCM of the seed, authenticated with the public key's hex as associated data. */
function seal(key: Uint8Array, nonce: Uint8Array, seed: Uint8Array, publicHex: string): Uint8Array {
  const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: CIPHER_TAG_BYTES });
  cipher.setAAD(new TextEncoder().encode(publicHex));
  const body = cipher.update(seed);
  const final = cipher.final();
  const tag = cipher.getAuthTag();
  const out = new Uint8Array(SEALED_BYTES);
  out.set(body);
  out.set(final, body.length);
  out.set(tag, SEED_BYTES);
  return out;
}

/** The seed `seal` sealed, or undefined when the key, nonce, public key or sealed bytes differ. */
function openSealed(
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  publicHex: string,
): Uint8Array | undefined {
  const decipher = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: CIPHER_TAG_BYTES });
  decipher.setAAD(new TextEncoder().encode(publicHex));
  decipher.setAuthTag(sealed.subarray(SEED_BYTES));
  const body = decipher.update(sealed.subarray(0, SEED_BYTES));
  try {
    const final = decipher.final();
    const seed = new Uint8Array(SEED_BYTES);
    seed.set(body);
    seed.set(final, body.length);
    return seed;
  } catch {
    // The tag did not authenticate: a wrong passphrase, or a changed byte anywhere in the sealed parts.
    return undefined;
  }
}

/** The version-2 JSON of `keyPair`, its seed sealed under `passphrase` with a fresh salt and nonce. */
async function encryptedJson(keyPair: KeyPair, passphrase: string): Promise<EncryptedKeyFileJson> {
  const kdf = {
    N: SCRYPT_N,
    r: SCRYPT_R,
    p: SCRYPT_P,
    salt: crypto.getRandomValues(new Uint8Array(KDF_SALT_BYTES)),
  };
  const nonce = crypto.getRandomValues(new Uint8Array(CIPHER_NONCE_BYTES));
  const key = await deriveKey(passphrase, kdf);
  const sealed = seal(key, nonce, keyPair.seed, keyPair.publicHex);
  // Nothing is written that does not open again to the same seed.
  const reopened = openSealed(key, nonce, sealed, keyPair.publicHex);
  if (reopened === undefined || toHex(reopened) !== toHex(keyPair.seed)) {
    throw new Error("Assertion failed: a sealed seed does not open to itself");
  }
  return {
    kind: KIND,
    version: 2,
    public: keyPair.publicHex,
    kdf: { name: "scrypt", N: kdf.N, r: kdf.r, p: kdf.p, salt: toHex(kdf.salt) },
    cipher: { name: "aes-256-gcm", nonce: toHex(nonce) },
    sealed: toHex(sealed),
  };
}

/**
 * Writes `keyPair` to `path` with mode 0600, atomically; refuses to replace an existing file unless
 * `force`. With `passphrase` the seed is encrypted (version 2: scrypt and AES-256-GCM), otherwise it is
 * written in hex (version 1).
 *
 * @example
 * ```ts
 * await writeKeyFile("alice.key", await generateKeyPair(), { passphrase: "correct horse battery" });
 * ```
 */
export async function writeKeyFile(
  path: string,
  keyPair: KeyPair,
  options: { force?: boolean; passphrase?: string | undefined } = {},
): Promise<void> {
  let json: PlainKeyFileJson | EncryptedKeyFileJson;
  if (options.passphrase === undefined) {
    json = { kind: KIND, version: 1, public: keyPair.publicHex, seed: toHex(keyPair.seed) };
  } else {
    const problem = passphraseProblem(options.passphrase);
    if (problem !== undefined) throw new CoinError(`Cannot encrypt key file "${path}": ${problem}`);
    json = await encryptedJson(keyPair, options.passphrase);
  }
  const bytes = new TextEncoder().encode(JSON.stringify(json, null, 2) + "\n");
  await writeFileAtomic(path, bytes, { mode: 0o600, overwrite: options.force ?? false });
}

/** True for a JSON object (not null, not an array). */
function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The scrypt parameters of a version-2 file, or the reason they are refused before any work. */
function checkKdf(path: string, kdf: unknown): { N: number; r: number; p: number; salt: Uint8Array } {
  if (!isObject(kdf) || kdf.name !== "scrypt") {
    throw new CoinError(`Cannot read key file "${path}": "kdf" is not {"name": "scrypt", ...}`);
  }
  const { N, r, p } = kdf;
  const isCount = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 1;
  if (
    !isCount(N) || !isCount(r) || !isCount(p) || (N & (N - 1)) !== 0 || N < MIN_SCRYPT_N ||
    N > MAX_SCRYPT_N || r > MAX_SCRYPT_R || p > MAX_SCRYPT_P || 128 * N * r > MAX_SCRYPT_MEMORY_BYTES
  ) {
    throw new CoinError(
      `Cannot read key file "${path}": its scrypt parameters (N ${String(N)}, r ${String(r)}, ` +
        `p ${String(p)}) are outside the bounds coin accepts (N a power of two from ${MIN_SCRYPT_N} to ` +
        `${MAX_SCRYPT_N}, r at most ${MAX_SCRYPT_R}, p at most ${MAX_SCRYPT_P}, 128 × N × r at most ` +
        `${MAX_SCRYPT_MEMORY_BYTES} bytes)`,
    );
  }
  const salt = typeof kdf.salt === "string" ? fromHex(kdf.salt, KDF_SALT_BYTES) : undefined;
  if (salt === undefined) {
    throw new CoinError(`Cannot read key file "${path}": "kdf.salt" is not ${2 * KDF_SALT_BYTES} hex digits`);
  }
  return { N, r, p, salt };
}

/**
 * Reads `path` and checks everything but a version-2 file's sealed seed: private to its owner, at most
 * MAX_KEY_FILE_BYTES, a coin key file of a known version whose fields have their lengths and bounds.
 */
async function parseKeyFile(path: string): Promise<ParsedKeyFile> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new CoinError(`Cannot read key file "${path}": it does not exist`);
    }
    throw new CoinError(`Cannot read key file "${path}": ${(err as Error).message}`);
  }
  if (!info.isFile) throw new CoinError(`Cannot read key file "${path}": it is not a file`);
  if (info.size > MAX_KEY_FILE_BYTES) {
    throw new CoinError(`Cannot read key file "${path}": it is larger than ${MAX_KEY_FILE_BYTES} bytes`);
  }
  const text = await Deno.readTextFile(path);
  let parsed: unknown;
  try {
    parsed = parseJson(text);
  } catch (err) {
    if (!(err instanceof JsonError)) throw err;
    throw new CoinError(`Cannot read key file "${path}": it is not valid JSON: ${err.message}`);
  }
  if (!isObject(parsed) || parsed.kind !== KIND) {
    const network = isObject(parsed) && "servers" in parsed && "genesis" in parsed;
    throw new CoinError(
      `Cannot read key file "${path}": it is not a coin key file` +
        (network ? " (it looks like a network file, peers.json; coin keygen writes key files)" : ""),
    );
  }
  // Checked once the file is known to be a key file: advice about a secret's mode fits only a secret.
  // An encrypted seed is checked too: its passphrase may be weak, and its file should not be copied.
  if (info.mode !== null && (info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, "0");
    throw new CoinError(
      `Cannot use key file "${path}": other users can access it (mode ${mode}); run chmod 600 "${path}"`,
    );
  }
  if (parsed.version === 1) {
    const seed = typeof parsed.seed === "string" ? fromHex(parsed.seed, SEED_BYTES) : undefined;
    if (seed === undefined) {
      throw new CoinError(`Cannot read key file "${path}": "seed" is not 64 hex digits`);
    }
    return { version: 1, publicHex: String(parsed.public), seed };
  }
  if (parsed.version !== 2) {
    throw new CoinError(`Cannot read key file "${path}": unsupported version ${parsed.version}`);
  }
  if (typeof parsed.public !== "string" || !LOWER_HEX_64.test(parsed.public)) {
    throw new CoinError(`Cannot read key file "${path}": "public" is not 64 lowercase hex digits`);
  }
  const kdf = checkKdf(path, parsed.kdf);
  const cipher = parsed.cipher;
  if (!isObject(cipher) || cipher.name !== "aes-256-gcm") {
    throw new CoinError(`Cannot read key file "${path}": "cipher" is not {"name": "aes-256-gcm", ...}`);
  }
  const nonce = typeof cipher.nonce === "string" ? fromHex(cipher.nonce, CIPHER_NONCE_BYTES) : undefined;
  if (nonce === undefined) {
    throw new CoinError(
      `Cannot read key file "${path}": "cipher.nonce" is not ${2 * CIPHER_NONCE_BYTES} hex digits`,
    );
  }
  const sealed = typeof parsed.sealed === "string" ? fromHex(parsed.sealed, SEALED_BYTES) : undefined;
  if (sealed === undefined) {
    throw new CoinError(`Cannot read key file "${path}": "sealed" is not ${2 * SEALED_BYTES} hex digits`);
  }
  return { version: 2, publicHex: parsed.public, kdf, nonce, sealed };
}

/**
 * Reads and checks a key file: private to its owner, valid JSON, a seed matching its public key. An
 * encrypted file (version 2) calls `passphrase` for its passphrase, only then; without it, or with a
 * passphrase that does not open the seed, it is refused with a one-line CoinError.
 *
 * @example
 * ```ts
 * const alice = await readKeyFile("alice.key", { passphrase: () => Promise.resolve("correct horse battery") });
 * ```
 */
export async function readKeyFile(
  path: string,
  options: { passphrase?: (path: string) => Promise<string> } = {},
): Promise<KeyPair> {
  const file = await parseKeyFile(path);
  let seed: Uint8Array;
  if (file.version === 1) {
    seed = file.seed;
  } else {
    if (options.passphrase === undefined) {
      throw new CoinError(`Cannot read key file "${path}": it is encrypted and no passphrase was given`);
    }
    const passphrase = await options.passphrase(path);
    if (passphrase === "") throw new CoinError(`Cannot read key file "${path}": the passphrase is empty`);
    const opened = openSealed(await deriveKey(passphrase, file.kdf), file.nonce, file.sealed, file.publicHex);
    if (opened === undefined) {
      throw new CoinError(`Cannot read key file "${path}": wrong passphrase (or the file was altered)`);
    }
    seed = opened;
  }
  const keyPair = await keyPairFromSeed(seed);
  if (file.publicHex !== keyPair.publicHex) {
    throw new CoinError(`Cannot read key file "${path}": "public" does not match its seed`);
  }
  return keyPair;
}

/**
 * The public key and version of a key file, checked as `readKeyFile` checks it but without a passphrase:
 * an encrypted file's public key is in clear (its seed's match is proven only when the seed is opened).
 *
 * @example
 * ```ts
 * const { publicHex, version } = await readKeyFileSummary("alice.key"); // version 2: encrypted
 * ```
 */
export async function readKeyFileSummary(path: string): Promise<KeyFileSummary> {
  const file = await parseKeyFile(path);
  if (file.version === 1 && toHex(publicKeyOfSeed(file.seed)) !== file.publicHex) {
    throw new CoinError(`Cannot read key file "${path}": "public" does not match its seed`);
  }
  return { publicHex: file.publicHex, version: file.version };
}
