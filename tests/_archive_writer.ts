// Test helper run as a subprocess by archive_test.ts: writes large archive entries in a loop until it is
// killed, so the test can check that a killed writer never leaves a partial file under a final name.
// Usage: deno run -A tests/_archive_writer.ts <archive dir> <round>

import { writeArchiveEntry } from "../lib/archive.ts";
import { DB_HEADER_BYTES, DB_MAGIC, DB_RECORD_BYTES, DB_VERSION, Ledger } from "../lib/ledger.ts";

/** 150,000 accounts: entries of 6 MB, large enough that a kill often lands mid-write. */
const ACCOUNTS = 150_000;

/** A valid packed database whose balances depend on `variant`, so every entry has its own hash. */
function bigLedger(variant: number): Ledger {
  const bytes = new Uint8Array(DB_HEADER_BYTES + ACCOUNTS * DB_RECORD_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, DB_MAGIC);
  view.setUint16(4, DB_VERSION);
  view.setBigUint64(8, BigInt(ACCOUNTS));
  for (let i = 0; i < ACCOUNTS; i++) {
    const off = DB_HEADER_BYTES + i * DB_RECORD_BYTES;
    view.setUint32(off, i); // ascending account ids
    view.setUint32(off + 36, 1 + ((i * 2654435761 + variant) >>> 8));
  }
  return Ledger.fromPacked(bytes);
}

const [dir, round] = Deno.args;
if (dir === undefined || round === undefined) throw new Error("Usage: _archive_writer.ts <dir> <round>");
const encoder = new TextEncoder();
await Deno.stdout.write(encoder.encode("started\n"));
for (let i = 0;; i++) {
  const variant = Number(round) * 1_000_000 + i;
  const name = await writeArchiveEntry(dir, bigLedger(variant), 1_700_000_000 + variant, { keep: 3 });
  await Deno.stdout.write(encoder.encode(`wrote ${name}\n`));
}
