// A simulated data directory: files become durable only when their write completes; a crash loses
// writes still in flight, may leave one of them torn (a prefix under its final name, as a disk that
// reorders its writes would), and a full disk fails writes. The replica reads it at restart through the
// same DiskReader a server uses on its real directory.

import { parseArchiveName } from "../archive.ts";
import type { DiskReader } from "../recovery.ts";
import type { Rng } from "./rng.ts";

/** One persist action in flight. */
interface PendingWrite {
  readonly id: number;
  readonly files: readonly { readonly name: string; readonly bytes: Uint8Array; readonly append?: boolean }[];
  readonly keep: number;
  readonly remove: readonly string[];
}

/** A server's simulated archive directory. */
export class SimDisk implements DiskReader {
  #files = new Map<string, Uint8Array>();
  #pending: PendingWrite[] = [];
  /** While true, every write fails as on a full disk. */
  full = false;

  names(): string[] {
    return [...this.#files.keys()];
  }

  read(name: string): Uint8Array | undefined {
    return this.#files.get(name);
  }

  /** Queues a write; returns true when it is the only one (it starts now). */
  begin(id: number, files: PendingWrite["files"], keep: number, remove: readonly string[] = []): boolean {
    this.#pending.push({ id, files, keep, remove });
    return this.#pending.length === 1;
  }

  /** Completes the oldest write: its files become durable. Returns its id and error, if any. */
  complete(): { id: number; error: string | undefined } {
    const write = this.#pending.shift();
    if (write === undefined) throw new Error("Invariant broken: no simulated write in flight");
    if (this.full && write.files.length > 0) {
      return { id: write.id, error: "No space left on device (os error 28)" };
    }
    for (const f of write.files) this.#put(f, f.bytes);
    if (write.files.some((f) => parseArchiveName(f.name) !== undefined)) this.#prune(write.keep);
    for (const name of write.remove) this.#files.delete(name);
    return { id: write.id, error: undefined };
  }

  /** True when another write waits. */
  get busy(): boolean {
    return this.#pending.length > 0;
  }

  /**
   * A crash: writes in flight are lost, except that with `torn` the first one may have finished some
   * of its files (each file is written atomically) and left the next one cut short under its name.
   */
  crash(rng: Rng, torn: boolean): string | undefined {
    const first = this.#pending[0];
    this.#pending = [];
    if (first === undefined || !torn || first.files.length === 0) return undefined;
    const done = rng.int(0, first.files.length - 1);
    for (const f of first.files.slice(0, done)) this.#put(f, f.bytes);
    const cut = first.files[done]!;
    this.#put(cut, cut.bytes.slice(0, rng.int(0, Math.max(0, cut.bytes.length - 1))));
    return cut.name;
  }

  /** Writes a file whole, or appends to it. */
  #put(f: PendingWrite["files"][number], bytes: Uint8Array): void {
    const before = f.append ? this.#files.get(f.name) : undefined;
    if (before === undefined) {
      this.#files.set(f.name, bytes);
      return;
    }
    const joined = new Uint8Array(before.length + bytes.length);
    joined.set(before);
    joined.set(bytes, before.length);
    this.#files.set(f.name, joined);
  }

  /** An operator renames a file that failed verification. */
  rename(from: string, to: string): void {
    const bytes = this.#files.get(from);
    if (bytes === undefined) return;
    this.#files.delete(from);
    this.#files.set(to, bytes);
  }

  /** The directory is emptied (a wiped or mistyped --data). */
  wipe(): void {
    this.#files.clear();
    this.#pending = [];
  }

  #prune(keep: number): void {
    const entries = [...this.#files.keys()].flatMap((name) => {
      const p = parseArchiveName(name);
      return p === undefined ? [] : [{ name, ms: p.ms }];
    }).sort((a, b) => b.ms - a.ms || (a.name < b.name ? -1 : 1));
    for (const old of entries.slice(keep)) this.#files.delete(old.name);
  }
}
