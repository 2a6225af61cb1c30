// Questions on the terminal: a confirmation ("Pay it anyway? [y/N]") or a passphrase typed without echo.
// The prompt goes to standard error, the answer comes from standard input, and only when standard input is
// a terminal: a script is never left waiting for an answer nobody will type.

import { InterruptedError } from "../errors.ts";

/** The longest answer read, in bytes (a passphrase included). */
export const MAX_ANSWER_BYTES = 1_024;

const CTRL_C = 0x03;
const CTRL_D = 0x04;
const TAB = 0x09;
const BACKSPACE = 0x08;
const CTRL_U = 0x15;
const DELETE = 0x7f;

/**
 * Writes `prompt` to standard error and reads one line from standard input, which must be a terminal;
 * returns undefined when it is not. The terminal is in raw mode while the answer is typed, and restored
 * afterwards: the answer is echoed here, unless `secret` (a passphrase). Raw mode makes Ctrl-C a byte read
 * in order with the others, not a SIGINT raced against them: a Ctrl-C followed by Enter is always an
 * interruption, never an empty answer. Ctrl-C (or `signal` aborting, for a SIGINT or SIGTERM from
 * elsewhere) throws InterruptedError; Enter, Ctrl-D or the end of input ends the answer. Backspace removes
 * a character, Ctrl-U the whole answer.
 */
export async function askTerminal(
  prompt: string,
  options: { secret?: boolean; signal?: AbortSignal } = {},
): Promise<string | undefined> {
  if (!Deno.stdin.isTerminal()) return undefined;
  const encoder = new TextEncoder();
  const secret = options.secret ?? false;
  const echo = (text: string) => {
    if (!secret) Deno.stderr.writeSync(encoder.encode(text));
  };
  Deno.stdin.setRaw(true);
  Deno.stderr.writeSync(encoder.encode(prompt));
  const answer: number[] = [];
  const byte = new Uint8Array(1);
  const interrupted = () =>
    new InterruptedError(
      secret ? "Interrupted while asking for a passphrase" : "Interrupted at the question",
    );
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
      if (b === CTRL_C) {
        echo("^C");
        throw interrupted();
      }
      if (b === BACKSPACE || b === DELETE) {
        // One character, which UTF-8 may have spelt in several bytes: its continuation bytes, then its lead.
        while (answer.length > 0 && (answer[answer.length - 1]! & 0xc0) === 0x80) answer.pop();
        if (answer.pop() !== undefined) echo("\b \b");
        continue;
      }
      if (b === CTRL_U) {
        echo("\b \b".repeat(charCount(answer)));
        answer.length = 0;
        continue;
      }
      if (b < 0x20 && b !== TAB) continue; // another control character: not part of an answer
      if (answer.length >= MAX_ANSWER_BYTES) continue; // the rest of an overlong answer is dropped
      answer.push(b);
      if (!secret) Deno.stderr.writeSync(Uint8Array.of(b)); // byte by byte: the terminal reassembles UTF-8
    }
  } finally {
    if (stop !== undefined) options.signal?.removeEventListener("abort", stop);
    Deno.stdin.setRaw(false);
    Deno.stderr.writeSync(encoder.encode("\n")); // the Enter that raw mode did not echo
  }
  return new TextDecoder().decode(new Uint8Array(answer));
}

/** How many characters the UTF-8 bytes `bytes` spell (lead bytes and ASCII, not continuation bytes). */
function charCount(bytes: readonly number[]): number {
  return bytes.filter((b) => (b & 0xc0) !== 0x80).length;
}
