// Verification cost per request in Node, as ratios measured in this one
// script (so that machine speed cancels out):
//   js_node_over_nodecrypto  the package's verify (amesh.wasm deciding,
//                            node:crypto ECDSA, memory nonce store) over a
//                            bare node:crypto ECDSA verify of the same
//                            canonical string with a cached key (goal <= 1.3)
//   noble_over_js_node       @noble/curves p256.verify (pure JS ECDSA) over
//                            the package's verify (goal >= 15)
// and the size of amesh.wasm gzipped. Prints one JSON line and merges it
// into ../build/bench.json ({"ratios": {...}, "values": {...}}, the format of
// internal/tools/benchjson), keeping every other key.
// Usage: npm run bench [-- --out path] ; BENCH_N sets the requests per round.
import { createPublicKey, verify as nodeVerify, webcrypto } from "node:crypto";
import { readFileSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { p256 } from "@noble/curves/nist.js";
import { createVerifier, createSigner, generateKeyPair, publicKeyString } from "../src/index.js";

const PKG = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const outArg = process.argv.indexOf("--out");
const OUT = outArg > 0 ? resolve(process.argv[outArg + 1]) : join(PKG, "..", "build", "bench.json");
const N = Number(process.env.BENCH_N ?? 2000);

const pair = await generateKeyPair();
const pub = await publicKeyString(pair.publicKey);
const pubBytes = Buffer.from(pub, "base64");
const point = new Uint8Array(await webcrypto.subtle.exportKey("raw", pair.publicKey));
const signer = createSigner(pair);
const body = Buffer.from(JSON.stringify({ order: 42, items: ["a", "b", "c"], note: "a typical small JSON body" }));

// N distinct signed requests (distinct nonces: each is accepted once).
async function signAll(n) {
  const reqs = [];
  for (let i = 0; i < n; i++) {
    const s = await signer.sign({ method: "POST", url: `https://api.example.test/api/orders?id=${i}&b=2&a=1`, body });
    reqs.push({ target: s.target, authorization: s.authorization, message: Buffer.from(s.message),
      sig: Buffer.from(/sig="([^"]+)"/.exec(s.authorization)[1], "base64url") });
  }
  return reqs;
}

/** ns per call of fn over reqs, the median of rounds. */
async function measure(rounds, reqs, fn) {
  const t = [];
  for (let r = 0; r < rounds; r++) {
    const set = reqs[r % reqs.length];
    const t0 = process.hrtime.bigint();
    for (const q of set) await fn(q);
    t.push(Number(process.hrtime.bigint() - t0) / set.length);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
}

const ROUNDS = 7;
const sets = [];
for (let r = 0; r < ROUNDS + 1; r++) sets.push(await signAll(N));

const verifier = createVerifier({ allowList: [{ publicKey: pub, role: "controller" }], logger: null });
await verifier.ready();
if (verifier.crypto !== "node") throw new Error(`bench: expected node:crypto, got ${verifier.crypto}`);
const decide = async (q) => {
  const r = await verifier.decide({ method: "POST", target: q.target, host: "api.example.test", scheme: "https", authorization: q.authorization, body });
  if (!r.ok) throw new Error(`bench: rejected ${r.status} ${r.reason} ${r.detail}`);
};
const key = createPublicKey({ key: { kty: "EC", crv: "P-256", x: Buffer.from(point.subarray(1, 33)).toString("base64url"), y: Buffer.from(point.subarray(33)).toString("base64url") }, format: "jwk" });
const bare = (q) => {
  if (!nodeVerify("sha256", q.message, { key, dsaEncoding: "ieee-p1363" }, q.sig)) throw new Error("bench: bare verify failed");
};
const noble = (q) => {
  if (!p256.verify(q.sig, q.message, pubBytes)) throw new Error("bench: noble verify failed");
};
const viaRequest = async (q) => {
  const r = await verifier.verify(new Request(`https://api.example.test${q.target}`, { method: "POST", body, headers: { authorization: q.authorization } }));
  if (!r.ok) throw new Error(`bench: rejected ${r.status} ${r.reason}`);
};

// Warm up every path (JIT, key caches), on the spare set.
const warm = sets.pop();
for (const q of warm.slice(0, 300)) { bare(q); noble(q); }
await measure(1, [warm.slice(300, 800)], decide);

// Rounds interleave the three, so that a slower moment of a shared machine
// weighs on all of them alike; each figure is the median over rounds.
const tb = [], tj = [], tn = [];
for (let r = 0; r < ROUNDS; r++) {
  tb.push(await measure(1, [sets[r]], bare));
  tj.push(await measure(1, [sets[r]], decide));
  tn.push(await measure(1, [sets[r].slice(0, 150)], noble)); // noble is slow: fewer per round
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const tBare = median(tb), tJs = median(tj), tNoble = median(tn);
// verify(Request) adds URL parsing and reading a cloned body stream.
const reqSets = [];
for (let r = 0; r < 3; r++) reqSets.push(await signAll(Math.min(N, 1000)));
const tRequest = await measure(3, reqSets, viaRequest);

const wasm = readFileSync(join(PKG, "amesh.wasm"));
const summary = {
  ratios: {
    js_node_over_nodecrypto: +(tJs / tBare).toFixed(3),
    noble_over_js_node: +(tNoble / tJs).toFixed(2),
  },
  values: {
    js_node_verify_us: +(tJs / 1000).toFixed(2),
    js_node_verify_request_us: +(tRequest / 1000).toFixed(2),
    js_nodecrypto_verify_us: +(tBare / 1000).toFixed(2),
    js_noble_verify_us: +(tNoble / 1000).toFixed(2),
    js_wasm_bytes: wasm.length,
    js_wasm_gzip_bytes: gzipSync(wasm, { level: 9 }).length,
  },
};
console.log(JSON.stringify(summary));
const goals = [`js_node_over_nodecrypto ${summary.ratios.js_node_over_nodecrypto} (goal <= 1.3)`,
  `noble_over_js_node ${summary.ratios.noble_over_js_node} (goal >= 15)`];
console.error("bench: " + goals.join(", "));

// Merge into bench.json, keeping other benchmarks' entries.
let doc = { ratios: {}, values: {} };
if (existsSync(OUT)) doc = JSON.parse(readFileSync(OUT, "utf8"));
doc.ratios = { ...(doc.ratios ?? {}), ...summary.ratios };
doc.values = { ...(doc.values ?? {}), ...summary.values };
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, JSON.stringify(doc, null, 2) + "\n");
console.error(`bench: merged into ${OUT}`);
