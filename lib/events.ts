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
