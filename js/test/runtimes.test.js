// The vectors in every runtime, with identical verdicts everywhere, and
// the interop between JavaScript and Go signers and verifiers:
//   Node (node:crypto, WebCrypto, all-wasm), Deno and Bun (spawned), workerd
//   (the npm binary serving test/runtimes/worker.js on loopback) and headless
//   Chromium (Debian's chromium through playwright-core, pages on loopback);
//   a request signed in Chromium verifies in Go; one signed by the Go client
//   verifies in workerd.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateKeyPairSync, createHash } from "node:crypto";
import * as amesh from "../src/index.js";
import { runVectors } from "./lib/vectors.js";
import { PKG, CI, need, hasBin, binPath, loadVectorFiles, freePort, waitHTTP } from "./lib/util.js";
import { startWorkerd } from "./lib/workerd.js";
import { startPageServer, launchChromium, CHROMIUM } from "./lib/browser.js";
import { hasGo, runGo } from "./lib/gohelper.js";

const files = loadVectorFiles();
const verdicts = new Map(); // runtime -> Map(id -> got)

/** Asserts every verdict matches its vector and records them for the cross-runtime check. */
function check(runtime, results) {
  assert.ok(results.length > 0, `${runtime}: no verdicts`);
  const bad = results.filter((r) => r.got !== r.want);
  assert.deepEqual(bad, [], `${runtime}: ${bad.length} of ${results.length} verdicts differ from the vectors`);
  assert.ok(results.some((r) => r.id.includes("/request/")), `${runtime}: no request vectors ran`);
  verdicts.set(runtime, new Map(results.map((r) => [r.id, r.got])));
}

function runCLI(cmd, args) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: PKG, maxBuffer: 64 << 20, env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" } },
      (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(" ")}: ${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout))));
  });
}

let vectorsPath, tmp;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), "amesh-vectors-"));
  vectorsPath = join(tmp, "vectors.json");
  writeFileSync(vectorsPath, JSON.stringify(files));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

test("vectors in Node (node:crypto, WebCrypto, wasm)", async () => {
  check("node", await runVectors(amesh, files, { modes: ["node", "webcrypto", "wasm"] }));
});

test("vectors in Deno", async (t) => {
  if (!need(t, "deno", hasBin("deno"), "run npm ci in js/ (devDependency deno)")) return;
  const out = await runCLI(binPath("deno"), ["run", "--no-prompt", "--no-config", "--no-lock", "--allow-read", "test/runtimes/cli.mjs", vectorsPath, "webcrypto,wasm"]);
  t.diagnostic(out.runtime);
  check("deno", out.results);
});

test("vectors in Bun", async (t) => {
  if (!need(t, "bun", hasBin("bun"), "run npm ci in js/ (devDependency bun)")) return;
  const out = await runCLI(binPath("bun"), ["test/runtimes/cli.mjs", vectorsPath, "webcrypto,wasm"]);
  t.diagnostic(out.runtime);
  check("bun", out.results);
});

/** Starts serve.mjs in a runtime and checks signed, forged and unsigned requests against it. */
async function serveTest(t, cmd, args) {
  const pair = await amesh.generateKeyPair();
  const signer = amesh.createSigner(pair);
  const allow = [{ publicKey: await amesh.publicKeyString(pair.publicKey), role: "controller", name: "served" }];
  const port = await freePort();
  const proc = spawn(cmd, [...args, "test/runtimes/serve.mjs", String(port), JSON.stringify(allow)], { cwd: PKG, stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" } });
  let log = "";
  proc.stdout.on("data", (d) => { log += d; });
  proc.stderr.on("data", (d) => { log += d; });
  try {
    await waitHTTP(`http://127.0.0.1:${port}/`, proc, () => log);
    const base = `http://127.0.0.1:${port}`;
    for (const version of ["1", "2"]) {
      const s = amesh.createSigner({ ...pair, version });
      const r = await s.fetch(`${base}/api/x?b=1&a=2`, { method: "POST", body: new URLSearchParams({ k: "v w" }) });
      const j = await r.json();
      assert.equal(r.status, 200, JSON.stringify(j) + log);
      assert.equal(j.device, "served");
      assert.equal(j.bodyLength, "k=v+w".length);
    }
    const unsigned = await fetch(`${base}/api/x`);
    assert.equal(unsigned.status, 400);
    assert.deepEqual(await unsigned.json(), { error: "missing_header" });
    const sig = await signer.sign({ method: "GET", url: `${base}/api/x` });
    const send = () => fetch(`${base}/api/x`, { headers: { authorization: sig.authorization } });
    assert.equal((await send()).status, 200);
    const replay = await send();
    assert.equal(replay.status, 401);
    assert.deepEqual(await replay.json(), { error: "unauthorized" });
  } finally {
    proc.kill();
  }
}

test("withAmesh under Deno.serve", async (t) => {
  if (!need(t, "deno", hasBin("deno"), "run npm ci in js/ (devDependency deno)")) return;
  await serveTest(t, binPath("deno"), ["run", "--no-prompt", "--no-config", "--no-lock", "--allow-read", "--allow-net=127.0.0.1"]);
});

test("withAmesh under Bun.serve", async (t) => {
  if (!need(t, "bun", hasBin("bun"), "run npm ci in js/ (devDependency bun)")) return;
  await serveTest(t, binPath("bun"), []);
});

// A Go client key for the workerd interop test: generated here, its
// public key in the worker's allow list, its scalar handed to Go.
const goKey = (() => {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = privateKey.export({ format: "jwk" });
  const x = Buffer.from(jwk.x, "base64url"), y = Buffer.from(jwk.y, "base64url");
  const pub = Buffer.concat([Buffer.from([2 | (y[31] & 1)]), x]).toString("base64");
  return { privateHex: Buffer.from(jwk.d, "base64url").toString("hex"), publicKey: pub };
})();

describe("workerd", () => {
  let w;
  before(async () => {
    if (!hasBin("workerd")) return;
    w = await startWorkerd({ bindings: {
      ALLOW_LIST: [{ publicKey: goKey.publicKey, role: "controller", name: "go-client" }],
      AUDIENCES: [],
    } });
  });
  after(async () => { await w?.stop(); });

  test("vectors in workerd", async (t) => {
    if (!need(t, "workerd", hasBin("workerd"), "run npm ci in js/ (devDependency workerd)")) return;
    const r = await fetch(`${w.url}/vectors`, { method: "POST", body: JSON.stringify({ files, modes: ["webcrypto", "wasm"] }) });
    assert.equal(r.status, 200, await r.clone().text());
    const out = await r.json();
    t.diagnostic(out.runtime);
    check("workerd", out.results);
  });

  test("a request signed by the Go client verifies in workerd", async (t) => {
    if (!need(t, "workerd", hasBin("workerd"), "run npm ci in js/ (devDependency workerd)")) return;
    if (!need(t, "go", hasGo(), "install Go 1.26")) return;
    const body = Buffer.from('{"amount":100,"note":"\u00e9"}');
    const reqs = [
      { method: "POST", url: `${w.url}/protected/orders?b=2&a=1`, body_b64: body.toString("base64"), content_type: "application/json" },
      { method: "GET", url: `${w.url}/protected/a/../items?q=a%20b&z=~` },
      { method: "PUT", url: `${w.url}/protected/empty` },
    ];
    for (const version of ["1", "2"]) {
      const res = await runGo("send", { private_hex: goKey.privateHex, version, requests: reqs });
      assert.equal(res.length, reqs.length);
      for (const [i, r] of res.entries()) {
        assert.equal(r.status, 200, `v${version} ${reqs[i].method} ${reqs[i].url}: ${r.body}\n${w.log()}`);
        const j = JSON.parse(r.body);
        assert.equal(j.device.name, "go-client");
        const b = Buffer.from(reqs[i].body_b64 ?? "", "base64");
        assert.equal(j.bodyLength, b.length);
        assert.equal(j.bodySha256, createHash("sha256").update(b).digest("hex"), "the handler reads the verified bytes");
      }
    }
    // Unsigned and wrongly signed requests get the Go middleware's JSON errors.
    const r = await fetch(`${w.url}/protected/x`);
    assert.equal(r.status, 400);
    assert.deepEqual(await r.json(), { error: "missing_header" });
    const forged = await fetch(`${w.url}/protected/x`, { headers: { authorization: `AuthMesh v="1",id="${goKey.publicKey}",ts="${Math.floor(Date.now() / 1000)}",nonce="AAAAAAAAAAAAAAAAAAAAAA",sig="${"A".repeat(86)}"` } });
    assert.equal(forged.status, 401);
    assert.equal(forged.headers.get("www-authenticate"), "AuthMesh");
    assert.deepEqual(await forged.json(), { error: "unauthorized" });
  });
});

describe("Chromium", () => {
  let srv, browser, page;
  const present = existsSync(CHROMIUM);
  before(async () => {
    if (!present) return;
    srv = await startPageServer();
    browser = await launchChromium();
    page = await browser.ctx.newPage();
    await page.goto(`${srv.url}/`);
  });
  after(async () => { await browser?.close(); await srv?.close(); });
  const missing = "install Debian's chromium (apt-get install -y chromium) or set AMESH_CHROMIUM";

  test("vectors in Chromium", async (t) => {
    if (!need(t, "chromium", present, missing)) return;
    const out = await page.evaluate(async (files) => {
      const amesh = await import("/src/index.js");
      const { runVectors } = await import("/test/lib/vectors.js");
      return { runtime: navigator.userAgent, results: await runVectors(amesh, files, { modes: ["webcrypto", "wasm"] }) };
    }, files);
    t.diagnostic(out.runtime);
    check("chromium", out.results);
  });

  test("requests signed in Chromium with a key kept in IndexedDB verify in Go", async (t) => {
    if (!need(t, "chromium", present, missing)) return;
    if (!need(t, "go", hasGo(), "install Go 1.26")) return;
    const signInPage = () => page.evaluate(async () => {
      const amesh = await import("/src/index.js");
      const pair = await amesh.loadOrCreateKeyPair({ id: "test-device" });
      // The private key alone: the public key is recovered from signatures.
      const signer = amesh.createSigner({ privateKey: pair.privateKey });
      await signer.ready();
      if (signer.publicKey !== await amesh.publicKeyString(pair.publicKey)) throw new Error("recovered the wrong public key");
      const extractable = pair.privateKey.extractable;
      const bodies = {
        string: "héllo",
        bytes: new Uint8Array([0, 1, 2, 255]),
        blob: new Blob(["blob ", new Uint8Array([0xe2, 0x82, 0xac])], { type: "application/x-test" }),
        form: (() => { const f = new FormData(); f.append("a", "1"); f.append("file", new Blob(["data"], { type: "text/plain" }), "f.txt"); return f; })(),
        params: new URLSearchParams({ q: "a b", z: "~" }),
      };
      const statuses = [];
      for (const [name, body] of Object.entries(bodies)) {
        statuses.push((await signer.fetch(`/capture/${name}?b=2&a=1`, { method: "POST", body })).status);
      }
      statuses.push((await signer.fetch("/capture/get/./x/../y?k=%7e")).status);
      const v2 = amesh.createSigner({ ...pair, version: 2 });
      statuses.push((await v2.fetch("/capture/v2", { method: "PATCH", body: "{}" })).status);
      return { publicKey: signer.publicKey, extractable, statuses };
    });
    const first = await signInPage();
    assert.equal(first.extractable, false, "the private key is not extractable");
    assert.ok(first.statuses.every((s) => s === 204));
    // The key persists: a reload signs with the same key.
    await page.reload();
    const second = await signInPage();
    assert.equal(second.publicKey, first.publicKey, "the key pair came back from IndexedDB");

    const captured = srv.captured.splice(0);
    assert.equal(captured.length, 14);
    const form = captured.find((c) => c.target.startsWith("/capture/form"));
    assert.match(form.contentType, /^multipart\/form-data; boundary=/, "FormData is sent with its boundary");
    assert.ok(form.body.includes(form.contentType.split("boundary=")[1]), "the body is the multipart serialisation sent");
    assert.equal(captured.find((c) => c.target.startsWith("/capture/params")).contentType, "application/x-www-form-urlencoded;charset=UTF-8");
    assert.equal(captured.find((c) => c.target.startsWith("/capture/blob")).contentType, "application/x-test");
    const res = await runGo("verify", {
      allow_list: [{ public_key: first.publicKey, role: "controller", name: "browser" }],
      requests: captured.map((c) => ({ method: c.method, target: c.target, host: c.host, scheme: "http",
        authorization: c.authorization, body_b64: c.body.toString("base64") })),
    });
    for (const [i, r] of res.entries()) {
      assert.deepEqual([r.status, r.error], [200, ""], `${captured[i].method} ${captured[i].target}: ${r.reason} ${r.detail ?? ""}`);
    }
    // And Go's verifier rejects the same bytes replayed.
    const replay = await runGo("verify", {
      allow_list: [{ public_key: first.publicKey, role: "controller" }],
      requests: [0, 0].map(() => ({ method: captured[0].method, target: captured[0].target, host: captured[0].host,
        authorization: captured[0].authorization, body_b64: captured[0].body.toString("base64") })),
    });
    assert.deepEqual(replay.map((r) => r.reason), ["ok", "replay"]);
  });
});

test("identical verdicts in every runtime", (t) => {
  const node = verdicts.get("node");
  assert.ok(node, "the Node run produced verdicts");
  const ran = [...verdicts.keys()];
  t.diagnostic(`runtimes compared: ${ran.join(", ")}`);
  if (CI) for (const r of ["deno", "bun", "workerd", "chromium"]) assert.ok(verdicts.has(r), `CI=true: no verdicts from ${r}`);
  // The modes every runtime runs: the same ids, the same verdicts.
  const shared = [...node.keys()].filter((id) => !/\/node(\/|$)/.test(id));
  for (const [rt, m] of verdicts) {
    if (rt === "node") continue;
    const mine = [...m.keys()].filter((id) => !/\/node(\/|$)/.test(id));
    assert.deepEqual(mine.sort(), [...shared].sort(), `${rt} ran other vectors than node`);
    for (const id of shared) assert.equal(m.get(id), node.get(id), `${rt} differs from node on ${id}`);
  }
});
