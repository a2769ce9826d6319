package wasmhost

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/amesh-go/amesh/internal/vectors"
	"github.com/amesh-go/amesh/wasm/abi"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// mode is a way of running amesh.wasm.
type mode int

const (
	hostCrypto    mode = iota // verify export, ECDSA through the host import
	pureWasm                  // verify export, ECDSA inside the guest
	prepareCommit             // prepare, the host verifies and records, commit
)

func (m mode) String() string { return [...]string{"host-crypto", "pure-wasm", "prepare-commit"}[m] }

// wasmConfig converts a native configuration for the guest.
func wasmConfig(cfg protocol.Config, integrityFailure bool, m mode) *Config {
	list, _ := cfg.AllowList.(protocol.StaticAllowList) // nil when broken
	return &Config{AllowList: list, IntegrityFailure: integrityFailure, Nonces: cfg.Nonces,
		ClockSkew: cfg.ClockSkew, NonceTTL: cfg.NonceTTL, MaxBodyBytes: cfg.MaxBodyBytes,
		Authorities: cfg.Authorities, RequireV2: cfg.RequireV2, PureWasm: m == pureWasm}
}

// decideWasm runs one request through inst in mode m.
func decideWasm(ctx context.Context, inst *Instance, m mode, nonces protocol.NonceStore, req *protocol.Request, now time.Time) protocol.Result {
	if m != prepareCommit {
		return inst.Verify(ctx, req, now)
	}
	p, res := inst.Prepare(ctx, req, now)
	if p == nil {
		return res
	}
	// The host's side of the asynchronous flow, as a JavaScript host
	// does it with WebCrypto: verify the message with the raw point,
	// then record the nonce itself.
	sig := int32(abi.SigInvalid)
	if d := sha256.Sum256(p.Message); string(d[:]) == string(p.Digest) {
		if k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), p.KeyPoint); err == nil {
			if pk, err := protocol.NewPublicKey(k); err == nil && pk.Verify(p.Message, p.Signature) == nil {
				sig = abi.SigValid
			}
		}
	}
	nonce := int32(abi.CommitNonceByGuest)
	if sig == abi.SigValid {
		fresh, err := nonces.Record(ctx, string(p.NonceKey), now, time.Hour)
		switch {
		case err != nil:
			nonce = abi.CommitNonceFailure
		case fresh:
			nonce = abi.CommitNonceFresh
		default:
			nonce = abi.CommitNonceReplay
		}
	}
	return inst.Commit(ctx, p, sig, nonce)
}

// sameDecision reports how two results differ, if they do.
func sameDecision(native, wasm protocol.Result) error {
	id := func(d *protocol.Device) string {
		if d == nil {
			return ""
		}
		return d.ID
	}
	if native.Code != wasm.Code || native.Reason != wasm.Reason || native.Version != wasm.Version || id(native.Device) != id(wasm.Device) {
		return fmt.Errorf("native %s/%s v%s %s (%v), wasm %s/%s v%s %s (%v)",
			native.Code, native.Reason, native.Version, id(native.Device), native.Err,
			wasm.Code, wasm.Reason, wasm.Version, id(wasm.Device), wasm.Err)
	}
	return nil
}

// TestVectors runs every request vector (testdata/vectors and
// AMESH_EXTRA_VECTORS) through amesh.wasm in each mode, and holds each
// decision to the vector and to the native core's code, reason, version
// and device.
func TestVectors(t *testing.T) {
	files := vectors.Load(t)
	ctx := context.Background()
	for _, m := range []mode{hostCrypto, pureWasm, prepareCommit} {
		t.Run(m.String(), func(t *testing.T) {
			inst := instance(t)
			vectors.RunRequests(t, files, func(_ *vectors.File, rv *vectors.Request) (vectors.Outcome, error) {
				req, err := vectors.NativeRequest(rv)
				if err != nil {
					return vectors.Outcome{}, err
				}
				now := time.Unix(rv.Now, 0)
				cfg, err := vectors.NativeConfig(rv)
				if err != nil {
					return vectors.Outcome{}, err
				}
				v, err := protocol.NewVerifier(cfg)
				if err != nil {
					return vectors.Outcome{}, err
				}
				native := v.Verify(ctx, req, now)
				// A fresh store with the same replayed nonces for the guest.
				wcfg, err := vectors.NativeConfig(rv)
				if err != nil {
					return vectors.Outcome{}, err
				}
				if err := inst.Configure(ctx, wasmConfig(wcfg, rv.IntegrityFailure, m)); err != nil {
					return vectors.Outcome{}, err
				}
				res := decideWasm(ctx, inst, m, wcfg.Nonces, req, now)
				if err := sameDecision(native, res); err != nil {
					return vectors.Outcome{}, err
				}
				return vectors.Outcome{Status: res.Status(), Error: string(res.Code), Detail: fmt.Sprintf("%s: %v", res.Reason, res.Err)}, nil
			})
		})
	}
}
