package wasmhost

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amesh-go/amesh/internal/vectors"
	"github.com/amesh-go/amesh/wasm/abi"
	"github.com/amesh-go/amesh/wasm/protocol"
)

// sectionsNow is the clock of the requests these tests send; only the
// header and device-ID answers matter, which come before the time window.
var sectionsNow = time.Unix(1743160800, 0)

// TestVectorSections runs the sections other than request through
// amesh.wasm, each through the export a host would use: verify through
// amesh_verify_signature (host crypto and pure wasm), canonical through
// amesh_sign_prepare with the URL as a client was given it, header and
// device_id through amesh_verify. The native core is held to the same
// vectors by wasm/protocol's TestVectors.
func TestVectorSections(t *testing.T) {
	ctx := context.Background()
	inst := instance(t)
	counts := map[string]int{}
	for _, f := range vectors.Load(t) {
		for _, m := range []mode{hostCrypto, pureWasm} {
			if err := inst.Configure(ctx, &Config{PureWasm: m == pureWasm}); err != nil {
				t.Fatal(err)
			}
			for i, v := range f.Verify {
				counts["verify"]++
				res := inst.VerifySignature(ctx, &abi.SignatureCheck{Key: []byte(v.PublicKey), Message: []byte(v.Message), SigText: v.Sig})
				if res.Code == protocol.CodeUnavailable || res.OK() != v.Valid {
					t.Errorf("%s (%s): valid=%v, want %v (%s: %v)", vectors.Name(f, "verify", v.ID, i), m, res.OK(), v.Valid, res.Reason, res.Err)
				}
			}
		}
		for i, v := range f.Canonical {
			counts["canonical"]++
			if got, err := canonicalInGuest(ctx, inst, v); err != nil || got != v.Expected {
				t.Errorf("%s: canonical string\n got %q (%v)\nwant %q", vectors.Name(f, "canonical", v.ID, i), got, err, v.Expected)
			}
		}
		for i, v := range f.Header {
			counts["header"]++
			if got := headerInGuest(ctx, t, inst, v.Value); got != v.Result {
				t.Errorf("%s: %q is %s, want %s", vectors.Name(f, "header", v.ID, i), v.Value, got, v.Result)
			}
		}
		for i, v := range f.DeviceID {
			counts["device_id"]++
			if got, err := deviceIDInGuest(ctx, inst, v.PublicKey); err != nil || got != v.DeviceID {
				t.Errorf("%s: device ID %q (%v), want %q", vectors.Name(f, "device_id", v.ID, i), got, err, v.DeviceID)
			}
		}
	}
	for _, s := range []string{"verify", "canonical", "header", "device_id"} {
		if counts[s] == 0 {
			t.Errorf("no %s vectors ran", s)
		}
	}
}

// canonKey is the 33-byte key sign_prepare is given for canonical strings:
// the generator point (private key 1), whose signature is never made.
var canonKey = append([]byte{3}, "\x6b\x17\xd1\xf2\xe1\x2c\x42\x47\xf8\xbc\xe6\xe5\x63\xa4\x40\xf2\x77\x03\x7d\x81\x2d\xeb\x33\xa0\xf4\xa1\x39\x45\xd8\x98\xc2\x96"...)

// canonicalInGuest builds the canonical string of a vector as a client
// signing it would: amesh_sign_prepare with the target as given, the
// vector's ts and nonce, and any key (nothing is signed).
func canonicalInGuest(ctx context.Context, inst *Instance, v *vectors.Canonical) (string, error) {
	body, err := vectors.DecodeStd(v.BodyB64)
	if err != nil {
		return "", err
	}
	nonce, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(v.Nonce, "="))
	if err != nil {
		return "", err
	}
	ts, err := strconv.ParseInt(v.TS, 10, 64)
	if err != nil {
		return "", err
	}
	sp := abi.SignParams{Version: v.Version, Method: v.Method, URL: v.Target, Authority: v.Authority, Body: body,
		Key: canonKey, Nonce: nonce, NowMs: ts * 1000, HasNow: true}
	if sp.URL == "" {
		sp.Target = "" // an empty target: let the guest refuse it, as the native signer does
	}
	res, err := inst.call(ctx, inst.fn.signPrepare, sp.Encode)
	if err != nil {
		return "", err
	}
	if err := inst.Release(ctx, uint32(res.Handle)); err != nil {
		return "", err
	}
	if res.TS != v.TS || res.Nonce != v.Nonce {
		return "", errors.New("ts " + res.TS + " and nonce " + res.Nonce + " are not the vector's")
	}
	return string(res.Message), nil
}

// headerInGuest sends value as the only Authorization header (none when
// empty) to a guest with an empty allow list: a 400 names the header's
// error, and a 401 (unknown key) means it parsed.
func headerInGuest(ctx context.Context, t *testing.T, inst *Instance, value string) string {
	if err := inst.Configure(ctx, &Config{}); err != nil {
		t.Fatal(err)
	}
	req := &protocol.Request{Method: "GET", Target: "/", Host: "api.example.test"}
	if value != "" {
		req.Authorization = []string{value}
	}
	res := inst.Verify(ctx, req, sectionsNow)
	switch {
	case res.Code.Status() == 400:
		return string(res.Code)
	case res.Code == protocol.CodeMissingHeader:
		return string(res.Code)
	case res.Reason == protocol.ReasonUnknownKey:
		return "ok"
	}
	return "unexpected " + string(res.Code) + "/" + string(res.Reason)
}

// deviceIDInGuest lets the guest derive a device ID: an allow-list entry
// without one, and a request under that key whose (well-formed) signature
// fails, whose result names the device.
func deviceIDInGuest(ctx context.Context, inst *Instance, pub string) (string, error) {
	k, err := protocol.DecodePublicKey(pub)
	if err != nil {
		return "", err
	}
	list := protocol.StaticAllowList{k.Array(): &protocol.Device{Key: k, Role: protocol.RoleController}}
	if err := inst.Configure(ctx, &Config{AllowList: list}); err != nil {
		return "", err
	}
	sig := make([]byte, protocol.SignatureSize)
	sig[31], sig[63] = 1, 1 // r = s = 1: in range, low, and wrong
	auth := protocol.FormatHeader(protocol.Version1, pub, strconv.FormatInt(sectionsNow.Unix(), 10), "AAAAAAAAAAAAAAAAAAAAAA",
		base64.RawURLEncoding.EncodeToString(sig))
	r := abi.Request{Method: "GET", Target: "/", Host: "api.example.test", Authorization: []string{auth}, NowMs: sectionsNow.UnixMilli(), HasNow: true}
	res, err := inst.call(ctx, inst.fn.verify, r.Encode)
	if err != nil {
		return "", err
	}
	if res.Reason != string(protocol.ReasonBadSignature) {
		return "", errors.New("expected bad_signature, got " + res.Reason + ": " + res.Detail)
	}
	return res.DeviceID, nil
}
