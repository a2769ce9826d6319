package abi

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
)

// TestWireFormat pins the encoding to docs/ABI.md with bytes written out
// by hand, so that a change to the codec cannot pass by agreeing with
// itself.
func TestWireFormat(t *testing.T) {
	var e Encoder
	(&Request{Method: "GET", Target: "/a", Authorization: []string{"x", "y"}, NowMs: 0x0102030405060708, HasNow: true}).Encode(&e)
	want := "01" + "03000000" + hex.EncodeToString([]byte("GET")) +
		"02" + "02000000" + hex.EncodeToString([]byte("/a")) +
		"05" + "01000000" + "78" +
		"05" + "01000000" + "79" +
		"07" + "08000000" + "0807060504030201"
	if got := hex.EncodeToString(e.Buf); got != want {
		t.Fatalf("request record\n got %s\nwant %s", got, want)
	}
	e.Buf = nil
	(&Config{AllowList: []AllowEntry{{Key: []byte{2, 3}, Role: "controller"}}, RequireV2: true}).Encode(&e)
	want = "01" + "16000000" + // entry record of 22 bytes
		"01" + "02000000" + "0203" +
		"02" + "0a000000" + hex.EncodeToString([]byte("controller")) +
		"04" + "01000000" + "01"
	if got := hex.EncodeToString(e.Buf); got != want {
		t.Fatalf("config record\n got %s\nwant %s", got, want)
	}
}

func TestDecodeRules(t *testing.T) {
	cases := []struct {
		name string
		rec  string
		ok   bool
	}{
		{"empty request", "", false},
		{"minimal request", "0103000000474554" + "020100000041", true},
		{"duplicate method", "0103000000474554" + "0103000000474554" + "020100000041", false},
		{"tag 127, a result field", "0103000000474554" + "020100000041" + "7f00000000", false},
		{"unknown required tag 9", "0103000000474554" + "020100000041" + "0900000000", false},
		{"unknown optional tag", "0103000000474554" + "020100000041" + "8003000000616263", true},
		{"tag zero", "0103000000474554" + "020100000041" + "0000000000", false},
		{"length past end", "0103000000474554" + "0205000000410000", false},
		{"length 4 GiB", "01ffffffff474554", false},
		{"truncated header", "01030000", false},
		{"now of 4 bytes", "0103000000474554" + "020100000041" + "070400000001020304", false},
	}
	for _, c := range cases {
		rec, _ := hex.DecodeString(c.rec)
		_, err := DecodeRequest(rec)
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v", c.name, err)
		}
		if err != nil && !errors.Is(err, ErrRecord) {
			t.Errorf("%s: error %v does not wrap ErrRecord", c.name, err)
		}
	}
	if _, err := Bool([]byte{2}); err == nil {
		t.Error("boolean 2 accepted")
	}
	if _, err := DecodeSignParams(mustEncode(func(e *Encoder) {
		(&SignParams{Method: "GET", Target: "/", Key: []byte{1}}).Encode(e)
		e.String(SignURL, "https://x/")
	})); err == nil {
		t.Error("sign record with target and url accepted")
	}
}

func mustEncode(fill func(*Encoder)) []byte {
	var e Encoder
	fill(&e)
	return e.Buf
}

func TestRoundTrip(t *testing.T) {
	c := &Config{AllowList: []AllowEntry{{Key: []byte{1}, Role: "r", ID: "i", Name: "n"}}, IntegrityFailure: true,
		Authorities: []string{"a", "b"}, RequireV2: true, ClockSkewMs: 1, NonceTTLMs: -2, MaxBodyBytes: 3,
		NonceStore: 1, NonceCapacity: 4, Crypto: 1, MaxPending: 5}
	got, err := DecodeConfig(mustEncode(c.Encode))
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("config: %v\n%+v\n%+v", err, got, c)
	}
	r := &Result{Status: 401, Code: "c", Reason: "r", Detail: "d", DeviceID: "i", DeviceName: "n", DeviceRole: "o",
		Version: "2", Key: []byte{1}, Handle: 7, KeyPoint: []byte{2}, Message: []byte{3}, Digest: []byte{4},
		Signature: []byte{5}, NonceKey: []byte{6}, Authorization: "a", Target: "t", TS: "s", Nonce: "o", Error: "e"}
	gotR, err := DecodeResult(mustEncode(r.Encode))
	if err != nil || !reflect.DeepEqual(gotR, r) {
		t.Fatalf("result: %v\n%+v\n%+v", err, gotR, r)
	}
}

// fuzzRoundTrip checks that whatever decodes re-encodes to a record that
// decodes to the same value.
func fuzzRoundTrip[T any](t *testing.T, rec []byte, decode func([]byte) (T, error), encode func(T, *Encoder)) {
	v, err := decode(rec)
	if err != nil {
		if !errors.Is(err, ErrRecord) {
			t.Fatalf("error %v does not wrap ErrRecord", err)
		}
		return
	}
	var e Encoder
	encode(v, &e)
	v2, err := decode(e.Buf)
	if err != nil {
		t.Fatalf("re-encoded record does not decode: %v", err)
	}
	if !reflect.DeepEqual(normalise(v), normalise(v2)) {
		t.Fatalf("round trip changed the value:\n%+v\n%+v", v, v2)
	}
}

// normalise maps empty byte slices to nil: the encoders leave out empty
// optional fields, which then decode as nil.
func normalise(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer {
		return v
	}
	cp := reflect.New(rv.Elem().Type())
	cp.Elem().Set(rv.Elem())
	s := cp.Elem()
	for i := range s.NumField() {
		f := s.Field(i)
		if f.Kind() == reflect.Slice && f.Len() == 0 {
			f.Set(reflect.Zero(f.Type()))
		}
	}
	return cp.Interface()
}

func FuzzDecodeConfig(f *testing.F) {
	f.Add(mustEncode((&Config{AllowList: []AllowEntry{{Key: []byte{2, 3}, Role: "controller", Name: "x"}}, Authorities: []string{"a"}, MaxPending: 3}).Encode))
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, rec []byte) {
		fuzzRoundTrip(t, rec, DecodeConfig, func(c *Config, e *Encoder) {
			// Entries decode with empty optional texts; encode keeps them
			// out, which is the same value.
			c.Encode(e)
		})
	})
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(mustEncode((&Request{Method: "GET", Target: "/", Host: "h", Scheme: "http", Authorization: []string{"a"}, Body: []byte("b"), NowMs: 1, HasNow: true}).Encode))
	f.Fuzz(func(t *testing.T, rec []byte) {
		fuzzRoundTrip(t, rec, DecodeRequest, func(r *Request, e *Encoder) { r.Encode(e) })
	})
}

func FuzzDecodeSignParams(f *testing.F) {
	f.Add(mustEncode((&SignParams{Version: "2", Method: "GET", URL: "https://h/", Authority: "h", Scheme: "https", Body: []byte("b"), Key: []byte{2}, Nonce: []byte{1}, NowMs: 1, HasNow: true}).Encode))
	f.Fuzz(func(t *testing.T, rec []byte) {
		fuzzRoundTrip(t, rec, DecodeSignParams, func(p *SignParams, e *Encoder) {
			// A URL and a target never both decode; Encode picks by URL.
			p.Encode(e)
		})
	})
}

func FuzzDecodeResult(f *testing.F) {
	f.Add(mustEncode((&Result{Status: 200, Reason: "ok", Key: []byte{1}, Handle: 3}).Encode))
	f.Fuzz(func(t *testing.T, rec []byte) {
		fuzzRoundTrip(t, rec, DecodeResult, func(r *Result, e *Encoder) { r.Encode(e) })
	})
}

func FuzzDecodeSignatureCheck(f *testing.F) {
	f.Add(mustEncode((&SignatureCheck{Key: []byte{2, 1}, Message: []byte("m"), Signature: []byte{1, 2}}).Encode))
	f.Add(mustEncode((&SignatureCheck{Key: []byte("k"), SigText: "s"}).Encode))
	f.Add([]byte{1, 0, 0, 0, 0, 3, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, rec []byte) {
		fuzzRoundTrip(t, rec, DecodeSignatureCheck, func(c *SignatureCheck, e *Encoder) { c.Encode(e) })
	})
}

// The signature record (amesh_verify_signature), byte by byte: tag, 4-byte
// little-endian length, value; a key and exactly one of the two spellings
// of the signature.
func TestDecodeSignatureCheckRules(t *testing.T) {
	const (
		key  = "0103000000" + "6b6579"   // key "key"
		msg  = "0203000000" + "6d7367"   // message "msg"
		sig  = "0302000000" + "7273"     // signature "rs"
		text = "0404000000" + "74657874" // signature_text "text"
	)
	cases := []struct {
		name string
		rec  string
		want *SignatureCheck
	}{
		{"key, message, signature", key + msg + sig, &SignatureCheck{Key: []byte("key"), Message: []byte("msg"), Signature: []byte("rs")}},
		{"key and signature text", key + text, &SignatureCheck{Key: []byte("key"), SigText: "text"}},
		{"no key", msg + sig, nil},
		{"no signature", key + msg, nil},
		{"both spellings of the signature", key + sig + text, nil},
		{"duplicate key", key + key + sig, nil},
		{"unknown required tag", key + sig + "0500000000", nil},
	}
	for _, c := range cases {
		rec, err := hex.DecodeString(c.rec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeSignatureCheck(rec)
		if c.want == nil {
			if err == nil || !errors.Is(err, ErrRecord) {
				t.Errorf("%s: %+v, %v: want an ErrRecord", c.name, got, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got.Key, c.want.Key) || !bytes.Equal(got.Message, c.want.Message) ||
			!bytes.Equal(got.Signature, c.want.Signature) || got.SigText != c.want.SigText {
			t.Errorf("%s: %+v, %v: want %+v", c.name, got, err, c.want)
		}
		var e Encoder
		c.want.Encode(&e)
		if hex.EncodeToString(e.Buf) != c.rec {
			t.Errorf("%s: encoded as %x, want %s", c.name, e.Buf, c.rec)
		}
	}
}
