// Type-checked by Deno (test/types.test.js): the declarations describe the
// API as the tests use it.
import {
  createVerifier, createSigner, generateKeyPair, publicKeyString, createMemoryNonceStore, createRedisNonceStore,
  withAmesh, deviceOf, errorResponse, canonicalRequest, verifySignature, setDefaultWasm, type VerifyResult, type Device,
} from "../../src/index.js";
import { amesh, captureRawBody } from "../../src/express.js";

const pair: CryptoKeyPair = await generateKeyPair();
const pub: string = await publicKeyString(pair.publicKey);
const v = createVerifier({ allowList: [{ publicKey: pub, role: "controller" }], audiences: ["api.example.test"], requireV2: false,
  clockSkewSeconds: 30, nonceTtlSeconds: 60, maxBodyBytes: 1 << 20, nonceStore: createMemoryNonceStore({ capacity: 10 }), logger: null });
const r: VerifyResult = await v.verify(new Request("https://api.example.test/"));
const d: Device | null = r.device;
const s = createSigner({ privateKey: pair.privateKey, publicKey: pair.publicKey, version: 2 });
const res: Response = await s.fetch("https://api.example.test/", { method: "POST", body: new FormData() });
const h = withAmesh((req: Request, env: { A: string }) => new Response(deviceOf(req)?.name ?? ""), v);
const e: Response = errorResponse(r);
const c = await canonicalRequest({ method: "GET", url: "/x", ts: 1, nonce: new Uint8Array(16) });
const sv: { valid: boolean; reason: string; detail: string } = await verifySignature({ publicKey: pub, message: "m", signature: new Uint8Array(64) });
const m = amesh({ allowList: [] });
const redis = createRedisNonceStore({ client: { sendCommand: async (_: string[]) => "OK" } });
setDefaultWasm(new URL("https://example.test/amesh.wasm"));
// The declarations refuse what the code refuses:
// @ts-expect-error: a role is "controller" or "target"
createVerifier({ allowList: [{ publicKey: pub, role: "admin" }] });
// @ts-expect-error: a signer needs a private key
createSigner({ publicKey: pub });
createSigner({ privateKey: pair.privateKey }); // the public key is recovered
export { d, res, h, e, c, m, redis, captureRawBody };
