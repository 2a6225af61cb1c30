// Consensus: the votes (code 0 hashes) each server reported for each frame, and the hash a strict
// majority of all servers in peers.json agrees on.

/** Votes per frame. The first vote of a server for a frame counts; a different second one is refused. */
export class Tally {
  readonly majority: number;
  #votes = new Map<number, Map<string, string>>();

  constructor(majority: number) {
    this.majority = majority;
  }

  /**
   * Records `sender`'s vote. Returns "new", "repeat" (same hash again) or "conflict" (a different
   * hash than its first vote: the sender is lying or replaying).
   */
  record(frame: number, sender: string, hash: string): "new" | "repeat" | "conflict" {
    let votes = this.#votes.get(frame);
    if (votes === undefined) this.#votes.set(frame, votes = new Map());
    const before = votes.get(sender);
    if (before === undefined) {
      votes.set(sender, hash);
      return "new";
    }
    return before === hash ? "repeat" : "conflict";
  }

  /** The votes of `frame`, sender key hex to hash. */
  votes(frame: number): ReadonlyMap<string, string> {
    return this.#votes.get(frame) ?? new Map();
  }

  /** The hash held by a strict majority for `frame`, if any. */
  consensus(frame: number): string | undefined {
    const counts = new Map<string, number>();
    for (const hash of this.votes(frame).values()) {
      const n = (counts.get(hash) ?? 0) + 1;
      if (n >= this.majority) return hash;
      counts.set(hash, n);
    }
    return undefined;
  }

  /** How many servers voted `hash` for `frame`. */
  count(frame: number, hash: string): number {
    let n = 0;
    for (const h of this.votes(frame).values()) if (h === hash) n++;
    return n;
  }

  /** Forgets frames before `frame`. */
  prune(frame: number): void {
    for (const f of this.#votes.keys()) if (f < frame) this.#votes.delete(f);
  }
}
