// Package collectors defines the role every collector plays: turn what it
// taps into batches of normalized events. Each collector lives in its own
// subpackage (file, and later kafka, redis, ...).
package collectors

import (
	"context"

	"github.com/twicehq/twice/twicetype"
)

// Batch is a run of events read from one source, in the order read, and
// the malformed lines found among them.
type Batch struct {
	Events    []twicetype.Event
	Malformed []twicetype.Malformed
	// Lost is coverage the source knows it lost before or among these
	// events (a trimmed stream): reports warn about it.
	Lost []twicetype.Gap
}

// Collector reads normalized events from one source. Constructors do no
// I/O: Start opens the source, Next returns batches in source order until
// io.EOF, and Shutdown releases everything. Shutdown is safe to call more
// than once and without Start.
type Collector interface {
	// Name names the source in diagnostics (a path, a topic).
	Name() string
	Start(ctx context.Context) error
	// Next returns the next batch, or io.EOF after the last one. A batch
	// may be empty. Errors other than io.EOF mean the source could not be
	// read.
	Next(ctx context.Context) (*Batch, error)
	Shutdown(ctx context.Context) error
}
