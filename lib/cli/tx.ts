// `coin tx show`: decode a signed transfer and check what can be checked without a server.

import { candidates, Kind, type Response, withAnyServer } from "../client.ts";
import { CoinError, InterruptedError, OutcomeUnknownError, UsageError } from "../errors.ts";
import { readNetwork } from "../peers.ts";
import { checkTxStateless, decodeTxHex, TX_BYTES, TX_CODES, txToJson } from "../tx.ts";
import { type Command, hostPort, type Io, parseFlags, required } from "./_command.ts";
import { STATUS_TIMEOUT_MS, statusQuery } from "./_submit.ts";

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
  summary: "Show a signed transfer, or ask the servers whether it committed",
  help: `Usage: coin tx show HEX|- [--json]
       coin tx status --peers FILE (HEX|- | ID --timestamp MS) [--server HOST:PORT] [--json]

show    prints the transfer's fields (accounts as address and hex), its id (SHA-256 of its first 80 bytes) and whether it is well
        formed and its signature verifies. Exits 1 when it does not. Balances and timestamps are
        judged by the servers, not here.
status  asks the servers of peers.json, in turn, what became of a transfer: the signed transfer
        (HEX, or "-" for standard input), or its id with its timestamp (both printed by "coin send").
        Exit 0: committed (prints the frame). Exit 1: certainly never committed (safe to pay again).
        Exit 4: not known yet (pending, or no server could tell): do not pay again yet.

Examples:
  coin sign --key alice.key --to coin1xq5… --amount 25 | coin tx show -
  coin tx status --peers peers.json 9f2c... --timestamp 1795560288123`,
  async run(args, io) {
    const { values, positionals } = parseFlags("tx", args, {
      json: { type: "boolean" },
      peers: { type: "string" },
      timestamp: { type: "string" },
      server: { type: "string" },
    }, { positionals: 2 });
    if (values.help) return io.out(this.help);
    if (positionals[0] === "status") return await txStatus(values, positionals[1], io);
    if (positionals[0] !== "show") {
      throw new UsageError(
        positionals[0] === undefined
          ? `Missing subcommand for "coin tx": expected show or status (see coin tx --help)`
          : `Unknown subcommand "${
            positionals[0]
          }" for "coin tx": expected show or status (see coin tx --help)`,
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
      io.out(`payer      ${json.payerAddress} (${json.payer})`);
      io.out(`payee      ${json.payeeAddress} (${json.payee})`);
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

/** `coin tx status`: the first decisive answer (committed or never) of the servers, asked in turn. */
async function txStatus(
  values: { peers?: string; timestamp?: string; server?: string; json?: boolean },
  arg: string | undefined,
  io: Io,
): Promise<void> {
  const peersFile = required("tx status", "peers", values.peers);
  let id: string;
  let timestampMs: number;
  if (arg !== undefined && /^[0-9a-fA-F]{64}$/.test(arg.trim())) {
    if (values.timestamp === undefined || !/^[0-9]{1,16}$/.test(values.timestamp)) {
      throw new UsageError(
        `"coin tx status ID" needs --timestamp MS, the transfer's timestamp in unix milliseconds (coin send prints it)`,
      );
    }
    id = arg.trim().toLowerCase();
    timestampMs = Number(values.timestamp);
  } else {
    const t = await readTxArgument("tx status", arg, io);
    id = t.id;
    timestampMs = t.timestampMs;
  }
  const server = values.server === undefined ? undefined : hostPort("tx status", "server", values.server);
  const servers = candidates(await readNetwork(peersFile), server);
  const query = statusQuery({ id, timestampMs });
  let answer: Response | undefined;
  const unreachable: string[] = [];
  for (const s of servers) {
    if (io.signal.aborted) throw new InterruptedError("Interrupted before a server answered");
    try {
      answer = await withAnyServer([s], (conn) => conn.request(Kind.txStatus, query, STATUS_TIMEOUT_MS));
    } catch (err) {
      if (!(err instanceof CoinError)) throw err;
      unreachable.push(s.name);
      continue;
    }
    if (answer.state === "committed" || answer.state === "never") break;
  }
  const state = answer === undefined ? "unknown" : String(answer.state);
  if (values.json) {
    io.out(JSON.stringify({
      id,
      state,
      frame: state === "committed" ? Number(answer!.frame) : null,
      code: state === "never" ? String(answer!.code) : null,
      server: answer?.server ?? null,
    }));
  }
  const short = `${id.slice(0, 16)}…`;
  if (state === "committed") {
    if (!values.json) io.out(`committed in frame ${answer!.frame} (${answer!.server} says so)`);
    return;
  }
  if (state === "never") {
    const code = String(answer!.code);
    throw new CoinError(
      `Not committed: transfer ${short} was not applied in any frame of its time window` +
        (code === "not_included" ? "" : ` (last result: ${code})`) + `; safe to pay again`,
      { code },
    );
  }
  throw new OutcomeUnknownError(
    answer === undefined
      ? `Outcome unknown: no server answered (${unreachable.join(", ")}); do not pay again yet`
      : `Not known yet: transfer ${short} is pending (its window ends with frame ${answer.lastFrame}); ` +
        `ask again later, and do not pay again yet`,
  );
}
