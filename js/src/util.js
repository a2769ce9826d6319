// Small encodings shared by the verifier and the signer.

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Standard base64 with padding (the protocol's public key string). */
export function base64(bytes) {
  let s = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    s += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + B64[n & 63];
  }
  if (i < bytes.length) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8);
    s += B64[n >> 18] + B64[(n >> 12) & 63] + (i + 1 < bytes.length ? B64[(n >> 6) & 63] : "=") + "=";
  }
  return s;
}

export const base64url = (bytes) => base64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

/** Decodes standard or url-safe base64, padded or not. */
export function fromBase64(s) {
  s = s.replace(/-/g, "+").replace(/_/g, "/");
  if (s.length % 4) s += "=".repeat(4 - (s.length % 4));
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function concat(chunks, total) {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total ?? chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) { out.set(c, o); o += c.length; }
  return out;
}

/**
 * Reads a ReadableStream of bytes, at most limit + 1 bytes: enough to
 * know a body is over the limit without reading all of it. Returns the
 * bytes read and whether the stream held more.
 */
export async function readLimited(stream, limit) {
  const reader = stream.getReader();
  const chunks = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const c = value instanceof Uint8Array ? value : new Uint8Array(value);
      chunks.push(c);
      total += c.length;
      if (total > limit) {
        reader.cancel().catch(() => {});
        return { bytes: null, size: total, over: true };
      }
    }
  } finally {
    reader.releaseLock?.();
  }
  return { bytes: concat(chunks, total), size: total, over: false };
}

/** True in Node.js itself (not Deno, Bun or workerd with Node compatibility). */
export function isNode() {
  const p = globalThis.process;
  return !!(p && p.versions && p.versions.node && !p.versions.bun && typeof globalThis.Deno === "undefined" &&
    !(globalThis.navigator && globalThis.navigator.userAgent === "Cloudflare-Workers"));
}
