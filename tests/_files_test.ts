// Tests of lib/_files.ts: writeFileAtomic() replaces or refuses, applies the mode, reports a missing
// directory as a CoinError and never leaves its temporary file behind.

import assert from "node:assert/strict";
import { writeFileAtomic } from "../lib/_files.ts";
import { CoinError } from "../lib/errors.ts";
import { assertRejectsError, makeTempDir } from "./_helpers.ts";

const encoder = new TextEncoder();

async function namesIn(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

Deno.test("writeFileAtomic() writes the bytes under the name and nothing else", async () => {
  await using dir = await makeTempDir();
  const path = `${dir.path}/data.bin`;
  const bytes = crypto.getRandomValues(new Uint8Array(50_000));
  await writeFileAtomic(path, bytes);
  assert.deepEqual(await Deno.readFile(path), bytes);
  assert.deepEqual(await namesIn(dir.path), ["data.bin"]);
});

Deno.test("writeFileAtomic() writes exactly the bytes of a subarray", async () => {
  await using dir = await makeTempDir();
  const path = `${dir.path}/part.bin`;
  const buffer = Uint8Array.from({ length: 10 }, (_, i) => i);
  await writeFileAtomic(path, buffer.subarray(3, 7));
  assert.deepEqual(await Deno.readFile(path), Uint8Array.of(3, 4, 5, 6));
});

Deno.test("writeFileAtomic() writes an empty file", async () => {
  await using dir = await makeTempDir();
  const path = `${dir.path}/empty`;
  await writeFileAtomic(path, new Uint8Array(0));
  assert.equal((await Deno.stat(path)).size, 0);
});

Deno.test("writeFileAtomic() replaces an existing file by default", async () => {
  await using dir = await makeTempDir();
  const path = `${dir.path}/data.txt`;
  await writeFileAtomic(path, encoder.encode("old contents, longer than the new ones"));
  await writeFileAtomic(path, encoder.encode("new"));
  assert.equal(await Deno.readTextFile(path), "new");
  await writeFileAtomic(path, encoder.encode("newer"), { overwrite: true });
  assert.equal(await Deno.readTextFile(path), "newer");
  assert.deepEqual(await namesIn(dir.path), ["data.txt"]);
});

Deno.test("writeFileAtomic() with overwrite: false leaves an existing file untouched", async () => {
  await using dir = await makeTempDir();
  const path = `${dir.path}/data.txt`;
  await writeFileAtomic(path, encoder.encode("first"), { overwrite: false });
  assert.equal(await Deno.readTextFile(path), "first");
  const err = await assertRejectsError(
    () => writeFileAtomic(path, encoder.encode("second"), { overwrite: false }),
    CoinError,
    /already exists/,
  );
  assert.ok(err.message.includes(`"${path}"`));
  assert.equal(await Deno.readTextFile(path), "first");
  assert.deepEqual(await namesIn(dir.path), ["data.txt"], "the temporary file is removed");
});

Deno.test("writeFileAtomic() creates the file with the mode asked for", async () => {
  await using dir = await makeTempDir();
  for (const [name, overwrite] of [["linked", false], ["renamed", true]] as const) {
    const path = `${dir.path}/${name}`;
    await writeFileAtomic(path, encoder.encode("secret"), { mode: 0o600, overwrite });
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600, name);
  }
});

Deno.test("writeFileAtomic() into a missing directory is a CoinError naming the directory", async () => {
  await using dir = await makeTempDir();
  const missing = `${dir.path}/nowhere`;
  for (const overwrite of [true, false]) {
    const err = await assertRejectsError(
      () => writeFileAtomic(`${missing}/data`, encoder.encode("x"), { overwrite }),
      CoinError,
      /does not exist/,
    );
    assert.ok(err.message.includes(`"${missing}"`), err.message);
  }
  assert.deepEqual(await namesIn(dir.path), []);
});

Deno.test("writeFileAtomic() over a directory fails and removes its temporary file", async () => {
  await using dir = await makeTempDir();
  const path = `${dir.path}/taken`;
  await Deno.mkdir(`${path}/inside`, { recursive: true });
  await assert.rejects(() => writeFileAtomic(path, encoder.encode("x")));
  assert.deepEqual(await namesIn(dir.path), ["taken"]);
  assert.deepEqual(await namesIn(path), ["inside"]);
});

Deno.test("writeFileAtomic() calls running at once each leave a whole file", async () => {
  await using dir = await makeTempDir();
  const path = `${dir.path}/race`;
  const versions = Array.from({ length: 8 }, (_, i) => new Uint8Array(100_000).fill(i + 1));
  await Promise.all(versions.map((bytes) => writeFileAtomic(path, bytes)));
  const result = await Deno.readFile(path);
  assert.ok(versions.some((v) => v[0] === result[0] && result.every((b) => b === v[0])));
  assert.deepEqual(await namesIn(dir.path), ["race"]);
});
