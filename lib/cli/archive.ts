// `coin archive ls|show|verify`: read a server's archive of agreed databases.

import { type ArchiveEntry, checkEntryBytes, listArchive } from "../archive.ts";
import { CoinError, UsageError } from "../errors.ts";
import { Ledger } from "../ledger.ts";
import { type Command, parseFlags } from "./_command.ts";

const SUBCOMMANDS = ["ls", "show", "verify"];

function isoOf(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

async function readLedger(dir: string, entry: ArchiveEntry): Promise<{ ledger?: Ledger; problem?: string }> {
  const bytes = await Deno.readFile(`${dir}/${entry.name}`);
  const problem = checkEntryBytes(entry, bytes);
  return problem === undefined ? { ledger: Ledger.fromPacked(bytes) } : { problem };
}

export const archive: Command = {
  name: "archive",
  summary: "List, show and verify archived databases",
  help: `Usage:
  coin archive ls [--dir DIR] [--json]
  coin archive show HASH_PREFIX [--dir DIR] [--json]
  coin archive verify [--dir DIR]

The archive holds the databases the servers agreed on, one file each named HASH.UNIX_SECONDS.
  ls      lists entries newest first: hash, time, accounts, total supply, bytes, file name
  show    lists the balances of the newest entry whose hash starts with HASH_PREFIX
  verify  recomputes every entry's hash and names each file whose content does not match its name;
          exits 1 if any does not

Options:
  --dir DIR   the archive directory (default ./archive)
  --json      machine-readable output (see README, "JSON output")

Examples:
  coin archive ls --dir server1/archive
  coin archive show 3fa9 --json
  coin archive verify --dir server1/archive`,
  async run(args, io) {
    const { values, positionals } = parseFlags("archive", args, {
      dir: { type: "string" },
      json: { type: "boolean" },
    }, { positionals: 2 });
    if (values.help) return io.out(this.help);
    const sub = positionals[0];
    if (sub === undefined || !SUBCOMMANDS.includes(sub)) {
      throw new UsageError(
        (sub === undefined ? `Missing subcommand` : `Unknown subcommand "${sub}"`) +
          ` for "coin archive": expected ls, show or verify (see coin archive --help)`,
      );
    }
    if (sub !== "show" && positionals.length > 1) {
      throw new UsageError(`Unexpected argument "${positionals[1]}" for "coin archive ${sub}"`);
    }
    const dir = values.dir ?? "./archive";
    const entries = await listArchive(dir);

    if (sub === "ls") {
      const rows = [];
      for (const e of entries) {
        const { ledger, problem } = await readLedger(dir, e);
        rows.push({
          hash: e.hash,
          seconds: e.seconds,
          time: isoOf(e.seconds),
          accounts: ledger?.count ?? null,
          supply: ledger?.supply ?? null,
          bytes: e.sizeBytes,
          file: e.name,
          ok: problem === undefined,
        });
      }
      if (values.json) return io.out(JSON.stringify(rows));
      if (rows.length === 0) return io.out(`No archive entries in ${dir}`);
      io.out(
        ["HASH            ", "TIME (UTC)              ", "SECONDS   ", "ACCOUNTS", "SUPPLY", "BYTES", "FILE"]
          .join("  "),
      );
      for (const r of rows) {
        io.out([
          r.hash.slice(0, 16),
          r.time.padEnd(24),
          String(r.seconds).padEnd(10),
          String(r.accounts ?? "corrupt").padStart(8),
          String(r.supply ?? "-").padStart(6),
          String(r.bytes).padStart(5),
          r.file,
        ].join("  "));
      }
      return;
    }

    if (sub === "show") {
      const prefix = positionals[1];
      if (prefix === undefined) throw new UsageError(`Missing HASH_PREFIX for "coin archive show"`);
      if (!/^[0-9a-fA-F]{1,64}$/.test(prefix)) {
        throw new UsageError(`Invalid HASH_PREFIX "${prefix}" for "coin archive show": expected hex digits`);
      }
      const matches = entries.filter((e) => e.hash.startsWith(prefix.toLowerCase()));
      if (matches.length === 0) {
        throw new CoinError(`No archive entry in ${dir} has a hash starting with ${prefix}`);
      }
      const hashes = new Set(matches.map((e) => e.hash));
      if (hashes.size > 1) {
        throw new CoinError(
          `Hash prefix ${prefix} is ambiguous in ${dir}: it matches ${hashes.size} databases`,
        );
      }
      const entry = matches[0]!;
      const { ledger, problem } = await readLedger(dir, entry);
      if (ledger === undefined) throw new CoinError(`Archive entry "${entry.name}" is corrupt: ${problem}`);
      const balances = [...ledger.entries()].map(([account, balance]) => ({ account, balance }));
      if (values.json) {
        return io.out(JSON.stringify({
          hash: entry.hash,
          seconds: entry.seconds,
          time: isoOf(entry.seconds),
          file: entry.name,
          accounts: ledger.count,
          supply: ledger.supply,
          balances,
        }));
      }
      io.out(
        `${entry.name}: ${ledger.count} accounts, total supply ${ledger.supply}, agreed ${
          isoOf(entry.seconds)
        }`,
      );
      for (const b of balances) io.out(`${b.account}  ${b.balance}`);
      return;
    }

    let bad = 0;
    let done = 0;
    for (const e of entries) {
      // A large archive takes a while: a progress line on a terminal, nothing when piped.
      if (io.errIsTerminal && entries.length > 1) io.progress?.(`verifying ${++done}/${entries.length}…`);
      const { problem } = await readLedger(dir, e);
      io.progress?.("");
      if (problem === undefined) {
        io.out(`ok       ${e.name}`);
      } else {
        bad++;
        io.out(`CORRUPT  ${e.name}: ${problem}`);
      }
    }
    if (bad > 0) {
      throw new CoinError(`${bad} of ${entries.length} archive entries in ${dir} do not match their names`);
    }
    io.out(`All ${entries.length} archive entries in ${dir} match their names`);
  },
};
