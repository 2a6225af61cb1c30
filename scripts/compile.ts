// `deno task compile [--target T] [--output FILE]`: builds the single coin binary with the least
// permissions coin needs. deno compile fetches a runtime (denort) from the internet unless DENORT_BIN
// names a local one; when neither works this says so in one line.

import { parseArgs } from "node:util";

/** What coin needs: its files, its port, environment (COIN_DEBUG, NO_COLOR), and itself (devnet). */
export const PERMISSIONS = ["--allow-read", "--allow-write", "--allow-net", "--allow-env", "--allow-run"];

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { target: { type: "string" }, output: { type: "string" } },
    strict: true,
  });
  const output = values.output ?? (Deno.build.os === "windows" ? "coin.exe" : "coin");
  const main = new URL("../main.ts", import.meta.url).pathname;
  const args = [
    "compile",
    "--frozen",
    ...PERMISSIONS,
    ...(values.target ? ["--target", values.target] : []),
    "--output",
    output,
    main,
  ];
  const result = await new Deno.Command(Deno.execPath(), { args, stdout: "inherit", stderr: "piped" })
    .output();
  if (!result.success) {
    const detail = new TextDecoder().decode(result.stderr).trim();
    console.error(detail);
    if (Deno.env.get("DENORT_BIN") === undefined) {
      console.error(
        "coin: deno compile could not get its runtime (denort): this machine cannot download it; " +
          "set DENORT_BIN to a local denort of Deno 2.9.6 and run the task again",
      );
    } else {
      console.error(`coin: deno compile failed with DENORT_BIN=${Deno.env.get("DENORT_BIN")}`);
    }
    Deno.exit(1);
  }
  console.log(`Wrote ${output}`);
}
