import assert from "node:assert/strict";
import { JsonError, MAX_JSON_DEPTH, parseJson } from "../lib/json.ts";

Deno.test("parseJson gives what JSON.parse gives for valid JSON", () => {
  const texts = [
    "0",
    "-0",
    " 12.5e-3 ",
    "1E+2",
    '"plain"',
    '"esc \\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\ude00"',
    '"é and 😀 as they are"',
    "true",
    "false",
    "null",
    "[]",
    "{}",
    '[1, [2, [3, {"a": []}]], "x"]',
    '{\n  "start": 1795000000,\n  "interval": 1,\n  "servers": [{"name": "ann", "port": 7001}],\n  "genesis": {}\n}',
    '{"__proto__": {"polluted": true}, "b": 1}',
    '{"a": 1, "A": 2, "a ": 3}',
    "\t\r\n[ 1 ,\t2 ]\r\n",
  ];
  for (const text of texts) {
    assert.deepEqual(parseJson(text), JSON.parse(text), text);
  }
  const proto = parseJson('{"__proto__": 1}') as Record<string, unknown>;
  assert.deepEqual(Object.keys(proto), ["__proto__"], "a key like any other, not the prototype");
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
});

Deno.test("parseJson refuses a repeated key with its line and column, the line of the first, and where it is", () => {
  const refuses = (text: string, message: string) => {
    assert.throws(() => parseJson(text), (err: unknown) => {
      assert.ok(err instanceof JsonError);
      assert.equal(err.message, message);
      return true;
    });
  };
  refuses(
    '{\n  "interval": 1,\n  "start": 5,\n  "interval": 2\n}',
    'line 4, column 3: key "interval" appears twice (first on line 2); each key may appear once',
  );
  refuses(
    '{"genesis": {\n  "aa": 1000000,\n  "aa": 5\n}}',
    'line 3, column 3: key "aa" appears twice in "genesis" (first on line 2); each key may appear once',
  );
  refuses(
    '{"servers": [{"port": 1}, {"port": 2, "port": 3}]}',
    'line 1, column 39: key "port" appears twice in "servers"[1] (first on line 1); each key may appear once',
  );
  // The same key in different objects is not a repeat.
  assert.deepEqual(parseJson('[{"a": 1}, {"a": 2}]'), [{ a: 1 }, { a: 2 }]);
});

Deno.test("parseJson says where a syntax error is, by line and column", () => {
  const cases: [string, string][] = [
    ["", "line 1, column 1: expected a value, found end of the file"],
    ["{", "line 1, column 2: expected a key in double quotes, found end of the file"],
    ['{\n  "a": 1\n  "b": 2\n}', 'line 3, column 3: expected "," or "}" after a value, found """'],
    ['{"a" 1}', 'line 1, column 6: expected ":" after the key "a", found "1"'],
    ["[1, 2,]", 'line 1, column 7: expected a value, found "]"'],
    ["[1 2]", 'line 1, column 4: expected "," or "]" after a value, found "2"'],
    ['{"a": 1} x', 'line 1, column 10: unexpected "x" after the end of the JSON value'],
    ["{'a': 1}", `line 1, column 2: expected a key in double quotes, found "'"`],
    ['"open', "line 1, column 1: a string is not closed"],
    ['"tab\there"', "line 1, column 5: a string holds a raw control character U+0009: write it escaped"],
    ['"\\x"', 'line 1, column 2: unknown escape "\\x" in a string'],
    ['"\\u12g4"', 'line 1, column 2: "\\u" must be followed by four hex digits'],
    ["-", 'line 1, column 1: a number must have a digit after "-"'],
    ["01", 'line 1, column 2: unexpected "1" after the end of the JSON value'],
    ["tru", 'line 1, column 1: expected a value, found "t"'],
    ["{}\n\n  }", 'line 3, column 3: unexpected "}" after the end of the JSON value'],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseJson(text), (err: unknown) => {
      assert.ok(err instanceof JsonError, text);
      assert.ok(err instanceof SyntaxError);
      assert.equal(err.message, message, text);
      return true;
    });
    assert.throws(() => JSON.parse(text), SyntaxError, `JSON.parse refuses ${text} too`);
  }
});

Deno.test("parseJson refuses nesting deeper than MAX_JSON_DEPTH instead of overflowing the stack", () => {
  assert.equal((parseJson("[".repeat(MAX_JSON_DEPTH) + "]".repeat(MAX_JSON_DEPTH)) as unknown[]).length, 1);
  assert.throws(
    () => parseJson("[".repeat(100_000)),
    new RegExp(
      `^JsonError: line 1, column ${MAX_JSON_DEPTH + 1}: nested deeper than ${MAX_JSON_DEPTH} levels$`,
    ),
  );
});

Deno.test("parseJson reads a 100,000-account genesis in linear time", () => {
  const entries = Array.from(
    { length: 100_000 },
    (_, i) => `"${i.toString(16).padStart(64, "0")}": ${i + 1}`,
  );
  const text = `{"genesis": {\n${entries.join(",\n")}\n}}`;
  const parsed = parseJson(text) as { genesis: Record<string, number> };
  assert.equal(Object.keys(parsed.genesis).length, 100_000);
  const repeated = `{"genesis": {\n${entries.join(",\n")},\n${entries[7]}\n}}`;
  assert.throws(() => parseJson(repeated), /^JsonError: line 100002, column 1: key "0{63}7" appears twice/);
});
