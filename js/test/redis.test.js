// The Redis nonce store against a real redis-server started on a free
// loopback port: a replay race across two verifiers ends in exactly one
// accept, keys and TTLs are those of the Go store, and a Redis that stops
// answering turns requests into 503s, never 200s.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createClient } from "redis";
import { createVerifier, createSigner, generateKeyPair, publicKeyString, createRedisNonceStore } from "../src/index.js";
import { freePort, need, hasCommand } from "./lib/util.js";

const present = hasCommand("redis-server");
let proc, port, client, signer, allowList;

async function startRedis() {
  proc = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  const c = createClient({ url: `redis://127.0.0.1:${port}` });
  c.on("error", () => {}); // reconnection noise; failures surface as timeouts
  for (let i = 0; ; i++) {
    try { await c.connect(); await c.ping(); return c; } catch (e) {
      if (i > 100 || proc.exitCode !== null) throw new Error(`redis-server did not start: ${e.message}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

before(async () => {
  if (!present) return;
  port = await freePort();
  client = await startRedis();
  const pair = await generateKeyPair();
  signer = createSigner(pair);
  allowList = [{ publicKey: await publicKeyString(pair.publicKey), role: "controller" }];
});
after(async () => {
  try { await client?.disconnect(); } catch { /* already down */ }
  if (proc && proc.exitCode === null) { proc.kill(); await new Promise((r) => proc.once("exit", r)); }
});

// r = 1, s = 1: well-formed, low-S, wrong.
const SIG_ONE_ONE = (() => { const b = Buffer.alloc(64); b[31] = 1; b[63] = 1; return b.toString("base64url"); })();
const missing = "install Debian's redis-server (apt-get install -y redis-server)";

async function signedRequest(url) {
  const s = await signer.sign({ method: "POST", url, body: "pay" });
  return () => new Request(url, { method: "POST", body: "pay", headers: { authorization: s.authorization } });
}

test("replay race across two verifiers sharing Redis: exactly one accept", async (t) => {
  if (!need(t, "redis-server", present, missing)) return;
  const store = createRedisNonceStore({ client });
  // Two verifiers, as two replicas behind a load balancer would be; one
  // uses node:crypto, the other WebCrypto, both the asynchronous flow.
  const a = createVerifier({ allowList, nonceStore: store, logger: null, crypto: "node" });
  const b = createVerifier({ allowList, nonceStore: store, logger: null, crypto: "webcrypto" });
  for (let round = 0; round < 5; round++) {
    const make = await signedRequest(`https://api.example.test/pay?round=${round}`);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).verify(make())));
    const ok = results.filter((r) => r.ok);
    assert.equal(ok.length, 1, `round ${round}: ${ok.length} accepted`);
    assert.ok(results.filter((r) => !r.ok).every((r) => r.status === 401 && r.reason === "replay"));
  }
});

test("keys and TTLs are the Go store's (amesh:nonce: + base64url(key || nonce), PX)", async (t) => {
  if (!need(t, "redis-server", present, missing)) return;
  const store = createRedisNonceStore({ client });
  const v = createVerifier({ allowList, nonceStore: store, logger: null, clockSkewSeconds: 40 });
  const s = await signer.sign({ method: "GET", url: "https://api.example.test/k" });
  const r = await v.verify(new Request("https://api.example.test/k", { headers: { authorization: s.authorization } }));
  assert.equal(r.ok, true);
  const key = Buffer.concat([Buffer.from(allowList[0].publicKey, "base64"), Buffer.from(s.nonce, "base64url")]);
  const redisKey = "amesh:nonce:" + key.toString("base64url");
  assert.equal(await client.get(redisKey), "1");
  const pttl = await client.pTTL(redisKey);
  assert.ok(pttl > 75000 && pttl <= 80000, `PTTL ${pttl}: nonce TTL is raised to 2 x skew (80 s)`);
});

test("Redis down: 503 service_unavailable, never 200; back up: accepted again", async (t) => {
  if (!need(t, "redis-server", present, missing)) return;
  const v = createVerifier({ allowList, nonceStore: createRedisNonceStore({ client, timeoutMs: 300 }), logger: null });
  proc.kill("SIGKILL");
  await new Promise((r) => proc.once("exit", r));
  const make = await signedRequest("https://api.example.test/down");
  const r = await v.verify(make());
  assert.equal(r.status, 503);
  assert.equal(r.error, "service_unavailable");
  assert.equal(r.reason, "nonce_store_unavailable");
  // A forged request is still a 401: the store is asked only after the signature.
  const forged = await v.decide({ method: "GET", target: "/", host: "api.example.test",
    authorization: `AuthMesh v="1",id="${allowList[0].publicKey}",ts="${Math.floor(Date.now() / 1000)}",nonce="AAAAAAAAAAAAAAAAAAAAAA",sig="${SIG_ONE_ONE}"` });
  assert.equal(forged.status, 401);
  // Restart on the same port; node-redis reconnects by itself.
  try { await client.disconnect(); } catch { /* down */ }
  client = await startRedis();
  const v2 = createVerifier({ allowList, nonceStore: createRedisNonceStore({ client }), logger: null });
  assert.equal((await v2.verify(make())).ok, true);
});
