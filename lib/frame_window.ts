// The frame window: everything a replica keeps about one frame (votes, its own result, the beta's
// buffer, the alpha's buffer, catch-ups waiting for the frame's consensus) in one record, for a bounded
// range of frames, pruned in one place.

import type { AlphaBuffer } from "./admission.ts";
import type { Votes } from "./consensus.ts";
import type { State } from "./ledger.ts";
import type { Tx } from "./tx.ts";
import type { Catchup } from "./wire.ts";

/** What this replica did in a frame, for its consensus log line. */
export interface FrameInfo {
  readonly role: "beta" | "other";
  readonly txs: number;
  readonly applied: number;
  readonly rejected: string | undefined;
  readonly applyMs: number;
}

/** One frame's record. */
export interface FrameRecord {
  readonly frame: number;
  /** Votes received (and this replica's own), sender key hex to hash. */
  readonly votes: Votes;
  /** The state this replica computed (or adopted) for the frame. */
  state: State | undefined;
  /** The hash this replica voted (or adopted through a catch-up). */
  myVote: string | undefined;
  /** True once this replica broadcast its vote. */
  broadcast: boolean;
  /** The first signed vote of each sender (message body), kept as evidence should it lie. */
  readonly voteBodies: Map<string, Uint8Array>;
  /** Senders already logged as lying for this frame (each is logged once). */
  readonly liars: Set<string>;
  /** The beta's buffer, once its signed vote arrived. */
  betaBuffer: Tx[] | undefined;
  /** This replica's buffer while it is the frame's alpha. */
  alphaBuffer: AlphaBuffer | undefined;
  /** The hash a majority agreed on, once known. */
  decided: string | undefined;
  /** Milliseconds from the end of the frame to its consensus, as seen here. */
  decidedAfterMs: number | undefined;
  /** True once the replica committed the frame or found itself out of sync. */
  settled: boolean;
  /** True while the frame's consensus line waits for the remaining votes. */
  unlogged: boolean;
  info: FrameInfo | undefined;
  /** Servers sent this frame's catch-up (key hex). */
  readonly catchupSentTo: Set<string>;
  /** Catch-ups that came before the frame was decided here, one per sender. */
  readonly pendingCatchups: Map<string, Catchup>;
}

/** Frames kept before the newest processed one. */
export const KEEP_FRAMES = 8;
/** Frames kept after the newest processed one (votes for later frames, the alpha's next buffers). */
export const LEAD_FRAMES = 8;

/** The per-frame records of frames [low, high]; at most KEEP_FRAMES + LEAD_FRAMES + 1 of them. */
export class FrameWindow {
  #records = new Map<number, FrameRecord>();

  /** The record of `frame`, if kept. */
  get(frame: number): FrameRecord | undefined {
    return this.#records.get(frame);
  }

  /** The record of `frame`, created empty when missing. */
  at(frame: number): FrameRecord {
    let r = this.#records.get(frame);
    if (r === undefined) {
      r = {
        frame,
        votes: new Map(),
        voteBodies: new Map(),
        liars: new Set(),
        state: undefined,
        myVote: undefined,
        broadcast: false,
        betaBuffer: undefined,
        alphaBuffer: undefined,
        decided: undefined,
        decidedAfterMs: undefined,
        settled: false,
        unlogged: false,
        info: undefined,
        catchupSentTo: new Set(),
        pendingCatchups: new Map(),
      };
      this.#records.set(frame, r);
    }
    return r;
  }

  /** Records in ascending frame order. */
  records(): FrameRecord[] {
    return [...this.#records.values()].sort((a, b) => a.frame - b.frame);
  }

  /** The newest frame with a decided hash, or undefined. */
  lastDecided(): FrameRecord | undefined {
    let best: FrameRecord | undefined;
    for (const r of this.#records.values()) {
      if (r.decided !== undefined && (best === undefined || r.frame > best.frame)) best = r;
    }
    return best;
  }

  /**
   * Forgets frames before `head - KEEP_FRAMES` and after `head + LEAD_FRAMES`, and whole-database
   * states that can no longer be needed: states before the committed frame, and decided frames more
   * than two behind the head that are not the committed one.
   */
  prune(head: number, committedFrame: number): void {
    for (const [f, r] of this.#records) {
      if (f < head - KEEP_FRAMES || f > head + LEAD_FRAMES) {
        this.#records.delete(f);
        continue;
      }
      if (
        r.state !== undefined &&
        (f < committedFrame || (f < head - 2 && r.decided !== undefined && f !== committedFrame))
      ) {
        r.state = undefined;
      }
    }
    if (this.#records.size > KEEP_FRAMES + LEAD_FRAMES + 1) {
      throw new Error(`Invariant broken: frame window holds ${this.#records.size} frames`);
    }
  }
}
