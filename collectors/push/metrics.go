package push

import (
	"github.com/prometheus/client_golang/prometheus"
)

// The metrics of a Stream, labelled with its source (a constant label,
// so the streams of several push sources register side by side).
func (s *Stream) descs() (requests, pending, durable *prometheus.Desc) {
	cl := prometheus.Labels{"source": s.name}
	requests = prometheus.NewDesc("twice_push_requests_total",
		"Requests (HTTP requests, SMTP messages) a push source answered, by result: accepted, unauthorized, invalid, full, closed, too_large, abandoned…",
		[]string{"result"}, cl)
	pending = prometheus.NewDesc("twice_push_pending_records",
		"Records a push source received and that are not durable yet (their clients wait).", nil, cl)
	durable = prometheus.NewDesc("twice_push_durable_records_total",
		"Records a push source received that are durable (their clients were answered).", nil, cl)
	return
}

// Describe implements prometheus.Collector.
func (s *Stream) Describe(ch chan<- *prometheus.Desc) {
	r, p, d := s.descs()
	ch <- r
	ch <- p
	ch <- d
}

// Collect implements prometheus.Collector.
func (s *Stream) Collect(ch chan<- prometheus.Metric) {
	r, p, d := s.descs()
	st := s.Stats()
	for result, n := range st.Requests {
		ch <- prometheus.MustNewConstMetric(r, prometheus.CounterValue, float64(n), result)
	}
	ch <- prometheus.MustNewConstMetric(p, prometheus.GaugeValue, float64(st.Pending))
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(st.Durable))
}

var _ prometheus.Collector = (*Stream)(nil)
