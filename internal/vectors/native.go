package vectors

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/amesh-go/amesh/wasm/protocol"
)

// brokenList is an allow list whose integrity check fails.
type brokenList struct{}

func (brokenList) Lookup([protocol.PublicKeySize]byte) (*protocol.Device, error) {
	return nil, fmt.Errorf("vector allow list: %w", protocol.ErrIntegrity)
}

// NativeConfig builds the native verifier configuration of a request
// vector, with a fresh memory nonce store holding the vector's replayed
// nonces.
func NativeConfig(rv *Request) (protocol.Config, error) {
	var cfg protocol.Config
	devs := make([]*protocol.Device, 0, len(rv.AllowList))
	for _, e := range rv.AllowList {
		k, err := protocol.DecodePublicKey(e.PublicKey)
		if err != nil {
			return cfg, fmt.Errorf("allow list key %q: %w", e.PublicKey, err)
		}
		devs = append(devs, &protocol.Device{ID: e.DeviceID, Name: e.Name, Role: e.Role, Key: k})
	}
	list, err := protocol.NewStaticAllowList(devs...)
	if err != nil {
		return cfg, err
	}
	cfg.AllowList = list
	if rv.IntegrityFailure {
		cfg.AllowList = brokenList{}
	}
	store := protocol.NewMemoryNonceStore(0)
	cfg.Nonces = store
	if rv.Verifier != nil {
		c := rv.Verifier
		cfg.Authorities = c.Authorities
		cfg.RequireV2 = c.RequireV2
		cfg.ClockSkew = time.Duration(c.SkewSeconds) * time.Second
		cfg.NonceTTL = time.Duration(c.NonceTTLSeconds) * time.Second
		cfg.MaxBodyBytes = c.MaxBodyBytes
	}
	if len(rv.ReplayedNonces) > 0 {
		key, err := RequestingKey(rv)
		if err != nil {
			return cfg, err
		}
		for _, n := range rv.ReplayedNonces {
			nb, err := base64.RawURLEncoding.DecodeString(n)
			if err != nil {
				return cfg, fmt.Errorf("replayed nonce %q: %w", n, err)
			}
			if _, err := store.Record(context.Background(), string(key)+string(nb), time.Unix(rv.Now, 0), time.Hour); err != nil {
				return cfg, err
			}
		}
	}
	return cfg, nil
}

// RequestingKey returns the compressed public key named by the vector's
// Authorization header.
func RequestingKey(rv *Request) ([]byte, error) {
	vals := rv.AuthorizationValues()
	if len(vals) == 0 {
		return nil, fmt.Errorf("replayed nonces but no Authorization header")
	}
	h, err := protocol.ParseHeader(vals[0])
	if err != nil {
		return nil, fmt.Errorf("replayed nonces but the header does not parse: %w", err)
	}
	return h.Key[:], nil
}

// NativeRequest builds the protocol request of a vector.
func NativeRequest(rv *Request) (*protocol.Request, error) {
	body, err := rv.Body()
	if err != nil {
		return nil, fmt.Errorf("body_b64: %w", err)
	}
	return &protocol.Request{
		Method:        rv.Method,
		Target:        rv.Target,
		Host:          rv.HostHeader(),
		Scheme:        rv.SchemeOrDefault(),
		Authorization: rv.AuthorizationValues(),
		Body:          body,
	}, nil
}

// NativeDecide runs a request vector through the native core.
func NativeDecide(_ *File, rv *Request) (Outcome, error) {
	cfg, err := NativeConfig(rv)
	if err != nil {
		return Outcome{}, err
	}
	v, err := protocol.NewVerifier(cfg)
	if err != nil {
		return Outcome{}, err
	}
	req, err := NativeRequest(rv)
	if err != nil {
		return Outcome{}, err
	}
	res := v.Verify(context.Background(), req, time.Unix(rv.Now, 0))
	return Outcome{Status: res.Status(), Error: string(res.Code), Detail: fmt.Sprintf("%s: %v", res.Reason, res.Err)}, nil
}
