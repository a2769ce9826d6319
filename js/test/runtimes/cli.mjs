// Runs the vectors in Deno or Bun: `cli.mjs <vectors.json> <modes>` prints
// the verdicts as one JSON line. The vectors file is written by the Node
// test (test/runtimes.test.js), which compares the verdicts.
import * as amesh from "../../src/index.js";
import { runVectors } from "../lib/vectors.js";
import { readFile } from "node:fs/promises";

const args = globalThis.Deno ? Deno.args : process.argv.slice(2);
const files = JSON.parse(await readFile(args[0], "utf8"));
const results = await runVectors(amesh, files, { modes: args[1].split(",") });
const runtime = globalThis.Deno ? `deno ${Deno.version.deno}` : `bun ${Bun.version}`;
console.log(JSON.stringify({ runtime, results }));
