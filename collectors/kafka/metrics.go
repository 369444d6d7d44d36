package kafka

import (
	"github.com/prometheus/client_golang/prometheus"
)

// skippedDesc is twice_skipped_total of one source (a constant label, so
// the streams of several kafka sources register side by side).
func (s *Stream) skippedDesc() *prometheus.Desc {
	return prometheus.NewDesc("twice_skipped_total",
		"Messages a source read that map to no event by design (skip and when of a map; for format debezium tombstones, transaction markers, heartbeats, other tables): counted, not malformed.",
		nil, prometheus.Labels{"source": s.name})
}

// Describe implements prometheus.Collector.
func (s *Stream) Describe(ch chan<- *prometheus.Desc) { ch <- s.skippedDesc() }

// Collect implements prometheus.Collector.
func (s *Stream) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(s.skippedDesc(), prometheus.CounterValue, float64(s.c.Stats().Counts().Skipped))
}

var _ prometheus.Collector = (*Stream)(nil)
