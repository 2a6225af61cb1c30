// `coin archive ls|show|verify` on a directory written with lib/archive.ts: text and JSON output, and
// one-line refusals for corrupt entries and missing directories.

import assert from "node:assert/strict";
import { writeArchiveEntry } from "../../lib/archive.ts";
import { Ledger } from "../../lib/ledger.ts";
import {
  assertOneLineError,
  linesOf,
  makeTempDir,
  runCoin,
  runCoinProcess,
  type TempDir,
} from "../_helpers.ts";

const A = "11".repeat(32);
const B = "22".repeat(32);
const C = "33".repeat(32);

/** Three agreed databases, one a minute; newest first in `entries`. */
async function setUp(): Promise<
  { dir: TempDir; archive: string; entries: { name: string; ledger: Ledger }[] }
> {
  const dir = await makeTempDir();
  const archive = `${dir.path}/archive`;
  await Deno.mkdir(archive);
  const ledgers = [
    Ledger.fromBalances([[A, 100], [B, 50]]),
    Ledger.fromBalances([[A, 90], [B, 55], [C, 5]]),
    Ledger.fromBalances([[B, 150]]),
  ];
  const entries = [];
  for (const [i, ledger] of ledgers.entries()) {
    entries.push({ name: await writeArchiveEntry(archive, ledger, 1_700_000_000 + 60 * i), ledger });
  }
  return { dir, archive, entries: entries.reverse() };
}

function isoOf(name: string): string {
  return new Date(Number(name.split(".")[1]) * 1000).toISOString();
}

Deno.test("coin archive ls lists entries newest first, as text and as JSON", async () => {
  const { dir, archive, entries } = await setUp();
  await using _ = dir;
  const [text, json, defaultDir] = await Promise.all([
    runCoin(["archive", "ls", "--dir", archive]),
    runCoin(["archive", "ls", "--dir", archive, "--json"]),
    // The default ./archive is relative to the cwd: a process of its own in `dir`.
    runCoinProcess(["archive", "ls", "--json"], { cwd: dir.path }),
  ]);
  assert.equal(text.code, 0, text.stderr);
  assert.equal(text.stderr, "");
  const lines = linesOf(text.stdout);
  assert.equal(lines.length, 1 + entries.length);
  assert.match(lines[0]!, /^HASH +TIME \(UTC\) +SECONDS +ACCOUNTS +SUPPLY +BYTES +FILE$/);
  entries.forEach((e, i) => {
    assert.ok(lines[i + 1]!.startsWith(e.ledger.hash.slice(0, 16) + "  "), lines[i + 1]);
    assert.ok(lines[i + 1]!.endsWith(`  ${e.name}`), lines[i + 1]);
  });

  assert.equal(json.code, 0, json.stderr);
  assert.equal(linesOf(json.stdout).length, 1);
  const rows = JSON.parse(json.stdout);
  assert.deepEqual(
    rows,
    entries.map((e) => ({
      hash: e.ledger.hash,
      seconds: Number(e.name.split(".")[1]),
      time: isoOf(e.name),
      accounts: e.ledger.count,
      supply: 150,
      bytes: e.ledger.bytes.length,
      file: e.name,
      ok: true,
    })),
  );
  assert.equal(defaultDir.stdout, json.stdout, "--dir defaults to ./archive");
});

Deno.test("coin archive ls reports an empty directory", async () => {
  await using dir = await makeTempDir();
  const [text, json] = await Promise.all([
    runCoin(["archive", "ls", "--dir", dir.path]),
    runCoin(["archive", "ls", "--dir", dir.path, "--json"]),
  ]);
  assert.equal(text.code, 0, text.stderr);
  assert.equal(text.stdout, `No archive entries in ${dir.path}\n`);
  assert.equal(json.stdout, "[]\n");
});

Deno.test("coin archive show prints the balances of the entry a hash prefix names", async () => {
  const { dir, archive, entries } = await setUp();
  await using _ = dir;
  const middle = entries[1]!;
  const prefix = middle.ledger.hash.slice(0, 8);
  const [text, json, upper] = await Promise.all([
    runCoin(["archive", "show", prefix, "--dir", archive]),
    runCoin(["archive", "show", prefix, "--dir", archive, "--json"]),
    runCoin(["archive", "show", middle.ledger.hash.toUpperCase(), "--dir", archive, "--json"]),
  ]);
  assert.equal(text.code, 0, text.stderr);
  assert.deepEqual(linesOf(text.stdout), [
    `${middle.name}: 3 accounts, total supply 150, agreed ${isoOf(middle.name)}`,
    `${A}  90`,
    `${B}  55`,
    `${C}  5`,
  ]);
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual(JSON.parse(json.stdout), {
    hash: middle.ledger.hash,
    seconds: Number(middle.name.split(".")[1]),
    time: isoOf(middle.name),
    file: middle.name,
    accounts: 3,
    supply: 150,
    balances: [{ account: A, balance: 90 }, { account: B, balance: 55 }, { account: C, balance: 5 }],
  });
  assert.equal(upper.stdout, json.stdout);
});

Deno.test("coin archive show refuses unknown, ambiguous and malformed prefixes", async () => {
  const { dir, archive, entries } = await setUp();
  await using _ = dir;
  // Add databases until two hashes share a first hex digit, so that digit is an ambiguous prefix.
  const firsts = new Map(entries.map((e) => [e.ledger.hash[0]!, e.ledger.hash]));
  let ambiguous: string | undefined;
  for (let n = 1; ambiguous === undefined; n++) {
    const ledger = Ledger.fromBalances([[A, n], [C, 150 - n]]);
    const seen = firsts.get(ledger.hash[0]!);
    if (seen !== undefined && seen !== ledger.hash) {
      ambiguous = ledger.hash[0]!;
      await writeArchiveEntry(archive, ledger, 1_600_000_000 + n);
    }
    firsts.set(ledger.hash[0]!, ledger.hash);
  }
  const unknown = entries.some((e) => e.ledger.hash.startsWith("ffff")) ? "eeee" : "ffff";
  const cases: [string[], number, RegExp][] = [
    [["show", unknown], 1, new RegExp(`^coin: No archive entry in .* has a hash starting with ${unknown}$`)],
    [
      ["show", ambiguous],
      1,
      new RegExp(`^coin: Hash prefix ${ambiguous} is ambiguous in .*: it matches 2 databases$`),
    ],
    [["show", "xyz"], 2, /^coin: Invalid HASH_PREFIX "xyz" for "coin archive show": expected hex digits$/],
    [["show"], 2, /^coin: Missing HASH_PREFIX for "coin archive show"$/],
  ];
  const runs = await Promise.all(cases.map(([args]) => runCoin(["archive", ...args, "--dir", archive])));
  runs.forEach((run, i) => assertOneLineError(run, cases[i]![1], cases[i]![2]));
});

Deno.test("coin archive verify passes a sound archive and exits 1 naming a corrupted file", async () => {
  const { dir, archive, entries } = await setUp();
  await using _ = dir;
  const sound = await runCoin(["archive", "verify", "--dir", archive]);
  assert.equal(sound.code, 0, sound.stderr);
  assert.equal(sound.stderr, "");
  assert.deepEqual(linesOf(sound.stdout), [
    ...entries.map((e) => `ok       ${e.name}`),
    `All 3 archive entries in ${archive} match their names`,
  ]);

  const bad = entries[1]!.name;
  const bytes = await Deno.readFile(`${archive}/${bad}`);
  bytes[bytes.length - 1]! ^= 0x01;
  await Deno.writeFile(`${archive}/${bad}`, bytes);
  const [verify, ls, show] = await Promise.all([
    runCoin(["archive", "verify", "--dir", archive]),
    runCoin(["archive", "ls", "--dir", archive, "--json"]),
    runCoin(["archive", "show", bad.slice(0, 12), "--dir", archive]),
  ]);
  assertOneLineError(
    verify,
    1,
    new RegExp(`^coin: 1 of 3 archive entries in ${archive} do not match their names$`),
    {
      stdout: true,
    },
  );
  const lines = linesOf(verify.stdout);
  assert.deepEqual(lines.filter((l) => l.startsWith("CORRUPT")).length, 1);
  assert.match(
    lines[1]!,
    new RegExp(`^CORRUPT  ${bad.replace(".", "\\.")}: content hashes to [0-9a-f]{16}…, not to its name$`),
  );
  assert.equal(lines[0], `ok       ${entries[0]!.name}`);
  assert.equal(lines[2], `ok       ${entries[2]!.name}`);

  assert.equal(ls.code, 0, ls.stderr);
  const row = (JSON.parse(ls.stdout) as { file: string; ok: boolean; accounts: unknown; supply: unknown }[])
    .find((r) => r.file === bad)!;
  assert.deepEqual({ ok: row.ok, accounts: row.accounts, supply: row.supply }, {
    ok: false,
    accounts: null,
    supply: null,
  });

  assertOneLineError(
    show,
    1,
    new RegExp(`^coin: Archive entry "${bad.replace(".", "\\.")}" is corrupt: content hashes to`),
  );
});

Deno.test("coin archive refuses a missing or wrong --dir and bad usage with one line", async () => {
  await using dir = await makeTempDir();
  await Deno.writeTextFile(`${dir.path}/file`, "");
  const cases: [string[], number, RegExp][] = [
    [["ls", "--dir", "nothere"], 1, /^coin: Cannot read archive directory "nothere": it does not exist$/],
    [["verify", "--dir", "nothere"], 1, /^coin: Cannot read archive directory "nothere": it does not exist$/],
    [
      ["show", "ab", "--dir", "nothere"],
      1,
      /^coin: Cannot read archive directory "nothere": it does not exist$/,
    ],
    [["ls"], 1, /^coin: Cannot read archive directory "\.\/archive": it does not exist$/],
    [["verify", "--dir", "file"], 1, /^coin: Cannot read archive directory "file": it is not a directory$/],
    [["ls", "--dir"], 2, /^coin: Option '--dir <value>' argument missing \(see coin archive --help\)$/],
    [[], 2, /^coin: Missing subcommand for "coin archive": expected ls, show or verify/],
    [["lst"], 2, /^coin: Unknown subcommand "lst" for "coin archive"/],
    [["ls", "extra"], 2, /^coin: Unexpected argument "extra" for "coin archive ls"$/],
    [["ls", "--dri", "x"], 2, /^coin: Unknown flag --dri for "coin archive"; did you mean --dir\?/],
  ];
  // The refused directories (exit 1) are relative to the cwd, and quoted as given: each runs as a process
  // of its own in `dir`. The usage errors (exit 2) touch no file and run in this process.
  const runs = await Promise.all(
    cases.map(([args, code]) =>
      code === 1 ? runCoinProcess(["archive", ...args], { cwd: dir.path }) : runCoin(["archive", ...args])
    ),
  );
  runs.forEach((run, i) => assertOneLineError(run, cases[i]![1], cases[i]![2]));
});
