package webhook

import (
	"fmt"
	"time"

	"github.com/twicehq/twice/collectors/push"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/sources"
)

// Factory is the source factory of type webhook. Requests proxied are
// kept nowhere twice could read them again, so it has no collectors for
// `twice audit`: only `twice watch` reads it.
type Factory struct{}

var _ sources.Factory = Factory{}

// Type returns "webhook".
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
		return nil, fmt.Errorf("source %s: no webhook settings", src.Name)
	}
	return NewStream(src.Name, *c, opts.Now, opts.Logf)
}

// Stream is a webhook source in `twice watch`: a push.Stream served by
// the recording proxy. Its lane is "deliveries".
type Stream struct {
	*push.Stream
	rcv *receiver
}

// NewStream returns the stream of the webhook source named name; now is
// the clock that stamps deliveries (nil: time.Now). It does no I/O: the
// proxy listens at Start.
func NewStream(name string, cfg Config, now func() time.Time, logf func(string, ...any)) (*Stream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	rcv := &receiver{cfg: cfg, now: now, logf: logf}
	s := &Stream{rcv: rcv}
	s.Stream = push.NewStream(name, rcv, push.Options{Lane: "deliveries", MaxPending: cfg.MaxPending, Logf: logf})
	return s, nil
}

// Addr returns the address the proxy listens on once started.
func (s *Stream) Addr() string { return s.rcv.addr() }
