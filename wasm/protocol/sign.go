package protocol

import (
	"encoding/base64"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/amesh-go/amesh/wasm/internal/sha256"
)

// SignParams describes a request to sign.
type SignParams struct {
	// Version is Version1 or Version2; empty means Version1.
	Version string
	Method  string
	// Target is the request-target as it will be sent on the wire
	// (origin-form). For a URL as a user typed it, pass RequestTarget(url).
	Target string
	// Authority is the host[:port] the request is sent to (version 2),
	// normalised with Authority.
	Authority string
	Body      []byte
	// Time is the signing time; its Unix seconds become ts.
	Time time.Time
	// Nonce, if set, is used instead of 16 fresh random bytes.
	Nonce []byte
	// Rand supplies the nonce; nil means crypto/rand (in wasip1 builds,
	// WASI's random_get, which is what crypto/rand reads there).
	Rand io.Reader
}

// Signed is the result of SignRequest.
type Signed struct {
	Authorization string // the header value
	Canonical     []byte // the string that was signed
}

// SignRequest builds the canonical string for p, signs it with s and returns
// the Authorization header value. The signature is normalised to low-S and
// checked against s's public key before it is returned, so that a faulty
// hardware signer fails here and not at every server.
func SignRequest(s Signer, p SignParams) (*Signed, error) {
	if p.Version == "" {
		p.Version = Version1
	}
	pub, err := ParsePublicKey(s.PublicKey())
	if err != nil {
		return nil, wrap("amesh: signer", err)
	}
	target, err := CanonicalTarget(p.Target)
	if err != nil {
		return nil, err
	}
	nonce := p.Nonce
	if nonce == nil {
		nonce = make([]byte, 16)
		if p.Rand != nil {
			_, err = io.ReadFull(p.Rand, nonce)
		} else {
			err = readRandom(nonce)
		}
		if err != nil {
			return nil, wrap("amesh: nonce", err)
		}
	}
	if len(nonce) < MinNonceBytes || len(nonce) > MaxNonceBytes {
		return nil, errors.New("amesh: nonce of " + strconv.Itoa(len(nonce)) + " bytes, want " +
			strconv.Itoa(MinNonceBytes) + " to " + strconv.Itoa(MaxNonceBytes))
	}
	if p.Time.IsZero() {
		return nil, errors.New("amesh: signing time not set")
	}
	// ts is 1 to 18 decimal digits on the wire: a time before 1970 or
	// after the year 31 billion cannot be signed.
	sec := p.Time.Unix()
	if sec < 0 || sec > maxTimestamp {
		return nil, errors.New("amesh: signing time " + strconv.FormatInt(sec, 10) + " is outside 0 to " + strconv.FormatInt(maxTimestamp, 10) + " Unix seconds")
	}
	ts := strconv.FormatInt(sec, 10)
	nonceStr := base64.RawURLEncoding.EncodeToString(nonce)
	m := Message{Version: p.Version, Method: p.Method, Authority: p.Authority, Target: target,
		TS: ts, Nonce: nonceStr, BodyHash: BodyHash(p.Body)}
	msg, err := m.Bytes()
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(msg)
	sig, err := s.SignDigest(digest[:])
	if err != nil {
		return nil, wrap("amesh: sign request", err)
	}
	if len(sig) != SignatureSize {
		return nil, errors.New("amesh: signer returned " + strconv.Itoa(len(sig)) + " bytes, want " + strconv.Itoa(SignatureSize))
	}
	sig = append([]byte(nil), sig...)
	if err := NormalizeLowS(sig); err != nil {
		return nil, err
	}
	if err := pub.VerifyDigest(digest[:], sig); err != nil {
		return nil, wrap("amesh: signer produced an invalid signature", err)
	}
	h := FormatHeader(p.Version, pub.String(), ts, nonceStr, base64.RawURLEncoding.EncodeToString(sig))
	return &Signed{Authorization: h, Canonical: msg}, nil
}
