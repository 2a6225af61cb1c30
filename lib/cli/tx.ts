// `coin tx show`: decode a signed transfer and check what can be checked without a server.

import { CoinError, UsageError } from "../errors.ts";
import { checkTxStateless, decodeTxHex, TX_BYTES, TX_CODES, txToJson } from "../tx.ts";
import { type Command, parseFlags } from "./_command.ts";

/** Reads a transfer argument: hex, or `-` for standard input. */
export async function readTxArgument(
  command: string,
  arg: string | undefined,
  io: { readStdin(): Promise<string> },
) {
  if (arg === undefined) {
    throw new UsageError(`Missing the transfer (hex, or - for stdin) for "coin ${command}"`);
  }
  const text = arg === "-" ? await io.readStdin() : arg;
  const tx = decodeTxHex(text);
  if (tx === undefined) {
    const n = text.trim().length;
    throw new CoinError(
      `Refused: malformed: expected ${TX_BYTES * 2} hex digits, got ${
        /^[0-9a-fA-F]*$/.test(text.trim()) ? `${n}` : "non-hex characters"
      }`,
      { code: "malformed" },
    );
  }
  return tx;
}

export const tx: Command = {
  name: "tx",
  summary: "Show a signed transfer's fields and check its signature",
  help: `Usage: coin tx show HEX|- [--json]

Prints the transfer's fields, its id (SHA-256 of its first 80 bytes) and whether it is well formed
and its signature verifies. Exits 1 when it does not. "-" reads the hex from standard input.
Balances and timestamps are judged by the servers, not here.

Example:
  coin sign --key alice.key --to 3b6a27bc... --amount 25 | coin tx show -`,
  async run(args, io) {
    const { values, positionals } = parseFlags("tx", args, { json: { type: "boolean" } }, { positionals: 2 });
    if (values.help) return io.out(this.help);
    if (positionals[0] !== "show") {
      throw new UsageError(
        positionals[0] === undefined
          ? `Missing subcommand for "coin tx": expected "show" (see coin tx --help)`
          : `Unknown subcommand "${positionals[0]}" for "coin tx": expected "show" (see coin tx --help)`,
      );
    }
    const t = await readTxArgument("tx show", positionals[1], io);
    const code = checkTxStateless(t);
    const json = { ...txToJson(t), valid: code === undefined, code: code ?? null };
    if (values.json) {
      io.out(JSON.stringify(json));
    } else {
      io.out(`id         ${json.id}`);
      io.out(`time       ${json.time ?? "(out of range)"} (${json.timestamp} ms)`);
      io.out(`amount     ${json.amount}`);
      io.out(`payer      ${json.payer}`);
      io.out(`payee      ${json.payee}`);
      io.out(`signature  ${json.signature}`);
      io.out(
        `check      ${
          code === undefined ? "ok: well formed, signature verifies" : `${code}: ${TX_CODES[code]}`
        }`,
      );
    }
    if (code !== undefined) throw new CoinError(`Refused: ${code}: ${TX_CODES[code]}`, { code });
  },
};
