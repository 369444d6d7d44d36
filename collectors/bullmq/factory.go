package bullmq

import (
	"context"
	"fmt"

	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/sources"
)

// Factory is the source factory of type bullmq (sources.HistoryFactory):
// `twice watch` follows the queues' events streams, and `twice audit`
// reads what they retain (BullMQ trims each to about 10,000 entries).
type Factory struct{}

var _ sources.HistoryFactory = Factory{}

// Type returns "bullmq".
func (Factory) Type() string { return Type }

// DecodeConfig reads the keys of spec §3.1 into a *Config, recording each
// problem at its key's file:line.
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
	ok("prefix", m.String("prefix", &c.Prefix))
	ok("queues", m.Strings("queues", &c.Queues))
	ok("key", m.String("key", &c.Key))
	ok("entity", m.String("entity", &c.Entity))
	ok("attrs", m.StringMap("attrs", &c.Attrs))
	// What Validate checks beyond types, at the key it is about; a key
	// whose value did not decode has its error already.
	m.ReportInvalid(c.Validate(), decoded)
	return c
}

// settings returns the source's *Config.
func settings(src config.Source) (Config, error) {
	c, ok := src.Settings.(*Config)
	if !ok || c == nil {
		return Config{}, fmt.Errorf("source %s: no bullmq settings", src.Name)
	}
	return *c, nil
}

// NewStream returns the Stream of src.
func (Factory) NewStream(src config.Source, opts sources.StreamOptions) (sources.Stream, error) {
	c, err := settings(src)
	if err != nil {
		return nil, err
	}
	return NewStream(src.Name, c, StreamOptions{Logf: opts.Logf, Now: opts.Now})
}

// NewCollectors returns one collector per queue of src that Redis holds
// now, each reading its events stream from the start (or opts.Since) to
// its last entry as of the collector's Start.
func (Factory) NewCollectors(ctx context.Context, src config.Source, opts sources.CollectOptions) ([]collectors.Collector, error) {
	c, err := settings(src)
	if err != nil {
		return nil, err
	}
	c = c.WithDefaults()
	cl, err := newClient(c.Redis)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	queues, err := discoverQueues(ctx, cl, &c)
	if err != nil {
		return nil, fmt.Errorf("redis %s: %w", redactURL(c.Redis), err)
	}
	if len(queues) == 0 {
		opts.Logf("source %s: no BullMQ queue under prefix %q matches %v", src.Name, c.Prefix, c.Queues)
	}
	out := make([]collectors.Collector, 0, len(queues))
	for _, q := range queues {
		col, err := NewCollector(src.Name, c, q, CollectorOptions{Since: opts.Since, Logf: opts.Logf})
		if err != nil {
			return nil, err
		}
		out = append(out, col)
	}
	return out, nil
}
