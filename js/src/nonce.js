// Nonce stores. A store records a nonce key (the device's 33-byte public
// key followed by the nonce's bytes, as the guest hands it out) for a TTL
// and says whether it was fresh: the verifier's replay check. It is asked
// only after the signature verified, so nobody without the key can burn
// nonces or fill the store (docs/PROTOCOL.md section 5).
//
// Interface: record(key: Uint8Array, ttlMs: number, nowMs: number)
//   -> boolean | Promise<boolean>   (true: fresh, now recorded; false: replay)
// and throws (or rejects) when it cannot answer: the verifier then answers
// 503 service_unavailable, never 200. A store whose record never returns a
// promise sets `synchronous = true`, which lets Node verify a request in a
// single call into the guest.

export const DEFAULT_NONCE_CAPACITY = 524288;

/** Thrown by the memory store when it is full of live nonces. */
export class NonceStoreFullError extends Error {
  constructor() { super("amesh: nonce store full"); this.name = "NonceStoreFullError"; }
}

// A compact Map key, one char per byte. windows-1252 (what "latin1" means
// to TextDecoder) maps the 256 byte values to 256 distinct code points, so
// distinct keys stay distinct; it decodes natively, much faster than
// building the string in JS.
const latin1 = new TextDecoder("latin1");
const keyString = (k) => latin1.decode(k);

/**
 * createMemoryNonceStore({capacity}) is an in-process store, right for one
 * process (one isolate): replicas behind a load balancer must share one
 * (Redis). It is bounded: expired entries are reclaimed first, and when
 * `capacity` live nonces are held it fails closed (503) rather than forget
 * one that could still be replayed. As in the Go store, entries expire in
 * the order they were recorded (one TTL per verifier), so a FIFO queue
 * reclaims them in O(1).
 */
export function createMemoryNonceStore({ capacity = DEFAULT_NONCE_CAPACITY } = {}) {
  if (!Number.isInteger(capacity) || capacity <= 0) throw new RangeError("amesh: nonce store capacity must be a positive integer");
  const m = new Map(); // key -> expiry (ms)
  // Keys and expiries in insertion order, as two arrays: no pair object
  // per request.
  let qk = [], qe = [], head = 0;
  const reclaim = (now) => {
    while (head < qk.length && qe[head] <= now) {
      const k = qk[head], exp = qe[head];
      head++;
      if (m.get(k) === exp) m.delete(k);
    }
    if (head > 1024 && head * 2 > qk.length) { qk = qk.slice(head); qe = qe.slice(head); head = 0; }
  };
  return {
    synchronous: true,
    capacity,
    get size() { return m.size; },
    record(key, ttlMs, nowMs = Date.now()) {
      const k = keyString(key);
      reclaim(nowMs);
      const exp = m.get(k);
      if (exp !== undefined && exp > nowMs) return false;
      if (m.size >= capacity) throw new NonceStoreFullError();
      const e = nowMs + ttlMs;
      m.set(k, e);
      qk.push(k);
      qe.push(e);
      return true;
    },
  };
}
