// `coin keygen`: a new Ed25519 key pair in a file only its owner can read.

import { generateKeyPair, writeKeyFile } from "../keys.ts";
import { type Command, parseFlags } from "./_command.ts";

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
    const out = values.out ?? "coin.key";
    const keyPair = await generateKeyPair();
    await writeKeyFile(out, keyPair, { force: values.force ?? false });
    io.out(`Wrote a new key to ${out} (mode 0600); its public key (account id) is:`);
    io.out(keyPair.publicHex);
  },
};
