// `coin contacts` through the command line, as real processes with COIN_CONTACTS naming a file of the test:
// adding, listing and removing names, what is refused, and the file that results.

import assert from "node:assert/strict";
import { encodeAddress } from "../../lib/address.ts";
import { contactsPath, readContacts } from "../../lib/contacts.ts";
import { assertOneLineError, linesOf, makeKeyPair, makeTempDir, runCoinProcess } from "../_helpers.ts";

Deno.test("coin contacts add, list and remove keep a book of checked addresses", async () => {
  await using dir = await makeTempDir();
  const path = `${dir.path}/book/contacts.json`; // its directory is made on the first add
  const env = { COIN_CONTACTS: path };
  const bob = await makeKeyPair(2);
  const carol = await makeKeyPair(3);
  const bobAddress = encodeAddress(bob.publicKey);
  const carolAddress = encodeAddress(carol.publicKey);

  const empty = await runCoinProcess(["contacts", "list"], { env });
  assert.equal(empty.code, 0, empty.stderr);
  assert.equal(empty.stdout, "");
  assert.equal(empty.stderr, `no contacts yet (add one with "coin contacts add NAME ADDRESS")\n`);

  const addBob = await runCoinProcess(["contacts", "add", "bob", bobAddress.toUpperCase()], { env });
  assert.equal(addBob.code, 0, addBob.stderr);
  assert.equal(addBob.stdout, `bob  ${bobAddress}\n`);
  assert.equal(addBob.stderr, `saved in ${path}\n`);
  // Hex is accepted and saved as the address.
  const addCarol = await runCoinProcess(["contacts", "add", "carol-2", carol.publicHex], { env });
  assert.equal(addCarol.code, 0, addCarol.stderr);
  assert.equal(addCarol.stdout, `carol-2  ${carolAddress}\n`);

  const list = await runCoinProcess(["contacts", "list"], { env });
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(linesOf(list.stdout), [`bob      ${bobAddress}`, `carol-2  ${carolAddress}`]);
  const json = await runCoinProcess(["contacts", "list", "--json"], { env });
  assert.deepEqual(JSON.parse(json.stdout), { bob: bobAddress, "carol-2": carolAddress });
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  const file = JSON.parse(await Deno.readTextFile(path));
  assert.deepEqual(file, {
    kind: "coin-contacts",
    version: 1,
    contacts: { bob: bobAddress, "carol-2": carolAddress },
  });

  // The same account again is fine; another account under a saved name needs --force.
  const again = await runCoinProcess(["contacts", "add", "bob", bob.publicHex], { env });
  assert.equal(again.code, 0, again.stderr);
  const clash = await runCoinProcess(["contacts", "add", "bob", carolAddress], { env });
  assertOneLineError(
    clash,
    1,
    new RegExp(`^coin: Contact "bob" is already ${bobAddress}; use --force to replace it$`),
  );
  const forced = await runCoinProcess(["contacts", "add", "bob", carolAddress, "--force"], { env });
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(encodeAddress((await readContacts(path)).get("bob")!), carolAddress);

  const removed = await runCoinProcess(["contacts", "remove", "bob"], { env });
  assert.equal(removed.code, 0, removed.stderr);
  assert.equal(removed.stderr, "removed bob\n");
  const gone = await runCoinProcess(["contacts", "remove", "bob"], { env });
  assertOneLineError(gone, 1, /^coin: No contact "bob"$/);
  const near = await runCoinProcess(["contacts", "remove", "carol"], { env });
  assertOneLineError(near, 1, /^coin: No contact "carol"; did you mean carol-2\?$/);
  assert.deepEqual([...(await readContacts(path)).keys()], ["carol-2"]);
});

Deno.test("coin contacts refuses a mistyped address, a bad name and bad usage in one line, and keeps the book", async () => {
  await using dir = await makeTempDir();
  const path = `${dir.path}/contacts.json`;
  const env = { COIN_CONTACTS: path };
  const bobAddress = encodeAddress((await makeKeyPair(2)).publicKey);
  const typo = bobAddress.slice(0, 20) + (bobAddress[20] === "q" ? "p" : "q") + bobAddress.slice(21);
  const cases: [string[], number, RegExp][] = [
    [
      ["add", "bob", typo],
      2,
      /^coin: Invalid ACCOUNT "coin1.*" for "coin contacts add": its checksum does not match/,
    ],
    [
      ["add", "bob", "alice"],
      2,
      /^coin: Invalid ACCOUNT "alice" for "coin contacts add": expected an address/,
    ],
    [["add", "Bob", bobAddress], 2, /^coin: Invalid contact name "Bob": a name is a small letter, then/],
    [["add", "coin1x", bobAddress], 2, /^coin: Invalid contact name "coin1x": it starts like an address/],
    [["add", "bob"], 2, /^coin: Missing ACCOUNT for "coin contacts add bob"$/],
    [["add"], 2, /^coin: Missing NAME for "coin contacts add"$/],
    [["ad", "bob", bobAddress], 2, /^coin: Unknown action "ad" for "coin contacts"; did you mean add\?/],
    [[], 2, /^coin: Missing what to do for "coin contacts": add, list or remove/],
    [["list", "extra"], 2, /^coin: Unexpected argument "extra" for "coin contacts list"$/],
    [["list", "--force"], 2, /^coin: --force is for "coin contacts add" only$/],
  ];
  const runs = await Promise.all(cases.map(([args]) => runCoinProcess(["contacts", ...args], { env })));
  runs.forEach((run, i) => assertOneLineError(run, cases[i]![1], cases[i]![2]));
  await assert.rejects(Deno.stat(path), Deno.errors.NotFound, "nothing was written");

  // A damaged book is named, never overwritten by an add.
  await Deno.writeTextFile(path, `{"kind": "coin-contacts", "version": 1, "contacts": {"bob": "${typo}"}}\n`);
  const damaged = await runCoinProcess(["contacts", "add", "carol", bobAddress], { env });
  assertOneLineError(
    damaged,
    1,
    new RegExp(`^coin: Cannot read contacts file "${path}": the address of "bob" is not valid: its checksum`),
  );
  await Deno.writeTextFile(
    path,
    `{"kind": "coin-contacts", "version": 1, "contacts": {"bob": 1,\n "bob": 2}}`,
  );
  const repeated = await runCoinProcess(["contacts", "list"], { env });
  assertOneLineError(repeated, 1, /it is not valid JSON: line 2, column 2: .*"bob"/);
});

Deno.test("contactsPath() is COIN_CONTACTS, else under XDG_CONFIG_HOME, else under HOME/.config", () => {
  const env = (vars: Record<string, string>) => ({ get: (name: string) => vars[name] });
  assert.equal(contactsPath(env({ COIN_CONTACTS: "/x/c.json", HOME: "/h" })), "/x/c.json");
  assert.equal(contactsPath(env({ XDG_CONFIG_HOME: "/cfg", HOME: "/h" })), "/cfg/coin/contacts.json");
  assert.equal(contactsPath(env({ HOME: "/h" })), "/h/.config/coin/contacts.json");
  assert.throws(() => contactsPath(env({})), /set COIN_CONTACTS/);
});

Deno.test("coin contacts refuses a book that other users could change: --to bob must stay bob", async () => {
  await using dir = await makeTempDir();
  const bobAddress = encodeAddress((await makeKeyPair(2)).publicKey);
  const path = `${dir.path}/contacts.json`;
  const env = { COIN_CONTACTS: path };
  assert.equal((await runCoinProcess(["contacts", "add", "bob", bobAddress], { env })).code, 0);
  await Deno.chmod(path, 0o666);
  assertOneLineError(
    await runCoinProcess(["contacts", "list"], { env }),
    1,
    new RegExp(
      `^coin: Cannot use contacts file "${path}": other users can change it \\(mode 0666\\); run chmod 600`,
    ),
  );
  await Deno.chmod(path, 0o600);
  await Deno.chmod(dir.path, 0o777);
  assertOneLineError(
    await runCoinProcess(["balance", "bob", "--server", "127.0.0.1:1"], { env }),
    1,
    new RegExp(
      `^coin: Cannot use contacts file "${path}": other users can replace it \\(directory ".*" has mode 0777\\)$`,
    ),
  );
  await Deno.chmod(dir.path, 0o1777); // sticky, as /tmp: others cannot replace a file they do not own
  const listed = await runCoinProcess(["contacts", "list"], { env });
  assert.equal(listed.code, 0, listed.stderr);
  await Deno.chmod(dir.path, 0o700);
});

Deno.test("coin contacts add through a symbolic link replaces the file it points to and keeps the link", async () => {
  await using dir = await makeTempDir();
  await Deno.mkdir(`${dir.path}/synced`, { mode: 0o700 });
  const real = `${dir.path}/synced/contacts.json`;
  const link = `${dir.path}/contacts.json`;
  const env = { COIN_CONTACTS: link };
  const bob = encodeAddress((await makeKeyPair(2)).publicKey);
  const carol = encodeAddress((await makeKeyPair(3)).publicKey);
  const first = await runCoinProcess(["contacts", "add", "bob", bob], { env });
  assert.equal(first.code, 0, first.stderr);
  await Deno.rename(link, real);
  await Deno.symlink(real, link);
  const second = await runCoinProcess(["contacts", "add", "carol", carol], { env });
  assert.equal(second.code, 0, second.stderr);
  assert.ok((await Deno.lstat(link)).isSymlink, "the link is still a link");
  assert.deepEqual(
    [...(await readContacts(real)).keys()],
    ["bob", "carol"],
    "the file it points to has both",
  );
});
