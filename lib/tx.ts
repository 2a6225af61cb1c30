// A transfer: its 144-byte layout, signing, decoding and the stateless validation rules.
// Layout (big-endian): timestamp u64 ms | amount u64 | payee 32 | payer 32 | signature 64 over bytes 0..80.

import { encodeAddress } from "./address.ts";
import { equalBytes, fromHex, toHex, viewOf } from "./_bytes.ts";
import { sha256Hex } from "./hash.ts";
import { type KeyPair, sign, type Signer, type Verifier, verifySignature } from "./keys.ts";

/** Bytes in an encoded transfer, and in the part the payer signs. */
export const TX_BYTES = 144;
export const TX_SIGNED_BYTES = 80;
/** Largest amount (and balance): 2^53 - 1, so every value is exact in a JavaScript number. */
export const MAX_AMOUNT = Number.MAX_SAFE_INTEGER;
/** Default accepted distance between a transfer's timestamp and the reference time. */
export const DEFAULT_TX_SKEW_MS = 5_000;

/** Every way a transfer can be refused, with the sentence that explains it. */
export const TX_CODES = {
  malformed: "the transfer is not 144 bytes of valid hex",
  amount_must_be_positive: "the amount must be at least 1",
  amount_too_large: "the amount is above 2^53 - 1",
  accounts_must_be_different: "payer and payee are the same account",
  signature_invalid: "the payer's signature does not verify",
  timestamp_too_old: "the timestamp is older than the accepted window",
  timestamp_in_future: "the timestamp is ahead of the accepted window",
  duplicate: "this transfer was already seen",
  payer_not_found: "the payer has no account (balance 0)",
  insufficient_funds: "the payer's balance is below the amount",
  ledger_full: "the database already holds the most accounts it may",
} as const;

/** A stable reason code for a refused transfer. */
export type TxCode = keyof typeof TX_CODES;

/** A decoded transfer; `bytes` is the 144-byte encoding it came from. */
export interface Tx {
  readonly bytes: Uint8Array;
  readonly timestampMs: number;
  /** The amount; exact when `amountRaw <= MAX_AMOUNT`. */
  readonly amount: number;
  readonly amountRaw: bigint;
  readonly payee: Uint8Array;
  readonly payer: Uint8Array;
  readonly signature: Uint8Array;
  /** Lowercase hex SHA-256 of the signed 80 bytes. */
  readonly id: string;
}

/** Decodes 144 bytes; returns undefined when the length is wrong. */
export function decodeTx(bytes: Uint8Array): Tx | undefined {
  if (bytes.length !== TX_BYTES) return undefined;
  const view = viewOf(bytes);
  const timestampRaw = view.getBigUint64(0);
  const amountRaw = view.getBigUint64(8);
  return {
    bytes,
    timestampMs: Number(timestampRaw),
    amount: Number(amountRaw),
    amountRaw,
    payee: bytes.subarray(16, 48),
    payer: bytes.subarray(48, 80),
    signature: bytes.subarray(80, 144),
    id: sha256Hex(bytes.subarray(0, TX_SIGNED_BYTES)),
  };
}

/** Decodes 288 hex digits (surrounding whitespace allowed); undefined when malformed. */
export function decodeTxHex(text: string): Tx | undefined {
  const bytes = fromHex(text.trim(), TX_BYTES);
  return bytes === undefined ? undefined : decodeTx(bytes);
}

/** Fields of a transfer to sign. `amount` may be a bigint to build out-of-range test transfers. */
export interface TxFields {
  to: Uint8Array;
  amount: number | bigint;
  timestampMs: number;
}

/** Encodes and signs a transfer from `keyPair`'s account. Does not validate the amount. */
export async function signTx(keyPair: KeyPair, fields: TxFields): Promise<Uint8Array> {
  const bytes = unsignedTx(keyPair.publicKey, fields);
  bytes.set(await sign(keyPair, bytes.subarray(0, TX_SIGNED_BYTES)), TX_SIGNED_BYTES);
  return bytes;
}

/** signTx with a synchronous signer (the simulator signs many transfers). */
export function signTxWith(payer: Uint8Array, signer: Signer, fields: TxFields): Uint8Array {
  const bytes = unsignedTx(payer, fields);
  bytes.set(signer(bytes.subarray(0, TX_SIGNED_BYTES)), TX_SIGNED_BYTES);
  return bytes;
}

function unsignedTx(payer: Uint8Array, fields: TxFields): Uint8Array {
  if (fields.to.length !== 32) throw new RangeError("Payee must be a 32-byte public key");
  const bytes = new Uint8Array(TX_BYTES);
  const view = viewOf(bytes);
  view.setBigUint64(0, BigInt(fields.timestampMs));
  view.setBigUint64(8, BigInt(fields.amount));
  bytes.set(fields.to, 16);
  bytes.set(payer, 48);
  return bytes;
}

/** True when the payer's signature over the first 80 bytes verifies. */
export function verifyTx(tx: Tx, verifier: Verifier = verifySignature): boolean {
  return verifier(tx.payer, tx.bytes.subarray(0, TX_SIGNED_BYTES), tx.signature);
}

/**
 * The rules that depend on the transfer alone, cheapest first; the signature is checked last and
 * only when `verify` is not false (a caller that verified the same bytes already may skip it).
 */
export function checkTxStateless(
  tx: Tx,
  options: { verify?: boolean; verifier?: Verifier } = {},
): TxCode | undefined {
  if (tx.amountRaw === 0n) return "amount_must_be_positive";
  if (tx.amountRaw > BigInt(MAX_AMOUNT)) return "amount_too_large";
  if (equalBytes(tx.payer, tx.payee)) return "accounts_must_be_different";
  if (options.verify !== false && !verifyTx(tx, options.verifier)) return "signature_invalid";
  return undefined;
}

/** Checks the timestamp against the window [fromMs, toMs) it must fall in. */
export function checkTimestamp(tx: Tx, fromMs: number, toMs: number): TxCode | undefined {
  if (tx.timestampMs < fromMs) return "timestamp_too_old";
  if (tx.timestampMs >= toMs) return "timestamp_in_future";
  return undefined;
}

/** The fields of a transfer as plain JSON. */
export interface TxJson {
  id: string;
  timestamp: number;
  time: string | null;
  amount: number | string;
  payee: string;
  payer: string;
  /** The payee's and the payer's addresses (coin1…, docs/protocol.md 15). */
  payeeAddress: string;
  payerAddress: string;
  signature: string;
}

/** The fields of a transfer as plain JSON (the `coin tx show --json` shape). */
export function txToJson(tx: Tx): TxJson {
  return {
    id: tx.id,
    timestamp: tx.timestampMs,
    time: Number.isFinite(tx.timestampMs) && tx.timestampMs < 8.64e15
      ? new Date(tx.timestampMs).toISOString()
      : null,
    amount: tx.amountRaw <= BigInt(MAX_AMOUNT) ? tx.amount : tx.amountRaw.toString(),
    payee: toHex(tx.payee),
    payer: toHex(tx.payer),
    payeeAddress: encodeAddress(tx.payee),
    payerAddress: encodeAddress(tx.payer),
    signature: toHex(tx.signature),
  };
}
