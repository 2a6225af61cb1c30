// lib/log.ts: the readable line format, the JSON format (one object per line), colour only when asked.
// A running server's JSON lines are checked end to end in tests/http_test.ts.

import assert from "node:assert/strict";
import { createLogger, type LogFormat } from "../lib/log.ts";

const ESC = "\x1b";

function capture(
  format: LogFormat,
  colour = false,
): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, log: createLogger({ write: (l) => lines.push(l), format, server: "ann", colour }) };
}

Deno.test("the JSON format writes one object per event with time, server, event and the fields", () => {
  const { lines, log } = capture("json");
  const before = Date.now();
  log.event("consensus", { frame: 42, hash: "3fa9c1d2e4b5", agree: "3/3", inSync: true, skipped: undefined });
  log.event("stopped");
  log.event("error_listen", { error: 'line one\nline "two"' });
  assert.equal(lines.length, 3);
  const records = lines.map((l) => {
    assert.ok(!l.includes("\n"), "one line per event");
    return JSON.parse(l) as Record<string, unknown>;
  });
  const [consensus, stopped, error] = records as [
    Record<string, unknown>,
    Record<string, unknown>,
    Record<string, unknown>,
  ];
  assert.deepEqual(Object.keys(consensus), ["time", "server", "event", "frame", "hash", "agree", "inSync"]);
  assert.deepEqual({ ...consensus, time: undefined }, {
    time: undefined,
    server: "ann",
    event: "consensus",
    frame: 42,
    hash: "3fa9c1d2e4b5",
    agree: "3/3",
    inSync: true,
  });
  const time = Date.parse(String(consensus.time));
  assert.match(String(consensus.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.ok(time >= before - 1 && time <= Date.now() + 1);
  assert.deepEqual(Object.keys(stopped), ["time", "server", "event"]);
  assert.equal(error.error, 'line one\nline "two"');
});

Deno.test("the JSON format never colours, even on a terminal", () => {
  const { lines, log } = capture("json", true);
  log.event("no_consensus", { frame: 1 });
  assert.ok(!lines[0]!.includes(ESC), lines[0]);
  assert.equal((JSON.parse(lines[0]!) as { event: string }).event, "no_consensus");
});

Deno.test("the text format is `time server event key=value`, quoting values with spaces or quotes", () => {
  const { lines, log } = capture("text");
  log.event("consensus", { frame: 42, agree: "3/3", skipped: undefined, inSync: true });
  log.event("no_quorum", { reason: 'no majority "now"' });
  log.event("error_listen", { error: "line one\nline two" });
  assert.match(lines[0]!, /^\d\d:\d\d:\d\d\.\d{3} ann consensus frame=42 agree=3\/3 inSync=true$/);
  assert.match(lines[1]!, /^\d\d:\d\d:\d\d\.\d{3} ann no_quorum reason="no majority \\"now\\""$/);
  assert.match(
    lines[2]!,
    /^\d\d:\d\d:\d\d\.\d{3} ann error_listen error="line one\\nline two"$/,
    "still one line",
  );
  assert.equal(lines.length, 3);
});

Deno.test("the text format colours warnings only when told it writes to a terminal", () => {
  const plain = capture("text", false);
  const colour = capture("text", true);
  for (const { log } of [plain, colour]) {
    log.event("out_of_sync", { frame: 1 });
    log.event("consensus", { frame: 1 });
  }
  assert.ok(plain.lines.every((l) => !l.includes(ESC)));
  const [warning, info] = colour.lines as [string, string];
  assert.ok(warning.startsWith(`${ESC}[33m`) && warning.endsWith(`${ESC}[0m`), JSON.stringify(warning));
  assert.match(warning.slice(5, -4), / ann out_of_sync frame=1$/);
  assert.ok(!info.includes(ESC), "only warnings are coloured");
});
