// `coin pubkey`: the address (or the public key) of a key file.

import { encodeAddress } from "../address.ts";
import { fromHex } from "../_bytes.ts";
import { readKeyFileSummary } from "../keys.ts";
import { type Command, parseFlags, required } from "./_command.ts";

export const pubkey: Command = {
  name: "pubkey",
  summary: "Print the address (account) of a key file",
  help: `Usage: coin pubkey --key FILE [--hex]

Prints the address of FILE's account (coin1…: its public key with a checksum), or with --hex its
public key as 64 lowercase hex digits. An encrypted key file needs no passphrase: its public key
is in clear.

Options:
  --hex   the public key as 64 hex digits instead of the address

Example:
  coin pubkey --key alice.key`,
  async run(args, io) {
    const { values } = parseFlags("pubkey", args, { key: { type: "string" }, hex: { type: "boolean" } });
    if (values.help) return io.out(this.help);
    const keyPair = await readKeyFileSummary(required("pubkey", "key", values.key));
    io.out(values.hex ? keyPair.publicHex : encodeAddress(fromHex(keyPair.publicHex, 32)!));
  },
};
