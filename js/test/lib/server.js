// Listens an http.Server (or Express app) on a free loopback port.
import { createServer } from "node:http";

export async function listen(handler) {
  const server = createServer(handler);
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }) };
}

/** A node:http request with raw headers (so that Authorization can repeat). */
export async function rawRequest(url, { method = "GET", headers = [], body } = {}) {
  const http = await import("node:http");
  return new Promise((resolve, reject) => {
    // With raw (array) headers Node adds no Host header of its own.
    const req = http.request(url, { method, headers: ["host", new URL(url).host, ...headers] }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    // write() before end(): Node then sends the body chunked, without a
    // Content-Length.
    if (body !== undefined) req.write(body);
    req.end();
  });
}
