package pgjobs

import (
	"context"
	"fmt"

	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/sources"
)

// Tap is the source factory of one dialect: river.Factory and
// oban.Factory are it with their Dialect. Its settings are a *Config.
type Tap struct{ D *Dialect }

var _ sources.HistoryFactory = Tap{}

// Type is the dialect's source type.
func (t Tap) Type() string { return t.D.Type }

// DecodeConfig decodes the keys of spec §3.1 for the dialect's type into
// a *Config; every problem is recorded at its key.
func (t Tap) DecodeConfig(m *config.SourceMapping) config.SourceSettings {
	return decode(t.D, m)
}

// settings returns the *Config of a source.
func settings(src config.Source) (Config, error) {
	c, ok := src.Settings.(*Config)
	if !ok || c == nil {
		return Config{}, fmt.Errorf("source %s: not job-table settings (%T)", src.Name, src.Settings)
	}
	return *c, nil
}

// NewStream returns the stream `twice watch` reads: the table, polled
// every poll_interval and at each insert notification.
func (t Tap) NewStream(src config.Source, opts sources.StreamOptions) (sources.Stream, error) {
	cfg, err := settings(src)
	if err != nil {
		return nil, err
	}
	p, err := NewPoller(src.Name, t.D, cfg)
	if err != nil {
		return nil, err
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	now := opts.Now
	if now == nil {
		return nil, fmt.Errorf("source %s: no clock", src.Name)
	}
	l := &listener{url: p.cfg.Postgres, channels: t.D.Channels(p.cfg.Schema), wake: make(chan struct{}, 1),
		logf: func(f string, a ...any) { logf("source "+src.Name+": "+f, a...) }}
	return &stream{p: p, l: l, every: p.cfg.PollInterval, now: now, logf: logf}, nil
}

// NewCollectors returns what `twice audit` reads: every row of the table
// as it is now.
func (t Tap) NewCollectors(_ context.Context, src config.Source, opts sources.CollectOptions) ([]collectors.Collector, error) {
	cfg, err := settings(src)
	if err != nil {
		return nil, err
	}
	p, err := NewPoller(src.Name, t.D, cfg)
	if err != nil {
		return nil, err
	}
	p.tracker.grace = 0
	return []collectors.Collector{&collector{p: p, since: opts.Since}}, nil
}
