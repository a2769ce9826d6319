// Helpers of the Node test suite: paths, free ports, dependency checks.
import { createServer } from "node:net";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";

export const PKG = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const ROOT = resolve(PKG, "..");
export const CI = process.env.CI === "true";

/** A free TCP port on 127.0.0.1 (a race with other processes is possible but harmless in tests). */
export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}

/** Polls url until it answers, the process exits, or 20 s pass. */
export async function waitHTTP(url, proc, log) {
  const end = Date.now() + 20000;
  for (;;) {
    if (proc && proc.exitCode !== null) throw new Error(`process exited (${proc.exitCode}) before serving ${url}:\n${log?.()}`);
    try { await fetch(url); return; } catch { /* not yet */ }
    if (Date.now() > end) throw new Error(`nothing answered at ${url} within 20 s:\n${log?.()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The executable of an npm devDependency (node_modules/.bin). */
export function binPath(name) { return join(PKG, "node_modules", ".bin", name); }

/**
 * Whether a dependency is there. Under CI=true a missing one fails the
 * test that needs it, naming it; locally the test is skipped with a message.
 * Returns a skip message, or "" when present.
 */
export function need(t, name, present, how) {
  if (present) return true;
  const msg = `${name} is missing: ${how}`;
  if (CI) throw new Error(`CI=true: ${msg}`);
  t.skip(msg);
  return false;
}

export function hasCommand(cmd) {
  try { execFileSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }); return true; } catch { return false; }
}

export const hasBin = (name) => existsSync(binPath(name));

/** The vector files: testdata/vectors/*.json and AMESH_EXTRA_VECTORS (an unreadable one throws). */
export function loadVectorFiles() {
  const dir = join(ROOT, "testdata", "vectors");
  const paths = readdirSync(dir).filter((f) => f.endsWith(".json")).sort().map((f) => join(dir, f));
  if (paths.length === 0) throw new Error(`no vector files in ${dir}`);
  for (const p of (process.env.AMESH_EXTRA_VECTORS ?? "").split(":")) if (p) paths.push(resolve(p));
  return paths.map((p) => {
    const data = JSON.parse(readFileSync(p, "utf8"));
    if (data.schema !== "amesh-vectors/1") throw new Error(`${p}: schema ${JSON.stringify(data.schema)}, want "amesh-vectors/1"`);
    return { name: p.startsWith(dir) ? p.slice(dir.length + 1) : p, data };
  });
}
