// Package envoyhost reproduces, in Go, the two pieces of Envoy's Wasm host
// that the filter depends on and that the SDK's emulator (proxytest) does not
// provide, so that tests can run against them: the verify_signature foreign
// function and the thread-safe shared-data map with its compare-and-swap
// rules. No Envoy binary can run in this environment; these follow Envoy's
// source (source/extensions/common/wasm/foreign.cc,
// source/common/crypto/utility_impl.cc and proxy-wasm-cpp-host's
// src/shared_data.cc). Only tests import this package.
package envoyhost

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/amesh-go/amesh/envoy-filter/internal/noncecache"
)

// VerifySignature is Envoy's verify_signature foreign function: it parses
// VerifySignatureArguments, imports the DER (or PEM) SubjectPublicKeyInfo,
// hashes text with the named hash and verifies the DER signature, like
// EVP_DigestVerify. Like BoringSSL it accepts high-S signatures.
//
// Where Envoy returns a BadArgument status (unparseable arguments, no key),
// this returns a result with result=false and the reason, because the SDK's
// emulator cannot return a status from a foreign function.
func VerifySignature(param []byte) []byte {
	args, err := decodeArgs(param)
	if err != nil {
		return encodeResult(false, "bad argument: "+err.Error())
	}
	if args.hash != "sha256" {
		// Envoy supports other hashes; amesh only ever asks for SHA-256.
		return encodeResult(false, args.hash+" is not supported.")
	}
	der := args.key
	switch {
	case len(args.pem) > 0 && len(args.key) > 0:
		return encodeResult(false, "bad argument: both public_key and public_key_pem")
	case len(args.pem) > 0:
		b, _ := pem.Decode(args.pem)
		if b == nil {
			return encodeResult(false, "bad argument: public_key_pem is not PEM")
		}
		der = b.Bytes
	case len(der) == 0:
		return encodeResult(false, "bad argument: no public key")
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return encodeResult(false, "bad argument: "+err.Error())
	}
	ek, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return encodeResult(false, "Failed to initialize digest verify.")
	}
	d := sha256.Sum256(args.text)
	if !ecdsa.VerifyASN1(ek, d[:], args.sig) {
		return encodeResult(false, "Failed to verify digest. Error code: 0")
	}
	return encodeResult(true, "")
}

type verifyArgs struct {
	hash          string
	key, pem, sig []byte
	text          []byte
}

func decodeArgs(b []byte) (verifyArgs, error) {
	var a verifyArgs
	for len(b) > 0 {
		tag, n := varint(b)
		if n == 0 {
			return a, errors.New("truncated tag")
		}
		b = b[n:]
		switch tag & 7 {
		case 0:
			_, n := varint(b)
			if n == 0 {
				return a, errors.New("truncated varint")
			}
			b = b[n:] // no varint fields in the message; skipped like protobuf does
		case 2:
			l, n := varint(b)
			if n == 0 || l > uint64(len(b)-n) {
				return a, errors.New("truncated field")
			}
			v := b[n : n+int(l)]
			b = b[n+int(l):]
			switch tag >> 3 {
			case 1:
				a.hash = string(v)
			case 2:
				a.key = v
			case 3:
				a.sig = v
			case 4:
				a.text = v
			case 5:
				a.pem = v
			}
		default:
			return a, fmt.Errorf("wire type %d", tag&7)
		}
	}
	return a, nil
}

func varint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}

// encodeResult serialises VerifySignatureResult. Envoy always sets an error
// text with result=false, so the message is never empty (the SDK's emulator
// cannot return an empty result either).
func encodeResult(ok bool, msg string) []byte {
	var out []byte
	if ok {
		out = append(out, 0x08, 0x01)
	}
	if msg != "" {
		out = append(out, 0x12)
		l := uint64(len(msg))
		for l >= 0x80 {
			out = append(out, byte(l)|0x80)
			l >>= 7
		}
		out = append(out, byte(l))
		out = append(out, msg...)
	}
	if len(out) == 0 {
		out = []byte{0x08, 0x00}
	}
	return out
}

// SharedData is proxy-wasm-cpp-host's shared data for one vm_id: a mutex
// around a map, CAS tokens from a process-wide counter that skips 0, a token
// of 0 meaning an unconditional write, and inserts of absent keys ignoring
// the token. Every Envoy worker's VM talks to the same instance; in tests
// every goroutine does.
type SharedData struct {
	mu     sync.Mutex
	m      map[string]entry
	cas    uint32
	sets   atomic.Int64
	misses atomic.Int64
}

type entry struct {
	value []byte
	cas   uint32
}

var _ noncecache.Store = (*SharedData)(nil)

// NewSharedData returns an empty map.
func NewSharedData() *SharedData {
	return &SharedData{m: make(map[string]entry), cas: 1}
}

func (s *SharedData) nextCas() uint32 {
	r := s.cas
	s.cas++
	if s.cas == 0 {
		s.cas++
	}
	return r
}

// Get implements noncecache.Store. It returns a copy, as a Wasm VM gets
// one in its own memory.
func (s *SharedData) Get(key string) ([]byte, uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok {
		return nil, 0, noncecache.ErrNotFound
	}
	return append([]byte(nil), e.value...), e.cas, nil
}

// Set implements noncecache.Store.
func (s *SharedData) Set(key string, value []byte, cas uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[key]; ok && cas != 0 && cas != e.cas {
		s.misses.Add(1)
		return noncecache.ErrCASMismatch
	}
	s.m[key] = entry{value: append([]byte(nil), value...), cas: s.nextCas()}
	s.sets.Add(1)
	return nil
}

// Conflicts returns how many writes failed on a CAS mismatch.
func (s *SharedData) Conflicts() int64 { return s.misses.Load() }

// Keys returns the number of keys held.
func (s *SharedData) Keys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
