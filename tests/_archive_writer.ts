// Test helper run as a subprocess by archive_test.ts: writes large certified archive entries in a loop
// until it is killed, as a server does (lib/server.ts: writeFileAtomic, then pruneArchive), so the test
// can check that a killed writer never leaves a partial file under a final name.
// Usage: deno run -A tests/_archive_writer.ts <archive dir> <round>

import { writeFileAtomic } from "../lib/_files.ts";
import { pruneArchive } from "../lib/archive.ts";
import { DB_HEADER_BYTES, DB_MAGIC, DB_RECORD_BYTES, DB_VERSION, Ledger } from "../lib/ledger.ts";
import { makeCommit, type SigningNetwork, signingNetwork } from "./_commits.ts";

/** 150,000 accounts: entries of 6 MB, large enough that a kill often lands mid-write. */
const ACCOUNTS = 150_000;
/** The total supply of every database written (2^24 per account at most, so the last one stays positive). */
const SUPPLY = ACCOUNTS * 2 ** 24;
/** Entries the writer keeps, as `coin serve --archive-keep 3` would. */
export const WRITER_KEEP = 3;

/** The network the writer certifies its entries in: check them against it. */
export function writerNetwork(): SigningNetwork {
  return signingNetwork({ genesis: { ["ff".repeat(32)]: SUPPLY } });
}

/** A valid packed database whose balances depend on `variant` (same supply), so each has its own hash. */
export function bigLedger(variant: number): Ledger {
  const bytes = new Uint8Array(DB_HEADER_BYTES + ACCOUNTS * DB_RECORD_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, DB_MAGIC);
  view.setUint16(4, DB_VERSION);
  view.setBigUint64(8, BigInt(ACCOUNTS));
  let sum = 0;
  for (let i = 0; i < ACCOUNTS; i++) {
    const off = DB_HEADER_BYTES + i * DB_RECORD_BYTES;
    view.setUint32(off, i); // ascending account ids
    const balance = i === ACCOUNTS - 1 ? SUPPLY - sum : 1 + ((i * 2654435761 + variant) >>> 8);
    view.setBigUint64(off + 32, BigInt(balance));
    sum += balance;
  }
  return Ledger.fromPacked(bytes);
}

if (import.meta.main) {
  const [dir, round] = Deno.args;
  if (dir === undefined || round === undefined) throw new Error("Usage: _archive_writer.ts <dir> <round>");
  const net = writerNetwork();
  const encoder = new TextEncoder();
  await Deno.stdout.write(encoder.encode("started\n"));
  for (let i = 0;; i++) {
    const variant = Number(round) * 1_000_000 + i;
    const file = makeCommit(net, {
      frame: net.network.startFrame + variant,
      state: { ledger: bigLedger(variant), recent: [] },
    });
    await writeFileAtomic(`${dir}/${file.name}`, file.bytes, { overwrite: true });
    await pruneArchive(dir, WRITER_KEEP);
    await Deno.stdout.write(encoder.encode(`wrote ${file.name}\n`));
  }
}
