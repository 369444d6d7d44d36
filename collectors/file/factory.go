package file

import (
	"context"

	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/sources"
)

// Factory is the source factory of type file (sources.HistoryFactory).
// config decodes a file source itself (its paths are Source.Paths): an
// audit reads each file whole, a watch follows them (Tail).
type Factory struct{}

var _ sources.HistoryFactory = Factory{}

// Type returns "file".
func (Factory) Type() string { return config.SourceFile }

// DecodeConfig is not called: config decodes file sources itself.
func (Factory) DecodeConfig(m *config.SourceMapping) config.SourceSettings {
	m.Known("path", "paths")
	return nil
}

// NewStream returns a Tail of src's paths (globs expanded as files
// appear).
func (Factory) NewStream(src config.Source, _ sources.StreamOptions) (sources.Stream, error) {
	return NewTail(src.Name, src.Paths, TailOptions{})
}

// NewCollectors returns one collector per file of src (globs expanded),
// each reading its file whole; opts.Since does not apply to files.
func (Factory) NewCollectors(_ context.Context, src config.Source, opts sources.CollectOptions) ([]collectors.Collector, error) {
	files, err := src.Files()
	if err != nil {
		return nil, err
	}
	cols := make([]collectors.Collector, len(files))
	for i, f := range files {
		cols[i] = New(f, Options{Stdin: opts.Stdin})
	}
	return cols, nil
}
