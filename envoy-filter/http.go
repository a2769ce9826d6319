package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/amesh-go/amesh/wasm/protocol"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// httpContext is one request stream. Envoy calls it from one worker thread
// only, so it needs no locking.
type httpContext struct {
	types.DefaultHttpContext
	p *pluginContext

	check    *protocol.Check
	now      time.Time
	bodySize int
	// done is set once the request was accepted or answered; rejected
	// tells which.
	done     bool
	rejected bool
	spent    time.Duration
}

// responseHeaders go with every rejection. The body is the protocol's JSON.
var responseHeaders = [][2]string{
	{"content-type", "application/json"},
	{"cache-control", "no-store"},
}

// unauthorizedHeaders go with a 401, which names its scheme (RFC 9110), as
// the Go middleware's do.
var unauthorizedHeaders = append(append([][2]string(nil), responseHeaders...), [2]string{"www-authenticate", protocol.Scheme})

// OnHttpRequestHeaders runs the part of the decision that needs no body. A
// request without a body is decided here; otherwise the filter holds the
// headers until the whole body has arrived, since the signature covers it.
func (h *httpContext) OnHttpRequestHeaders(_ int, endOfStream bool) types.Action {
	start := time.Now()
	defer func() { h.spent += time.Since(start) }()
	if !h.p.ready {
		return h.fail(reasonNotReady, errors.New("the plugin did not start"))
	}
	headers, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		return h.fail(reasonHost, fmt.Errorf("read request headers: %w", err))
	}
	// Whatever the outcome, identity headers from the client never reach
	// the upstream: only the filter sets them.
	if err := h.stripIdentity(headers); err != nil {
		return h.fail(reasonHost, err)
	}
	req := protocol.Request{Scheme: "https"}
	contentLength := int64(-1)
	upgrade, chunked := false, false
	for _, kv := range headers {
		switch strings.ToLower(kv[0]) {
		case "upgrade":
			upgrade = true
		case "transfer-encoding":
			chunked = true
		case ":method":
			req.Method = kv[1]
		case ":path":
			req.Target = kv[1]
		case ":authority":
			req.Host = kv[1]
		case ":scheme":
			req.Scheme = kv[1]
		case "authorization":
			req.Authorization = append(req.Authorization, kv[1])
		case "content-length":
			if n, err := strconv.ParseInt(strings.TrimSpace(kv[1]), 10, 64); err == nil {
				contentLength = n
			}
		}
	}
	now, err := requestTime()
	if err != nil {
		return h.fail(reasonRequestTime, err)
	}
	h.now = now
	c, res := h.p.verifier.Begin(&req, now)
	if c == nil {
		return h.reject(res)
	}
	h.check = c
	tunnel := (upgrade || req.Method == "CONNECT") && contentLength <= 0 && !chunked
	if endOfStream || tunnel {
		// An upgrade (WebSocket) or CONNECT request that declares no body
		// has none of its own: what follows the headers is the tunnelled
		// stream, which the client did not sign and which may never end.
		// Its signature covers the empty body. A request that declares a
		// body is verified with it, upgrade or not, so an added Upgrade
		// header cannot smuggle an unsigned body past the filter.
		return h.finish(nil)
	}
	if limit := h.p.verifier.MaxBodyBytes(); contentLength > limit {
		// The body can only be too large; answer before buffering it.
		return h.tooLarge(contentLength, limit)
	}
	return types.ActionPause
}

// OnHttpRequestBody buffers the body (Envoy keeps it while the filter
// returns Pause) and decides at its end.
func (h *httpContext) OnHttpRequestBody(bodySize int, endOfStream bool) types.Action {
	if h.done {
		return h.after()
	}
	if h.check == nil {
		return types.ActionPause
	}
	start := time.Now()
	defer func() { h.spent += time.Since(start) }()
	if limit := h.p.verifier.MaxBodyBytes(); int64(bodySize) > limit {
		return h.tooLarge(int64(bodySize), limit)
	}
	h.bodySize = bodySize
	if !endOfStream {
		return types.ActionPause
	}
	return h.finishBuffered()
}

// OnHttpRequestTrailers decides requests whose body ends with trailers.
func (h *httpContext) OnHttpRequestTrailers(int) types.Action {
	if h.done {
		return h.after()
	}
	if h.check == nil {
		return types.ActionPause
	}
	start := time.Now()
	defer func() { h.spent += time.Since(start) }()
	return h.finishBuffered()
}

// after answers callbacks that come once the request is decided: the rest of
// an accepted stream (a tunnel's data) flows, nothing of a rejected one does.
func (h *httpContext) after() types.Action {
	if h.rejected {
		return types.ActionPause
	}
	return types.ActionContinue
}

// OnHttpStreamDone drops the references the context holds: the host may keep
// the context object a while after the stream.
func (h *httpContext) OnHttpStreamDone() {
	h.check = nil
}

func (h *httpContext) finishBuffered() types.Action {
	var body []byte
	if h.bodySize > 0 {
		b, err := proxywasm.GetHttpRequestBody(0, h.bodySize)
		if err != nil {
			return h.fail(reasonHost, fmt.Errorf("read request body: %w", err))
		}
		body = b
	}
	return h.finish(body)
}

func (h *httpContext) finish(body []byte) types.Action {
	c := h.check
	if res := c.AddBody(body); !res.OK() {
		return h.reject(res)
	}
	res := c.Finish(context.Background(), h.now, h.p.verifySignature(c))
	if !res.OK() {
		return h.reject(res)
	}
	return h.accept(res.Device)
}

func (h *httpContext) accept(d *protocol.Device) types.Action {
	cfg := h.p.cfg
	if err := proxywasm.ReplaceHttpRequestHeader(cfg.DeviceIDHeader, d.ID); err != nil {
		return h.fail(reasonHost, fmt.Errorf("set %s: %w", cfg.DeviceIDHeader, err))
	}
	if err := proxywasm.ReplaceHttpRequestHeader(cfg.DeviceNameHeader, headerValue(d.Name)); err != nil {
		return h.fail(reasonHost, fmt.Errorf("set %s: %w", cfg.DeviceNameHeader, err))
	}
	if !cfg.KeepAuthorization {
		// The header is spent here; forwarding it would let anything
		// upstream replay it at another replica within the time window.
		if err := removeAll("authorization", h.countHeader("authorization")); err != nil {
			return h.fail(reasonHost, err)
		}
	}
	h.done = true
	h.check = nil
	h.p.metrics.accepted.Increment(1)
	h.recordTime()
	return types.ActionContinue
}

// countHeader returns how often name occurs in the current request headers.
func (h *httpContext) countHeader(name string) int {
	headers, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		return 1
	}
	return countName(headers, name)
}

func countName(headers [][2]string, name string) int {
	n := 0
	for _, kv := range headers {
		if strings.EqualFold(kv[0], name) {
			n++
		}
	}
	return n
}

// stripIdentity removes the identity headers a client sent.
func (h *httpContext) stripIdentity(headers [][2]string) error {
	for _, name := range [...]string{h.p.cfg.DeviceIDHeader, h.p.cfg.DeviceNameHeader} {
		if err := removeAll(name, countName(headers, name)); err != nil {
			return err
		}
	}
	return nil
}

// removeAll removes header name, which occurs n times. Envoy removes every
// occurrence at the first call; hosts that remove one at a time (the SDK's
// emulator) get one call per occurrence.
func removeAll(name string, n int) error {
	for range n {
		if err := proxywasm.RemoveHttpRequestHeader(name); err != nil {
			return fmt.Errorf("remove %s: %w", name, err)
		}
	}
	return nil
}

func (h *httpContext) tooLarge(size, limit int64) types.Action {
	c := h.check
	return h.reject(protocol.Result{
		Code: protocol.CodePayloadTooLarge, Reason: protocol.ReasonPayloadTooLarge,
		Device: c.Device(), Version: c.Header().V,
		Err: fmt.Errorf("body of at least %d bytes, limit %d", size, limit),
	})
}

// fail rejects for a reason outside the core's decision: the filter cannot
// decide, so it answers 503 and lets nothing through.
func (h *httpContext) fail(reason protocol.Reason, err error) types.Action {
	return h.reject(protocol.Result{Code: protocol.CodeUnavailable, Reason: reason, Err: err})
}

func (h *httpContext) reject(res protocol.Result) types.Action {
	h.done, h.rejected = true, true
	h.check = nil
	status := res.Code.Status()
	device := "-"
	if res.Device != nil {
		device = res.Device.ID
	}
	if status >= 500 {
		proxywasm.LogWarnf("amesh: rejected %d %s: reason=%s device=%s: %v", status, res.Code, res.Reason, device, res.Err)
	} else {
		proxywasm.LogDebugf("amesh: rejected %d %s: reason=%s device=%s: %v", status, res.Code, res.Reason, device, res.Err)
	}
	if m := h.p.metrics; m != nil {
		m.reject(res.Reason)
		h.recordTime()
	}
	headers := responseHeaders
	if status == 401 {
		headers = unauthorizedHeaders
	}
	if err := proxywasm.SendHttpResponse(uint32(status), headers, res.Code.Body(), -1); err != nil {
		proxywasm.LogErrorf("amesh: send the %d response: %v", status, err)
	}
	return types.ActionPause
}

func (h *httpContext) recordTime() {
	h.p.metrics.decision.Record(uint64(h.spent / time.Microsecond))
}

// headerValue makes a device name safe as a header value: bytes outside
// printable ASCII, and "%", are percent-encoded, so that a name can never
// inject a header or be refused by the codec.
func headerValue(s string) string {
	safe := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '%' {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}
