package ingest

import (
	"fmt"

	"github.com/twicehq/twice/collectors/push"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/sources"
)

// Factory is the source factory of type ingest. Events POSTed to twice
// are kept nowhere twice could read them again, so it has no collectors
// for `twice audit`: only `twice watch` reads it.
type Factory struct{}

var _ sources.Factory = Factory{}

// Type returns "ingest".
func (Factory) Type() string { return Type }

// DecodeConfig reads the keys of spec §3.1 into a *Config, recording each
// problem at its key's file:line.
func (Factory) DecodeConfig(m *config.SourceMapping) config.SourceSettings {
	return decode(m)
}

// NewStream returns the Stream of src.
func (Factory) NewStream(src config.Source, opts sources.StreamOptions) (sources.Stream, error) {
	c, ok := src.Settings.(*Config)
	if !ok || c == nil {
		return nil, fmt.Errorf("source %s: no ingest settings", src.Name)
	}
	return NewStream(src.Name, *c, opts.Logf)
}

// Stream is an ingest source in `twice watch`: a push.Stream served by
// the ingest HTTP handler.
type Stream struct {
	*push.Stream
	rcv *receiver
}

// NewStream returns the stream of the ingest source named name. It does
// no I/O: the server listens at Start.
func NewStream(name string, cfg Config, logf func(string, ...any)) (*Stream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rcv := &receiver{cfg: cfg}
	s := &Stream{rcv: rcv}
	pending := cfg.MaxPending
	if pending == 0 {
		pending = DefaultMaxPending
	}
	s.Stream = push.NewStream(name, rcv, push.Options{Lane: "events", MaxPending: pending, Logf: logf})
	return s, nil
}

// Addr returns the address the server listens on once started.
func (s *Stream) Addr() string { return s.rcv.addr() }
