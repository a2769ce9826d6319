// The Express middleware with real Express apps on loopback: a mount
// prefix, express.json() in front (with and without the raw-body hook) and
// behind, replays, limits, repeated Authorization headers.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import express from "express";
import { createSigner, generateKeyPair, publicKeyString } from "../src/index.js";
import { amesh, captureRawBody } from "../src/express.js";
import { listen, rawRequest } from "./lib/server.js";

let signer, allowList;
before(async () => {
  const pair = await generateKeyPair();
  signer = createSigner(pair);
  allowList = [{ publicKey: await publicKeyString(pair.publicKey), role: "controller", name: "node-client" }];
});

/** Runs fn against an app built by build, on a fresh server. */
async function withApp(build, fn) {
  const app = express();
  build(app);
  const s = await listen(app);
  try { await fn(s.url); } finally { await s.close(); }
}

const echo = (req, res) => res.json({ device: req.amesh.device.name, body: req.body, url: req.url, originalUrl: req.originalUrl });

test("under a mount prefix, after express.json({verify: captureRawBody})", async () => {
  await withApp((app) => {
    app.use(express.json({ verify: captureRawBody }));
    const api = express.Router();
    api.use(amesh({ allowList, logger: null }));
    api.post("/orders", echo);
    app.use("/api", api);
  }, async (url) => {
    // Spacing that JSON.stringify(req.body) would not reproduce.
    const body = '{ "amount" : 100,  "note": "\\u00e9" }';
    const r = await signer.fetch(`${url}/api/orders?b=2&a=1`, { method: "POST", body, headers: { "content-type": "application/json" } });
    const j = await r.json();
    assert.equal(r.status, 200, JSON.stringify(j));
    assert.deepEqual(j, { device: "node-client", body: { amount: 100, note: "é" }, url: "/orders?b=2&a=1", originalUrl: "/api/orders?b=2&a=1" });
  });
});

test("before express.json(): the parser behind still gets the exact bytes", async () => {
  await withApp((app) => {
    app.use("/api", amesh({ allowList, logger: null }));
    app.use(express.json());
    app.post("/api/orders", echo);
  }, async (url) => {
    const r = await signer.fetch(`${url}/api/orders`, { method: "POST", body: '{"amount":7}', headers: { "content-type": "application/json" } });
    const j = await r.json();
    assert.equal(r.status, 200, JSON.stringify(j));
    assert.deepEqual(j.body, { amount: 7 });
    assert.equal(j.originalUrl, "/api/orders");
  });
});

test("a parser in front that kept no raw bytes fails loudly, never re-serialises", async () => {
  let reached = false, error;
  await withApp((app) => {
    app.use(express.json());
    app.use("/api", amesh({ allowList, logger: null }));
    app.post("/api/orders", (req, res) => { reached = true; res.end(); });
    app.use((err, req, res, _next) => { error = err; res.status(err.status).json({ error: "server_misconfigured" }); });
  }, async (url) => {
    const r = await signer.fetch(`${url}/api/orders`, { method: "POST", body: '{"amount":7}', headers: { "content-type": "application/json" } });
    assert.equal(r.status, 500);
    assert.equal(reached, false);
    assert.equal(error.name, "BodyConsumedError");
    assert.match(error.message, /captureRawBody/);
  });
});

test("rejections: JSON bodies of the Go middleware, replay, body limit, repeated headers", async () => {
  await withApp((app) => {
    app.use("/api", amesh({ allowList, maxBodyBytes: 1024, logger: null }));
    app.all("/api/*splat", (req, res) => res.json({ ok: true }));
  }, async (url) => {
    const missing = await fetch(`${url}/api/x`);
    assert.equal(missing.status, 400);
    assert.equal(await missing.text(), '{"error":"missing_header"}');
    assert.equal(missing.headers.get("content-type"), "application/json");

    // The same signed request twice: the second is a replay.
    const s = await signer.sign({ method: "POST", url: `${url}/api/pay`, body: "x" });
    const send = () => fetch(`${url}${s.target}`, { method: "POST", body: "x", headers: { authorization: s.authorization } });
    assert.equal((await send()).status, 200);
    const replay = await send();
    assert.equal(replay.status, 401);
    assert.equal(replay.headers.get("www-authenticate"), "AuthMesh");
    assert.equal(await replay.text(), '{"error":"unauthorized"}');

    // A different body under the same signature.
    const s2 = await signer.sign({ method: "POST", url: `${url}/api/pay`, body: "x" });
    const tampered = await fetch(`${url}${s2.target}`, { method: "POST", body: "y", headers: { authorization: s2.authorization } });
    assert.equal(tampered.status, 401);

    const big = "z".repeat(2048);
    const r413 = await signer.fetch(`${url}/api/big`, { method: "POST", body: big });
    assert.equal(r413.status, 413);
    assert.equal(await r413.text(), '{"error":"payload_too_large"}');
    // Chunked, without Content-Length: read up to the limit, then 413.
    const s3 = await signer.sign({ method: "POST", url: `${url}/api/big`, body: big });
    const chunked = await rawRequest(`${url}${s3.target}`, { method: "POST", headers: ["authorization", s3.authorization], body: big });
    assert.equal(chunked.status, 413, chunked.body);

    // Two Authorization headers: Node's req.headers keeps only the first;
    // the middleware sees both and refuses the request.
    const s4 = await signer.sign({ method: "GET", url: `${url}/api/two` });
    const two = await rawRequest(`${url}${s4.target}`, { headers: ["authorization", s4.authorization, "authorization", s4.authorization] });
    assert.equal(two.status, 400);
    assert.equal(two.body, '{"error":"malformed_header"}');
  });
});
