// `coin pubkey`: the address (or public key) of a key file, and one-line refusals of files that are not usable keys.

import { encodeAddress } from "../../lib/address.ts";
import assert from "node:assert/strict";
import { writeKeyFile } from "../../lib/keys.ts";
import { assertOneLineError, makeKeyPair, makeTempDir, runCoin, runCoinProcess } from "../_helpers.ts";

Deno.test("coin pubkey prints the address of a key file's account, and with --hex its public key", async () => {
  await using dir = await makeTempDir();
  const alice = await makeKeyPair(1);
  await writeKeyFile(`${dir.path}/alice.key`, alice);
  const [relative, absolute, hex] = await Promise.all([
    // A relative --key resolves against the cwd: a process of its own in `dir`.
    runCoinProcess(["pubkey", "--key", "alice.key"], { cwd: dir.path }),
    runCoin(["pubkey", `--key=${dir.path}/alice.key`]),
    runCoin(["pubkey", `--key=${dir.path}/alice.key`, "--hex"]),
  ]);
  for (const run of [relative, absolute]) {
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, encodeAddress(alice.publicKey) + "\n");
    assert.equal(run.stderr, "");
  }
  assert.equal(hex.code, 0, hex.stderr);
  assert.equal(hex.stdout, alice.publicHex + "\n");
});

Deno.test("coin pubkey refuses missing, unreadable and malformed key files with one line", async () => {
  await using dir = await makeTempDir();
  const alice = await makeKeyPair(1);
  const bob = await makeKeyPair(2);
  await writeKeyFile(`${dir.path}/open.key`, alice);
  await Deno.chmod(`${dir.path}/open.key`, 0o644);
  const write = (name: string, text: string) =>
    Deno.writeTextFile(`${dir.path}/${name}`, text, { mode: 0o600 });
  await write("broken.key", "{ not json");
  await write("other.key", JSON.stringify({ kind: "ssh-key", version: 1 }));
  await write(
    "mismatch.key",
    JSON.stringify({ kind: "coin-ed25519-key", version: 1, public: bob.publicHex, seed: "01".repeat(32) }),
  );
  await write(
    "short.key",
    JSON.stringify({ kind: "coin-ed25519-key", version: 1, public: "", seed: "0101" }),
  );
  await Deno.mkdir(`${dir.path}/dir.key`);
  // Where a refusal quotes the file name as given, the name is relative and the run is a process of its
  // own in `dir` ("in dir"); the other runs name the file by its absolute path and run in this process.
  const at = (name: string) => `${dir.path}/${name}`;
  const cases: [string[], number, RegExp, "in dir"?][] = [
    [["pubkey"], 2, /^coin: Missing --key for "coin pubkey"/],
    [
      ["pubkey", "--key", "nothere.key"],
      1,
      /Cannot read key file "nothere\.key": it does not exist$/,
      "in dir",
    ],
    [
      ["pubkey", "--key", "open.key"],
      1,
      /other users can access it \(mode 0644\); run chmod 600 "open\.key"$/,
      "in dir",
    ],
    [
      ["pubkey", "--key", "broken.key"],
      1,
      /Cannot read key file "broken\.key": it is not valid JSON: line 1, column 3: expected a key in double quotes, found "n"$/,
      "in dir",
    ],
    [["pubkey", "--key", at("other.key")], 1, /it is not a coin key file$/],
    [["pubkey", "--key", at("mismatch.key")], 1, /"public" does not match its seed$/],
    [["pubkey", "--key", at("short.key")], 1, /"seed" is not 64 hex digits$/],
    [["pubkey", "--key", at("dir.key")], 1, /it is not a file$/],
  ];
  const runs = await Promise.all(
    cases.map(([args, , , where]) =>
      where === "in dir" ? runCoinProcess(args, { cwd: dir.path }) : runCoin(args)
    ),
  );
  runs.forEach((run, i) => assertOneLineError(run, cases[i]![1], cases[i]![2]));
});
