// Starts workerd (the npm `workerd` binary) serving test/runtimes/worker.js
// on a free loopback port.
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { PKG, freePort, waitHTTP, binPath } from "./util.js";

export async function startWorkerd({ bindings = {} } = {}) {
  const bin = binPath("workerd");
  const dir = mkdtempSync(join(tmpdir(), "amesh-workerd-"));
  const modules = [["worker.js", "test/runtimes/worker.js"], ["test/lib/vectors.js", "test/lib/vectors.js"]];
  for (const f of readdirSync(join(PKG, "src")).filter((f) => f.endsWith(".js"))) modules.push([`src/${f}`, `src/${f}`]);
  for (const [name, src] of modules) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    copyFileSync(join(PKG, src), join(dir, name));
  }
  copyFileSync(join(PKG, "amesh.wasm"), join(dir, "amesh.wasm"));
  const port = await freePort();
  const b = Object.entries(bindings).map(([k, v]) => `(name = ${JSON.stringify(k)}, json = ${JSON.stringify(JSON.stringify(v))})`);
  writeFileSync(join(dir, "config.capnp"), `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .worker) ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
);
const worker :Workerd.Worker = (
  modules = [
${modules.map(([n]) => `    (name = ${JSON.stringify(n)}, esModule = embed ${JSON.stringify(n)}),`).join("\n")}
    (name = "amesh.wasm", wasm = embed "amesh.wasm"),
  ],
  bindings = [ ${b.join(", ")} ],
  compatibilityDate = "2025-01-01",
);
`);
  const proc = spawn(bin, ["serve", join(dir, "config.capnp")], { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  proc.stdout.on("data", (d) => { log += d; });
  proc.stderr.on("data", (d) => { log += d; });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHTTP(url + "/", proc, () => log);
  } catch (e) {
    proc.kill();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    url, log: () => log,
    async stop() {
      proc.kill();
      await new Promise((r) => (proc.exitCode !== null ? r() : proc.once("exit", r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
