// The verifier: amesh.wasm decides, the host lends crypto and the nonce
// store. Two flows (docs/ABI.md section 6):
//   - synchronous, in Node with node:crypto and a synchronous store (the
//     memory store): one amesh_verify call, the guest calling back into
//     node:crypto for ECDSA and into the store for the nonce;
//   - asynchronous everywhere else (WebCrypto, or any store that returns a
//     promise, such as Redis): amesh_prepare, the host verifies the
//     signature, records the nonce only if it was valid, amesh_commit.

import { sharedInstance, GuestError, consoleErrors } from "./engine.js";
import { RecordWriter, CFG, ENTRY, REQ, RES, SIGCHECK, text, raw, int, utf8, maxTextBytes, parseRecord } from "./records.js";
import { createMemoryNonceStore } from "./nonce.js";
import { base64, readLimited, isNode } from "./util.js";

export const DEFAULT_MAX_BODY_BYTES = 1048576;
export const DEFAULT_CLOCK_SKEW_SECONDS = 30;
export const DEFAULT_NONCE_TTL_SECONDS = 60;

// sig_status and nonce_status of amesh_commit (ABI 3).
const SIG_VALID = 0, SIG_INVALID = 1, SIG_GUEST = 2;
const NONCE_BY_GUEST = 0, NONCE_FRESH = 1, NONCE_REPLAY = 2, NONCE_FAILED = 3;

// DER prefix of a P-256 SubjectPublicKeyInfo; the 65-byte point follows.
const SPKI_P256 = Uint8Array.from([0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
  0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00]);

const KEY_CACHE_MAX = 4096;

// Cache keys for public keys: one char per byte (see nonce.js).
const latin1Decoder = new TextDecoder("latin1");
const latin1 = (b) => latin1Decoder.decode(b);

/** A bounded cache: cleared when full (keys are the few devices of an allow list). */
function boundedSet(map, k, v) {
  if (map.size >= KEY_CACHE_MAX) map.clear();
  map.set(k, v);
  return v;
}

let nodeCrypto; // node:crypto, loaded once in Node
async function loadNodeCrypto() {
  if (!nodeCrypto) nodeCrypto = await import("node:crypto");
  return nodeCrypto;
}

/** Whether a and b (equal lengths) hold the same bytes. */
function sameBytes(a, b) {
  for (let i = a.length - 1; i >= 0; i--) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * node:crypto ECDSA with KeyObjects cached per key. Most requests come from
 * the device of the request before, so the last key is checked first,
 * without building a cache key.
 */
function nodeVerifier(c) {
  const keys = new Map();
  const lastPoint = new Uint8Array(65);
  let lastKey = null;
  return (point, msg, sig) => {
    let key = lastKey !== null && sameBytes(point, lastPoint) ? lastKey : undefined;
    if (!key) key = keys.get(latin1(point));
    if (!key) {
      const id = latin1(point);
      const der = new Uint8Array(SPKI_P256.length + 65);
      der.set(SPKI_P256);
      der.set(point, SPKI_P256.length);
      key = boundedSet(keys, id, c.createPublicKey({ key: Buffer.from(der), format: "der", type: "spki" }));
    }
    if (key !== lastKey) {
      lastPoint.set(point);
      lastKey = key;
    }
    return c.verify("sha256", msg, { key, dsaEncoding: "ieee-p1363" }, sig) ? SIG_VALID : SIG_INVALID;
  };
}

/** WebCrypto ECDSA with imported keys cached per key. */
function webCryptoVerifier() {
  const keys = new Map();
  const subtle = globalThis.crypto.subtle;
  return async (point, msg, sig) => {
    const id = latin1(point);
    let key = keys.get(id);
    if (!key) {
      key = boundedSet(keys, id, subtle.importKey("raw", point, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]));
      key.catch(() => keys.delete(id));
    }
    return (await subtle.verify({ name: "ECDSA", hash: "SHA-256" }, await key, sig, msg)) ? SIG_VALID : SIG_INVALID;
  };
}

function entryRecord(e, i) {
  const key = e.publicKey ?? e.key;
  if (typeof key !== "string" && !(key instanceof Uint8Array)) {
    throw new TypeError(`amesh: allow list entry ${i}: publicKey must be the base64 key string or its 33 bytes`);
  }
  if (e.role !== "controller" && e.role !== "target") {
    throw new TypeError(`amesh: allow list entry ${i}: role must be "controller" or "target"`);
  }
  const w = new RecordWriter();
  w.bytes(ENTRY.key, typeof key === "string" ? utf8(key) : key);
  w.text(ENTRY.role, e.role);
  const id = e.id ?? e.deviceId;
  if (id) w.text(ENTRY.id, id);
  if (e.name) w.text(ENTRY.name, e.name);
  return w;
}

function positive(name, v, unit) {
  if (v === undefined || v === null || v === 0) return 0;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) throw new TypeError(`amesh: ${name} must be a positive number of ${unit}`);
  return v;
}

const resultText = new TextDecoder();
const DEVICE_CACHE_MAX = 4096;

/**
 * Reads a decision straight from the result record in guest memory (the
 * per-request path: no copy of the record, strings decoded natively, one
 * device object per device). Falls back to parseRecord for anything
 * unusual, which also reports errors.
 */
function readDecision(view, devices) {
  const dv = new DataView(view.buffer, view.byteOffset, view.length);
  let status = -1, code = "", reason = "", detail = "", version = "", id = "", name = "", role = "", keyOff = -1;
  for (let o = 0; o < view.length;) {
    if (view.length - o < 5) return null;
    const tag = view[o], n = dv.getUint32(o + 1, true);
    o += 5;
    if (n > view.length - o) return null;
    switch (tag) {
      case RES.status: if (n !== 8) return null; status = Number(dv.getBigInt64(o, true)); break;
      case RES.code: code = resultText.decode(view.subarray(o, o + n)); break;
      case RES.reason: reason = resultText.decode(view.subarray(o, o + n)); break;
      case RES.detail: detail = resultText.decode(view.subarray(o, o + n)); break;
      case RES.version: version = resultText.decode(view.subarray(o, o + n)); break;
      case RES.deviceId: id = resultText.decode(view.subarray(o, o + n)); break;
      case RES.deviceName: name = resultText.decode(view.subarray(o, o + n)); break;
      case RES.deviceRole: role = resultText.decode(view.subarray(o, o + n)); break;
      case RES.key: if (n !== 33) return null; keyOff = o; break;
      default: return null; // an error result, or a field this reader does not expect
    }
    o += n;
  }
  if (status < 0) return null;
  let device = null;
  if (id) {
    const k = keyOff >= 0 ? base64(view.subarray(keyOff, keyOff + 33)) : "";
    const cacheKey = id + "\0" + name + "\0" + role + "\0" + k;
    device = devices.get(cacheKey);
    if (!device) {
      if (devices.size >= DEVICE_CACHE_MAX) devices.clear();
      device = Object.freeze({ id, name, role, publicKey: k });
      devices.set(cacheKey, device);
    }
  }
  const ok = status === 200;
  return { ok, status, error: ok ? null : code, device: ok ? device : null, claimedDevice: ok ? null : device,
    version: version || null, reason, detail };
}

/** m, unless it is an error result (ABI 7), which throws. */
function checked(m) {
  if (m.has(RES.error)) throw new GuestError("amesh.wasm: " + text(m, RES.error));
  return m;
}

/** A decision as verify() returns it. */
function decision(m) {
  const status = int(m, RES.status);
  const ok = status === 200;
  const id = text(m, RES.deviceId);
  const key = raw(m, RES.key);
  const device = id ? { id, name: text(m, RES.deviceName), role: text(m, RES.deviceRole), publicKey: key ? base64(key) : "" } : null;
  return {
    ok,
    status,
    error: ok ? null : text(m, RES.code),
    // Only an accepted request has an authenticated device; a rejected one
    // may name the device its key claims (for the log, never for access).
    device: ok ? device : null,
    claimedDevice: ok ? null : device,
    version: text(m, RES.version) || null,
    reason: text(m, RES.reason),
    detail: text(m, RES.detail),
  };
}

function failure(status, error, reason, detail) {
  return { ok: false, status, error, device: null, claimedDevice: null, version: null, reason, detail };
}

/** The 503 of an engine that could not decide (ABI 7: fail closed). */
const unavailable = (e) => failure(503, "service_unavailable", "wasm_engine_unavailable", String(e && e.message || e));

/**
 * The JSON error response for a rejection, as the Go middleware sends it:
 * {"error":"<code>"}, no-store, and a 401 names its scheme.
 */
export function errorResponse(result) {
  const headers = { "content-type": "application/json", "cache-control": "no-store" };
  if (result.status === 401) headers["www-authenticate"] = "AuthMesh";
  return new Response(JSON.stringify({ error: result.error }), { status: result.status, headers });
}

export class Verifier {
  constructor(opts = {}) {
    if (!Array.isArray(opts.allowList)) throw new TypeError("amesh: createVerifier needs allowList (an array of {publicKey, role, id?, name?})");
    this.wasm = opts.wasm;
    this.logger = opts.logger === undefined ? consoleErrors : opts.logger;
    this.now = opts.now ?? Date.now;
    this.scheme = opts.scheme;
    if (this.scheme !== undefined && this.scheme !== "http" && this.scheme !== "https") throw new TypeError('amesh: scheme must be "http" or "https"');
    const skew = positive("clockSkewSeconds", opts.clockSkewSeconds, "seconds") || DEFAULT_CLOCK_SKEW_SECONDS;
    const ttl = positive("nonceTtlSeconds", opts.nonceTtlSeconds, "seconds") || DEFAULT_NONCE_TTL_SECONDS;
    this.maxBodyBytes = positive("maxBodyBytes", opts.maxBodyBytes, "bytes") || DEFAULT_MAX_BODY_BYTES;
    // The TTL the host store uses in the asynchronous flow, as the guest
    // computes it for nonce_record: never below 2 x skew (ABI 4.1).
    this.nonceTtlMs = Math.max(ttl * 1000, 2 * skew * 1000);
    this.store = opts.nonceStore ?? createMemoryNonceStore();
    if (typeof this.store.record !== "function") throw new TypeError("amesh: nonceStore must have record(key, ttlMs, nowMs)");
    this.cryptoPref = opts.crypto ?? "auto";
    if (!["auto", "node", "webcrypto", "wasm"].includes(this.cryptoPref)) throw new TypeError('amesh: crypto must be "auto", "node", "webcrypto" or "wasm"');
    this.opts = { skew, ttl, audiences: opts.audiences ?? [], requireV2: !!opts.requireV2, maxPending: opts.maxPending };
    this.setAllowList(opts.allowList, { integrityFailure: !!opts.allowListIntegrityFailure });
    this._ready = null;
    this.devices = new Map();
  }

  /**
   * Replaces the allow list (a reload); integrityFailure says the list
   * failed its integrity check, and makes every request that reaches the
   * lookup a 500, never a 401 against an empty list.
   */
  setAllowList(list, { integrityFailure = false } = {}) {
    const w = new RecordWriter();
    list.forEach((e, i) => w.record(CFG.allowEntry, entryRecord(e, i)));
    if (integrityFailure) w.bool(CFG.integrityFailure, true);
    for (const a of this.opts.audiences) w.text(CFG.authority, a);
    if (this.opts.requireV2) w.bool(CFG.requireV2, true);
    w.int(CFG.clockSkewMs, this.opts.skew * 1000);
    w.int(CFG.nonceTtlMs, this.opts.ttl * 1000);
    w.int(CFG.maxBodyBytes, this.maxBodyBytes);
    w.int(CFG.nonceStore, 1); // the host's store, through nonce_record or commit
    // 1: verify in wasm; 2: node:crypto and WebCrypto hash the message
    // themselves, so the guest does not hash it in wasm as well.
    w.int(CFG.crypto, this.cryptoPref === "wasm" ? 1 : 2);
    if (this.opts.maxPending) w.int(CFG.maxPending, this.opts.maxPending);
    this.config = w.finish();
    this.gen = (this.gen ?? 0) + 1;
  }

  /**
   * Loads amesh.wasm, picks the crypto and applies the configuration.
   * verify() does it on first use; call it at start-up where that is
   * allowed (not in a Worker's global scope) to fail early on a bad
   * configuration.
   */
  ready() {
    if (!this._ready) {
      this._ready = this._init();
      this._ready.catch(() => { this._ready = null; });
    }
    return this._ready;
  }

  async _init() {
    let kind = this.cryptoPref;
    if (kind === "auto") kind = isNode() ? "node" : globalThis.crypto?.subtle ? "webcrypto" : "wasm";
    if (kind === "node") this.nodeVerify = nodeVerifier(await loadNodeCrypto());
    if (kind === "webcrypto") {
      if (!globalThis.crypto?.subtle) throw new Error("amesh: WebCrypto (crypto.subtle) is not available here (an insecure context?)");
      this.webVerify = webCryptoVerifier();
    }
    if (kind === "wasm" && !this.store.synchronous) {
      throw new Error("amesh: crypto \"wasm\" needs a synchronous nonce store (the guest verifies and records in one call)");
    }
    this.cryptoKind = kind;
    this.syncFlow = this.store.synchronous === true && kind !== "webcrypto";
    await this.instance();
    return this;
  }

  /** The shared instance if it is ready and configured for this verifier, else null. */
  readyInstance() {
    const inst = this._inst;
    return inst && !inst.dead && inst.configOwner === this && inst.configGen === this.gen ? inst : null;
  }

  /** The shared instance, configured for this verifier. */
  async instance() {
    const fast = this.readyInstance();
    if (fast) return fast;
    const inst = this._inst = await sharedInstance(this.wasm, this.logger);
    if (inst.configOwner !== this || inst.configGen !== this.gen) {
      inst.logger = this.logger;
      inst.call("amesh_configure", { size: this.config.length, writeTo: (d) => d.set(this.config) });
      inst.configOwner = this;
      inst.configGen = this.gen;
    }
    return inst;
  }

  /** The crypto in use: "node", "webcrypto" or "wasm" (after ready()). */
  get crypto() { return this.cryptoKind; }

  /**
   * Verifies a Fetch API Request as a server received it: request.url is
   * the URL the runtime built from the request-target and Host, and the body
   * is read from a clone, so the caller can still read it.
   */
  async verify(request, { now } = {}) {
    const url = new URL(request.url);
    const auth = request.headers.get("authorization");
    const parts = {
      method: request.method,
      target: url.pathname + url.search,
      host: url.host,
      scheme: this.scheme ?? (url.protocol === "http:" ? "http" : "https"),
      // Headers joins repeated Authorization fields with ", ", which no
      // valid credential contains: two headers become one malformed one.
      authorization: auth === null ? [] : [auth],
      now,
    };
    // A request without credentials is answered without reading its body.
    if (auth !== null && request.body !== null) {
      if (request.bodyUsed) throw new TypeError("amesh: verify() needs the request body, and it was already read");
      const cl = request.headers.get("content-length");
      const declared = cl === null ? NaN : Number(cl);
      if (Number.isFinite(declared) && declared > this.maxBodyBytes) {
        parts.bodySize = declared; // decided without reading a byte of it
      } else if (Number.isFinite(declared)) {
        // A declared length within the limit: let the platform read it in
        // one native call. (On the wire the length frames the body; a body
        // longer than declared, possible only for an in-process Request, is
        // still judged by its real length.)
        const b = new Uint8Array(await request.clone().arrayBuffer());
        if (b.length > this.maxBodyBytes) parts.bodySize = b.length;
        else parts.body = b;
      } else {
        const r = await readLimited(request.clone().body, this.maxBodyBytes);
        if (r.over) parts.bodySize = r.size;
        else parts.body = r.bytes;
      }
    }
    return this.decide(parts);
  }

  /**
   * Decides a request given as parts: {method, target (the request-target
   * exactly as received), host, scheme, authorization (every value, in
   * order), body (the exact bytes) or bodySize (of a body over the limit,
   * not read), now (ms)}. What the Express middleware and tests use.
   */
  async decide(p) {
    if (!this.cryptoKind) {
      try { await this.ready(); } catch (e) { return this.engineFailure(e); }
    }
    const nowMs = p.now ?? this.now();
    const auths = p.authorization == null ? [] : Array.isArray(p.authorization) ? p.authorization : [p.authorization];
    // The body, or its digest: decided before touching the instance, since
    // a WebCrypto digest awaits and the record is written in place.
    let body = null, digest = p.bodySha256, size = p.bodySize;
    if (digest === undefined && size !== undefined && p.body === undefined) {
      digest = new Uint8Array(32); // over the limit and not read: the guest answers 413 after the bodiless checks
    } else if (digest === undefined && p.body && p.body.length > this.maxBodyBytes) {
      digest = new Uint8Array(32); // not worth hashing: the guest answers 413 after the bodiless checks
      size = p.body.length;
    } else if (digest === undefined && p.body && p.body.length) {
      if (this.webVerify && p.body.length > 4096) {
        // SHA-256 compiled to wasm runs at ~70 MB/s; the platform's is native.
        digest = new Uint8Array(await crypto.subtle.digest("SHA-256", p.body));
        size = p.body.length;
      } else if (this.nodeVerify) {
        // node:crypto's SHA-256 beats the guest's even on a few bytes.
        digest = nodeCrypto.hash ? nodeCrypto.hash("sha256", p.body, "buffer") : nodeCrypto.createHash("sha256").update(p.body).digest();
        size = p.body.length;
      } else {
        body = p.body;
      }
    }
    let inst = this.readyInstance();
    if (!inst) {
      try { inst = await this.instance(); } catch (e) { return this.engineFailure(e); }
    }
    const method = p.method ?? "", target = p.target ?? "", host = p.host ?? "", scheme = p.scheme ?? "";
    let max = 5 * 7 + 8 + maxTextBytes(method) + maxTextBytes(target) + maxTextBytes(host) + maxTextBytes(scheme) + (body ? body.length : 0) + (digest ? 5 + 32 + 8 : 0);
    for (const a of auths) max += 5 + maxTextBytes(a);
    const fill = (w) => {
      w.text(REQ.method, method);
      w.text(REQ.target, target);
      if (host) w.text(REQ.host, host);
      if (scheme) w.text(REQ.scheme, scheme);
      for (const a of auths) w.text(REQ.authorization, a);
      if (digest !== undefined) {
        w.bytes(REQ.bodySha256, digest);
        w.int(REQ.bodySize, size ?? 0);
      } else if (body) {
        w.bytes(REQ.body, body);
      }
      w.int(REQ.nowMs, nowMs);
    };
    let res;
    try {
      res = this.syncFlow ? this.decideSync(inst, max, fill) : await this.decideAsync(inst, max, fill, nowMs);
    } catch (e) {
      if (!(e instanceof GuestError)) throw e;
      res = unavailable(e);
    }
    if (!res.ok) this.log(res, p);
    return res;
  }

  engineFailure(e) {
    this.logger?.error?.(`amesh: engine unavailable: ${e && e.message || e}`);
    return unavailable(e);
  }

  decideSync(inst, max, fill) {
    if (!this.syncImports) {
      // Made once: the per-request path allocates no closures.
      const store = this.store;
      this.syncImports = {
        ecdsaVerify: this.nodeVerify ?? (() => SIG_GUEST),
        nonceRecord: (key, nowMs, ttlMs) => {
          const r = store.record(key, ttlMs, nowMs);
          if (r && typeof r.then === "function") {
            r.catch(() => {});
            throw new Error("the nonce store returned a promise but says it is synchronous");
          }
          return r ? 0 : 1;
        },
        read: (view) => {
          // Accepted requests of one device get the same result record,
          // byte for byte: the last one's decision is reused, copied.
          const c = this.lastResult;
          if (c && c.bytes.length === view.length && sameBytes(view, c.bytes)) return { ...c.decision };
          const d = readDecision(view, this.devices);
          if (d === null) return decision(checked(parseRecord(view)));
          if (d.ok) this.lastResult = { bytes: view.slice(), decision: { ...d } };
          return d;
        },
      };
    }
    const s = this.syncImports;
    inst.ecdsaVerify = s.ecdsaVerify;
    inst.nonceRecord = s.nonceRecord;
    inst.logger = this.logger;
    try {
      return inst.callDirect("amesh_verify", max, fill, s.read);
    } finally {
      inst.ecdsaVerify = inst.nonceRecord = () => 2;
    }
  }

  async decideAsync(inst, max, fill, nowMs) {
    const m = inst.callDirect("amesh_prepare", max, fill);
    if (m.has(RES.status)) return decision(m); // rejected before the signature
    const handle = int(m, RES.handle);
    let committed = false;
    try {
      const point = raw(m, RES.keyPoint), msg = raw(m, RES.message), sig = raw(m, RES.signature);
      let sigStatus;
      if (this.nodeVerify) sigStatus = this.nodeVerify(point, msg, sig);
      else if (this.webVerify) sigStatus = await this.webVerify(point, msg, sig);
      else sigStatus = SIG_GUEST; // (only with a synchronous store: see _init)
      let nonceStatus = NONCE_BY_GUEST;
      if (sigStatus === SIG_VALID) {
        // Signature first, nonce last: only a valid request is recorded.
        try {
          nonceStatus = (await this.store.record(raw(m, RES.nonceKey), this.nonceTtlMs, nowMs)) ? NONCE_FRESH : NONCE_REPLAY;
        } catch (e) {
          this.logger?.error?.(`amesh: nonce store failed: ${e && e.message || e}`);
          nonceStatus = NONCE_FAILED;
        }
      }
      if (inst.dead) throw new GuestError("amesh: the instance trapped while a check was pending");
      committed = true;
      return decision(inst.commit(handle, sigStatus, nonceStatus));
    } finally {
      if (!committed) inst.release(handle);
    }
  }

  log(res, p) {
    const l = this.logger;
    if (!l) return;
    const dev = res.claimedDevice ? ` device=${res.claimedDevice.id}` : "";
    const line = `amesh: request rejected status=${res.status} code=${res.error} reason=${res.reason}` +
      ` method=${p.method} target=${JSON.stringify(p.target)}${dev}${res.detail ? ` detail=${JSON.stringify(res.detail)}` : ""}`;
    if (res.status >= 500) l.error?.(line);
    else l.info?.(line);
  }
}

/** createVerifier(options): see index.d.ts. */
export function createVerifier(options) {
  return new Verifier(options);
}

let sigCheckNode; // node:crypto ECDSA for verifySignature, made once

/**
 * verifySignature({publicKey, message, signature}): one bare signature,
 * checked by amesh.wasm with the protocol's rules (r and s in range,
 * low-S, a key on the curve) and ECDSA by node:crypto in Node, inside the
 * guest elsewhere. See index.d.ts.
 */
export async function verifySignature({ publicKey, message, signature, wasm } = {}) {
  if (typeof publicKey !== "string" && !(publicKey instanceof Uint8Array)) throw new TypeError("amesh: verifySignature needs publicKey (base64 text or 33 bytes)");
  if (typeof signature !== "string" && !(signature instanceof Uint8Array)) throw new TypeError("amesh: verifySignature needs signature (base64url text or 64 bytes)");
  const msg = typeof message === "string" ? utf8(message) : message ?? new Uint8Array(0);
  if (!(msg instanceof Uint8Array)) throw new TypeError("amesh: verifySignature: message must be a string or a Uint8Array");
  if (isNode() && !sigCheckNode) sigCheckNode = nodeVerifier(await loadNodeCrypto());
  const w = new RecordWriter();
  w.bytes(SIGCHECK.key, typeof publicKey === "string" ? utf8(publicKey) : publicKey);
  if (msg.length) w.bytes(SIGCHECK.message, msg);
  if (typeof signature === "string") w.text(SIGCHECK.sigText, signature);
  else w.bytes(SIGCHECK.signature, signature);
  const inst = await sharedInstance(wasm);
  // Lent for this synchronous call only; without it the guest verifies.
  inst.ecdsaVerify = sigCheckNode ?? (() => SIG_GUEST);
  let m;
  try {
    m = inst.call("amesh_verify_signature", w);
  } finally {
    inst.ecdsaVerify = () => SIG_GUEST;
  }
  return { valid: int(m, RES.status) === 200, reason: text(m, RES.reason), detail: text(m, RES.detail) };
}
