// Consensus: the votes (code 0 hashes) of one frame, and the hash a strict majority of all servers in
// peers.json agrees on. Pure functions over one frame's vote map (kept in the frame window).

/** One frame's votes: sender key hex to the hash it reported. */
export type Votes = Map<string, string>;

/**
 * Records `sender`'s vote. The first vote of a server for a frame counts. Returns "new", "repeat"
 * (same hash again) or "conflict" (a different hash than its first vote: the sender is lying or replaying).
 */
export function recordVote(votes: Votes, sender: string, hash: string): "new" | "repeat" | "conflict" {
  const before = votes.get(sender);
  if (before === undefined) {
    votes.set(sender, hash);
    return "new";
  }
  return before === hash ? "repeat" : "conflict";
}

/** The hash held by at least `majority` votes, if any. */
export function consensusOf(votes: ReadonlyMap<string, string>, majority: number): string | undefined {
  const counts = new Map<string, number>();
  for (const hash of votes.values()) {
    const n = (counts.get(hash) ?? 0) + 1;
    if (n >= majority) return hash;
    counts.set(hash, n);
  }
  return undefined;
}

/** How many votes name `hash`. */
export function countOf(votes: ReadonlyMap<string, string>, hash: string): number {
  let n = 0;
  for (const h of votes.values()) if (h === hash) n++;
  return n;
}

/** Votes summarised as `hashprefix:count,…` for a log line, or "none". */
export function summariseVotes(votes: ReadonlyMap<string, string>): string {
  const counts = new Map<string, number>();
  for (const h of votes.values()) counts.set(h, (counts.get(h) ?? 0) + 1);
  return [...counts].map(([h, n]) => `${h.slice(0, 8)}:${n}`).join(",") || "none";
}
