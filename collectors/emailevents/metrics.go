package emailevents

import "github.com/prometheus/client_golang/prometheus"

// eventsDesc is the metric of what a source made of the provider events
// it verified, labelled with its source (a constant label, so several
// sources register side by side).
func (s *Stream) eventsDesc() *prometheus.Desc {
	return prometheus.NewDesc("twice_email_provider_events_total",
		"Provider events read from the verified requests of an email provider source, by outcome: effect (mapped to an effect), no_key (of those, keyed by their message id: the message had no key argument), ignored (types not recorded), malformed. A request the provider sends again counts again.",
		[]string{"outcome"}, prometheus.Labels{"source": s.Name()})
}

// Describe implements prometheus.Collector: push's metrics and this
// source's own.
func (s *Stream) Describe(ch chan<- *prometheus.Desc) {
	s.Stream.Describe(ch)
	ch <- s.eventsDesc()
}

// Collect implements prometheus.Collector.
func (s *Stream) Collect(ch chan<- prometheus.Metric) {
	s.Stream.Collect(ch)
	d := s.eventsDesc()
	st := s.rcv.Stats()
	for outcome, n := range map[string]int64{"effect": st.Events, "no_key": st.NoKey, "ignored": st.Ignored, "malformed": st.Malformed} {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n), outcome)
	}
}

var _ prometheus.Collector = (*Stream)(nil)
