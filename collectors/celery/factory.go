package celery

import (
	"context"
	"fmt"
	"time"

	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/sources"
)

// Factory is the source factory of type celery. Celery's events are not
// kept anywhere twice could read them again later, so it has no
// collectors for `twice audit`: only `twice watch` reads it.
type Factory struct{}

var _ sources.Factory = Factory{}

// Type returns "celery".
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
		return nil, fmt.Errorf("source %s: no celery settings", src.Name)
	}
	return NewStream(src.Name, *c, StreamOptions{Logf: opts.Logf, Now: opts.Now})
}

// StreamOptions tune NewStream.
type StreamOptions struct {
	// Logf logs diagnostics; nil for none.
	Logf func(format string, args ...any)
	// Now is the wall clock; nil for time.Now.
	Now func() time.Time
}

// transportStream is what the RabbitMQ and the Redis readers implement.
type transportStream interface {
	Start(ctx context.Context, resume map[string]sources.Position) error
	Poll(ctx context.Context, wait time.Duration) ([]sources.Record, error)
	Commit(ctx context.Context, done map[string]sources.Position) error
	Shutdown(ctx context.Context) error
	Health() error
}

// Stream lets `twice watch` follow a celery source (sources.Stream). It
// has one lane, "celeryev"; see the package comment for positions,
// acknowledgement and what a restart loses on each transport.
type Stream struct {
	name  string
	redis bool
	t     transportStream
	mp    *mapper
}

var (
	_ sources.Stream         = (*Stream)(nil)
	_ sources.HealthReporter = (*Stream)(nil)
)

// NewStream returns the stream of the celery source named name. It does
// no I/O.
func NewStream(name string, cfg Config, opts StreamOptions) (*Stream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMapping(&cfg)
	if err != nil {
		return nil, err
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	mp := newMapper(name, m)
	s := &Stream{name: name, mp: mp}
	switch cfg.transport() {
	case transportAMQP:
		s.t = newAMQPStream(name, cfg, mp, opts.Logf)
	case transportRedis:
		s.redis = true
		s.t = newRedisStream(name, cfg, mp, opts.Logf, opts.Now)
	default:
		return nil, fmt.Errorf("broker %q: neither amqp:// nor redis://", redactURL(cfg.Broker))
	}
	return s, nil
}

// Name returns the source's name.
func (s *Stream) Name() string { return s.name }

// Replayable is false: on RabbitMQ, events not yet acknowledged come
// again by themselves (Commit acknowledges), but none can be read again
// from a position; on Redis, pub/sub keeps nothing.
func (s *Stream) Replayable() bool { return false }

// Start connects (and subscribes, or starts consuming twice's queue).
func (s *Stream) Start(ctx context.Context, resume map[string]sources.Position) error {
	return s.t.Start(ctx, resume)
}

// Lanes returns the one lane, "celeryev".
func (s *Stream) Lanes() []string { return []string{Lane} }

// Poll returns the events that arrived within wait.
func (s *Stream) Poll(ctx context.Context, wait time.Duration) ([]sources.Record, error) {
	return s.t.Poll(ctx, wait)
}

// Commit acknowledges on RabbitMQ the messages the checkpoint covers; on
// Redis it does nothing.
func (s *Stream) Commit(ctx context.Context, done map[string]sources.Position) error {
	return s.t.Commit(ctx, done)
}

// Shutdown closes the connection. Safe to call twice, and without Start.
func (s *Stream) Shutdown(ctx context.Context) error { return s.t.Shutdown(ctx) }

// Health returns nil while the broker answers.
func (s *Stream) Health() error { return s.t.Health() }

// Stats returns the counts of what the stream read.
func (s *Stream) Stats() Stats { return s.mp.Snapshot() }
