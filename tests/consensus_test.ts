// Tests of lib/consensus.ts: recording one vote per server and frame, the hash a strict majority holds,
// and the vote summary of a log line.

import assert from "node:assert/strict";
import { consensusOf, countOf, recordVote, summariseVotes, type Votes } from "../lib/consensus.ts";

const H1 = "11".repeat(32);
const H2 = "22".repeat(32);
const H3 = "33".repeat(32);
const S0 = "a0".repeat(32);
const S1 = "a1".repeat(32);
const S2 = "a2".repeat(32);
const S3 = "a3".repeat(32);
const S4 = "a4".repeat(32);

function votes(entries: [string, string][]): Votes {
  return new Map(entries);
}

Deno.test("recordVote() records a server's first vote as new", () => {
  const v: Votes = new Map();
  assert.equal(recordVote(v, S0, H1), "new");
  assert.equal(recordVote(v, S1, H2), "new");
  assert.deepEqual([...v], [[S0, H1], [S1, H2]]);
});

Deno.test("recordVote() calls the same hash again a repeat and keeps one vote", () => {
  const v = votes([[S0, H1]]);
  assert.equal(recordVote(v, S0, H1), "repeat");
  assert.equal(v.size, 1);
  assert.equal(v.get(S0), H1);
});

Deno.test("recordVote() calls a different second hash a conflict and keeps the first vote", () => {
  const v = votes([[S0, H1]]);
  assert.equal(recordVote(v, S0, H2), "conflict");
  assert.equal(v.size, 1);
  assert.equal(v.get(S0), H1, "the first vote counts");
  assert.equal(recordVote(v, S0, H1), "repeat", "the first vote is still the one held");
});

Deno.test("consensusOf() finds the hash held by a majority of votes", () => {
  assert.equal(consensusOf(votes([[S0, H1], [S1, H1]]), 2), H1);
  assert.equal(consensusOf(votes([[S0, H2], [S1, H1], [S2, H1]]), 2), H1);
  assert.equal(consensusOf(votes([[S0, H1], [S1, H2], [S2, H2], [S3, H1], [S4, H2]]), 3), H2);
});

Deno.test("consensusOf() finds nothing below the majority", () => {
  assert.equal(consensusOf(new Map(), 2), undefined);
  assert.equal(consensusOf(votes([[S0, H1]]), 2), undefined);
  assert.equal(consensusOf(votes([[S0, H1], [S1, H2], [S2, H3]]), 2), undefined, "a three-way split");
  assert.equal(consensusOf(votes([[S0, H1], [S1, H1], [S2, H2], [S3, H2]]), 3), undefined, "a tie");
});

Deno.test("consensusOf() with a majority of 1 takes the first vote", () => {
  assert.equal(consensusOf(votes([[S0, H2], [S1, H1]]), 1), H2);
});

Deno.test("countOf() counts the votes naming a hash", () => {
  const v = votes([[S0, H1], [S1, H2], [S2, H1], [S3, H1]]);
  assert.equal(countOf(v, H1), 3);
  assert.equal(countOf(v, H2), 1);
  assert.equal(countOf(v, H3), 0);
  assert.equal(countOf(new Map(), H1), 0);
});

Deno.test("summariseVotes() lists each hash prefix with its count, in order of first vote", () => {
  const v = votes([[S0, H2], [S1, H1], [S2, H2], [S3, H3], [S4, H2]]);
  assert.equal(summariseVotes(v), "22222222:3,11111111:1,33333333:1");
  assert.equal(summariseVotes(votes([[S0, H1]])), "11111111:1");
});

Deno.test("summariseVotes() of no votes is none", () => {
  assert.equal(summariseVotes(new Map()), "none");
});
