// Tests of lib/merkle.ts: the ledger Merkle root against a plain reference written from the definition,
// proofs of presence and absence, refusal of every tampered proof, the byte encoding and its limits, and
// the worked examples of docs/protocol.md section 14.

import assert from "node:assert/strict";
import { concatBytes, fromHex, toHex, viewOf } from "../lib/_bytes.ts";
import { sha256 } from "../lib/hash.ts";
import { DB_HEADER_BYTES, DB_RECORD_BYTES, Ledger } from "../lib/ledger.ts";
import {
  type AccountProof,
  decodeAccountProof,
  encodeAccountProof,
  ledgerRoot,
  MAX_ACCOUNT_PROOF_BYTES,
  MAX_PROOF_DEPTH,
  PAGE_BYTES,
  PAGE_RECORDS,
  type ProofResult,
  proveAccount,
  verifyAccountProof,
} from "../lib/merkle.ts";
import { assertThrowsError, makeAccount, repoPath, seededRandom } from "./_helpers.ts";

/**
 * A ledger of `count` accounts spread over first bytes 1 to 254 (so 0x00… and 0xff… are absent), each
 * ending in an even number (so the account just after one is absent).
 */
function ledgerOf(count: number, seed = 7): Ledger {
  const random = seededRandom(seed);
  return Ledger.fromBalances(
    Array.from(
      { length: count },
      (_, i) => [toHex(makeAccount(1 + random.int(254), 2 * i)), 1 + random.int(1e9)],
    ),
  );
}

/** The 130-account ledger of section 14.4: account 31 zero bytes then k, balance k, for k = 1 to 130. */
function ledger130(): Ledger {
  return Ledger.fromBalances(
    Array.from(
      { length: 130 },
      (_, i) => [`${"00".repeat(31)}${(i + 1).toString(16).padStart(2, "0")}`, i + 1],
    ),
  );
}

/** The account of record `index`. */
function accountAt(ledger: Ledger, index: number): Uint8Array {
  const off = DB_HEADER_BYTES + index * DB_RECORD_BYTES;
  return ledger.bytes.slice(off, off + 32);
}

/** `account` + 1 as a 256-bit big-endian number: sorts right after it, before any other account. */
function justAfter(account: Uint8Array): Uint8Array {
  const out = account.slice();
  for (let i = 31; i >= 0 && ++out[i]! === 256; i--) out[i] = 0;
  return out;
}

/** The root straight from the definition of docs/protocol.md 14.1, sharing no code with lib/merkle.ts. */
function referenceRoot(bytes: Uint8Array): Uint8Array {
  const count = (bytes.length - DB_HEADER_BYTES) / DB_RECORD_BYTES;
  let level: Uint8Array[] = [];
  for (let i = 0; i * PAGE_BYTES < count * DB_RECORD_BYTES; i++) {
    const index = new Uint8Array(4);
    viewOf(index).setUint32(0, i);
    const start = DB_HEADER_BYTES + i * PAGE_BYTES;
    const page = bytes.slice(start, Math.min(start + PAGE_BYTES, bytes.length));
    level.push(sha256(concatBytes([Uint8Array.of(0x00), index, page])));
  }
  if (level.length === 0) level = [sha256(Uint8Array.of(0x00))];
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(
        i + 1 < level.length
          ? sha256(concatBytes([Uint8Array.of(0x01), level[i]!, level[i + 1]!]))
          : level[i]!,
      );
    }
    level = next;
  }
  const countBytes = new Uint8Array(4);
  viewOf(countBytes).setUint32(0, count);
  return sha256(
    concatBytes([Uint8Array.of(0x02), bytes.subarray(0, DB_HEADER_BYTES), countBytes, level[0]!]),
  );
}

function assertBalance(result: ProofResult, balance: number, message?: string): void {
  assert.deepEqual(result, { balance }, message);
}

function assertProblem(result: ProofResult, problem: string, message?: string): void {
  assert.deepEqual(result, { problem }, message);
}

/** Ledgers whose page counts cover 0, 1, 2, 3 (an odd node promoted) and 4, 5 (promoted twice) pages. */
const SIZES = [0, 1, 2, 63, 64, 65, 128, 129, 200, 257, 300];

Deno.test("ledgerRoot() is 32 bytes and matches the reference for 0, 1, 63, 64, 65, 200 and more accounts", () => {
  const roots = new Set<string>();
  for (const size of SIZES) {
    const ledger = ledgerOf(size);
    const root = ledgerRoot(ledger.bytes);
    assert.equal(root.length, 32);
    assert.equal(toHex(root), toHex(referenceRoot(ledger.bytes)), `${size} accounts`);
    roots.add(toHex(root));
  }
  assert.equal(roots.size, SIZES.length, "different databases, different roots");
});

Deno.test("ledgerRoot() of an empty database hashes the header, a count of 0 and SHA-256 of the byte 0x00", () => {
  const bytes = Ledger.fromBalances([]).bytes;
  const expected = sha256(
    concatBytes([Uint8Array.of(0x02), bytes, new Uint8Array(4), sha256(Uint8Array.of(0x00))]),
  );
  assert.equal(toHex(ledgerRoot(bytes)), toHex(expected));
});

Deno.test("ledgerRoot() changes when any one balance, account or header byte changes", () => {
  const ledger = ledgerOf(200);
  const root = toHex(ledgerRoot(ledger.bytes));
  const seen = new Set([root]);
  for (let i = 0; i < ledger.count; i++) {
    const changed = ledger.bytes.slice();
    changed[DB_HEADER_BYTES + i * DB_RECORD_BYTES + 39]! ^= 0x01;
    seen.add(toHex(ledgerRoot(changed)));
  }
  assert.equal(seen.size, 1 + ledger.count, "each changed balance gives its own root");
  for (const offset of [0, 5, 7, DB_HEADER_BYTES, DB_HEADER_BYTES + 31, ledger.bytes.length - 40]) {
    const changed = ledger.bytes.slice();
    changed[offset]! ^= 0x80;
    assert.notEqual(toHex(ledgerRoot(changed)), root, `byte ${offset} changed`);
  }
});

Deno.test("ledgerRoot() refuses bytes whose length does not match the header's count", () => {
  const bytes = ledgerOf(3).bytes;
  assertThrowsError(() => ledgerRoot(bytes.subarray(0, 15)), RangeError, /shorter than its header/);
  assertThrowsError(() => ledgerRoot(bytes.subarray(0, bytes.length - 1)), RangeError, /does not match/);
  const lying = bytes.slice();
  lying[15] = 4;
  assertThrowsError(() => ledgerRoot(lying), RangeError, /does not match its count/);
});

Deno.test("proofs of every account of a 200-account ledger verify, also after encoding", () => {
  const ledger = ledgerOf(200);
  const root = ledgerRoot(ledger.bytes);
  for (const [hex, balance] of ledger.entries()) {
    const account = fromHex(hex, 32)!;
    const proof = proveAccount(ledger.bytes, account);
    assert.equal(proof.previous, undefined);
    assert.equal(proof.siblings.length, 2, "4 pages: 2 siblings");
    assertBalance(verifyAccountProof(root, account, proof), balance, hex);
    const decoded = decodeAccountProof(encodeAccountProof(proof));
    assertBalance(verifyAccountProof(root, account, decoded), balance, hex);
    assert.deepEqual(encodeAccountProof(decoded), encodeAccountProof(proof));
  }
});

Deno.test("every account of ledgers of every size proves its balance; promoted pages carry fewer siblings", () => {
  for (const size of SIZES) {
    const ledger = ledgerOf(size, size);
    const root = ledgerRoot(ledger.bytes);
    for (const [hex, balance] of ledger.entries()) {
      assertBalance(
        verifyAccountProof(root, fromHex(hex)!, proveAccount(ledger.bytes, fromHex(hex)!)),
        balance,
      );
    }
  }
  // 300 accounts are 5 pages: page 4 is promoted twice and meets the other four at the top.
  const ledger = ledgerOf(300);
  assert.deepEqual(
    [0, 64, 128, 192, 256].map((i) => proveAccount(ledger.bytes, accountAt(ledger, i)).siblings.length),
    [3, 3, 3, 3, 1],
  );
  const five = proveAccount(ledger.bytes, accountAt(ledger, 299));
  assert.equal(five.pageIndex, 4);
  assert.equal(five.page.length, 44 * DB_RECORD_BYTES, "the last page holds the remaining 44 records");
});

Deno.test("absent accounts prove a balance of 0: below all, above all, inside a page and at a page boundary", () => {
  for (const size of SIZES) {
    const ledger = ledgerOf(size);
    const root = ledgerRoot(ledger.bytes);
    const absent = [makeAccount(0x00), makeAccount(0xff)];
    for (let i = 0; i < ledger.count; i++) absent.push(justAfter(accountAt(ledger, i)));
    for (const account of absent) {
      assert.equal(ledger.balanceOf(account), 0);
      const proof = proveAccount(ledger.bytes, account);
      assertBalance(verifyAccountProof(root, account, proof), 0, `${size} accounts, ${toHex(account)}`);
      assertBalance(verifyAccountProof(root, account, decodeAccountProof(encodeAccountProof(proof))), 0);
    }
  }
});

Deno.test("an absence at a page boundary is proven with the previous page, and not without it", () => {
  const ledger = ledgerOf(200);
  const root = ledgerRoot(ledger.bytes);
  const account = justAfter(accountAt(ledger, PAGE_RECORDS - 1));
  const proof = proveAccount(ledger.bytes, account);
  assert.equal(proof.pageIndex, 1);
  assert.ok(proof.previous !== undefined);
  assert.equal(proof.previous.page.length, PAGE_BYTES);
  assertBalance(verifyAccountProof(root, account, proof), 0);
  const { previous: _, ...alone } = proof;
  assertProblem(verifyAccountProof(root, account, alone), "absence_not_proven");
  const inside = proveAccount(ledger.bytes, justAfter(accountAt(ledger, PAGE_RECORDS)));
  assert.equal(inside.previous, undefined, "inside a page the page alone proves absence");
  const encoded = encodeAccountProof(proof);
  assert.equal(encoded.length, 16 + 4 + 2 + PAGE_BYTES + 2 * 32 + 1 + 2 + PAGE_BYTES + 2 * 32);
});

Deno.test("no proof of any page makes a present account show a balance other than its own", () => {
  const ledger = ledgerOf(200);
  const root = ledgerRoot(ledger.bytes);
  // Proofs of every page, with and without the previous page where there is one.
  const proofs: AccountProof[] = [];
  for (let i = 0; i < ledger.count; i += PAGE_RECORDS) {
    const proof = proveAccount(ledger.bytes, accountAt(ledger, i));
    proofs.push(proof);
    if (i > 0) proofs.push(proveAccount(ledger.bytes, justAfter(accountAt(ledger, i - 1))));
  }
  proofs.push(proveAccount(ledger.bytes, makeAccount(0xff)));
  for (const [hex, balance] of ledger.entries()) {
    for (const proof of proofs) {
      const result = verifyAccountProof(root, fromHex(hex)!, proof);
      if ("balance" in result) {
        assert.equal(result.balance, balance, `${hex} through page ${proof.pageIndex}`);
      } else assert.equal(result.problem, "absence_not_proven");
    }
  }
});

Deno.test("tampered proofs are refused: balance, account, sibling, page index, count, header, root", () => {
  const ledger = ledgerOf(200);
  const root = ledgerRoot(ledger.bytes);
  const account = accountAt(ledger, 70);
  const proof = proveAccount(ledger.bytes, account);
  assertBalance(verifyAccountProof(root, account, proof), ledger.balanceOf(account));
  const at = (70 - PAGE_RECORDS) * DB_RECORD_BYTES;

  const richer = proof.page.slice();
  richer[at + 39]! ^= 0x01;
  assertProblem(verifyAccountProof(root, account, { ...proof, page: richer }), "root_mismatch", "balance");

  const renamed = proof.page.slice();
  renamed[at + 31]! ^= 0x01;
  assertProblem(verifyAccountProof(root, account, { ...proof, page: renamed }), "root_mismatch", "account");

  for (let s = 0; s < proof.siblings.length; s++) {
    const siblings = proof.siblings.map((x) => x.slice());
    siblings[s]![0]! ^= 0x01;
    assertProblem(verifyAccountProof(root, account, { ...proof, siblings }), "root_mismatch", `sibling ${s}`);
  }
  const swapped = [...proof.siblings].reverse();
  assertProblem(verifyAccountProof(root, account, { ...proof, siblings: swapped }), "root_mismatch", "order");
  assertProblem(
    verifyAccountProof(root, account, { ...proof, siblings: proof.siblings.slice(1) }),
    "path_length",
  );
  assertProblem(
    verifyAccountProof(root, account, { ...proof, siblings: [...proof.siblings, proof.siblings[0]!] }),
    "path_length",
  );

  assertProblem(verifyAccountProof(root, account, { ...proof, pageIndex: 0 }), "root_mismatch", "index 0");
  assertProblem(verifyAccountProof(root, account, { ...proof, pageIndex: 2 }), "root_mismatch", "index 2");
  assertProblem(verifyAccountProof(root, account, { ...proof, pageIndex: 3 }), "page_length", "index 3");
  assertProblem(verifyAccountProof(root, account, { ...proof, pageIndex: 4 }), "page_out_of_range");
  assertProblem(verifyAccountProof(root, account, { ...proof, pageIndex: -1 }), "page_out_of_range");
  assertProblem(verifyAccountProof(root, account, { ...proof, pageIndex: 1.5 }), "page_out_of_range");

  assertProblem(verifyAccountProof(root, account, { ...proof, count: 199 }), "count_mismatch");
  assertProblem(verifyAccountProof(root, account, { ...proof, count: 256 }), "count_mismatch");
  const huge = proof.header.slice();
  huge[8] = 0xff; // a count above 2^53 - 1, which readU64 gives as -1
  assertProblem(verifyAccountProof(root, account, { ...proof, header: huge, count: -1 }), "count_mismatch");
  // A header and count that agree with each other but not with the root.
  const header = proof.header.slice();
  viewOf(header).setUint32(12, 192);
  assertProblem(verifyAccountProof(root, account, { ...proof, header, count: 192 }), "root_mismatch");
  const version = proof.header.slice();
  version[5] = 2;
  assertProblem(verifyAccountProof(root, account, { ...proof, header: version }), "root_mismatch", "version");

  const otherRoot = ledgerRoot(ledgerOf(200, 8).bytes);
  assertProblem(verifyAccountProof(otherRoot, account, proof), "root_mismatch", "another ledger's root");
  assertProblem(verifyAccountProof(root.subarray(1), account, proof), "malformed");
  assertProblem(verifyAccountProof(root, account.subarray(1), proof), "malformed");
  assertProblem(verifyAccountProof(root, account, { ...proof, page: proof.page.subarray(1) }), "malformed");
  assertProblem(
    verifyAccountProof(root, account, { ...proof, page: proof.page.subarray(40) }),
    "page_length",
  );
  assertProblem(
    verifyAccountProof(root, account, { ...proof, pageIndex: 9, siblings: [proof.siblings[0]!.subarray(1)] }),
    "malformed",
    "malformed is decided before the rest",
  );
});

Deno.test("a tampered previous page is refused, and previous is refused for page 0", () => {
  const ledger = ledgerOf(200);
  const root = ledgerRoot(ledger.bytes);
  const account = justAfter(accountAt(ledger, 2 * PAGE_RECORDS - 1));
  const proof = proveAccount(ledger.bytes, account);
  assert.ok(proof.previous !== undefined);
  const page = proof.previous.page.slice();
  page[PAGE_BYTES - 1]! ^= 0x01;
  assertProblem(
    verifyAccountProof(root, account, { ...proof, previous: { ...proof.previous, page } }),
    "root_mismatch",
  );
  const siblings = proof.previous.siblings.map((s) => s.slice());
  siblings[1]![31]! ^= 0x01;
  assertProblem(
    verifyAccountProof(root, account, { ...proof, previous: { ...proof.previous, siblings } }),
    "root_mismatch",
  );
  const first = proveAccount(ledger.bytes, accountAt(ledger, 0));
  assertProblem(
    verifyAccountProof(root, account, { ...first, previous: proof.previous }),
    "page_out_of_range",
  );
});

Deno.test("verifyAccountProof() refuses a page that is not sorted even when its root matches", () => {
  // A root computed over a database that breaks the rules of section 5.2 proves nothing about absence.
  const ledger = ledgerOf(3);
  const bytes = ledger.bytes.slice();
  const second = bytes.slice(DB_HEADER_BYTES + DB_RECORD_BYTES, DB_HEADER_BYTES + 2 * DB_RECORD_BYTES);
  bytes.copyWithin(DB_HEADER_BYTES + DB_RECORD_BYTES, DB_HEADER_BYTES, DB_HEADER_BYTES + DB_RECORD_BYTES);
  bytes.set(second, DB_HEADER_BYTES);
  const proof = proveAccount(bytes, accountAt(ledger, 0));
  assertProblem(verifyAccountProof(ledgerRoot(bytes), accountAt(ledger, 0), proof), "page_not_sorted");
});

Deno.test("verifyAccountProof() refuses a balance of 0 or above 2^53 - 1 even when its root matches", () => {
  const ledger = ledgerOf(3);
  for (const [hi, lo] of [[0, 0], [0x20_0000, 0]]) {
    const bytes = ledger.bytes.slice();
    viewOf(bytes).setUint32(DB_HEADER_BYTES + DB_RECORD_BYTES + 32, hi!);
    viewOf(bytes).setUint32(DB_HEADER_BYTES + DB_RECORD_BYTES + 36, lo!);
    const account = accountAt(ledger, 1);
    const result = verifyAccountProof(ledgerRoot(bytes), account, proveAccount(bytes, account));
    assertProblem(result, "balance_out_of_range");
  }
});

Deno.test("an empty database proves every account absent with an empty proof", () => {
  const bytes = Ledger.fromBalances([]).bytes;
  const root = ledgerRoot(bytes);
  const proof = proveAccount(bytes, makeAccount(0x42));
  assert.deepEqual(
    { pageIndex: proof.pageIndex, page: proof.page.length, siblings: proof.siblings.length },
    { pageIndex: 0, page: 0, siblings: 0 },
  );
  assertBalance(verifyAccountProof(root, makeAccount(0x42), proof), 0);
  const encoded = encodeAccountProof(proof);
  assert.equal(toHex(encoded), `${toHex(bytes)}00000000` + "0000" + "00");
  assertBalance(verifyAccountProof(root, makeAccount(0x42), decodeAccountProof(encoded)), 0);
  assertProblem(verifyAccountProof(root, makeAccount(0x42), { ...proof, pageIndex: 1 }), "page_out_of_range");
});

Deno.test("decodeAccountProof() refuses what does not parse, naming the problem", () => {
  const ledger = ledgerOf(200);
  const good = encodeAccountProof(proveAccount(ledger.bytes, justAfter(accountAt(ledger, 63))));
  assert.equal(decodeAccountProof(good).pageIndex, 1);
  assertThrowsError(() => decodeAccountProof(good.subarray(0, 22)), SyntaxError, /cut off/);
  assertThrowsError(() => decodeAccountProof(good.subarray(0, good.length - 1)), SyntaxError, /cut off/);
  assertThrowsError(
    () => decodeAccountProof(concatBytes([good, Uint8Array.of(0)])),
    SyntaxError,
    /after its end/,
  );
  const single = encodeAccountProof(proveAccount(ledger.bytes, accountAt(ledger, 0)));
  assertThrowsError(
    () => decodeAccountProof(concatBytes([single, Uint8Array.of(0)])),
    SyntaxError,
    /after its end/,
  );
  const flag = single.slice();
  flag[flag.length - 1] = 2;
  assertThrowsError(() => decodeAccountProof(flag), SyntaxError, /flag is 2/);
  const records = single.slice();
  records[20] = PAGE_RECORDS + 1;
  assertThrowsError(() => decodeAccountProof(records), SyntaxError, /65 records is above 64/);
  const depth = single.slice();
  depth[21] = MAX_PROOF_DEPTH + 1;
  assertThrowsError(() => decodeAccountProof(depth), SyntaxError, /33 siblings is above 32/);
  const count = single.slice();
  count[8] = 1;
  assertThrowsError(() => decodeAccountProof(count), SyntaxError, /count is out of range/);
  assertThrowsError(
    () => decodeAccountProof(new Uint8Array(MAX_ACCOUNT_PROOF_BYTES + 1)),
    SyntaxError,
    /above 7193/,
  );
});

Deno.test("the largest proof the limits allow is MAX_ACCOUNT_PROOF_BYTES and decodes", () => {
  const header = ledgerOf(0).bytes.slice();
  const siblings = Array.from({ length: MAX_PROOF_DEPTH }, () => new Uint8Array(32));
  const page = new Uint8Array(PAGE_BYTES);
  const proof: AccountProof = {
    header,
    count: 0,
    pageIndex: 1,
    page,
    siblings,
    previous: { page, siblings },
  };
  const bytes = encodeAccountProof(proof);
  assert.equal(bytes.length, MAX_ACCOUNT_PROOF_BYTES);
  assert.equal(decodeAccountProof(bytes).siblings.length, MAX_PROOF_DEPTH);
  assertThrowsError(
    () => encodeAccountProof({ ...proof, siblings: [...siblings, new Uint8Array(32)] }),
    RangeError,
    /33 siblings is above 32/,
  );
  assertThrowsError(
    () => encodeAccountProof({ ...proof, page: new Uint8Array(PAGE_BYTES + 40) }),
    RangeError,
    /is not 0 to 64 records/,
  );
});

Deno.test("a fixed ledger has a pinned root: 130 accounts 00…01 to 00…82 with balances 1 to 130", () => {
  assert.equal(
    toHex(ledgerRoot(ledger130().bytes)),
    "c381f029566cc278e7863738898349603681981747279abd437203290076452c",
  );
});

// The worked examples of docs/protocol.md section 14.4, checked like tests/protocol_doc_test.ts checks
// the others.

const DOC = await Deno.readTextFile(repoPath("docs/protocol.md"));

function docBlock(title: string, lang: string): string {
  const found = [...DOC.matchAll(/^```(\w+) title="([^"]+)"\n([\s\S]*?)^```$/gm)].filter((m) =>
    m[2] === title
  );
  assert.equal(found.length, 1, `docs/protocol.md should have one block titled "${title}"`);
  assert.equal(found[0]![1], lang);
  return found[0]![3]!;
}

interface RootExample {
  empty: { treeRoot: string; root: string };
  packedDbExample: { leaves: string[]; treeRoot: string; root: string };
  accounts130: { leaves: string[]; nodes: string[]; treeRoot: string; root: string };
}

Deno.test("docs/protocol.md 14.4: the documented roots are the roots of the documented databases", () => {
  const example = JSON.parse(docBlock("ledger-root-example", "json")) as RootExample;
  const hexOf = (bytes: Uint8Array) => toHex(bytes);
  assert.equal(example.empty.treeRoot, hexOf(sha256(Uint8Array.of(0))));
  assert.equal(example.empty.root, hexOf(ledgerRoot(Ledger.fromBalances([]).bytes)));

  const packed = fromHex(docBlock("packed-db-example", "hex").replace(/\s+/g, ""))!;
  const packedLeaf = sha256(concatBytes([new Uint8Array(5), packed.subarray(DB_HEADER_BYTES)]));
  assert.deepEqual(example.packedDbExample.leaves, [hexOf(packedLeaf)]);
  assert.equal(example.packedDbExample.treeRoot, hexOf(packedLeaf), "one page: the tree root is its leaf");
  assert.equal(example.packedDbExample.root, hexOf(ledgerRoot(packed)));
  assert.equal(example.packedDbExample.root, hexOf(referenceRoot(packed)));

  const bytes = ledger130().bytes;
  const leaves = [0, 1, 2].map((i) => {
    const start = DB_HEADER_BYTES + i * PAGE_BYTES;
    return sha256(
      concatBytes([
        Uint8Array.of(0, 0, 0, 0, i),
        bytes.subarray(start, Math.min(start + PAGE_BYTES, bytes.length)),
      ]),
    );
  });
  assert.deepEqual(example.accounts130.leaves, leaves.map(hexOf));
  const node01 = sha256(concatBytes([Uint8Array.of(1), leaves[0]!, leaves[1]!]));
  assert.deepEqual(example.accounts130.nodes, [hexOf(node01)]);
  const treeRoot = sha256(concatBytes([Uint8Array.of(1), node01, leaves[2]!]));
  assert.equal(example.accounts130.treeRoot, hexOf(treeRoot), "leaf 2 promoted, then hashed with node01");
  assert.equal(example.accounts130.root, hexOf(ledgerRoot(bytes)));
});

Deno.test("docs/protocol.md 14.4: the documented proof is proveAccount()'s and verifies to the balance", () => {
  const bytes = fromHex(docBlock("account-proof-example", "hex").replace(/\s+/g, ""))!;
  const expected = JSON.parse(docBlock("account-proof-example-decoded", "json")) as {
    root: string;
    account: string;
    balance: number;
    pageIndex: number;
    siblings: string[];
  };
  const ledger = ledger130();
  const account = fromHex(expected.account, 32)!;
  assert.equal(toHex(encodeAccountProof(proveAccount(ledger.bytes, account))), toHex(bytes));
  const proof = decodeAccountProof(bytes);
  assert.equal(proof.pageIndex, expected.pageIndex);
  assert.deepEqual(proof.siblings.map((s) => toHex(s)), expected.siblings);
  assert.equal(expected.root, toHex(ledgerRoot(ledger.bytes)));
  assertBalance(verifyAccountProof(fromHex(expected.root, 32)!, account, proof), expected.balance);
});
