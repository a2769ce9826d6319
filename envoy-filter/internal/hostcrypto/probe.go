package hostcrypto

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/amesh-go/amesh/wasm/protocol"
)

// The probe uses the P-256 / SHA-256 test vector of RFC 6979, appendix
// A.2.5 (message "sample"), with s replaced by n - s so that it is low-S
// like every amesh signature. A host that verifies it and rejects the same
// signature over another message does real ECDSA; anything else (no such
// function, an error, a host that says yes to everything) is not trusted.
const (
	probeKey     = "0360FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"
	probeSig     = "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716" + "0834E36AD29A83BF2BC9385E491D6099C8FDF9D1ED67AA7EA5F51F93782857A9"
	probeMessage = "sample"
	probeWrong   = "sample!"
)

// ProbeVector returns the probe's key, raw signature and message, for tests.
func ProbeVector() (key *protocol.PublicKey, sig []byte, message []byte) {
	kb, err := hex.DecodeString(probeKey)
	if err != nil {
		panic(err)
	}
	key, err = protocol.ParsePublicKey(kb)
	if err != nil {
		panic(err)
	}
	sig, err = hex.DecodeString(probeSig)
	if err != nil {
		panic(err)
	}
	return key, sig, []byte(probeMessage)
}

// Probe checks that the host's verify_signature foreign function exists and
// answers correctly: yes for a known-good signature, no for the same
// signature over a different message. It is called once at plugin start.
func Probe(call CallFunc) error {
	key, sig, msg := ProbeVector()
	spki, err := SPKI(key)
	if err != nil {
		return err
	}
	if err := Verify(call, spki, msg, sig); err != nil {
		return fmt.Errorf("known-good signature: %w", err)
	}
	err = Verify(call, spki, []byte(probeWrong), sig)
	switch {
	case err == nil:
		return errors.New("host accepted a signature over the wrong message")
	case !errors.Is(err, ErrInvalid):
		return fmt.Errorf("known-bad signature: %w", err)
	}
	return nil
}
