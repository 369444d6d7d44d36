package sidekiq

import (
	"context"
	"fmt"

	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/sources"
)

// Type is the source type of Sidekiq in twice.yaml.
const Type = "sidekiq"

// Factory is the source factory of type sidekiq (sources.HistoryFactory).
// Its settings are a *Config.
type Factory struct{}

var _ sources.HistoryFactory = Factory{}

// Type returns "sidekiq".
func (Factory) Type() string { return Type }

// configKeys are the keys of a sidekiq source, in the order of the docs.
var configKeys = []string{"redis", "queues", "namespace", "mode", "key", "entity", "attrs",
	"poll_interval", "max_list", "stream"}

// DecodeConfig decodes the keys of spec §3.1 for sidekiq, and the keys
// of each mode, into a *Config; every problem is recorded at its key.
func (Factory) DecodeConfig(m *config.SourceMapping) config.SourceSettings {
	m.Known(configKeys...)
	c := &Config{}
	decoded := map[string]bool{}
	ok := func(key string, good bool) {
		if good || !m.Has(key) {
			decoded[key] = true
		}
	}
	if m.Require("redis") {
		ok("redis", m.URL("redis", &c.Redis, "redis", "rediss"))
	}
	ok("queues", m.Strings("queues", &c.Queues))
	ok("namespace", m.String("namespace", &c.Namespace))
	ok("mode", m.OneOf("mode", &c.Mode, ModePoll, ModeMiddleware))
	ok("key", m.String("key", &c.Key))
	ok("entity", m.String("entity", &c.Entity))
	ok("attrs", m.StringMap("attrs", &c.Attrs))
	ok("poll_interval", m.Duration("poll_interval", &c.PollInterval))
	ok("max_list", m.Int("max_list", &c.MaxList, 1))
	ok("stream", m.String("stream", &c.Stream))
	// What Validate checks beyond types, at the key it is about; a key
	// whose value did not decode has its error already.
	m.ReportInvalid(c.Validate(), decoded)
	return c
}

// settings returns the *Config of a sidekiq source.
func settings(src config.Source) (Config, error) {
	c, ok := src.Settings.(*Config)
	if !ok || c == nil {
		return Config{}, fmt.Errorf("source %s: not sidekiq settings (%T)", src.Name, src.Settings)
	}
	return *c, nil
}

// NewStream returns the stream `twice watch` reads: the middleware's
// stream in mode middleware, snapshots of Sidekiq's structures in mode
// poll.
func (Factory) NewStream(src config.Source, opts sources.StreamOptions) (sources.Stream, error) {
	cfg, err := settings(src)
	if err != nil {
		return nil, err
	}
	if cfg.WithDefaults().Mode == ModeMiddleware {
		r, err := NewStreamReader(src.Name, cfg)
		if err != nil {
			return nil, err
		}
		return &middlewareStream{r: r, lane: r.key}, nil
	}
	p, err := NewPoller(src.Name, cfg)
	if err != nil {
		return nil, err
	}
	now, logf := opts.Now, opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &pollStream{p: p, every: p.cfg.PollInterval, now: now, logf: logf}, nil
}

// NewCollectors returns what `twice audit` reads of a sidekiq source. In
// mode middleware: the stream, from its start (or opts.Since) to its last
// entry as of Start. In mode poll, Sidekiq keeps no history of the jobs
// that went through it; an audit reads what it does keep, once: the
// failures in the retry set and the deaths (with their last failure) in
// the dead set.
func (Factory) NewCollectors(_ context.Context, src config.Source, opts sources.CollectOptions) ([]collectors.Collector, error) {
	cfg, err := settings(src)
	if err != nil {
		return nil, err
	}
	if cfg.WithDefaults().Mode == ModeMiddleware {
		r, err := NewStreamReader(src.Name, cfg)
		if err != nil {
			return nil, err
		}
		return []collectors.Collector{&streamCollector{r: r, since: opts.Since}}, nil
	}
	p, err := NewPoller(src.Name, cfg)
	if err != nil {
		return nil, err
	}
	p.tracker.historyOnly = true
	return []collectors.Collector{&snapshotCollector{p: p, since: opts.Since}}, nil
}
