// Package p256 is the NIST P-256 group (FIPS 186-4, SEC 2) for verifying
// ECDSA signatures in amesh.wasm: point decoding and validation, point
// addition and doubling, the double scalar multiplication u1·G + u2·Q that
// verification needs, its final comparison with r, the arithmetic mod n
// around it (scalar.go), and ECDSA verification itself (VerifyECDSA).
//
// It exists to keep amesh.wasm small (issue 5: at most 0.9 MB gzip; see
// the package documentation of wasm/protocol). crypto/ecdsa links every
// NIST curve and Go's FIPS 140 module into a wasm binary;
// filippo.io/nistec, which amesh.wasm used before, links an 88 KB table of
// precomputed multiples of G, which gzip cannot shrink, and imports
// golang.org/x/sys/cpu and with it package os. This package has neither:
// its only table, 32 odd multiples of G, is computed at first use.
//
// # Public values only
//
// Nothing here runs in constant time: field arithmetic takes shortcuts on
// carries, exponentiation and scalar multiplication branch on the bits of
// their inputs, and tables are indexed by scalar digits. That is sound for
// signature verification, whose inputs (public keys, signatures, digests)
// are all public, and for nothing else: never use this package with a
// private key, a signing nonce or any other secret. (The guest never signs
// itself: it asks the host, through the sign_digest import, and wasm
// builds of wasm/protocol hold no private keys.)
//
// The field arithmetic (field.go) is Montgomery multiplication on four
// 64-bit limbs with a reduction that uses the special form of p; inversion
// and square roots are exponentiations (p ≡ 3 mod 4). Points (point.go)
// are in Jacobian coordinates, whose doubling is cheap, with the special
// cases of addition handled by branches. u1·G + u2·Q (scalarmult.go) is
// Straus's interleaved method over width-w NAF recodings of u1 and u2.
// Under wazero this verifies a signature in about 0.4 ms, against 0.6 ms
// for filippo.io/nistec.
//
// The code was written for this project from the curve's definition (SEC
// 1 and 2, FIPS 186-4) and textbook formulas. Native tests hold every
// operation to crypto/ecdsa, crypto/ecdh and a math/big model of the
// curve, and fuzz targets (with seed corpora in testdata/fuzz) go on
// from there.
package p256
