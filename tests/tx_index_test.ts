// Tests of lib/tx_index.ts: what a server knows of each recent transfer id, learnt from its own frames
// or from an agreed database, forgotten when it applied them on a database that lost, pruned by frame.

import assert from "node:assert/strict";
import { TxIndex } from "../lib/tx_index.ts";

const A = "aa".repeat(32);
const B = "bb".repeat(32);
const C = "cc".repeat(32);

Deno.test("TxIndex starts empty, fully known from the frame it is given", () => {
  const index = new TxIndex(42);
  assert.equal(index.knownFromFrame, 42);
  assert.equal(index.size, 0);
  assert.equal(index.get(A), undefined);
});

Deno.test("TxIndex.judge() records the frame and code of a transfer", () => {
  const index = new TxIndex(0);
  index.judge(A, 10, "ok");
  index.judge(B, 11, "insufficient_funds");
  assert.equal(index.size, 2);
  assert.deepEqual(index.get(A), { frame: 10, code: "ok" });
  assert.deepEqual(index.get(B), { frame: 11, code: "insufficient_funds" });
});

Deno.test("TxIndex.judge() replaces a refusal with a later outcome", () => {
  const index = new TxIndex(0);
  index.judge(A, 10, "payer_not_found");
  index.judge(A, 11, "insufficient_funds");
  assert.deepEqual(index.get(A), { frame: 11, code: "insufficient_funds" });
  index.judge(A, 12, "ok");
  assert.deepEqual(index.get(A), { frame: 12, code: "ok" });
  assert.equal(index.size, 1);
});

Deno.test("TxIndex.judge() keeps a transfer known as applied when it comes back as a duplicate", () => {
  const index = new TxIndex(0);
  index.judge(A, 10, "ok");
  index.judge(A, 11, "duplicate");
  index.judge(A, 12, "ok");
  assert.deepEqual(index.get(A), { frame: 10, code: "ok" });
});

Deno.test("TxIndex.learn() records every id of an agreed state as applied from a catch-up", () => {
  const index = new TxIndex(0);
  index.judge(A, 5, "insufficient_funds");
  index.learn([{ frame: 6, ids: new Set([A, B]) }, { frame: 7, ids: new Set([C]) }, {
    frame: 8,
    ids: new Set(),
  }]);
  assert.equal(index.size, 3);
  assert.deepEqual(index.get(A), { frame: 6, code: "ok", fromCatchup: true });
  assert.deepEqual(index.get(B), { frame: 6, code: "ok", fromCatchup: true });
  assert.deepEqual(index.get(C), { frame: 7, code: "ok", fromCatchup: true });
});

Deno.test("TxIndex.learn() overrides what this server applied itself", () => {
  const index = new TxIndex(0);
  index.judge(A, 5, "ok");
  index.learn([{ frame: 9, ids: new Set([A]) }]);
  assert.deepEqual(index.get(A), { frame: 9, code: "ok", fromCatchup: true });
});

Deno.test("TxIndex.forget() drops exactly the entries the predicate names", () => {
  const index = new TxIndex(0);
  index.judge(A, 5, "ok");
  index.judge(B, 6, "ok");
  index.judge(C, 6, "duplicate");
  const asked: number[] = [];
  index.forget((e) => {
    asked.push(e.frame);
    return e.frame === 6 && e.code === "ok";
  });
  assert.deepEqual(asked.sort(), [5, 6, 6]);
  assert.equal(index.size, 2);
  assert.equal(index.get(B), undefined);
  assert.deepEqual(index.get(A), { frame: 5, code: "ok" });
  assert.deepEqual(index.get(C), { frame: 6, code: "duplicate" });
});

Deno.test("TxIndex.prune() forgets entries of frames before the given one", () => {
  const index = new TxIndex(0);
  index.judge(A, 9, "ok");
  index.judge(B, 10, "ok");
  index.learn([{ frame: 11, ids: new Set([C]) }]);
  index.prune(10);
  assert.equal(index.size, 2);
  assert.equal(index.get(A), undefined);
  assert.deepEqual(index.get(B), { frame: 10, code: "ok" });
  index.prune(12);
  assert.equal(index.size, 0);
  assert.equal(index.knownFromFrame, 0, "pruning does not move knownFromFrame");
});
