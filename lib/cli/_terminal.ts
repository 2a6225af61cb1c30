// Questions on the terminal: a confirmation ("Pay it anyway? [y/N]") or a passphrase typed without echo.
// The prompt goes to standard error, the answer comes from standard input, and only when standard input is
// a terminal: a script is never left waiting for an answer nobody will type.

import { InterruptedError } from "../errors.ts";

/** The longest answer read, in bytes (a passphrase included). */
export const MAX_ANSWER_BYTES = 1_024;

const CTRL_C = 0x03;
const CTRL_D = 0x04;
const BACKSPACE = 0x08;
const DELETE = 0x7f;

/**
 * Writes `prompt` to standard error and reads one line from standard input, which must be a terminal;
 * returns undefined when it is not. `secret` turns echo off while the answer is typed (raw mode) and
 * restores it afterwards. Ctrl-C throws InterruptedError; Ctrl-D or the end of input ends the answer.
 */
export async function askTerminal(
  prompt: string,
  options: { secret?: boolean } = {},
): Promise<string | undefined> {
  if (!Deno.stdin.isTerminal()) return undefined;
  const encoder = new TextEncoder();
  Deno.stderr.writeSync(encoder.encode(prompt));
  const secret = options.secret ?? false;
  if (secret) Deno.stdin.setRaw(true);
  const answer: number[] = [];
  const byte = new Uint8Array(1);
  try {
    while (true) {
      const n = await Deno.stdin.read(byte);
      if (n === null || n === 0) break;
      const b = byte[0]!;
      if (b === 0x0a || b === 0x0d || b === CTRL_D) break;
      if (secret && b === CTRL_C) throw new InterruptedError("Interrupted while asking for a passphrase");
      if (secret && (b === BACKSPACE || b === DELETE)) {
        answer.pop();
        continue;
      }
      if (answer.length >= MAX_ANSWER_BYTES) continue; // the rest of an overlong answer is dropped
      answer.push(b);
    }
  } finally {
    if (secret) {
      Deno.stdin.setRaw(false);
      Deno.stderr.writeSync(encoder.encode("\n")); // the Enter that raw mode did not echo
    }
  }
  return new TextDecoder().decode(new Uint8Array(answer));
}
