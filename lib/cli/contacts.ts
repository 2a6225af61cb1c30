// `coin contacts`: the local address book, so that `--to bob` pays the account saved as bob.

import { encodeAddress } from "../address.ts";
import { toHex } from "../_bytes.ts";
import { contactNameProblem, contactsPath, readContacts, writeContacts } from "../contacts.ts";
import { CoinError, UsageError } from "../errors.ts";
import { accountArg } from "./_account.ts";
import { closest, type Command, parseFlags } from "./_command.ts";

const ACTIONS = ["add", "list", "remove"];

export const contacts: Command = {
  name: "contacts",
  summary: "Name accounts in a local address book (add, list, remove)",
  help: `Usage: coin contacts add NAME ACCOUNT [--force]
       coin contacts list [--json]
       coin contacts remove NAME

A name saved here can be written wherever an account is (coin send --to NAME, coin balance NAME).
The book is a file of this computer only, never sent anywhere: $COIN_CONTACTS, else
$XDG_CONFIG_HOME/coin/contacts.json, else ~/.config/coin/contacts.json.

  add      saves ACCOUNT (an address coin1… or 64 hex digits; its checksum is checked) as NAME: a
           small letter, then up to 31 small letters, digits, - or _
  list     prints each name and address; --json prints {"name": "address", …}
  remove   forgets NAME

Options:
  --force   with add: replace the account already saved as NAME
  --json    with list: JSON

Example:
  coin contacts add bob coin1xq5…
  coin send --peers peers.json --key alice.key --to bob --amount 25`,
  async run(args, io) {
    const { values, positionals } = parseFlags("contacts", args, {
      force: { type: "boolean" },
      json: { type: "boolean" },
    }, { positionals: 3 });
    if (values.help) return io.out(this.help);
    const [action, name, account] = positionals;
    if (action === undefined) {
      throw new UsageError(
        `Missing what to do for "coin contacts": add, list or remove (see coin contacts --help)`,
      );
    }
    if (!ACTIONS.includes(action)) {
      const hint = closest(action, ACTIONS);
      throw new UsageError(
        `Unknown action "${action}" for "coin contacts"` + (hint ? `; did you mean ${hint}?` : "") +
          " (add, list or remove)",
      );
    }
    const expected = action === "add" ? 3 : action === "remove" ? 2 : 1;
    if (positionals.length > expected) {
      throw new UsageError(`Unexpected argument "${positionals[expected]}" for "coin contacts ${action}"`);
    }
    if (values.force && action !== "add") throw new UsageError(`--force is for "coin contacts add" only`);
    if (values.json && action !== "list") throw new UsageError(`--json is for "coin contacts list" only`);
    const path = contactsPath(io.env);
    const book = await readContacts(path);

    if (action === "list") {
      if (values.json) {
        return io.out(JSON.stringify(Object.fromEntries([...book].map(([n, k]) => [n, encodeAddress(k)]))));
      }
      if (book.size === 0) return io.err(`no contacts yet (add one with "coin contacts add NAME ADDRESS")`);
      const width = Math.max(...[...book.keys()].map((n) => n.length));
      for (const [n, k] of book) io.out(`${n.padEnd(width)}  ${encodeAddress(k)}`);
      return;
    }

    if (name === undefined) throw new UsageError(`Missing NAME for "coin contacts ${action}"`);
    if (action === "remove") {
      if (!book.delete(name)) {
        const hint = closest(name, [...book.keys()]);
        throw new CoinError(`No contact "${name}"` + (hint ? `; did you mean ${hint}?` : ""));
      }
      await writeContacts(path, book);
      return io.err(`removed ${name}`);
    }

    const problem = contactNameProblem(name);
    if (problem !== undefined) throw new UsageError(`Invalid contact name "${name}": ${problem}`);
    if (account === undefined) throw new UsageError(`Missing ACCOUNT for "coin contacts add ${name}"`);
    if (!/^coin1/i.test(account) && account.length !== 64) {
      // A name here would save whatever that name means now: ask for the account itself.
      throw new UsageError(
        `Invalid ACCOUNT "${account}" for "coin contacts add": expected an address (coin1…) or 64 hex digits`,
      );
    }
    const { key } = await accountArg(account, { command: "contacts add", what: "ACCOUNT", env: io.env });
    const before = book.get(name);
    if (before !== undefined && toHex(before) !== toHex(key) && !values.force) {
      throw new CoinError(
        `Contact "${name}" is already ${encodeAddress(before)}; use --force to replace it`,
      );
    }
    book.set(name, key);
    await writeContacts(path, book);
    io.out(`${name}  ${encodeAddress(key)}`);
    io.err(`saved in ${path}`);
  },
};
