// `coin keygen`: a new Ed25519 key pair in a file only its owner can read.

import { CoinError } from "../errors.ts";
import { generateKeyPair, writeKeyFile } from "../keys.ts";
import { type Command, parseFlags, required } from "./_command.ts";

/**
 * Refuses an --out path that names a directory (or something else that is not a file) before the
 * write, whose rename would otherwise fail with an error that is not the user's to read as a stack.
 */
async function checkOutPath(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw new CoinError(`Cannot write "${path}": ${(err as Error).message}`, { cause: err });
  }
  if (info.isDirectory) throw new CoinError(`Cannot write "${path}": it is a directory`);
  if (!info.isFile) throw new CoinError(`Cannot write "${path}": it is not a regular file`);
}

export const keygen: Command = {
  name: "keygen",
  summary: "Create a key pair (an account, or a server identity)",
  help: `Usage: coin keygen [--out FILE] [--force]

Creates a new Ed25519 key pair and writes it to FILE with mode 0600. The public key, 64 hex
digits, is the account id; it is printed as the last line.

Options:
  --out FILE   where to write the key (default coin.key)
  --force      replace FILE if it exists (its old key is lost)

Example:
  coin keygen --out alice.key`,
  async run(args, io) {
    const { values } = parseFlags("keygen", args, { out: { type: "string" }, force: { type: "boolean" } });
    if (values.help) return io.out(this.help);
    // An empty --out is a missing value, not a file named "" (whose error would blame directory ".").
    const out = values.out === undefined ? "coin.key" : required("keygen", "out", values.out);
    await checkOutPath(out);
    const keyPair = await generateKeyPair();
    try {
      await writeKeyFile(out, keyPair, { force: values.force ?? false });
    } catch (err) {
      if (err instanceof CoinError || !(err instanceof Error) || !isFileSystemError(err)) throw err;
      throw new CoinError(`Cannot write "${out}": ${err.message}`, { cause: err });
    }
    io.out(`Wrote a new key to ${out} (mode 0600); its public key (account id) is:`);
    io.out(keyPair.publicHex);
  },
};

/** True for the errors Deno's file system calls throw (a user's path problem, not a bug). */
function isFileSystemError(err: Error): boolean {
  return Object.values(Deno.errors).some((E) => err instanceof E);
}
