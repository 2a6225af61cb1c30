// `coin archive ls|show|verify`: read a server's archive of certified frames.

import { encodeAddress } from "../address.ts";
import { fromHex } from "../_bytes.ts";
import { type ArchiveEntry, listArchive, readEntryBytes } from "../archive.ts";
import type { Commit } from "../certificate.ts";
import { CoinError, UsageError } from "../errors.ts";
import type { Ledger } from "../ledger.ts";
import { readNetwork } from "../peers.ts";
import { checkEntry } from "../recovery.ts";
import { type Command, parseFlags } from "./_command.ts";

const SUBCOMMANDS = ["ls", "show", "verify"];

function isoOf(ms: number): string {
  return new Date(ms).toISOString();
}

/** An entry's bytes, or undefined when a running server pruned it since it was listed. */
async function readEntry(dir: string, entry: ArchiveEntry): Promise<Uint8Array | undefined> {
  try {
    return await Deno.readFile(`${dir}/${entry.name}`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

async function readLedger(
  dir: string,
  entry: ArchiveEntry,
): Promise<{ ledger?: Ledger; commit?: Commit; problem?: string; gone?: boolean }> {
  const bytes = await readEntry(dir, entry);
  if (bytes === undefined) return { gone: true };
  const read = readEntryBytes(entry, bytes);
  return "problem" in read
    ? { problem: read.problem }
    : { ledger: read.commit.state.ledger, commit: read.commit };
}

export const archive: Command = {
  name: "archive",
  summary: "List, show and verify archived databases",
  help: `Usage:
  coin archive ls [--dir DIR] [--json]
  coin archive show HASH_PREFIX [--dir DIR] [--json]
  coin archive verify [--dir DIR] [--peers FILE] [--json]

The archive holds the frames the servers certified, one file each named HASH.UNIX_MS (HASH is the
SHA-256 of the file; UNIX_MS the start of its frame). Each file holds the frame's complete state
(balances and recent transfer ids) and the certificate: the signatures of a quorum of servers.
  ls      lists entries newest first: hash, frame, time, accounts, total supply, bytes, file name
  show    lists the balances of the newest entry whose hash starts with HASH_PREFIX
  verify  checks every entry from its file alone: its content hash, its digest recomputed from the
          state, and its certificate's signatures against the servers of peers.json; names each
          file that fails and exits 1 if any does

Options:
  --dir DIR     the archive directory (default ./archive)
  --peers FILE  the network file the certificates are checked against (default ./peers.json)
  --json        machine-readable output (see README, "JSON output")

Examples:
  coin archive ls --dir server1/archive
  coin archive show 3fa9 --json
  coin archive verify --dir server1/archive`,
  async run(args, io) {
    const { values, positionals } = parseFlags("archive", args, {
      dir: { type: "string" },
      peers: { type: "string" },
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
        const { ledger, commit, problem, gone } = await readLedger(dir, e);
        if (gone) continue; // pruned by a running server since it was listed
        rows.push({
          hash: e.hash,
          frame: commit?.frame ?? null,
          ms: e.ms,
          time: isoOf(e.ms),
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
        ["HASH            ", "FRAME     ", "TIME (UTC)              ", "ACCOUNTS", "SUPPLY", "BYTES", "FILE"]
          .join("  "),
      );
      for (const r of rows) {
        io.out([
          r.hash.slice(0, 16),
          String(r.frame ?? "-").padEnd(10),
          r.time.padEnd(24),
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
      const { ledger, commit, problem } = await readLedger(dir, entry);
      if (ledger === undefined || commit === undefined) {
        throw new CoinError(`Archive entry "${entry.name}" is corrupt: ${problem}`);
      }
      const balances = [...ledger.entries()].map(([account, balance]) => ({
        account,
        address: encodeAddress(fromHex(account, 32)!),
        balance,
      }));
      if (values.json) {
        return io.out(JSON.stringify({
          hash: entry.hash,
          frame: commit.frame,
          ms: entry.ms,
          time: isoOf(entry.ms),
          file: entry.name,
          accounts: ledger.count,
          supply: ledger.supply,
          balances,
        }));
      }
      io.out(
        `${entry.name}: frame ${commit.frame}, ${ledger.count} accounts, total supply ${ledger.supply}, ` +
          `certified by ${commit.cert.signatures.length} servers, frame start ${isoOf(entry.ms)}`,
      );
      for (const b of balances) io.out(`${b.address}  ${b.balance}`);
      return;
    }

    const network = await readNetwork(values.peers ?? "./peers.json");
    let bad = 0;
    let done = 0;
    let checkedCount = 0;
    const rows: { file: string; hash: string; ok: boolean; problem: string | null }[] = [];
    for (const e of entries) {
      // A large archive takes a while: a progress line on a terminal, nothing when piped.
      if (io.errIsTerminal && entries.length > 1) io.progress?.(`verifying ${++done}/${entries.length}…`);
      const bytes = await readEntry(dir, e);
      if (bytes === undefined) continue; // pruned by a running server since it was listed
      checkedCount++;
      const checked = checkEntry(network, e, bytes);
      const problem = typeof checked === "string"
        ? checked
        : "foreign" in checked
        ? "it belongs to another network (its network id differs from peers.json's)"
        : undefined;
      io.progress?.("");
      if (problem !== undefined) bad++;
      rows.push({ file: e.name, hash: e.hash, ok: problem === undefined, problem: problem ?? null });
      if (values.json) continue;
      io.out(problem === undefined ? `ok       ${e.name}` : `CORRUPT  ${e.name}: ${problem}`);
    }
    if (values.json) {
      io.out(JSON.stringify({
        dir,
        network: network.id,
        quorum: network.quorum,
        servers: network.servers.length,
        checked: checkedCount,
        bad,
        entries: rows,
      }));
    }
    if (bad > 0) {
      throw new CoinError(`${bad} of ${checkedCount} archive entries in ${dir} do not verify`);
    }
    if (values.json) return;
    io.out(
      `All ${checkedCount} archive entries in ${dir} verify: content, digest and certificate (${network.quorum} ` +
        `of ${network.servers.length} servers)`,
    );
  },
};
