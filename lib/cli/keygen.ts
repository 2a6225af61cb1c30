// `coin keygen`: a new Ed25519 key pair in a file only its owner can read, its seed in clear or encrypted
// with a passphrase.

import { encodeAddress } from "../address.ts";
import { CoinError } from "../errors.ts";
import { generateKeyPair, MIN_PASSPHRASE_CHARS, writeKeyFile } from "../keys.ts";
import { type Command, parseFlags, required } from "./_command.ts";
import { newPassphrase, PASSPHRASE_ENV } from "./key.ts";

/**
 * Refuses an --out path that names a directory (or something else that is not a file) before the
 * write, whose rename would otherwise fail with an error that is not the user's to read as a stack;
 * and an existing file without `force` before a passphrase is asked for (the write checks it again).
 */
async function checkOutPath(path: string, force: boolean): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw new CoinError(`Cannot write "${path}": ${(err as Error).message}`, { cause: err });
  }
  if (info.isDirectory) throw new CoinError(`Cannot write "${path}": it is a directory`);
  if (!info.isFile) throw new CoinError(`Cannot write "${path}": it is not a regular file`);
  if (!force) throw new CoinError(`Cannot write "${path}": it already exists (use --force to replace it)`);
}

export const keygen: Command = {
  name: "keygen",
  summary: "Create a key pair (an account, or a server identity)",
  help: `Usage: coin keygen [--out FILE] [--force] [--encrypt]

Creates a new Ed25519 key pair and writes it to FILE with mode 0600. Its account's address
(coin1…, the public key with a checksum) is printed as the last line; "coin pubkey --hex" gives the
public key as 64 hex digits.

Options:
  --out FILE   where to write the key (default coin.key)
  --force      replace FILE if it exists (its old key is lost)
  --encrypt    encrypt the seed (the secret) with a passphrase, asked twice on the terminal (at
               least ${MIN_PASSPHRASE_CHARS} characters) or read from ${PASSPHRASE_ENV}; every command that
               takes --key then asks for it, or reads ${PASSPHRASE_ENV} (see coin key --help)

Examples:
  coin keygen --out alice.key
  coin keygen --encrypt --out alice.key`,
  async run(args, io) {
    const { values } = parseFlags("keygen", args, {
      out: { type: "string" },
      force: { type: "boolean" },
      encrypt: { type: "boolean" },
    });
    if (values.help) return io.out(this.help);
    // An empty --out is a missing value, not a file named "" (whose error would blame directory ".").
    const out = values.out === undefined ? "coin.key" : required("keygen", "out", values.out);
    const force = values.force ?? false;
    await checkOutPath(out, force);
    const passphrase = values.encrypt ? await newPassphrase(io, out) : undefined;
    const keyPair = await generateKeyPair();
    try {
      await writeKeyFile(out, keyPair, { force, passphrase });
    } catch (err) {
      if (err instanceof CoinError || !(err instanceof Error) || !isFileSystemError(err)) throw err;
      throw new CoinError(`Cannot write "${out}": ${err.message}`, { cause: err });
    }
    const what = passphrase === undefined ? "a new key" : "a new encrypted key";
    io.out(`Wrote ${what} to ${out} (mode 0600); its account's address is:`);
    io.out(encodeAddress(keyPair.publicKey));
  },
};

/** True for the errors Deno's file system calls throw (a user's path problem, not a bug). */
function isFileSystemError(err: Error): boolean {
  return Object.values(Deno.errors).some((E) => err instanceof E);
}
