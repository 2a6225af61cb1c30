// Strict JSON for the files people write by hand (peers.json, key files): the same values JSON.parse gives,
// but a repeated key is an error (JSON.parse keeps the last one silently: a genesis account written twice
// would set the supply to its second amount), and every error says where it is, by line and column.

/** Deepest nesting of arrays and objects accepted: hand-written files are shallow; this bounds the stack. */
export const MAX_JSON_DEPTH = 64;

/** A JSON text that does not parse or repeats a key; the message starts with "line L, column C: ". */
export class JsonError extends SyntaxError {
  readonly line: number;
  readonly column: number;
  constructor(line: number, column: number, problem: string) {
    super(`line ${line}, column ${column}: ${problem}`);
    this.name = "JsonError";
    this.line = line;
    this.column = column;
  }
}

/**
 * Parses `text` as JSON (RFC 8259) and refuses any key repeated within one object.
 *
 * @example
 * ```ts
 * import { JsonError, parseJson } from "./json.ts";
 * console.assert((parseJson('{"a": [1, "x"]}') as { a: unknown[] }).a.length === 2);
 * try {
 *   parseJson('{"a": 1,\n "a": 2}');
 * } catch (err) {
 *   console.assert(err instanceof JsonError && err.line === 2);
 * }
 * ```
 */
export function parseJson(text: string): unknown {
  const parser = new Parser(text);
  parser.space();
  const value = parser.value(0, "");
  parser.space();
  if (parser.at < text.length) parser.fail(`unexpected ${parser.describe()} after the end of the JSON value`);
  return value;
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const ESCAPES: Record<string, string> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};

class Parser {
  readonly text: string;
  at = 0;

  constructor(text: string) {
    this.text = text;
  }

  /** Line and column (both from 1, columns in UTF-16 units) of offset `at`. */
  where(at: number): { line: number; column: number } {
    let line = 1;
    let lineStart = 0;
    for (let i = this.text.indexOf("\n"); i !== -1 && i < at; i = this.text.indexOf("\n", i + 1)) {
      line++;
      lineStart = i + 1;
    }
    return { line, column: at - lineStart + 1 };
  }

  fail(problem: string, at = this.at): never {
    const { line, column } = this.where(at);
    throw new JsonError(line, column, problem);
  }

  /** The character at the cursor, as an error names it. */
  describe(): string {
    if (this.at >= this.text.length) return "end of the file";
    const c = this.text[this.at]!;
    return c < " " ? `control character U+${c.charCodeAt(0).toString(16).padStart(4, "0")}` : `"${c}"`;
  }

  space(): void {
    const t = this.text;
    while (this.at < t.length) {
      const c = t.charCodeAt(this.at);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return;
      this.at++;
    }
  }

  /** A value; `path` names where it is, for the duplicate-key message ("" at the top). */
  value(depth: number, path: string): unknown {
    const t = this.text;
    const c = t[this.at];
    if (c === "{") return this.object(depth + 1, path);
    if (c === "[") return this.array(depth + 1, path);
    if (c === '"') return this.string();
    if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) {
      NUMBER.lastIndex = this.at;
      const m = NUMBER.exec(t);
      if (m === null) this.fail(`a number must have a digit after "-"`);
      this.at += m[0].length;
      return Number(m[0]);
    }
    for (const [word, v] of [["true", true], ["false", false], ["null", null]] as const) {
      if (t.startsWith(word, this.at)) {
        this.at += word.length;
        return v;
      }
    }
    this.fail(`expected a value, found ${this.describe()}`);
  }

  #enter(depth: number): void {
    if (depth > MAX_JSON_DEPTH) this.fail(`nested deeper than ${MAX_JSON_DEPTH} levels`);
    this.at++;
    this.space();
  }

  object(depth: number, path: string): Record<string, unknown> {
    this.#enter(depth);
    const out: Record<string, unknown> = {};
    /** Where each key started: its line is computed only for an error (counting lines per key is quadratic). */
    const keyOffsets = new Map<string, number>();
    if (this.text[this.at] === "}") {
      this.at++;
      return out;
    }
    for (;;) {
      if (this.text[this.at] !== '"') this.fail(`expected a key in double quotes, found ${this.describe()}`);
      const keyAt = this.at;
      const key = this.string();
      const first = keyOffsets.get(key);
      if (first !== undefined) {
        const inside = path === "" ? "" : ` in ${path}`;
        const line = this.where(first).line;
        this.fail(
          `key "${key}" appears twice${inside} (first on line ${line}); each key may appear once`,
          keyAt,
        );
      }
      keyOffsets.set(key, keyAt);
      this.space();
      if (this.text[this.at] !== ":") {
        this.fail(`expected ":" after the key "${key}", found ${this.describe()}`);
      }
      this.at++;
      this.space();
      const v = this.value(depth, path === "" ? `"${key}"` : `${path}."${key}"`);
      // A plain assignment would set the prototype for "__proto__"; JSON.parse makes it a key like others.
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      this.space();
      const c = this.text[this.at];
      if (c === "}") {
        this.at++;
        return out;
      }
      if (c !== ",") this.fail(`expected "," or "}" after a value, found ${this.describe()}`);
      this.at++;
      this.space();
    }
  }

  array(depth: number, path: string): unknown[] {
    this.#enter(depth);
    const out: unknown[] = [];
    if (this.text[this.at] === "]") {
      this.at++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth, `${path === "" ? "the list" : path}[${out.length}]`));
      this.space();
      const c = this.text[this.at];
      if (c === "]") {
        this.at++;
        return out;
      }
      if (c !== ",") this.fail(`expected "," or "]" after a value, found ${this.describe()}`);
      this.at++;
      this.space();
    }
  }

  string(): string {
    const t = this.text;
    const start = this.at;
    this.at++;
    let out = "";
    let run = this.at;
    for (;;) {
      if (this.at >= t.length) this.fail("a string is not closed", start);
      const c = t[this.at]!;
      if (c === '"') {
        out += t.slice(run, this.at);
        this.at++;
        return out;
      }
      if (c < " ") this.fail(`a string holds a raw ${this.describe()}: write it escaped`);
      if (c !== "\\") {
        this.at++;
        continue;
      }
      out += t.slice(run, this.at);
      const e = t[this.at + 1];
      if (e === "u") {
        const hex = t.slice(this.at + 2, this.at + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail(`"\\u" must be followed by four hex digits`);
        out += String.fromCharCode(parseInt(hex, 16));
        this.at += 6;
      } else if (e !== undefined && ESCAPES[e] !== undefined) {
        out += ESCAPES[e];
        this.at += 2;
      } else {
        this.fail(`unknown escape "\\${e ?? ""}" in a string`);
      }
      run = this.at;
    }
  }
}
