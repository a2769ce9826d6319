export { createRedisNonceStore, RedisNonceStore, RedisNonceStoreOptions } from "./index.js";
export declare const DEFAULT_PREFIX: string;
export declare const DEFAULT_TIMEOUT_MS: number;
