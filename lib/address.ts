// Account addresses: an account id (an Ed25519 public key, 32 bytes) as text that people copy by hand.
// Bech32m (BIP-350) with the prefix "coin": a mistyped character is refused, not paid. Up to 4 changed
// characters are always detected; a longer garble is missed with a chance of about 1 in 10^9. Raw hex (64
// digits) stays accepted for scripts. Layout and a worked example: docs/protocol.md section 15.

import { fromHex } from "./_bytes.ts";

/** The human-readable part: every address starts with `coin1`. */
export const ADDRESS_PREFIX = "coin";
/** The 32 characters of bech32, by value: no 1, b, i or o (easily confused with l, 8, j, 0). */
export const BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
/** BIP-350's constant, which the checksum of a valid bech32m string yields. */
const BECH32M_CONST = 0x2bc830a3;
/** The account id's 256 bits in 5-bit characters, the last one padded with 4 zero bits. */
const DATA_CHARS = 52;
/** The checksum's characters (30 bits). */
const CHECKSUM_CHARS = 6;
/** `coin1` + data + checksum: 63 characters. */
export const ADDRESS_CHARS = ADDRESS_PREFIX.length + 1 + DATA_CHARS + CHECKSUM_CHARS;

const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

/** BIP-350's BCH checksum state after `values`, starting from `chk` (1 at the start of a string). */
function polymod(values: readonly number[], chk = 1): number {
  for (const v of values) {
    const top = chk >>> 25;
    chk = (((chk & 0x1ffffff) << 5) ^ v) >>> 0;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk = (chk ^ GENERATOR[i]!) >>> 0;
  }
  return chk;
}

function expandPrefix(prefix: string): number[] {
  const codes = [...prefix].map((c) => c.charCodeAt(0));
  return [...codes.map((c) => c >> 5), 0, ...codes.map((c) => c & 31)];
}

function checksum(data: readonly number[]): number[] {
  const mod = polymod([...expandPrefix(ADDRESS_PREFIX), ...data, 0, 0, 0, 0, 0, 0]) ^ BECH32M_CONST;
  return Array.from({ length: CHECKSUM_CHARS }, (_, i) => (mod >>> (5 * (CHECKSUM_CHARS - 1 - i))) & 31);
}

/** The state after the expanded prefix `coin`, the same for every address. */
const PREFIX_STATE = polymod(expandPrefix(ADDRESS_PREFIX));

function checksumHolds(values: readonly number[], prefix = ADDRESS_PREFIX): boolean {
  const start = prefix === ADDRESS_PREFIX ? PREFIX_STATE : polymod(expandPrefix(prefix));
  return polymod(values, start) === BECH32M_CONST;
}

/**
 * True when `text` is any valid bech32m string (BIP-350's rules: one case, a prefix of 1 to 83 printable
 * characters, the last "1" as separator, at least 6 characters after it, 90 characters at most, and the
 * checksum), whatever its prefix. Addresses are the ones with prefix "coin" and 52 data characters.
 */
export function isBech32m(text: string): boolean {
  if (text.length > 90 || (text !== text.toLowerCase() && text !== text.toUpperCase())) return false;
  if ([...text].some((c) => c.charCodeAt(0) < 33 || c.charCodeAt(0) > 126)) return false;
  const lower = text.toLowerCase();
  const sep = lower.lastIndexOf("1");
  if (sep < 1 || lower.length - sep - 1 < CHECKSUM_CHARS) return false;
  const values = [...lower.slice(sep + 1)].map((c) => BECH32_CHARSET.indexOf(c));
  return values.every((v) => v >= 0) && checksumHolds(values, lower.slice(0, sep));
}

/** The address of account id `key` (32 bytes), lowercase. */
export function encodeAddress(key: Uint8Array): string {
  if (key.length !== 32) throw new RangeError(`An account id is 32 bytes, not ${key.length}`);
  const data: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const byte of key) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      data.push((acc >>> bits) & 31);
    }
    acc &= (1 << bits) - 1;
  }
  data.push((acc << (5 - bits)) & 31); // 256 = 51 × 5 + 1: one bit left, padded with four zeros
  if (data.length !== DATA_CHARS) throw new Error(`Invariant broken: ${data.length} data characters`);
  return `${ADDRESS_PREFIX}1` + [...data, ...checksum(data)].map((v) => BECH32_CHARSET[v]).join("");
}

/** Why a text is not an address, in words that follow `Invalid address "…": `. */
export class AddressError extends Error {
  override name = "AddressError";
}

/**
 * The account id of address `text` (either case, not mixed). Throws AddressError, whose message says what
 * is wrong: not a coin address, a character no address has, a wrong length, or a checksum that does not
 * match (a typo), naming the character when one substitution explains it.
 */
export function decodeAddress(text: string): Uint8Array {
  // Before any case mapping: Unicode maps some other letters onto ASCII ones (the Kelvin sign onto "k").
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x21 || code > 0x7e) {
      throw new AddressError(
        `character ${i + 1} is not a plain letter or digit (U+${
          code.toString(16).toUpperCase().padStart(4, "0")
        })`,
      );
    }
  }
  if (text !== text.toLowerCase() && text !== text.toUpperCase()) {
    throw new AddressError("it mixes capital and small letters");
  }
  const lower = text.toLowerCase();
  if (!lower.startsWith(`${ADDRESS_PREFIX}1`)) {
    throw new AddressError(`a coin address starts with "${ADDRESS_PREFIX}1"`);
  }
  const values: number[] = [];
  for (let i = ADDRESS_PREFIX.length + 1; i < lower.length; i++) {
    const v = BECH32_CHARSET.indexOf(lower[i]!);
    if (v < 0) {
      throw new AddressError(
        `character ${i + 1} "${text[i]}" is not used in addresses (they use ${
          BECH32_CHARSET.split("").sort().join("")
        })`,
      );
    }
    values.push(v);
  }
  if (lower.length !== ADDRESS_CHARS) {
    throw new AddressError(`it has ${lower.length} characters, an address has ${ADDRESS_CHARS}`);
  }
  if (!checksumHolds(values)) {
    const at = singleTypo(values);
    throw new AddressError(
      "its checksum does not match: it was mistyped or garbled" +
        (at === undefined ? "" : ` (character ${ADDRESS_PREFIX.length + 2 + at} looks wrong)`),
    );
  }
  const data = values.slice(0, DATA_CHARS);
  const key = new Uint8Array(32);
  let acc = 0;
  let bits = 0;
  let k = 0;
  for (const v of data) {
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      key[k++] = (acc >>> bits) & 0xff;
    }
    acc &= (1 << bits) - 1;
  }
  // Only a string that encodeAddress writes is an address: the padding bits are zero.
  if (acc !== 0) throw new AddressError("its last data character has padding bits set");
  return key;
}

/** The one position where a different character makes the checksum hold, when exactly one does. */
function singleTypo(values: readonly number[]): number | undefined {
  let found: number | undefined;
  const tryValues = [...values];
  for (let i = 0; i < values.length; i++) {
    for (let v = 0; v < 32; v++) {
      if (v === values[i]) continue;
      tryValues[i] = v;
      if (checksumHolds(tryValues)) {
        if (found !== undefined && found !== i) return undefined;
        found = i;
      }
    }
    tryValues[i] = values[i]!;
  }
  return found;
}

/** True when `text` is meant as an address (it starts with `coin1`), valid or not. */
export function looksLikeAddress(text: string): boolean {
  return text.toLowerCase().startsWith(`${ADDRESS_PREFIX}1`);
}

/**
 * The account id written as `text`: an address, or 64 hex digits. Throws AddressError for an address
 * that does not decode; returns undefined for text that is neither (a contact name, perhaps).
 */
export function parseAccountId(text: string): Uint8Array | undefined {
  if (looksLikeAddress(text)) return decodeAddress(text);
  return text.length === 64 ? fromHex(text, 32) : undefined;
}
