// `coin archive ls|show|verify` on a directory of certified commits (tests/_commits.ts): text and JSON
// output, certificates checked against peers.json by verify, and one-line refusals for corrupt entries,
// forged certificates, a missing peers.json and missing directories.

import { encodeAddress } from "../../lib/address.ts";
import { fromHex } from "../../lib/_bytes.ts";
import assert from "node:assert/strict";
import { archiveName } from "../../lib/archive.ts";
import { encodeRecent } from "../../lib/certificate.ts";
import { Ledger } from "../../lib/ledger.ts";
import {
  type CommitFile,
  makeChain,
  makeCommit,
  serverSeed,
  signingNetwork,
  signPrecommit,
  withState,
} from "../_commits.ts";
import {
  assertOneLineError,
  linesOf,
  makeTempDir,
  runCoin,
  runCoinProcess,
  type TempDir,
} from "../_helpers.ts";
import { signerOf } from "../../lib/keys.ts";

const A = "11".repeat(32);
const B = "22".repeat(32);
const C = "33".repeat(32);
/** Three servers (quorum 2), supply 150. */
const NET = signingNetwork({ genesis: { [A]: 100, [B]: 50 } });
const F0 = NET.network.startFrame;

/** Three certified databases, one a minute, with peers.json beside the archive; newest first in `entries`. */
async function setUp(): Promise<
  { dir: TempDir; archive: string; peers: string; entries: { file: CommitFile; ledger: Ledger }[] }
> {
  const dir = await makeTempDir();
  const archive = `${dir.path}/archive`;
  const peers = `${dir.path}/peers.json`;
  await Deno.mkdir(archive);
  await Deno.writeTextFile(peers, JSON.stringify(NET.json, null, 2));
  const ledgers = [
    Ledger.fromBalances([[A, 100], [B, 50]]),
    Ledger.fromBalances([[A, 90], [B, 55], [C, 5]]),
    Ledger.fromBalances([[B, 150]]),
  ];
  const files = makeChain(NET, ledgers, { step: 60 });
  for (const file of files) await Deno.writeFile(`${archive}/${file.name}`, file.bytes);
  const entries = files.map((file, i) => ({ file, ledger: ledgers[i]! }));
  return { dir, archive, peers, entries: entries.reverse() };
}

function isoOf(name: string): string {
  return new Date(Number(name.split(".")[1])).toISOString();
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

Deno.test("coin archive ls lists entries newest first with their frame, as text and as JSON", async () => {
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
  assert.match(lines[0]!, /^HASH +FRAME +TIME \(UTC\) +ACCOUNTS +SUPPLY +BYTES +FILE$/);
  entries.forEach(({ file, ledger }, i) => {
    assert.equal(
      lines[i + 1],
      [
        file.hash.slice(0, 16),
        String(file.commit.frame).padEnd(10),
        isoOf(file.name).padEnd(24),
        String(ledger.count).padStart(8),
        "150".padStart(6),
        String(file.bytes.length).padStart(5),
        file.name,
      ].join("  "),
    );
  });

  assert.equal(json.code, 0, json.stderr);
  assert.equal(linesOf(json.stdout).length, 1);
  assert.deepEqual(
    JSON.parse(json.stdout),
    entries.map(({ file, ledger }) => ({
      hash: file.hash,
      frame: file.commit.frame,
      ms: file.ms,
      time: isoOf(file.name),
      accounts: ledger.count,
      supply: 150,
      bytes: file.bytes.length,
      file: file.name,
      ok: true,
    })),
  );
  assert.deepEqual(entries.map((e) => e.file.commit.frame), [F0 + 120, F0 + 60, F0]);
  assert.equal(defaultDir.code, 0, defaultDir.stderr);
  assert.equal(defaultDir.stdout, json.stdout, "--dir defaults to ./archive");
});

Deno.test("coin archive ls shows frames a quarter of a second apart in order, by ms", async () => {
  await using dir = await makeTempDir();
  const fast = signingNetwork({ genesis: { [A]: 150 }, interval: 0.25 });
  const files = Array.from({ length: 6 }, (_, i) => makeCommit(fast, { frame: fast.network.startFrame + i }));
  for (const f of files) await Deno.writeFile(`${dir.path}/${f.name}`, f.bytes);
  const run = await runCoin(["archive", "ls", "--dir", dir.path, "--json"]);
  assert.equal(run.code, 0, run.stderr);
  const rows = JSON.parse(run.stdout) as { frame: number; ms: number; time: string }[];
  assert.deepEqual(rows.map((r) => r.frame), files.map((f) => f.commit.frame).reverse());
  assert.deepEqual(rows.map((r) => r.ms), files.map((f) => f.ms).reverse());
  assert.equal(new Set(rows.map((r) => r.time)).size, 6, "each frame its own time, to the ms");
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

/** The address of the account with hex id `hex`. */
const addressOf = (hex: string) => encodeAddress(fromHex(hex, 32)!);

Deno.test("coin archive show prints the frame, certificate and balances of the entry a prefix names", async () => {
  const { dir, archive, entries } = await setUp();
  await using _ = dir;
  const middle = entries[1]!.file;
  const prefix = middle.hash.slice(0, 8);
  const [text, json, upper] = await Promise.all([
    runCoin(["archive", "show", prefix, "--dir", archive]),
    runCoin(["archive", "show", prefix, "--dir", archive, "--json"]),
    runCoin(["archive", "show", middle.hash.toUpperCase(), "--dir", archive, "--json"]),
  ]);
  assert.equal(text.code, 0, text.stderr);
  assert.deepEqual(linesOf(text.stdout), [
    `${middle.name}: frame ${F0 + 60}, 3 accounts, total supply 150, certified by 2 servers, ` +
    `frame start ${isoOf(middle.name)}`,
    `${addressOf(A)}  90`,
    `${addressOf(B)}  55`,
    `${addressOf(C)}  5`,
  ]);
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual(JSON.parse(json.stdout), {
    hash: middle.hash,
    frame: F0 + 60,
    ms: middle.ms,
    time: isoOf(middle.name),
    file: middle.name,
    accounts: 3,
    supply: 150,
    balances: [
      { account: A, address: addressOf(A), balance: 90 },
      { account: B, address: addressOf(B), balance: 55 },
      { account: C, address: addressOf(C), balance: 5 },
    ],
  });
  assert.equal(upper.stdout, json.stdout);
});

Deno.test("coin archive show refuses unknown, ambiguous and malformed prefixes", async () => {
  const { dir, archive, entries } = await setUp();
  await using _ = dir;
  // Add entries until two hashes share a first hex digit, so that digit is an ambiguous prefix.
  const firsts = new Map(entries.map((e) => [e.file.hash[0]!, e.file.hash]));
  let ambiguous: string | undefined;
  for (let n = 1; ambiguous === undefined; n++) {
    const file = makeCommit(NET, {
      frame: F0 + 1000 + n,
      state: { ledger: Ledger.fromBalances([[A, n], [C, 150 - n]]), recent: [] },
    });
    const seen = firsts.get(file.hash[0]!);
    if (seen !== undefined && seen !== file.hash) {
      ambiguous = file.hash[0]!;
      await Deno.writeFile(`${archive}/${file.name}`, file.bytes);
    }
    firsts.set(file.hash[0]!, file.hash);
  }
  const unknown = entries.some((e) => e.file.hash.startsWith("ffff")) ? "eeee" : "ffff";
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

Deno.test("coin archive verify --peers passes a sound archive", async () => {
  const { dir, archive, peers, entries } = await setUp();
  await using _ = dir;
  const [sound, defaultPeers] = await Promise.all([
    runCoin(["archive", "verify", "--dir", archive, "--peers", peers]),
    // --peers defaults to ./peers.json in the cwd: a process of its own in `dir`.
    runCoinProcess(["archive", "verify", "--dir", "archive"], { cwd: dir.path }),
  ]);
  assert.equal(sound.code, 0, sound.stderr);
  assert.equal(sound.stderr, "");
  assert.deepEqual(linesOf(sound.stdout), [
    ...entries.map((e) => `ok       ${e.file.name}`),
    `All 3 archive entries in ${archive} verify: content, digest and certificate (2 of 3 servers)`,
  ]);
  assert.equal(defaultPeers.code, 0, defaultPeers.stderr);
  assert.deepEqual(linesOf(defaultPeers.stdout), [
    ...entries.map((e) => `ok       ${e.file.name}`),
    `All 3 archive entries in archive verify: content, digest and certificate (2 of 3 servers)`,
  ]);
});

Deno.test("coin archive verify exits 1 naming a corrupted file; ls and show see it too", async () => {
  const { dir, archive, peers, entries } = await setUp();
  await using _ = dir;
  const { file } = entries[1]!;
  const bad = file.name;
  // The last byte of the last balance (C's 5 becomes 4), just before the recent ids.
  const bytes = file.bytes.slice();
  bytes[bytes.length - encodeRecent(file.commit.state.recent).length - 1]! ^= 0x01;
  await Deno.writeFile(`${archive}/${bad}`, bytes);
  const [verify, ls, show] = await Promise.all([
    runCoin(["archive", "verify", "--dir", archive, "--peers", peers]),
    runCoin(["archive", "ls", "--dir", archive, "--json"]),
    runCoin(["archive", "show", bad.slice(0, 12), "--dir", archive]),
  ]);
  assertOneLineError(
    verify,
    1,
    new RegExp(`^coin: 1 of 3 archive entries in ${escape(archive)} do not verify$`),
    { stdout: true },
  );
  assert.deepEqual(linesOf(verify.stdout), [
    `ok       ${entries[0]!.file.name}`,
    `CORRUPT  ${bad}: its content does not hash to its name`,
    `ok       ${entries[2]!.file.name}`,
  ]);

  assert.equal(ls.code, 0, ls.stderr);
  const row = (JSON.parse(ls.stdout) as Record<string, unknown>[]).find((r) => r.file === bad)!;
  assert.deepEqual({ ok: row.ok, frame: row.frame, accounts: row.accounts, supply: row.supply }, {
    ok: false,
    frame: null,
    accounts: null,
    supply: null,
  });

  assertOneLineError(
    show,
    1,
    new RegExp(
      `^coin: Archive entry "${escape(bad)}" is corrupt: content hashes to [0-9a-f]{16}…, not to its name$`,
    ),
  );
});

Deno.test("coin archive verify --json prints one object, entry by entry, and still exits 1 when one does not verify", async () => {
  const { dir, archive, peers, entries } = await setUp();
  await using _ = dir;
  const sound = await runCoin(["archive", "verify", "--dir", archive, "--peers", peers, "--json"]);
  assert.equal(sound.code, 0, sound.stderr);
  assert.equal(sound.stderr, "");
  assert.deepEqual(JSON.parse(sound.stdout), {
    dir: archive,
    network: NET.network.id,
    quorum: 2,
    servers: 3,
    checked: 3,
    bad: 0,
    entries: entries.map((e) => ({
      file: e.file.name,
      hash: e.file.name.split(".")[0],
      ok: true,
      problem: null,
    })),
  });
  const bad = entries[1]!.file.name;
  const bytes = entries[1]!.file.bytes.slice();
  bytes[bytes.length - encodeRecent(entries[1]!.file.commit.state.recent).length - 1]! ^= 0x01;
  await Deno.writeFile(`${archive}/${bad}`, bytes);
  const broken = await runCoin(["archive", "verify", "--dir", archive, "--peers", peers, "--json"]);
  assertOneLineError(
    broken,
    1,
    new RegExp(`^coin: 1 of 3 archive entries in ${escape(archive)} do not verify$`),
    { stdout: true },
  );
  const report = JSON.parse(broken.stdout);
  assert.equal(report.bad, 1);
  assert.deepEqual(report.entries[1], {
    file: bad,
    hash: bad.split(".")[0],
    ok: false,
    problem: "its content does not hash to its name",
  });
});

Deno.test("coin archive verify --peers reports forged certificates and exits 1", async () => {
  const { dir, archive, peers, entries } = await setUp();
  await using _ = dir;
  const newest = entries[0]!.file;
  const frame = newest.commit.frame + 60;
  const state = { ledger: Ledger.fromBalances([[A, 1], [B, 149]]), recent: [] };
  const prevDigest = newest.commit.cert.digest;
  const honest = makeCommit(NET, { frame, state, prevDigest });
  // What a quorum would sign for the frame after: a signature of s1 that verifies, one of an outsider.
  const { cert } = makeCommit(NET, { frame: frame + 60, state, prevDigest }).commit;
  const next = { slot: { height: cert.height, round: cert.round, prevDigest }, digest: cert.digest };
  const outsider = signerOf({ seed: serverSeed(222) });
  const forged = [
    {
      file: makeCommit(NET, { frame, state, prevDigest, signers: [2] }),
      problem: "certificate holds 1 signatures, fewer than the quorum 2",
    },
    {
      file: makeCommit(NET, {
        frame: frame + 60,
        state,
        prevDigest,
        signatures: [
          { signer: 0, signature: signPrecommit(NET.signers[0]!, NET.network.id, next.slot, next.digest) },
          { signer: 2, signature: signPrecommit(outsider, NET.network.id, next.slot, next.digest) },
        ],
      }),
      problem: "certificate signature of s3 does not verify",
    },
    {
      file: withState(NET.network, { ...honest, commit: { ...honest.commit, frame: frame + 120 } }, {
        ledger: Ledger.fromBalances([[A, 149], [B, 1]]),
        recent: [],
      }),
      problem: "its state does not hash to the digest its certificate signs",
    },
  ];
  for (const { file } of forged) await Deno.writeFile(`${archive}/${file.name}`, file.bytes);
  const verify = await runCoin(["archive", "verify", "--dir", archive, "--peers", peers]);
  assertOneLineError(
    verify,
    1,
    new RegExp(`^coin: 3 of 6 archive entries in ${escape(archive)} do not verify$`),
    { stdout: true },
  );
  assert.deepEqual(linesOf(verify.stdout), [
    ...forged.reverse().map(({ file, problem }) => `CORRUPT  ${file.name}: ${problem}`),
    ...entries.map((e) => `ok       ${e.file.name}`),
  ]);
});

Deno.test("coin archive verify refuses another network's archive, entry by entry", async () => {
  const { dir, archive, entries } = await setUp();
  await using _ = dir;
  // The same genesis and servers' addresses, other keys: another network id.
  const other = signingNetwork({ genesis: { [A]: 100, [B]: 50 }, firstSeed: 150 });
  const otherPeers = `${dir.path}/other.json`;
  await Deno.writeTextFile(otherPeers, JSON.stringify(other.json));
  const verify = await runCoin(["archive", "verify", "--dir", archive, "--peers", otherPeers]);
  assertOneLineError(
    verify,
    1,
    new RegExp(`^coin: 3 of 3 archive entries in ${escape(archive)} do not verify$`),
    { stdout: true },
  );
  assert.deepEqual(
    linesOf(verify.stdout),
    entries.map((e) =>
      `CORRUPT  ${e.file.name}: it belongs to another network (its network id differs from peers.json's)`
    ),
  );
});

Deno.test("coin archive verify refuses with one line when peers.json is missing or invalid", async () => {
  const { dir, archive, peers } = await setUp();
  await using _ = dir;
  await Deno.remove(peers);
  await Deno.writeTextFile(`${dir.path}/nostart.json`, JSON.stringify({ ...NET.json, start: undefined }));
  const [missingDefault, missingGiven, invalid] = await Promise.all([
    runCoinProcess(["archive", "verify", "--dir", "archive"], { cwd: dir.path }),
    runCoin(["archive", "verify", "--dir", archive, "--peers", `${dir.path}/nothere.json`]),
    runCoin(["archive", "verify", "--dir", archive, "--peers", `${dir.path}/nostart.json`]),
  ]);
  assertOneLineError(
    missingDefault,
    1,
    /^coin: Cannot read network file "\.\/peers\.json": it does not exist$/,
  );
  assertOneLineError(
    missingGiven,
    1,
    new RegExp(`^coin: Cannot read network file "${escape(dir.path)}/nothere\\.json": it does not exist$`),
  );
  assertOneLineError(
    invalid,
    1,
    /^coin: Invalid network file ".*nostart\.json": "start" must be the unix time/,
  );
  // ls and show read no peers.json.
  const ls = await runCoin(["archive", "ls", "--dir", archive]);
  assert.equal(ls.code, 0, ls.stderr);
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
    [
      ["verify", "--peers"],
      2,
      /^coin: Option '--peers <value>' argument missing \(see coin archive --help\)$/,
    ],
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

Deno.test("coin archive verify names a misnamed file: content not hashing to its name", async () => {
  const { dir, archive, peers, entries } = await setUp();
  await using _ = dir;
  // A sound commit copied under another entry's hash.
  const { file } = entries[0]!;
  const misnamed = archiveName(entries[1]!.file.hash, file.ms + 60_000);
  await Deno.writeFile(`${archive}/${misnamed}`, file.bytes);
  const verify = await runCoin(["archive", "verify", "--dir", archive, "--peers", peers]);
  assert.equal(verify.code, 1, verify.stderr);
  assert.equal(linesOf(verify.stdout)[0], `CORRUPT  ${misnamed}: its content does not hash to its name`);
});
