package postgres

import (
	"context"
	"fmt"

	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/sources"
)

// Factory is the source factory of type postgres; a table keeps its
// history, so `twice audit` reads it too.
type Factory struct{}

var _ sources.HistoryFactory = Factory{}

// Type returns "postgres".
func (Factory) Type() string { return Type }

// DecodeConfig reads the keys of spec §3.1 into a *Config, recording each
// problem at its key's file:line.
func (Factory) DecodeConfig(m *config.SourceMapping) config.SourceSettings {
	return decode(m)
}

func settings(src config.Source) (*Config, error) {
	c, ok := src.Settings.(*Config)
	if !ok || c == nil {
		return nil, fmt.Errorf("source %s: no postgres settings", src.Name)
	}
	return c, nil
}

// NewStream returns the Stream of src.
func (Factory) NewStream(src config.Source, opts sources.StreamOptions) (sources.Stream, error) {
	c, err := settings(src)
	if err != nil {
		return nil, err
	}
	return NewStream(src.Name, *c, StreamOptions{Logf: opts.Logf, Now: opts.Now})
}

// NewCollectors returns the one collector of src, reading from its first
// row (or opts.Since, for a timestamp cursor) up to what it holds now.
func (Factory) NewCollectors(_ context.Context, src config.Source, opts sources.CollectOptions) ([]collectors.Collector, error) {
	c, err := settings(src)
	if err != nil {
		return nil, err
	}
	col, err := NewCollector(src.Name, *c, opts.Since, opts.Logf)
	if err != nil {
		return nil, err
	}
	return []collectors.Collector{col}, nil
}
