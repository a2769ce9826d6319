// Builds and runs js/test/go (the Go side of the interop tests).
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, hasCommand } from "./util.js";

let built;
export const hasGo = () => hasCommand(process.env.GO ?? "go");

/** Builds the helper once per process; returns its path. */
export function buildGoHelper() {
  if (!built) {
    const dir = mkdtempSync(join(tmpdir(), "amesh-go-"));
    // The binary is some 10 MB: removed when the test process exits.
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
    const out = join(dir, "amesh-js-interop");
    execFileSync(process.env.GO ?? "go", ["build", "-o", out, "./js/test/go"], { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"] });
    built = out;
  }
  return built;
}

/** Runs `amesh-js-interop cmd` with input as JSON on stdin. */
export function runGo(cmd, input) {
  const bin = buildGoHelper();
  return new Promise((resolve, reject) => {
    const p = execFile(bin, [cmd], { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`amesh-js-interop ${cmd}: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout));
    });
    p.stdin.end(JSON.stringify(input));
  });
}
