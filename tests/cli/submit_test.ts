// lib/cli/_submit.ts against fake servers on 127.0.0.1: submitting a transfer (the fallback, the retries
// of a retryable refusal within the transfer's window, a duplicate that means an earlier attempt got
// through), following it to its outcome, and what `coin send` and `coin submit` print.

import assert from "node:assert/strict";
import { toHex } from "../../lib/_bytes.ts";
import type { Io } from "../../lib/cli/_command.ts";
import { REQUEST_TIMEOUT_MS } from "../../lib/client.ts";
import {
  MIN_ATTEMPT_MS,
  RETRY_PAUSE_MS,
  RETRYABLE_CODES,
  STATUS_TIMEOUT_MS,
  submitAndReport,
  submitOrder,
  submitTx,
  waitForOutcome,
} from "../../lib/cli/_submit.ts";
import { CoinError, InterruptedError, OutcomeUnknownError } from "../../lib/errors.ts";
import type { Timing } from "../../lib/frames.ts";
import type { Tx } from "../../lib/tx.ts";
import { Kind } from "../../lib/wire.ts";
import {
  assertRejectsError,
  closedPort,
  type FakeReply,
  linesOf,
  makeKeyPair,
  makeTempDir,
  runCoin,
  signTransfer,
  startFakeServer,
} from "../_helpers.ts";

const HOST = "127.0.0.1";
/** Short frames, so waitForOutcome polls every 100 ms. */
const TIMING: Timing = { intervalMs: 400, skewMs: 5_000, blackoutMs: 40, servers: 2 };
const T0 = 1_700_000_000_000;

/** An io that keeps what is written; `signal` aborts it. */
function captureIo(signal = new AbortController().signal): Io & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout,
    stderr,
    out: (line) => void stdout.push(line),
    err: (line) => void stderr.push(line),
    readStdin: () => Promise.resolve(""),
    errIsTerminal: false,
    signal,
    verbose: false,
    env: { get: () => undefined },
  };
}

/** A transfer from seed 1 to seed 2 with timestamp `timestampMs` (default: now). */
async function transfer(timestampMs = Date.now()): Promise<Tx> {
  return await signTransfer(await makeKeyPair(1), await makeKeyPair(2), { amount: 5, timestampMs });
}

/** A fake server whose n-th request gets `replies[n]` (the last one after that). */
function scripted(...replies: FakeReply[]) {
  return startFakeServer((_, index) => replies[Math.min(index, replies.length - 1)]);
}

function refusal(code: string): Record<string, unknown> {
  return { ok: false, code, reason: `reason of ${code}`, server: "s1" };
}

function target(name: string, port: number) {
  return { name, host: HOST, port };
}

Deno.test("submitTx() sends the transfer's 144 bytes and returns the acceptance", async () => {
  const tx = await transfer();
  await using server = scripted({ ok: true, id: tx.id, frame: 9, server: "s1" });
  const accepted = await submitTx([target("s1", server.port)], tx, TIMING, captureIo());
  assert.deepEqual(accepted, { ok: true, id: tx.id, frame: 9, server: "s1" });
  assert.deepEqual(server.requests, [Uint8Array.of(Kind.submit, ...tx.bytes)]);
});

Deno.test("submitTx() refuses for good at once: CoinError with the server's code and reason", async () => {
  const tx = await transfer();
  await using server = scripted(refusal("insufficient_funds"));
  const err = await assertRejectsError(
    () => submitTx([target("s1", server.port)], tx, TIMING, captureIo()),
    CoinError,
    /^Refused: insufficient_funds: reason of insufficient_funds$/,
  );
  assert.equal((err as CoinError).code, "insufficient_funds");
  assert.equal(server.requests.length, 1, "not retried");
});

Deno.test("submitTx() retries a retryable refusal after a pause until the transfer is accepted", async () => {
  assert.deepEqual([...RETRYABLE_CODES].sort(), ["alpha_unreachable", "frame_full", "not_alpha"]);
  const tx = await transfer();
  await using server = scripted(refusal("not_alpha"), refusal("frame_full"), { ok: true, frame: 3 });
  const started = Date.now();
  const accepted = await submitTx([target("s1", server.port)], tx, TIMING, captureIo());
  assert.deepEqual(accepted, { ok: true, frame: 3 });
  assert.equal(server.requests.length, 3);
  assert.ok(Date.now() - started >= 2 * RETRY_PAUSE_MS - 10, `paused twice: ${Date.now() - started} ms`);
});

Deno.test("submitTx() stops retrying once the transfer's window closes or the signal aborts", async () => {
  await using server = scripted(refusal("frame_full"));
  const servers = [target("s1", server.port)];
  // Past its timestamp + the network's skew (5 s without timing), a retry could not be accepted.
  const old = await transfer(Date.now() - 5_100);
  await assertRejectsError(
    () => submitTx(servers, old, undefined, captureIo()),
    CoinError,
    /^Refused: frame_full: reason of frame_full$/,
  );
  const fresh = await transfer();
  await assertRejectsError(
    () => submitTx(servers, fresh, { ...TIMING, skewMs: 0 }, captureIo()),
    CoinError,
    /^Refused: frame_full/,
  );
  const aborted = new AbortController();
  aborted.abort();
  await assertRejectsError(
    () => submitTx(servers, fresh, TIMING, captureIo(aborted.signal)),
    InterruptedError,
    new RegExp(`^Interrupted before transfer ${fresh.id.slice(0, 16)}… was sent$`),
  );
  assert.equal(server.requests.length, 2, "one attempt each, no retry, and none once the signal aborted");
});

Deno.test("submitTx() takes a duplicate as the network holding the transfer already, pending or applied", async (t) => {
  const tx = await transfer();
  await t.step("a server lost mid-request, then a duplicate from the next", async () => {
    await using lost = scripted("close");
    await using next = scripted(refusal("duplicate"));
    const accepted = await submitTx(
      [target("s1", lost.port), target("s2", next.port)],
      tx,
      TIMING,
      captureIo(),
    );
    assert.deepEqual(accepted, { ...refusal("duplicate"), ok: true, alreadySubmitted: true });
  });
  await t.step("alpha_unreachable (a relay that timed out), then a duplicate", async () => {
    await using server = scripted(refusal("alpha_unreachable"), refusal("duplicate"));
    const accepted = await submitTx([target("s1", server.port)], tx, TIMING, captureIo());
    assert.equal(accepted.alreadySubmitted, true);
    assert.equal(server.requests.length, 2);
  });
  await t.step("a duplicate on the first attempt: submitted before, by this or another run", async () => {
    await using server = scripted(refusal("duplicate"));
    const accepted = await submitTx([target("s1", server.port)], tx, TIMING, captureIo());
    assert.equal(accepted.alreadySubmitted, true);
  });
});

Deno.test("submitTx() reports an unknown outcome, not a refusal, once an earlier attempt may have got through", async (t) => {
  const tx = await transfer();
  await t.step("a relay that timed out, then a refusal for good", async () => {
    await using server = scripted(refusal("alpha_unreachable"), refusal("timestamp_too_old"));
    const err = await assertRejectsError(
      () => submitTx([target("s1", server.port)], tx, TIMING, captureIo()),
      OutcomeUnknownError,
      new RegExp(
        `^Refused: timestamp_too_old: reason of timestamp_too_old, but an earlier attempt may have got through; ` +
          `transfer ${tx.id.slice(0, 16)}… may still commit: do not pay again before`,
      ),
    );
    assert.equal((err as OutcomeUnknownError).code, "timestamp_too_old");
  });
  await t.step("the only server lost after the request was sent", async () => {
    await using lost = scripted("close");
    await assertRejectsError(
      () => submitTx([target("s1", lost.port)], tx, TIMING, captureIo()),
      OutcomeUnknownError,
      /^No server answered: s1 \(Lost server .*\); transfer .* may still commit/,
    );
  });
  await t.step("a refusal with no attempt of unknown fate before it stays a refusal", async () => {
    await using server = scripted(refusal("insufficient_funds"));
    const err = await assertRejectsError(
      () => submitTx([target("s1", closedPort()), target("s2", server.port)], tx, TIMING, captureIo()),
      CoinError,
      /^Refused: insufficient_funds/,
    );
    assert.ok(!(err instanceof OutcomeUnknownError));
  });
});

Deno.test("submitTx() names every server when none answers", async () => {
  const tx = await transfer();
  await assertRejectsError(
    () => submitTx([target("s1", closedPort()), target("s2", closedPort())], tx, TIMING, captureIo()),
    CoinError,
    // Asked alpha first: either may come first.
    /^No server answered: (s1 \(.*\); s2|s2 \(.*\); s1) \(.*\)$/,
  );
});

Deno.test("waitForOutcome() asks for the transfer's id and timestamp until it is committed", async () => {
  const tx = await transfer();
  await using server = scripted(
    { ok: true, state: "pending" },
    { ok: true, state: "pending" },
    { ok: true, state: "committed", frame: 42 },
  );
  assert.equal(await waitForOutcome([target("s1", server.port)], tx, TIMING, captureIo()), 42);
  assert.equal(server.requests.length, 3);
  const query = server.requests[0]!;
  assert.equal(query.length, 1 + 32 + 8);
  assert.equal(query[0], Kind.txStatus);
  assert.equal(toHex(query.subarray(1, 33)), tx.id);
  assert.equal(new DataView(query.buffer, query.byteOffset).getBigUint64(33), BigInt(tx.timestampMs));
});

Deno.test("waitForOutcome() asks the servers in turn and goes on past one that is down", async () => {
  const tx = await transfer();
  await using server = scripted({ ok: true, state: "pending" }, { ok: true, state: "committed", frame: 7 });
  const servers = [target("s1", closedPort()), target("s2", server.port)];
  assert.equal(await waitForOutcome(servers, tx, TIMING, captureIo()), 7);
  assert.equal(server.requests.length, 2);
});

Deno.test("waitForOutcome() turns 'never' into CoinError, naming the last result unless not_included", async () => {
  const tx = await transfer();
  const prefix = RegExp.escape(`Not committed: transfer ${tx.id.slice(0, 16)}… was not applied`);
  for (
    const [code, pattern] of [
      ["not_included", new RegExp(`^${prefix} in any frame of its time window$`)],
      ["insufficient_funds", new RegExp(`^${prefix} .* \\(last result: insufficient_funds\\)$`)],
    ] as const
  ) {
    await using server = scripted({ ok: true, state: "never", code });
    const err = await assertRejectsError(
      () => waitForOutcome([target("s1", server.port)], tx, TIMING, captureIo()),
      CoinError,
      pattern,
    );
    assert.equal((err as CoinError).code, code);
  }
});

Deno.test("waitForOutcome() gives up long after the window, and at once when the signal aborts", async () => {
  await using server = scripted({ ok: true, state: "pending" });
  const old = await transfer(T0);
  await assertRejectsError(
    () => waitForOutcome([target("s1", server.port)], old, TIMING, captureIo()),
    OutcomeUnknownError,
    new RegExp(
      `^Outcome unknown: no server confirmed it either way; transfer ${
        old.id.slice(0, 16)
      }… may still commit: ` +
        `do not pay again before "coin submit --wait" with the same signed transfer, or "coin tx status --peers FILE ${old.id} --timestamp ${old.timestampMs}", says it never will$`,
    ),
  );
  assert.equal(server.requests.length, 1);
  const aborted = new AbortController();
  aborted.abort();
  const fresh = await transfer();
  await assertRejectsError(
    () => waitForOutcome([target("s1", server.port)], fresh, TIMING, captureIo(aborted.signal)),
    InterruptedError,
    new RegExp(`^Interrupted: transfer ${fresh.id.slice(0, 16)}… was sent and may still commit$`),
  );
  assert.equal(server.requests.length, 1, "no poll once aborted");
});

Deno.test("submitAndReport() prints the id on stdout and who accepted it on stderr; --wait adds the frame", async (t) => {
  const tx = await transfer();
  await t.step("accepted, relayed", async () => {
    await using server = scripted({ ok: true, frame: 12, server: "s2", relayedBy: "s1" });
    const io = captureIo();
    await submitAndReport([target("s1", server.port)], tx, { wait: false, timing: TIMING, io });
    assert.deepEqual(io.stdout, [tx.id]);
    assert.deepEqual(io.stderr, [
      "accepted by s2 for frame 12 (relayed by s1)",
      `not final yet: it commits once the servers agree on its frame; follow it with "--wait", or with ` +
      `"coin tx status --peers FILE ${tx.id} --timestamp ${tx.timestampMs}"`,
    ]);
  });
  await t.step("accepted earlier (a duplicate after a lost attempt)", async () => {
    await using lost = scripted("close");
    await using next = scripted(refusal("duplicate"));
    const io = captureIo();
    await submitAndReport([target("s1", lost.port), target("s2", next.port)], tx, {
      wait: false,
      timing: TIMING,
      io,
    });
    assert.deepEqual(io.stdout, [tx.id]);
    assert.deepEqual(io.stderr, [
      "already held by the network: this transfer was submitted before (pending or committed)",
      `not final yet: it commits once the servers agree on its frame; follow it with "--wait", or with ` +
      `"coin tx status --peers FILE ${tx.id} --timestamp ${tx.timestampMs}"`,
    ]);
  });
  await t.step("--wait: the committing frame", async () => {
    await using server = startFakeServer((body) =>
      body[0] === Kind.submit
        ? { ok: true, frame: 12, server: "s1" }
        : { ok: true, state: "committed", frame: 12 }
    );
    const io = captureIo();
    await submitAndReport([target("s1", server.port)], tx, { wait: true, timing: TIMING, io });
    assert.deepEqual(io.stdout, [tx.id, "committed in frame 12"]);
    assert.deepEqual(io.stderr, ["accepted by s1 for frame 12"]);
  });
  await t.step("--wait without the network's timing is a bug, after the acceptance is printed", async () => {
    await using server = scripted({ ok: true, frame: 12, server: "s1" });
    const io = captureIo();
    await assert.rejects(
      submitAndReport([target("s1", server.port)], tx, { wait: true, timing: undefined, io }),
      (err: Error) => !(err instanceof CoinError) && err.message === "--wait needs the network's timing",
    );
    assert.deepEqual(io.stdout, [tx.id]);
  });
});

// ---- exit statuses through the command line ------------------------------------------------------------

/** A peers.json naming one server at `port` on 127.0.0.1 (a fake server), with a 1 s interval. */
async function onePeerFile(dir: string, port: number): Promise<string> {
  const key = await makeKeyPair(7);
  const payer = await makeKeyPair(1);
  const path = `${dir}/peers.json`;
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      start: Math.floor(Date.now() / 1000) - 3600,
      interval: 1,
      servers: [{ name: "s1", key: key.publicHex, host: HOST, port }],
      genesis: { [payer.publicHex]: 1000 },
    }),
  );
  return path;
}

/** Exit status `code`, the acceptance on stderr, then one line: the outcome. */
function assertOutcome(
  r: { code: number; stdout: string; stderr: string },
  code: number,
  last: RegExp,
): void {
  const context = `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
  assert.equal(r.code, code, context);
  const lines = linesOf(r.stderr);
  assert.deepEqual(lines.slice(0, -1), ["accepted by s1 for frame 12"], context);
  assert.match(lines.at(-1)!, last, context);
}

Deno.test("coin submit --wait exits 0 committed, 1 certainly not committed, 4 outcome unknown, 130 interrupted", async (t) => {
  await using dir = await makeTempDir();
  const fresh = await transfer();
  const old = await transfer(Date.now() - 3_600_000);
  const run = async (outcome: FakeReply, tx: Tx, signal?: AbortSignal) => {
    await using server = startFakeServer((body) =>
      body[0] === Kind.submit ? { ok: true, frame: 12, server: "s1" } : outcome
    );
    const peers = await onePeerFile(dir.path, server.port);
    return await runCoin(["submit", "--peers", peers, "--wait", toHex(tx.bytes)], signal ? { signal } : {});
  };
  await t.step("0: committed", async () => {
    const r = await run({ ok: true, state: "committed", frame: 12 }, fresh);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(linesOf(r.stdout), [fresh.id, "committed in frame 12"]);
  });
  await t.step("1: never (safe to pay again)", async () => {
    const r = await run({ ok: true, state: "never", code: "not_included" }, fresh);
    assertOutcome(r, 1, /^coin: Not committed: transfer .* was not applied in any frame of its time window$/);
  });
  await t.step("4: no server says either way, long after its window", async () => {
    const r = await run({ ok: true, state: "pending" }, old);
    assertOutcome(r, 4, /^coin: Outcome unknown: no server confirmed it either way; .* may still commit/);
  });
  await t.step("130: interrupted while waiting", async () => {
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 300);
    const r = await run({ ok: true, state: "pending" }, fresh, stop.signal);
    assertOutcome(r, 130, /^coin: Interrupted: transfer .* was sent and may still commit$/);
  });
});

Deno.test("submitAndReport() with --wait follows a transfer whose attempt may have got through to its real outcome", async (t) => {
  const tx = await transfer();
  // The first submit is lost after it was sent; the second is refused; then the status is asked.
  const serving = (status: FakeReply) => scripted("close", refusal("insufficient_funds"), status);
  await t.step("it had got through: committed, exit 0", async () => {
    await using server = serving({ ok: true, state: "committed", frame: 40 });
    const io = captureIo();
    await submitAndReport([target("s1", server.port)], tx, { wait: true, timing: TIMING, io });
    assert.deepEqual(io.stdout, [tx.id, "committed in frame 40"]);
    assert.deepEqual(io.stderr, [
      "sent, outcome not known yet (a server was lost after it was sent): following it",
    ]);
  });
  await t.step("it had not: never, a CoinError (exit 1) naming the last result", async () => {
    await using lost = scripted("close");
    await using refusing = startFakeServer((body) =>
      body[0] === Kind.submit
        ? refusal("insufficient_funds")
        : { ok: true, state: "never", code: "insufficient_funds" }
    );
    const io = captureIo();
    const err = await assertRejectsError(
      () =>
        submitAndReport([target("s1", lost.port), target("s2", refusing.port)], tx, {
          wait: true,
          timing: { ...TIMING, servers: 3 }, // not 2: peers.json order, s1 first
          io,
        }),
      CoinError,
      /^Not committed: transfer .* was not applied in any frame of its time window \(last result: insufficient_funds\)$/,
    );
    assert.ok(!(err instanceof OutcomeUnknownError));
    assert.deepEqual(io.stdout, [tx.id]);
    assert.match(io.stderr.join("\n"), /^sent, outcome not known yet \(.*\): following it$/);
  });
  await t.step("without --wait the unknown outcome is the answer (exit 4)", async () => {
    await using server = serving({ ok: true, state: "committed", frame: 40 });
    await assertRejectsError(
      () =>
        submitAndReport([target("s1", server.port)], tx, { wait: false, timing: TIMING, io: captureIo() }),
      OutcomeUnknownError,
      /may still commit/,
    );
  });
});

Deno.test("submitAndReport() with --wait asks about a transfer too old to submit again before calling it refused", async (t) => {
  const tx = await transfer(Date.now() - 60_000);
  const serving = (status: FakeReply) =>
    startFakeServer((body) => body[0] === Kind.submit ? refusal("timestamp_too_old") : status);
  await t.step("committed before: exit 0 with its frame", async () => {
    await using server = serving({ ok: true, state: "committed", frame: 31 });
    const io = captureIo();
    await submitAndReport([target("s1", server.port)], tx, { wait: true, timing: TIMING, io });
    assert.deepEqual(io.stdout, [tx.id, "committed in frame 31"]);
    assert.deepEqual(io.stderr, ["submitted before: too old to submit again, and already committed"]);
  });
  await t.step("never committed: the refusal stands (exit 1)", async () => {
    await using server = serving({ ok: true, state: "never", code: "not_included" });
    const err = await assertRejectsError(
      () => submitAndReport([target("s1", server.port)], tx, { wait: true, timing: TIMING, io: captureIo() }),
      CoinError,
      /^Refused: timestamp_too_old: reason of timestamp_too_old$/,
    );
    assert.ok(!(err instanceof OutcomeUnknownError));
  });
  await t.step("no server knows: outcome unknown (exit 4)", async () => {
    await using server = serving({ ok: true, state: "unknown" });
    await assertRejectsError(
      () => submitAndReport([target("s1", server.port)], tx, { wait: true, timing: TIMING, io: captureIo() }),
      OutcomeUnknownError,
      /^Refused: timestamp_too_old: .*, and no server can tell whether it was committed before; /,
    );
  });
  await t.step("without --wait the refusal is only about this submission", async () => {
    await using server = serving({ ok: true, state: "committed", frame: 31 });
    await assertRejectsError(
      () =>
        submitAndReport([target("s1", server.port)], tx, { wait: false, timing: TIMING, io: captureIo() }),
      CoinError,
      /^Refused: timestamp_too_old/,
    );
    assert.equal(server.requests.length, 1, "no status asked");
  });
});

Deno.test("submitTx() gives each server a share of the transfer's time left: two frozen servers do not make it expire", async () => {
  // A frozen (SIGSTOPped) server accepts connections and never answers.
  await using frozen1 = startFakeServer(() => undefined);
  await using frozen2 = startFakeServer(() => undefined);
  await using live = scripted({ ok: true, frame: 3, server: "s3" });
  const tx = await transfer();
  const started = Date.now();
  const accepted = await submitTx(
    [target("s1", frozen1.port), target("s2", frozen2.port), target("s3", live.port)],
    tx,
    undefined, // no timing: peers.json order, and the default 5 s window
    captureIo(),
  );
  const took = Date.now() - started;
  assert.deepEqual(accepted, { ok: true, frame: 3, server: "s3" });
  assert.ok(took < 5_000 - 500, `reached the live server with time to spare: ${took} ms`);
  assert.ok(took >= 2 * MIN_ATTEMPT_MS, `waited on each frozen server: ${took} ms`);
  assert.equal(live.requests.length, 1);
});

Deno.test("submitOrder() asks the alpha of the frame accepting now first, then the others in rotation", () => {
  const servers = ["s1", "s2", "s3"].map((name, i) => target(name, 7000 + i));
  const timing: Timing = { intervalMs: 1000, skewMs: 5000, blackoutMs: 100, servers: 3 };
  const names = (nowMs: number) => submitOrder(servers, timing, nowMs).map((s) => s.name);
  // Frame f's alpha is f mod 3 (docs/protocol.md, 4.2); in the blackout, the next frame's alpha.
  const f = 1_795_560_000;
  assert.deepEqual(names(f * 1000 + 10), [
    `s${(f % 3) + 1}`,
    `s${((f + 1) % 3) + 1}`,
    `s${((f + 2) % 3) + 1}`,
  ]);
  assert.deepEqual(names(f * 1000 + 950)[0], `s${((f + 1) % 3) + 1}`, "in the blackout");
  assert.deepEqual(submitOrder(servers.slice(0, 1), timing, f * 1000).map((s) => s.name), ["s1"], "--server");
});

Deno.test("waitForOutcome() asks the next server once a frozen one has not answered within STATUS_TIMEOUT_MS", async () => {
  await using frozen = startFakeServer(() => undefined);
  await using live = scripted({ ok: true, state: "committed", frame: 8 });
  const tx = await transfer();
  const started = Date.now();
  const frame = await waitForOutcome(
    [target("s1", frozen.port), target("s2", live.port)],
    tx,
    TIMING,
    captureIo(),
  );
  const took = Date.now() - started;
  assert.equal(frame, 8);
  assert.ok(took >= STATUS_TIMEOUT_MS, `waited for the frozen server: ${took} ms`);
  assert.ok(took < REQUEST_TIMEOUT_MS, `gave up on it before the general request timeout: ${took} ms`);
});
