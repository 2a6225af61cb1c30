// In-process kernels behind a frame: signature checks, apply, hash, and message encoding.
// Run with `deno task bench`; figures go to BENCHMARKS.md.

import { loadKeys, signLoad, syntheticLedger } from "../lib/bench.ts";
import { sha256Hex } from "../lib/hash.ts";
import { verifySignature } from "../lib/keys.ts";
import { apply } from "../lib/ledger.ts";
import { TX_SIGNED_BYTES } from "../lib/tx.ts";
import { decodePayload, encodeCatchup, encodeVote } from "../lib/wire.ts";

const payers = await loadKeys(64);
const now = Date.now();
const txs = await signLoad(payers, 1000, now, now + 1);
const tx = txs[0]!;
const webKey = await crypto.subtle.importKey("raw", tx.payer as Uint8Array<ArrayBuffer>, "Ed25519", false, [
  "verify",
]);
const signed = tx.bytes.subarray(0, TX_SIGNED_BYTES) as Uint8Array<ArrayBuffer>;
const signature = tx.signature as Uint8Array<ArrayBuffer>;

Deno.bench("verify one signature, node:crypto", { group: "verify", baseline: true }, () => {
  verifySignature(tx.payer, signed, signature);
});
Deno.bench("verify one signature, WebCrypto", { group: "verify" }, async () => {
  await crypto.subtle.verify("Ed25519", webKey, signature, signed);
});
Deno.bench("verify 1000 signatures, WebCrypto all in flight", { group: "verify1000" }, async () => {
  await Promise.all(
    txs.map((t) => crypto.subtle.verify("Ed25519", webKey, t.signature as Uint8Array<ArrayBuffer>, signed)),
  );
});
Deno.bench("verify 1000 signatures, node:crypto", { group: "verify1000", baseline: true }, () => {
  for (const t of txs) verifySignature(t.payer, t.bytes.subarray(0, TX_SIGNED_BYTES), t.signature);
});

for (const accounts of [10_000, 1_000_000]) {
  const ledger = syntheticLedger(accounts, payers, 1_000_000_000);
  const state = { ledger, recent: [] };
  const context = { frame: 1, windowFromMs: now - 10_000, windowToMs: now + 10_000, recentFrames: 12 };
  const verified = new WeakSet(txs);
  Deno.bench(
    `apply 1000 transfers, ${accounts} accounts, signatures checked`,
    { group: `apply${accounts}` },
    () => {
      apply(state, txs, context);
    },
  );
  Deno.bench(`apply 1000 transfers, ${accounts} accounts, signatures already checked`, {
    group: `apply${accounts}`,
  }, () => {
    apply(state, txs, { ...context, verified });
  });
  Deno.bench(`pack+hash ${accounts} accounts (${(ledger.bytes.length / 1e6).toFixed(1)} MB)`, () => {
    sha256Hex(ledger.bytes);
  });
  Deno.bench(`hash ${accounts} accounts with crypto.subtle.digest`, async () => {
    await crypto.subtle.digest("SHA-256", ledger.bytes as Uint8Array<ArrayBuffer>);
  });
  const chunks = encodeCatchup(1, ledger.bytes, []);
  const joined = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) joined.set(c, off), off += c.length;
  Deno.bench(`decode a catch-up of ${accounts} accounts`, () => {
    decodePayload(joined);
  });
}

const buffer = new Uint8Array(txs.length * 144);
txs.forEach((t, i) => buffer.set(t.bytes, i * 144));
const hash = new Uint8Array(32);
const vote = encodeVote(1, hash, buffer);
Deno.bench("encode a vote with 1000 transfers", () => {
  encodeVote(1, hash, buffer);
});
Deno.bench("decode a vote with 1000 transfers", () => {
  decodePayload(vote);
});
