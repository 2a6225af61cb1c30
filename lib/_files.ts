// Durable file writes: temporary file, fsync, rename (or link, to refuse overwriting), fsync of the
// directory. A crash at any moment leaves either the old state or the whole new file under its name.

import { CoinError } from "./errors.ts";

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  if (i < 0) return ".";
  return i === 0 ? "/" : path.slice(0, i);
}

async function fsyncDir(dir: string): Promise<void> {
  try {
    using handle = await Deno.open(dir, { read: true });
    await handle.sync();
  } catch (err) {
    // Some platforms cannot open a directory for fsync; the rename itself is still atomic there.
    if (!(err instanceof Deno.errors.PermissionDenied) && Deno.build.os !== "windows") throw err;
  }
}

/**
 * Writes `bytes` to `path` atomically and durably. With `overwrite: false` an existing file is left
 * untouched and a CoinError says so.
 */
export async function writeFileAtomic(
  path: string,
  bytes: Uint8Array,
  options: { mode?: number; overwrite?: boolean } = {},
): Promise<void> {
  const dir = dirOf(path);
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  try {
    {
      using file = await Deno.open(tmp, {
        write: true,
        createNew: true,
        ...(options.mode === undefined ? {} : { mode: options.mode }),
      });
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.sync();
    }
    if (options.overwrite === false) {
      try {
        await Deno.link(tmp, path);
      } catch (err) {
        if (err instanceof Deno.errors.AlreadyExists) {
          throw new CoinError(`Cannot write "${path}": it already exists (use --force to replace it)`);
        }
        throw err;
      }
      await Deno.remove(tmp);
    } else {
      await Deno.rename(tmp, path);
    }
    await fsyncDir(dir);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    if (err instanceof CoinError) throw err;
    if (err instanceof Deno.errors.NotFound) {
      throw new CoinError(`Cannot write "${path}": directory "${dir}" does not exist`);
    }
    if (err instanceof Deno.errors.PermissionDenied) {
      throw new CoinError(`Cannot write "${path}": permission denied`);
    }
    throw err;
  }
}

/**
 * Appends `bytes` to `path` (created when missing) and makes them durable before returning; the first
 * append also makes the file's name durable. A crash may leave a prefix of the appended bytes: readers
 * cut a torn tail.
 */
export async function appendFileDurable(path: string, bytes: Uint8Array): Promise<void> {
  let created = false;
  try {
    await Deno.lstat(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    created = true;
  }
  {
    using file = await Deno.open(path, { append: true, create: true });
    let written = 0;
    while (written < bytes.length) written += await file.write(bytes.subarray(written));
    await file.syncData();
  }
  if (created) await fsyncDir(dirOf(path));
}
