// Submitting a signed transfer and, with --wait, following it until its outcome is certain:
// shared by `coin send` and `coin submit`.

import { sleep } from "../_sleep.ts";
import { fromHex } from "../_bytes.ts";
import { type Response, type ServerConnection, withAnyServer } from "../client.ts";
import { CoinError } from "../errors.ts";
import { lastFrameFor, type Timing } from "../frames.ts";
import type { Tx } from "../tx.ts";
import { Kind } from "../wire.ts";
import type { Io } from "./_command.ts";

/** Codes after which the same transfer may succeed a moment later (another alpha, next frame). */
export const RETRYABLE_CODES = new Set(["alpha_unreachable", "not_alpha", "frame_full"]);
/** Pause between retries of a retryable refusal. */
export const RETRY_PAUSE_MS = 200;

type Target = { name: string; host: string; port: number };

/** Submits `tx` until a server accepts it or refuses it for good. Returns the acceptance. */
export async function submitTx(
  servers: Target[],
  tx: Tx,
  timing: Timing | undefined,
  io: Io,
): Promise<Response> {
  const deadlineMs = tx.timestampMs + (timing?.skewMs ?? 5_000);
  // After an attempt whose fate is unknown (a server lost mid-request, or a relay to the alpha that
  // timed out), "duplicate" means that attempt got through: the transfer is in, not refused.
  let uncertain = false;
  while (true) {
    let attempts = 0;
    const response = await withAnyServer(servers, (conn) => {
      if (attempts++ > 0) uncertain = true;
      return conn.request(Kind.submit, tx.bytes);
    });
    if (response.ok === true) return response;
    const code = String(response.code);
    if (code === "duplicate" && uncertain) return { ...response, ok: true, alreadySubmitted: true };
    if (code === "alpha_unreachable") uncertain = true;
    if (!RETRYABLE_CODES.has(code) || Date.now() + RETRY_PAUSE_MS > deadlineMs || io.signal.aborted) {
      throw new CoinError(`Refused: ${code}: ${response.reason}`, { code });
    }
    await sleep(RETRY_PAUSE_MS, io.signal);
  }
}

/**
 * Polls the servers (one per poll, in turn) for the transfer's outcome until one answers
 * "committed" or "never". Returns the committing frame; throws CoinError for "never".
 */
export async function waitForOutcome(servers: Target[], tx: Tx, timing: Timing, io: Io): Promise<number> {
  const query = new Uint8Array(40);
  query.set(fromHex(tx.id, 32)!);
  new DataView(query.buffer).setBigUint64(32, BigInt(tx.timestampMs));
  const pollMs = Math.max(100, Math.floor(timing.intervalMs / 4));
  // Give up only far beyond the frame where the transfer could last be applied.
  const giveUpMs = (lastFrameFor(tx.timestampMs, timing) + 30) * timing.intervalMs;
  for (let i = 0; !io.signal.aborted; i++) {
    const target = servers[i % servers.length]!;
    let answer: Response | undefined;
    try {
      answer = await withAnyServer([target], (conn: ServerConnection) => conn.request(Kind.txStatus, query));
    } catch {
      answer = undefined; // that server is down: ask the next one
    }
    if (answer?.state === "committed") return Number(answer.frame);
    if (answer?.state === "never") {
      const code = String(answer.code);
      throw new CoinError(
        `Not committed: transfer ${tx.id.slice(0, 16)}… was not applied in any frame of its time window` +
          (code === "not_included" ? "" : ` (last result: ${code})`),
        { code },
      );
    }
    if (Date.now() > giveUpMs) {
      throw new CoinError(`Outcome unknown: no server confirmed transfer ${tx.id.slice(0, 16)}… either way`);
    }
    await sleep(pollMs, io.signal);
  }
  throw new CoinError("Interrupted before the outcome was known");
}

/** Prints the acceptance and, when asked, waits for the outcome. */
export async function submitAndReport(
  servers: Target[],
  tx: Tx,
  options: { wait: boolean; timing: Timing | undefined; io: Io },
): Promise<void> {
  const { io } = options;
  const accepted = await submitTx(servers, tx, options.timing, io);
  io.out(tx.id);
  io.err(
    accepted.alreadySubmitted
      ? `already accepted by a server: an earlier attempt got through (the retry was a duplicate)`
      : `accepted by ${accepted.server} for frame ${accepted.frame}` +
        (accepted.relayedBy ? ` (relayed by ${accepted.relayedBy})` : ""),
  );
  if (!options.wait) return;
  if (options.timing === undefined) throw new Error("--wait needs the network's timing");
  const frame = await waitForOutcome(servers, tx, options.timing, io);
  io.out(`committed in frame ${frame}`);
}
