//go:build !wasm

// The SDK's emulator (proxytest) runs on the native platform only.

package main

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amesh-go/amesh/envoy-filter/internal/config"
	"github.com/amesh-go/amesh/wasm/protocol"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// TestAcceptForwardsVerifiedIdentity: a correctly signed request goes
// upstream with the verified device ID and name, whatever identity headers
// the client sent, and without its spent Authorization header; the same
// request again is a replay.
func TestAcceptForwardsVerifiedIdentity(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := newEnvoy(t, m, mustJSON(t, baseConfig()), withEnvoyCrypto)
		e.mustStart()
		e.setTime(t0)
		spoof := [][2]string{{"x-amesh-device-id", "am_forgedforgedforg"}, {"X-Amesh-Device-Name", "admin"}, {"x-amesh-device-id", "am_second"}}
		body := []byte(`{"order":42,"note":"exact bytes, not re-serialised"}`)
		cases := []struct {
			name string
			req  request
		}{
			{"get", sign(t, signed{Headers: spoof})},
			{"post-v2-chunked", func() request {
				r := sign(t, signed{Version: protocol.Version2, Method: "POST", Target: "/api/orders?b=2&a=1", Body: body, Headers: spoof})
				r.Chunks = 3
				return r
			}()},
			{"post-trailers-no-length", func() request {
				r := sign(t, signed{Method: "PUT", Target: "/api/a/./b/../c", Body: body, Headers: spoof})
				r.Trailers = [][2]string{{"x-checksum", "1"}}
				r.NoContentLength = true
				return r
			}()},
		}
		for _, c := range cases {
			callsBefore := e.foreign.calls
			res := e.do(c.req)
			if !res.Forwarded {
				t.Fatalf("%s: rejected %d %s, want forwarded", c.name, res.Status, res.Body)
			}
			if got := res.header("x-amesh-device-id"); !slices.Equal(got, []string{ctrlKey.Public().DeviceID()}) {
				t.Errorf("%s: upstream x-amesh-device-id %q, want exactly the verified ID", c.name, got)
			}
			if got := res.header("x-amesh-device-name"); !slices.Equal(got, []string{ctrlName}) {
				t.Errorf("%s: upstream x-amesh-device-name %q", c.name, got)
			}
			if got := res.header("authorization"); got != nil {
				t.Errorf("%s: Authorization forwarded upstream: %q", c.name, got)
			}
			if string(res.UpstreamBody) != string(c.req.Body) {
				t.Errorf("%s: upstream body %q, want %q", c.name, res.UpstreamBody, c.req.Body)
			}
			if e.foreign.calls != callsBefore+1 {
				t.Errorf("%s: %d calls to Envoy's verify_signature, want 1", c.name, e.foreign.calls-callsBefore)
			}
			replay := e.do(c.req)
			if st, code := replay.outcome(); st != 401 || code != "unauthorized" {
				t.Errorf("%s: replay answered %d %q, want 401 unauthorized", c.name, st, code)
			}
		}
		if got := e.counter(metricAccepted); got != 3 {
			t.Errorf("%s = %d, want 3", metricAccepted, got)
		}
		if got := e.counter(metricRejectedPrefix + string(protocol.ReasonReplay)); got != 3 {
			t.Errorf("replay counter = %d, want 3", got)
		}
	})
}

// TestIdentityHeaderOptions: custom header names, a device name that is not
// a safe header value, and keep_authorization.
func TestIdentityHeaderOptions(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		cfg := baseConfig()
		cfg["allow_list"] = []map[string]any{{"public_key": ctrlKey.Public().String(), "name": "café\r\nx-admin: 1 50%", "role": "controller"}}
		cfg["identity_headers"] = map[string]any{"device_id": "X-Caller", "device_name": "x-caller-name"}
		cfg["keep_authorization"] = true
		e := newEnvoy(t, m, mustJSON(t, cfg), withEnvoyCrypto)
		e.mustStart()
		e.setTime(t0)
		req := sign(t, signed{Headers: [][2]string{{"x-caller", "spoofed"}, {"x-amesh-device-id", "not ours to strip"}}})
		res := e.do(req)
		if !res.Forwarded {
			t.Fatalf("rejected %d %s", res.Status, res.Body)
		}
		if got := res.header("x-caller"); !slices.Equal(got, []string{ctrlKey.Public().DeviceID()}) {
			t.Errorf("x-caller %q", got)
		}
		if got := res.header("x-caller-name"); !slices.Equal(got, []string{"caf%C3%A9%0D%0Ax-admin: 1 50%25"}) {
			t.Errorf("x-caller-name %q, want the name percent-encoded", got)
		}
		if got := res.header("authorization"); len(got) != 1 {
			t.Errorf("authorization %q, want it kept", got)
		}
		if got := res.header("x-amesh-device-id"); !slices.Equal(got, []string{"not ours to strip"}) {
			t.Errorf("x-amesh-device-id %q: only the configured names are the filter's", got)
		}
	})
}

// TestRejections: each rejection is answered by the filter with the
// protocol's status and JSON body, and nothing goes upstream.
func TestRejections(t *testing.T) {
	other := 0
	nextNonce := func() []byte { other++; return []byte(fmt.Sprintf("nonce-%010d", other)) }
	cases := []struct {
		name   string
		cfg    func(map[string]any)
		req    func(t *testing.T) request
		status int
		code   protocol.Code
		reason protocol.Reason
	}{
		{"missing header", nil, func(t *testing.T) request {
			return request{Method: "GET", Target: "/", Authority: testHost}
		}, 400, protocol.CodeMissingHeader, protocol.ReasonMissingHeader},
		{"malformed header", nil, func(t *testing.T) request {
			return request{Method: "GET", Target: "/", Authority: testHost, Headers: [][2]string{{"authorization", `AuthMesh v="1",id=`}}}
		}, 400, protocol.CodeMalformedHeader, protocol.ReasonMalformedHeader},
		{"two headers", nil, func(t *testing.T) request {
			r := sign(t, signed{Nonce: nextNonce()})
			r.Headers = append(r.Headers, r.Headers[0])
			return r
		}, 400, protocol.CodeMalformedHeader, protocol.ReasonMalformedHeader},
		{"v1 when v2 required", func(c map[string]any) { c["require_v2"] = true }, func(t *testing.T) request {
			return sign(t, signed{Nonce: nextNonce()})
		}, 400, protocol.CodeUnsupportedVersion, protocol.ReasonVersionNotAllowed},
		{"unknown key", nil, func(t *testing.T) request {
			return sign(t, signed{Key: unknownKey, Nonce: nextNonce()})
		}, 401, protocol.CodeUnauthorized, protocol.ReasonUnknownKey},
		{"target role", nil, func(t *testing.T) request {
			return sign(t, signed{Key: targetKey, Nonce: nextNonce()})
		}, 401, protocol.CodeUnauthorized, protocol.ReasonRoleRejected},
		{"stale", nil, func(t *testing.T) request {
			return sign(t, signed{Time: t0.Add(-31 * time.Second), Nonce: nextNonce()})
		}, 401, protocol.CodeUnauthorized, protocol.ReasonTimestampRange},
		{"other audience", nil, func(t *testing.T) request {
			r := sign(t, signed{Version: protocol.Version2, Host: "other.example.test", Nonce: nextNonce()})
			return r
		}, 401, protocol.CodeUnauthorized, protocol.ReasonWrongAudience},
		{"tampered body", nil, func(t *testing.T) request {
			r := sign(t, signed{Method: "POST", Body: []byte(`{"amount":1}`), Nonce: nextNonce()})
			r.Body = []byte(`{"amount":9}`)
			return r
		}, 401, protocol.CodeUnauthorized, protocol.ReasonBadSignature},
		{"tampered target", nil, func(t *testing.T) request {
			r := sign(t, signed{Target: "/api/items?id=1", Nonce: nextNonce()})
			r.Target = "/api/items?id=2"
			return r
		}, 401, protocol.CodeUnauthorized, protocol.ReasonBadSignature},
		{"too large by content-length", func(c map[string]any) { c["max_body_bytes"] = 16 }, func(t *testing.T) request {
			return sign(t, signed{Method: "POST", Body: make([]byte, 17), Nonce: nextNonce()})
		}, 413, protocol.CodePayloadTooLarge, protocol.ReasonPayloadTooLarge},
		{"too large while streaming", func(c map[string]any) { c["max_body_bytes"] = 16 }, func(t *testing.T) request {
			r := sign(t, signed{Method: "POST", Body: make([]byte, 40), Nonce: nextNonce()})
			r.NoContentLength, r.Chunks = true, 4
			return r
		}, 413, protocol.CodePayloadTooLarge, protocol.ReasonPayloadTooLarge},
		{"broken allow list", func(c map[string]any) { c["allow_list_sha256"] = strings.Repeat("ab", 32) }, func(t *testing.T) request {
			return sign(t, signed{Nonce: nextNonce()})
		}, 500, protocol.CodeIntegrityFailure, protocol.ReasonIntegrity},
	}
	eachMode(t, func(t *testing.T, m mode) {
		for _, c := range cases {
			t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
				cfg := baseConfig()
				if c.cfg != nil {
					c.cfg(cfg)
				}
				e := newEnvoy(t, m, mustJSON(t, cfg), withEnvoyCrypto)
				e.mustStart()
				e.setTime(t0)
				res := e.do(c.req(t))
				if res.Forwarded {
					t.Fatal("request forwarded upstream")
				}
				if res.Status != c.status || string(res.Body) != string(c.code.Body()) {
					t.Errorf("answered %d %s, want %d %s", res.Status, res.Body, c.status, c.code.Body())
				}
				if !slices.Contains(res.Headers, [2]string{"content-type", "application/json"}) {
					t.Errorf("response headers %q lack content-type: application/json", res.Headers)
				}
				if challenge := slices.Contains(res.Headers, [2]string{"www-authenticate", "AuthMesh"}); challenge != (c.status == 401) {
					t.Errorf("status %d with headers %q: a 401, and only a 401, names the AuthMesh scheme", c.status, res.Headers)
				}
				if got := e.counter(metricRejectedPrefix + string(c.reason)); got != 1 {
					t.Errorf("counter for reason %s = %d, want 1", c.reason, got)
				}
			})
		}
	})
}

// TestBadConfigurationNeverOpensTraffic: a configuration the filter cannot
// use stops the plugin with a log line naming the problem, and a request
// that reaches the filter anyway is refused.
func TestBadConfigurationNeverOpensTraffic(t *testing.T) {
	cases := []struct {
		name string
		cfg  string
		want string
	}{
		{"missing", "", "plugin configuration is empty"},
		{"not json", "allow_list: []", "not valid JSON"},
		{"typo", `{"allow_list": [], "max_body": 5}`, `unknown field "max_body"`},
		{"bad key", `{"allow_list": [{"public_key": "AAAA", "role": "controller"}]}`, "allow_list[0]: public_key"},
		{"bad authority", `{"allow_list": [], "authorities": ["https://api.example.test/"]}`, "authorities[0]"},
		{"host crypto required", `{"allow_list": [], "crypto": "host"}`, "verify_signature foreign function does not work"},
	}
	eachMode(t, func(t *testing.T, m mode) {
		for _, c := range cases {
			t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
				var cfg []byte
				if c.cfg != "" {
					cfg = []byte(c.cfg)
				}
				e := newEnvoy(t, m, cfg, withLyingHost)
				if e.StartPlugin() {
					t.Fatal("plugin started")
				}
				logs := strings.Join(e.logs(), "\n")
				if !strings.Contains(logs, "proxy_critical_log: amesh: plugin configuration rejected") || !strings.Contains(logs, c.want) {
					t.Errorf("log lacks the reason %q:\n%s", c.want, logs)
				}
				e.setTime(t0)
				res := e.do(sign(t, signed{}))
				if st, code := res.outcome(); st != 503 || code != string(protocol.CodeUnavailable) {
					t.Errorf("request after a failed start: %d %q, want 503 service_unavailable", st, code)
				}
			})
		}
	})
}

// TestHostCryptoSelection: the filter uses Envoy's verify_signature only when
// the probe at start shows it works, and decides correctly either way.
func TestHostCryptoSelection(t *testing.T) {
	forged := func(t *testing.T) request {
		// A well-formed low-S signature by the controller, over another
		// request: only real ECDSA notices.
		r := sign(t, signed{Target: "/api/other", Nonce: []byte("forged-nonce-01")})
		r.Target = "/api/items"
		return r
	}
	eachMode(t, func(t *testing.T, m mode) {
		t.Run("envoy", func(t *testing.T) {
			e := newEnvoy(t, m, mustJSON(t, baseConfig()), withEnvoyCrypto)
			e.mustStart()
			e.setTime(t0)
			if v, _ := e.GetGaugeMetric(metricHostCrypto); v != 1 {
				t.Errorf("%s = %d, want 1", metricHostCrypto, v)
			}
			if !e.do(sign(t, signed{})).Forwarded {
				t.Error("valid request rejected")
			}
			if e.do(forged(t)).Status != 401 {
				t.Error("forged signature not rejected")
			}
			if e.foreign.calls != 4 { // two probe calls, two requests
				t.Errorf("%d foreign calls, want 4", e.foreign.calls)
			}
		})
		t.Run("guest", func(t *testing.T) {
			cfg := baseConfig()
			cfg["crypto"] = "guest"
			e := newEnvoy(t, m, mustJSON(t, cfg), withoutForeign)
			e.mustStart()
			e.setTime(t0)
			if v, _ := e.GetGaugeMetric(metricHostCrypto); v != 0 {
				t.Errorf("%s = %d, want 0", metricHostCrypto, v)
			}
			if !e.do(sign(t, signed{})).Forwarded {
				t.Error("valid request rejected")
			}
			if e.do(forged(t)).Status != 401 {
				t.Error("forged signature not rejected")
			}
		})
		t.Run("lying host", func(t *testing.T) {
			e := newEnvoy(t, m, mustJSON(t, baseConfig()), withLyingHost)
			e.mustStart()
			e.setTime(t0)
			if v, _ := e.GetGaugeMetric(metricHostCrypto); v != 0 {
				t.Errorf("%s = %d, want 0 for a host that accepts everything", metricHostCrypto, v)
			}
			if !strings.Contains(strings.Join(e.logs(), "\n"), "foreign function is not usable") {
				t.Errorf("no warning about the host crypto:\n%s", strings.Join(e.logs(), "\n"))
			}
			if e.do(forged(t)).Status != 401 {
				t.Error("forged signature accepted")
			}
			if e.foreign.calls != 2 {
				t.Errorf("%d foreign calls, want only the 2 of the probe", e.foreign.calls)
			}
		})
		t.Run("host breaks later", func(t *testing.T) {
			e := newEnvoy(t, m, mustJSON(t, baseConfig()), withEnvoyCrypto)
			e.mustStart()
			e.setTime(t0)
			e.foreign.fn = func([]byte) []byte { return []byte{0xff, 0xff} } // unparseable
			if !e.do(sign(t, signed{})).Forwarded {
				t.Error("valid request rejected when host crypto broke")
			}
			if e.do(forged(t)).Status != 401 {
				t.Error("forged signature accepted when host crypto broke")
			}
			if got := e.counter(metricHostCryptoErrors); got != 2 {
				t.Errorf("%s = %d, want 2", metricHostCryptoErrors, got)
			}
		})
	})
}

// TestTimeComesFromRequestTime: the filter judges ts against Envoy's
// request.time, not the module's clock, and fails closed without it.
func TestTimeComesFromRequestTime(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := newEnvoy(t, m, mustJSON(t, baseConfig()), withEnvoyCrypto)
		e.mustStart()
		res := e.do(sign(t, signed{}))
		if st, code := res.outcome(); st != 503 || code != string(protocol.CodeUnavailable) {
			t.Errorf("without request.time: %d %q, want 503", st, code)
		}
		old := t0.Add(-10 * 365 * 24 * time.Hour) // far from any real clock
		e.setTime(old.Add(29 * time.Second))
		if !e.do(sign(t, signed{Time: old})).Forwarded {
			t.Error("request within the window of request.time rejected")
		}
		e.setTime(old.Add(31 * time.Second))
		if res := e.do(sign(t, signed{Time: old, Nonce: []byte("another-nonce-1")})); res.Status != 401 {
			t.Errorf("request 31 s before request.time: %d, want 401", res.Status)
		}
		if got := e.counter(metricRejectedPrefix + string(reasonRequestTime)); got != 1 {
			t.Errorf("request-time counter = %d, want 1", got)
		}
	})
}

// TestManyContextsReplayOneNonce: streams that carry the same signed request
// and are all past their headers before any body arrives (as on several
// connections at once) get exactly one acceptance.
func TestManyContextsReplayOneNonce(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := newEnvoy(t, m, mustJSON(t, baseConfig()), withEnvoyCrypto)
		e.mustStart()
		e.setTime(t0)
		req := sign(t, signed{Method: "POST", Body: []byte(`{"transfer":100}`)})
		const n = 24
		ids := make([]uint32, n)
		for i := range ids {
			ids[i] = e.begin(req)
			if e.GetSentLocalResponse(ids[i]) != nil {
				t.Fatalf("stream %d answered before its body", i)
			}
		}
		accepted, replays := 0, 0
		for _, id := range ids {
			res := e.drive(id, req, 1, -1)
			e.CompleteHttpContext(id)
			switch st, code := res.outcome(); {
			case st == 200:
				accepted++
			case st == 401 && code == "unauthorized":
				replays++
			default:
				t.Errorf("stream answered %d %q", st, code)
			}
		}
		if accepted != 1 || replays != n-1 {
			t.Fatalf("%d accepted, %d replays; want 1 and %d", accepted, replays, n-1)
		}
	})
}

// TestNonceCacheFullFailsClosedThenReclaims: with no free slot the filter
// answers 503 rather than accept; once entries expire their slots serve new
// nonces.
func TestNonceCacheFullFailsClosedThenReclaims(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		cfg := baseConfig()
		cfg["nonce_cache"] = map[string]any{"buckets": 1, "slots": 4}
		e := newEnvoy(t, m, mustJSON(t, cfg), withEnvoyCrypto)
		e.mustStart()
		e.setTime(t0)
		for i := range 4 {
			if res := e.do(sign(t, signed{Nonce: []byte(fmt.Sprintf("first-nonce-%d", i))})); !res.Forwarded {
				t.Fatalf("request %d rejected: %d %s", i, res.Status, res.Body)
			}
		}
		res := e.do(sign(t, signed{Nonce: []byte("fifth-nonce")}))
		if st, code := res.outcome(); st != 503 || code != string(protocol.CodeUnavailable) {
			t.Fatalf("full cache answered %d %q, want 503 service_unavailable", st, code)
		}
		if res := e.do(sign(t, signed{Nonce: []byte("first-nonce-0")})); res.Status != 401 {
			t.Errorf("replay into a full cache answered %d, want 401", res.Status)
		}
		// Default TTL 60 s: at t0+61 s the four entries are gone.
		later := t0.Add(61 * time.Second)
		e.setTime(later)
		for i := range 4 {
			if res := e.do(sign(t, signed{Time: later, Nonce: []byte(fmt.Sprintf("later-nonce-%d", i))})); !res.Forwarded {
				t.Fatalf("after expiry, request %d rejected: %d %s", i, res.Status, res.Body)
			}
		}
		if got := e.counter(metricRejectedPrefix + string(protocol.ReasonNonceStore)); got != 1 {
			t.Errorf("nonce store counter = %d, want 1", got)
		}
	})
}

// TestNoncesSurviveReconfiguration: a new plugin configuration (Envoy keeps
// shared data per vm_id across reloads) still knows the nonces used before.
func TestNoncesSurviveReconfiguration(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := newEnvoy(t, m, mustJSON(t, baseConfig()), withEnvoyCrypto)
		e.mustStart()
		e.setTime(t0)
		req := sign(t, signed{})
		if !e.do(req).Forwarded {
			t.Fatal("first request rejected")
		}
		e.mustStart() // the same configuration delivered again
		if res := e.do(req); res.Status != 401 {
			t.Fatalf("replay after reconfiguration answered %d, want 401", res.Status)
		}
	})
}

// TestIntegrityPinAccepted: a list that matches its pin works normally.
func TestIntegrityPinAccepted(t *testing.T) {
	c, err := config.Parse(mustJSON(t, baseConfig()))
	if err != nil {
		t.Fatal(err)
	}
	eachMode(t, func(t *testing.T, m mode) {
		cfg := baseConfig()
		cfg["allow_list_sha256"] = c.AllowListSHA256
		e := newEnvoy(t, m, mustJSON(t, cfg), withEnvoyCrypto)
		e.mustStart()
		e.setTime(t0)
		if !strings.Contains(strings.Join(e.logs(), "\n"), c.AllowListSHA256) {
			t.Error("start log does not show the allow list digest")
		}
		if res := e.do(sign(t, signed{})); !res.Forwarded {
			t.Fatalf("rejected %d %s", res.Status, res.Body)
		}
		if _, err := e.GetHistogramMetric(metricDecisionMicros); err != nil {
			t.Errorf("histogram %s: %v", metricDecisionMicros, err)
		}
	})
}

// TestModesRunWhatTheySay guards the two-mode setup itself: wasm mode must
// run the compiled module, not the test binary's copy of the filter.
func TestModesRunWhatTheySay(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := newEnvoy(t, m, mustJSON(t, baseConfig()), withEnvoyCrypto)
		e.mustStart()
		want := "wasip1/wasm"
		if m == native {
			want = runtime.GOOS + "/" + runtime.GOARCH
		}
		if logs := strings.Join(e.logs(), "\n"); !strings.Contains(logs, want+"):") {
			t.Fatalf("start log does not name %s:\n%s", want, logs)
		}
	})
}

// TestUpgradeDecidedAtHeaders: a WebSocket handshake is decided on its
// headers (its signature covers the empty body) and the tunnelled data that
// follows flows; a rejected one lets nothing through.
func TestUpgradeDecidedAtHeaders(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := newEnvoy(t, m, mustJSON(t, baseConfig()), withEnvoyCrypto)
		e.mustStart()
		e.setTime(t0)
		hdrs := func(r request) [][2]string {
			return append([][2]string{{":method", r.Method}, {":path", r.Target}, {":authority", r.Authority}, {":scheme", "https"},
				{"connection", "Upgrade"}, {"upgrade", "websocket"}}, r.Headers...)
		}
		ok := sign(t, signed{Target: "/ws"})
		id := e.InitializeHttpContext()
		if a := e.CallOnRequestHeaders(id, hdrs(ok), false); a != types.ActionContinue || e.GetSentLocalResponse(id) != nil {
			t.Fatalf("signed upgrade: action %v, response %v", a, e.GetSentLocalResponse(id))
		}
		if a := e.CallOnRequestBody(id, []byte("websocket frame"), false); a != types.ActionContinue {
			t.Errorf("tunnel data after acceptance: action %v", a)
		}
		e.CompleteHttpContext(id)

		bad := sign(t, signed{Key: unknownKey, Target: "/ws"})
		id = e.InitializeHttpContext()
		e.CallOnRequestHeaders(id, hdrs(bad), false)
		if lr := e.GetSentLocalResponse(id); lr == nil || lr.StatusCode != 401 {
			t.Fatalf("unsigned upgrade not answered 401: %v", lr)
		}
		if a := e.CallOnRequestBody(id, []byte("websocket frame"), false); a != types.ActionPause {
			t.Errorf("tunnel data after rejection: action %v", a)
		}
		e.CompleteHttpContext(id)
	})
}

// TestUpgradeHeaderCannotSmuggleABody: a request signed with an empty body
// does not pass with a body just because an Upgrade header was added.
func TestUpgradeHeaderCannotSmuggleABody(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := newEnvoy(t, m, mustJSON(t, baseConfig()), withEnvoyCrypto)
		e.mustStart()
		e.setTime(t0)
		r := sign(t, signed{Method: "POST", Target: "/api/transfer"}) // empty body signed
		r.Headers = append(r.Headers, [2]string{"upgrade", "websocket"}, [2]string{"connection", "upgrade"})
		r.Body = []byte(`{"to":"mallory","amount":1000000}`)
		if res := e.do(r); res.Forwarded || res.Status != 401 {
			t.Fatalf("smuggled body: forwarded=%v status=%d", res.Forwarded, res.Status)
		}
	})
}
