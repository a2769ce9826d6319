// The package's API in Node: signing and verifying round trips in every
// crypto mode, signedFetch with every body type against a real server,
// bodies (not consumed, limits), the memory nonce store's bounds, low-S
// normalisation, interleaved asynchronous checks on the shared instance,
// withAmesh, and failure modes that must fail closed.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import * as amesh from "../src/index.js";
import { listen } from "./lib/server.js";

const { createVerifier, createSigner, generateKeyPair, publicKeyString, createMemoryNonceStore, withAmesh, deviceOf, errorResponse } = amesh;
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const HOST = "https://api.example.test";

let pair, signer, allowList;
before(async () => {
  pair = await generateKeyPair();
  signer = createSigner(pair);
  allowList = [{ publicKey: await publicKeyString(pair.publicKey), role: "controller", name: "laptop" }];
});

const signed = async (url, { method = "GET", body, version } = {}) => {
  const s = await signer.sign({ method, url, body, version });
  return new Request(url, { method, body, headers: { authorization: s.authorization } });
};

test("sign then verify, v1 and v2, in every crypto mode", async () => {
  for (const crypto of ["node", "webcrypto", "wasm"]) {
    const v = createVerifier({ allowList, audiences: ["api.example.test"], crypto, logger: null });
    await v.ready();
    assert.equal(v.crypto, crypto);
    for (const version of ["1", "2"]) {
      const r = await v.verify(await signed(`${HOST}/orders?b=2&a=1`, { method: "POST", body: '{"a":1}', version }));
      assert.equal(r.ok, true, `${crypto} v${version}: ${r.reason} ${r.detail}`);
      assert.equal(r.version, version);
      assert.deepEqual({ ...r.device }, { id: r.device.id, name: "laptop", role: "controller", publicKey: allowList[0].publicKey });
      assert.match(r.device.id, /^am_[A-Za-z0-9_-]{16}$/);
    }
    // v2 binds the audience: the same request sent to another host fails.
    const s = await signer.sign({ method: "GET", url: "https://other.example.test/x", version: 2 });
    const wrong = await v.verify(new Request("https://other.example.test/x", { headers: { authorization: s.authorization } }));
    assert.deepEqual([wrong.status, wrong.error, wrong.reason], [401, "unauthorized", "wrong_audience"]);
  }
});

test("requireV2 answers version 1 with 400 unsupported_version", async () => {
  const v = createVerifier({ allowList, requireV2: true, logger: null });
  const r = await v.verify(await signed(`${HOST}/x`));
  assert.deepEqual([r.status, r.error, r.reason], [400, "unsupported_version", "version_not_allowed"]);
});

test("signatures are low-S, whatever WebCrypto returned", async () => {
  // WebCrypto's s is uniform, so about half of 40 signatures are high-S
  // before the guest normalises them.
  for (let i = 0; i < 40; i++) {
    const s = await signer.sign({ method: "GET", url: `${HOST}/lows/${i}` });
    const sig = Buffer.from(/sig="([^"]+)"/.exec(s.authorization)[1], "base64url");
    assert.equal(sig.length, 64);
    const sv = BigInt("0x" + sig.subarray(32).toString("hex"));
    assert.ok(sv <= N / 2n, `signature ${i} is high-S`);
  }
});

test("a high-S signature is refused by the verifier before any ECDSA", async () => {
  const v = createVerifier({ allowList, logger: null });
  const s = await signer.sign({ method: "GET", url: `${HOST}/hs` });
  const sig = Buffer.from(/sig="([^"]+)"/.exec(s.authorization)[1], "base64url");
  const high = (N - BigInt("0x" + sig.subarray(32).toString("hex"))).toString(16).padStart(64, "0");
  const flipped = Buffer.concat([sig.subarray(0, 32), Buffer.from(high, "hex")]).toString("base64url");
  const auth = s.authorization.replace(/sig="[^"]+"/, `sig="${flipped}"`);
  // Plain ECDSA accepts the flipped form...
  const key = await webcrypto.subtle.importKey("raw", await webcrypto.subtle.exportKey("raw", pair.publicKey), { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
  assert.equal(await webcrypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, Buffer.from(flipped, "base64url"), Buffer.from(s.message)), true);
  // ...the protocol does not, in any mode.
  for (const crypto of ["node", "webcrypto", "wasm"]) {
    const r = await createVerifier({ allowList, crypto, logger: null }).verify(new Request(`${HOST}/hs`, { headers: { authorization: auth } }));
    assert.deepEqual([r.status, r.reason], [401, "bad_signature"], crypto);
  }
});

test("verify() leaves the caller's body readable and checks the exact bytes", async () => {
  const v = createVerifier({ allowList, logger: null });
  const req = await signed(`${HOST}/b`, { method: "PUT", body: "exact bytes" });
  assert.equal((await v.verify(req)).ok, true);
  assert.equal(req.bodyUsed, false);
  assert.equal(await req.text(), "exact bytes");
  const s = await signer.sign({ method: "PUT", url: `${HOST}/b`, body: "exact bytes" });
  const other = new Request(`${HOST}/b`, { method: "PUT", body: "exact bytes ", headers: { authorization: s.authorization } });
  assert.equal((await v.verify(other)).reason, "bad_signature");
});

test("body limit: 413 from Content-Length unread, and from a stream read up to the limit", async () => {
  const v = createVerifier({ allowList, maxBodyBytes: 100, logger: null });
  const big = "x".repeat(101);
  const r1 = await v.verify(await signed(`${HOST}/big`, { method: "POST", body: big }));
  assert.deepEqual([r1.status, r1.error], [413, "payload_too_large"]);
  // A stream with no length that never ends: only limit + 1 bytes are read.
  let pulled = 0;
  const endless = new ReadableStream({ pull(c) { pulled += 64; c.enqueue(new Uint8Array(64)); } });
  const s = await signer.sign({ method: "POST", url: `${HOST}/big`, body: big });
  const r2 = await v.verify(new Request(`${HOST}/big`, { method: "POST", body: endless, duplex: "half", headers: { authorization: s.authorization } }));
  assert.equal(r2.status, 413);
  assert.ok(pulled < 1000, `read ${pulled} bytes of an endless body`);
  // Exactly at the limit is fine.
  assert.equal((await v.verify(await signed(`${HOST}/big`, { method: "POST", body: "y".repeat(100) }))).ok, true);
  // Bytes handed to decide() directly are held to the same limit, in every crypto mode.
  for (const crypto of ["node", "webcrypto", "wasm"]) {
    const vc = createVerifier({ allowList, maxBodyBytes: 100, crypto, logger: null });
    const d = await vc.decide({ method: "POST", target: "/big", host: "api.example.test", authorization: s.authorization, body: new TextEncoder().encode(big) });
    assert.deepEqual([d.status, d.error], [413, "payload_too_large"], crypto);
  }
});

test("the memory nonce store: replays refused, bounded, fails closed when full, reclaims expired", async () => {
  const store = createMemoryNonceStore({ capacity: 2 });
  for (const crypto of ["node", "webcrypto"]) {
    const v = createVerifier({ allowList, nonceStore: createMemoryNonceStore(), crypto, logger: null });
    const s = await signer.sign({ method: "GET", url: `${HOST}/r` });
    const mk = () => new Request(`${HOST}/r`, { headers: { authorization: s.authorization } });
    assert.equal((await v.verify(mk())).ok, true);
    const again = await v.verify(mk());
    assert.deepEqual([again.status, again.error, again.reason], [401, "unauthorized", "replay"]);
  }
  const v = createVerifier({ allowList, nonceStore: store, logger: null });
  const now = Date.now();
  assert.equal((await v.verify(await signed(`${HOST}/1`), { now })).ok, true);
  assert.equal((await v.verify(await signed(`${HOST}/2`), { now })).ok, true);
  const full = await v.verify(await signed(`${HOST}/3`), { now });
  assert.deepEqual([full.status, full.error, full.reason], [503, "service_unavailable", "nonce_store_unavailable"]);
  // Once the first two expire (TTL 60 s), there is room again.
  const later = now + 61000;
  const s = await signer.sign({ method: "GET", url: `${HOST}/4`, now: later });
  assert.equal((await v.verify(new Request(`${HOST}/4`, { headers: { authorization: s.authorization } }), { now: later })).ok, true);
  assert.equal(store.size, 1);
});

test("a nonce store that throws gives 503; a forged request never reaches it", async () => {
  let asked = 0;
  const broken = { record() { asked++; throw new Error("down"); } };
  const v = createVerifier({ allowList, nonceStore: broken, logger: null });
  const r = await v.verify(await signed(`${HOST}/x`));
  assert.deepEqual([r.status, r.error, r.reason], [503, "service_unavailable", "nonce_store_unavailable"]);
  assert.equal(asked, 1);
  const forged = (await signer.sign({ method: "GET", url: `${HOST}/x` })).authorization.replace(/sig="(.)/, (m, c) => `sig="${c === "A" ? "B" : "A"}`);
  const f = await v.verify(new Request(`${HOST}/x`, { headers: { authorization: forged } }));
  assert.equal(f.status, 401);
  assert.equal(asked, 1, "the store was not asked for a bad signature");
});

test("many interleaved asynchronous checks on the shared instance, across verifiers", async () => {
  // Two verifiers with different allow lists share one instance; WebCrypto
  // makes every check wait between prepare and commit.
  const pair2 = await generateKeyPair();
  const signer2 = createSigner(pair2);
  const list2 = [{ publicKey: await publicKeyString(pair2.publicKey), role: "controller", name: "other" }];
  const a = createVerifier({ allowList, crypto: "webcrypto", logger: null });
  const b = createVerifier({ allowList: list2, crypto: "webcrypto", logger: null });
  const jobs = [];
  for (let i = 0; i < 60; i++) {
    const s = await (i % 2 ? signer2 : signer).sign({ method: "POST", url: `${HOST}/c/${i}`, body: `${i}` });
    const req = new Request(`${HOST}/c/${i}`, { method: "POST", body: `${i}`, headers: { authorization: s.authorization } });
    // Each verifier gets its own device's requests and the other's.
    jobs.push(a.verify(req.clone()).then((r) => ({ i, v: "a", r })), b.verify(req).then((r) => ({ i, v: "b", r })));
  }
  for (const { i, v, r } of await Promise.all(jobs)) {
    const mine = (i % 2 === 1) === (v === "b");
    assert.equal(r.ok, mine, `request ${i} at ${v}: ${r.reason}`);
    if (mine) assert.equal(r.device.name, v === "a" ? "laptop" : "other");
    else assert.equal(r.reason, "unknown_key");
  }
});

test("signedFetch sends exactly the bytes it signed, for every body type", async () => {
  const v = createVerifier({ allowList, logger: null });
  const seen = [];
  const s = await listen(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    const r = await v.decide({ method: req.method, target: req.url, host: req.headers.host, scheme: "http",
      authorization: req.headersDistinct.authorization ?? [], body });
    seen.push({ type: req.headers["content-type"], body: body.toString("latin1") });
    res.writeHead(r.ok ? 200 : r.status).end(r.ok ? r.device.name : r.reason);
  });
  try {
    const form = new FormData();
    form.append("field", "välue");
    form.append("file", new Blob([new Uint8Array([0, 255, 1])], { type: "application/octet-stream" }), "f.bin");
    const bodies = [
      ["string", "héllo", /^text\/plain;charset=UTF-8$/],
      ["Uint8Array", new Uint8Array([1, 2, 3, 250]), undefined],
      ["ArrayBuffer", new Uint8Array([9, 8]).buffer, undefined],
      ["DataView", new DataView(new Uint8Array([5, 6, 7, 8]).buffer, 1, 2), undefined],
      ["Blob", new Blob(["blob"], { type: "text/x-blob" }), /^text\/x-blob$/],
      ["FormData", form, /^multipart\/form-data; boundary=/],
      ["URLSearchParams", new URLSearchParams({ a: "b c", d: "~" }), /^application\/x-www-form-urlencoded;charset=UTF-8$/],
      ["ReadableStream", new Blob(["streamed"]).stream(), undefined],
    ];
    for (const [name, body, type] of bodies) {
      const r = await signer.fetch(`${s.url}/up/${name}?z=1&a=2`, { method: "POST", body });
      assert.equal(r.status, 200, `${name}: ${await r.text()}`);
      const last = seen.at(-1);
      if (type) assert.match(last.type ?? "", type, name);
    }
    const multipart = seen.find((x) => /^multipart/.test(x.type ?? ""));
    assert.ok(Buffer.from(multipart.body, "latin1").toString("utf8").includes('name="field"\r\n\r\nvälue'), "multipart carries the form");
    // A caller's content type is kept, except for FormData, whose boundary must match.
    const r = await signer.fetch(`${s.url}/json`, { method: "POST", body: '{"a":1}', headers: { "content-type": "application/json" } });
    assert.equal(r.status, 200);
    assert.equal(seen.at(-1).type, "application/json");
    // A Request as input.
    const r2 = await signer.fetch(new Request(`${s.url}/req`, { method: "PATCH", body: "from a Request" }));
    assert.equal(r2.status, 200);
    assert.equal(seen.at(-1).body, "from a Request");
  } finally {
    await s.close();
  }
});

test("withAmesh: JSON rejections, device for the handler, handler reads the body", async () => {
  const handler = withAmesh(async (req, env) => Response.json({ device: deviceOf(req).name, body: await req.text(), env }), { allowList, logger: null });
  const ok = await handler(await signed(`${HOST}/w`, { method: "POST", body: "payload" }), "ENV");
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { device: "laptop", body: "payload", env: "ENV" });
  const missing = await handler(new Request(`${HOST}/w`));
  assert.equal(missing.status, 400);
  assert.equal(await missing.text(), '{"error":"missing_header"}');
  assert.equal(missing.headers.get("content-type"), "application/json");
  assert.equal(missing.headers.get("cache-control"), "no-store");
  const r = errorResponse({ status: 401, error: "unauthorized" });
  assert.equal(r.headers.get("www-authenticate"), "AuthMesh");
  assert.equal(await r.text(), '{"error":"unauthorized"}');
});

test("Node's synchronous path: results are the caller's own, a renamed device shows at once", async () => {
  const v = createVerifier({ allowList, crypto: "node", logger: null });
  await v.ready();
  const a = await v.verify(await signed(`${HOST}/same`));
  assert.equal(a.ok, true, `${a.reason} ${a.detail}`);
  a.ok = false; a.status = 999; // whatever a caller does to one result...
  const b = await v.verify(await signed(`${HOST}/same`));
  assert.deepEqual([b.ok, b.status, b.device.name], [true, 200, "laptop"], "...the next is unaffected");
  assert.notEqual(a, b);
  v.setAllowList([{ ...allowList[0], name: "renamed" }]);
  const c = await v.verify(await signed(`${HOST}/same`));
  assert.deepEqual([c.ok, c.device.name], [true, "renamed"]);
  // A second device: the cached key of the first is not used for it.
  const other = await generateKeyPair();
  const otherKey = await publicKeyString(other.publicKey);
  v.setAllowList([...allowList, { publicKey: otherKey, role: "controller", name: "other" }]);
  const s = await createSigner(other).sign({ method: "GET", url: `${HOST}/o` });
  const d = await v.verify(new Request(`${HOST}/o`, { headers: { authorization: s.authorization } }));
  assert.deepEqual([d.ok, d.device.name, d.device.publicKey], [true, "other", otherKey]);
  // Its signature under the first device's id is refused.
  const forged = s.authorization.replace(/id="[^"]+"/, `id="${allowList[0].publicKey}"`);
  const e = await v.verify(new Request(`${HOST}/o`, { headers: { authorization: forged } }));
  assert.deepEqual([e.status, e.reason], [401, "bad_signature"]);
});

test("allow list: integrity failure is a 500, reload takes effect, a bad list is refused", async () => {
  const v = createVerifier({ allowList, allowListIntegrityFailure: true, logger: null });
  const r = await v.verify(await signed(`${HOST}/i`));
  assert.deepEqual([r.status, r.error], [500, "allow_list_integrity_failure"]);
  v.setAllowList(allowList);
  assert.equal((await v.verify(await signed(`${HOST}/i`))).ok, true);
  v.setAllowList([{ ...allowList[0], role: "target" }]);
  assert.equal((await v.verify(await signed(`${HOST}/i`))).reason, "role_rejected");
  v.setAllowList([]);
  assert.equal((await v.verify(await signed(`${HOST}/i`))).reason, "unknown_key");

  const bad = createVerifier({ allowList: [{ publicKey: "not a key", role: "controller" }], logger: null });
  await assert.rejects(bad.ready(), /amesh/);
  const failed = await bad.decide({ method: "GET", target: "/", host: "h", authorization: [] });
  assert.deepEqual([failed.status, failed.error], [503, "service_unavailable"], "fails closed");
  assert.throws(() => createVerifier({ allowList: [{ publicKey: allowList[0].publicKey, role: "admin" }] }), /role/);
  assert.throws(() => createVerifier({}), /allowList/);
});

test("createSigner with the private key alone recovers the public key", async () => {
  for (let i = 0; i < 5; i++) {
    const p = await generateKeyPair();
    const s = await createSigner({ privateKey: p.privateKey }).ready();
    assert.equal(s.publicKey, await publicKeyString(p.publicKey));
  }
  const alone = createSigner({ privateKey: pair.privateKey });
  const r = await createVerifier({ allowList, logger: null }).verify(await (async () => {
    const x = await alone.sign({ method: "GET", url: `${HOST}/alone` });
    return new Request(`${HOST}/alone`, { headers: { authorization: x.authorization } });
  })());
  assert.equal(r.ok, true);
});

test("createSigner refuses keys it cannot use", async () => {
  assert.throws(() => createSigner({ privateKey: pair.publicKey, publicKey: pair.publicKey }), /private key/);
  const ed = await webcrypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
  assert.throws(() => createSigner({ privateKey: ed.privateKey, publicKey: ed.publicKey }), /P-256/);
  assert.equal(pair.privateKey.extractable, false);
});

test("canonicalRequest shows what would be signed", async () => {
  const c = await amesh.canonicalRequest({ method: "post", url: "/api/orders?b=2&a=1", ts: "1743160800",
    nonce: Buffer.from("dGVzdG5vbmNl", "base64url"), body: '{"amount":100}' });
  assert.equal(c.message, "AMv1\nPOST\n/api/orders?a=1&b=2\n1743160800\ndGVzdG5vbmNl\n4d4bbe59c6aad22442cde199a6a8a5f034405fcd78fb5a81c24ef249de1c45f1");
});

test("a trapped instance is retired and replaced; pending checks fail closed", async () => {
  const { sharedInstance } = await import("../src/engine.js");
  const v = createVerifier({ allowList, crypto: "webcrypto", logger: null });
  await v.ready();
  const before = await sharedInstance();
  // A check waiting on WebCrypto while the instance dies (as after a trap).
  const pending = v.verify(await signed(`${HOST}/t1`));
  before.dead = true;
  const r = await pending;
  assert.deepEqual([r.status, r.error], [503, "service_unavailable"]);
  // The next request gets a fresh instance, configured again.
  const r2 = await v.verify(await signed(`${HOST}/t2`));
  assert.equal(r2.ok, true, r2.detail);
  assert.notEqual(await sharedInstance(), before);
});

test("verifySignature: one bare signature, with the protocol's rules", async () => {
  const key = allowList[0].publicKey;
  const message = "any bytes, not a request";
  const der = new Uint8Array(await webcrypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey, new TextEncoder().encode(message)));
  // WebCrypto gives r||s with either S; the protocol accepts the low one only.
  const r = der.slice(0, 32), s = BigInt("0x" + Buffer.from(der.slice(32)).toString("hex"));
  const low = s > N / 2n ? N - s : s, high = N - low;
  const withS = (v) => { const o = new Uint8Array(64); o.set(r); o.set(Buffer.from(v.toString(16).padStart(64, "0"), "hex"), 32); return o; };
  const sigLow = withS(low), sigHigh = withS(high);
  const text = Buffer.from(sigLow).toString("base64url");
  assert.deepEqual(await amesh.verifySignature({ publicKey: key, message, signature: sigLow }), { valid: true, reason: "ok", detail: "" });
  assert.equal((await amesh.verifySignature({ publicKey: Buffer.from(key, "base64"), message: new TextEncoder().encode(message), signature: text })).valid, true);
  const hi = await amesh.verifySignature({ publicKey: key, message, signature: sigHigh });
  assert.deepEqual([hi.valid, hi.reason], [false, "bad_signature"]);
  assert.match(hi.detail, /high-S/);
  assert.equal((await amesh.verifySignature({ publicKey: key, message: message + "!", signature: sigLow })).valid, false);
  const bad = await amesh.verifySignature({ publicKey: "not a key", message, signature: sigLow });
  assert.deepEqual([bad.valid, bad.reason], [false, "malformed_header"]);
  await assert.rejects(amesh.verifySignature({ publicKey: key, message }), /signature/);
});
