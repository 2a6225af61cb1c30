// `coin serve --listen`: a server listens where it is told while peers.json keeps the address the others
// dial (a machine behind NAT, a cloud machine whose public address is not its own).

import assert from "node:assert/strict";
import { ServerConnection } from "../../lib/client.ts";
import { writeKeyFile } from "../../lib/keys.ts";
import { Kind } from "../../lib/wire.ts";
import { assertOneLineError, closedPort, makeKeyPair, makeTempDir, runCoin } from "../_helpers.ts";

Deno.test("coin serve --listen listens on 127.0.0.1 while peers.json advertises another host", async () => {
  await using dir = await makeTempDir();
  const key = await makeKeyPair(3);
  await writeKeyFile(`${dir.path}/s1.key`, key);
  const advertised = closedPort();
  const port = closedPort();
  // A name this machine does not have; nothing resolves it, since a lone server dials no one.
  await Deno.writeTextFile(
    `${dir.path}/peers.json`,
    JSON.stringify({
      start: Math.floor(Date.now() / 1000),
      interval: 1,
      servers: [{ name: "s1", key: key.publicHex, host: "coin-s1.example.invalid", port: advertised }],
      genesis: { [(await makeKeyPair(4)).publicHex]: 100 },
    }),
  );
  const stop = new AbortController();
  const running = runCoin([
    "serve",
    "--peers",
    `${dir.path}/peers.json`,
    "--key",
    `${dir.path}/s1.key`,
    "--data",
    dir.path,
    "--listen",
    `127.0.0.1:${port}`,
    "--wait-for-quorum",
  ], { signal: stop.signal });
  let status: Record<string, unknown> | undefined;
  try {
    for (let i = 0; i < 100 && status === undefined; i++) {
      try {
        const conn = await ServerConnection.open("127.0.0.1", port, 500);
        try {
          status = await conn.request(Kind.status, undefined, 2_000);
        } finally {
          await conn.close();
        }
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    stop.abort();
  }
  const run = await running;
  assert.ok(status !== undefined, `no answer on 127.0.0.1:${port}\n${run.stderr}`);
  assert.equal(status.server, "s1");
  assert.equal(run.code, 0, run.stderr);
});

Deno.test("coin serve refuses a --listen that is not HOST:PORT as a usage error", async () => {
  const run = await runCoin(["serve", "--peers", "p.json", "--key", "k.key", "--listen", "0.0.0.0"]);
  assertOneLineError(run, 2, /^coin: Invalid --listen "0\.0\.0\.0" for "coin serve": expected HOST:PORT$/);
});
