// `coin` itself: top-level help, help for a command (three ways), --version, unknown commands and options,
// and the process around main(): what the in-process runs of tests/cli/ stand for.

import assert from "node:assert/strict";
import { archive } from "../../lib/cli/archive.ts";
import { COMMANDS } from "../../lib/cli/commands.ts";
import { keygen } from "../../lib/cli/keygen.ts";
import { pubkey } from "../../lib/cli/pubkey.ts";
import { sign } from "../../lib/cli/sign.ts";
import { tx } from "../../lib/cli/tx.ts";
import {
  assertOneLineError,
  type CoinRun,
  linesOf,
  makeTempDir,
  repoPath,
  runCoin,
  runCoinProcess,
} from "../_helpers.ts";

function assertHelp(run: CoinRun, expected: string | RegExp): void {
  const context = `exit ${run.code}\nstderr: ${run.stderr}`;
  assert.equal(run.code, 0, context);
  assert.equal(run.stderr, "", context);
  if (typeof expected === "string") assert.equal(run.stdout, expected + "\n");
  else assert.match(run.stdout, expected);
}

Deno.test("coin --help, coin -h, coin help and coin alone print the command list to stdout", async () => {
  const runs = await Promise.all([["--help"], ["-h"], ["help"], []].map((args) => runCoin(args)));
  for (const run of runs) {
    assertHelp(run, /^coin \d+\.\d+\.\d+: .*\n\nUsage: coin <command> \[options\]\n/);
    const lines = run.stdout.split("\n");
    for (const command of COMMANDS) {
      assert.ok(
        lines.some((line) => line.startsWith(`  ${command.name} `) && line.endsWith(`  ${command.summary}`)),
        `coin --help lists ${command.name}`,
      );
    }
  }
  assert.equal(new Set(runs.map((r) => r.stdout)).size, 1, "all four print the same text");
});

Deno.test("coin help CMD and coin CMD --help (or -h) print the command's help to stdout", async () => {
  const commands = [keygen, pubkey, sign, tx, archive];
  await Promise.all(commands.map(async (command) => {
    const runs = await Promise.all([
      runCoin(["help", command.name]),
      runCoin([command.name, "--help"]),
      runCoin([command.name, "-h"]),
    ]);
    for (const run of runs) assertHelp(run, command.help);
  }));
});

Deno.test("coin --version prints the version of deno.json", async () => {
  const { version } = JSON.parse(await Deno.readTextFile(repoPath("deno.json"))) as { version: string };
  const runs = await Promise.all([runCoin(["--version"]), runCoin(["-V"])]);
  for (const run of runs) assertHelp(run, `coin ${version}`);
});

Deno.test("an unknown command is a usage error (exit 2) that suggests a close name", async () => {
  const [far, close, help, option] = await Promise.all([
    runCoin(["frobnicate"]),
    runCoin(["sing", "--key", "a.key"]),
    runCoin(["help", "keygn"]),
    runCoin(["--frob"]),
  ]);
  assertOneLineError(far, 2, /^coin: Unknown command "frobnicate" \(see coin --help\)$/);
  assertOneLineError(close, 2, /^coin: Unknown command "sing"; did you mean "sign"\?/);
  assertOneLineError(help, 2, /Unknown command "keygn"; did you mean "keygen"\?/);
  assertOneLineError(option, 2, /^coin: Unknown option "--frob"; a command comes first/);
});

Deno.test("a flag of one command is an error on another", async () => {
  assertOneLineError(
    await runCoin(["pubkey", "--amount", "5"]),
    2,
    /Unknown flag --amount for "coin pubkey"/,
  );
});

Deno.test("a coin process prints and exits as runCoin reports, and reads COIN_DEBUG from its environment", async () => {
  await using dir = await makeTempDir();
  const cases: [string[], Record<string, string>][] = [
    [["--version"], {}],
    [["frobnicate"], {}],
    [["pubkey", "--key", `${dir.path}/missing.key`], {}],
    [["pubkey", "--key", `${dir.path}/missing.key`], { COIN_DEBUG: "1" }],
  ];
  const [processes, inProcess] = await Promise.all([
    Promise.all(cases.map(([args, env]) => runCoinProcess(args, { env }))),
    Promise.all(cases.map(([args, env]) => runCoin(args, { env }))),
  ]);
  for (const [i, run] of processes.entries()) {
    const context = `coin ${cases[i]![0].join(" ")}\nexit ${run.code}\n${run.stdout}\n${run.stderr}`;
    if (i < 3) assert.deepEqual(run, inProcess[i], context);
  }
  assert.equal(processes[0]!.code, 0);
  assertOneLineError(processes[1]!, 2, /^coin: Unknown command "frobnicate"/);
  assertOneLineError(processes[2]!, 1, /^coin: Cannot read key file ".*missing\.key": it does not exist$/);
  // With COIN_DEBUG=1 the same first line, then the detail (its stack differs in and out of process).
  const debug = processes[3]!;
  assert.equal(debug.code, 1, debug.stderr);
  assert.equal(linesOf(debug.stderr)[0], linesOf(processes[2]!.stderr)[0]);
  assert.equal(linesOf(inProcess[3]!.stderr)[0], linesOf(processes[2]!.stderr)[0]);
  for (const run of [debug, inProcess[3]!]) assert.match(run.stderr, /^\s+at /m, run.stderr);
});
