// A dishonest coin server for the fault tests: the real server (lib/server.ts) and replica, with the
// simulator's adversary (lib/sim/adversary.ts) rewriting what it sends: the strongest liar, one that runs
// the real code and lies with correct digests, valid signatures and perfect timing.
//
//   deno run -A tests/faults/_liar_server.ts --lies equivocate,forge_catchup,early_buffer --seed 1 \
//     --peers peers.json --key s3.key --data s3
//
// Test-only: it is not part of coin (main.ts has no way to lie).

import { parseArgs } from "node:util";
import { readKeyFile, signerOf } from "../../lib/keys.ts";
import { createLogger } from "../../lib/log.ts";
import { readNetwork } from "../../lib/peers.ts";
import { Server } from "../../lib/server.ts";
import { Adversary, LIE_KINDS, type LieKind } from "../../lib/sim/adversary.ts";
import { Rng } from "../../lib/sim/rng.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    lies: { type: "string" },
    seed: { type: "string" },
    peers: { type: "string" },
    key: { type: "string" },
    data: { type: "string" },
    "wait-for-quorum": { type: "boolean" },
  },
  strict: true,
});
const lies = (values.lies ?? "").split(",").filter((l) => l !== "");
for (const lie of lies) {
  if (!(LIE_KINDS as readonly string[]).includes(lie)) throw new Error(`Unknown lie "${lie}"`);
}
const network = await readNetwork(values.peers!);
const keyPair = await readKeyFile(values.key!);
const me = network.servers.find((s) => s.keyHex === keyPair.publicHex)!;
const logger = createLogger({
  write: (line) => console.error(line),
  format: "text",
  server: me.name,
});
const server = await Server.start({
  network,
  keyPair,
  dataDir: values.data!,
  logger,
  waitForQuorum: true,
  lies: new Adversary({
    node: me.index,
    network,
    signer: signerOf(keyPair),
    rng: new Rng(Number(values.seed ?? "1")),
    lies: new Set(lies as LieKind[]),
  }),
});
const stop = new AbortController();
Deno.addSignalListener("SIGTERM", () => stop.abort());
await server.run(stop.signal);
