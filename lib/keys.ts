// Ed25519 key pairs: generation and signing through WebCrypto, verification through node:crypto
// (synchronous, as fast as WebCrypto here: BENCHMARKS.md), and the key file that holds a seed on disk.

import {
  createPrivateKey,
  createPublicKey,
  type KeyObject,
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

/** The JSON stored in a key file. */
interface KeyFileJson {
  kind: "coin-ed25519-key";
  version: 1;
  public: string;
  seed: string;
}

/** Writes `keyPair` to `path` with mode 0600; refuses to replace an existing file unless `force`. */
export async function writeKeyFile(
  path: string,
  keyPair: KeyPair,
  options: { force?: boolean } = {},
): Promise<void> {
  const json: KeyFileJson = {
    kind: "coin-ed25519-key",
    version: 1,
    public: keyPair.publicHex,
    seed: toHex(keyPair.seed),
  };
  const bytes = new TextEncoder().encode(JSON.stringify(json, null, 2) + "\n");
  await writeFileAtomic(path, bytes, { mode: 0o600, overwrite: options.force ?? false });
}

/** Reads and checks a key file: private to its owner, valid JSON, a seed matching its public key. */
export async function readKeyFile(path: string): Promise<KeyPair> {
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
  const obj = parsed as Partial<KeyFileJson> | null;
  if (typeof obj !== "object" || obj === null || obj.kind !== "coin-ed25519-key") {
    const network = typeof obj === "object" && obj !== null && "servers" in obj && "genesis" in obj;
    throw new CoinError(
      `Cannot read key file "${path}": it is not a coin key file` +
        (network ? " (it looks like a network file, peers.json; coin keygen writes key files)" : ""),
    );
  }
  // Checked once the file is known to be a key file: advice about a secret's mode fits only a secret.
  if (info.mode !== null && (info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, "0");
    throw new CoinError(
      `Cannot use key file "${path}": other users can access it (mode ${mode}); run chmod 600 "${path}"`,
    );
  }
  if (obj.version !== 1) {
    throw new CoinError(`Cannot read key file "${path}": unsupported version ${obj.version}`);
  }
  const seed = typeof obj.seed === "string" ? fromHex(obj.seed, SEED_BYTES) : undefined;
  if (seed === undefined) {
    throw new CoinError(`Cannot read key file "${path}": "seed" is not 64 hex digits`);
  }
  const keyPair = await keyPairFromSeed(seed);
  if (obj.public !== keyPair.publicHex) {
    throw new CoinError(`Cannot read key file "${path}": "public" does not match its seed`);
  }
  return keyPair;
}
