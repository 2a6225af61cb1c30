// Encrypted key files through the command line: `coin key encrypt|decrypt`, every command that takes
// --key reading one (the passphrase from COIN_KEY_PASSPHRASE or typed on a terminal), and the one-line
// refusals of a wrong, missing or mistyped passphrase and of a hostile or altered file.
// A run that needs COIN_KEY_PASSPHRASE is a process of its own (the variable is the process's); a run on a
// terminal is one inside a pseudo-terminal (util-linux `script`), answering each prompt as it appears.

import { encodeAddress } from "../../lib/address.ts";
import assert from "node:assert/strict";
import { fromHex, toHex } from "../../lib/_bytes.ts";
import { PASSPHRASE_ENV } from "../../lib/cli/key.ts";
import { readKeyFile, writeKeyFile } from "../../lib/keys.ts";
import { decodeTx, verifyTx } from "../../lib/tx.ts";
import { Kind } from "../../lib/wire.ts";
import {
  assertOneLineError,
  linesOf,
  makeKeyPair,
  makeTempDir,
  runCoin,
  runCoinProcess,
  startFakeServer,
} from "../_helpers.ts";
import { HAS_SCRIPT, runCoinOnTerminal } from "../_terminal.ts";

// Where the passphrase comes from is each test's choice: not an accident of the shell that runs them.
Deno.env.delete(PASSPHRASE_ENV);

const PASSPHRASE = "correct horse battery staple";
const WITH_PASSPHRASE = { [PASSPHRASE_ENV]: PASSPHRASE };
const ALICE = await makeKeyPair(1);
const BOB = await makeKeyPair(2);
const WRONG = /^coin: Cannot read key file "alice\.key": wrong passphrase \(or the file was altered\)$/;
const NO_SOURCE = (name: string) =>
  new RegExp(
    `^coin: Key file "${
      RegExp.escape(name)
    }" is encrypted: set COIN_KEY_PASSPHRASE or run on a terminal to ` +
      `type its passphrase$`,
  );

/** Writes ALICE's key to `dir`/`name`, encrypted with PASSPHRASE unless `plain`. */
async function aliceKey(dir: string, name = "alice.key", options: { plain?: boolean } = {}): Promise<string> {
  const path = `${dir}/${name}`;
  await writeKeyFile(path, ALICE, options.plain ? {} : { passphrase: PASSPHRASE });
  return path;
}

async function modeOf(path: string): Promise<number> {
  return (await Deno.stat(path)).mode! & 0o777;
}

/** The names in `dir`, sorted: no temporary file may be left behind. */
function namesIn(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

Deno.test("commands that take --key read an encrypted key file with COIN_KEY_PASSPHRASE", async (t) => {
  await using dir = await makeTempDir();
  await aliceKey(dir.path);

  await t.step(
    "coin pubkey prints its address, and its public key with --hex, without a passphrase",
    async () => {
      const run = await runCoin(["pubkey", "--key", `${dir.path}/alice.key`]);
      assert.deepEqual(run, { code: 0, stdout: encodeAddress(ALICE.publicKey) + "\n", stderr: "" });
      const hex = await runCoin(["pubkey", "--key", `${dir.path}/alice.key`, "--hex"]);
      assert.deepEqual(hex, { code: 0, stdout: ALICE.publicHex + "\n", stderr: "" });
    },
  );
  await t.step("coin sign signs with it", async () => {
    const run = await runCoinProcess(
      ["sign", "--key", "alice.key", "--to", BOB.publicHex, "--amount", "7"],
      { cwd: dir.path, env: WITH_PASSPHRASE },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, "");
    assert.match(run.stdout, /^[0-9a-f]{288}\n$/);
    const tx = decodeTx(fromHex(run.stdout.trim())!)!;
    assert.deepEqual([toHex(tx.payer), toHex(tx.payee), tx.amount], [ALICE.publicHex, BOB.publicHex, 7]);
    assert.ok(verifyTx(tx), "signed by alice's seed");
  });
  await t.step("coin send signs with it and submits", async () => {
    await using server = startFakeServer((body) =>
      body[0] === Kind.submit ? { ok: true, frame: 12, server: "s1" } : undefined
    );
    await Deno.writeTextFile(
      `${dir.path}/peers.json`,
      JSON.stringify({
        start: Math.floor(Date.now() / 1000) - 3600,
        interval: 1,
        servers: [{ name: "s1", key: BOB.publicHex, host: "127.0.0.1", port: server.port }],
        genesis: { [ALICE.publicHex]: 1000 },
      }),
    );
    const run = await runCoinProcess(
      ["send", "--peers", "peers.json", "--key", "alice.key", "--to", BOB.publicHex, "--amount", "5"],
      { cwd: dir.path, env: WITH_PASSPHRASE },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal(linesOf(run.stderr)[0], "accepted by s1 for frame 12", run.stderr);
    assert.equal(server.requests.length, 1);
    const tx = decodeTx(server.requests[0]!.subarray(1))!;
    assert.equal(run.stdout, tx.id + "\n");
    assert.deepEqual([toHex(tx.payer), tx.amount], [ALICE.publicHex, 5]);
    assert.ok(verifyTx(tx));
  });
  await t.step("coin serve opens it (a wrong passphrase is refused before the server starts)", async () => {
    const run = await runCoinProcess(
      ["serve", "--peers", "peers.json", "--key", "alice.key"],
      { cwd: dir.path, env: { [PASSPHRASE_ENV]: "not the passphrase" } },
    );
    assertOneLineError(run, 1, WRONG);
  });
});

Deno.test("a wrong or unavailable passphrase is one stderr line, exit 1, whatever the command", async () => {
  await using dir = await makeTempDir();
  const key = await aliceKey(dir.path);
  await Deno.writeTextFile(
    `${dir.path}/peers.json`,
    JSON.stringify({
      start: 1795000000,
      interval: 1,
      servers: [{ name: "s1", key: BOB.publicHex, host: "127.0.0.1", port: 7001 }],
      genesis: { [ALICE.publicHex]: 1000 },
    }),
  );
  const peers = `${dir.path}/peers.json`;
  const transfer = ["--to", BOB.publicHex, "--amount", "1"];
  const wrong = { cwd: dir.path, env: { [PASSPHRASE_ENV]: "correct horse battery stapler" } };
  // In this process there is no terminal to ask on (runCoin's io has no ask) and no COIN_KEY_PASSPHRASE.
  const [signWrong, sendWrong, emptyEnv, signNone, sendNone, serveNone, decryptNone] = await Promise.all([
    runCoinProcess(["sign", "--key", "alice.key", ...transfer], wrong),
    runCoinProcess(["send", "--peers", "peers.json", "--key", "alice.key", ...transfer], wrong),
    runCoinProcess(["sign", "--key", "alice.key", ...transfer], {
      cwd: dir.path,
      env: { [PASSPHRASE_ENV]: "" },
    }),
    runCoin(["sign", "--key", key, ...transfer]),
    runCoin(["send", "--peers", peers, "--key", key, ...transfer]),
    runCoin(["serve", "--peers", peers, "--key", key]),
    runCoin(["key", "decrypt", key]),
  ]);
  assertOneLineError(signWrong, 1, WRONG);
  assertOneLineError(sendWrong, 1, WRONG);
  assertOneLineError(emptyEnv, 1, /^coin: Cannot read key file "alice\.key": the passphrase is empty$/);
  for (const run of [signNone, sendNone, serveNone, decryptNone]) assertOneLineError(run, 1, NO_SOURCE(key));
  assert.equal(
    (await readKeyFile(key, { passphrase: () => Promise.resolve(PASSPHRASE) })).publicHex,
    ALICE.publicHex,
  );
});

Deno.test("coin key encrypt then coin key decrypt give back the same key file, mode 0600", async () => {
  await using dir = await makeTempDir();
  const path = await aliceKey(dir.path, "alice.key", { plain: true });
  const plainText = await Deno.readTextFile(path);

  const encrypted = await runCoinProcess(["key", "encrypt", "alice.key"], {
    cwd: dir.path,
    env: WITH_PASSPHRASE,
  });
  assert.equal(encrypted.code, 0, encrypted.stderr);
  assert.equal(encrypted.stderr, "");
  assert.equal(
    encrypted.stdout,
    `Encrypted the seed of alice.key with a passphrase; its address is ${encodeAddress(ALICE.publicKey)}\n`,
  );
  const text = await Deno.readTextFile(path);
  const json = JSON.parse(text);
  assert.equal(json.version, 2);
  assert.equal(json.public, ALICE.publicHex);
  assert.ok(!text.includes(JSON.parse(plainText).seed), "no seed in clear");
  assert.equal(await modeOf(path), 0o600);
  assert.deepEqual(namesIn(dir.path), ["alice.key"]);
  const pubkey = await runCoin(["pubkey", "--key", path, "--hex"]);
  assert.equal(pubkey.stdout, ALICE.publicHex + "\n");

  const decrypted = await runCoinProcess(["key", "decrypt", "alice.key"], {
    cwd: dir.path,
    env: WITH_PASSPHRASE,
  });
  assert.equal(decrypted.code, 0, decrypted.stderr);
  assert.equal(
    decrypted.stdout,
    `Decrypted the seed of alice.key; its address is ${encodeAddress(ALICE.publicKey)}\n`,
  );
  assert.equal(
    decrypted.stderr,
    "warning: the seed of alice.key is now in clear: whoever can read the file can spend its coins\n",
  );
  assert.equal(await Deno.readTextFile(path), plainText, "the plain file, byte for byte");
  assert.equal(await modeOf(path), 0o600);
  assert.deepEqual(namesIn(dir.path), ["alice.key"]);
});

Deno.test("coin key encrypt rewrites the file a symbolic link names and keeps the link", async () => {
  await using dir = await makeTempDir();
  await aliceKey(dir.path, "real.key", { plain: true });
  await Deno.symlink("real.key", `${dir.path}/alice.key`);
  const run = await runCoinProcess(["key", "encrypt", "alice.key"], { cwd: dir.path, env: WITH_PASSPHRASE });
  assert.equal(run.code, 0, run.stderr);
  assert.ok((await Deno.lstat(`${dir.path}/alice.key`)).isSymlink);
  assert.equal(JSON.parse(await Deno.readTextFile(`${dir.path}/real.key`)).version, 2);
  assert.deepEqual(namesIn(dir.path), ["alice.key", "real.key"]);
});

Deno.test("coin key refuses what it cannot do in one line and leaves the file as it was", async () => {
  await using dir = await makeTempDir();
  const encrypted = await aliceKey(dir.path, "encrypted.key");
  const plain = await aliceKey(dir.path, "plain.key", { plain: true });
  const before = [await Deno.readTextFile(encrypted), await Deno.readTextFile(plain)];
  const [again, notEncrypted, missing, noSource, wrongDecrypt, shortNew] = await Promise.all([
    runCoin(["key", "encrypt", encrypted]),
    runCoin(["key", "decrypt", plain]),
    runCoin(["key", "encrypt", `${dir.path}/missing.key`]),
    runCoin(["key", "encrypt", plain]),
    runCoinProcess(["key", "decrypt", "encrypted.key"], {
      cwd: dir.path,
      env: { [PASSPHRASE_ENV]: "nope nope nope" },
    }),
    runCoinProcess(["key", "encrypt", "plain.key"], { cwd: dir.path, env: { [PASSPHRASE_ENV]: "2short" } }),
  ]);
  assertOneLineError(again, 1, /^coin: Key file ".*encrypted\.key" is already encrypted$/);
  assertOneLineError(notEncrypted, 1, /^coin: Key file ".*plain\.key" is not encrypted$/);
  assertOneLineError(missing, 1, /^coin: Cannot read key file ".*missing\.key": it does not exist$/);
  assertOneLineError(
    noSource,
    1,
    /^coin: Cannot encrypt key file ".*plain\.key": set COIN_KEY_PASSPHRASE or run on a terminal to type a passphrase$/,
  );
  assertOneLineError(
    wrongDecrypt,
    1,
    /^coin: Cannot read key file "encrypted\.key": wrong passphrase \(or the file was altered\)$/,
  );
  assertOneLineError(
    shortNew,
    1,
    /^coin: Cannot encrypt key file "plain\.key": the passphrase is shorter than 8 characters$/,
  );
  assert.deepEqual([await Deno.readTextFile(encrypted), await Deno.readTextFile(plain)], before);
  assert.deepEqual(namesIn(dir.path), ["encrypted.key", "plain.key"]);
});

Deno.test("coin key: a missing or mistyped subcommand or FILE is a usage error, exit 2", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["key"],
      /^coin: Missing subcommand for "coin key": expected encrypt or decrypt \(see coin key --help\)$/,
    ],
    [
      ["key", "encrpyt", "a.key"],
      /^coin: Unknown subcommand "encrpyt" for "coin key"; did you mean "encrypt"\?/,
    ],
    [["key", "decrypt"], /^coin: Missing FILE for "coin key decrypt" \(see coin key --help\)$/],
    [["key", "decrpt", "a.key"], /; did you mean "decrypt"\? \(see coin key --help\)$/],
    [
      ["key", "show", "a.key"],
      /^coin: Unknown subcommand "show" for "coin key": expected encrypt or decrypt/,
    ],
    [["key", "encrypt", "a.key", "b.key"], /^coin: Unexpected argument "b\.key" for "coin key"/],
    [["key", "encrypt", "a.key", "--force"], /^coin: Unknown flag --force for "coin key"/],
  ];
  const runs = await Promise.all(cases.map(([args]) => runCoin(args)));
  runs.forEach((run, i) => assertOneLineError(run, 2, cases[i]![1]));
});

Deno.test("coin key --help and coin keygen --help describe encryption and COIN_KEY_PASSPHRASE", async () => {
  const [key, keygen] = await Promise.all([runCoin(["key", "--help"]), runCoin(["keygen", "--help"])]);
  for (const run of [key, keygen]) {
    assert.equal(run.code, 0);
    assert.equal(run.stderr, "");
    assert.match(run.stdout, /COIN_KEY_PASSPHRASE/);
  }
  assert.match(key.stdout, /^ {2}coin key encrypt FILE$/m);
  assert.match(key.stdout, /^ {2}coin key decrypt FILE$/m);
  assert.match(key.stdout, /^ {2}encrypt {2}asks for a new passphrase twice/m);
  assert.match(key.stdout, /^ {2}decrypt {2}asks for FILE's passphrase/m);
  assert.match(keygen.stdout, /^Usage: coin keygen \[--out FILE\] \[--force\] \[--encrypt\]$/m);
  assert.match(keygen.stdout, /^ {2}--encrypt {4}encrypt the seed/m);
});

Deno.test("refused before any passphrase is asked for: hostile scrypt parameters and a changed public key", async () => {
  await using dir = await makeTempDir();
  const path = await aliceKey(dir.path);
  const json = JSON.parse(await Deno.readTextFile(path));
  const write = (name: string, value: unknown) =>
    Deno.writeTextFile(`${dir.path}/${name}`, JSON.stringify(value), { mode: 0o600 });
  await write("hostile.key", { ...json, kdf: { ...json.kdf, N: 2 ** 30, r: 64 } });
  await write("swapped.key", { ...json, public: BOB.publicHex });
  await write("sealed.key", { ...json, sealed: "00" + json.sealed.slice(2) });
  const transfer = ["--to", (await makeKeyPair(3)).publicHex, "--amount", "1"];
  const [hostile, swapped, sealed, swappedPubkey] = await Promise.all([
    runCoin(["sign", "--key", `${dir.path}/hostile.key`, ...transfer]),
    runCoinProcess(["sign", "--key", "swapped.key", ...transfer], { cwd: dir.path, env: WITH_PASSPHRASE }),
    runCoinProcess(["sign", "--key", "sealed.key", ...transfer], { cwd: dir.path, env: WITH_PASSPHRASE }),
    runCoin(["pubkey", "--key", `${dir.path}/swapped.key`]),
  ]);
  assertOneLineError(
    hostile,
    1,
    /^coin: Cannot read key file ".*hostile\.key": its scrypt parameters \(N 1073741824, r 64, p 1\) are outside the bounds coin accepts/,
  );
  assertOneLineError(
    swapped,
    1,
    /^coin: Cannot read key file "swapped\.key": wrong passphrase \(or the file was altered\)$/,
  );
  assertOneLineError(
    sealed,
    1,
    /^coin: Cannot read key file "sealed\.key": wrong passphrase \(or the file was altered\)$/,
  );
  // pubkey reads the clear public key without the passphrase: a swap shows only when the seed is opened.
  assert.equal(swappedPubkey.stdout, encodeAddress(BOB.publicKey) + "\n");
});

Deno.test(
  { name: "on a terminal the passphrase is asked for without echo", ignore: !HAS_SCRIPT },
  async (t) => {
    await using dir = await makeTempDir();
    const transfer = ["--to", BOB.publicHex, "--amount", "3"];
    let publicHex = "";

    await t.step("coin keygen --encrypt asks twice and writes the key", async () => {
      const run = await runCoinOnTerminal(["keygen", "--encrypt", "--out", "alice.key"], [
        PASSPHRASE,
        PASSPHRASE,
      ], { cwd: dir.path });
      assert.equal(run.code, 0, run.output);
      const lines = linesOf(run.output);
      assert.deepEqual(lines.slice(0, 3), [
        "New passphrase for alice.key: ",
        "Repeat the passphrase for alice.key: ",
        "Wrote a new encrypted key to alice.key (mode 0600); its account's address is:",
      ]);
      assert.ok(!run.output.includes(PASSPHRASE), "the passphrase is not echoed");
      const keyPair = await readKeyFile(`${dir.path}/alice.key`, {
        passphrase: () => Promise.resolve(PASSPHRASE),
      });
      assert.equal(lines[3], encodeAddress(keyPair.publicKey));
      assert.equal(lines.length, 4);
      publicHex = keyPair.publicHex;
    });
    await t.step("coin keygen --encrypt refuses two passphrases that differ and writes nothing", async () => {
      const run = await runCoinOnTerminal(["keygen", "--encrypt", "--out", "bob.key"], [
        PASSPHRASE,
        "something else",
      ], { cwd: dir.path });
      assert.equal(run.code, 1, run.output);
      assert.equal(
        linesOf(run.output).at(-1),
        'coin: Cannot encrypt key file "bob.key": the two passphrases differ',
      );
      assert.ok(!run.output.includes("something else"));
      assert.deepEqual(namesIn(dir.path), ["alice.key"]);
    });
    await t.step("Ctrl-C at the prompt stops with exit 130 and writes nothing", async () => {
      const run = await runCoinOnTerminal(["keygen", "--encrypt", "--out", "carol.key"], ["\x03"], {
        cwd: dir.path,
      });
      assert.equal(run.code, 130, run.output);
      assert.equal(linesOf(run.output).at(-1), "coin: Interrupted while asking for a passphrase");
      assert.deepEqual(namesIn(dir.path), ["alice.key"]);
    });
    const [signed, wrong] = await Promise.all([
      runCoinOnTerminal(["sign", "--key", "alice.key", ...transfer], [PASSPHRASE], { cwd: dir.path }),
      runCoinOnTerminal(["sign", "--key", "alice.key", ...transfer], ["guess guess guess"], {
        cwd: dir.path,
      }),
    ]);
    // Typed with corrections: a two-byte "é" taken back by one Backspace, and a false start erased by Ctrl-U.
    const corrected = await runCoinOnTerminal(
      ["sign", "--key", "alice.key", ...transfer],
      [`wrong start\x15${PASSPHRASE.slice(0, -1)}\u00e9\x7f${PASSPHRASE.slice(-1)}`],
      { cwd: dir.path },
    );
    await t.step("Backspace takes back a whole character, Ctrl-U the whole line", () => {
      assert.equal(corrected.code, 0, corrected.output);
      assert.match(linesOf(corrected.output)[1]!, /^[0-9a-f]{288}$/);
    });
    await t.step("coin sign asks once and signs", () => {
      assert.equal(signed.code, 0, signed.output);
      const lines = linesOf(signed.output);
      assert.equal(lines.length, 2, signed.output);
      assert.equal(lines[0], "Passphrase for alice.key: ");
      assert.match(lines[1]!, /^[0-9a-f]{288}$/);
      assert.ok(!signed.output.includes(PASSPHRASE));
    });
    await t.step("coin sign refuses a wrong passphrase in one line after the prompt", () => {
      assert.equal(wrong.code, 1, wrong.output);
      assert.deepEqual(linesOf(wrong.output), [
        "Passphrase for alice.key: ",
        'coin: Cannot read key file "alice.key": wrong passphrase (or the file was altered)',
      ]);
      assert.ok(!wrong.output.includes("guess"));
    });
    await t.step(
      "coin key decrypt then coin key encrypt ask for the old passphrase, then twice for a new one",
      async () => {
        const decrypted = await runCoinOnTerminal(["key", "decrypt", "alice.key"], [PASSPHRASE], {
          cwd: dir.path,
        });
        assert.equal(decrypted.code, 0, decrypted.output);
        const encrypted = await runCoinOnTerminal(
          ["key", "encrypt", "alice.key"],
          ["a new passphrase", "a new passphrase"],
          { cwd: dir.path },
        );
        assert.equal(encrypted.code, 0, encrypted.output);
        assert.deepEqual(linesOf(encrypted.output).slice(0, 2), [
          "New passphrase for alice.key: ",
          "Repeat the passphrase for alice.key: ",
        ]);
        assert.ok(!encrypted.output.includes("a new passphrase"));
        const keyPair = await readKeyFile(`${dir.path}/alice.key`, {
          passphrase: () => Promise.resolve("a new passphrase"),
        });
        assert.equal(keyPair.publicHex, publicHex, "the same key, under a new passphrase");
      },
    );
  },
);
