// The balance database: packed sorted records, balance look-up, and `apply`, the deterministic
// function every server runs on a frame's transfers. Total supply is fixed at genesis and conserved.
//
// The packed form is the database itself (no separate in-memory map): records sorted by account id,
// found by binary search, so packing is free and hashing is one pass over the bytes.

import { compare32, fromHex, readU64, toHex, viewOf, writeU64 } from "./_bytes.ts";
import { sha256Hex } from "./hash.ts";
import type { Verifier } from "./keys.ts";
import { checkTimestamp, checkTxStateless, MAX_AMOUNT, type Tx, type TxCode } from "./tx.ts";

/** "COIN" in ASCII: the first four bytes of a packed database. */
export const DB_MAGIC = 0x434f494e;
/** Version of the packed layout. */
export const DB_VERSION = 1;
/** Header: magic u32 | version u16 | reserved u16 (0) | account count u64. */
export const DB_HEADER_BYTES = 16;
/** Record: account id 32 | balance u64. */
export const DB_RECORD_BYTES = 40;
/** Most accounts a database may hold (640 MiB packed). */
export const MAX_ACCOUNTS = 16_777_216;
/** Largest packed database, in bytes. */
export const MAX_DB_BYTES = DB_HEADER_BYTES + MAX_ACCOUNTS * DB_RECORD_BYTES;

/** A packed balance database. Immutable: `apply` returns a new one. */
export class Ledger {
  /** The packed bytes (header and sorted records); the hash is over exactly these. */
  readonly bytes: Uint8Array;
  /** Number of accounts (non-zero balances). */
  readonly count: number;
  /** Sum of all balances. */
  readonly supply: number;
  #hash: string | undefined;

  private constructor(bytes: Uint8Array, count: number, supply: number) {
    this.bytes = bytes;
    this.count = count;
    this.supply = supply;
  }

  /** The database hash: SHA-256 of the packed bytes as 64 lowercase hex digits. */
  get hash(): string {
    this.#hash ??= sha256Hex(this.bytes);
    return this.#hash;
  }

  /** The balance of `account` (32 bytes); 0 when it has no record. */
  balanceOf(account: Uint8Array): number {
    const i = findRecord(this.bytes, this.count, account);
    return i < 0 ? 0 : readU64(viewOf(this.bytes), recordOffset(i) + 32);
  }

  /** Every account and balance, ascending by account id. */
  *entries(): Generator<[string, number]> {
    const view = viewOf(this.bytes);
    for (let i = 0; i < this.count; i++) {
      const off = recordOffset(i);
      yield [toHex(this.bytes.subarray(off, off + 32)), readU64(view, off + 32)];
    }
  }

  /** A database from a map of account hex to balance; zero balances are dropped. */
  static fromBalances(balances: Iterable<[string, number]>): Ledger {
    const rows: [Uint8Array, number][] = [];
    let supply = 0;
    for (const [hex, balance] of balances) {
      const key = fromHex(hex, 32);
      if (key === undefined) throw new RangeError(`Account "${hex}" is not 64 hex digits`);
      if (!Number.isSafeInteger(balance) || balance < 0) {
        throw new RangeError(`Balance of ${hex} is not a whole number from 0 to 2^53 - 1`);
      }
      supply += balance;
      if (!Number.isSafeInteger(supply)) throw new RangeError("Total supply is above 2^53 - 1");
      if (balance > 0) rows.push([key, balance]);
    }
    rows.sort((a, b) => compare32(a[0], 0, b[0], 0));
    for (let i = 1; i < rows.length; i++) {
      if (compare32(rows[i - 1]![0], 0, rows[i]![0], 0) === 0) {
        throw new RangeError(`Account ${toHex(rows[i]![0])} appears twice`);
      }
    }
    if (rows.length > MAX_ACCOUNTS) throw new RangeError(`More than ${MAX_ACCOUNTS} accounts`);
    const bytes = new Uint8Array(DB_HEADER_BYTES + rows.length * DB_RECORD_BYTES);
    const view = viewOf(bytes);
    writeHeader(view, rows.length);
    rows.forEach(([key, balance], i) => {
      bytes.set(key, recordOffset(i));
      writeU64(view, recordOffset(i) + 32, balance);
    });
    return new Ledger(bytes, rows.length, supply);
  }

  /**
   * Checks and adopts packed bytes (from the archive or a peer). Throws SyntaxError naming the first
   * problem: magic, version, length, order of accounts, or a balance out of range.
   */
  static fromPacked(bytes: Uint8Array): Ledger {
    if (bytes.length < DB_HEADER_BYTES) throw new SyntaxError("Packed database is shorter than its header");
    const view = viewOf(bytes);
    if (view.getUint32(0) !== DB_MAGIC) throw new SyntaxError("Packed database has a wrong magic");
    const version = view.getUint16(4);
    if (version !== DB_VERSION) throw new SyntaxError(`Packed database version ${version} is not supported`);
    if (view.getUint16(6) !== 0) throw new SyntaxError("Packed database header has non-zero reserved bytes");
    const count = readU64(view, 8);
    if (count < 0 || count > MAX_ACCOUNTS) {
      throw new SyntaxError("Packed database account count is out of range");
    }
    if (bytes.length !== DB_HEADER_BYTES + count * DB_RECORD_BYTES) {
      throw new SyntaxError(
        `Packed database of ${count} accounts has a wrong length (${bytes.length} bytes)`,
      );
    }
    let supply = 0;
    for (let i = 0; i < count; i++) {
      const off = recordOffset(i);
      if (i > 0 && compare32(bytes, off - DB_RECORD_BYTES, bytes, off) >= 0) {
        throw new SyntaxError(`Packed database accounts are not strictly ascending at record ${i}`);
      }
      const balance = readU64(view, off + 32);
      if (balance <= 0) throw new SyntaxError(`Packed database record ${i} has a zero or oversized balance`);
      supply += balance;
    }
    if (!Number.isSafeInteger(supply)) {
      throw new SyntaxError("Packed database total supply is above 2^53 - 1");
    }
    return new Ledger(bytes, count, supply);
  }

  /** @internal Used by apply() on bytes it built and checked itself. */
  static _trusted(bytes: Uint8Array, count: number, supply: number): Ledger {
    return new Ledger(bytes, count, supply);
  }
}

function recordOffset(index: number): number {
  return DB_HEADER_BYTES + index * DB_RECORD_BYTES;
}

function writeHeader(view: DataView, count: number): void {
  view.setUint32(0, DB_MAGIC);
  view.setUint16(4, DB_VERSION);
  view.setUint16(6, 0);
  writeU64(view, 8, count);
}

/** Index of `account`'s record, or -1. Binary search over the sorted records. */
function findRecord(bytes: Uint8Array, count: number, account: Uint8Array): number {
  let lo = 0;
  let hi = count - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const c = compare32(bytes, recordOffset(mid), account, 0);
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** Ids of transfers applied in recent frames, oldest first: what `duplicate` is judged against. */
export type RecentIds = readonly { readonly frame: number; readonly ids: ReadonlySet<string> }[];

/** The replicated state: balances plus the recent transfer ids that make replays detectable. */
export interface State {
  readonly ledger: Ledger;
  readonly recent: RecentIds;
}

/** What apply() needs to know about the frame, all derived from peers.json (never a local clock). */
export interface FrameContext {
  readonly frame: number;
  /** A transfer's timestamp must fall in [windowFromMs, windowToMs). */
  readonly windowFromMs: number;
  readonly windowToMs: number;
  /** How many frames of applied ids to remember (a transfer's whole validity span). */
  readonly recentFrames: number;
}

/** Result of apply(): the new state and, per input transfer, "ok" or the code it was skipped with. */
export interface ApplyResult {
  readonly state: State;
  readonly results: readonly ("ok" | TxCode)[];
  readonly applied: number;
}

function hasRecent(recent: RecentIds, id: string): boolean {
  for (const r of recent) if (r.ids.has(id)) return true;
  return false;
}

/**
 * Applies a frame's transfers in order. Deterministic: the same state, transfers and context give
 * byte-identical databases everywhere. Invalid transfers are skipped with their code. `verified`
 * holds transfer objects whose signatures this process already checked (the alpha's own buffer).
 */
export function apply(
  state: State,
  txs: readonly Tx[],
  context: FrameContext & { verified?: WeakSet<Tx>; verifier?: Verifier },
): ApplyResult {
  const before = state.ledger;
  const recentKept = state.recent.filter((r) => r.frame > context.frame - context.recentFrames);
  const results: ("ok" | TxCode)[] = [];
  const ids = new Set<string>();
  if (txs.length === 0) {
    return {
      state: { ledger: before, recent: [...recentKept, { frame: context.frame, ids }] },
      results,
      applied: 0,
    };
  }

  const work = before.bytes.slice();
  const view = viewOf(work);
  const count = before.count;
  const added = new Map<string, number>(); // accounts created in this frame
  let zeroed = 0;

  const balanceAt = (account: Uint8Array): { index: number; hex: string | undefined; balance: number } => {
    const index = findRecord(work, count, account);
    if (index >= 0) return { index, hex: undefined, balance: readU64(view, recordOffset(index) + 32) };
    const hex = toHex(account);
    return { index, hex, balance: added.get(hex) ?? -1 };
  };

  for (const tx of txs) {
    let code: TxCode | undefined = checkTxStateless(tx, {
      verify: !(context.verified?.has(tx) ?? false),
      ...(context.verifier ? { verifier: context.verifier } : {}),
    }) ??
      checkTimestamp(tx, context.windowFromMs, context.windowToMs);
    if (code === undefined && (ids.has(tx.id) || hasRecent(recentKept, tx.id))) code = "duplicate";
    const payer = code === undefined ? balanceAt(tx.payer) : undefined;
    if (code === undefined && payer!.balance < 0) code = "payer_not_found";
    if (code === undefined && payer!.balance < tx.amount) code = "insufficient_funds";
    if (code !== undefined) {
      results.push(code);
      continue;
    }
    const from = payer!;
    const left = from.balance - tx.amount;
    if (from.index >= 0) {
      writeU64(view, recordOffset(from.index) + 32, left);
      if (left === 0) zeroed++;
    } else {
      added.set(from.hex!, left);
    }
    const to = balanceAt(tx.payee);
    if (to.index < 0 && to.balance < 0 && count + added.size >= MAX_ACCOUNTS) {
      // Undo the debit: a transfer that would create one account too many is skipped whole.
      if (from.index >= 0) {
        writeU64(view, recordOffset(from.index) + 32, from.balance);
        if (left === 0) zeroed--;
      } else added.set(from.hex!, from.balance);
      results.push("ledger_full");
      continue;
    }
    if (to.index >= 0) {
      if (to.balance === 0) zeroed--;
      writeU64(view, recordOffset(to.index) + 32, to.balance + tx.amount);
    } else {
      added.set(to.hex!, Math.max(to.balance, 0) + tx.amount);
    }
    ids.add(tx.id);
    results.push("ok");
  }

  let bytes: Uint8Array = work;
  let newCount = count;
  if (added.size > 0 || zeroed > 0) ({ bytes, count: newCount } = merge(work, count, added));
  const ledger = ids.size === 0 ? before : Ledger._trusted(bytes, newCount, sumBalances(bytes, newCount));
  if (ledger.supply !== before.supply) {
    throw new Error(`Invariant broken: apply changed total supply from ${before.supply} to ${ledger.supply}`);
  }
  return {
    state: { ledger, recent: [...recentKept, { frame: context.frame, ids }] },
    results,
    applied: ids.size,
  };
}

function sumBalances(bytes: Uint8Array, count: number): number {
  const view = viewOf(bytes);
  let supply = 0;
  for (let i = 0; i < count; i++) supply += readU64(view, recordOffset(i) + 32);
  return supply;
}

/** Merges new accounts into the sorted records and drops zero balances. */
function merge(
  work: Uint8Array,
  count: number,
  added: Map<string, number>,
): { bytes: Uint8Array; count: number } {
  const extra = [...added].filter(([, b]) => b > 0).map(([hex, b]) => [fromHex(hex, 32)!, b] as const);
  extra.sort((a, b) => compare32(a[0], 0, b[0], 0));
  const oldView = viewOf(work);
  const out = new Uint8Array(DB_HEADER_BYTES + (count + extra.length) * DB_RECORD_BYTES);
  const outView = viewOf(out);
  let n = 0;
  let j = 0;
  const putNew = (key: Uint8Array, balance: number) => {
    out.set(key, recordOffset(n));
    writeU64(outView, recordOffset(n) + 32, balance);
    n++;
  };
  for (let i = 0; i < count; i++) {
    const off = recordOffset(i);
    while (j < extra.length && compare32(extra[j]![0], 0, work, off) < 0) {
      putNew(extra[j]![0], extra[j]![1]);
      j++;
    }
    if (readU64(oldView, off + 32) === 0) continue;
    out.set(work.subarray(off, off + DB_RECORD_BYTES), recordOffset(n));
    n++;
  }
  for (; j < extra.length; j++) putNew(extra[j]![0], extra[j]![1]);
  if (n > MAX_ACCOUNTS) throw new Error(`Invariant broken: more than ${MAX_ACCOUNTS} accounts`);
  const bytes = out.subarray(0, DB_HEADER_BYTES + n * DB_RECORD_BYTES);
  writeHeader(viewOf(bytes), n);
  return { bytes, count: n };
}

/** The genesis state of a network: its funded accounts and no recent transfers. */
export function genesisState(genesis: Iterable<[string, number]>): State {
  return { ledger: Ledger.fromBalances(genesis), recent: [] };
}

export { MAX_AMOUNT };
