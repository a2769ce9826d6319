// The hand-written TypeScript declarations type-check against a program
// using the API (test/types/check.ts), with Deno's TypeScript.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PKG, need, hasBin, binPath } from "./lib/util.js";

test("index.d.ts and express.d.ts describe the API", async (t) => {
  if (!need(t, "deno", hasBin("deno"), "run npm ci in js/ (devDependency deno)")) return;
  const dir = mkdtempSync(join(tmpdir(), "amesh-types-"));
  const config = join(dir, "deno.json");
  writeFileSync(config, "{}"); // not the package's package.json: a plain check
  try {
    const out = await new Promise((resolve) => execFile(binPath("deno"), ["check", "--no-lock", "--config", config, "test/types/check.ts"],
      { cwd: PKG, env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" } }, (err, stdout, stderr) => resolve({ err, text: stdout + stderr })));
    assert.equal(out.err, null, out.text);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
