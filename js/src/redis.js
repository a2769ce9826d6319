// @ts-self-types="./redis.d.ts"
// A nonce store on Redis, for verifiers in several processes, isolates or
// machines that must share what they have seen: the same semantics and key
// layout as the Go store (host/redisnonce), so JS and Go verifiers can share
// one Redis. One command, SET key 1 NX PX ttl, which Redis runs atomically:
// of any number of concurrent replays exactly one finds the key absent.
//
// It fails closed: when Redis does not answer within timeoutMs, record
// rejects and the verifier answers 503, never 200.

import { base64url } from "./util.js";

export const DEFAULT_PREFIX = "amesh:nonce:";
export const DEFAULT_TIMEOUT_MS = 500;

/**
 * createRedisNonceStore({client, prefix, timeoutMs}). client is a connected
 * node-redis client (createClient from the `redis` package; sendCommand is
 * used) or an ioredis client (its set(key, value, "PX", ttl, "NX")). The
 * caller keeps ownership of the client.
 */
export function createRedisNonceStore({ client, prefix = DEFAULT_PREFIX, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  if (!client) throw new TypeError("amesh: createRedisNonceStore needs a Redis client");
  const set = typeof client.sendCommand === "function"
    ? (k, ttl) => client.sendCommand(["SET", k, "1", "NX", "PX", String(ttl)])
    : (k, ttl) => client.set(k, "1", "PX", ttl, "NX");
  return {
    synchronous: false,
    /** The Redis key of a nonce key: the prefix and the key in unpadded base64url. */
    key: (key) => prefix + base64url(key),
    async record(key, ttlMs) {
      const ttl = Math.max(1, Math.ceil(ttlMs)); // expiry runs on Redis's clock
      let timer;
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`amesh: Redis did not answer within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        const r = await Promise.race([set(prefix + base64url(key), ttl), timeout]);
        if (r === "OK") return true;
        if (r === null || r === undefined) return false;
        throw new Error(`amesh: unexpected Redis reply ${JSON.stringify(r)}`);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
