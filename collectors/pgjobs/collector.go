package pgjobs

import (
	"context"
	"io"
	"time"

	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/twicetype"
)

// collector reads a job table for an audit: every row it holds now, in
// pages of new rows by id, each judged once; then io.EOF. Ids missing
// between rows are reported at once (no gap_timeout): rows the queue's
// retention deleted, whose events the audit cannot have.
type collector struct {
	p     *Poller
	since time.Time
	done  bool
}

var _ collectors.Collector = (*collector)(nil)

// Name names the source and its table.
func (c *collector) Name() string { return c.p.name + " " + c.p.lane }

// Start connects.
func (c *collector) Start(ctx context.Context) error { return c.p.Start(ctx) }

// Next returns the events of the next page of rows, or io.EOF.
func (c *collector) Next(ctx context.Context) (*collectors.Batch, error) {
	if c.done {
		return nil, io.EOF
	}
	b, more, err := c.p.Poll(ctx)
	if err != nil {
		return nil, err
	}
	c.done = !more
	if !c.since.IsZero() {
		keep := make([]twicetype.Event, 0, len(b.Events))
		for _, ev := range b.Events {
			if ev.Time >= c.since.UnixNano() {
				keep = append(keep, ev)
			}
		}
		b.Events = keep
	}
	return b, nil
}

// Shutdown closes the connection; safe twice.
func (c *collector) Shutdown(ctx context.Context) error { return c.p.Shutdown(ctx) }
