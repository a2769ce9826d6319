// Runs the known-answer vectors (testdata/vectors, schema amesh-vectors/1)
// through the package's public API, in whatever runtime imports it: Node,
// Deno, Bun, workerd and Chromium all run this same file and hand back the
// same list of verdicts, which the Node test compares with the vectors and
// across runtimes.
//
// Sections and how the JS API exercises them:
//   request   verifier.decide() with the raw request-target (what the
//             Express middleware does), and verifier.verify(new Request())
//             where a Fetch Request can carry the vector (origin-form
//             target, a valid Host, a method Request accepts);
//   header    a request carrying the header to a verifier with an empty
//             allow list: 400 gives the header's error, 401 means it parsed;
//   device_id an allow-list entry without an id and a request with a
//             well-formed wrong signature: the 401 names the derived ID;
//   verify    every vector through verifySignature(), and those whose
//             messages are shaped like canonical strings also as requests
//             (body digest from the BODYHASH line) in every crypto mode;
//   canonical canonicalRequest(), the signer's first step.

const dec = (s) => {
  s = s.replace(/-/g, "+").replace(/_/g, "/");
  if (s.length % 4) s += "=".repeat(4 - (s.length % 4));
  const b = atob(s);
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
};
const hex = (s) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const cat = (a, b) => { const o = new Uint8Array(a.length + b.length); o.set(a); o.set(b, a.length); return o; };
const DEFAULT_HOST = "api.example.test";
// r = 1, s = 1 as raw r||s in unpadded base64url.
const SIG_ONE_ONE = (() => {
  const b = new Uint8Array(64); b[31] = 1; b[63] = 1;
  return btoa(String.fromCharCode(...b)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
})();

function allowList(rv) {
  return (rv.allow_list ?? []).map((e) => ({ publicKey: e.public_key, role: e.role, id: e.device_id, name: e.name }));
}

function authValues(rv) {
  if (Array.isArray(rv.authorizations)) return rv.authorizations;
  return rv.authorization ? [rv.authorization] : [];
}

/** Verifier options of a request vector, with its replayed nonces recorded. */
function verifierFor(amesh, rv, mode) {
  const c = rv.verifier ?? {};
  const store = amesh.createMemoryNonceStore();
  if (rv.replayed_nonces?.length) {
    const m = /\bid\s*=\s*"([^"]*)"/i.exec(authValues(rv)[0] ?? "");
    if (!m) throw new Error(`vector ${rv.id}: replayed nonces but no id in the header`);
    const key = dec(m[1]);
    for (const n of rv.replayed_nonces) store.record(cat(key, dec(n)), 3600e3, rv.now * 1000);
  }
  return amesh.createVerifier({
    allowList: allowList(rv), allowListIntegrityFailure: !!rv.allow_list_integrity_failure,
    audiences: c.authorities ?? [], requireV2: !!c.require_v2, clockSkewSeconds: c.skew_seconds || undefined,
    nonceTtlSeconds: c.nonce_ttl_seconds || undefined, maxBodyBytes: c.max_body_bytes || undefined,
    nonceStore: store, crypto: mode, logger: null,
  });
}

const verdict = (r) => `${r.status} ${r.error ?? ""}`.trim();

/** A Fetch Request for a request vector, or null when one cannot carry it. */
function fetchRequest(rv) {
  const auths = authValues(rv);
  if (!rv.target.startsWith("/") || auths.some((a) => a === "")) return null;
  const host = rv.host ?? DEFAULT_HOST;
  if (!host) return null;
  let url;
  try {
    url = new URL(`${rv.scheme || "https"}://${host}${rv.target}`);
  } catch { return null; }
  if (url.host !== host.toLowerCase() && !/:\d/.test(host)) return null;
  const headers = new Headers();
  try { for (const a of auths) headers.append("authorization", a); } catch { return null; }
  const body = dec(rv.body_b64 ?? "");
  try {
    return new Request(url, { method: rv.method, headers, body: body.length ? body : undefined });
  } catch { return null; }
}

/**
 * runVectors(amesh, files, {modes}) -> [{id, got, want}], files being
 * [{name, data}] with data the parsed JSON. modes are the verifier's crypto
 * options to run the decision sections with ("node", "webcrypto", "wasm").
 */
export async function runVectors(amesh, files, { modes = ["webcrypto", "wasm"] } = {}) {
  const out = [];
  const push = (id, got, want) => out.push({ id, got, want });
  for (const { name, data } of files) {
    for (const [i, rv] of (data.request ?? []).entries()) {
      const id = `${name}/request/${rv.id || "#" + i}`;
      const want = verdict({ status: rv.status, error: rv.error });
      for (const mode of modes) {
        const v = verifierFor(amesh, rv, mode);
        const r = await v.decide({
          method: rv.method, target: rv.target, host: rv.host ?? DEFAULT_HOST, scheme: rv.scheme || "https",
          authorization: authValues(rv), body: dec(rv.body_b64 ?? ""), now: rv.now * 1000,
        });
        push(`${id}/${mode}/raw`, verdict(r), want);
        const req = fetchRequest(rv);
        if (req) {
          const v2 = verifierFor(amesh, rv, mode);
          const r2 = await v2.verify(req, { now: rv.now * 1000 });
          push(`${id}/${mode}/Request`, verdict(r2), want);
        }
      }
    }
    for (const [i, hv] of (data.header ?? []).entries()) {
      const id = `${name}/header/${hv.id || "#" + i}`;
      for (const mode of modes) {
        const v = amesh.createVerifier({ allowList: [], crypto: mode, logger: null });
        const r = await v.decide({ method: "GET", target: "/", host: DEFAULT_HOST, authorization: hv.value === "" ? [] : [hv.value], now: 1743160800000 });
        let got = r.status === 400 ? r.error : r.status === 401 ? "ok" : verdict(r);
        if (got === "ok" && hv.fields && r.version !== hv.fields.v) got = `ok but version ${r.version}`;
        push(`${id}/${mode}`, got, hv.result);
      }
    }
    for (const [i, dv] of (data.device_id ?? []).entries()) {
      const id = `${name}/device_id/${dv.id || "#" + i}`;
      const sig = SIG_ONE_ONE; // well-formed, in range, low-S, and wrong
      const auth = `AuthMesh v="1",id="${dv.public_key}",ts="1743160800",nonce="AAAAAAAAAAAAAAAAAAAAAA",sig="${sig}"`;
      for (const mode of modes) {
        const v = amesh.createVerifier({ allowList: [{ publicKey: dv.public_key, role: "controller" }], crypto: mode, logger: null });
        const r = await v.decide({ method: "GET", target: "/", host: DEFAULT_HOST, authorization: [auth], now: 1743160800000 });
        push(`${id}/${mode}`, r.claimedDevice?.id ?? verdict(r), dv.device_id);
      }
    }
    for (const [i, vv] of (data.verify ?? []).entries()) {
      const id = `${name}/verify/${vv.id || "#" + i}`;
      const bare = await amesh.verifySignature({ publicKey: vv.public_key, message: vv.message, signature: vv.sig });
      push(`${id}/bare`, bare.valid ? "valid" : "invalid", vv.valid ? "valid" : "invalid");
      const lines = vv.message.split("\n");
      const v2 = lines[0] === "AMv2";
      if (!((lines.length === 6 && lines[0] === "AMv1") || (lines.length === 7 && v2)) || !/^[0-9a-f]{64}$/.test(lines[lines.length - 1])) {
        continue; // not expressible as a request
      }
      const [method, authority, target, ts, nonce, bodyHash] = v2 ? lines.slice(1) : [lines[1], DEFAULT_HOST, ...lines.slice(2)];
      const auth = `AuthMesh v="${v2 ? 2 : 1}",id="${vv.public_key}",ts="${ts}",nonce="${nonce}",sig="${vv.sig}"`;
      for (const mode of modes) {
        let v;
        try {
          v = amesh.createVerifier({ allowList: [{ publicKey: vv.public_key, role: "controller" }], crypto: mode, logger: null });
          await v.ready();
        } catch {
          // A key the allow list refuses cannot sign anything valid.
          push(`${id}/${mode}`, "invalid", vv.valid ? "valid" : "invalid");
          continue;
        }
        const r = await v.decide({ method, target, host: authority, authorization: [auth], bodySha256: hex(bodyHash), bodySize: 0, now: Number(ts) * 1000 });
        push(`${id}/${mode}`, r.ok ? "valid" : "invalid", vv.valid ? "valid" : "invalid");
      }
    }
    for (const [i, cv] of (data.canonical ?? []).entries()) {
      const id = `${name}/canonical/${cv.id || "#" + i}`;
      let got;
      try {
        const c = await amesh.canonicalRequest({
          version: cv.version || "1", method: cv.method, url: cv.target, authority: cv.authority || undefined,
          body: dec(cv.body_b64 ?? ""), ts: cv.ts, nonce: dec(cv.nonce),
        });
        got = c.message;
      } catch (e) {
        got = `error: ${e.message}`;
      }
      push(id, got, cv.expected);
    }
  }
  return out;
}
