// The few WASI preview 1 functions the Go runtime of amesh.wasm imports
// (docs/ABI.md section 1), for every JS runtime alike: no files, no
// arguments, no environment; standard error goes to a callback. Written
// here rather than taken from node:wasi or a shim package because the same
// code must run in browsers, Deno, Bun and workerd, and because the guest
// needs so little: the real clock, secure randomness, fd 1/2 writes.

const ERRNO_SUCCESS = 0, ERRNO_BADF = 8, ERRNO_INVAL = 28;

/** Thrown by proc_exit: the instance is unusable afterwards (ABI 7). */
export class WasiExit extends Error {
  constructor(code) { super(`amesh.wasm exited with code ${code}`); this.code = code; }
}

/**
 * Returns the wasi_snapshot_preview1 import object. getMemory returns the
 * instance's memory (known only after instantiation); onStderr receives
 * the guest's standard error text (a Go crash report).
 */
export function wasiImports(getMemory, onStderr, env = []) {
  const envBytes = env.map((e) => new TextEncoder().encode(e + "\0"));
  const dv = () => new DataView(getMemory().buffer);
  const u8 = () => new Uint8Array(getMemory().buffer);
  const dec = new TextDecoder();
  const start = typeof performance !== "undefined" ? performance.now() : 0;
  return {
    args_sizes_get(argc, bufSize) { const d = dv(); d.setUint32(argc, 0, true); d.setUint32(bufSize, 0, true); return ERRNO_SUCCESS; },
    args_get() { return ERRNO_SUCCESS; },
    environ_sizes_get(n, bufSize) {
      const d = dv();
      d.setUint32(n, envBytes.length, true);
      d.setUint32(bufSize, envBytes.reduce((s, b) => s + b.length, 0), true);
      return ERRNO_SUCCESS;
    },
    environ_get(ptrs, buf) {
      const d = dv(), mem = u8();
      envBytes.forEach((b, i) => { d.setUint32(ptrs + 4 * i, buf, true); mem.set(b, buf); buf += b.length; });
      return ERRNO_SUCCESS;
    },
    clock_time_get(id, _precision, out) {
      let ns;
      if (id === 0) ns = BigInt(Date.now()) * 1000000n; // realtime
      else if (id === 1) { // monotonic
        const ms = typeof performance !== "undefined" ? performance.now() - start : Date.now();
        ns = BigInt(Math.round(ms * 1e6));
      } else return ERRNO_INVAL;
      dv().setBigUint64(out, ns, true);
      return ERRNO_SUCCESS;
    },
    random_get(ptr, len) {
      // getRandomValues fills at most 65536 bytes per call. The guest draws
      // signing nonces here: it must be the platform's CSPRNG.
      const mem = u8();
      for (let o = 0; o < len; o += 65536) {
        crypto.getRandomValues(mem.subarray(ptr + o, ptr + Math.min(len, o + 65536)));
      }
      return ERRNO_SUCCESS;
    },
    fd_write(fd, iovs, iovsLen, nwritten) {
      if (fd !== 1 && fd !== 2) return ERRNO_BADF;
      const d = dv(), mem = u8();
      let n = 0, s = "";
      for (let i = 0; i < iovsLen; i++) {
        const p = d.getUint32(iovs + 8 * i, true), l = d.getUint32(iovs + 8 * i + 4, true);
        s += dec.decode(mem.subarray(p, p + l), { stream: true });
        n += l;
      }
      if (s) onStderr(s);
      d.setUint32(nwritten, n, true);
      return ERRNO_SUCCESS;
    },
    fd_read() { return ERRNO_BADF; },
    fd_close() { return ERRNO_BADF; },
    fd_fdstat_get(fd, out) {
      if (fd > 2) return ERRNO_BADF;
      const d = dv();
      for (let i = 0; i < 24; i += 4) d.setUint32(out + i, 0, true);
      d.setUint8(out, 2); // character device
      return ERRNO_SUCCESS;
    },
    fd_fdstat_set_flags(fd) { return fd > 2 ? ERRNO_BADF : ERRNO_SUCCESS; },
    fd_prestat_get() { return ERRNO_BADF; }, // no preopened directories
    fd_prestat_dir_name() { return ERRNO_BADF; },
    poll_oneoff(in_, out, nsubs, nevents) {
      // A JS host cannot block. The guest never sleeps during a call; if the
      // Go runtime polls anyway, every subscription fires at once (a
      // spurious wake-up, which Go tolerates).
      const d = dv();
      for (let i = 0; i < nsubs; i++) {
        const s = in_ + 48 * i, e = out + 32 * i;
        d.setBigUint64(e, d.getBigUint64(s, true), true); // userdata
        d.setUint16(e + 8, 0, true);
        d.setUint8(e + 10, d.getUint8(s + 8));
        for (let j = 16; j < 32; j += 4) d.setUint32(e + j, 0, true);
      }
      d.setUint32(nevents, nsubs, true);
      return ERRNO_SUCCESS;
    },
    sched_yield() { return ERRNO_SUCCESS; },
    proc_exit(code) { throw new WasiExit(code); },
  };
}
