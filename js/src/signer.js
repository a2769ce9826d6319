// Signing with a WebCrypto key that never leaves WebCrypto: the guest
// builds the canonical string (amesh_sign_prepare), WebCrypto signs it, the
// guest checks the signature, normalises it to low-S and formats the header
// (amesh_sign_finish). The private key never enters guest memory.

import { sharedInstance, consoleErrors } from "./engine.js";
import { RecordWriter, SIGN, RES, text, raw, int, utf8, fromUtf8 } from "./records.js";
import { base64, fromBase64 } from "./util.js";
import { recoverPublicKey } from "./recover.js";

const P256 = { name: "ECDSA", namedCurve: "P-256" };
const EMPTY = new Uint8Array(0);

/** Compresses a 65-byte uncompressed P-256 point to 33 bytes. */
function compress(point) {
  if (point.length === 33) return point;
  if (point.length !== 65 || point[0] !== 4) throw new TypeError("amesh: not an uncompressed P-256 point");
  const out = new Uint8Array(33);
  out[0] = 2 | (point[64] & 1);
  out.set(point.subarray(1, 33), 1);
  return out;
}

/**
 * The protocol's public key string (base64 of the compressed point) of a
 * WebCrypto public key, raw point bytes or a key string.
 */
export async function publicKeyBytes(key) {
  if (typeof key === "string") return compress(fromBase64(key));
  if (key instanceof Uint8Array) return compress(key);
  if (key && key.type === "public") return compress(new Uint8Array(await crypto.subtle.exportKey("raw", key)));
  throw new TypeError("amesh: publicKey must be a WebCrypto public key, its raw point or its base64 string");
}

export async function publicKeyString(key) { return base64(await publicKeyBytes(key)); }

/**
 * Generates a device key pair: the private key is non-extractable (it can
 * sign, never be exported), the public key is extractable (it is public).
 */
export function generateKeyPair() {
  return crypto.subtle.generateKey(P256, false, ["sign", "verify"]);
}

function idbRequest(r) {
  return new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
}

/**
 * In a browser: the key pair stored in IndexedDB under id, generated and
 * stored on first use. IndexedDB keeps the CryptoKey objects themselves
 * (structured clone), so the private key stays non-extractable across
 * reloads; script on the page can use it, but cannot read it.
 */
export async function loadOrCreateKeyPair({ dbName = "amesh", storeName = "keys", id = "device", indexedDB = globalThis.indexedDB } = {}) {
  if (!indexedDB) throw new Error("amesh: IndexedDB is not available here");
  const open = indexedDB.open(dbName, 1);
  open.onupgradeneeded = () => open.result.createObjectStore(storeName);
  const db = await idbRequest(open);
  try {
    const found = await idbRequest(db.transaction(storeName, "readonly").objectStore(storeName).get(id));
    if (found && found.privateKey && found.publicKey) return found;
    const pair = await generateKeyPair();
    const tx = db.transaction(storeName, "readwrite");
    // add, not put: of two tabs racing to create the key, one wins and the
    // other reads the winner's key.
    const added = idbRequest(tx.objectStore(storeName).add({ privateKey: pair.privateKey, publicKey: pair.publicKey }, id));
    try {
      await added;
      return { privateKey: pair.privateKey, publicKey: pair.publicKey };
    } catch {
      return await idbRequest(db.transaction(storeName, "readonly").objectStore(storeName).get(id));
    }
  } finally {
    db.close();
  }
}

/** Deletes a stored key pair (revocation on this side). */
export async function deleteStoredKeyPair({ dbName = "amesh", storeName = "keys", id = "device", indexedDB = globalThis.indexedDB } = {}) {
  const open = indexedDB.open(dbName, 1);
  open.onupgradeneeded = () => open.result.createObjectStore(storeName);
  const db = await idbRequest(open);
  try { await idbRequest(db.transaction(storeName, "readwrite").objectStore(storeName).delete(id)); } finally { db.close(); }
}

/**
 * Serialises a fetch body once, so that the bytes hashed are the bytes
 * sent. Returns the bytes and the content type the serialisation implies
 * (multipart boundary, urlencoded, text/plain, the Blob's type).
 */
export async function serialiseBody(body) {
  if (body === undefined || body === null) return { bytes: EMPTY, type: null };
  if (typeof body === "string") return { bytes: utf8(body), type: "text/plain;charset=UTF-8" };
  if (body instanceof ArrayBuffer) return { bytes: new Uint8Array(body.slice(0)), type: null };
  if (ArrayBuffer.isView(body)) {
    // A copy: the caller may reuse its buffer before the request is sent.
    return { bytes: new Uint8Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength)), type: null };
  }
  // Blob, FormData, URLSearchParams, ReadableStream: let the platform
  // serialise it exactly as fetch would, then send those bytes.
  const r = new Response(body);
  return { bytes: new Uint8Array(await r.arrayBuffer()), type: r.headers.get("content-type") };
}

function absoluteURL(url) {
  const base = globalThis.location && globalThis.location.href;
  return base ? new URL(url, base) : new URL(url);
}

export class Signer {
  constructor({ privateKey, publicKey, version = "1", wasm, now, logger, fetch } = {}) {
    if (!privateKey || privateKey.type !== "private" || privateKey.algorithm?.name !== "ECDSA" || privateKey.algorithm?.namedCurve !== "P-256") {
      throw new TypeError("amesh: createSigner needs privateKey, a WebCrypto ECDSA P-256 private key");
    }
    if (!privateKey.usages.includes("sign")) throw new TypeError('amesh: the private key must allow "sign"');
    this.privateKey = privateKey;
    this._publicKey = publicKey;
    this.version = String(version);
    if (this.version !== "1" && this.version !== "2") throw new TypeError('amesh: version must be "1" or "2"');
    this.wasm = wasm;
    this.now = now ?? Date.now;
    this.logger = logger === undefined ? consoleErrors : logger;
    this._fetch = fetch;
    this.fetch = this.fetch.bind(this);
  }

  /**
   * Resolves the public key (given, or recovered from two signatures of
   * the private key when only that was given); returns the signer.
   */
  async ready() {
    if (!this.key) {
      this.key = await publicKeyBytes(this._publicKey ?? await recoverPublicKey(this.privateKey));
      this.publicKey = base64(this.key);
    }
    return this;
  }

  /**
   * Signs a request. Options: method, url (absolute, or relative to the
   * page), body (bytes or a string: exactly what will be sent), version,
   * now (ms), nonce (bytes, for tests). Returns {authorization, target,
   * ts, nonce, message}: send the body given to the URL's origin with that
   * Authorization header.
   */
  async sign({ method = "GET", url, body, version, now, nonce } = {}) {
    await this.ready();
    const u = absoluteURL(url);
    const v = String(version ?? this.version);
    const w = new RecordWriter();
    if (v !== "1") w.text(SIGN.version, v);
    w.text(SIGN.method, method);
    w.text(SIGN.url, u.href);
    if (v === "2") {
      w.text(SIGN.authority, u.host);
      w.text(SIGN.scheme, u.protocol.slice(0, -1));
    }
    const bytes = typeof body === "string" ? utf8(body) : body ?? EMPTY;
    if (bytes.length) w.bytes(SIGN.body, bytes);
    w.bytes(SIGN.key, this.key);
    w.int(SIGN.nowMs, now ?? this.now());
    if (nonce) w.bytes(SIGN.nonce, nonce);
    let inst = await sharedInstance(this.wasm, this.logger);
    const p = inst.call("amesh_sign_prepare", w);
    const handle = int(p, RES.handle);
    let done = false;
    try {
      const sig = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, this.privateKey, raw(p, RES.message)));
      if (inst.dead) throw new Error("amesh: the amesh.wasm instance trapped while signing");
      done = true;
      const r = inst.signFinish(handle, sig); // low-S normalised and checked by the guest
      return { authorization: text(r, RES.authorization), target: text(r, RES.target), ts: text(r, RES.ts),
        nonce: text(r, RES.nonce), message: fromUtf8(raw(r, RES.message)) };
    } finally {
      if (!done) inst.release(handle);
    }
  }

  /**
   * fetch() with the request signed: the body (string, bytes, Blob,
   * FormData, URLSearchParams, stream) is serialised first and exactly
   * those bytes are hashed and sent, with the content type the
   * serialisation implies.
   */
  async fetch(input, init = {}) {
    let url = input, method = init.method, headers = new Headers(init.headers), body = init.body;
    if (typeof Request !== "undefined" && input instanceof Request) {
      url = input.url;
      method = method ?? input.method;
      if (init.headers === undefined) headers = new Headers(input.headers);
      if (body === undefined && input.body !== null) body = await input.clone().arrayBuffer();
    }
    method = (method ?? "GET").toUpperCase();
    const { bytes, type } = await serialiseBody(body);
    if (type && (!headers.has("content-type") || (typeof FormData !== "undefined" && body instanceof FormData))) {
      // A multipart body only parses with its own boundary.
      headers.set("content-type", type);
    }
    const s = await this.sign({ method, url: String(url instanceof URL ? url.href : url), body: bytes });
    headers.set("authorization", s.authorization);
    const u = absoluteURL(String(url instanceof URL ? url.href : url));
    const f = this._fetch ?? globalThis.fetch;
    const req = { ...init, method, headers };
    delete req.body;
    if (bytes.length || (method !== "GET" && method !== "HEAD")) req.body = bytes;
    if (method === "GET" || method === "HEAD") delete req.body;
    return f(u.href, req);
  }
}

/** createSigner({privateKey, publicKey, version}): see index.d.ts. */
export function createSigner(options) { return new Signer(options); }

const CANON_KEY = fromBase64("A3zyexiNA09+ilI4AwS1GsPAiWnid/IbNaYLSPxHZpl4"); // any valid key: nothing is signed

/**
 * The canonical string a request would be signed over, and the
 * request-target it would be sent to: {version, method, url or target,
 * authority, scheme, body, ts (seconds, digits), nonce (bytes)}. Nothing is
 * signed. For debugging a 401, and for the canonical vectors.
 */
export async function canonicalRequest({ version = "1", method = "GET", url, target, authority, scheme, body, ts, nonce, wasm } = {}) {
  const w = new RecordWriter();
  if (String(version) !== "1") w.text(SIGN.version, String(version));
  w.text(SIGN.method, method);
  if (target !== undefined) w.text(SIGN.target, target); else w.text(SIGN.url, url);
  if (authority) w.text(SIGN.authority, authority);
  if (scheme) w.text(SIGN.scheme, scheme);
  const bytes = typeof body === "string" ? utf8(body) : body ?? EMPTY;
  if (bytes.length) w.bytes(SIGN.body, bytes);
  w.bytes(SIGN.key, CANON_KEY);
  if (ts !== undefined) w.int(SIGN.nowMs, Number(ts) * 1000);
  if (nonce) w.bytes(SIGN.nonce, nonce);
  const inst = await sharedInstance(wasm);
  const p = inst.call("amesh_sign_prepare", w);
  inst.release(int(p, RES.handle));
  return { message: fromUtf8(raw(p, RES.message)), target: text(p, RES.target), ts: text(p, RES.ts), nonce: text(p, RES.nonce) };
}
