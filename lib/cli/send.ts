// `coin send` and `coin submit`: put a transfer to the network.

import { toHex } from "../_bytes.ts";
import { encodeAddress } from "../address.ts";
import { candidates, type Response, withAnyServer } from "../client.ts";
import { CoinError, UsageError } from "../errors.ts";
import { readKeyFile } from "../keys.ts";
import { passphraseFrom } from "./key.ts";
import { readNetwork } from "../peers.ts";
import { decodeTx, signTx, TX_CODES } from "../tx.ts";
import { Kind } from "../wire.ts";
import { type Command, hostPort, type Io, parseFlags, required } from "./_command.ts";
import { transferArgs } from "./sign.ts";
import { readTxArgument } from "./tx.ts";
import { submitAndReport } from "./_submit.ts";

export const send: Command = {
  name: "send",
  summary: "Sign a transfer and submit it to the network",
  help:
    `Usage: coin send --peers FILE --key FILE --to ACCOUNT --amount N [--wait] [--yes] [--server HOST:PORT]

Signs a transfer of N coins from FILE's account to ACCOUNT and submits it. Any server accepts it
(the current alpha buffers it, others relay it there). Prints the transaction id; exit 0 once
accepted (not final yet). With --wait it follows the transfer to its outcome:
  exit 0    committed: in an agreed database (prints the frame)
  exit 1    certainly not committed (refused, or its time window closed without it): safe to pay again
  exit 4    outcome unknown: it may still commit; do not pay again
  exit 130  interrupted (Ctrl-C)

Options:
  --peers FILE         the network file
  --key FILE           the payer's key file; an encrypted one's passphrase is asked for on the
                       terminal, or read from COIN_KEY_PASSPHRASE
  --to ACCOUNT         the payee: an address (coin1…), 64 hex digits, or a name from coin contacts
  --amount N           whole number of coins
  --wait               wait for the definite outcome
  --yes                do not ask before paying an account that holds no coins (on a terminal,
                       send asks: a new account is often a mistyped one)
  --server HOST:PORT   talk to this server only (default: the current alpha first, then the others)

Example:
  coin send --peers peers.json --key alice.key --to coin1xq5… --amount 25 --wait`,
  async run(args, io) {
    const { values } = parseFlags("send", args, {
      peers: { type: "string" },
      key: { type: "string" },
      to: { type: "string" },
      amount: { type: "string" },
      wait: { type: "boolean" },
      yes: { type: "boolean" },
      server: { type: "string" },
    });
    if (values.help) return io.out(this.help);
    const peersFile = required("send", "peers", values.peers);
    const keyFile = required("send", "key", values.key);
    const { to, contact, amount } = await transferArgs(values, { command: "send", env: io.env });
    if (contact !== undefined) io.err(`${contact} is ${encodeAddress(to)} (from the contacts)`);
    const server = values.server === undefined ? undefined : hostPort("send", "server", values.server);
    const network = await readNetwork(peersFile);
    const keyPair = await readKeyFile(keyFile, { passphrase: passphraseFrom(io) });
    if (toHex(to) === keyPair.publicHex) {
      throw new CoinError(`Refused: accounts_must_be_different: ${TX_CODES.accounts_must_be_different}`, {
        code: "accounts_must_be_different",
      });
    }
    if (!values.yes) await confirmNewPayee(candidates(network, server), to, contact, amount, io);
    const tx = decodeTx(await signTx(keyPair, { to, amount, timestampMs: Date.now() }))!;
    await submitAndReport(candidates(network, server), tx, {
      wait: values.wait ?? false,
      timing: network.timing,
      io,
      peersFile,
    });
  },
};

/** How long to wait for a server's answer about the payee's balance before sending without asking. */
export const PAYEE_CHECK_TIMEOUT_MS = 2_000;

/**
 * On a terminal, asks before paying an account that holds no coins: a new account, or a mistyped one (a
 * valid address of nobody's key). Zero balances are not stored (protocol.md 5.2), so an account that was
 * emptied looks the same. Without a terminal, or when no server answers, nothing is asked.
 */
async function confirmNewPayee(
  servers: { name: string; host: string; port: number }[],
  to: Uint8Array,
  contact: string | undefined,
  amount: number,
  io: Io,
): Promise<void> {
  if (io.ask === undefined) return;
  let answer: Response;
  try {
    answer = await withAnyServer(servers, (conn) => conn.request(Kind.balance, to, PAYEE_CHECK_TIMEOUT_MS));
  } catch {
    return; // the submission names the servers that did not answer
  }
  if (answer.ok !== true || answer.balance !== 0) return;
  const who = contact === undefined ? encodeAddress(to) : `${contact} (${encodeAddress(to)})`;
  const reply = await io.ask(
    `${who} holds no coins: a new account, or a mistyped one? Send it ${amount} coins anyway? [y/N] `,
  );
  if (reply === undefined) return;
  if (!/^y(es)?$/i.test(reply.trim())) {
    throw new CoinError(`Not sent: paying ${who} was not confirmed`);
  }
}

export const submit: Command = {
  name: "submit",
  summary: "Submit a transfer made by coin sign",
  help: `Usage: coin submit --peers FILE [--wait] [--server HOST:PORT] HEX|-

Submits a signed transfer (288 hex digits from "coin sign"; "-" reads standard input). Prints
the transaction id; exit 0 once accepted. --wait as for "coin send" (exit 0 committed, 1 certainly
not, 4 unknown, 130 interrupted). A transfer the network already holds is followed, not refused.

Example:
  coin sign --key alice.key --to coin1xq5… --amount 25 | coin submit --peers peers.json --wait -`,
  async run(args, io) {
    const { values, positionals } = parseFlags("submit", args, {
      peers: { type: "string" },
      wait: { type: "boolean" },
      server: { type: "string" },
    }, { positionals: 1 });
    if (values.help) return io.out(this.help);
    if (values.peers === undefined && values.server === undefined) {
      throw new UsageError(`Missing --peers for "coin submit" (see coin submit --help)`);
    }
    const server = values.server === undefined ? undefined : hostPort("submit", "server", values.server);
    const tx = await readTxArgument("submit", positionals[0], io);
    const network = values.peers === undefined ? undefined : await readNetwork(values.peers);
    if (values.wait && network === undefined) {
      throw new UsageError(`--wait needs --peers (for the frame timing)`);
    }
    await submitAndReport(candidates(network, server), tx, {
      wait: values.wait ?? false,
      timing: network?.timing,
      io,
      ...(values.peers === undefined ? {} : { peersFile: values.peers }),
    });
  },
};
