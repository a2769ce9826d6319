package main

import (
	"github.com/amesh-go/amesh/wasm/protocol"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
)

// Reasons the filter adds to the core's, for rejections that happen around
// the decision rather than inside it.
const (
	reasonRequestTime protocol.Reason = "request_time_unavailable"
	reasonHost        protocol.Reason = "host_error"
	reasonNotReady    protocol.Reason = "plugin_not_ready"
)

// allReasons lists every rejection reason that gets its own counter.
var allReasons = []protocol.Reason{
	protocol.ReasonMissingHeader, protocol.ReasonMalformedHeader, protocol.ReasonUnsupportedVersion,
	protocol.ReasonVersionNotAllowed, protocol.ReasonUnknownKey, protocol.ReasonRoleRejected,
	protocol.ReasonTimestampRange, protocol.ReasonWrongAudience, protocol.ReasonBadTarget,
	protocol.ReasonPayloadTooLarge, protocol.ReasonBadSignature, protocol.ReasonReplay,
	protocol.ReasonNonceStore, protocol.ReasonIntegrity,
	reasonRequestTime, reasonHost, reasonNotReady,
}

// Metric names. Envoy exposes them with the "wasmcustom." prefix.
const (
	metricAccepted         = "amesh.accepted"
	metricRejected         = "amesh.rejected"
	metricRejectedPrefix   = "amesh.rejected."
	metricRejectedOther    = "amesh.rejected.other"
	metricDecisionMicros   = "amesh.decision_us"
	metricHostCrypto       = "amesh.host_crypto"
	metricHostCryptoErrors = "amesh.host_crypto_errors"
)

// reasonMetricNames holds the per-reason counter names for the life of the
// module. Hosts may keep the name they were given by reference (the SDK's
// emulator does, pointing into the module's memory), so a name must never
// be a temporary string that the garbage collector could reuse.
var reasonMetricNames = func() map[protocol.Reason]string {
	m := make(map[protocol.Reason]string, len(allReasons))
	for _, r := range allReasons {
		m[r] = metricRejectedPrefix + string(r)
	}
	return m
}()

// metrics are the filter's counters, defined at plugin start.
type metrics struct {
	accepted         proxywasm.MetricCounter
	rejected         proxywasm.MetricCounter
	byReason         map[protocol.Reason]proxywasm.MetricCounter
	other            proxywasm.MetricCounter
	decision         proxywasm.MetricHistogram
	hostCrypto       proxywasm.MetricGauge
	hostCryptoErrors proxywasm.MetricCounter
}

func defineMetrics() *metrics {
	m := &metrics{
		accepted:         proxywasm.DefineCounterMetric(metricAccepted),
		rejected:         proxywasm.DefineCounterMetric(metricRejected),
		byReason:         make(map[protocol.Reason]proxywasm.MetricCounter, len(allReasons)),
		other:            proxywasm.DefineCounterMetric(metricRejectedOther),
		decision:         proxywasm.DefineHistogramMetric(metricDecisionMicros),
		hostCrypto:       proxywasm.DefineGaugeMetric(metricHostCrypto),
		hostCryptoErrors: proxywasm.DefineCounterMetric(metricHostCryptoErrors),
	}
	for _, r := range allReasons {
		m.byReason[r] = proxywasm.DefineCounterMetric(reasonMetricNames[r])
	}
	return m
}

func (m *metrics) reject(r protocol.Reason) {
	m.rejected.Increment(1)
	if c, ok := m.byReason[r]; ok {
		c.Increment(1)
	} else {
		m.other.Increment(1)
	}
}
