// `coin pubkey`: the account id of a key file.

import { readKeyFile } from "../keys.ts";
import { type Command, parseFlags, required } from "./_command.ts";

export const pubkey: Command = {
  name: "pubkey",
  summary: "Print the public key (account id) of a key file",
  help: `Usage: coin pubkey --key FILE

Prints FILE's public key as 64 lowercase hex digits.

Example:
  coin pubkey --key alice.key`,
  async run(args, io) {
    const { values } = parseFlags("pubkey", args, { key: { type: "string" } });
    if (values.help) return io.out(this.help);
    const keyPair = await readKeyFile(required("pubkey", "key", values.key));
    io.out(keyPair.publicHex);
  },
};
