// `coin balance`: an account's agreed balance, asked of every server so disagreement shows.

import { encodeAddress } from "../address.ts";
import { candidates, type Response, ServerConnection } from "../client.ts";
import { CoinError, UsageError } from "../errors.ts";
import { readNetwork } from "../peers.ts";
import { Kind } from "../wire.ts";
import { accountArg } from "./_account.ts";
import { type Command, hostPort, parseFlags } from "./_command.ts";

/** Asks every target one request at once; unreachable ones answer with `error`. */
export async function askAll(
  targets: { name: string; host: string; port: number }[],
  kind: number,
  argument?: Uint8Array,
): Promise<{ name: string; host: string; port: number; response?: Response; error?: string }[]> {
  return await Promise.all(targets.map(async (t) => {
    try {
      const conn = await ServerConnection.open(t.host, t.port);
      try {
        return { ...t, response: await conn.request(kind, argument) };
      } finally {
        await conn.close();
      }
    } catch (err) {
      return { ...t, error: (err as Error).message };
    }
  }));
}

export const balance: Command = {
  name: "balance",
  summary: "Show an account's agreed balance",
  help: `Usage: coin balance ACCOUNT --peers FILE [--server HOST:PORT] [--json]

Asks the servers of peers.json (or only --server) for the balance of ACCOUNT (an address coin1…,
64 hex digits, or a name from coin contacts) in their last agreed database, and says so when they
disagree.
--json prints {"account", "address", "balance", "frame", "hash", "agree", "servers"}: "account" is
the 64-hex id; "agree" is true when every server that answered reports the same balance; "servers"
lists each answer.

Example:
  coin balance coin1xq5… --peers peers.json`,
  async run(args, io) {
    const { values, positionals } = parseFlags("balance", args, {
      peers: { type: "string" },
      server: { type: "string" },
      json: { type: "boolean" },
    }, { positionals: 1 });
    if (values.help) return io.out(this.help);
    const accountText = positionals[0];
    if (accountText === undefined) throw new UsageError(`Missing the account for "coin balance"`);
    const { key: account, contact } = await accountArg(accountText, {
      command: "balance",
      what: "account",
      env: io.env,
    });
    if (values.peers === undefined && values.server === undefined) {
      throw new UsageError(`Missing --peers for "coin balance" (see coin balance --help)`);
    }
    const server = values.server === undefined ? undefined : hostPort("balance", "server", values.server);
    const network = values.peers === undefined ? undefined : await readNetwork(values.peers);
    const answers = await askAll(candidates(network, server), Kind.balance, account);
    const good = answers.filter((a) => a.response?.ok === true);
    if (good.length === 0) {
      throw new CoinError(`No server answered: ${answers.map((a) => `${a.name} (${a.error})`).join("; ")}`);
    }
    // The freshest in-sync answer stands for the network.
    good.sort((a, b) =>
      Number(b.response!.inSync) - Number(a.response!.inSync) ||
      Number(b.response!.frame) - Number(a.response!.frame)
    );
    const best = good[0]!.response!;
    const agree = good.every((a) => a.response!.balance === best.balance);
    const servers = answers.map((a) => ({
      server: a.name,
      reachable: a.response !== undefined,
      balance: a.response?.balance ?? null,
      frame: a.response?.frame ?? null,
      hash: a.response?.hash ?? null,
      inSync: a.response?.inSync ?? null,
    }));
    if (values.json) {
      io.out(JSON.stringify({
        account: best.account,
        address: encodeAddress(account),
        balance: best.balance,
        frame: best.frame,
        hash: best.hash,
        agree,
        servers,
      }));
      return;
    }
    io.out(`${best.balance}`);
    io.err(
      `${contact === undefined ? "" : `${contact} `}${
        encodeAddress(account)
      } balance ${best.balance} in frame ${best.frame} ` +
        `(hash ${String(best.hash).slice(0, 12)}); ${good.length}/${answers.length} servers answered`,
    );
    if (!agree) {
      io.err(
        `servers disagree: ${servers.map((s) => `${s.server}=${s.balance ?? "unreachable"}`).join(", ")}`,
      );
    }
  },
};
