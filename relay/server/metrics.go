package server

import (
	"fmt"
	"io"
	"runtime"
	"sync/atomic"

	"github.com/amesh-go/amesh/relay/wire"
)

// metrics are the relay's counters. They are written by hand in the
// Prometheus text exposition format (version 0.0.4) to keep the relay free of
// a metrics dependency.
type metrics struct {
	connections      atomic.Int64 // gauge
	connectionsTotal atomic.Uint64
	roomsWaiting     atomic.Int64 // gauge: targets waiting for a controller
	sessions         atomic.Int64 // gauge: joined rooms, counted on the controller's connection
	roomsCreated     atomic.Uint64
	joinsOK          atomic.Uint64
	joinsFailed      atomic.Uint64
	messages         atomic.Uint64 // data frames forwarded
	bytes            atomic.Uint64 // data bytes forwarded
	rejections       [256]atomic.Uint64
	delivered        [256]atomic.Uint64 // provisioning deliveries by outcome (ReasonNone: stored)
	mailSent         atomic.Uint64      // deliveries sent to collectors
	collectors       atomic.Int64       // gauge: controllers waiting for deliveries
}

func (m *metrics) reject(r wire.Reason) { m.rejections[r].Add(1) }

func (m *metrics) deliveries(r wire.Reason) { m.delivered[r].Add(1) }

func (m *metrics) write(w io.Writer, version string, draining bool) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	family := func(name, typ, help string) {
		p("# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	family("amesh_relay_info", "gauge", "Relay version; the value is always 1.")
	p("amesh_relay_info{version=%q} 1\n", version)
	family("amesh_relay_draining", "gauge", "1 while the relay shuts down gracefully.")
	d := 0
	if draining {
		d = 1
	}
	p("amesh_relay_draining %d\n", d)
	family("amesh_relay_connections", "gauge", "Open WebSocket connections.")
	p("amesh_relay_connections %d\n", m.connections.Load())
	family("amesh_relay_connections_total", "counter", "WebSocket connections accepted.")
	p("amesh_relay_connections_total %d\n", m.connectionsTotal.Load())
	family("amesh_relay_rooms_waiting", "gauge", "Rooms whose target waits for a controller.")
	p("amesh_relay_rooms_waiting %d\n", m.roomsWaiting.Load())
	family("amesh_relay_sessions", "gauge", "Live sessions: rooms with both peers.")
	p("amesh_relay_sessions %d\n", m.sessions.Load())
	family("amesh_relay_rooms_created_total", "counter", "Rooms created.")
	p("amesh_relay_rooms_created_total %d\n", m.roomsCreated.Load())
	family("amesh_relay_joins_total", "counter", "Join attempts by result.")
	p("amesh_relay_joins_total{result=\"ok\"} %d\n", m.joinsOK.Load())
	p("amesh_relay_joins_total{result=\"failed\"} %d\n", m.joinsFailed.Load())
	family("amesh_relay_messages_total", "counter", "Data frames forwarded between peers.")
	p("amesh_relay_messages_total %d\n", m.messages.Load())
	family("amesh_relay_message_bytes_total", "counter", "Data bytes forwarded between peers.")
	p("amesh_relay_message_bytes_total %d\n", m.bytes.Load())
	family("amesh_relay_deliveries_total", "counter", "Provisioning deliveries by result.")
	for _, r := range []wire.Reason{wire.ReasonNone, wire.ReasonTokenUsed, wire.ReasonTokenExpired, wire.ReasonMailboxFull} {
		name := r.String()
		if r == wire.ReasonNone {
			name = "stored"
		}
		p("amesh_relay_deliveries_total{result=%q} %d\n", name, m.delivered[r].Load())
	}
	family("amesh_relay_deliveries_collected_total", "counter", "Provisioning deliveries sent to collecting controllers.")
	p("amesh_relay_deliveries_collected_total %d\n", m.mailSent.Load())
	family("amesh_relay_collectors", "gauge", "Controllers waiting for provisioning deliveries.")
	p("amesh_relay_collectors %d\n", m.collectors.Load())
	family("amesh_relay_rejections_total", "counter", "Requests refused and sessions ended by the relay, by reason.")
	for _, r := range wire.Reasons() {
		if r == wire.ReasonNone || r == wire.ReasonPeerLeft {
			continue
		}
		p("amesh_relay_rejections_total{reason=%q} %d\n", r.String(), m.rejections[r].Load())
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	family("amesh_relay_go_heap_inuse_bytes", "gauge", "Go heap in use.")
	p("amesh_relay_go_heap_inuse_bytes %d\n", ms.HeapInuse)
	family("amesh_relay_go_stack_inuse_bytes", "gauge", "Go stacks in use.")
	p("amesh_relay_go_stack_inuse_bytes %d\n", ms.StackInuse)
	family("amesh_relay_go_goroutines", "gauge", "Goroutines.")
	p("amesh_relay_go_goroutines %d\n", runtime.NumGoroutine())
}
