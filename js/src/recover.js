// Recovers the public key of a non-extractable WebCrypto P-256 private key
// from its signatures, so that createSigner({privateKey}) works with the
// private key alone (a non-extractable key cannot be exported, and
// CryptoKey has no way to derive its public half). Runs once per signer:
// plain BigInt arithmetic in Jacobian coordinates, a few milliseconds.
//
// ECDSA recovery: for a signature (r, s) over digest z, the public key is
// Q = r^-1 (s R - z G), where R is one of the two points with x = r. Each
// candidate verifies that signature, so a second signature over another
// message (checked with WebCrypto) picks the right one.

const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;
const G = [0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n,
  0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n, 1n];

const mod = (a, m = P) => { const r = a % m; return r < 0n ? r + m : r; };
function pow(b, e, m) {
  let r = 1n;
  b = mod(b, m);
  while (e > 0n) { if (e & 1n) r = (r * b) % m; b = (b * b) % m; e >>= 1n; }
  return r;
}
const inv = (a, m) => pow(a, m - 2n, m);

// Jacobian points [X, Y, Z]; Z = 0 is infinity. a = -3.
function dbl([x, y, z]) {
  if (z === 0n || y === 0n) return [0n, 1n, 0n];
  const yy = mod(y * y), zz = mod(z * z);
  const s = mod(4n * x * yy);
  const m = mod(3n * (x - zz) * (x + zz));
  const x3 = mod(m * m - 2n * s);
  return [x3, mod(m * (s - x3) - 8n * yy * yy), mod(2n * y * z)];
}
function add(p1, p2) {
  if (p1[2] === 0n) return p2;
  if (p2[2] === 0n) return p1;
  const z1z1 = mod(p1[2] * p1[2]), z2z2 = mod(p2[2] * p2[2]);
  const u1 = mod(p1[0] * z2z2), u2 = mod(p2[0] * z1z1);
  const s1 = mod(p1[1] * p2[2] * z2z2), s2 = mod(p2[1] * p1[2] * z1z1);
  if (u1 === u2) return s1 === s2 ? dbl(p1) : [0n, 1n, 0n];
  const h = mod(u2 - u1), r = mod(s2 - s1), hh = mod(h * h), hhh = mod(h * hh);
  const x3 = mod(r * r - hhh - 2n * u1 * hh);
  return [x3, mod(r * (u1 * hh - x3) - s1 * hhh), mod(h * p1[2] * p2[2])];
}
function mul(k, pt) {
  let r = [0n, 1n, 0n];
  for (let i = BigInt(k.toString(2).length) - 1n; i >= 0n; i--) {
    r = dbl(r);
    if ((k >> i) & 1n) r = add(r, pt);
  }
  return r;
}
function affine([x, y, z]) {
  const zi = inv(z, P), zi2 = mod(zi * zi);
  return [mod(x * zi2), mod(y * zi2 * zi)];
}

const big = (b) => BigInt("0x" + (Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("") || "0"));
const bytes32 = (v) => Uint8Array.from(v.toString(16).padStart(64, "0").match(/../g), (h) => parseInt(h, 16));

/** The two candidate public keys (65-byte uncompressed points) of a signature. */
function candidates(digest, sig) {
  const r = big(sig.subarray(0, 32)), s = big(sig.subarray(32)), z = big(digest);
  const y2 = mod(r * r * r - 3n * r + B);
  const y = pow(y2, (P + 1n) / 4n, P);
  if (mod(y * y) !== y2) return [];
  const ri = inv(r, N);
  const zG = mul(mod(-z * ri, N), G);
  return [y, P - y].map((yy) => {
    const q = affine(add(mul(mod(s * ri, N), [r, yy, 1n]), zG));
    const out = new Uint8Array(65);
    out[0] = 4;
    out.set(bytes32(q[0]), 1);
    out.set(bytes32(q[1]), 33);
    return out;
  });
}

const ALG = { name: "ECDSA", hash: "SHA-256" };

/** The uncompressed public point of a P-256 private key that may sign. */
export async function recoverPublicKey(privateKey) {
  const subtle = globalThis.crypto.subtle;
  const enc = new TextEncoder();
  const m1 = enc.encode("amesh: public key recovery, message 1");
  const m2 = enc.encode("amesh: public key recovery, message 2");
  const [s1, s2] = await Promise.all([subtle.sign(ALG, privateKey, m1), subtle.sign(ALG, privateKey, m2)]);
  const digest = new Uint8Array(await subtle.digest("SHA-256", m1));
  for (const point of candidates(digest, new Uint8Array(s1))) {
    try {
      const key = await subtle.importKey("raw", point, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
      if (await subtle.verify(ALG, key, s1, m1) && await subtle.verify(ALG, key, s2, m2)) return point;
    } catch { /* not a point on the curve: the other candidate */ }
  }
  throw new Error("amesh: could not recover the public key of the private key");
}
