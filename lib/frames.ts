// Time frames and roles. Frame k covers [k * interval, (k + 1) * interval) of unix milliseconds;
// the alpha of frame k is servers[k mod N]; it acts as beta at the start of frame k + 1.

/** The timing rules of a network, all from peers.json. */
export interface Timing {
  readonly intervalMs: number;
  /** Accepted distance between a transfer's timestamp and the alpha's clock. */
  readonly skewMs: number;
  /** The last part of a frame in which new transfers go to the next frame's alpha. */
  readonly blackoutMs: number;
  /** Number of servers in peers.json. */
  readonly servers: number;
}

/** The frame that contains unix time `ms`. */
export function frameAt(ms: number, intervalMs: number): number {
  return Math.floor(ms / intervalMs);
}

/** Unix ms at which `frame` starts. */
export function frameStartMs(frame: number, intervalMs: number): number {
  return frame * intervalMs;
}

/** Index in peers.json of the alpha of `frame` (the beta of `frame + 1`). */
export function alphaIndex(frame: number, servers: number): number {
  return ((frame % servers) + servers) % servers;
}

/**
 * The frame whose buffer a transfer received at `ms` joins: the current one, or the next one once the
 * current frame is in its blackout, so the closing alpha never races a late arrival.
 */
export function acceptingFrame(ms: number, timing: Timing): number {
  return frameAt(ms + timing.blackoutMs, timing.intervalMs);
}

/**
 * Timestamps valid in `frame`'s buffer: what the alpha could have admitted (its clock within
 * `skewMs` of the timestamp while the frame was accepting). Derived from the frame alone, so apply()
 * judges it identically on every server whatever their clocks say.
 */
export function txWindow(frame: number, timing: Timing): { fromMs: number; toMs: number } {
  const start = frameStartMs(frame, timing.intervalMs);
  return {
    fromMs: start - timing.blackoutMs - timing.skewMs,
    toMs: start + timing.intervalMs + timing.skewMs,
  };
}

/** How many frames a transfer can be valid in; transfer ids are remembered this long. */
export function recentFrames(timing: Timing): number {
  return Math.ceil((2 * timing.skewMs + timing.blackoutMs) / timing.intervalMs) + 2;
}

/** The last frame in which a transfer with timestamp `timestampMs` could still be applied. */
export function lastFrameFor(timestampMs: number, timing: Timing): number {
  return frameAt(timestampMs + timing.blackoutMs + timing.skewMs, timing.intervalMs);
}

/** apply()'s context for `frame`. */
export function frameContext(frame: number, timing: Timing) {
  const { fromMs, toMs } = txWindow(frame, timing);
  return { frame, windowFromMs: fromMs, windowToMs: toMs, recentFrames: recentFrames(timing) };
}
