// Headless Chromium (Debian's /usr/bin/chromium driven by playwright-core)
// and a loopback HTTP server that serves the package to it: the page
// imports /src/index.js and /test/lib/vectors.js as ES modules, loads
// /amesh.wasm, and sends signed requests to /capture/*, which records each
// request exactly as it arrived (raw request-target, headers, body bytes).
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, normalize } from "node:path";
import { PKG } from "./util.js";

export const CHROMIUM = process.env.AMESH_CHROMIUM ?? "/usr/bin/chromium";

const TYPES = { ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".html": "text/html", ".json": "application/json" };

export async function startPageServer() {
  const captured = [];
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    if (req.url.startsWith("/capture/")) {
      captured.push({ method: req.method, target: req.url, host: req.headers.host,
        authorization: req.headersDistinct.authorization ?? [], contentType: req.headers["content-type"] ?? "", body });
      res.writeHead(204).end();
      return;
    }
    const path = new URL(req.url, "http://x").pathname;
    if (path === "/") { res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>amesh</title>"); return; }
    const file = normalize(join(PKG, path));
    if (!file.startsWith(PKG + "/") || file.includes("node_modules")) { res.writeHead(404).end(); return; }
    try {
      const data = await readFile(file);
      res.writeHead(200, { "content-type": TYPES[file.slice(file.lastIndexOf("."))] ?? "application/octet-stream" }).end(data);
    } catch { res.writeHead(404).end(); }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${server.address().port}`, captured, close: () => new Promise((r) => server.close(r)) };
}

export async function launchChromium() {
  const { chromium } = await import("playwright-core");
  const dataDir = mkdtempSync(join(tmpdir(), "amesh-chromium-"));
  // A persistent context on a fresh profile: IndexedDB survives reloads
  // within the test, and nothing of this run is left for the next.
  const ctx = await chromium.launchPersistentContext(dataDir, {
    executablePath: CHROMIUM, headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
      "--no-first-run", "--disable-component-update", "--disable-sync"],
  });
  return {
    ctx,
    async close() { await ctx.close(); rmSync(dataDir, { recursive: true, force: true }); },
  };
}
