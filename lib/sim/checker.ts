// The invariant checker: told every state a replica derived, every commit, every restart and every
// answer a client got, it keeps the agreed history of the whole network and reports the first moment
// any honest replica breaks agreement, the chain, validity, once-only, durability or truthfulness.
// Liveness is judged at the end of a run over its calm part.

import type { State } from "../ledger.ts";

/** The invariants, by name. */
export type Invariant =
  | "agreement"
  | "chain"
  | "validity"
  | "once_only"
  | "durability"
  | "truthful"
  | "acked"
  | "blame"
  | "liveness"
  | "assertion";

/** One broken invariant. */
export interface Violation {
  readonly invariant: Invariant;
  readonly atMs: number;
  readonly detail: string;
}

/** A derived state: frame and hash. */
type Key = string;

function keyOf(frame: number, hash: string): Key {
  return `${frame}:${hash}`;
}

interface Derivation {
  readonly frame: number;
  readonly hash: string;
  readonly state: State;
  /** Parent key to the transfer ids applied on the way from it. */
  readonly parents: Map<Key, readonly string[]>;
}

/** The agreed history and the checks against it. */
export class Checker {
  readonly violations: Violation[] = [];
  readonly #supply: number;
  readonly #genesis: { hash: string; state: State };
  /** Ids of transfers that payers really signed (every client transfer). */
  readonly #signed: Set<string>;
  #derived = new Map<Key, Derivation>();
  /** By hash, for parents whose frame the replica did not know (-1). */
  #byHash = new Map<string, Key[]>();
  /** The globally committed hash of each frame, with its state. */
  #committed = new Map<number, { hash: string; state: State; by: number }>();
  #statesByHash = new Map<string, State>();
  /** Transfer id to the frame of the agreed history it was applied in. */
  #history = new Map<string, number>();
  /** Transfer ids some honest replica answered "never" for, with who and when. */
  #never = new Map<string, string>();

  /** Frames are shown relative to this one (the run's first). */
  readonly #base: number;

  constructor(genesis: State, signed: Set<string>, frameBase = 0) {
    this.#base = frameBase;
    this.#supply = genesis.ledger.supply;
    this.#genesis = { hash: genesis.ledger.hash, state: genesis };
    this.#signed = signed;
    this.#statesByHash.set(genesis.ledger.hash, genesis);
    this.#derive(-1, genesis, undefined, []);
  }

  #f(frame: number): string {
    return frame < 0 ? String(frame) : String(frame - this.#base);
  }

  #fail(invariant: Invariant, atMs: number, detail: string): void {
    this.violations.push({ invariant, atMs, detail });
  }

  #derive(frame: number, state: State, parent: Key | undefined, ids: readonly string[]): void {
    const key = keyOf(frame, state.ledger.hash);
    let d = this.#derived.get(key);
    if (d === undefined) {
      d = { frame, hash: state.ledger.hash, state, parents: new Map() };
      this.#derived.set(key, d);
      const list = this.#byHash.get(d.hash) ?? [];
      list.push(key);
      this.#byHash.set(d.hash, list);
    }
    if (parent !== undefined && !d.parents.has(parent)) d.parents.set(parent, ids);
  }

  /** A replica (honest or not: the apply is the real one) derived `state` for `frame` from a parent. */
  applied(
    node: number,
    honest: boolean,
    atMs: number,
    note: {
      frame: number;
      parentFrame: number;
      parentHash: string;
      state: State;
      appliedIds: readonly string[];
    },
  ): void {
    this.#derive(note.frame, note.state, keyOf(note.parentFrame, note.parentHash), note.appliedIds);
    if (!honest) return;
    for (const id of note.appliedIds) {
      if (!this.#signed.has(id)) {
        this.#fail("validity", atMs, `s${node + 1} applied transfer ${id.slice(0, 12)} that no payer signed`);
      }
    }
    if (note.state.ledger.supply !== this.#supply) {
      this.#fail(
        "validity",
        atMs,
        `s${node + 1} derived frame ${this.#f(note.frame)} with supply ${note.state.ledger.supply}`,
      );
    }
  }

  /** The parents of a key; a parent of unknown frame (-1) stands for every derivation of its hash. */
  #parentsOf(key: Key): [Key, readonly string[]][] {
    const d = this.#derived.get(key);
    if (d === undefined) return [];
    const out: [Key, readonly string[]][] = [];
    for (const [p, ids] of d.parents) {
      const [f, h] = p.split(":") as [string, string];
      if (f === "-1" && h !== this.#genesis.hash) {
        for (const k of this.#byHash.get(h) ?? []) {
          if (k !== key && this.#derived.get(k)!.frame < d.frame) out.push([k, ids]);
        }
      }
      out.push([p, ids]);
    }
    return out;
  }

  /**
   * The transfer ids applied on a path from (`fromFrame`, `fromHash`) down to (`toFrame`, `toHash`),
   * each with its frame; undefined when the later state does not descend from the earlier one.
   */
  #path(
    toFrame: number,
    toHash: string,
    fromFrame: number,
    fromHash: string,
  ): [string, number][] | undefined {
    const target = keyOf(fromFrame, fromHash);
    const start = keyOf(toFrame, toHash);
    const seen = new Map<Key, { prev: Key; ids: readonly string[] } | null>([[start, null]]);
    const queue = [start];
    while (queue.length > 0) {
      const key = queue.shift()!;
      const frame = Number(key.split(":")[0]);
      // Reaching the same database at or before the earlier frame is descent: frames between them
      // changed nothing (a server that slept through empty frames derives from the older copy).
      if (
        key === target || (key.endsWith(`:${fromHash}`) && frame <= fromFrame) ||
        (fromFrame === -1 && key.endsWith(`:${fromHash}`))
      ) {
        const out: [string, number][] = [];
        let k: Key = key;
        let step = seen.get(k);
        // Walk forward from the target: the ids of each edge belong to the frame of the edge's child.
        const chain: { child: Key; ids: readonly string[] }[] = [];
        while (step !== null && step !== undefined) {
          chain.push({ child: step.prev, ids: step.ids });
          k = step.prev;
          step = seen.get(k);
        }
        for (const { child, ids } of chain) for (const id of ids) out.push([id, Number(child.split(":")[0])]);
        return out;
      }
      if (frame < fromFrame && fromFrame !== -1 && frame !== -1) continue;
      for (const [p, ids] of this.#parentsOf(key)) {
        if (seen.has(p)) continue;
        seen.set(p, { prev: key, ids });
        queue.push(p);
      }
    }
    return undefined;
  }

  /** An honest replica committed `state` as frame `frame`. */
  committed(node: number, atMs: number, frame: number, state: State): void {
    const hash = state.ledger.hash;
    this.#statesByHash.set(hash, state);
    if (state.ledger.supply !== this.#supply) {
      this.#fail(
        "validity",
        atMs,
        `s${node + 1} committed frame ${this.#f(frame)} with supply ${state.ledger.supply}`,
      );
    }
    const before = this.#committed.get(frame);
    if (before !== undefined) {
      if (before.hash !== hash) {
        this.#fail(
          "agreement",
          atMs,
          `frame ${this.#f(frame)}: s${node + 1} committed ${hash.slice(0, 12)}, s${
            before.by + 1
          } committed ${before.hash.slice(0, 12)}`,
        );
      }
      return;
    }
    this.#committed.set(frame, { hash, state, by: node });
    // The nearest committed frames below and above must be its ancestor and its descendant.
    let below: [number, string] = [-1, this.#genesis.hash];
    let above: [number, string] | undefined;
    for (const [f, c] of this.#committed) {
      if (f < frame && f > below[0]) below = [f, c.hash];
      if (f > frame && (above === undefined || f < above[0])) above = [f, c.hash];
    }
    const down = this.#path(frame, hash, below[0], below[1]);
    if (down === undefined) {
      this.#fail(
        "chain",
        atMs,
        `s${node + 1} committed frame ${this.#f(frame)} (${
          hash.slice(0, 12)
        }), which does not extend committed frame ${this.#f(below[0])} (${
          below[1].slice(0, 12)
        }): a rollback`,
      );
    } else this.#record(down, atMs);
    if (above !== undefined) {
      const up = this.#path(above[0], above[1], frame, hash);
      if (up === undefined) {
        this.#fail(
          "chain",
          atMs,
          `committed frame ${this.#f(above[0])} (${above[1].slice(0, 12)}) does not extend frame ${
            this.#f(frame)
          } (${hash.slice(0, 12)}) that s${node + 1} committed`,
        );
      }
    }
  }

  #record(path: [string, number][], atMs: number): void {
    for (const [id, frame] of path) {
      const before = this.#history.get(id);
      if (before !== undefined && before !== frame) {
        this.#fail(
          "once_only",
          atMs,
          `transfer ${id.slice(0, 12)} applied in frame ${this.#f(before)} and again in frame ${
            this.#f(frame)
          }`,
        );
        continue;
      }
      this.#history.set(id, frame);
      const never = this.#never.get(id);
      if (never !== undefined) {
        this.#fail(
          "truthful",
          atMs,
          `${never} answered "never" for ${id.slice(0, 12)}, committed in frame ${this.#f(frame)}`,
        );
        this.#never.delete(id);
      }
    }
  }

  /** An honest replica restarted from `state` while its disk durably held the commit `durable`. */
  recovered(
    node: number,
    atMs: number,
    state: State,
    durable: { frame: number; hash: string } | undefined,
  ): void {
    if (durable === undefined || state.ledger.hash === durable.hash) return;
    this.#fail(
      "durability",
      atMs,
      `s${node + 1} restarted from ${state.ledger.hash.slice(0, 12)}, not from frame ${
        this.#f(durable.frame)
      } (${durable.hash.slice(0, 12)}) that its disk durably held`,
    );
  }

  /** The state committed for `frame`, if any. */
  committedAt(frame: number): { hash: string; state: State } | undefined {
    return this.#committed.get(frame);
  }

  /** The frame of the agreed history that applied `id`, if any. */
  appliedIn(id: string): number | undefined {
    return this.#history.get(id);
  }

  /** The newest committed frame. */
  get lastCommitted(): number {
    let last = -1;
    for (const f of this.#committed.keys()) last = Math.max(last, f);
    return last;
  }

  /** An honest replica's answer about a transfer's outcome. */
  txStatusAnswer(node: number, atMs: number, id: string, response: Record<string, unknown>): void {
    const who = `s${node + 1}`;
    if (response.state === "committed") {
      const frame = Number(response.frame);
      const c = this.#committed.get(frame);
      const applied = this.#history.get(id);
      if (c === undefined || applied !== frame) {
        this.#fail(
          "truthful",
          atMs,
          `${who} answered "committed in frame ${this.#f(frame)}" for ${id.slice(0, 12)}, but ${
            c === undefined
              ? `frame ${this.#f(frame)} is not committed`
              : `the agreed history ${
                applied === undefined ? "does not hold it" : `holds it in frame ${this.#f(applied)}`
              }`
          }`,
        );
      }
    } else if (response.state === "never") {
      const applied = this.#history.get(id);
      if (applied !== undefined) {
        this.#fail(
          "truthful",
          atMs,
          `${who} answered "never" for ${id.slice(0, 12)}, committed in frame ${this.#f(applied)}`,
        );
      } else this.#never.set(id, who);
    }
  }

  /** An honest replica's answer about a balance. */
  balanceAnswer(node: number, atMs: number, account: Uint8Array, response: Record<string, unknown>): void {
    const frame = Number(response.frame);
    const hash = String(response.hash);
    // The genesis (the state before the first frame) is agreed without being committed by anyone.
    const state = this.#committed.get(frame)?.state ??
      (hash === this.#genesis.hash ? this.#genesis.state : undefined);
    if (state === undefined || state.ledger.hash !== hash) {
      this.#fail(
        "truthful",
        atMs,
        `s${node + 1} answered a balance from frame ${this.#f(frame)} (${
          hash.slice(0, 12)
        }), which is not the agreed state`,
      );
      return;
    }
    const balance = state.ledger.balanceOf(account);
    if (balance !== response.balance) {
      this.#fail(
        "truthful",
        atMs,
        `s${node + 1} answered balance ${response.balance}, the agreed one is ${balance}`,
      );
    }
  }

  /** A replica's own assertion failed: a bug the checker reports with the rest. */
  assertion(node: number, atMs: number, message: string): void {
    this.#fail("assertion", atMs, `s${node + 1}: ${message}`);
  }

  /** An invariant judged by the simulator (acked, liveness). */
  report(invariant: Invariant, atMs: number, detail: string): void {
    this.#fail(invariant, atMs, detail);
  }
}
