// Serves withAmesh on loopback in Deno (Deno.serve) or Bun (Bun.serve):
// `serve.mjs <port> <allow-list JSON>`. Prints "listening" once ready.
import { withAmesh, deviceOf } from "../../src/index.js";

const args = globalThis.Deno ? Deno.args : process.argv.slice(2);
const port = Number(args[0]);
const handler = withAmesh(async (req) => {
  const body = new Uint8Array(await req.arrayBuffer());
  return Response.json({ device: deviceOf(req).name, url: req.url, bodyLength: body.length });
}, { allowList: JSON.parse(args[1]), logger: null });

if (globalThis.Deno) {
  Deno.serve({ port, hostname: "127.0.0.1", onListen: () => console.log("listening") }, handler);
} else {
  Bun.serve({ port, hostname: "127.0.0.1", fetch: handler });
  console.log("listening");
}
