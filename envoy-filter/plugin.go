package main

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/amesh-go/amesh/envoy-filter/internal/config"
	"github.com/amesh-go/amesh/envoy-filter/internal/hostcrypto"
	"github.com/amesh-go/amesh/envoy-filter/internal/noncecache"
	"github.com/amesh-go/amesh/wasm/protocol"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// vmContext is the filter's VM: one per Envoy worker thread.
type vmContext struct {
	types.DefaultVMContext
}

// NewPluginContext is called by the host for each filter configuration.
func (*vmContext) NewPluginContext(uint32) types.PluginContext {
	return &pluginContext{}
}

// pluginContext holds one filter configuration in one worker.
type pluginContext struct {
	types.DefaultPluginContext

	// ready is set only when start succeeded; an HTTP context of a plugin
	// that is not ready rejects every request.
	ready      bool
	cfg        *config.Config
	verifier   *protocol.Verifier
	nonces     *noncecache.Cache
	hostCrypto bool
	// spki holds each device's key as DER SubjectPublicKeyInfo, built once
	// for the host's verify_signature.
	spki    map[[protocol.PublicKeySize]byte][]byte
	metrics *metrics
}

// OnPluginStart reads and checks the configuration. Any problem stops the
// plugin: Envoy then refuses the configuration (or, with a fail-closed
// failure policy, the requests), so traffic never passes unverified.
func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	p.ready = false
	if err := p.start(); err != nil {
		proxywasm.LogCriticalf("amesh: plugin configuration rejected, the filter will not start: %v", err)
		return types.OnPluginStartStatusFailed
	}
	p.ready = true
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) start() error {
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
		return fmt.Errorf("read plugin configuration: %w", err)
	}
	cfg, err := config.Parse(data)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		proxywasm.LogWarnf("amesh: %s", w)
	}
	if cfg.IntegrityErr != nil {
		// The protocol answers every request 500 in this state; say so
		// loudly once instead of at every request.
		proxywasm.LogCriticalf("amesh: %v; every request will be answered 500 allow_list_integrity_failure", cfg.IntegrityErr)
	}
	nonces, err := noncecache.New(sharedData{}, cfg.NonceCache)
	if err != nil {
		return err
	}
	if err := nonces.Init(); err != nil {
		return fmt.Errorf("create the nonce cache in shared data: %w", err)
	}
	v, err := protocol.NewVerifier(cfg.Protocol(nonces))
	if err != nil {
		return fmt.Errorf("verifier: %w", err)
	}
	spki := make(map[[protocol.PublicKeySize]byte][]byte, len(cfg.Devices))
	for _, d := range cfg.Devices {
		der, err := hostcrypto.SPKI(d.Key)
		if err != nil {
			return fmt.Errorf("device %s: %w", d.ID, err)
		}
		spki[d.Key.Array()] = der
	}
	host := false
	switch cfg.Crypto {
	case config.CryptoHost, config.CryptoAuto:
		err := hostcrypto.Probe(callForeign)
		switch {
		case err == nil:
			host = true
		case cfg.Crypto == config.CryptoHost:
			return fmt.Errorf("crypto is %q but Envoy's %s foreign function does not work: %w", config.CryptoHost, hostcrypto.FunctionName, err)
		default:
			proxywasm.LogWarnf("amesh: Envoy's %s foreign function is not usable (%v); verifying signatures inside the module, about 1 ms each", hostcrypto.FunctionName, err)
		}
	}
	m := defineMetrics()
	want := int64(0)
	if host {
		want = 1
	}
	m.hostCrypto.Add(want - m.hostCrypto.Value())

	p.cfg, p.verifier, p.nonces, p.spki, p.hostCrypto, p.metrics = cfg, v, nonces, spki, host, m
	eff := v.Config()
	l := nonces.Layout()
	proxywasm.LogInfof("amesh: filter ready (%s, %s/%s): %d devices (allow list sha256 %s), skew %v, nonce TTL %v, body limit %d bytes, v2 required %t, authorities %q, host crypto %t, nonce cache %d×%d (%d nonces, %d KiB shared data; per Envoy process, not shared between replicas)",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, len(cfg.Devices), cfg.AllowListSHA256, eff.ClockSkew, eff.NonceTTL, eff.MaxBodyBytes, eff.RequireV2, eff.Authorities, host,
		l.Buckets, l.Slots, l.Capacity(), l.Bytes()/1024)
	return nil
}

// NewHttpContext is called for every request stream.
func (p *pluginContext) NewHttpContext(uint32) types.HttpContext {
	return &httpContext{p: p}
}

// verifySignature checks the signature of a check that passed AddBody, with
// Envoy's crypto when it is in use. A host that fails to answer does not
// decide anything: the guest verifies instead.
func (p *pluginContext) verifySignature(c *protocol.Check) error {
	if p.hostCrypto {
		if der, ok := p.spki[c.Device().Key.Array()]; ok {
			err := hostcrypto.Verify(callForeign, der, c.Message(), c.Signature())
			if err == nil || errors.Is(err, hostcrypto.ErrInvalid) {
				return err
			}
			p.metrics.hostCryptoErrors.Increment(1)
			proxywasm.LogWarnf("amesh: host crypto failed (%v); verifying in the module", err)
		}
	}
	return c.VerifySignature()
}
