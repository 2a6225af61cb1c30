// lib/votes_file.ts: what a server signed in its agreement, written before any of those votes is sent and
// read back after a crash; a file that is not exactly what was written is refused with its problem.

import assert from "node:assert/strict";
import { concatBytes, toHex, viewOf } from "../lib/_bytes.ts";
import { type AgreementMemory, NIL } from "../lib/agreement.ts";
import { sha256 } from "../lib/hash.ts";
import { keyPairFromSeed } from "../lib/keys.ts";
import { decodeTx, signTx, type Tx, TX_BYTES } from "../lib/tx.ts";
import {
  decodeVotes,
  encodeVotes,
  MAX_LOCKED_TXS,
  POLKA_VOTE_BYTES,
  VOTES_MAGIC,
  type VotesRecord,
} from "../lib/votes_file.ts";

const A = "a".repeat(64);
const B = "b".repeat(64);
const PREV = "cd".repeat(32);
const MAGIC_BYTES = VOTES_MAGIC.length;
/** Where the JSON length is: after the magic and the checksum. */
const LENGTH_AT = MAGIC_BYTES + 32;

async function signedTransfers(count: number): Promise<Tx[]> {
  const payer = await keyPairFromSeed(new Uint8Array(32).fill(5));
  const txs: Tx[] = [];
  for (let i = 0; i < count; i++) {
    const bytes = await signTx(payer, {
      to: new Uint8Array(32).fill(6),
      amount: 10 + i,
      timestampMs: 1_700_000_000_000 + i,
    });
    txs.push(decodeTx(bytes)!);
  }
  return txs;
}

function lockedMemory(): AgreementMemory {
  return {
    round: 2,
    lockedRound: 1,
    lockedDigest: A,
    lockedByCertificate: false,
    validRound: 1,
    validDigest: A,
    signed: [
      { round: 0, step: "prevote", digest: NIL },
      { round: 0, step: "precommit", digest: NIL },
      { round: 1, step: "prevote", digest: A },
      { round: 1, step: "precommit", digest: A },
      { round: 2, step: "prevote", digest: A },
    ],
    proposed: [],
  };
}

function unlockedMemory(): AgreementMemory {
  return {
    round: 0,
    lockedRound: -1,
    lockedDigest: undefined,
    lockedByCertificate: false,
    validRound: -1,
    validDigest: undefined,
    signed: [{ round: 0, step: "prevote", digest: B }],
    proposed: [],
  };
}

/** The record as plain data, transfers as hex (to compare with deepEqual). */
function plain(record: VotesRecord): unknown {
  return {
    ...record,
    locked: record.locked === undefined ? undefined : {
      ...record.locked,
      txs: record.locked.txs.map((tx) => ({ bytes: toHex(tx.bytes), id: tx.id, amount: tx.amount })),
    },
  };
}

function decoded(bytes: Uint8Array): VotesRecord {
  const record = decodeVotes(bytes);
  assert.ok(!("problem" in record), "problem" in record ? record.problem : "");
  return record;
}

/** `bytes` with its checksum recomputed over whatever follows it (a file damaged "consistently"). */
function rechecksummed(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  out.set(sha256(out.subarray(LENGTH_AT)), MAGIC_BYTES);
  return out;
}

/** The bytes of a file holding `json` (any text) and `tail`, with a valid checksum. */
function fileOf(json: string, tail: Uint8Array = new Uint8Array(0)): Uint8Array {
  const text = new TextEncoder().encode(json);
  const length = new Uint8Array(4);
  viewOf(length).setUint32(0, text.length);
  const rest = concatBytes([length, text, tail]);
  return concatBytes([new TextEncoder().encode(VOTES_MAGIC), sha256(rest), rest]);
}

Deno.test("encodeVotes and decodeVotes round-trip a record with a locked proposal and its transfers", async () => {
  const txs = await signedTransfers(3);
  const record: VotesRecord = {
    height: 28_333_334,
    prevDigest: PREV,
    memory: lockedMemory(),
    locked: { frame: 28_333_334, digest: A, txs },
    polka: [],
  };
  const bytes = encodeVotes(record);
  assert.equal(new TextDecoder().decode(bytes.subarray(0, MAGIC_BYTES)), "coin-votes-v1\n");
  assert.equal(toHex(bytes.subarray(MAGIC_BYTES, LENGTH_AT)), toHex(sha256(bytes.subarray(LENGTH_AT))));
  assert.equal(
    toHex(bytes.subarray(bytes.length - 3 * TX_BYTES)),
    toHex(concatBytes(txs.map((tx) => tx.bytes))),
    "the transfers follow the JSON, as they are",
  );
  const back = decoded(bytes);
  assert.deepEqual(plain(back), plain(record));
  assert.equal(toHex(encodeVotes(back)), toHex(bytes), "encoding what was decoded gives the same bytes");
});

Deno.test("encodeVotes and decodeVotes round-trip a record without a lock, and a locked proposal of no transfers", () => {
  const record: VotesRecord = {
    height: 5,
    prevDigest: PREV,
    memory: unlockedMemory(),
    locked: undefined,
    polka: [],
  };
  const back = decoded(encodeVotes(record));
  assert.deepEqual(back, record);
  assert.equal(back.memory.lockedDigest, undefined);
  assert.equal(back.memory.validDigest, undefined);

  const empty: VotesRecord = {
    height: 5,
    prevDigest: PREV,
    memory: { ...unlockedMemory(), validRound: 0, validDigest: B },
    locked: { frame: 7, digest: B, txs: [] },
    polka: [],
  };
  assert.deepEqual(plain(decoded(encodeVotes(empty))), plain(empty));

  const nothingSigned: VotesRecord = {
    height: 0,
    prevDigest: PREV,
    memory: { ...unlockedMemory(), signed: [] },
    locked: undefined,
    polka: [],
  };
  assert.deepEqual(decoded(encodeVotes(nothingSigned)), nothingSigned);
});

/** Stand-ins for signed prevotes: the file keeps them as bytes of a fixed length, checked when counted. */
function polkaVotes(count: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => new Uint8Array(POLKA_VOTE_BYTES).fill(0x40 + i));
}

Deno.test("encodeVotes and decodeVotes round-trip the prevotes that justify the lock, after the transfers", async () => {
  const txs = await signedTransfers(2);
  const record: VotesRecord = {
    height: 11,
    prevDigest: PREV,
    memory: lockedMemory(),
    locked: { frame: 11, digest: A, txs },
    polka: polkaVotes(3),
  };
  assert.equal(POLKA_VOTE_BYTES, 206, "as docs/protocol.md section 6 says");
  const bytes = encodeVotes(record);
  assert.equal(toHex(bytes.subarray(bytes.length - 3 * POLKA_VOTE_BYTES)), toHex(concatBytes(polkaVotes(3))));
  const back = decoded(bytes);
  assert.deepEqual(back.polka.map(toHex), polkaVotes(3).map(toHex));
  assert.deepEqual(plain(back), plain(record));
  assert.throws(() => encodeVotes({ ...record, polka: [new Uint8Array(5)] }), /Invariant broken/);
});

Deno.test("decodeVotes reads a file written before the polka was kept as having none, and refuses a wrong count", async () => {
  const [tx] = await signedTransfers(1);
  const memory = JSON.stringify(lockedMemory());
  const head =
    `{"height":1,"prevDigest":"${PREV}","memory":${memory},"locked":{"frame":1,"digest":"${A}","txs":1}`;
  const old = decoded(fileOf(`${head}}`, tx!.bytes));
  assert.deepEqual(old.polka, []);
  assert.equal(toHex(old.locked!.txs[0]!.bytes), toHex(tx!.bytes));
  const tail = concatBytes([tx!.bytes, ...polkaVotes(2)]);
  assert.deepEqual(decoded(fileOf(`${head},"polka":2}`, tail)).polka.map(toHex), polkaVotes(2).map(toHex));
  const mismatch = { problem: "its locked proposal does not match its length" };
  assert.deepEqual(decodeVotes(fileOf(`${head},"polka":3}`, tail)), mismatch, "3 announced, 2 present");
  assert.deepEqual(decodeVotes(fileOf(`${head},"polka":1}`, tail)), mismatch, "1 announced, 2 present");
  const count = { problem: "its polka count is not a number of servers" };
  assert.deepEqual(decodeVotes(fileOf(`${head},"polka":-1}`, tail)), count);
  assert.deepEqual(decodeVotes(fileOf(`${head},"polka":"2"}`, tail)), count);
  assert.deepEqual(decodeVotes(fileOf(`${head},"polka":65}`, tail)), count);
});

Deno.test("decodeVotes reads a file written before proposals were recorded as proposed in its round when it signed, and refuses bad rounds", () => {
  const file = (memory: object) =>
    fileOf(`{"height":1,"prevDigest":"${PREV}","memory":${JSON.stringify(memory)},"locked":null}`);
  const { proposed: _, ...old } = lockedMemory();
  assert.deepEqual(decoded(file(old)).memory.proposed, [2], "it may have proposed in the round it was in");
  assert.deepEqual(decoded(file({ ...old, signed: [] })).memory.proposed, [], "it signed nothing: a floor");
  assert.deepEqual(decoded(file({ ...old, proposed: [0, 2] })).memory.proposed, [0, 2]);
  const fields = { problem: "its fields are not what a votes file holds" };
  assert.deepEqual(decodeVotes(file({ ...old, proposed: [-2] })), fields);
  assert.deepEqual(decodeVotes(file({ ...old, proposed: 2 })), fields);
  assert.deepEqual(decodeVotes(file({ ...old, proposed: ["2"] })), fields);
});

Deno.test("decodeVotes refuses a wrong magic, and a file too short to hold one", () => {
  const bytes = encodeVotes({
    height: 5,
    prevDigest: PREV,
    memory: unlockedMemory(),
    locked: undefined,
    polka: [],
  });
  for (const at of [0, 5, MAGIC_BYTES - 1]) {
    const wrong = bytes.slice();
    wrong[at]! ^= 0x20;
    assert.deepEqual(decodeVotes(wrong), { problem: "it is not a votes file" }, `magic byte ${at}`);
  }
  assert.deepEqual(decodeVotes(new Uint8Array(0)), { problem: "it is not a votes file" });
  assert.deepEqual(decodeVotes(bytes.subarray(0, LENGTH_AT + 3)), { problem: "it is not a votes file" });
  assert.deepEqual(decodeVotes(new TextEncoder().encode("{}")), { problem: "it is not a votes file" });
});

Deno.test("decodeVotes refuses a file with any byte flipped after the magic (the checksum)", async () => {
  const record: VotesRecord = {
    height: 9,
    prevDigest: PREV,
    memory: lockedMemory(),
    locked: { frame: 9, digest: A, txs: await signedTransfers(2) },
    polka: [],
  };
  const bytes = encodeVotes(record);
  for (let at = MAGIC_BYTES; at < bytes.length; at++) {
    const flipped = bytes.slice();
    flipped[at]! ^= 0x01;
    assert.deepEqual(
      decodeVotes(flipped),
      { problem: "its checksum does not match its content" },
      `byte ${at}`,
    );
  }
});

Deno.test("decodeVotes refuses a cut-off file", async () => {
  const bytes = encodeVotes({
    height: 9,
    prevDigest: PREV,
    memory: lockedMemory(),
    locked: { frame: 9, digest: A, txs: await signedTransfers(2) },
    polka: [],
  });
  for (let n = 0; n < bytes.length; n++) {
    const result = decodeVotes(bytes.subarray(0, n));
    assert.ok("problem" in result, `cut at ${n}`);
  }
  // Cut off with its checksum made to match, the length fields still tell.
  const cutInJson = rechecksummed(bytes.subarray(0, LENGTH_AT + 4 + 10));
  assert.deepEqual(decodeVotes(cutInJson), { problem: "it is cut off" });
  const cutInTransfers = rechecksummed(bytes.subarray(0, bytes.length - 1));
  assert.deepEqual(decodeVotes(cutInTransfers), {
    problem: "its locked proposal does not match its length",
  });
  const oneTransferLess = rechecksummed(bytes.subarray(0, bytes.length - TX_BYTES));
  assert.deepEqual(decodeVotes(oneTransferLess), {
    problem: "its locked proposal does not match its length",
  });
});

Deno.test("decodeVotes refuses transfers that do not match the locked proposal's length", async () => {
  const [tx] = await signedTransfers(1);
  const memory = JSON.stringify(unlockedMemory());
  const lockedOf = (txs: unknown) =>
    `{"height":1,"prevDigest":"${PREV}","memory":${memory},"locked":` +
    `{"frame":1,"digest":"${A}","txs":${JSON.stringify(txs)}}}`;
  const unlocked = `{"height":1,"prevDigest":"${PREV}","memory":${memory},"locked":null}`;
  const mismatch = { problem: "its locked proposal does not match its length" };
  assert.deepEqual(decodeVotes(fileOf(lockedOf(2), tx!.bytes)), mismatch, "2 announced, 1 present");
  assert.deepEqual(decodeVotes(fileOf(lockedOf(0), tx!.bytes)), mismatch, "0 announced, 1 present");
  assert.deepEqual(decodeVotes(fileOf(unlocked, tx!.bytes)), mismatch, "no lock, 1 present");
  assert.deepEqual(decodeVotes(fileOf(lockedOf(-1))), mismatch, "a negative count");
  assert.deepEqual(decodeVotes(fileOf(lockedOf(0.5))), mismatch, "a fractional count");
  assert.deepEqual(decodeVotes(fileOf(lockedOf("1"), tx!.bytes)), mismatch, "a count that is text");
  assert.deepEqual(decodeVotes(fileOf(lockedOf(MAX_LOCKED_TXS + 1))), mismatch, "above MAX_LOCKED_TXS");
  // The control: the same file with the right count decodes.
  const good = decodeVotes(fileOf(lockedOf(1), tx!.bytes));
  assert.ok(!("problem" in good), "problem" in good ? good.problem : "");
  assert.equal(toHex(good.locked!.txs[0]!.bytes), toHex(tx!.bytes));
});

Deno.test("decodeVotes refuses a JSON length beyond the file, and JSON that does not parse", () => {
  const bytes = encodeVotes({
    height: 5,
    prevDigest: PREV,
    memory: unlockedMemory(),
    locked: undefined,
    polka: [],
  });
  const longer = bytes.slice();
  viewOf(longer).setUint32(LENGTH_AT, bytes.length);
  assert.deepEqual(decodeVotes(rechecksummed(longer)), { problem: "it is cut off" });
  const shorter = bytes.slice();
  viewOf(shorter).setUint32(LENGTH_AT, viewOf(bytes).getUint32(LENGTH_AT) - 1);
  const result = decodeVotes(rechecksummed(shorter));
  assert.ok("problem" in result && result.problem.startsWith("it does not parse"), JSON.stringify(result));
  const notJson = decodeVotes(fileOf("not json"));
  assert.ok("problem" in notJson && notJson.problem.startsWith("it does not parse"), JSON.stringify(notJson));
  const noMemory = decodeVotes(fileOf(`{"height":1,"prevDigest":"${PREV}","locked":null}`));
  assert.deepEqual(noMemory, { problem: "its fields are not what a votes file holds" });
  const wrongTypes = decodeVotes(fileOf(
    `{"height":"x","prevDigest":"${PREV}","memory":{"round":"two","lockedRound":-1,"validRound":-1,` +
      `"signed":[{"round":"r","step":"maybe","digest":42}]},"locked":null}`,
  ));
  assert.deepEqual(wrongTypes, { problem: "its fields are not what a votes file holds" });
});
