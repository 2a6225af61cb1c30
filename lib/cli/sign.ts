// `coin sign`: a signed transfer as hex, made offline, for `coin submit` or `coin tx show`.

import { toHex } from "../_bytes.ts";
import { encodeAddress } from "../address.ts";
import { accountArg } from "./_account.ts";
import { CoinError, UsageError } from "../errors.ts";
import { readKeyFile } from "../keys.ts";
import { passphraseFrom } from "./key.ts";
import { MAX_AMOUNT, signTx, TX_CODES } from "../tx.ts";
import { type Command, type Env, parseFlags, required, wholeNumber } from "./_command.ts";

/**
 * Parses and checks `--to` (an address, 64 hex digits or a contact name) and `--amount` the same way for
 * `sign` and `send`.
 */
export async function transferArgs(
  values: { to?: string | undefined; amount?: string | undefined },
  options: { command: string; env: Env },
): Promise<{ to: Uint8Array; contact: string | undefined; amount: number }> {
  const { command, env } = options;
  const payee = await accountArg(required(command, "to", values.to), { command, what: "--to", env });
  const to = payee.key;
  const amount = wholeNumber(command, "amount", required(command, "amount", values.amount));
  if (amount <= 0) {
    throw new CoinError(`Refused: amount_must_be_positive: ${TX_CODES.amount_must_be_positive}`, {
      code: "amount_must_be_positive",
    });
  }
  if (typeof amount === "bigint" || amount > MAX_AMOUNT) {
    throw new CoinError(`Refused: amount_too_large: ${TX_CODES.amount_too_large}`, {
      code: "amount_too_large",
    });
  }
  return { to, contact: payee.contact, amount };
}

export const sign: Command = {
  name: "sign",
  summary: "Sign a transfer offline and print it as hex",
  help: `Usage: coin sign --key FILE --to ACCOUNT --amount N [--timestamp MS]

Signs a transfer of N coins from FILE's account to ACCOUNT and prints it as 288 hex digits
(144 bytes). Nothing is sent: pass the output to "coin submit" or "coin tx show".
Servers accept a transfer only within 5 seconds of its timestamp.

Options:
  --key FILE       the payer's key file; an encrypted one's passphrase is asked for on the
                   terminal, or read from COIN_KEY_PASSPHRASE
  --to ACCOUNT     the payee: an address (coin1…), 64 hex digits, or a name from coin contacts
  --amount N       whole number of coins, 1 to 2^53 - 1
  --timestamp MS   unix milliseconds (default: now)

Example:
  coin sign --key alice.key --to coin1xq5… --amount 25 | coin submit --peers peers.json -`,
  async run(args, io) {
    const { values } = parseFlags("sign", args, {
      key: { type: "string" },
      to: { type: "string" },
      amount: { type: "string" },
      timestamp: { type: "string" },
    });
    if (values.help) return io.out(this.help);
    const keyFile = required("sign", "key", values.key);
    const { to, contact, amount } = await transferArgs(values, { command: "sign", env: io.env });
    if (contact !== undefined) io.err(`${contact} is ${encodeAddress(to)} (from the contacts)`);
    let timestampMs = Date.now();
    if (values.timestamp !== undefined) {
      const t = wholeNumber("sign", "timestamp", values.timestamp);
      if (typeof t === "bigint" || t < 0) {
        throw new UsageError(`Invalid --timestamp "${values.timestamp}" for "coin sign": out of range`);
      }
      timestampMs = t;
    }
    const keyPair = await readKeyFile(keyFile, { passphrase: passphraseFrom(io) });
    if (toHex(to) === keyPair.publicHex) {
      throw new CoinError(`Refused: accounts_must_be_different: ${TX_CODES.accounts_must_be_different}`, {
        code: "accounts_must_be_different",
      });
    }
    io.out(toHex(await signTx(keyPair, { to, amount, timestampMs })));
  },
};
