// `coin key encrypt|decrypt FILE`: convert a key file between a plain seed and one sealed with a
// passphrase, and where every command that takes --key gets that passphrase from.

import { encodeAddress } from "../address.ts";
import { CoinError, UsageError } from "../errors.ts";
import {
  MIN_PASSPHRASE_CHARS,
  passphraseProblem,
  readKeyFile,
  readKeyFileSummary,
  writeKeyFile,
} from "../keys.ts";
import { closest, type Command, type Io, parseFlags } from "./_command.ts";

/** The environment variable that holds a key file's passphrase, for runs with no one at a terminal. */
export const PASSPHRASE_ENV = "COIN_KEY_PASSPHRASE";

const SUBCOMMANDS = ["encrypt", "decrypt"];

/**
 * Where a command that reads an encrypted key file gets its passphrase: PASSPHRASE_ENV when set, else
 * typed on the terminal without echo; a one-line CoinError when neither can give it. Asked only when
 * the file is encrypted: pass it to readKeyFile.
 *
 * @example
 * ```ts
 * const keyPair = await readKeyFile("alice.key", { passphrase: passphraseFrom(io) });
 * ```
 */
export function passphraseFrom(io: Io): (path: string) => Promise<string> {
  return async (path) => {
    const fromEnv = io.env.get(PASSPHRASE_ENV);
    if (fromEnv !== undefined) return fromEnv;
    const typed = await io.ask?.(`Passphrase for ${path}: `, { secret: true });
    if (typed === undefined) {
      throw new CoinError(
        `Key file "${path}" is encrypted: set ${PASSPHRASE_ENV} or run on a terminal to type its passphrase`,
      );
    }
    return typed;
  };
}

/**
 * A passphrase for a new encrypted key file at `path`: PASSPHRASE_ENV when set, else typed twice on the
 * terminal. Refuses, in one line, a passphrase that passphraseProblem refuses and two that differ.
 */
export async function newPassphrase(io: Io, path: string): Promise<string> {
  const refuse = (why: string) => new CoinError(`Cannot encrypt key file "${path}": ${why}`);
  const fromEnv = io.env.get(PASSPHRASE_ENV);
  let passphrase: string;
  if (fromEnv !== undefined) {
    passphrase = fromEnv;
  } else {
    const typed = await io.ask?.(`New passphrase for ${path}: `, { secret: true });
    if (typed === undefined) {
      throw refuse(`set ${PASSPHRASE_ENV} or run on a terminal to type a passphrase`);
    }
    passphrase = typed;
  }
  const problem = passphraseProblem(passphrase);
  if (problem !== undefined) throw refuse(problem);
  if (fromEnv === undefined) {
    const again = await io.ask?.(`Repeat the passphrase for ${path}: `, { secret: true });
    if (again !== passphrase) throw refuse("the two passphrases differ");
  }
  return passphrase;
}

export const key: Command = {
  name: "key",
  summary: "Encrypt a key file with a passphrase, or decrypt it",
  help: `Usage:
  coin key encrypt FILE
  coin key decrypt FILE

Rewrites the key file FILE in place, atomically and with mode 0600, with its seed (the secret)
encrypted with a passphrase or in clear; its public key (account id) stays the same and readable
without the passphrase (coin pubkey). Every command that takes --key reads both kinds, and asks for
the passphrase of an encrypted one.
  encrypt  asks for a new passphrase twice (at least ${MIN_PASSPHRASE_CHARS} characters) and encrypts FILE's seed with
           it (scrypt, then AES-256-GCM); refuses a FILE that is already encrypted
  decrypt  asks for FILE's passphrase and writes its seed in clear; refuses a FILE that is not
           encrypted

Options:
  -h, --help   show this help

Environment:
  ${PASSPHRASE_ENV}   the passphrase, read instead of asking on the terminal (by coin key,
                        coin keygen --encrypt, send, sign and serve); other programs of this user
                        can read a process's environment: prefer typing it where you can

Examples:
  coin key encrypt alice.key
  coin key decrypt alice.key`,
  async run(args, io) {
    const { values, positionals } = parseFlags("key", args, {}, { positionals: 2 });
    if (values.help) return io.out(this.help);
    const [sub, file] = positionals;
    if (sub === undefined || !SUBCOMMANDS.includes(sub)) {
      const hint = sub === undefined ? undefined : closest(sub, SUBCOMMANDS);
      throw new UsageError(
        (sub === undefined
          ? `Missing subcommand for "coin key"`
          : `Unknown subcommand "${sub}" for "coin key"`) +
          (hint ? `; did you mean "${hint}"?` : ": expected encrypt or decrypt") + " (see coin key --help)",
      );
    }
    if (file === undefined || file === "") {
      throw new UsageError(`Missing FILE for "coin key ${sub}" (see coin key --help)`);
    }
    const summary = await readKeyFileSummary(file);
    // A symbolic link is followed: the file that holds the seed is rewritten, not replaced by the link.
    const target = (await Deno.lstat(file)).isSymlink ? await Deno.realPath(file) : file;
    if (sub === "encrypt") {
      if (summary.version === 2) throw new CoinError(`Key file "${file}" is already encrypted`);
      const keyPair = await readKeyFile(file);
      const passphrase = await newPassphrase(io, file);
      await writeKeyFile(target, keyPair, { force: true, passphrase });
      io.out(
        `Encrypted the seed of ${file} with a passphrase; its address is ${encodeAddress(keyPair.publicKey)}`,
      );
    } else {
      if (summary.version !== 2) throw new CoinError(`Key file "${file}" is not encrypted`);
      const keyPair = await readKeyFile(file, { passphrase: passphraseFrom(io) });
      await writeKeyFile(target, keyPair, { force: true });
      io.err(`warning: the seed of ${file} is now in clear: whoever can read the file can spend its coins`);
      io.out(`Decrypted the seed of ${file}; its address is ${encodeAddress(keyPair.publicKey)}`);
    }
  },
};
