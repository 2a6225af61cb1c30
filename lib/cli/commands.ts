// The subcommands of `coin`, in the order `coin --help` lists them.

import type { Command } from "./_command.ts";
import { archive } from "./archive.ts";
import { keygen } from "./keygen.ts";
import { pubkey } from "./pubkey.ts";
import { key } from "./key.ts";
import { sign } from "./sign.ts";
import { tx } from "./tx.ts";
import { serve } from "./serve.ts";
import { send, submit } from "./send.ts";
import { balance } from "./balance.ts";
import { contacts } from "./contacts.ts";
import { status } from "./status.ts";
import { devnet } from "./devnet.ts";
import { bench } from "./bench.ts";

/** Every subcommand. */
export const COMMANDS: readonly Command[] = [
  devnet,
  serve,
  keygen,
  pubkey,
  key,
  send,
  sign,
  submit,
  balance,
  contacts,
  status,
  tx,
  archive,
  bench,
];
