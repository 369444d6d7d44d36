package otlp

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twicehq/twice/collectors/push"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/sources"
)

// Factory is the source factory of type otlp. Traces exported to twice
// are kept nowhere twice could read them again, so it has no collectors
// for `twice audit`: only `twice watch` reads it.
type Factory struct{}

var _ sources.Factory = Factory{}

// Type returns "otlp".
func (Factory) Type() string { return Type }

// DecodeConfig reads the source's keys into a *Config, recording each
// problem at its key's file:line.
func (Factory) DecodeConfig(m *config.SourceMapping) config.SourceSettings {
	return decode(m)
}

// NewStream returns the Stream of src.
func (Factory) NewStream(src config.Source, opts sources.StreamOptions) (sources.Stream, error) {
	c, ok := src.Settings.(*Config)
	if !ok || c == nil {
		return nil, fmt.Errorf("source %s: no otlp settings", src.Name)
	}
	return NewStream(src.Name, *c, opts.Logf)
}

// Stream is an otlp source in `twice watch`: a push.Stream served by the
// OTLP receivers.
type Stream struct {
	*push.Stream
	rcv *receiver
}

// NewStream returns the stream of the otlp source named name. It does no
// I/O: the servers listen at Start.
func NewStream(name string, cfg Config, logf func(string, ...any)) (*Stream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	rcv := &receiver{cfg: cfg, log: logf, spans: map[string]int64{}}
	rcv.mp = &mapper{source: name, cfg: &rcv.cfg}
	s := &Stream{rcv: rcv}
	s.Stream = push.NewStream(name, rcv, push.Options{Lane: "traces", MaxPending: cfg.MaxPending, Logf: logf})
	return s, nil
}

// Addr returns the OTLP/HTTP address once started.
func (s *Stream) Addr() string { return s.rcv.httpAddr() }

// GRPCAddr returns the OTLP/gRPC address once started, "" when none.
func (s *Stream) GRPCAddr() string { return s.rcv.grpcAddr() }

// Spans returns the spans received, by outcome (Outcomes).
func (s *Stream) Spans() map[string]int64 { return s.rcv.spanCounts() }

func (s *Stream) spansDesc() *prometheus.Desc {
	return prometheus.NewDesc("twice_otlp_spans_total",
		"Spans an otlp source received, by outcome: effect, job (a consumer span made job events), failed_effect (an effect span with status ERROR: no effect), ignored (neither), malformed (an effect or job span without what it needs; recorded as malformed). A batch an exporter sends again counts again.",
		[]string{"outcome"}, prometheus.Labels{"source": s.Name()})
}

// Describe implements prometheus.Collector: push's metrics and this
// source's own.
func (s *Stream) Describe(ch chan<- *prometheus.Desc) {
	s.Stream.Describe(ch)
	ch <- s.spansDesc()
}

// Collect implements prometheus.Collector.
func (s *Stream) Collect(ch chan<- prometheus.Metric) {
	s.Stream.Collect(ch)
	d := s.spansDesc()
	for outcome, n := range s.rcv.spanCounts() {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n), outcome)
	}
}

var _ prometheus.Collector = (*Stream)(nil)
