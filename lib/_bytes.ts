// Byte helpers shared by the wire formats: strict hex, big-endian u32/u64 and safe-integer checks.
// Every multi-byte integer coin writes is big-endian; u64 values never exceed 2^53 - 1.

const HEX_DIGITS = "0123456789abcdef";
const HEX_PAIRS: string[] = Array.from(
  { length: 256 },
  (_, i) => HEX_DIGITS[i >> 4]! + HEX_DIGITS[i & 15]!,
);

/** Lowercase hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX_PAIRS[bytes[i]!]!;
  return out;
}

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48; // 0-9
  if (code >= 97 && code <= 102) return code - 87; // a-f
  if (code >= 65 && code <= 70) return code - 55; // A-F
  return -1;
}

/**
 * Decodes hex (either case). Returns `undefined` when `text` is not hex of exactly `length` bytes
 * (or of any even length when `length` is omitted), so callers can name the field in their error.
 */
export function fromHex(text: string, length?: number): Uint8Array | undefined {
  if (text.length % 2 !== 0) return undefined;
  if (length !== undefined && text.length !== length * 2) return undefined;
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = hexValue(text.charCodeAt(2 * i));
    const lo = hexValue(text.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) return undefined;
    out[i] = (hi << 4) | lo;
  }
  return out;
}

/** True when `text` is exactly 64 lowercase or uppercase hex digits (a 32-byte key or hash). */
export function isHex32(text: string): boolean {
  return text.length === 64 && fromHex(text, 32) !== undefined;
}

/** Reads a big-endian u64 at `offset`; returns -1 when it exceeds 2^53 - 1. */
export function readU64(view: DataView, offset: number): number {
  const hi = view.getUint32(offset);
  const lo = view.getUint32(offset + 4);
  if (hi > 0x1f_ffff) return -1;
  return hi * 0x1_0000_0000 + lo;
}

/** Writes `value` (a safe non-negative integer) as a big-endian u64 at `offset`. */
export function writeU64(view: DataView, offset: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`Cannot write ${value} as u64: not a safe non-negative integer`);
  }
  view.setUint32(offset, Math.floor(value / 0x1_0000_0000));
  view.setUint32(offset + 4, value >>> 0);
}

/** Lexicographic comparison of `a[aOff..aOff+32)` and `b[bOff..bOff+32)`. */
export function compare32(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): number {
  for (let i = 0; i < 32; i++) {
    const d = a[aOff + i]! - b[bOff + i]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** The chunks one after another in a new array. */
export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** Byte equality. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A view over `bytes` that respects its offset inside a larger buffer. */
export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
