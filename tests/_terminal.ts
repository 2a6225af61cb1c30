// Running coin on a terminal in tests: util-linux `script` gives the process a pseudo-terminal, so
// standard input is a terminal and the questions coin asks only there (a confirmation, a passphrase) are
// asked. Standard output and error both reach the terminal, so they come back as one text.

import assert from "node:assert/strict";
import { sleep } from "../lib/_sleep.ts";
import { PASSPHRASE_ENV } from "../lib/cli/key.ts";
import { coinArgs } from "./_helpers.ts";

/** True when `script` can be run here; tests that need a terminal are ignored otherwise. */
export const HAS_SCRIPT = (() => {
  try {
    return new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
})();

/** The questions coin asks on a terminal: a passphrase, or a yes/no confirmation. */
const PROMPT = /passphrase for [^\n]*?: |\[y\/N\] /gi;

/** What a run on a terminal printed (standard output and error, merged as a terminal shows them). */
export interface TerminalRun {
  readonly code: number;
  readonly output: string;
}

/**
 * Runs `coin ...args` inside a pseudo-terminal (`script -qec`), without COIN_KEY_PASSPHRASE unless `env`
 * sets it, and types `answers` in order: each one once a new question has appeared and the program has had
 * time to turn echo off (for a passphrase), then Enter. Carriage returns are dropped from the output.
 */
export async function runCoinOnTerminal(
  args: string[],
  answers: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<TerminalRun> {
  const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;
  const unset = options.env?.[PASSPHRASE_ENV] === undefined ? ["env", "-u", PASSPHRASE_ENV] : [];
  const command = [
    ...unset,
    Deno.execPath(),
    ...coinArgs(args),
  ].map(quote).join(" ");
  const child = new Deno.Command("script", {
    args: ["-qec", command, "/dev/null"],
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    env: { NO_COLOR: "1", ...options.env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const writer = child.stdin.getWriter();
  const decoder = new TextDecoder();
  let output = "";
  let answered = 0;
  for await (const chunk of child.stdout) {
    output += decoder.decode(chunk, { stream: true });
    const prompts = output.match(PROMPT)?.length ?? 0;
    while (answered < prompts && answered < answers.length) {
      await sleep(300); // the prompt is written just before echo is turned off
      await writer.write(new TextEncoder().encode(answers[answered++] + "\r"));
    }
  }
  await writer.close().catch(() => {});
  const { code } = await child.status;
  assert.equal(await stderr, "", "script itself writes nothing on its stderr");
  return { code, output: output.replaceAll("\r", "") };
}
