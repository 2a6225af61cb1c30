// The local address book: names for accounts, usable wherever an account is written (`--to bob`). One JSON
// file per user, never shared with the network: `$COIN_CONTACTS`, else `$XDG_CONFIG_HOME/coin/contacts.json`,
// else `~/.config/coin/contacts.json`. Every account in it is stored as a checked address.

import { toHex } from "./_bytes.ts";
import { AddressError, encodeAddress, looksLikeAddress, parseAccountId } from "./address.ts";
import { writeFileAtomic } from "./_files.ts";
import { CoinError } from "./errors.ts";
import { JsonError, parseJson } from "./json.ts";

/** A contact name: a small letter, then up to 31 small letters, digits, `-` or `_`. */
export const CONTACT_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
/** The most contacts one file holds. */
export const MAX_CONTACTS = 10_000;
/** The largest contacts file read, in bytes (10,000 contacts take about 1 MB). */
export const MAX_CONTACTS_FILE_BYTES = 4 * 1024 * 1024;

const KIND = "coin-contacts";

/** Name to account id (32 bytes), in the order added. */
export type Contacts = Map<string, Uint8Array>;

/** Where the contacts file is, from the environment (see the module comment). */
export function contactsPath(env: { get(name: string): string | undefined }): string {
  const explicit = env.get("COIN_CONTACTS");
  if (explicit) return explicit;
  const config = env.get("XDG_CONFIG_HOME") || (env.get("HOME") ? `${env.get("HOME")}/.config` : undefined);
  if (config === undefined) {
    throw new CoinError("Cannot find the contacts file: set COIN_CONTACTS (or HOME) to say where it is");
  }
  return `${config}/coin/contacts.json`;
}

/** Why `name` cannot be a contact name, or undefined when it can. */
export function contactNameProblem(name: string): string | undefined {
  if (looksLikeAddress(name)) return `it starts like an address ("coin1")`;
  if (!CONTACT_NAME.test(name)) {
    return "a name is a small letter, then up to 31 small letters, digits, - or _";
  }
  return undefined;
}

/**
 * Refuses a contacts file that other users could change, as key files are refused when others can read them:
 * whoever can rewrite the book can turn `--to bob` into a payment to themselves.
 */
async function checkPrivate(path: string, info: Deno.FileInfo): Promise<void> {
  if (info.mode === null) return; // no Unix modes here (Windows)
  if ((info.mode & 0o022) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, "0");
    throw new CoinError(
      `Cannot use contacts file "${path}": other users can change it (mode ${mode}); run chmod 600 "${path}"`,
    );
  }
  const dir = dirOf(path);
  const dirMode = (await Deno.stat(dir)).mode;
  // A directory others can write to lets them replace the file, unless it is sticky (as /tmp is).
  if (dirMode !== null && (dirMode & 0o022) !== 0 && (dirMode & 0o1000) === 0) {
    const mode = (dirMode & 0o777).toString(8).padStart(4, "0");
    throw new CoinError(
      `Cannot use contacts file "${path}": other users can replace it (directory "${dir}" has mode ${mode})`,
    );
  }
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

/** Reads the contacts file at `path`; an absent file is an empty book. */
export async function readContacts(path: string): Promise<Contacts> {
  let text: string;
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) throw new CoinError(`Cannot read contacts file "${path}": it is not a file`);
    await checkPrivate(path, info);
    if (info.size > MAX_CONTACTS_FILE_BYTES) {
      throw new CoinError(
        `Cannot read contacts file "${path}": it is larger than ${MAX_CONTACTS_FILE_BYTES} bytes`,
      );
    }
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return new Map();
    if (err instanceof CoinError) throw err;
    throw new CoinError(`Cannot read contacts file "${path}": ${(err as Error).message}`, { cause: err });
  }
  const bad = (problem: string): never => {
    throw new CoinError(`Cannot read contacts file "${path}": ${problem}`);
  };
  let parsed: unknown;
  try {
    parsed = parseJson(text);
  } catch (err) {
    if (!(err instanceof JsonError)) throw err;
    return bad(`it is not valid JSON: ${err.message}`);
  }
  const obj = parsed as { kind?: unknown; version?: unknown; contacts?: unknown } | null;
  if (typeof obj !== "object" || obj === null || obj.kind !== KIND) {
    return bad("it is not a coin contacts file");
  }
  if (obj.version !== 1) return bad(`unsupported version ${JSON.stringify(obj.version)}`);
  if (typeof obj.contacts !== "object" || obj.contacts === null || Array.isArray(obj.contacts)) {
    return bad(`"contacts" must be an object of name to address`);
  }
  const contacts: Contacts = new Map();
  for (const [name, address] of Object.entries(obj.contacts as Record<string, unknown>)) {
    const problem = contactNameProblem(name);
    if (problem !== undefined) bad(`contact "${name}" is not a valid name: ${problem}`);
    if (typeof address !== "string") return bad(`contact "${name}" must be an address`);
    let key: Uint8Array | undefined;
    try {
      key = parseAccountId(address);
    } catch (err) {
      if (!(err instanceof AddressError)) throw err;
      return bad(`the address of "${name}" is not valid: ${err.message}`);
    }
    if (key === undefined) return bad(`the address of "${name}" is not an address`);
    contacts.set(name, key);
  }
  if (contacts.size > MAX_CONTACTS) bad(`it holds more than ${MAX_CONTACTS} contacts`);
  return contacts;
}

/**
 * Writes `contacts` to `path` (or to the file it links to) atomically, creating its directory when missing.
 */
export async function writeContacts(path: string, contacts: Contacts): Promise<void> {
  if (contacts.size > MAX_CONTACTS) {
    throw new CoinError(`The contacts file holds at most ${MAX_CONTACTS} contacts`);
  }
  const json = {
    kind: KIND,
    version: 1,
    contacts: Object.fromEntries([...contacts].map(([name, key]) => [name, encodeAddress(key)])),
  };
  // A book that is a symbolic link (into a synced folder, say) stays one: the file it points to is replaced.
  const target = await Deno.realPath(path).catch(() => path);
  await Deno.mkdir(dirOf(target), { recursive: true, mode: 0o700 }).catch(() => {}); // the write names what fails
  await writeFileAtomic(target, new TextEncoder().encode(JSON.stringify(json, null, 2) + "\n"), {
    mode: 0o600,
  });
}

/** The contact whose account is `key`, if any: to show a name next to an address. */
export function nameOf(contacts: Contacts, key: Uint8Array): string | undefined {
  const hex = toHex(key);
  for (const [name, k] of contacts) if (toHex(k) === hex) return name;
  return undefined;
}
