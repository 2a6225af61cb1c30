// The transfer index: what this server knows of each recent transfer id (the frame it was judged in and
// how), and from which frame on that knowledge is complete. It answers `coin send --wait`.

import type { RecentIds } from "./ledger.ts";
import type { TxCode } from "./tx.ts";

/** What a server knows of one transfer. */
export interface TxEntry {
  readonly frame: number;
  readonly code: "ok" | TxCode;
  /** Learnt from an agreed database (archive or catch-up), not applied here. */
  readonly fromCatchup?: boolean;
}

/** Transfer ids by what happened to them. Bounded: entries older than a horizon are pruned. */
export class TxIndex {
  #entries = new Map<string, TxEntry>();
  /** Frames from here on are fully known: a transfer not in the index was not applied in them. */
  knownFromFrame: number;

  constructor(knownFromFrame: number) {
    this.knownFromFrame = knownFromFrame;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(id: string): TxEntry | undefined {
    return this.#entries.get(id);
  }

  /** Records the outcome of `id` in `frame`, unless it is already known as applied. */
  judge(id: string, frame: number, code: "ok" | TxCode): void {
    if (this.#entries.get(id)?.code !== "ok") this.#entries.set(id, { frame, code });
  }

  /** Learns the applied ids of an agreed state. */
  learn(recent: RecentIds): void {
    for (const r of recent) {
      for (const id of r.ids) this.#entries.set(id, { frame: r.frame, code: "ok", fromCatchup: true });
    }
  }

  /** Forgets the entries for which `stale` holds (what was applied on a database that lost). */
  forget(stale: (entry: TxEntry) => boolean): void {
    for (const [id, e] of this.#entries) if (stale(e)) this.#entries.delete(id);
  }

  /** Forgets entries of frames before `frame`. */
  prune(frame: number): void {
    for (const [id, e] of this.#entries) if (e.frame < frame) this.#entries.delete(id);
  }
}
