// Tests of lib/frame_window.ts: one record per frame, created on demand, and prune(), the one place
// frames and whole-database states are forgotten, which keeps the window within its bound.

import assert from "node:assert/strict";
import { toHex } from "../lib/_bytes.ts";
import { FrameWindow, KEEP_FRAMES, LEAD_FRAMES } from "../lib/frame_window.ts";
import { genesisState, type State } from "../lib/ledger.ts";
import { assertThrowsError, makeAccount } from "./_helpers.ts";

const STATE: State = genesisState([[toHex(makeAccount(1)), 100]]);
const HEAD = 1_000;

/** A window holding frames `from` to `to`, each with a state. */
function windowOf(from: number, to: number): FrameWindow {
  const window = new FrameWindow();
  for (let f = from; f <= to; f++) window.at(f).state = STATE;
  return window;
}

function framesOf(window: FrameWindow): number[] {
  return window.records().map((r) => r.frame);
}

function framesWithState(window: FrameWindow): number[] {
  return window.records().filter((r) => r.state !== undefined).map((r) => r.frame);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

Deno.test("FrameWindow.at() creates an empty record once and returns the same one after", () => {
  const window = new FrameWindow();
  assert.equal(window.get(7), undefined);
  const record = window.at(7);
  assert.equal(record.frame, 7);
  assert.equal(record.votes.size, 0);
  assert.equal(record.state, undefined);
  assert.equal(record.myVote, undefined);
  assert.equal(record.broadcast, false);
  assert.equal(record.betaBuffer, undefined);
  assert.equal(record.alphaBuffer, undefined);
  assert.equal(record.decided, undefined);
  assert.equal(record.decidedAfterMs, undefined);
  assert.equal(record.settled, false);
  assert.equal(record.unlogged, false);
  assert.equal(record.info, undefined);
  assert.equal(record.catchupSentTo.size, 0);
  assert.equal(record.pendingCatchups.size, 0);
  record.votes.set("aa", "bb");
  assert.equal(window.at(7), record);
  assert.equal(window.get(7), record);
  assert.equal(window.get(7)!.votes.get("aa"), "bb");
});

Deno.test("FrameWindow.records() lists records in ascending frame order", () => {
  const window = new FrameWindow();
  for (const f of [12, 3, 8, 10]) window.at(f);
  assert.deepEqual(framesOf(window), [3, 8, 10, 12]);
});

Deno.test("FrameWindow.lastDecided() is the newest decided frame", () => {
  const window = new FrameWindow();
  assert.equal(window.lastDecided(), undefined);
  window.at(5).decided = "aa";
  window.at(9).decided = "bb";
  window.at(7).decided = "cc";
  window.at(11);
  assert.equal(window.lastDecided()?.frame, 9);
  assert.equal(window.lastDecided()?.decided, "bb");
});

Deno.test("FrameWindow.prune() keeps KEEP_FRAMES before the head and LEAD_FRAMES after it", () => {
  const window = windowOf(HEAD - 20, HEAD + 20);
  window.prune(HEAD, HEAD - KEEP_FRAMES);
  assert.deepEqual(framesOf(window), range(HEAD - KEEP_FRAMES, HEAD + LEAD_FRAMES));
  assert.equal(window.get(HEAD - KEEP_FRAMES - 1), undefined);
  assert.equal(window.get(HEAD + LEAD_FRAMES + 1), undefined);
});

Deno.test("FrameWindow.prune() leaves at most KEEP_FRAMES + LEAD_FRAMES + 1 frames", () => {
  const window = new FrameWindow();
  for (let head = HEAD; head <= HEAD + 50; head += 7) {
    for (let f = head - 20; f <= head + 20; f++) window.at(f);
    window.prune(head, head - 1);
    assert.deepEqual(framesOf(window), range(head - KEEP_FRAMES, head + LEAD_FRAMES), `head ${head}`);
  }
  assert.equal(window.records().length, KEEP_FRAMES + LEAD_FRAMES + 1);
});

Deno.test("FrameWindow.prune() forgets the states of frames before the committed one", () => {
  const window = windowOf(HEAD - 5, HEAD + 2);
  window.prune(HEAD, HEAD - 3);
  assert.deepEqual(framesWithState(window), range(HEAD - 3, HEAD + 2));
  assert.deepEqual(framesOf(window), range(HEAD - 5, HEAD + 2), "the records themselves stay");
});

Deno.test("FrameWindow.prune() forgets the states of decided frames more than two behind the head", () => {
  const window = windowOf(HEAD - 6, HEAD);
  for (let f = HEAD - 6; f <= HEAD; f++) window.at(f).decided = "aa";
  window.at(HEAD - 5).decided = undefined; // undecided: its state may still be needed
  window.prune(HEAD, HEAD - 6);
  assert.deepEqual(framesWithState(window), [HEAD - 6, HEAD - 5, HEAD - 2, HEAD - 1, HEAD]);
});

Deno.test("FrameWindow.prune() keeps the committed frame's state however old", () => {
  const window = windowOf(HEAD - 7, HEAD);
  for (let f = HEAD - 7; f <= HEAD; f++) window.at(f).decided = "aa";
  window.prune(HEAD, HEAD - 7);
  assert.deepEqual(framesWithState(window), [HEAD - 7, HEAD - 2, HEAD - 1, HEAD]);
  window.prune(HEAD + 1, HEAD - 7);
  assert.deepEqual(framesWithState(window), [HEAD - 7, HEAD - 1, HEAD]);
});

Deno.test("FrameWindow.prune() keeps votes and decisions of frames whose state it drops", () => {
  const window = windowOf(HEAD - 4, HEAD);
  const old = window.at(HEAD - 4);
  old.decided = "aa";
  old.votes.set("k1", "aa");
  window.prune(HEAD, HEAD - 1);
  assert.equal(window.get(HEAD - 4), old);
  assert.equal(old.state, undefined);
  assert.equal(old.decided, "aa");
  assert.equal(old.votes.get("k1"), "aa");
});

Deno.test("FrameWindow.prune() throws when the window holds more frames than its bound", () => {
  // Whole frame numbers cannot exceed it once pruned; a fractional frame (a bug elsewhere) can.
  const window = windowOf(HEAD - KEEP_FRAMES, HEAD + LEAD_FRAMES);
  window.at(HEAD + 0.5);
  assertThrowsError(
    () => window.prune(HEAD, HEAD),
    Error,
    new RegExp(`^Invariant broken: frame window holds ${KEEP_FRAMES + LEAD_FRAMES + 2} frames$`),
  );
});
