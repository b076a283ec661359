// Package metrics defines the Prometheus metrics a ledgerd node exports at
// /metrics. Each node owns one Metrics on its own registry, so several
// nodes in one process (tests) never share counters.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "ledgerd"

// Metrics is the node's metric set.
type Metrics struct {
	reg *prometheus.Registry

	Height          prometheus.Gauge
	RoundsPerHeight prometheus.Histogram
	BlockInterval   prometheus.Histogram
	TxsCommitted    prometheus.Counter
	BlockTxs        prometheus.Histogram
	MempoolTxs      prometheus.Gauge
	MempoolBytes    prometheus.Gauge
	Peers           prometheus.Gauge
	BlockSyncing    prometheus.Gauge
	BlocksSynced    prometheus.Counter
	StepSeconds     *prometheus.CounterVec // by consensus step
	Equivocations   prometheus.Counter
	RPCRequests     *prometheus.CounterVec // by method and outcome
	RPCSeconds      *prometheus.HistogramVec
}

// New returns a metric set registered on a fresh registry, with the Go
// runtime and process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.Height = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "height",
		Help: "Height of the latest committed block."})
	m.RoundsPerHeight = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "rounds_per_height",
		Help: "Round in which each height was decided, plus one.", Buckets: []float64{1, 2, 3, 4, 6, 10}})
	m.BlockInterval = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "block_interval_seconds",
		Help: "Time between consecutive committed blocks' timestamps.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)})
	m.TxsCommitted = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "txs_committed_total",
		Help: "Transfers committed."})
	m.BlockTxs = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "block_txs",
		Help: "Transfers per committed block.", Buckets: prometheus.ExponentialBuckets(1, 4, 9)})
	m.MempoolTxs = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "mempool_txs",
		Help: "Transactions in the mempool."})
	m.MempoolBytes = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "mempool_bytes",
		Help: "Bytes of transactions in the mempool."})
	m.Peers = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "peers",
		Help: "Connected peers."})
	m.BlockSyncing = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "block_syncing",
		Help: "1 while the node is block syncing, else 0."})
	m.BlocksSynced = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "blocks_synced_total",
		Help: "Blocks applied through block sync."})
	m.StepSeconds = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "consensus_step_seconds_total",
		Help: "Wall time spent in each consensus step."}, []string{"step"})
	m.Equivocations = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "equivocations_total",
		Help: "Equivocations detected by this node."})
	m.RPCRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "rpc_requests_total",
		Help: "JSON-RPC requests by method and outcome (ok or an error code)."}, []string{"method", "outcome"})
	m.RPCSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "rpc_request_seconds",
		Help: "JSON-RPC request latency by method.", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}, []string{"method"})
	for _, c := range []prometheus.Collector{m.Height, m.RoundsPerHeight, m.BlockInterval, m.TxsCommitted, m.BlockTxs,
		m.MempoolTxs, m.MempoolBytes, m.Peers, m.BlockSyncing, m.BlocksSynced, m.StepSeconds, m.Equivocations,
		m.RPCRequests, m.RPCSeconds,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
