// The test worker served by workerd (test/runtimes.test.js writes its
// config): POST /vectors runs the vectors here; /protected/* is behind
// withAmesh with the allow list of the ALLOW_LIST binding, for requests
// the Go client signs.
import * as amesh from "./src/index.js";
import { runVectors } from "./test/lib/vectors.js";
import wasm from "./amesh.wasm";

// workerd hands .wasm modules over compiled; compiling bytes is refused.
amesh.setDefaultWasm(wasm);

let protectedHandler;

const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/vectors" && request.method === "POST") {
      const { files, modes } = await request.json();
      const results = await runVectors(amesh, files, { modes });
      return Response.json({ runtime: `workerd ${navigator.userAgent}`, results });
    }
    if (url.pathname.startsWith("/protected/")) {
      // Created on first use: a verifier's instance may not start in the
      // global scope, where workerd refuses randomness.
      protectedHandler ??= amesh.withAmesh(async (req) => {
        const body = await req.arrayBuffer(); // the verifier read a clone
        return Response.json({ device: amesh.deviceOf(req), method: req.method,
          bodyLength: body.byteLength, bodySha256: hex(await crypto.subtle.digest("SHA-256", body)) });
      }, { allowList: env.ALLOW_LIST, audiences: env.AUDIENCES, logger: console });
      return protectedHandler(request, env);
    }
    return new Response("not found", { status: 404 });
  },
};
