// docs/protocol.md against the code: its worked examples decode with the real decoders, re-encode to the
// same bytes, and its tables of constants and message kinds name the values the code uses.

import * as addressModule from "../lib/address.ts";
import {
  ADDRESS_CHARS,
  ADDRESS_PREFIX,
  AddressError,
  BECH32_CHARSET,
  decodeAddress,
  encodeAddress,
} from "../lib/address.ts";
import assert from "node:assert/strict";
import { fromHex, toHex } from "../lib/_bytes.ts";
import { sha256Hex } from "../lib/hash.ts";
import { frameAt, frameContext } from "../lib/frames.ts";
import { keyPairFromSeed, writeKeyFile } from "../lib/keys.ts";
import * as ledgerModule from "../lib/ledger.ts";
import { apply, Ledger } from "../lib/ledger.ts";
import * as archiveModule from "../lib/archive.ts";
import * as keysModule from "../lib/keys.ts";
import * as peersModule from "../lib/peers.ts";
import * as replicaModule from "../lib/replica.ts";
import * as txModule from "../lib/tx.ts";
import { decodeTx, signTx, TX_BYTES, verifyTx } from "../lib/tx.ts";
import * as wireModule from "../lib/wire.ts";
import { Kind } from "../lib/wire.ts";
import { makeTempDir, repoPath } from "./_helpers.ts";

const DOC = await Deno.readTextFile(repoPath("docs/protocol.md"));

/** Every fenced block with a `title="..."` info string, by title. */
function titledBlocks(doc: string): Map<string, { lang: string; text: string }[]> {
  const blocks = new Map<string, { lang: string; text: string }[]>();
  for (const m of doc.matchAll(/^```(\w+) title="([^"]+)"\n([\s\S]*?)^```$/gm)) {
    const list = blocks.get(m[2]!) ?? [];
    list.push({ lang: m[1]!, text: m[3]! });
    blocks.set(m[2]!, list);
  }
  return blocks;
}

const BLOCKS = titledBlocks(DOC);

function block(title: string, lang: string): string {
  const found = BLOCKS.get(title);
  assert.ok(found !== undefined, `docs/protocol.md has no block titled "${title}"`);
  assert.equal(found.length, 1, `docs/protocol.md has ${found.length} blocks titled "${title}"`);
  assert.equal(found[0]!.lang, lang, `block "${title}" should be \`\`\`${lang}`);
  return found[0]!.text;
}

/** The bytes of a hex block: whitespace between groups is layout only. */
function hexBlock(title: string): Uint8Array {
  const hex = block(title, "hex").replace(/\s+/g, "");
  const bytes = fromHex(hex);
  assert.ok(bytes !== undefined, `block "${title}" is not hex`);
  return bytes;
}

function jsonBlock<T>(title: string): T {
  return JSON.parse(block(title, "json")) as T;
}

interface AccountRow {
  account: string;
  balance: number;
}

Deno.test("docs/protocol.md has every worked example exactly once", () => {
  for (
    const [title, lang] of [
      ["key-file-example", "json"],
      ["encrypted-key-file-example", "json"],
      ["packed-db-example", "hex"],
      ["packed-db-example-decoded", "json"],
      ["transfer-example", "hex"],
      ["transfer-example-decoded", "json"],
      ["apply-example", "json"],
      ["address-example", "text"],
      ["address-example-values", "json"],
    ]
  ) block(title!, lang!);
});

Deno.test("the packed database example decodes to the documented accounts, supply and hash", () => {
  const bytes = hexBlock("packed-db-example");
  const expected = jsonBlock<{ accounts: AccountRow[]; supply: number; hash: string }>(
    "packed-db-example-decoded",
  );
  assert.equal(bytes.length, 16 + 40 * expected.accounts.length);
  const ledger = Ledger.fromPacked(bytes);
  assert.equal(ledger.count, expected.accounts.length);
  assert.deepEqual(
    [...ledger.entries()].map(([account, balance]) => ({ account, balance })),
    expected.accounts,
  );
  assert.equal(ledger.supply, expected.supply);
  assert.equal(ledger.hash, expected.hash);
  assert.equal(sha256Hex(bytes), expected.hash, "the hash is SHA-256 of all the packed bytes");
  for (const { account, balance } of expected.accounts) {
    assert.equal(ledger.balanceOf(fromHex(account)!), balance);
  }
});

Deno.test("Ledger.fromBalances packs the documented accounts into the example bytes, in any input order", () => {
  const bytes = hexBlock("packed-db-example");
  const { accounts } = jsonBlock<{ accounts: AccountRow[] }>("packed-db-example-decoded");
  const rows = accounts.map((a) => [a.account, a.balance] as [string, number]);
  assert.equal(toHex(Ledger.fromBalances(rows).bytes), toHex(bytes));
  assert.equal(toHex(Ledger.fromBalances(rows.toReversed()).bytes), toHex(bytes));
});

interface TransferExample {
  payerSeed: string;
  timestamp: number;
  amount: number;
  payee: string;
  payer: string;
  signature: string;
  id: string;
}

Deno.test("the transfer example decodes to the documented fields and id, and its signature verifies", () => {
  const bytes = hexBlock("transfer-example");
  const expected = jsonBlock<TransferExample>("transfer-example-decoded");
  assert.equal(bytes.length, TX_BYTES);
  const tx = decodeTx(bytes);
  assert.ok(tx !== undefined);
  assert.equal(tx.timestampMs, expected.timestamp);
  assert.equal(tx.amount, expected.amount);
  assert.equal(toHex(tx.payee), expected.payee);
  assert.equal(toHex(tx.payer), expected.payer);
  assert.equal(toHex(tx.signature), expected.signature);
  assert.equal(tx.id, expected.id);
  assert.equal(sha256Hex(bytes.subarray(0, 80)), expected.id, "the id is SHA-256 of the first 80 bytes");
  assert.ok(verifyTx(tx));
  assert.equal(txModule.checkTxStateless(tx), undefined);
});

Deno.test("signing the documented fields with the documented seed reproduces the example bytes", async () => {
  const bytes = hexBlock("transfer-example");
  const expected = jsonBlock<TransferExample>("transfer-example-decoded");
  const keyPair = await keyPairFromSeed(fromHex(expected.payerSeed, 32)!);
  assert.equal(keyPair.publicHex, expected.payer);
  const signed = await signTx(keyPair, {
    to: fromHex(expected.payee, 32)!,
    amount: expected.amount,
    timestampMs: expected.timestamp,
  });
  assert.equal(toHex(signed), toHex(bytes), "Ed25519 is deterministic: same seed and fields, same bytes");
});

Deno.test("a transfer example with any byte changed no longer verifies", () => {
  const bytes = hexBlock("transfer-example");
  for (const offset of [0, 8, 15, 16, 47, 48, 79, 80, 143]) {
    const changed = bytes.slice();
    changed[offset]! ^= 0x01;
    assert.equal(verifyTx(decodeTx(changed)!), false, `byte ${offset} flipped`);
  }
});

Deno.test("the key file example is exactly what writeKeyFile writes for its seed", async () => {
  const text = block("key-file-example", "json");
  const json = JSON.parse(text) as { seed: string; public: string };
  const keyPair = await keyPairFromSeed(fromHex(json.seed, 32)!);
  assert.equal(keyPair.publicHex, json.public);
  await using dir = await makeTempDir();
  await writeKeyFile(`${dir.path}/example.key`, keyPair);
  assert.equal(await Deno.readTextFile(`${dir.path}/example.key`), text);
  assert.equal((await keysModule.readKeyFile(`${dir.path}/example.key`)).publicHex, json.public);
});

Deno.test("applying the transfer example to the database example gives the documented database", () => {
  const example = jsonBlock<{
    interval: number;
    skew: number;
    blackout: number;
    frame: number;
    results: string[];
    accounts: AccountRow[];
    hash: string;
  }>("apply-example");
  const timing = {
    intervalMs: example.interval * 1000,
    skewMs: example.skew * 1000,
    blackoutMs: example.blackout * 1000,
    servers: 3,
  };
  const tx = decodeTx(hexBlock("transfer-example"))!;
  assert.equal(frameAt(tx.timestampMs, timing.intervalMs), example.frame);
  const before = Ledger.fromPacked(hexBlock("packed-db-example"));
  const result = apply({ ledger: before, recent: [] }, [tx], frameContext(example.frame, timing));
  assert.deepEqual(result.results, example.results);
  const after = result.state.ledger;
  assert.deepEqual(
    [...after.entries()].map(([account, balance]) => ({ account, balance })),
    example.accounts,
  );
  assert.equal(after.hash, example.hash);
  assert.equal(after.supply, before.supply);
});

Deno.test("the limits table of docs/protocol.md names the values of the code", () => {
  const constants: Record<string, unknown> = {
    ...txModule,
    ...ledgerModule,
    ...keysModule,
    ...peersModule,
    ...archiveModule,
    ...wireModule,
    ...replicaModule,
    ...addressModule,
  };
  const section = DOC.slice(DOC.indexOf("## 13. Limits"));
  const rows = [...section.matchAll(/^\| `([A-Z_]+)` +\| ([^|]+?) +\|/gm)];
  assert.ok(rows.length >= 20, `found only ${rows.length} rows in the limits table`);
  for (const [, name, written] of rows) {
    const value = written === "2^53 − 1"
      ? Number.MAX_SAFE_INTEGER
      : Number(/^[0-9,]+/.exec(written!)![0].replace(/,/g, ""));
    assert.equal(constants[name!], value, `${name} is written as ${written}`);
  }
});

Deno.test("the kinds table of docs/protocol.md names the kind bytes of the code", () => {
  const rows = [...DOC.matchAll(/^\| `0x([0-9a-f]{2})` \| `(\w+)` +\|/gm)];
  assert.equal(rows.length, Object.keys(Kind).length);
  for (const [, hex, name] of rows) {
    assert.equal(Kind[name as keyof typeof Kind], parseInt(hex!, 16), `kind ${name}`);
  }
});

Deno.test("the address example decodes to bob's account, with the documented values, and a typo is refused", () => {
  const address = block("address-example", "text").trim();
  const bob = jsonBlock<{ payee: string }>("transfer-example-decoded").payee;
  assert.equal(toHex(decodeAddress(address)), bob);
  assert.equal(encodeAddress(fromHex(bob, 32)!), address);
  const values = [...address.slice(ADDRESS_PREFIX.length + 1)].map((c) => BECH32_CHARSET.indexOf(c));
  assert.deepEqual(values, jsonBlock<number[]>("address-example-values"));
  assert.equal(address.length, ADDRESS_CHARS);
  assert.equal(address[12], "g");
  const typo = address.slice(0, 12) + "q" + address.slice(13);
  assert.throws(
    () => decodeAddress(typo),
    (err: Error) =>
      err instanceof AddressError &&
      err.message === "its checksum does not match: it was mistyped or garbled (character 13 looks wrong)",
  );
  assert.ok(DOC.includes("(character 13 looks wrong)"));
});
