// @ts-self-types="./express.d.ts"
// Express / Connect middleware (Node). It verifies the request as it
// arrived: the full request-target (req.originalUrl, which a mount such as
// app.use("/api", ...) does not strip, unlike req.url) and the exact body
// bytes, however a body parser treats them.
//
// The body, in order of preference:
//  1. amesh mounted before any body parser (recommended): it reads the raw
//     stream (up to the limit + 1 byte) and then replays exactly those bytes
//     to whatever parser comes next, so express.json() and friends work
//     unchanged after it;
//  2. a parser in front that captured the raw bytes through its verify hook:
//     express.json({ verify: captureRawBody }) (also urlencoded, text, raw);
//     req.rawBody (a Buffer) set by other means is used the same way;
//  3. a parser in front consumed the stream without capturing it: the bytes
//     sent are gone, and re-serialising req.body would hash something else.
//     The middleware then fails loudly: next(err) with err.status 500 and a
//     message saying how to fix the setup. It never guesses.
// Note that body-parser inflates gzip/deflate bodies before its verify hook
// sees them, while the signature covers the bytes sent: with
// Content-Encoding, use option 1.

import { Readable } from "node:stream";
import { Verifier } from "./verifier.js";

const RAW = Symbol.for("amesh.rawBody");

/**
 * A body-parser verify hook that keeps the raw bytes for amesh:
 * app.use(express.json({ verify: captureRawBody })).
 */
export function captureRawBody(req, _res, buf) {
  req[RAW] = buf;
}

/** Every Authorization value received, in order (req.headers keeps only the first). */
function authorizationValues(req) {
  const out = [];
  const raw = req.rawHeaders;
  if (Array.isArray(raw)) {
    for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i].length === 13 && raw[i].toLowerCase() === "authorization") out.push(raw[i + 1]);
    return out;
  }
  const h = req.headers?.authorization;
  return h === undefined ? out : Array.isArray(h) ? h : [h];
}

export class BodyConsumedError extends Error {
  constructor() {
    super("amesh: a body parser in front of the amesh middleware consumed the request body without keeping its raw bytes, " +
      "so the signed bytes cannot be checked. Mount amesh before the body parsers, or give the parser " +
      "{ verify: captureRawBody } (import { captureRawBody } from \"@amesh-go/amesh/express\").");
    this.name = "BodyConsumedError";
    this.status = this.statusCode = 500;
    this.expose = false;
  }
}

const declaresBody = (req) => {
  const cl = req.headers["content-length"];
  return (cl !== undefined && cl !== "0") || req.headers["transfer-encoding"] !== undefined;
};

/**
 * Makes req readable again with exactly bytes, for the parsers mounted
 * after amesh: the stream methods they use are served by a fresh Readable.
 */
function replay(req, bytes) {
  const r = Readable.from(bytes.length ? [Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)] : [], { objectMode: false });
  for (const m of ["on", "once", "addListener", "prependListener", "prependOnceListener", "removeListener", "off",
    "removeAllListeners", "pipe", "unpipe", "read", "pause", "resume", "isPaused", "setEncoding", "listeners",
    "listenerCount", "unshift", "wrap", Symbol.asyncIterator]) {
    if (typeof r[m] === "function") req[m] = r[m].bind(r);
  }
  for (const p of ["readable", "readableEnded", "readableFlowing", "readableLength", "readableEncoding", "destroyed"]) {
    Object.defineProperty(req, p, { configurable: true, get: () => r[p] });
  }
  req.destroy = (e) => { r.destroy(e); return req; };
}

/** Reads the unconsumed stream, at most limit + 1 bytes. */
async function readStream(req, limit) {
  const chunks = [];
  let total = 0;
  for await (const c of req) {
    chunks.push(c);
    total += c.length;
    if (total > limit) return { over: true, size: total };
  }
  return { bytes: Buffer.concat(chunks, total) };
}

function send(res, result) {
  res.statusCode = result.status;
  res.setHeader("content-type", "application/json");
  res.setHeader("cache-control", "no-store");
  if (result.status === 401) res.setHeader("www-authenticate", "AuthMesh");
  res.end(JSON.stringify({ error: result.error }));
}

/**
 * amesh(options | verifier) returns (req, res, next) middleware. Options
 * are createVerifier's, plus scheme ("http" | "https", for the default
 * port of a version 2 audience; by default https on TLS sockets). An
 * accepted request carries req.amesh = {device, version}; a rejected one
 * gets the JSON error ({"error":"unauthorized"} ...) and next is not called.
 */
export function amesh(options) {
  const v = options instanceof Verifier ? options : new Verifier(options);
  return async function ameshMiddleware(req, res, next) {
    try {
      const auths = authorizationValues(req);
      const parts = {
        method: req.method,
        target: req.originalUrl ?? req.url,
        host: req.headers.host ?? "",
        scheme: v.scheme ?? (req.socket?.encrypted ? "https" : "http"),
        authorization: auths,
      };
      let replayBytes = null;
      // Without credentials the answer does not depend on the body: leave it.
      if (auths.length) {
        const captured = req[RAW] ?? req.rawBody;
        const declared = Number(req.headers["content-length"]);
        if (captured instanceof Uint8Array) {
          parts.body = captured;
        } else if (req._body === true || req.readableEnded) {
          if (declaresBody(req)) throw new BodyConsumedError();
          parts.body = new Uint8Array(0);
        } else if (Number.isFinite(declared) && declared > v.maxBodyBytes) {
          parts.bodySize = declared; // 413 without reading it
        } else {
          const r = await readStream(req, v.maxBodyBytes);
          if (r.over) parts.bodySize = r.size;
          else parts.body = replayBytes = r.bytes;
        }
      }
      const result = await v.decide(parts);
      if (!result.ok) { send(res, result); return; }
      if (replayBytes) replay(req, replayBytes);
      req.amesh = { device: result.device, version: result.version };
      next();
    } catch (e) {
      next(e);
    }
  };
}

export default amesh;
