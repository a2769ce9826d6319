import type { IncomingMessage, ServerResponse } from "node:http";
import type { Verifier, VerifierOptions, Device } from "./index.js";

export interface AmeshRequestInfo {
  device: Device;
  version: string | null;
}

declare module "node:http" {
  interface IncomingMessage {
    /** Set by the amesh middleware on accepted requests. */
    amesh?: AmeshRequestInfo;
  }
}

/** Express/Connect middleware verifying each request (see README: body handling). */
export declare function amesh(options: Verifier | VerifierOptions): (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => Promise<void>;
export default amesh;
/** A body-parser verify hook keeping the raw bytes: express.json({ verify: captureRawBody }). */
export declare function captureRawBody(req: IncomingMessage, res: ServerResponse, buf: Uint8Array, encoding?: string): void;
/** Passed to next() when a parser in front consumed the body without keeping its raw bytes. */
export declare class BodyConsumedError extends Error {
  readonly status: 500;
  readonly statusCode: 500;
}
