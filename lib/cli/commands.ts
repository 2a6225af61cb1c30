// The subcommands of `coin`, in the order `coin --help` lists them.

import type { Command } from "./_command.ts";
import { archive } from "./archive.ts";
import { keygen } from "./keygen.ts";
import { pubkey } from "./pubkey.ts";
import { sign } from "./sign.ts";
import { tx } from "./tx.ts";

/** Every subcommand. */
export const COMMANDS: readonly Command[] = [keygen, pubkey, sign, tx, archive];
