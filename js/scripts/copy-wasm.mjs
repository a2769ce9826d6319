// Copies amesh.wasm into the package (js/amesh.wasm) so that the package is
// self-contained for npm pack / publish and for the tests, while the
// repository keeps a single committed copy of the module: the one the Go
// host embeds, host/wasmhost/amesh.wasm, with its stamp amesh.wasm.json.
//
// Source, in order: $AMESH_WASM (a path, e.g. build/amesh.wasm from
// `make wasm`), else ../host/wasmhost/amesh.wasm. The committed module is
// checked against the sha256 in its stamp so that a stale or truncated
// copy (a Git LFS pointer, say) fails here rather than in a test.
// Outside the repository (installed from a registry tarball, which already
// holds amesh.wasm) there is nothing to copy and the script does nothing.
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, readFileSync, renameSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const dest = join(pkg, "amesh.wasm");
const committed = resolve(pkg, "..", "host", "wasmhost", "amesh.wasm");
const src = process.env.AMESH_WASM ? resolve(process.env.AMESH_WASM) : committed;

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

if (!existsSync(src)) {
  if (!process.env.AMESH_WASM && existsSync(dest)) process.exit(0); // a published tarball
  console.error(`copy-wasm: ${src} does not exist` +
    (process.env.AMESH_WASM ? " (AMESH_WASM)" : " (run from a checkout of the amesh repository, or set AMESH_WASM)"));
  process.exit(1);
}
const bytes = readFileSync(src);
if (bytes.length < 8 || bytes.readUInt32LE(0) !== 0x6d736100) {
  console.error(`copy-wasm: ${src} is not a WebAssembly module (${bytes.length} bytes)`);
  process.exit(1);
}
if (src === committed) {
  const stamp = JSON.parse(readFileSync(join(dirname(src), "amesh.wasm.json"), "utf8"));
  if (stamp.wasm !== sha256(bytes)) {
    console.error(`copy-wasm: ${src} does not match the sha256 in amesh.wasm.json; regenerate it with go generate ./host/wasmhost`);
    process.exit(1);
  }
}
if (existsSync(dest) && statSync(dest).size === bytes.length && sha256(readFileSync(dest)) === sha256(bytes)) {
  process.exit(0);
}
// Write beside and rename: a test starting meanwhile never sees half a module.
copyFileSync(src, dest + ".tmp");
renameSync(dest + ".tmp", dest);
console.error(`copy-wasm: ${src} -> ${dest} (${bytes.length} bytes)`);
