// `coin serve`: run one server of the network until Ctrl-C, SIGTERM or the loss of consensus.

import { CoinError, UsageError } from "../errors.ts";
import { serveHttp } from "../http.ts";
import { readKeyFile } from "../keys.ts";
import { passphraseFrom } from "./key.ts";
import { createLogger, type LogFormat } from "../log.ts";
import { readNetwork } from "../peers.ts";
import { Server } from "../server.ts";
import { type Command, hostPort, parseFlags, required, wholeNumber } from "./_command.ts";

export const serve: Command = {
  name: "serve",
  summary: "Run a server of the network",
  help: `Usage: coin serve --peers FILE --key FILE [--data DIR] [--wait-for-quorum] [options]

Runs the server whose public key is FILE's, on the host and port that peers.json gives it (or on
--listen's, when the machine does not own that address: behind NAT, on a cloud machine). Every
frame it votes on the hash of its balance database; agreed databases go to DIR/archive as
HASH.UNIX_SECONDS. Logs one line per event on stderr.

When no frame is agreed for several frames and not enough servers vote with it to make a
quorum, it stops with exit status 3 (operators restart it once the others are back); while a
quorum still votes, or with --wait-for-quorum, it stays up, refuses transfers, and resumes when
they agree.

Options:
  --peers FILE          the network file (servers, interval, genesis)
  --key FILE            this server's key file (coin keygen); an encrypted one's passphrase is
                        asked for on the terminal, or read from COIN_KEY_PASSPHRASE
  --data DIR            where archive/ lives (default .)
  --wait-for-quorum     wait for a majority instead of stopping
  --listen HOST:PORT    listen here instead of at peers.json's address, which the others still dial
  --archive-keep N      archive entries to keep (default 64)
  --log-format FORMAT   text (default) or json: one JSON object per line
  --http PORT           serve /health, /status and /metrics on PORT
  --http-host HOST      address for --http (default 127.0.0.1)
  --test-clock-offset-ms MS   test only: shift this server's clock

Example:
  coin serve --peers peers.json --key server1.key --data server1`,
  async run(args, io) {
    const { values } = parseFlags("serve", args, {
      peers: { type: "string" },
      key: { type: "string" },
      data: { type: "string" },
      "wait-for-quorum": { type: "boolean" },
      "archive-keep": { type: "string" },
      "log-format": { type: "string" },
      "test-clock-offset-ms": { type: "string" },
      http: { type: "string" },
      "http-host": { type: "string" },
      listen: { type: "string" },
    });
    if (values.help) return io.out(this.help);
    const peersFile = required("serve", "peers", values.peers);
    const keyFile = required("serve", "key", values.key);
    const format = (values["log-format"] ?? "text") as LogFormat;
    if (format !== "text" && format !== "json") {
      throw new UsageError(`Invalid --log-format "${format}" for "coin serve": expected text or json`);
    }
    let keep: number | undefined;
    if (values["archive-keep"] !== undefined) {
      const n = wholeNumber("serve", "archive-keep", values["archive-keep"]);
      if (typeof n !== "number" || n < 1 || n > 100_000) {
        throw new UsageError(`Invalid --archive-keep "${values["archive-keep"]}": expected 1 to 100000`);
      }
      keep = n;
    }
    let offset = 0;
    if (values["test-clock-offset-ms"] !== undefined) {
      const n = wholeNumber("serve", "test-clock-offset-ms", values["test-clock-offset-ms"]);
      if (typeof n !== "number") throw new UsageError(`Invalid --test-clock-offset-ms: out of range`);
      offset = n;
    }
    // Checked before the server starts, so a typo is a usage error and not a server that starts and stops.
    let httpPort: number | undefined;
    if (values["http-host"] !== undefined && values.http === undefined) {
      throw new UsageError(`--http-host needs --http PORT for "coin serve"`);
    }
    if (values.http !== undefined) {
      const port = wholeNumber("serve", "http", values.http);
      if (typeof port !== "number" || port < 0 || port > 65535) {
        throw new UsageError(`Invalid --http "${values.http}": expected a port from 0 to 65535`);
      }
      httpPort = port;
    }
    const listen = values.listen === undefined ? undefined : hostPort("serve", "listen", values.listen);
    const network = await readNetwork(peersFile);
    const keyPair = await readKeyFile(keyFile, { passphrase: passphraseFrom(io) });
    const me = network.servers.find((s) => s.keyHex === keyPair.publicHex);
    const logger = createLogger({
      write: io.err,
      format,
      server: me?.name ?? keyPair.publicHex.slice(0, 8),
      colour: io.errIsTerminal && io.env.get("NO_COLOR") === undefined,
    });
    const server = await Server.start({
      network,
      keyPair,
      dataDir: values.data ?? ".",
      logger,
      waitForQuorum: values["wait-for-quorum"] ?? false,
      ...(keep === undefined ? {} : { archiveKeep: keep }),
      clockOffsetMs: offset,
      ...(listen === undefined ? {} : { listen }),
    });
    let http: Deno.HttpServer | undefined;
    if (httpPort !== undefined) {
      const port = httpPort;
      try {
        http = serveHttp(server, {
          hostname: values["http-host"] ?? "127.0.0.1",
          port,
          onListen: (addr) => logger.event("http", { listen: `${addr.hostname}:${addr.port}` }),
        });
      } catch (err) {
        await server.close();
        throw new CoinError(`Cannot serve HTTP on port ${port}: ${(err as Error).message}`);
      }
    }
    try {
      await server.run(io.signal);
      logger.event("stopped", { reason: "signal" });
    } finally {
      await http?.shutdown();
    }
  },
};
