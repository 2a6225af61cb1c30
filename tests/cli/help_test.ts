// Help and usage errors of every command: help on stdout with exit 0, one stderr line with exit 2 for a
// wrong command or flag (with the closest valid name), never a stack trace, and --verbose accepted anywhere.

import assert from "node:assert/strict";
import { COMMANDS } from "../../lib/cli/commands.ts";
import { assertOneLineError, type CoinRun, linesOf, repoPath, runCoin } from "../_helpers.ts";

/** Runs `coin` in this process once per argument list. */
async function runAll(argLists: string[][]): Promise<CoinRun[]> {
  return await Promise.all(argLists.map((args) => runCoin(args)));
}

function assertHelpOf(run: CoinRun, command: (typeof COMMANDS)[number], how: string): void {
  const context = `${how}: exit ${run.code}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`;
  assert.equal(run.code, 0, context);
  assert.equal(run.stderr, "", context);
  assert.equal(run.stdout, command.help + "\n", context);
}

/** The long flags a help text documents: in its usage line and its Options section. */
function documentedFlags(help: string): string[] {
  const usage = help.split("\n\n")[0]!;
  const options = help.split("\nOptions:\n")[1]?.split("\n\n")[0] ?? "";
  const flags = [
    ...usage.matchAll(/--([a-z][a-z-]*)/g),
    ...options.matchAll(/^\s+(?:-\w, )?--([a-z][a-z-]*)/gm),
  ].map((m) => m[1]!);
  return [...new Set(flags)];
}

Deno.test("every command's help has a usage line and an example of that command", () => {
  for (const command of COMMANDS) {
    assert.match(command.help, new RegExp(`^Usage:\\s+coin ${command.name}( |$)`, "m"), command.name);
    const example = command.help.split(/\nExamples?:\n/)[1];
    assert.ok(example !== undefined, `${command.name}'s help has an Example section`);
    assert.match(
      example,
      new RegExp(`^ {2}(.* \\| )?coin ${command.name}\\b`, "m"),
      `${command.name}'s example runs it`,
    );
    assert.ok(command.summary.length > 0 && !command.summary.includes("\n"), command.name);
  }
});

Deno.test("coin CMD --help, coin CMD -h and coin help CMD print CMD's help to stdout for every command", async () => {
  const ways = (name: string) => [
    [name, "--help"],
    [name, "-h"],
    ["help", name],
    [name, "--help", "--verbose"],
    ["--verbose", name, "-h"],
    ["help", "--verbose", name],
  ];
  const runs = await runAll(COMMANDS.flatMap((c) => ways(c.name)));
  COMMANDS.forEach((command, i) => {
    ways(command.name).forEach((args, j) => {
      const run = runs[i * ways(command.name).length + j]!;
      assertHelpOf(run, command, `coin ${args.join(" ")}`);
      assert.match(run.stdout, /Usage:/);
      assert.match(run.stdout, /Example/);
    });
  });
});

Deno.test("coin --help lists every command with its summary; coin --version prints deno.json's version", async () => {
  const { version } = JSON.parse(await Deno.readTextFile(repoPath("deno.json"))) as { version: string };
  const [help, versionRun, verboseVersion, verboseHelp] = await runAll([
    ["--help"],
    ["--version"],
    ["--verbose", "--version"],
    ["--verbose"],
  ]);
  assert.equal(help!.code, 0);
  assert.equal(help!.stderr, "");
  for (const command of COMMANDS) {
    assert.ok(
      linesOf(help!.stdout).some((l) =>
        new RegExp(`^ {2}${command.name} +${RegExp.escape(command.summary)}$`).test(l)
      ),
      `coin --help lists ${command.name}\n${help!.stdout}`,
    );
  }
  assert.match(help!.stdout, /^Usage: coin <command>/m);
  assert.match(help!.stdout, /^Examples:$/m);
  for (const run of [versionRun!, verboseVersion!]) {
    assert.deepEqual({ code: run.code, stdout: run.stdout, stderr: run.stderr }, {
      code: 0,
      stdout: `coin ${version}\n`,
      stderr: "",
    });
  }
  assert.equal(verboseHelp!.stdout, help!.stdout, "coin --verbose alone is coin --help");
});

Deno.test("an unknown command or flag is one stderr line naming it and the closest valid name, exit 2", async () => {
  const cases: [string[], RegExp][] = [
    [["devnte"], /^coin: Unknown command "devnte"; did you mean "devnet"\?/],
    [["serv", "--peers", "p.json"], /^coin: Unknown command "serv"; did you mean "serve"\?/],
    [["statsu"], /^coin: Unknown command "statsu"; did you mean "status"\?/],
    [["help", "blance"], /^coin: Unknown command "blance"; did you mean "balance"\?/],
    [["--verbose", "sedn"], /^coin: Unknown command "sedn"; did you mean "send"\?/],
    [["xyzzyplugh"], /^coin: Unknown command "xyzzyplugh" \(see coin --help\)$/],
    [["send", "--amout", "5"], /^coin: Unknown flag --amout for "coin send"; did you mean --amount\?/],
    [["serve", "--http-hots", "::"], /did you mean --http-host\?/],
    [["serve", "--log-fromat", "json"], /did you mean --log-format\?/],
    [["devnet", "--nodemo"], /did you mean --no-demo\?/],
    [["status", "--jsn"], /did you mean --json\?/],
    [
      ["keygen", "--out=a.key", "--forse"],
      /^coin: Unknown flag --forse for "coin keygen"; did you mean --force\?/,
    ],
    [
      ["balance", "--zzzzzzzzzz"],
      /^coin: Unknown flag --zzzzzzzzzz for "coin balance" \(see coin balance --help\)$/,
    ],
  ];
  // Every command's parser: a misspelt --help.
  for (const command of COMMANDS) {
    cases.push([
      [command.name, "--hepl"],
      new RegExp(`^coin: Unknown flag --hepl for "coin ${command.name}"; did you mean --help\\?`),
    ]);
  }
  const runs = await runAll(cases.map(([args]) => args));
  runs.forEach((run, i) => assertOneLineError(run, 2, cases[i]![1]));
});

Deno.test("a flag one command documents is an error on a command that does not have it", async () => {
  const flags = new Map(COMMANDS.map((c) => [c.name, new Set(documentedFlags(c.help))]));
  const all = new Set([...flags.values()].flatMap((s) => [...s]));
  const cases: [string, string][] = [];
  for (const command of COMMANDS) {
    const own = flags.get(command.name)!;
    assert.ok(own.size > 0, `${command.name} documents its flags`);
    for (const flag of all) {
      if (!own.has(flag) && flag !== "help" && flag !== "verbose") cases.push([command.name, flag]);
    }
  }
  assert.ok(cases.length > COMMANDS.length, "every command lacks some other command's flag");
  // One foreign flag per command and a few more keep the run short: every command's parser is covered.
  const picked = COMMANDS.map((c) => cases.find(([name]) => name === c.name)!).filter(Boolean);
  picked.push(["keygen", "peers"], ["pubkey", "amount"], ["serve", "to"], ["devnet", "key"], [
    "status",
    "http",
  ]);
  const runs = await runAll(picked.map(([name, flag]) => [name, `--${flag}=x`]));
  runs.forEach((run, i) => {
    const [name, flag] = picked[i]!;
    assertOneLineError(run, 2, new RegExp(`^coin: Unknown flag --${flag} for "coin ${name}"`));
  });
});

Deno.test("every flag a command's help documents is a flag that command knows", async () => {
  const cases = COMMANDS.flatMap((c) => documentedFlags(c.help).map((flag) => [c.name, flag] as const));
  assert.ok(cases.length >= 30, `found the documented flags (${cases.length})`);
  // `--flag=1 --help`: a known flag gives the help, or a value error for a boolean; never "Unknown flag".
  const runs = await runAll(cases.map(([name, flag]) => [name, `--${flag}=1`, "--help"]));
  runs.forEach((run, i) => {
    const [name, flag] = cases[i]!;
    const context = `coin ${name} --${flag}=1 --help\n${run.stderr}`;
    assert.doesNotMatch(run.stderr, /Unknown flag/, context);
    assert.ok(run.code === 0 || run.code === 2, context);
    assert.doesNotMatch(run.stderr, /^\s+at /m, context);
  });
});

Deno.test("user errors never print a stack trace; --verbose and COIN_DEBUG=1 add the detail", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "coin_help_" });
  try {
    await Deno.writeTextFile(`${tmp}/bad.json`, "{");
    const argLists = [
      ["pubkey", "--key", `${tmp}/missing.key`],
      ["status", "--peers", `${tmp}/bad.json`],
      ["balance", "00", "--peers", `${tmp}/bad.json`],
      ["send", "--peers", `${tmp}/bad.json`, "--key", "k", "--to", "zz", "--amount", "1"],
      ["serve", "--peers", `${tmp}/bad.json`, "--key", "k", "--http", "abc"],
      ["serve", "--peers", `${tmp}/missing.json`, "--key", `${tmp}/missing.key`],
      ["archive", "ls", "--dir", `${tmp}/missing`],
      ["archive", "frob"],
      ["keygen", "-x"],
      ["tx", "show", "zz"],
      ["sign", "--key", `${tmp}/missing.key`, "--to", "00", "--amount", "1"],
      ["submit"],
      ["bench", "--servers", "abc"],
    ];
    const plain = await runAll(argLists);
    const verbose = await runAll(argLists.map((args) => [...args, "--verbose"]));
    const leading = await runAll(argLists.map((args) => ["--verbose", ...args]));
    const debug = await Promise.all(argLists.map((args) => runCoin(args, { env: { COIN_DEBUG: "1" } })));
    plain.forEach((run, i) => {
      const context = `coin ${argLists[i]!.join(" ")}\nexit ${run.code}\n${run.stdout}\n${run.stderr}`;
      assert.ok(run.code === 1 || run.code === 2, context);
      const lines = linesOf(run.stderr);
      assert.equal(lines.length, 1, context);
      assert.match(lines[0]!, /^coin: \S/, context);
      assert.doesNotMatch(run.stderr, /^\s+at /m, context);
      for (const other of [verbose[i]!, leading[i]!, debug[i]!]) {
        assert.equal(other.code, run.code, `${context}\nwith --verbose: ${other.stderr}`);
        assert.equal(linesOf(other.stderr)[0], lines[0], "the same first line, maybe more detail after it");
        // A failed operation gets its detail (where it failed); a usage error needs none.
        if (run.code === 1) {
          assert.match(other.stderr, /^\s+at /m, `${context}\nwith --verbose: ${other.stderr}`);
        } else assert.equal(other.stderr, run.stderr);
      }
    });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
