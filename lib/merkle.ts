// The ledger Merkle root: a 32-byte commitment to a packed database (lib/ledger.ts) under which one
// account's balance, or its absence, is proven by one page of records and O(log pages) sibling hashes.
//
// Layout (docs/protocol.md section 14), every integer big-endian:
//   page i     = records [64 i, min(64 i + 64, count)) of the database, a subarray of its bytes
//   leaf i     = SHA-256(0x00 | u32 i | page i)
//   node       = SHA-256(0x01 | left | right); the last node of a level with an odd number of nodes is
//                promoted to the next level unchanged
//   tree root  = the single node left; SHA-256(0x00) (the prefix byte alone) when there are no records
//   ledgerRoot = SHA-256(0x02 | header 16 bytes | u32 count | tree root)
// The prefix bytes keep leaves, nodes and roots apart, so no node can pass for a page (second preimage).
// The count fixes the tree's shape, so the verifier derives each sibling's side from the page index.

import { createHash } from "node:crypto";
import { compare32, equalBytes, readU64, viewOf } from "./_bytes.ts";
import { HASH_BYTES, sha256, sha256Of } from "./hash.ts";
import { DB_HEADER_BYTES, DB_RECORD_BYTES, MAX_ACCOUNTS } from "./ledger.ts";

/** Records per leaf page; the last page may hold fewer. */
export const PAGE_RECORDS = 64;
/** Bytes of a full page (2,560). */
export const PAGE_BYTES = PAGE_RECORDS * DB_RECORD_BYTES;
/** Most sibling hashes one page proof may carry; `MAX_ACCOUNTS` needs 18. */
export const MAX_PROOF_DEPTH = 32;
/** Largest encoded account proof: header, two pages and two paths of the most siblings (7,193). */
export const MAX_ACCOUNT_PROOF_BYTES = DB_HEADER_BYTES + 4 + 1 +
  2 * (2 + PAGE_BYTES + MAX_PROOF_DEPTH * HASH_BYTES);

/** Domain-separation prefix of a leaf (and of the empty tree). */
const LEAF_PREFIX = 0x00;
/** Domain-separation prefix of an inner node. */
const NODE_PREFIX = 0x01;
/** Domain-separation prefix of the ledger root. */
const ROOT_PREFIX = 0x02;

/** One page and the sibling hashes from its leaf up to the tree root, leaf level first. */
export interface PagePath {
  /** The page's records, 40 bytes each, exactly as in the packed database. */
  readonly page: Uint8Array;
  /** 32 bytes each. Their sides are not stored: they follow from the page index and the count. */
  readonly siblings: readonly Uint8Array[];
}

/**
 * Proof of one account's balance, or of its absence, against a ledger root. `page` is the page that holds
 * the account or, for an absent account, the page holding the first record above it (the last page when
 * none is above). When that page's first record is above the account and the page is not the first,
 * `previous` is page `pageIndex - 1`, whose last record is below it.
 */
export interface AccountProof extends PagePath {
  /** The database's 16-byte header. */
  readonly header: Uint8Array;
  /** Number of records: the header's count, repeated for the verifier's convenience. */
  readonly count: number;
  /** Index of `page` (0 for an empty database). */
  readonly pageIndex: number;
  /** Page `pageIndex - 1`, present only to prove an absence at a page boundary. */
  readonly previous?: PagePath;
}

/** Why verifyAccountProof refused a proof: stable codes, one per way a proof can fail. */
export const PROOF_PROBLEMS = {
  malformed: "a field has the wrong length (root, account, header, a sibling, or a page of part records)",
  count_mismatch: "the count differs from the header's count or is above MAX_ACCOUNTS",
  page_out_of_range: "the page index is not a page of the database, or `previous` is given for page 0",
  page_length: "a page does not hold the number of records its index holds in a database of that count",
  path_length: "a page's number of siblings differs from its path to the root",
  page_not_sorted: "a page's accounts are not strictly ascending",
  root_mismatch: "the recomputed root differs from the root",
  balance_out_of_range: "the account's balance is 0 or above 2^53 - 1",
  absence_not_proven: "the account is not in the page and the records shown do not enclose it",
} as const;

/** A stable reason code for a refused proof. */
export type ProofProblem = keyof typeof PROOF_PROBLEMS;

/** What verifyAccountProof found: the proven balance (0 for an account proven absent), or a problem. */
export type ProofResult = { readonly balance: number } | { readonly problem: ProofProblem };

/**
 * The ledger Merkle root of packed database bytes (header and sorted records), 32 bytes. Costs one
 * SHA-256 of every page plus one of each inner node; pages are hashed in place, never copied.
 *
 * @example
 * ```ts
 * import { ledgerRoot } from "./merkle.ts";
 * import { Ledger } from "./ledger.ts";
 * const root = ledgerRoot(Ledger.fromBalances([["8a".repeat(32), 1000]]).bytes);
 * console.assert(root.length === 32);
 * ```
 */
export function ledgerRoot(bytes: Uint8Array): Uint8Array {
  const count = checkedCount(bytes);
  const levels = treeLevels(bytes, count);
  return rootOf(
    bytes.subarray(0, DB_HEADER_BYTES),
    count,
    levels[levels.length - 1]!.subarray(0, HASH_BYTES),
  );
}

/**
 * A proof of `account`'s balance in packed database `bytes`, or of its absence (balance 0). Builds the
 * whole tree: one ledgerRoot's cost. The proof's pages are subarrays of `bytes`.
 *
 * @example
 * ```ts
 * import { ledgerRoot, proveAccount, verifyAccountProof } from "./merkle.ts";
 * import { Ledger } from "./ledger.ts";
 * const ledger = Ledger.fromBalances([["8a".repeat(32), 1000]]);
 * const account = ledger.bytes.subarray(16, 48);
 * const result = verifyAccountProof(ledgerRoot(ledger.bytes), account, proveAccount(ledger.bytes, account));
 * console.assert("balance" in result && result.balance === 1000);
 * ```
 */
export function proveAccount(bytes: Uint8Array, account: Uint8Array): AccountProof {
  if (account.length !== 32) {
    throw new RangeError(`Cannot prove an account of ${account.length} bytes: not 32`);
  }
  const count = checkedCount(bytes);
  const header = bytes.subarray(0, DB_HEADER_BYTES);
  if (count === 0) {
    return { header, count, pageIndex: 0, page: bytes.subarray(DB_HEADER_BYTES), siblings: [] };
  }
  const levels = treeLevels(bytes, count);
  const at = lowerBound(bytes, DB_HEADER_BYTES, count, account);
  const pages = pageCount(count);
  const pageIndex = at === count ? pages - 1 : Math.floor(at / PAGE_RECORDS);
  const proof: AccountProof = { header, count, pageIndex, ...pathOf(bytes, count, levels, pageIndex) };
  const found = at < count && compare32(bytes, recordOffset(at), account, 0) === 0;
  if (!found && at < count && at % PAGE_RECORDS === 0 && pageIndex > 0) {
    return { ...proof, previous: pathOf(bytes, count, levels, pageIndex - 1) };
  }
  return proof;
}

/**
 * Checks `proof` against `root` and reads `account`'s balance from it: the balance when the page holds
 * the account, 0 when the records shown prove it absent, else the first problem found. Absence is proven
 * when the account sorts between two adjacent records shown (in the page, or the last of `previous` and
 * the first of the page), before the first record of page 0, after the last record of the last page, or
 * when the database is empty. That rests on the root being of a valid database (sorted, no duplicates).
 *
 * @example
 * ```ts
 * import { ledgerRoot, proveAccount, verifyAccountProof } from "./merkle.ts";
 * import { Ledger } from "./ledger.ts";
 * const ledger = Ledger.fromBalances([["8a".repeat(32), 1000]]);
 * const absent = new Uint8Array(32);
 * const result = verifyAccountProof(ledgerRoot(ledger.bytes), absent, proveAccount(ledger.bytes, absent));
 * console.assert("balance" in result && result.balance === 0);
 * ```
 */
export function verifyAccountProof(root: Uint8Array, account: Uint8Array, proof: AccountProof): ProofResult {
  const { count, pageIndex, page, previous } = proof;
  if (
    root.length !== HASH_BYTES || account.length !== 32 || proof.header.length !== DB_HEADER_BYTES ||
    !wellFormed(proof) || (previous !== undefined && !wellFormed(previous))
  ) {
    return { problem: "malformed" };
  }
  if (count !== readU64(viewOf(proof.header), 8) || count < 0 || count > MAX_ACCOUNTS) {
    return { problem: "count_mismatch" };
  }
  const pages = pageCount(count);
  if (
    !Number.isSafeInteger(pageIndex) || pageIndex < 0 || pageIndex >= Math.max(pages, 1) ||
    (previous !== undefined && pageIndex === 0)
  ) {
    return { problem: "page_out_of_range" };
  }
  const checked = checkPath(count, pageIndex, proof) ??
    (previous === undefined ? undefined : checkPath(count, pageIndex - 1, previous));
  if (checked !== undefined) return { problem: checked };

  const treeRoot = count === 0 ? emptyTreeRoot() : pathRoot(pageIndex, pages, proof);
  const computed = rootOf(proof.header, count, treeRoot);
  if (!equalBytes(computed, root)) return { problem: "root_mismatch" };
  if (previous !== undefined && !equalBytes(pathRoot(pageIndex - 1, pages, previous), treeRoot)) {
    return { problem: "root_mismatch" };
  }

  const records = page.length / DB_RECORD_BYTES;
  const at = lowerBound(page, 0, records, account);
  if (at < records && compare32(page, at * DB_RECORD_BYTES, account, 0) === 0) {
    const balance = readU64(viewOf(page), at * DB_RECORD_BYTES + 32);
    return balance <= 0 ? { problem: "balance_out_of_range" } : { balance };
  }
  const belowShown = at > 0 || pageIndex === 0 ||
    (previous !== undefined && compare32(previous.page, PAGE_BYTES - DB_RECORD_BYTES, account, 0) < 0);
  const aboveShown = at < records || pageIndex === pages - 1 || count === 0;
  return belowShown && aboveShown ? { balance: 0 } : { problem: "absence_not_proven" };
}

/**
 * Encodes a proof (layout in docs/protocol.md 14.3): header 16 | u32 page index | page | then, for
 * `previous`, a byte 1 and its page, else a byte 0; each page as u8 records | u8 siblings | records |
 * siblings.
 *
 * @example
 * ```ts
 * import { decodeAccountProof, encodeAccountProof, proveAccount } from "./merkle.ts";
 * import { Ledger } from "./ledger.ts";
 * const ledger = Ledger.fromBalances([["8a".repeat(32), 1000]]);
 * const bytes = encodeAccountProof(proveAccount(ledger.bytes, new Uint8Array(32)));
 * console.assert(decodeAccountProof(bytes).count === 1);
 * ```
 */
export function encodeAccountProof(proof: AccountProof): Uint8Array {
  if (proof.header.length !== DB_HEADER_BYTES) {
    throw new RangeError("Cannot encode a proof: header is not 16 bytes");
  }
  if (!Number.isInteger(proof.pageIndex) || proof.pageIndex < 0 || proof.pageIndex > 0xffff_ffff) {
    throw new RangeError(`Cannot encode a proof: page index ${proof.pageIndex} is not a u32`);
  }
  const paths = proof.previous === undefined ? [proof] : [proof, proof.previous];
  let size = DB_HEADER_BYTES + 4 + 1;
  for (const path of paths) size += 2 + path.page.length + path.siblings.length * HASH_BYTES;
  const out = new Uint8Array(size);
  out.set(proof.header, 0);
  viewOf(out).setUint32(DB_HEADER_BYTES, proof.pageIndex);
  let off = writePath(out, DB_HEADER_BYTES + 4, proof);
  out[off++] = proof.previous === undefined ? 0 : 1;
  if (proof.previous !== undefined) off = writePath(out, off, proof.previous);
  if (off !== size) throw new Error(`Invariant broken: encoded proof is ${off} bytes, not ${size}`);
  return out;
}

/**
 * Decodes an encoded proof; the result's fields are subarrays of `bytes`. Throws SyntaxError naming the
 * first problem: size, a page of more than 64 records, more than 32 siblings, a count above
 * `MAX_ACCOUNTS`, a previous-page flag other than 0 or 1, bytes cut off or left over. Whether the proof
 * proves anything is verifyAccountProof's business.
 */
export function decodeAccountProof(bytes: Uint8Array): AccountProof {
  if (bytes.length > MAX_ACCOUNT_PROOF_BYTES) {
    throw new SyntaxError(`Account proof of ${bytes.length} bytes is above ${MAX_ACCOUNT_PROOF_BYTES}`);
  }
  if (bytes.length < DB_HEADER_BYTES + 4 + 1 + 2) throw new SyntaxError("Account proof is cut off");
  const view = viewOf(bytes);
  const header = bytes.subarray(0, DB_HEADER_BYTES);
  const count = readU64(view, 8);
  if (count < 0 || count > MAX_ACCOUNTS) throw new SyntaxError("Account proof header count is out of range");
  const pageIndex = view.getUint32(DB_HEADER_BYTES);
  const main = readPath(bytes, DB_HEADER_BYTES + 4);
  let off = main.end;
  if (off >= bytes.length) throw new SyntaxError("Account proof is cut off");
  const flag = bytes[off++]!;
  if (flag > 1) throw new SyntaxError(`Account proof previous-page flag is ${flag}, not 0 or 1`);
  const proof: AccountProof = {
    header,
    count,
    pageIndex,
    page: main.path.page,
    siblings: main.path.siblings,
  };
  if (flag === 0) {
    if (off !== bytes.length) throw new SyntaxError("Account proof has bytes after its end");
    return proof;
  }
  const previous = readPath(bytes, off);
  if (previous.end !== bytes.length) throw new SyntaxError("Account proof has bytes after its end");
  return { ...proof, previous: previous.path };
}

function writePath(out: Uint8Array, offset: number, path: PagePath): number {
  const records = path.page.length / DB_RECORD_BYTES;
  if (!Number.isInteger(records) || records > PAGE_RECORDS) {
    throw new RangeError(`Cannot encode a proof: a page of ${path.page.length} bytes is not 0 to 64 records`);
  }
  if (path.siblings.length > MAX_PROOF_DEPTH) {
    throw new RangeError(
      `Cannot encode a proof: ${path.siblings.length} siblings is above ${MAX_PROOF_DEPTH}`,
    );
  }
  out[offset] = records;
  out[offset + 1] = path.siblings.length;
  out.set(path.page, offset + 2);
  let off = offset + 2 + path.page.length;
  for (const sibling of path.siblings) {
    if (sibling.length !== HASH_BYTES) {
      throw new RangeError("Cannot encode a proof: a sibling is not 32 bytes");
    }
    out.set(sibling, off);
    off += HASH_BYTES;
  }
  return off;
}

function readPath(bytes: Uint8Array, offset: number): { path: PagePath; end: number } {
  if (offset + 2 > bytes.length) throw new SyntaxError("Account proof is cut off");
  const records = bytes[offset]!;
  const depth = bytes[offset + 1]!;
  if (records > PAGE_RECORDS) throw new SyntaxError(`Account proof page of ${records} records is above 64`);
  if (depth > MAX_PROOF_DEPTH) {
    throw new SyntaxError(`Account proof of ${depth} siblings is above ${MAX_PROOF_DEPTH}`);
  }
  const pageStart = offset + 2;
  const siblingsStart = pageStart + records * DB_RECORD_BYTES;
  const end = siblingsStart + depth * HASH_BYTES;
  if (end > bytes.length) throw new SyntaxError("Account proof is cut off");
  const siblings: Uint8Array[] = [];
  for (let off = siblingsStart; off < end; off += HASH_BYTES) {
    siblings.push(bytes.subarray(off, off + HASH_BYTES));
  }
  return { path: { page: bytes.subarray(pageStart, siblingsStart), siblings }, end };
}

/** The header's count, after checking that the length matches it (a bug in the caller otherwise). */
function checkedCount(bytes: Uint8Array): number {
  if (bytes.length < DB_HEADER_BYTES) throw new RangeError("Packed database is shorter than its header");
  const count = readU64(viewOf(bytes), 8);
  if (count < 0 || count > MAX_ACCOUNTS || bytes.length !== DB_HEADER_BYTES + count * DB_RECORD_BYTES) {
    throw new RangeError(`Packed database of ${bytes.length} bytes does not match its count`);
  }
  return count;
}

function recordOffset(index: number): number {
  return DB_HEADER_BYTES + index * DB_RECORD_BYTES;
}

function pageCount(count: number): number {
  return Math.ceil(count / PAGE_RECORDS);
}

/** Records of page `index` in a database of `count` records. */
function pageRecords(count: number, index: number): number {
  return Math.min(PAGE_RECORDS, count - index * PAGE_RECORDS);
}

/** Index of the first of `count` records at `base` in `bytes` whose account is ≥ `account`. */
function lowerBound(bytes: Uint8Array, base: number, count: number, account: Uint8Array): number {
  let lo = 0;
  let hi = count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compare32(bytes, base + mid * DB_RECORD_BYTES, account, 0) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Writes the digest at `out[offset..offset+32)`. Through hex because in Deno 2.9 `digest("hex")` and this
 * decoding measured 1.7 µs against 3.3 µs for `digest()`, which makes a Buffer: ledgerRoot makes
 * 2 × pages digests, and takes about 30 ms less at 1,000,000 accounts this way.
 */
function digestInto(hash: ReturnType<typeof createHash>, out: Uint8Array, offset: number): void {
  const hex = hash.digest("hex");
  for (let i = 0; i < HASH_BYTES; i++) {
    out[offset + i] = (hexNibble(hex.charCodeAt(2 * i)) << 4) | hexNibble(hex.charCodeAt(2 * i + 1));
  }
}

/** Value of a lowercase hex digit's char code (digest output only: 0-9, a-f). */
function hexNibble(code: number): number {
  return code <= 57 ? code - 48 : code - 87;
}

/**
 * Every level of the tree, leaves first, each the concatenation of its 32-byte nodes; the last level
 * holds the tree root alone. An empty database has the one level [SHA-256(0x00)].
 */
function treeLevels(bytes: Uint8Array, count: number): Uint8Array[] {
  if (count === 0) return [emptyTreeRoot()];
  const pages = pageCount(count);
  const leaves = new Uint8Array(pages * HASH_BYTES);
  const prefix = new Uint8Array(5);
  const prefixView = viewOf(prefix);
  prefix[0] = LEAF_PREFIX;
  for (let i = 0; i < pages; i++) {
    const start = recordOffset(i * PAGE_RECORDS);
    prefixView.setUint32(1, i);
    const page = bytes.subarray(start, start + pageRecords(count, i) * DB_RECORD_BYTES);
    digestInto(createHash("sha256").update(prefix).update(page), leaves, i * HASH_BYTES);
  }
  const levels = [leaves];
  const pair = new Uint8Array(1 + 2 * HASH_BYTES);
  pair[0] = NODE_PREFIX;
  for (let level = leaves, n = pages; n > 1;) {
    const up = Math.ceil(n / 2);
    const next = new Uint8Array(up * HASH_BYTES);
    for (let i = 0; i + 1 < n; i += 2) {
      pair.set(level.subarray(i * HASH_BYTES, (i + 2) * HASH_BYTES), 1);
      digestInto(createHash("sha256").update(pair), next, (i / 2) * HASH_BYTES);
    }
    if (n % 2 === 1) next.set(level.subarray((n - 1) * HASH_BYTES), (up - 1) * HASH_BYTES);
    levels.push(next);
    level = next;
    n = up;
  }
  return levels;
}

/** Page `pageIndex` and its siblings, read from the levels. */
function pathOf(bytes: Uint8Array, count: number, levels: Uint8Array[], pageIndex: number): PagePath {
  const start = recordOffset(pageIndex * PAGE_RECORDS);
  const page = bytes.subarray(start, start + pageRecords(count, pageIndex) * DB_RECORD_BYTES);
  const siblings: Uint8Array[] = [];
  let i = pageIndex;
  for (let l = 0; l < levels.length - 1; l++) {
    const level = levels[l]!;
    const sibling = i ^ 1;
    if (sibling * HASH_BYTES < level.length) {
      siblings.push(level.subarray(sibling * HASH_BYTES, (sibling + 1) * HASH_BYTES));
    }
    i >>>= 1;
  }
  return { page, siblings };
}

/** True when the page is whole records and every sibling is 32 bytes. */
function wellFormed(path: PagePath): boolean {
  return path.page.length % DB_RECORD_BYTES === 0 && path.siblings.every((s) => s.length === HASH_BYTES);
}

/** The problem with a well-formed path's shape for page `pageIndex` of `count` records, or undefined. */
function checkPath(count: number, pageIndex: number, path: PagePath): ProofProblem | undefined {
  const expected = count === 0 ? 0 : pageRecords(count, pageIndex);
  if (path.page.length !== expected * DB_RECORD_BYTES) return "page_length";
  if (path.siblings.length !== pathLength(pageIndex, pageCount(count))) return "path_length";
  for (let off = DB_RECORD_BYTES; off < path.page.length; off += DB_RECORD_BYTES) {
    if (compare32(path.page, off - DB_RECORD_BYTES, path.page, off) >= 0) return "page_not_sorted";
  }
  return undefined;
}

/** Number of siblings on the path of leaf `index` among `leaves` (promoted levels have none). */
function pathLength(index: number, leaves: number): number {
  let length = 0;
  for (let i = index, n = leaves; n > 1; i >>>= 1, n = Math.ceil(n / 2)) if ((i ^ 1) < n) length++;
  return length;
}

/** The tree root a path leads to; the sides come from the index: an odd index is a right child. */
function pathRoot(pageIndex: number, pages: number, path: PagePath): Uint8Array {
  const prefix = new Uint8Array(5);
  prefix[0] = LEAF_PREFIX;
  viewOf(prefix).setUint32(1, pageIndex);
  let node = sha256Of([prefix, path.page]);
  const pair = new Uint8Array(1 + 2 * HASH_BYTES);
  pair[0] = NODE_PREFIX;
  let s = 0;
  for (let i = pageIndex, n = pages; n > 1; i >>>= 1, n = Math.ceil(n / 2)) {
    if ((i ^ 1) >= n) continue; // the last node of an odd level: promoted unchanged
    const sibling = path.siblings[s++]!;
    pair.set(i % 2 === 1 ? sibling : node, 1);
    pair.set(i % 2 === 1 ? node : sibling, 1 + HASH_BYTES);
    node = sha256(pair);
  }
  return node;
}

function emptyTreeRoot(): Uint8Array {
  return sha256(new Uint8Array([LEAF_PREFIX]));
}

function rootOf(header: Uint8Array, count: number, treeRoot: Uint8Array): Uint8Array {
  const head = new Uint8Array(1 + DB_HEADER_BYTES + 4);
  head[0] = ROOT_PREFIX;
  head.set(header, 1);
  viewOf(head).setUint32(1 + DB_HEADER_BYTES, count);
  return sha256Of([head, treeRoot]);
}
