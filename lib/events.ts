// The vocabularies of a server: the events it logs and the codes it refuses transfers with beyond the
// ledger's own (TX_CODES). Typed, so a misspelt event or code is a compile error, not a silent log line.

import { MAX_FRAME_TXS } from "./wire.ts";

/** Every event a server logs, one line each. */
export type EventName =
  | "start"
  | "halt"
  | "amnesic"
  | "waiting"
  | "rejected_transfers"
  | "no_consensus"
  | "no_quorum"
  | "quorum_back"
  | "consensus"
  | "archived"
  | "error_archive"
  | "catchup_sent"
  | "catchup_received"
  | "carried"
  | "dropped"
  | "lying"
  | "corrupt_entry_set_aside"
  | "receiving"
  | "dropped_connection"
  | "network_differs"
  | "network_same"
  | "clock_off"
  | "clock_ok"
  | "error_send"
  | "error_listen";

/** The fields of one log line. */
export type EventFields = Record<string, string | number | boolean | undefined>;

/** Reasons a transfer is refused by the server rather than by the ledger rules. */
export const SERVER_CODES = {
  no_quorum: "no quorum of servers agrees right now; transfers are refused until one does",
  not_alpha: "this server is not the alpha of the current frame",
  not_started: 'the network\'s first frame has not begun yet (see "start" in peers.json)',
  alpha_unreachable: "the current alpha server cannot be reached; try again next frame",
  frame_full: `this frame's buffer already holds ${MAX_FRAME_TXS} transfers; try again next frame`,
} as const;

/** A server refusal code. */
export type ServerCode = keyof typeof SERVER_CODES;

/**
 * Something wrong between this server and another that only their operators can fix, learnt from the
 * other server's answer to `hello` (docs/protocol.md, 8.1). Words for logs and `coin status`: it never
 * changes what a server decides.
 */
export type PeerProblem =
  | {
    readonly problem: "network_differs";
    /** The other server's name and key (hex) in this server's peers.json. */
    readonly peer: string;
    readonly key: string;
    /** The parts of the network file whose hashes differ (`NETWORK_PARTS`); empty when none it gave. */
    readonly parts: readonly string[];
  }
  | {
    readonly problem: "clock_off";
    readonly peer: string;
    readonly key: string;
    /** Its clock minus this server's, estimated, in ms: negative when it is behind. */
    readonly aheadMs: number;
  };

/**
 * The sentence for a problem, as the log and `coin status` show it.
 *
 * @example
 * ```ts
 * describePeerProblem({ problem: "clock_off", peer: "ben", key: "ab", aheadMs: 7012 });
 * // "ben's clock looks about 7 s ahead of mine: check NTP"
 * ```
 */
export function describePeerProblem(p: PeerProblem): string {
  if (p.problem === "network_differs") {
    const parts = p.parts.length === 0 ? "" : ` (${p.parts.join(", ")})`;
    return `${p.peer}'s network file differs from mine${parts}: compare peers.json`;
  }
  const ms = Math.abs(p.aheadMs);
  // Rounded, so that a new measurement a few ms away gives the same words (and no new log line).
  const amount = ms >= 950 ? `${Math.round(ms / 1000)} s` : `${Math.max(100, Math.round(ms / 100) * 100)} ms`;
  return `${p.peer}'s clock looks about ${amount} ${p.aheadMs > 0 ? "ahead of" : "behind"} mine: check NTP`;
}
