package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/amesh-go/amesh/internal/vectors"
	"github.com/amesh-go/amesh/wasm/abi"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// The guest's logic runs natively here against fakeHost; host/wasmhost
// tests the same logic compiled to wasm, through the real imports.

type fakeHost struct {
	now     int64
	crypto  int32 // answer of VerifyECDSA when not verifying for real; -1: verify
	nonces  *protocol.MemoryNonceStore
	nonceOK bool
	signer  protocol.Signer
	logs    []string
	randErr error // answer of Random when set
	// hashedMessages counts VerifyECDSA calls that had to hash msg.
	hashedMessages int
}

func newFakeHost() *fakeHost {
	return &fakeHost{now: 1_800_000_000_000, crypto: -1, nonces: protocol.NewMemoryNonceStore(0), nonceOK: true}
}

func (h *fakeHost) NowMs() int64 { return h.now }

func (h *fakeHost) VerifyECDSA(point, msg, digest, sig []byte) int32 {
	if h.crypto >= 0 {
		return h.crypto
	}
	if len(point) != protocol.UncompressedKeySize {
		return abi.SigInvalid
	}
	if digest == nil {
		h.hashedMessages++
		d := sha256.Sum256(msg)
		digest = d[:]
	}
	c := append([]byte{2 | point[64]&1}, point[1:33]...)
	k, err := protocol.ParsePublicKey(c)
	if err != nil || k.VerifyDigest(digest, sig) != nil {
		return abi.SigInvalid
	}
	return abi.SigValid
}

func (h *fakeHost) RecordNonce(key []byte, nowMs, ttlMs int64) int32 {
	if !h.nonceOK {
		return abi.NonceFailure
	}
	if h.nonces == nil {
		return abi.NonceFresh
	}
	fresh, err := h.nonces.Record(context.Background(), string(key), time.UnixMilli(nowMs), time.Duration(ttlMs)*time.Millisecond)
	switch {
	case err != nil:
		return abi.NonceFailure
	case fresh:
		return abi.NonceFresh
	}
	return abi.NonceReplay
}

func (h *fakeHost) SignDigest(key, digest []byte, out *[protocol.SignatureSize]byte) int32 {
	if h.signer == nil || !bytes.Equal(h.signer.PublicKey(), key) {
		return abi.SignNoKey
	}
	sig, err := h.signer.SignDigest(digest)
	if err != nil {
		return abi.SignFailed
	}
	copy(out[:], sig)
	return abi.SignOK
}

func (h *fakeHost) Log(level int32, msg string) { h.logs = append(h.logs, msg) }

func (h *fakeHost) Random(b []byte) error {
	if h.randErr != nil {
		return h.randErr
	}
	_, err := rand.Read(b)
	return err
}

func testKey(t testing.TB, b byte) *protocol.PrivateKey {
	k, err := protocol.ParsePrivateKey(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func configRecord(c *abi.Config) []byte {
	var e abi.Encoder
	c.Encode(&e)
	return e.Buf
}

func requestRecord(r *abi.Request) []byte {
	var e abi.Encoder
	r.Encode(&e)
	return e.Buf
}

// signedRecord returns a request record signed by k at the fake host's time.
func signedRecord(t testing.TB, k *protocol.PrivateKey, h *fakeHost, target string) []byte {
	s, err := protocol.SignRequest(k, protocol.SignParams{Method: "POST", Target: target, Body: []byte("b"), Time: time.UnixMilli(h.now)})
	if err != nil {
		t.Fatal(err)
	}
	return requestRecord(&abi.Request{Method: "POST", Target: target, Host: "h", Authorization: []string{s.Authorization}, Body: []byte("b")})
}

// configured returns a guest configured with controller k in store mode.
func configured(t testing.TB, k *protocol.PrivateKey, store int64) (*guest, *fakeHost) {
	h := newFakeHost()
	g := newGuest(h)
	cfg := &abi.Config{AllowList: []abi.AllowEntry{
		{Key: k.Public().Bytes(), Role: protocol.RoleController, Name: "ctl"},
		{Key: []byte(testKey(t, 2).Public().String()), Role: protocol.RoleTarget},
	}, NonceStore: store}
	if err := g.configure(configRecord(cfg)); err != nil {
		t.Fatal(err)
	}
	return g, h
}

// decode runs one export through call and decodes its result record.
func decode(t testing.TB, out []byte) *abi.Result {
	t.Helper()
	n := int(out[0]) | int(out[1])<<8 | int(out[2])<<16 | int(out[3])<<24
	if n != len(out)-4 {
		t.Fatalf("result length %d, record %d bytes", n, len(out)-4)
	}
	// The record is the guest's reusable output buffer: copy it, as hosts do.
	res, err := abi.DecodeResult(bytes.Clone(out[4:]))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestVerifyAndReplay(t *testing.T) {
	k := testKey(t, 1)
	for _, store := range []int64{abi.NonceStoreGuest, abi.NonceStoreHost} {
		g, h := configured(t, k, store)
		rec := signedRecord(t, k, h, "/a?b=1")
		res := decode(t, g.call(func(r *abi.Result) error { return g.verify(rec, r) }))
		if res.Status != 200 || res.DeviceName != "ctl" || res.Reason != "ok" {
			t.Fatalf("store %d: %+v", store, res)
		}
		res = decode(t, g.call(func(r *abi.Result) error { return g.verify(rec, r) }))
		if res.Status != 401 || res.Reason != string(protocol.ReasonReplay) {
			t.Fatalf("store %d replay: %+v", store, res)
		}
		if store == abi.NonceStoreHost {
			h.nonceOK = false
			rec := signedRecord(t, k, h, "/c")
			res = decode(t, g.call(func(r *abi.Result) error { return g.verify(rec, r) }))
			if res.Status != 503 || res.Code != string(protocol.CodeUnavailable) {
				t.Fatalf("host store down: %+v", res)
			}
		}
	}
}

func TestHostCryptoFallback(t *testing.T) {
	k := testKey(t, 1)
	g, h := configured(t, k, abi.NonceStoreGuest)
	h.crypto = abi.SigUnsupported // the guest verifies itself
	rec := signedRecord(t, k, h, "/x")
	if res := decode(t, g.call(func(r *abi.Result) error { return g.verify(rec, r) })); res.Status != 200 {
		t.Fatalf("fallback: %+v", res)
	}
	h.crypto = abi.SigInvalid // the host's word is final
	rec = signedRecord(t, k, h, "/y")
	if res := decode(t, g.call(func(r *abi.Result) error { return g.verify(rec, r) })); res.Reason != string(protocol.ReasonBadSignature) {
		t.Fatalf("host says invalid: %+v", res)
	}
}

// TestHostHashesMessage: under CryptoHostMessage the host gets the message
// and no digest, prepare results carry none, and the verdicts are unchanged.
func TestHostHashesMessage(t *testing.T) {
	k := testKey(t, 1)
	for _, mode := range []int64{abi.CryptoHost, abi.CryptoHostMessage} {
		h := newFakeHost()
		g := newGuest(h)
		cfg := &abi.Config{AllowList: []abi.AllowEntry{{Key: k.Public().Bytes(), Role: protocol.RoleController}}, Crypto: mode}
		if err := g.configure(configRecord(cfg)); err != nil {
			t.Fatal(err)
		}
		rec := signedRecord(t, k, h, "/ok")
		if res := decode(t, g.call(func(r *abi.Result) error { return g.verify(rec, r) })); res.Status != 200 {
			t.Fatalf("mode %d: %+v", mode, res)
		}
		bad := signedRecord(t, testKey(t, 4), h, "/bad") // a key the list does not hold for this signature
		bad = bytes.Replace(bad, []byte(testKey(t, 4).Public().String()), []byte(k.Public().String()), 1)
		if res := decode(t, g.call(func(r *abi.Result) error { return g.verify(bad, r) })); res.Reason != string(protocol.ReasonBadSignature) {
			t.Fatalf("mode %d, forged: %+v", mode, res)
		}
		prep := decode(t, g.call(func(r *abi.Result) error { return g.prepare(signedRecord(t, k, h, "/p"), r) }))
		if prep.Handle == 0 || len(prep.Message) == 0 {
			t.Fatalf("mode %d, prepare: %+v", mode, prep)
		}
		wantDigest, wantHashed := 32, 0
		if mode == abi.CryptoHostMessage {
			wantDigest, wantHashed = 0, 2
		}
		if len(prep.Digest) != wantDigest || h.hashedMessages != wantHashed {
			t.Fatalf("mode %d: prepare digest %d bytes (want %d), host hashed %d messages (want %d)",
				mode, len(prep.Digest), wantDigest, h.hashedMessages, wantHashed)
		}
		// The digest the guest computes in wasm is the message's.
		if d := sha256.Sum256(prep.Message); wantDigest != 0 && !bytes.Equal(prep.Digest, d[:]) {
			t.Fatalf("mode %d: prepare digest %x, want the SHA-256 of the message %x", mode, prep.Digest, d)
		}
	}
}

func TestNotConfiguredAndPanics(t *testing.T) {
	h := newFakeHost()
	g := newGuest(h)
	rec := requestRecord(&abi.Request{Method: "GET", Target: "/"})
	if res := decode(t, g.call(func(r *abi.Result) error { return g.verify(rec, r) })); !strings.Contains(res.Error, "configure") {
		t.Fatalf("unconfigured: %+v", res)
	}
	res := decode(t, g.call(func(*abi.Result) error { panic("boom") }))
	if !strings.Contains(res.Error, "boom") || len(h.logs) == 0 {
		t.Fatalf("panic: %+v, logs %v", res, h.logs)
	}
}

func TestSignFlows(t *testing.T) {
	k := testKey(t, 3)
	h := newFakeHost()
	g := newGuest(h)
	var e abi.Encoder
	(&abi.SignParams{Version: "2", Method: "GET", URL: "https://API.example:443/p/./q?b&a=1#f", Authority: "API.example:443",
		Scheme: "https", Key: k.PublicKey()}).Encode(&e)
	if res := decode(t, g.call(func(r *abi.Result) error { return g.sign(e.Buf, r) })); !strings.Contains(res.Error, "no signer") {
		t.Fatalf("no signer: %+v", res)
	}
	h.signer = k
	res := decode(t, g.call(func(r *abi.Result) error { return g.sign(e.Buf, r) }))
	if res.Error != "" || res.Target != "/p/q?b&a=1" || !strings.HasPrefix(string(res.Message), "AMv2\nGET\napi.example\n/p/q?a=1&b=\n") {
		t.Fatalf("sign: %+v %q", res, res.Message)
	}
	hdr, err := protocol.ParseHeader(res.Authorization)
	if err != nil || hdr.V != "2" || hdr.TS != "1800000000" || hdr.Nonce != res.Nonce {
		t.Fatalf("header %q: %v", res.Authorization, err)
	}

	prep := decode(t, g.call(func(r *abi.Result) error { return g.signPrepare(e.Buf, r) }))
	if prep.Handle == 0 || len(prep.Digest) != 32 {
		t.Fatalf("sign_prepare: %+v", prep)
	}
	sig, _ := k.SignDigest(prep.Digest)
	fin := decode(t, g.call(func(r *abi.Result) error { return g.signFinish(prep.Handle, sig, r) }))
	if fin.Error != "" || !bytes.Equal(fin.Message, prep.Message) {
		t.Fatalf("sign_finish: %+v", fin)
	}
	if res := decode(t, g.call(func(r *abi.Result) error { return g.signFinish(prep.Handle, sig, r) })); res.Error == "" {
		t.Fatal("handle reused")
	}
	h.randErr = errors.New("no entropy")
	if res := decode(t, g.call(func(r *abi.Result) error { return g.sign(e.Buf, r) })); res.Error != "nonce: no entropy" {
		t.Fatalf("random_get failing: %+v", res)
	}
}

// FuzzConfigure feeds arbitrary configuration records to the decoder and
// the guest; a failure must leave the previous configuration working.
func FuzzConfigure(f *testing.F) {
	k := testKey(f, 1)
	f.Add(configRecord(&abi.Config{AllowList: []abi.AllowEntry{{Key: k.Public().Bytes(), Role: "controller"}}}))
	f.Add(configRecord(&abi.Config{Authorities: []string{"a:1", "[::1]"}, RequireV2: true, ClockSkewMs: 1000, NonceStore: 1, Crypto: 1, MaxPending: 5}))
	f.Add([]byte{1, 5, 0, 0, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, rec []byte) {
		g, h := configured(t, k, abi.NonceStoreGuest)
		_ = g.configure(rec)
		if g.v == nil {
			t.Fatal("configuration lost")
		}
		out := signedRecord(t, k, h, "/")
		var res abi.Result
		if err := g.verify(out, &res); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzVerify feeds arbitrary request records to verify and prepare/commit.
func FuzzVerify(f *testing.F) {
	k := testKey(f, 1)
	h0 := newFakeHost()
	f.Add(signedRecord(f, k, h0, "/a?b=1"), int32(0), int32(0))
	f.Add(requestRecord(&abi.Request{Method: "GET", Target: "/", Authorization: []string{"AuthMesh v=1", "x"}, NowMs: 5, HasNow: true}), int32(2), int32(1))
	f.Add([]byte{2, 0, 0, 0, 0, 1, 0, 0, 0, 0}, int32(1), int32(3))
	f.Fuzz(func(t *testing.T, rec []byte, sigStatus, nonceStatus int32) {
		g, _ := configured(t, k, abi.NonceStoreHost)
		var res abi.Result
		if err := g.verify(rec, &res); err == nil && res.Status != int64(protocol.Code(res.Code).Status()) {
			t.Fatalf("status %d for code %q", res.Status, res.Code)
		}
		var prep abi.Result
		if err := g.prepare(rec, &prep); err != nil || prep.Handle == 0 {
			return
		}
		var fin abi.Result
		if err := g.commit(prep.Handle, sigStatus, nonceStatus, &fin); err == nil && fin.Status == 0 {
			t.Fatal("commit without a status")
		}
		if len(g.pending) != 0 {
			t.Fatal("commit left the check pending")
		}
		if err := g.prepare(rec, &prep); err == nil && prep.Handle != 0 {
			g.release(prep.Handle)
			if len(g.pending) != 0 {
				t.Fatal("release left the check pending")
			}
		}
	})
}

// FuzzSign feeds arbitrary signing records to sign and sign_prepare.
func FuzzSign(f *testing.F) {
	k := testKey(f, 3)
	var e abi.Encoder
	(&abi.SignParams{Method: "GET", Target: "/x", Key: k.PublicKey(), Body: []byte("b"), NowMs: 1, HasNow: true}).Encode(&e)
	f.Add(e.Buf)
	e.Buf = nil
	(&abi.SignParams{Version: "2", Method: "PUT", URL: "http://h:80/a", Authority: "h:80", Scheme: "http", Key: k.PublicKey(), Nonce: make([]byte, 8)}).Encode(&e)
	f.Add(e.Buf)
	f.Fuzz(func(t *testing.T, rec []byte) {
		h := newFakeHost()
		h.signer = k
		g := newGuest(h)
		var res abi.Result
		if err := g.sign(rec, &res); err == nil {
			if _, err := protocol.ParseHeader(res.Authorization); err != nil {
				t.Fatalf("signed header does not parse: %v", err)
			}
		}
		var prep abi.Result
		sp, _ := abi.DecodeSignParams(rec)
		if err := g.signPrepare(rec, &prep); err == nil && bytes.Equal(sp.Key, k.PublicKey()) {
			sig, _ := k.SignDigest(prep.Digest)
			var fin abi.Result
			if err := g.signFinish(prep.Handle, sig, &fin); err != nil {
				t.Fatalf("sign_finish after a successful sign_prepare: %v", err)
			}
		}
	})
}

// FuzzBuffers runs sequences of alloc, free and input against the buffer
// table and checks that input only ever returns bytes of a live buffer.
func FuzzBuffers(f *testing.F) {
	f.Add([]byte{0, 10, 2, 0, 5, 1, 0, 2, 0, 5})
	f.Add([]byte{0, 255, 2, 0, 255, 2, 1, 3})
	f.Fuzz(func(t *testing.T, ops []byte) {
		next := uint32(8)
		owner := map[uint32][]byte{} // what the fake address function handed out
		b := &buffers{m: make(map[uint32][]byte), addr: func(buf []byte) uint32 {
			p := next
			next += uint32(len(buf)) + 8
			owner[p] = buf
			return p
		}}
		var live []uint32
		for i := 0; i+1 < len(ops); i += 2 {
			arg := uint32(ops[i+1])
			switch ops[i] % 4 {
			case 0:
				if p := b.alloc(arg * 16); p != 0 {
					live = append(live, p)
				}
			case 1:
				if len(live) > 0 {
					b.free(live[int(arg)%len(live)])
				}
			case 2, 3:
				ptr := arg
				if len(live) > 0 && ops[i]%4 == 2 {
					ptr = live[int(arg)%len(live)]
				}
				n := arg * 17
				in, err := b.input(ptr, n)
				if err != nil {
					continue
				}
				buf, ok := b.m[ptr]
				if !ok || uint32(len(in)) != n || n > uint32(len(buf)) || (n > 0 && &in[0] != &buf[0]) || cap(in) != int(n) {
					t.Fatalf("input(%d, %d) returned %d bytes outside a live buffer", ptr, n, len(in))
				}
			}
		}
		if b.alloc(abi.MaxRecordSize+1) != 0 {
			t.Fatal("allocation above the limit")
		}
	})
}

func TestVerifySignatureRecord(t *testing.T) {
	k := testKey(t, 5)
	msg := []byte("a message")
	d := sha256.Sum256(msg)
	sig, err := k.SignDigest(d[:])
	if err != nil {
		t.Fatal(err)
	}
	high := highS(t, sig)
	b64 := base64.RawURLEncoding.EncodeToString(sig)
	tests := []struct {
		name       string
		key, m, s  []byte
		text       string
		status     int64
		reason     protocol.Reason
		hostHashes int // messages the fake host hashed (CryptoHostMessage)
	}{
		{"valid, raw key and signature", k.PublicKey(), msg, sig, "", 200, protocol.ReasonOK, 1},
		{"valid, key and signature as text", []byte(k.Public().String()), msg, nil, b64, 200, protocol.ReasonOK, 1},
		{"other message", k.PublicKey(), []byte("another"), sig, "", 401, protocol.ReasonBadSignature, 1},
		{"high-S refused before ECDSA", k.PublicKey(), msg, high, "", 401, protocol.ReasonBadSignature, 0},
		{"key not on the curve", append([]byte{2}, bytes.Repeat([]byte{0xff}, 32)...), msg, sig, "", 400, protocol.ReasonMalformedHeader, 0},
		{"signature text not base64url", k.PublicKey(), msg, nil, "!!", 400, protocol.ReasonMalformedHeader, 0},
		{"signature text of 64 characters", k.PublicKey(), msg, nil, b64[:64], 400, protocol.ReasonMalformedHeader, 0},
		{"signature text with a line break", k.PublicKey(), msg, nil, b64[:40] + "\r\n" + b64[40:], 400, protocol.ReasonMalformedHeader, 0},
		{"signature text with CRLF after it", k.PublicKey(), msg, nil, b64 + "\r\n", 400, protocol.ReasonMalformedHeader, 0},
		{"signature of 63 bytes", k.PublicKey(), msg, sig[:63], "", 400, protocol.ReasonMalformedHeader, 0},
	}
	for _, mode := range []int64{abi.CryptoHost, abi.CryptoGuest, abi.CryptoHostMessage} {
		for _, tt := range tests {
			h := newFakeHost()
			g := newGuest(h)
			if err := g.configure(configRecord(&abi.Config{Crypto: mode})); err != nil {
				t.Fatal(err)
			}
			var e abi.Encoder
			(&abi.SignatureCheck{Key: tt.key, Message: tt.m, Signature: tt.s, SigText: tt.text}).Encode(&e)
			res := decode(t, g.call(func(r *abi.Result) error { return g.verifySignatureRecord(e.Buf, r) }))
			if res.Status != tt.status || res.Reason != string(tt.reason) {
				t.Errorf("crypto %d, %s: %d %s (%s), want %d %s", mode, tt.name, res.Status, res.Reason, res.Detail, tt.status, tt.reason)
			}
			want := 0
			if mode == abi.CryptoHostMessage {
				want = tt.hostHashes
			}
			if h.hashedMessages != want {
				t.Errorf("crypto %d, %s: host hashed %d messages, want %d", mode, tt.name, h.hashedMessages, want)
			}
		}
	}
	// A record without a signature is a malformed call, not a verdict.
	var e abi.Encoder
	e.Bytes(abi.SigCheckKey, k.PublicKey())
	g := newGuest(newFakeHost())
	if res := decode(t, g.call(func(r *abi.Result) error { return g.verifySignatureRecord(e.Buf, r) })); res.Error == "" {
		t.Fatalf("no signature: %+v", res)
	}
}

// highS returns the other, high-S form of a low-S signature: s' = n - s.
func highS(t *testing.T, sig []byte) []byte {
	out := vectors.HighS(sig)
	if protocol.IsLowS(out) {
		t.Fatal("n - s is still low")
	}
	return out
}
