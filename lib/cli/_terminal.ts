// Questions on the terminal: a confirmation ("Pay it anyway? [y/N]") or a passphrase typed without echo.
// The prompt goes to standard error, the answer comes from standard input, and only when standard input is
// a terminal: a script is never left waiting for an answer nobody will type.

import { InterruptedError } from "../errors.ts";

/** The longest answer read, in bytes (a passphrase included). */
export const MAX_ANSWER_BYTES = 1_024;

const CTRL_C = 0x03;
const CTRL_D = 0x04;
const BACKSPACE = 0x08;
const CTRL_U = 0x15;
const DELETE = 0x7f;

/**
 * Writes `prompt` to standard error and reads one line from standard input, which must be a terminal;
 * returns undefined when it is not. `secret` turns echo off while the answer is typed (raw mode) and
 * restores it afterwards. Ctrl-C (or `signal` aborting) throws InterruptedError; Ctrl-D or the end of input
 * ends the answer. Backspace removes a character, Ctrl-U the whole answer (in raw mode; the terminal does it
 * otherwise).
 */
export async function askTerminal(
  prompt: string,
  options: { secret?: boolean; signal?: AbortSignal } = {},
): Promise<string | undefined> {
  if (!Deno.stdin.isTerminal()) return undefined;
  const encoder = new TextEncoder();
  Deno.stderr.writeSync(encoder.encode(prompt));
  const secret = options.secret ?? false;
  if (secret) Deno.stdin.setRaw(true);
  const answer: number[] = [];
  const byte = new Uint8Array(1);
  const interrupted = () =>
    new InterruptedError(
      secret ? "Interrupted while asking for a passphrase" : "Interrupted at the question",
    );
  // Ctrl-C outside raw mode is SIGINT, which aborts `signal` (main.ts): the answer is not waited for.
  let stop: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    stop = () => reject(interrupted());
    if (options.signal?.aborted) stop();
    else options.signal?.addEventListener("abort", stop, { once: true });
  });
  aborted.catch(() => {}); // rejected only while a read is raced against it
  try {
    while (true) {
      const read = Deno.stdin.read(byte);
      read.catch(() => {}); // the read left behind by an interruption may fail later: nothing to do then
      const n = await Promise.race([read, aborted]);
      if (n === null || n === 0) break;
      const b = byte[0]!;
      if (b === 0x0a || b === 0x0d || b === CTRL_D) break;
      if (secret && b === CTRL_C) throw interrupted();
      if (secret && (b === BACKSPACE || b === DELETE)) {
        // One character, which UTF-8 may have spelt in several bytes: its continuation bytes, then its lead.
        while (answer.length > 0 && (answer[answer.length - 1]! & 0xc0) === 0x80) answer.pop();
        answer.pop();
        continue;
      }
      if (secret && b === CTRL_U) {
        answer.length = 0;
        continue;
      }
      if (answer.length >= MAX_ANSWER_BYTES) continue; // the rest of an overlong answer is dropped
      answer.push(b);
    }
  } finally {
    if (stop !== undefined) options.signal?.removeEventListener("abort", stop);
    if (secret) {
      Deno.stdin.setRaw(false);
      Deno.stderr.writeSync(encoder.encode("\n")); // the Enter that raw mode did not echo
    }
  }
  return new TextDecoder().decode(new Uint8Array(answer));
}
