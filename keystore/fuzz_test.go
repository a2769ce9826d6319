package keystore

import (
	"testing"

	"github.com/amesh-go/amesh/wasm/protocol"
)

// The key-file parsers face files that anyone with write access to the
// state directory may have altered: whatever the bytes, they must return an
// error or a value, never panic, and never accept something they cannot
// re-encode.

func FuzzParseKeyFile(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"version":1,"kdf":"argon2id","argon2":{"memoryKiB":1024,"time":1,"threads":1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parseKeyFile(data)
		if err != nil {
			return
		}
		if p.header.Argon2.validate() != nil || len(p.nonce) != 24 || len(p.salt) < 16 {
			t.Fatalf("accepted an invalid file: %+v", p.header)
		}
	})
}

func FuzzParseTPMKeyFile(f *testing.F) {
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := parseTPMKeyFile(data)
		if err != nil {
			return
		}
		if got, err := tpmPublicKey(k.keyPublic); err != nil || !got.Equal(k.pub) {
			t.Fatalf("accepted a key file whose blob does not hold its public key")
		}
	})
}

func FuzzParseWrappedFile(f *testing.F) {
	f.Add([]byte(`{"version":1,"alias":"a"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		w, nonce, ct, err := parseWrappedFile(data)
		if err != nil {
			return
		}
		if w.Alias == "" || len(w.Alias) > 128 || len(nonce) != 24 || len(ct) == 0 {
			t.Fatalf("accepted an invalid file: %+v", w)
		}
	})
}

func FuzzParseEnclaveFile(f *testing.F) {
	k, _ := protocol.GeneratePrivateKey(nil)
	f.Add([]byte(`{"version":1,"alias":"a","publicKey":"` + k.Public().String() + `","tag":"amesh.a"}`))
	f.Add([]byte(`{"version":1,"alias":"a"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, pub, err := parseEnclaveFile(data)
		if err != nil {
			return
		}
		if e.Version != 1 || e.Alias == "" || len(e.Alias) > maxAliasBytes || e.Tag != enclaveTag(e.Alias) || pub.String() != e.PublicKey {
			t.Fatalf("accepted an invalid file: %+v", e)
		}
	})
}
