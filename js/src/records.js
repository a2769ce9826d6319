// Records of the amesh.wasm ABI (docs/ABI.md section 2.3): a sequence of
// fields, each tag u8 | length u32le | value. Small and allocation-light on
// purpose: one request record is built per verification.

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: false });

// Tags of the configuration record (ABI 4.1).
export const CFG = {
  allowEntry: 1, integrityFailure: 2, authority: 3, requireV2: 4, clockSkewMs: 5,
  nonceTtlMs: 6, maxBodyBytes: 7, nonceStore: 8, nonceCapacity: 9, crypto: 10, maxPending: 11,
};
// Tags of an allow-list entry.
export const ENTRY = { key: 1, role: 2, id: 3, name: 4 };
// Tags of the request record (ABI 4.2).
export const REQ = {
  method: 1, target: 2, host: 3, scheme: 4, authorization: 5, body: 6, nowMs: 7, bodySha256: 8, bodySize: 9,
};
// Tags of the signing record (ABI 4.3).
export const SIGN = {
  version: 1, method: 2, target: 3, url: 4, authority: 5, scheme: 6, body: 7, key: 8, nowMs: 9, nonce: 10,
};
// Tags of the signature record (ABI 4.5).
export const SIGCHECK = { key: 1, message: 2, signature: 3, sigText: 4 };
// Tags of the result record (ABI 4.4).
export const RES = {
  status: 1, code: 2, reason: 3, detail: 4, deviceId: 5, deviceName: 6, deviceRole: 7, version: 8,
  key: 9, handle: 10, keyPoint: 11, message: 12, digest: 13, signature: 14, nonceKey: 15,
  authorization: 16, target: 17, ts: 18, nonce: 19, error: 127,
};

/** Builds a record; fields are appended in call order. */
export class RecordWriter {
  constructor() { this.parts = []; this.size = 0; }
  bytes(tag, value) {
    const h = new Uint8Array(5);
    h[0] = tag;
    new DataView(h.buffer).setUint32(1, value.length, true);
    this.parts.push(h, value);
    this.size += 5 + value.length;
    return this;
  }
  text(tag, s) { return this.bytes(tag, enc.encode(s)); }
  // Encoders leave out defaults (ABI 2.3): callers skip empty values.
  int(tag, n) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigInt64(0, BigInt(n), true);
    return this.bytes(tag, b);
  }
  bool(tag, v) { return this.bytes(tag, Uint8Array.of(v ? 1 : 0)); }
  record(tag, w) { return this.bytes(tag, w.finish()); }
  /** Writes the record into dst (at least this.size bytes). */
  writeTo(dst) {
    let o = 0;
    for (const p of this.parts) { dst.set(p, o); o += p.length; }
    return o;
  }
  finish() {
    const out = new Uint8Array(this.size);
    this.writeTo(out);
    return out;
  }
}

/**
 * Writes a record straight into a buffer (guest memory) with encodeInto:
 * no intermediate arrays on the per-request path. The caller sizes the
 * buffer with maxTextBytes/5-byte headers beforehand.
 */
export class DirectWriter {
  constructor(u8) { this.u8 = u8; this.dv = new DataView(u8.buffer, u8.byteOffset, u8.length); this.size = 0; }
  header(tag, n) { this.u8[this.size] = tag; this.dv.setUint32(this.size + 1, n, true); this.size += 5; }
  text(tag, s) {
    const { written } = enc.encodeInto(s, this.u8.subarray(this.size + 5));
    this.header(tag, written);
    this.size += written;
    return this;
  }
  bytes(tag, b) { this.header(tag, b.length); this.u8.set(b, this.size); this.size += b.length; return this; }
  int(tag, n) { this.header(tag, 8); this.dv.setBigInt64(this.size, BigInt(n), true); this.size += 8; return this; }
}

/** The most bytes s can take in UTF-8 (3 per UTF-16 unit). */
export const maxTextBytes = (s) => 3 * s.length;

/**
 * Parses a result record into a Map tag -> [Uint8Array...]. The values are
 * copies: the guest overwrites its result buffer on the next call (ABI 2.2).
 */
export function parseRecord(view) {
  const bytes = view.slice(); // one copy out of guest memory
  const m = new Map();
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  for (let o = 0; o < bytes.length;) {
    if (bytes.length - o < 5) throw new Error("amesh: truncated field header in a result record");
    const tag = bytes[o];
    const n = dv.getUint32(o + 1, true);
    o += 5;
    if (tag === 0 || n > bytes.length - o) throw new Error("amesh: malformed result record");
    const v = bytes.subarray(o, o + n);
    const l = m.get(tag);
    if (l) l.push(v); else m.set(tag, [v]);
    o += n;
  }
  return m;
}

export const text = (m, tag) => { const v = m.get(tag); return v ? dec.decode(v[0]) : ""; };
export const raw = (m, tag) => { const v = m.get(tag); return v ? v[0] : undefined; };
export function int(m, tag) {
  const v = m.get(tag);
  if (!v) return 0;
  if (v[0].length !== 8) throw new Error(`amesh: int field ${tag} of ${v[0].length} bytes`);
  return Number(new DataView(v[0].buffer, v[0].byteOffset, 8).getBigInt64(0, true));
}
export const utf8 = (s) => enc.encode(s);
export const fromUtf8 = (b) => dec.decode(b);
