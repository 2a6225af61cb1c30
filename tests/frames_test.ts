// Tests of lib/frames.ts: frame arithmetic, the alpha rotation and the agreement between when a server
// admits a transfer and the window apply() judges it by.

import assert from "node:assert/strict";
import {
  acceptingFrame,
  alphaIndex,
  frameAt,
  frameContext,
  frameStartMs,
  lastFrameFor,
  recentFrames,
  type Timing,
  txWindow,
} from "../lib/frames.ts";
import { seededRandom } from "./_helpers.ts";

const TIMING: Timing = { intervalMs: 1_000, skewMs: 5_000, blackoutMs: 100, servers: 3 };
const T0 = 1_700_000_000_000;

function inWindow(ms: number, window: { fromMs: number; toMs: number }): boolean {
  return ms >= window.fromMs && ms < window.toMs;
}

/** Random timings covering short and long intervals, no skew or blackout, and skew above the interval. */
function randomTimings(seed: number, count: number): Timing[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => {
    const intervalMs = 200 + random.int(10_000);
    return {
      intervalMs,
      skewMs: random.int(4) === 0 ? 0 : random.int(20_000),
      blackoutMs: random.int(4) === 0 ? 0 : random.int(Math.floor(intervalMs / 2) + 1),
      servers: 1 + random.int(7),
    };
  });
}

Deno.test("frameAt() and frameStartMs() divide time into whole intervals", () => {
  assert.equal(frameAt(0, 1000), 0);
  assert.equal(frameAt(999, 1000), 0);
  assert.equal(frameAt(1000, 1000), 1);
  assert.equal(frameAt(T0 + 1500, 1000), T0 / 1000 + 1);
  assert.equal(frameAt(-1, 1000), -1, "time before the epoch belongs to negative frames");
  assert.equal(frameStartMs(7, 1000), 7000);
  for (const ms of [0, 1, 999, 1000, 123_456_789, T0 + 333]) {
    const frame = frameAt(ms, 700);
    assert.ok(frameStartMs(frame, 700) <= ms && ms < frameStartMs(frame + 1, 700), `${ms}`);
  }
});

Deno.test("alphaIndex() rotates through the servers in order", () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map((f) => alphaIndex(f, 3)), [0, 1, 2, 0, 1, 2, 0]);
  assert.deepEqual([10, 11].map((f) => alphaIndex(f, 1)), [0, 0]);
  assert.deepEqual([-1, -2, -3, -4].map((f) => alphaIndex(f, 3)), [2, 1, 0, 2], "never negative");
  assert.equal(alphaIndex(T0 / 1000, 5), (T0 / 1000) % 5);
});

Deno.test("acceptingFrame() is the current frame until the blackout, then the next one", () => {
  const start = frameStartMs(T0 / 1000, TIMING.intervalMs);
  const frame = T0 / 1000;
  assert.equal(acceptingFrame(start, TIMING), frame);
  assert.equal(acceptingFrame(start + 899, TIMING), frame);
  assert.equal(acceptingFrame(start + 900, TIMING), frame + 1, "the last 100 ms go to the next frame");
  assert.equal(acceptingFrame(start + 999, TIMING), frame + 1);
  assert.equal(acceptingFrame(start + 1000, TIMING), frame + 1);
  assert.equal(acceptingFrame(start + 999, { ...TIMING, blackoutMs: 0 }), frame);
});

Deno.test("txWindow() spans the frame widened by the blackout before it and the skew on both sides", () => {
  const frame = T0 / 1000;
  assert.deepEqual(txWindow(frame, TIMING), { fromMs: T0 - 100 - 5000, toMs: T0 + 1000 + 5000 });
});

Deno.test("frameContext() is txWindow() and recentFrames() in apply()'s shape", () => {
  const frame = T0 / 1000 + 3;
  const { fromMs, toMs } = txWindow(frame, TIMING);
  assert.deepEqual(frameContext(frame, TIMING), {
    frame,
    windowFromMs: fromMs,
    windowToMs: toMs,
    recentFrames: recentFrames(TIMING),
  });
  assert.equal(recentFrames(TIMING), Math.ceil(10_100 / 1000) + 2);
});

Deno.test("a timestamp T is inside txWindow(f) for f = lastFrameFor(T) and not for f + 1", () => {
  for (const timing of [TIMING, ...randomTimings(1, 200)]) {
    const random = seededRandom(timing.intervalMs);
    for (let i = 0; i < 50; i++) {
      const t = T0 + random.int(10 * timing.intervalMs) - 5 * timing.intervalMs;
      const last = lastFrameFor(t, timing);
      assert.ok(inWindow(t, txWindow(last, timing)), `${JSON.stringify(timing)} T=${t}`);
      assert.ok(!inWindow(t, txWindow(last + 1, timing)), `${JSON.stringify(timing)} T=${t}`);
    }
  }
});

Deno.test("a timestamp is valid in consecutive frames, never more than recentFrames() of them", () => {
  // apply() remembers ids for recentFrames() frames; a replay in any later valid frame must still be caught.
  for (const timing of [TIMING, ...randomTimings(2, 200)]) {
    const random = seededRandom(timing.skewMs + 1);
    for (let i = 0; i < 20; i++) {
      const t = T0 + random.int(3 * timing.intervalMs);
      const last = lastFrameFor(t, timing);
      const frames: number[] = [];
      for (let f = last - recentFrames(timing) - 3; f <= last + 3; f++) {
        if (inWindow(t, txWindow(f, timing))) frames.push(f);
      }
      assert.ok(frames.length >= 1);
      assert.equal(frames.at(-1), last);
      assert.equal(frames.length, last - frames[0]! + 1, "consecutive");
      assert.ok(frames.length <= recentFrames(timing), `${JSON.stringify(timing)} T=${t}`);
    }
  }
});

Deno.test("a transfer admitted within the skew is valid in the frame it is accepted for", () => {
  for (const timing of [TIMING, ...randomTimings(3, 200)]) {
    const random = seededRandom(timing.blackoutMs + 7);
    for (let i = 0; i < 50; i++) {
      const receivedMs = T0 + random.int(5 * timing.intervalMs);
      const timestampMs = receivedMs - timing.skewMs + random.int(2 * timing.skewMs + 1);
      const frame = acceptingFrame(receivedMs, timing);
      assert.ok(inWindow(timestampMs, txWindow(frame, timing)), `${JSON.stringify(timing)} at ${receivedMs}`);
      assert.ok(frame <= lastFrameFor(timestampMs, timing));
    }
  }
});

Deno.test("txWindow() of consecutive frames overlap and move by one interval", () => {
  for (const timing of randomTimings(4, 50)) {
    const a = txWindow(100, timing);
    const b = txWindow(101, timing);
    assert.equal(b.fromMs - a.fromMs, timing.intervalMs);
    assert.equal(b.toMs - a.toMs, timing.intervalMs);
    assert.ok(b.fromMs < a.toMs, "a transfer at the edge of one frame stays valid in the next");
  }
});
