package provision

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/amesh-go/amesh/wasm/protocol"
)

// fixedToken is the same token on every run, so that the committed seed
// corpora (testdata/fuzz) stay meaningful: fixed keys, time and randomness.
func fixedToken(t testing.TB) (*Token, *protocol.PrivateKey, *protocol.PrivateKey) {
	t.Helper()
	ctl, err := protocol.ParsePrivateKey(bytes.Repeat([]byte{0x11}, 32))
	if err != nil {
		t.Fatal(err)
	}
	target, err := protocol.ParsePrivateKey(bytes.Repeat([]byte{0x22}, 32))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Issue(ctl, IssueOptions{RelayURL: "wss://relay.example:8787", ControllerName: "laptop", TargetName: "api-1",
		Now: func() time.Time { return time.Unix(1_800_000_000, 0) }, Rand: bytes.NewReader(bytes.Repeat([]byte{0x33}, 48))})
	if err != nil {
		t.Fatal(err)
	}
	return tok, ctl, target
}

// FuzzParse: any text either fails with ErrMalformed or ErrTampered, or is
// a token whose encoding is the input itself (one text per token).
func FuzzParse(f *testing.F) {
	tok, _, _ := fixedToken(f)
	good := tok.Encode()
	for _, s := range []string{good, " " + good + "\n", good[:len(good)/2], Prefix, "amesh-bt2.AAAA", "", Prefix + "!!!"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTampered) {
				t.Fatalf("error %v is neither ErrMalformed nor ErrTampered", err)
			}
			return
		}
		if got.Encode() != strings.TrimSpace(s) {
			t.Fatalf("Parse(%q) re-encodes to %q", s, got.Encode())
		}
	})
}

// FuzzParseRaw fuzzes the structure under the signature: decoded bytes
// either fail with ErrMalformed or are exactly the body Issue would write.
func FuzzParseRaw(f *testing.F) {
	tok, _, _ := fixedToken(f)
	raw, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok.Encode(), Prefix))
	f.Add(raw)
	f.Add(raw[:fixedLen])
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseRaw(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if out := append(got.marshalBody(), got.sig[:]...); !bytes.Equal(out, b) {
			t.Fatalf("parseRaw(%x) re-encodes to %x", b, out)
		}
		if err := got.Check(got.issued); err != nil {
			t.Fatalf("a parsed token is expired at its issue time: %v", err)
		}
	})
}

// FuzzOpenDelivery: a delivery the controller cannot open, or whose
// contents are wrong, is ErrTampered; one it accepts names a key that
// signed this token. With sealed false the input is sealed first with the
// token's key, so that the fuzzer reaches the identity parser and the
// signature check, which it could never reach by forging the seal.
func FuzzOpenDelivery(f *testing.F) {
	tok, _, target := fixedToken(f)
	sealed, err := sealDelivery(tok, target, "api-1")
	if err != nil {
		f.Fatal(err)
	}
	_, _, sealKey := tok.keys()
	plain, err := newGCM(sealKey).Open(nil, sealed[1:1+nonceLen], sealed[1+nonceLen:], func() []byte {
		_, addr, _ := tok.keys()
		return aad(tok, addr[:])
	}())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed, true)
	f.Add(plain, false)
	f.Add(plain[:40], false)
	f.Add([]byte{1}, true)
	f.Fuzz(func(t *testing.T, in []byte, isSealed bool) {
		if !isSealed {
			if len(in) > maxSealed {
				return
			}
			_, addr, key := tok.keys()
			nonce := make([]byte, nonceLen)
			in = newGCM(key).Seal(append([]byte{deliveryVersion}, nonce...), nonce, in, aad(tok, addr[:]))
		}
		got, err := openDelivery(tok, in)
		if err != nil {
			if !errors.Is(err, ErrTampered) {
				t.Fatalf("error %v does not wrap ErrTampered", err)
			}
			return
		}
		if got.PublicKey.Equal(tok.controller) || got.Token != tok || got.Name != "api-1" {
			t.Fatalf("accepted %+v", got)
		}
	})
}
