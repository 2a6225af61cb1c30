// Admission: the alpha's buffer for a frame and the checks a transfer passes before it joins it. The
// ledger's apply() judges every transfer again; admission only keeps obviously bad ones out early.

import { toHex } from "./_bytes.ts";
import type { Verifier } from "./keys.ts";
import type { State } from "./ledger.ts";
import { checkTimestamp, checkTxStateless, type Tx, type TxCode } from "./tx.ts";
import { MAX_FRAME_TXS } from "./wire.ts";

/** An alpha's buffer of admitted transfers for one frame. */
export interface AlphaBuffer {
  readonly txs: Tx[];
  readonly ids: Set<string>;
  /** Net balance change per account hex from this buffer, for the funds check. */
  readonly deltas: Map<string, number>;
  /** Transfers whose signature this server already checked (apply() need not check them again). */
  readonly verified: WeakSet<Tx>;
}

/** An empty buffer. */
export function newAlphaBuffer(): AlphaBuffer {
  return { txs: [], ids: new Set(), deltas: new Map(), verified: new WeakSet() };
}

/** Why `tx` cannot join `buffer`, or undefined once it has joined. */
export function admit(
  buffer: AlphaBuffer,
  tx: Tx,
  context: {
    nowMs: number;
    skewMs: number;
    state: State;
    verifier?: Verifier;
    /** True when the id is already in another buffer or agreed. */
    seen: (id: string) => boolean;
  },
): TxCode | "frame_full" | undefined {
  // The clock check first: a stale flood must not cost a signature check each.
  const code = checkTimestamp(tx, context.nowMs - context.skewMs, context.nowMs + context.skewMs + 1) ??
    checkTxStateless(tx, context.verifier ? { verifier: context.verifier } : {});
  if (code !== undefined) return code;
  if (buffer.ids.has(tx.id) || context.seen(tx.id)) return "duplicate";
  const payerHex = toHex(tx.payer);
  const stored = context.state.ledger.balanceOf(tx.payer);
  const delta = buffer.deltas.get(payerHex);
  if (stored === 0 && delta === undefined) return "payer_not_found";
  if (stored + (delta ?? 0) < tx.amount) return "insufficient_funds";
  if (buffer.txs.length >= MAX_FRAME_TXS) return "frame_full";
  buffer.txs.push(tx);
  buffer.ids.add(tx.id);
  buffer.verified.add(tx);
  buffer.deltas.set(payerHex, (delta ?? 0) - tx.amount);
  const payeeHex = toHex(tx.payee);
  buffer.deltas.set(payeeHex, (buffer.deltas.get(payeeHex) ?? 0) + tx.amount);
  return undefined;
}
