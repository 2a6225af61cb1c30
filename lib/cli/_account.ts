// Reading an account from the command line: an address (coin1…), 64 hex digits, or a contact's name. A
// mistyped address is refused here, before anything is signed or sent.

import { AddressError, decodeAddress, encodeAddress, looksLikeAddress } from "../address.ts";
import { fromHex } from "../_bytes.ts";
import { type Contacts, contactsPath, nameOf, readContacts } from "../contacts.ts";
import { UsageError } from "../errors.ts";
import { closest, type Env } from "./_command.ts";

/** An account named on the command line, and the contact name it was given by, if any. */
export interface AccountArg {
  readonly key: Uint8Array;
  readonly contact?: string;
}

/**
 * The account written as `text` for `what` (e.g. `--to`) of `coin command`; a name is looked up in the
 * contacts file that `env` points to. UsageError for a mistyped address, saying what is wrong with it, and
 * for a name that is not in the contacts.
 */
export async function accountArg(
  text: string,
  options: { command: string; what: string; env: Env },
): Promise<AccountArg> {
  const { command, what } = options;
  const invalid = (problem: string) =>
    new UsageError(`Invalid ${what} "${text}" for "coin ${command}": ${problem}`);
  if (looksLikeAddress(text)) {
    try {
      return { key: decodeAddress(text) };
    } catch (err) {
      if (err instanceof AddressError) throw invalid(err.message);
      throw err;
    }
  }
  if (text.length === 64) {
    const key = fromHex(text, 32);
    if (key !== undefined) return { key };
    throw invalid("expected an address (coin1…), 64 hex digits or a contact name");
  }
  if (!/^[a-z][a-z0-9_-]{0,31}$/.test(text)) {
    throw invalid("expected an address (coin1…), 64 hex digits or a contact name");
  }
  const contacts = await readContacts(contactsPath(options.env));
  const key = contacts.get(text);
  if (key !== undefined) return { key, contact: text };
  const hint = closest(text, [...contacts.keys()]);
  throw invalid(
    `not an address (coin1…), 64 hex digits or a saved contact` +
      (hint ? `; did you mean ${hint}?` : ` ("coin contacts add ${text} ADDRESS" saves one)`),
  );
}

/** How an account is shown: its address, after its contact name when it has one. */
export function showAccount(key: Uint8Array, contacts?: Contacts): string {
  const name = contacts === undefined ? undefined : nameOf(contacts, key);
  return name === undefined ? encodeAddress(key) : `${name} (${encodeAddress(key)})`;
}
