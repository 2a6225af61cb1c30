// The single binary: compiled with `deno task compile`, it runs --version, keygen and a short devnet.
// deno compile needs a runtime (denort): this test runs only when DENORT_BIN names one (or
// COIN_TEST_COMPILE=1 says the internet is reachable), and is reported as ignored otherwise.

import assert from "node:assert/strict";

const denort = Deno.env.get("DENORT_BIN");
const enabled = (denort !== undefined && (() => {
  try {
    return Deno.statSync(denort).isFile;
  } catch {
    return false;
  }
})()) || Deno.env.get("COIN_TEST_COMPILE") === "1";

const root = new URL("..", import.meta.url).pathname;

async function run(cmd: string, args: string[], cwd: string) {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test({
  name: "the compiled binary prints its version, makes a key and runs a short devnet",
  ignore: !enabled,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "coin-compile-" });
    try {
      const binary = `${dir}/coin`;
      const built = await run(Deno.execPath(), ["task", "compile", "--output", binary], root);
      assert.equal(built.code, 0, built.stderr);
      const version = await run(binary, ["--version"], dir);
      assert.equal(version.code, 0);
      const { version: expected } = JSON.parse(await Deno.readTextFile(`${root}/deno.json`));
      assert.equal(version.stdout.trim(), `coin ${expected}`);
      const keygen = await run(binary, ["keygen", "--out", `${dir}/a.key`], dir);
      assert.equal(keygen.code, 0, keygen.stderr);
      assert.match(keygen.stdout.trim().split("\n").at(-1)!, /^coin1[02-9ac-hj-np-z]{58}$/);
      const devnet = await run(
        binary,
        ["devnet", "--interval", "1", "--seconds", "6", "--dir", `${dir}/net`],
        dir,
      );
      assert.equal(devnet.code, 0, devnet.stderr);
      assert.match(devnet.stdout, /3\/3/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
