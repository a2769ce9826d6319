// @ts-self-types="./index.d.ts"
// amesh for JavaScript runtimes: verify and sign AuthMesh requests with
// amesh.wasm, the same verification core the Go host runs.
export { createVerifier, Verifier, errorResponse, verifySignature, DEFAULT_MAX_BODY_BYTES } from "./verifier.js";
export { createMemoryNonceStore, NonceStoreFullError } from "./nonce.js";
export { withAmesh, deviceOf } from "./fetch.js";
export {
  createSigner, Signer, generateKeyPair, loadOrCreateKeyPair, deleteStoredKeyPair,
  publicKeyString, serialiseBody, canonicalRequest,
} from "./signer.js";
export { compileModule, setDefaultWasm, GuestError } from "./engine.js";
export { createRedisNonceStore } from "./redis.js";
