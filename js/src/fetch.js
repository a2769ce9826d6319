// A fetch-handler wrapper for Cloudflare Workers (workerd), Deno.serve,
// Bun.serve and anything else whose handler takes a Request and returns a
// Response.

import { Verifier, errorResponse } from "./verifier.js";

const devices = new WeakMap();

/** The device that signed a request withAmesh let through. */
export function deviceOf(request) { return devices.get(request) ?? null; }

/**
 * withAmesh(handler, verifierOrOptions) returns a handler that verifies
 * each request first: rejections get the JSON error response
 * ({"error":"unauthorized"} ...), accepted requests go to handler with
 * every argument unchanged (env and ctx in a Worker, info in Deno.serve,
 * server in Bun.serve), and deviceOf(request) names the device. The
 * handler can read the body: the verifier read a clone of it.
 */
export function withAmesh(handler, verifier) {
  const v = verifier instanceof Verifier ? verifier : new Verifier(verifier);
  return async function ameshHandler(request, ...rest) {
    const r = await v.verify(request);
    if (!r.ok) return errorResponse(r);
    devices.set(request, r.device);
    return handler.call(this, request, ...rest);
  };
}
