// Type declarations of @amesh-go/amesh (written by hand; the package has
// no build step).

/** What amesh.wasm can be loaded from. Workers pass the imported module. */
export type WasmSource =
  | WebAssembly.Module
  | ArrayBuffer
  | ArrayBufferView
  | Response
  | URL
  | string
  | PromiseLike<WebAssembly.Module | ArrayBuffer | ArrayBufferView | Response | URL | string>;

/** Receives log lines; every method is optional. */
export interface Logger {
  debug?(msg: string): void;
  info?(msg: string): void;
  warn?(msg: string): void;
  error?(msg: string): void;
}

export interface AllowListEntry {
  /** The device's public key: base64 (or base64url) of the 33-byte compressed point, or those bytes. */
  publicKey: string | Uint8Array;
  /** Only controllers may sign requests. */
  role: "controller" | "target";
  /** The device ID ("am_..."); derived from the key when absent. */
  id?: string;
  /** A friendly name, for people and logs. */
  name?: string;
}

/**
 * A nonce store. record() returns true when the key was fresh (and is now
 * recorded for ttlMs), false for a replay, and throws or rejects when it
 * cannot answer (the verifier then answers 503). It is called only after
 * the signature verified.
 */
export interface NonceStore {
  record(key: Uint8Array, ttlMs: number, nowMs: number): boolean | Promise<boolean>;
  /** True when record never returns a promise (enables Node's one-call flow). */
  readonly synchronous?: boolean;
}

export interface MemoryNonceStore extends NonceStore {
  readonly synchronous: true;
  readonly capacity: number;
  readonly size: number;
  record(key: Uint8Array, ttlMs: number, nowMs?: number): boolean;
}

export interface VerifierOptions {
  allowList: AllowListEntry[];
  /** The allow list failed its integrity check: requests get 500, never 401s against an empty list. */
  allowListIntegrityFailure?: boolean;
  /** host[:port] names this verifier answers for (protocol version 2). */
  audiences?: string[];
  /** Reject version 1 requests with 400 unsupported_version. */
  requireV2?: boolean;
  /** Largest accepted |now - ts|, default 30. */
  clockSkewSeconds?: number;
  /** How long nonces stay recorded, default 60, never below 2 x skew. */
  nonceTtlSeconds?: number;
  /** Body limit, default 1 MiB. */
  maxBodyBytes?: number;
  /** Default: a memory store (one process only). */
  nonceStore?: NonceStore;
  /** "auto" (default): node:crypto in Node, WebCrypto elsewhere, wasm without either. */
  crypto?: "auto" | "node" | "webcrypto" | "wasm";
  /** For version 2 audiences: the scheme requests arrive with; default from the request URL (or the socket, in Express). */
  scheme?: "http" | "https";
  /** Default: the amesh.wasm of this package, or setDefaultWasm's. */
  wasm?: WasmSource;
  /** Default: errors to console.error. null: silent. Rejections go to info (4xx) and error (5xx). */
  logger?: Logger | null;
  /** The clock in ms, default Date.now. */
  now?: () => number;
  /** Most checks pending between prepare and commit (default 1024; beyond, 503). */
  maxPending?: number;
}

export interface Device {
  /** "am_" and 16 characters. */
  readonly id: string;
  readonly name: string;
  readonly role: "controller" | "target" | string;
  /** Standard base64 of the compressed point. */
  readonly publicKey: string;
}

export type ErrorCode =
  | "missing_header"
  | "malformed_header"
  | "unsupported_version"
  | "unauthorized"
  | "allow_list_integrity_failure"
  | "payload_too_large"
  | "service_unavailable";

export interface VerifyResult {
  ok: boolean;
  /** 200, 400, 401, 413, 500 or 503. */
  status: number;
  /** The public error code (the response body is {"error": code}); null when ok. */
  error: ErrorCode | null;
  /** The authenticated device; null unless ok. */
  device: Device | null;
  /** For logs only: the device a rejected request's key names. */
  claimedDevice: Device | null;
  /** "1" or "2" when the header parsed. */
  version: string | null;
  /** The private reason ("ok", "unknown_key", "replay", ...): for logs, never for the client. */
  reason: string;
  detail: string;
}

/** A request as received, for hosts that are not Fetch-based. */
export interface RequestParts {
  method: string;
  /** The request-target exactly as received (e.g. Node's req.url before any router rewrote it). */
  target: string;
  /** The Host header. */
  host?: string;
  scheme?: "http" | "https";
  /** Every Authorization value received, in order. */
  authorization?: string | string[] | null;
  /** The exact body bytes. */
  body?: Uint8Array;
  /** With bodySha256: the body's length. Alone: the size of a body over the limit that was not read. */
  bodySize?: number;
  bodySha256?: Uint8Array;
  /** Clock override in ms. */
  now?: number;
}

export declare class Verifier {
  constructor(options: VerifierOptions);
  /** The crypto in use once ready(). */
  readonly crypto: "node" | "webcrypto" | "wasm" | undefined;
  readonly maxBodyBytes: number;
  /** Loads amesh.wasm and applies the configuration; rejects on a bad configuration. Not in a Worker's global scope. */
  ready(): Promise<this>;
  /** Verifies a Fetch Request without consuming its body. */
  verify(request: Request, options?: { now?: number }): Promise<VerifyResult>;
  /** Verifies a request given as parts. */
  decide(parts: RequestParts): Promise<VerifyResult>;
  /** Replaces the allow list (a reload). */
  setAllowList(list: AllowListEntry[], options?: { integrityFailure?: boolean }): void;
}

export declare function createVerifier(options: VerifierOptions): Verifier;
/** The JSON error response of a rejection, as the Go middleware sends it. */
export declare function errorResponse(result: VerifyResult): Response;
export declare const DEFAULT_MAX_BODY_BYTES: number;

export declare function createMemoryNonceStore(options?: { capacity?: number }): MemoryNonceStore;
export declare class NonceStoreFullError extends Error {}

export interface RedisNonceStoreOptions {
  /** A connected node-redis client (sendCommand) or an ioredis client (set). */
  client: { sendCommand(args: string[]): Promise<unknown> } | { set(...args: unknown[]): Promise<unknown> };
  /** Default "amesh:nonce:", as the Go store. */
  prefix?: string;
  /** Default 500. */
  timeoutMs?: number;
}
export interface RedisNonceStore extends NonceStore {
  readonly synchronous: false;
  /** The Redis key of a nonce key. */
  key(key: Uint8Array): string;
  record(key: Uint8Array, ttlMs: number): Promise<boolean>;
}
export declare function createRedisNonceStore(options: RedisNonceStoreOptions): RedisNonceStore;

/** A fetch handler: (request, ...rest) => Response, as Workers, Deno.serve and Bun.serve call it. */
export type FetchHandler<A extends unknown[] = unknown[]> = (request: Request, ...rest: A) => Response | Promise<Response>;
/** Verifies each request before handler; rejections get the JSON error response. */
export declare function withAmesh<A extends unknown[]>(handler: FetchHandler<A>, verifier: Verifier | VerifierOptions): FetchHandler<A>;
/** The device withAmesh authenticated for this request. */
export declare function deviceOf(request: Request): Device | null;

export interface SignerOptions {
  /** A non-extractable WebCrypto ECDSA P-256 private key with usage "sign". */
  privateKey: CryptoKey;
  /**
   * Its public key (a CryptoKey, raw point or base64 string). Optional: when
   * absent it is recovered from two signatures of the private key (a few ms,
   * once), since a non-extractable key cannot be exported.
   */
  publicKey?: CryptoKey | Uint8Array | string;
  /** Protocol version, "1" (default, accepted everywhere) or "2" (bound to the server's authority). */
  version?: "1" | "2" | 1 | 2;
  wasm?: WasmSource;
  now?: () => number;
  logger?: Logger | null;
  /** The fetch to send with; default globalThis.fetch. */
  fetch?: typeof fetch;
}

export interface SignResult {
  /** The Authorization header value. */
  authorization: string;
  /** The request-target that was signed (path and query as sent). */
  target: string;
  ts: string;
  nonce: string;
  /** The canonical string that was signed. */
  message: string;
}

export declare class Signer {
  constructor(options: SignerOptions);
  /** The public key string, once ready(). */
  readonly publicKey: string | undefined;
  ready(): Promise<this>;
  sign(request: { method?: string; url: string | URL; body?: Uint8Array | string; version?: "1" | "2" | 1 | 2; now?: number; nonce?: Uint8Array }): Promise<SignResult>;
  /** fetch() with the request signed; the body is serialised once and exactly those bytes are hashed and sent. */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
}
export declare function createSigner(options: SignerOptions): Signer;

/** The IndexedDB factory (globalThis.indexedDB in browsers). */
export interface IDBFactoryLike { open(name: string, version?: number): unknown }
/** A new key pair: private non-extractable, public extractable. */
export declare function generateKeyPair(): Promise<CryptoKeyPair>;
/** In a browser: the key pair kept in IndexedDB under id, created on first use. */
export declare function loadOrCreateKeyPair(options?: { dbName?: string; storeName?: string; id?: string; indexedDB?: IDBFactoryLike }): Promise<CryptoKeyPair>;
export declare function deleteStoredKeyPair(options?: { dbName?: string; storeName?: string; id?: string; indexedDB?: IDBFactoryLike }): Promise<void>;
/** The protocol's public key string of a public key. */
export declare function publicKeyString(key: CryptoKey | Uint8Array | string): Promise<string>;
/** Serialises a fetch body as fetch would, returning the bytes and the implied content type. */
export declare function serialiseBody(body: BodyInit | null | undefined): Promise<{ bytes: Uint8Array; type: string | null }>;
/**
 * Checks one bare signature (no request around it) in amesh.wasm with the
 * protocol's rules: r and s in range, low-S only, a key on the curve; ECDSA
 * by node:crypto in Node, inside the guest elsewhere (and in Node too once a
 * verifier created with crypto "wasm" has configured the shared instance;
 * the verdict is the same). reason is "ok",
 * "bad_signature", or "malformed_header" when the key or the signature
 * cannot be decoded.
 */
export declare function verifySignature(check: {
  /** The key as allow lists hold it (base64 or base64url text) or its 33 bytes. */
  publicKey: string | Uint8Array;
  /** The signed bytes (a string is taken as UTF-8); SHA-256 is applied. */
  message?: string | Uint8Array;
  /** r||s as a header carries it (unpadded base64url), or its 64 bytes. */
  signature: string | Uint8Array;
  wasm?: WasmSource;
}): Promise<{ valid: boolean; reason: string; detail: string }>;

/** What would be signed for a request (nothing is signed). */
export declare function canonicalRequest(request: {
  version?: "1" | "2" | 1 | 2; method?: string; url?: string; target?: string; authority?: string;
  scheme?: "http" | "https"; body?: Uint8Array | string; ts?: string | number; nonce?: Uint8Array; wasm?: WasmSource;
}): Promise<{ message: string; target: string; ts: string; nonce: string }>;

export declare function compileModule(src?: WasmSource): Promise<WebAssembly.Module>;
/** Sets the amesh.wasm used when none is given (Workers: the imported module). */
export declare function setDefaultWasm(src: WasmSource): void;
export declare class GuestError extends Error {
  readonly trap: boolean;
}
