// What an operator sees for a peers.json or key file written by hand with a mistake in it: one line that
// says what and where, exit 1, nothing on standard output.

import { assertOneLineError, makeKeyPair, makeTempDir, runCoin } from "../_helpers.ts";

const ANN = await makeKeyPair(1);
const ALICE = await makeKeyPair(2);

/** A valid peers.json as text, laid out as a person writes it (one field per line). */
function peersText(genesisLines: string[], extra = ""): string {
  return [
    "{",
    '  "start": 1795000000,',
    '  "interval": 1,',
    extra,
    '  "servers": [{ "name": "ann", "key": "' + ANN.publicHex + '", "host": "127.0.0.1", "port": 7001 }],',
    '  "genesis": {',
    genesisLines.join(",\n"),
    "  }",
    "}",
  ].filter((line) => line !== "").join("\n");
}

Deno.test("coin status refuses a peers.json that repeats a genesis account or a field, naming it and its line", async () => {
  await using dir = await makeTempDir();
  const write = async (name: string, text: string) => {
    await Deno.writeTextFile(`${dir.path}/${name}`, text);
    return `${dir.path}/${name}`;
  };
  // JSON.parse keeps the last of a repeated key: this file would have a supply of 5, not 1,000,005.
  const twice = await write(
    "twice.json",
    peersText([`    "${ALICE.publicHex}": 1000000`, `    "${ALICE.publicHex}": 5`]),
  );
  const field = await write("field.json", peersText([`    "${ALICE.publicHex}": 5`], '  "interval": 2,'));
  const [genesisRun, fieldRun] = await Promise.all([
    runCoin(["status", "--peers", twice]),
    runCoin(["status", "--peers", field]),
  ]);
  assertOneLineError(
    genesisRun,
    1,
    new RegExp(
      `^coin: Cannot read network file ".*twice\\.json": it is not valid JSON: line 7, column 5: ` +
        `key "${ALICE.publicHex}" appears twice in "genesis" \\(first on line 6\\); each key may appear once$`,
    ),
  );
  assertOneLineError(
    fieldRun,
    1,
    /^coin: Cannot read network file ".*field\.json": it is not valid JSON: line 4, column 3: key "interval" appears twice \(first on line 3\); each key may appear once$/,
  );
});

Deno.test("coin status and coin pubkey give the line and column of a JSON syntax error in peers.json or a key file", async () => {
  await using dir = await makeTempDir();
  const peers = `${dir.path}/peers.json`;
  // A missing comma after the interval line.
  await Deno.writeTextFile(
    peers,
    peersText([`    "${ALICE.publicHex}": 5`]).replace('"interval": 1,', '"interval": 1'),
  );
  const key = `${dir.path}/broken.key`;
  await Deno.writeTextFile(key, '{\n  "kind": "coin-ed25519-key",\n  "version": 1\n  "seed": "00"\n}\n', {
    mode: 0o600,
  });
  const [peersRun, keyRun] = await Promise.all([
    runCoin(["status", "--peers", peers]),
    runCoin(["pubkey", "--key", key]),
  ]);
  assertOneLineError(
    peersRun,
    1,
    /^coin: Cannot read network file ".*peers\.json": it is not valid JSON: line 4, column 3: expected "," or "}" after a value, found """$/,
  );
  assertOneLineError(
    keyRun,
    1,
    /^coin: Cannot read key file ".*broken\.key": it is not valid JSON: line 4, column 3: expected "," or "}" after a value, found """$/,
  );
});

Deno.test("coin pubkey given peers.json as its key says it is a network file, not to chmod it", async () => {
  await using dir = await makeTempDir();
  const peers = `${dir.path}/peers.json`;
  await Deno.writeTextFile(peers, peersText([`    "${ALICE.publicHex}": 5`]), { mode: 0o644 });
  await Deno.chmod(peers, 0o644);
  assertOneLineError(
    await runCoin(["pubkey", "--key", peers]),
    1,
    /^coin: Cannot read key file ".*peers\.json": it is not a coin key file \(it looks like a network file, peers\.json; coin keygen writes key files\)$/,
  );
});
