// Submitting a signed transfer and, with --wait, following it until its outcome is certain:
// shared by `coin send` and `coin submit`.

import { sleep } from "../_sleep.ts";
import { fromHex } from "../_bytes.ts";
import { REQUEST_TIMEOUT_MS, type Response, type ServerConnection, withAnyServer } from "../client.ts";
import { CoinError, InterruptedError, OutcomeUnknownError } from "../errors.ts";
import { acceptingFrame, alphaIndex, lastFrameFor, type Timing } from "../frames.ts";
import type { Tx } from "../tx.ts";
import { Kind } from "../wire.ts";
import type { Io } from "./_command.ts";

/** Codes after which the same transfer may succeed a moment later (another alpha, next frame). */
export const RETRYABLE_CODES = new Set(["alpha_unreachable", "not_alpha", "frame_full"]);
/** Pause between retries of a retryable refusal. */
export const RETRY_PAUSE_MS = 200;

type Target = { name: string; host: string; port: number };

/**
 * How long one server may take to answer a status query before the next is asked: a live server answers
 * in milliseconds, and a frozen one must not hold up "--wait" or "coin tx status" for long.
 */
export const STATUS_TIMEOUT_MS = 2_000;

/** The shortest wait for one server's answer to a submit (a live server answers in milliseconds). */
export const MIN_ATTEMPT_MS = 300;

/**
 * The servers in the order to ask them: the alpha of the frame accepting transfers now first (it takes the
 * transfer without a relay), then the others in rotation order. `servers` are in peers.json order.
 */
export function submitOrder(servers: readonly Target[], timing: Timing | undefined, nowMs: number): Target[] {
  if (timing === undefined || servers.length !== timing.servers) return [...servers];
  const alpha = alphaIndex(acceptingFrame(nowMs, timing), servers.length);
  return servers.map((_, i) => servers[(alpha + i) % servers.length]!);
}

/**
 * Submits `tx` until a server accepts it or refuses it for good. Returns the acceptance. Each server gets
 * an equal share of the time left before the transfer expires (at least MIN_ATTEMPT_MS, at most
 * REQUEST_TIMEOUT_MS): a frozen server must not hold the transfer until no live one can take it.
 */
export async function submitTx(
  servers: Target[],
  tx: Tx,
  timing: Timing | undefined,
  io: Io,
): Promise<Response> {
  const deadlineMs = tx.timestampMs + (timing?.skewMs ?? 5_000);
  // After an attempt whose fate is unknown (a server lost mid-request, or a relay to the alpha that
  // timed out), a refusal does not prove the transfer is out: that attempt may have got through.
  let uncertain = false;
  while (true) {
    if (io.signal.aborted) throw interrupted(tx, uncertain);
    let response: Response;
    let attempts = 0;
    try {
      const ordered = submitOrder(servers, timing, Date.now());
      response = await withAnyServer(ordered, (conn) => {
        if (attempts++ > 0) uncertain = true; // the server before was lost after the request was sent
        const share = (deadlineMs - Date.now()) / (ordered.length - attempts + 1);
        return conn.request(
          Kind.submit,
          tx.bytes,
          Math.round(Math.min(REQUEST_TIMEOUT_MS, Math.max(MIN_ATTEMPT_MS, share))),
        );
      });
    } catch (err) {
      if (attempts > 0) uncertain = true;
      if (uncertain && err instanceof CoinError) {
        throw new OutcomeUnknownError(`${err.message}; ${unknownAdvice(tx)}`, { cause: err });
      }
      throw err;
    }
    if (response.ok === true) return response;
    const code = String(response.code);
    // The network holds this transfer already (pending in a buffer, or applied): follow that one.
    if (code === "duplicate") return { ...response, ok: true, alreadySubmitted: true };
    if (code === "alpha_unreachable") uncertain = true;
    if (!RETRYABLE_CODES.has(code) || Date.now() + RETRY_PAUSE_MS > deadlineMs) {
      if (uncertain) {
        throw new OutcomeUnknownError(
          `Refused: ${code}: ${response.reason}, but an earlier attempt may have got through; ${
            unknownAdvice(tx)
          }`,
          { code },
        );
      }
      throw new CoinError(`Refused: ${code}: ${response.reason}`, { code });
    }
    await sleep(RETRY_PAUSE_MS, io.signal);
  }
}

/** What to do when the outcome is unknown. */
function unknownAdvice(tx: Tx): string {
  return `transfer ${tx.id.slice(0, 16)}… may still commit: do not pay again before ` +
    `"coin submit --wait" with the same signed transfer, or "coin tx status --peers FILE ${tx.id} --timestamp ${tx.timestampMs}", ` +
    `says it never will`;
}

function interrupted(tx: Tx, sent: boolean): InterruptedError {
  return new InterruptedError(
    sent
      ? `Interrupted: transfer ${tx.id.slice(0, 16)}… was sent and may still commit`
      : `Interrupted before transfer ${tx.id.slice(0, 16)}… was sent`,
  );
}

/**
 * Polls the servers (one per poll, in turn) for the transfer's outcome until one answers
 * "committed" or "never". Returns the committing frame; throws CoinError for "never".
 */
export async function waitForOutcome(servers: Target[], tx: Tx, timing: Timing, io: Io): Promise<number> {
  const query = statusQuery(tx);
  const pollMs = Math.max(100, Math.floor(timing.intervalMs / 4));
  // Give up only far beyond the frame where the transfer could last be applied.
  const giveUpMs = (lastFrameFor(tx.timestampMs, timing) + 30) * timing.intervalMs;
  for (let i = 0; !io.signal.aborted; i++) {
    const target = servers[i % servers.length]!;
    let answer: Response | undefined;
    try {
      answer = await withAnyServer(
        [target],
        (conn: ServerConnection) => conn.request(Kind.txStatus, query, STATUS_TIMEOUT_MS),
      );
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
      throw new OutcomeUnknownError(
        `Outcome unknown: no server confirmed it either way; ${unknownAdvice(tx)}`,
      );
    }
    await sleep(pollMs, io.signal);
  }
  throw interrupted(tx, true);
}

/** The argument of a transfer-status request: id 32 | timestamp u64 (the transfer's `id`, hex). */
export function statusQuery(tx: { readonly id: string; readonly timestampMs: number }): Uint8Array {
  const query = new Uint8Array(40);
  query.set(fromHex(tx.id, 32)!);
  new DataView(query.buffer).setBigUint64(32, BigInt(tx.timestampMs));
  return query;
}

/** What the first server that answers says of the transfer ("committed", "never", "pending", …). */
async function askOutcome(servers: Target[], tx: Tx): Promise<Response | undefined> {
  try {
    return await withAnyServer(
      servers,
      (conn) => conn.request(Kind.txStatus, statusQuery(tx), STATUS_TIMEOUT_MS),
    );
  } catch {
    return undefined;
  }
}

/** Prints the acceptance and, when asked, waits for the outcome. */
export async function submitAndReport(
  servers: Target[],
  tx: Tx,
  options: { wait: boolean; timing: Timing | undefined; io: Io; peersFile?: string },
): Promise<void> {
  const { io } = options;
  let accepted: Response;
  try {
    accepted = await submitTx(servers, tx, options.timing, io);
  } catch (err) {
    if (!options.wait || !(err instanceof CoinError)) throw err;
    if (err instanceof OutcomeUnknownError && options.timing !== undefined) {
      // An attempt may have got through: "--wait" promises the real outcome, so it follows the transfer
      // until a server says "committed" or "never" instead of stopping at "unknown".
      io.out(tx.id);
      io.err(
        `sent, outcome not known yet (${
          err.code === undefined ? "a server was lost after it was sent" : `refused ${err.code} after an ` +
            `attempt that may have got through`
        }): following it`,
      );
      const frame = await waitForOutcome(servers, tx, options.timing, io);
      io.out(`committed in frame ${frame}`);
      return;
    }
    if (err.code !== "timestamp_too_old") throw err;
    // Too old to be taken now, but it may have been taken before: "--wait" reports the real outcome.
    const known = await askOutcome(servers, tx);
    if (known?.state === "committed") {
      io.out(tx.id);
      io.err("submitted before: too old to submit again, and already committed");
      io.out(`committed in frame ${known.frame}`);
      return;
    }
    if (known?.state === "never") throw err;
    throw new OutcomeUnknownError(
      `${err.message}, and no server can tell whether it was committed before; ${unknownAdvice(tx)}`,
      { code: err.code },
    );
  }
  io.out(tx.id);
  io.err(
    accepted.alreadySubmitted
      ? `already held by the network: this transfer was submitted before (pending or committed)`
      : `accepted by ${accepted.server} for frame ${accepted.frame}` +
        (accepted.relayedBy ? ` (relayed by ${accepted.relayedBy})` : ""),
  );
  if (!options.wait) {
    io.err(
      `not final yet: it commits once the servers agree on its frame; follow it with "--wait", or with ` +
        `"coin tx status --peers ${options.peersFile ?? "FILE"} ${tx.id} --timestamp ${tx.timestampMs}"`,
    );
    return;
  }
  if (options.timing === undefined) throw new Error("--wait needs the network's timing");
  const frame = await waitForOutcome(servers, tx, options.timing, io);
  io.out(`committed in frame ${frame}`);
}
