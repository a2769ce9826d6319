// Loading amesh.wasm and calling it (docs/ABI.md). One Instance serves
// every verifier and signer of a JS realm: a call into it is synchronous,
// so calls never overlap, and the asynchronous flows (WebCrypto, Redis)
// only ever hold guest handles across an await, never a result buffer.

import { wasiImports, WasiExit } from "./wasi.js";
import { RecordWriter, DirectWriter, parseRecord, RES, text } from "./records.js";

const MAX_RECORD = 64 * 1024 * 1024; // ABI 2.1: the largest record the guest accepts
export const ABI_VERSION = 1;

/** A call into the guest failed: an error result (ABI 7) or a trap. */
export class GuestError extends Error {
  constructor(message, trap = false) { super(message); this.name = "GuestError"; this.trap = trap; }
}

const isFileURL = (u) => u instanceof URL ? u.protocol === "file:" : /^file:/i.test(u);

/**
 * Compiles a module source: a WebAssembly.Module (as workerd and bundlers
 * hand out, where compiling bytes at run time is not allowed), bytes, a
 * Response, a URL or a promise of any of these. Undefined means the
 * amesh.wasm shipped beside this package.
 */
export async function compileModule(src) {
  if (src && typeof src.then === "function") src = await src;
  if (src === undefined || src === null) src = new URL("../amesh.wasm", import.meta.url);
  if (src instanceof WebAssembly.Module) return src;
  if (typeof src === "object" && src !== null && typeof src.default !== "undefined" && !(src instanceof URL)) {
    return compileModule(src.default); // the namespace of `import * as m from "amesh.wasm"`
  }
  if (src instanceof URL || typeof src === "string") {
    if (isFileURL(src)) {
      // Node, Deno and Bun all read files through node:fs.
      const { readFile } = await import("node:fs/promises");
      src = await readFile(src instanceof URL ? src : new URL(src));
    } else {
      src = await fetch(src);
    }
  }
  if (typeof Response !== "undefined" && src instanceof Response) {
    if (!src.ok) throw new Error(`amesh: fetching amesh.wasm: HTTP ${src.status}`);
    if (WebAssembly.compileStreaming && /^application\/wasm\b/.test(src.headers.get("content-type") || "")) {
      return WebAssembly.compileStreaming(src);
    }
    src = await src.arrayBuffer();
  }
  if (src instanceof ArrayBuffer || ArrayBuffer.isView(src)) return WebAssembly.compile(src);
  throw new TypeError("amesh: wasm must be a WebAssembly.Module, bytes, a Response or a URL");
}

// The guest's environment: empty. (GOGC from 100 to 800 made no
// measurable difference to a decision's cost.)
const GUEST_ENV = [];

/** Answers of the guest's imports when a verifier has not lent its own. */
const unsupported = () => 2;

/** One instantiated amesh.wasm. */
export class Instance {
  constructor() {
    this.x = null;
    this.memory = null;
    this.inPtr = 0;
    this.inCap = 0;
    this.dead = false;
    this.configOwner = null; // the Verifier whose configuration is in force
    // Set around each synchronous call by the caller that lends them.
    this.ecdsaVerify = unsupported;
    this.nonceRecord = unsupported;
    this.signDigest = unsupported;
    this.logger = null;
  }

  static async create(module, logger) {
    const inst = new Instance();
    inst.logger = logger;
    const mem = () => inst.memory;
    let stderr = "";
    const imports = {
      wasi_snapshot_preview1: wasiImports(mem, (s) => {
        // Go writes a crash report line by line; log whole lines.
        stderr += s;
        let i;
        while ((i = stderr.indexOf("\n")) >= 0) {
          inst.log(8, "amesh.wasm stderr: " + stderr.slice(0, i));
          stderr = stderr.slice(i + 1);
        }
      }, GUEST_ENV),
      amesh: {
        now_ms: () => BigInt(Date.now()),
        // An exception must never unwind through the Go stack: every import
        // catches and answers the failure code the ABI defines.
        ecdsa_verify: (point, msg, msgLen, _digest, sig) => {
          try {
            const m = new Uint8Array(inst.memory.buffer);
            return inst.ecdsaVerify(m.subarray(point, point + 65), m.subarray(msg, msg + msgLen), m.subarray(sig, sig + 64));
          } catch (e) {
            inst.log(8, "amesh: host ecdsa_verify failed: " + e);
            return 2;
          }
        },
        nonce_record: (key, keyLen, nowMs, ttlMs) => {
          try {
            const k = new Uint8Array(inst.memory.buffer, key, keyLen).slice();
            return inst.nonceRecord(k, Number(nowMs), Number(ttlMs));
          } catch (e) {
            inst.log(8, "amesh: nonce store failed: " + e);
            return 2;
          }
        },
        sign_digest: (key, digest, out) => {
          try {
            return inst.signDigest(key, digest, out);
          } catch (e) {
            inst.log(8, "amesh: sign_digest failed: " + e);
            return 1;
          }
        },
        log: (level, p, n) => {
          try {
            inst.log(level, new TextDecoder().decode(new Uint8Array(inst.memory.buffer, p, n)));
          } catch { /* logging must not fail a call */ }
        },
      },
    };
    const instance = await WebAssembly.instantiate(module, imports);
    inst.x = instance.exports;
    inst.memory = inst.x.memory;
    inst.guard(() => inst.x._initialize());
    const v = inst.guard(() => inst.x.amesh_abi_version());
    if (v !== ABI_VERSION) throw new GuestError(`amesh: amesh.wasm speaks ABI ${v}, this package ABI ${ABI_VERSION}`);
    return inst;
  }

  log(level, msg) {
    const l = this.logger;
    if (!l) return;
    if (level >= 8) l.error?.(msg);
    else if (level >= 4) l.warn?.(msg);
    else if (level >= 0) l.info?.(msg);
    else l.debug?.(msg);
  }

  /** Runs fn, turning a trap into a GuestError and retiring the instance. */
  guard(fn) {
    if (this.dead) throw new GuestError("amesh: the amesh.wasm instance trapped earlier", true);
    try {
      return fn();
    } catch (e) {
      // A trap (RuntimeError, proc_exit, stack overflow) leaves the Go
      // runtime in an unknown state: never call this instance again.
      this.dead = true;
      const msg = e instanceof WasiExit ? e.message : `amesh.wasm trapped: ${e && e.message || e}`;
      this.log(8, msg);
      throw new GuestError(msg, true);
    }
  }

  /** Writes bytes into the reusable input buffer and returns its address. */
  input(size) {
    if (size > MAX_RECORD) throw new GuestError(`amesh: record of ${size} bytes is over the ABI's 64 MiB`);
    if (size > this.inCap || this.inPtr === 0) {
      if (this.inPtr) this.x.amesh_free(this.inPtr);
      const cap = Math.min(MAX_RECORD, Math.max(size, 2 * this.inCap, 4096));
      this.inPtr = this.x.amesh_alloc(cap);
      if (!this.inPtr) throw new GuestError("amesh: amesh_alloc failed");
      this.inCap = cap;
    }
    return this.inPtr;
  }

  result(r) {
    const buf = this.memory.buffer; // re-read: any call may have grown memory
    const n = new DataView(buf).getUint32(r, true);
    const m = parseRecord(new Uint8Array(buf, r + 4, n));
    if (m.has(RES.error)) throw new GuestError("amesh.wasm: " + text(m, RES.error));
    return m;
  }

  /** Calls an export taking (ptr, len) with the record of w. */
  call(name, w) {
    return this.guard(() => {
      const p = this.input(w.size);
      w.writeTo(new Uint8Array(this.memory.buffer, p, w.size));
      return this.result(this.x[name](p, w.size));
    });
  }

  /**
   * Calls an export taking (ptr, len) with a record that fill writes in
   * place into the input buffer (at most maxSize bytes). read receives the
   * result record as a view of guest memory and must copy what it keeps
   * before returning (the default, parseRecord, copies it all).
   */
  callDirect(name, maxSize, fill, read) {
    return this.guard(() => {
      const p = this.input(maxSize);
      const w = new DirectWriter(new Uint8Array(this.memory.buffer, p, maxSize));
      fill(w);
      const r = this.x[name](p, w.size);
      if (!read) return this.result(r);
      const buf = this.memory.buffer;
      const n = new DataView(buf).getUint32(r, true);
      return read(new Uint8Array(buf, r + 4, n));
    });
  }

  commit(handle, sigStatus, nonceStatus) {
    return this.guard(() => this.result(this.x.amesh_commit(handle, sigStatus, nonceStatus)));
  }

  release(handle) {
    if (this.dead) return;
    try { this.guard(() => this.x.amesh_release(handle)); } catch { /* logged; instance retired */ }
  }

  signFinish(handle, sig) {
    return this.guard(() => {
      const p = this.input(sig.length);
      new Uint8Array(this.memory.buffer, p, sig.length).set(sig);
      return this.result(this.x.amesh_sign_finish(handle, p, sig.length));
    });
  }
}

/**
 * Shared instances, one per module source. A trapped instance is replaced
 * on next use; its configuration is re-applied by the verifier that needs
 * it (configOwner starts empty).
 */
const shared = new Map();
let defaultSource;

/**
 * Sets the amesh.wasm every verifier and signer uses when given none: in a
 * Worker, the module it imports (`import wasm from "./amesh.wasm"`), since
 * compiling bytes at run time is not allowed there. Only stores it.
 */
export function setDefaultWasm(src) { defaultSource = src; }

export async function sharedInstance(src, logger) {
  if (src === undefined || src === null) src = defaultSource;
  const key = src === undefined || src === null ? "default" : src;
  let e = shared.get(key);
  if (!e) {
    e = { module: compileModule(src), inst: null };
    shared.set(key, e);
    e.module.catch(() => shared.delete(key)); // a failed load may be retried
  }
  if (!e.inst) {
    const p = e.module.then((m) => Instance.create(m, logger ?? consoleErrors));
    e.inst = p;
    p.catch(() => { if (e.inst === p) e.inst = null; });
  }
  const p = e.inst;
  const inst = await p;
  if (inst.dead) {
    if (e.inst === p) e.inst = null; // replaced on this call, once
    return sharedInstance(src, logger);
  }
  return inst;
}

/** The default logger: errors only (guest crashes, store failures). */
export const consoleErrors = { error: (m) => console.error(m) };

export { RecordWriter };
