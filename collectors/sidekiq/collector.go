package sidekiq

import (
	"context"
	"io"
	"strconv"
	"time"

	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/twicetype"
)

// streamCollector reads the middleware's stream for an audit: from its
// start, or the first entry at or after since, to the last entry it held
// at Start.
type streamCollector struct {
	r     *StreamReader
	since time.Time
	end   string
	first bool
	done  bool
}

var _ collectors.Collector = (*streamCollector)(nil)

// Name names the source and its stream.
func (c *streamCollector) Name() string { return c.r.name + " " + c.r.key }

// Start connects and notes where the stream ends now.
func (c *streamCollector) Start(ctx context.Context) error {
	if err := c.r.Start(ctx, Position{}); err != nil {
		return err
	}
	end, err := c.r.LastID(ctx)
	if err != nil {
		return err
	}
	c.end, c.first, c.done = end, true, end == ""
	return nil
}

// Next returns the next entries, up to readBatch, or io.EOF.
func (c *streamCollector) Next(ctx context.Context) (*collectors.Batch, error) {
	if c.done {
		return nil, io.EOF
	}
	var recs []StreamRecord
	var err error
	if c.first && !c.since.IsZero() {
		// Inclusive: the first entry at or after since.
		recs, err = c.r.readRange(ctx, strconv.FormatInt(c.since.UnixMilli(), 10)+"-0", c.end, readBatch)
	} else {
		recs, err = c.r.ReadRange(ctx, c.end, readBatch)
	}
	c.first = false
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		c.done = true
		return nil, io.EOF
	}
	b := &collectors.Batch{}
	for _, r := range recs {
		if r.Lost != nil {
			b.Lost = append(b.Lost, *r.Lost)
		}
		switch {
		case r.Event != nil:
			b.Events = append(b.Events, *r.Event)
		case r.Malformed != nil:
			b.Malformed = append(b.Malformed, *r.Malformed)
		}
	}
	if recs[len(recs)-1].Pos.ID == c.end {
		c.done = true
	}
	return b, nil
}

// Shutdown closes the connection; safe twice.
func (c *streamCollector) Shutdown(ctx context.Context) error { return c.r.Shutdown(ctx) }

// snapshotCollector reads one snapshot of Sidekiq's structures for an
// audit in poll mode: the failures of the retry and dead sets.
type snapshotCollector struct {
	p     *Poller
	since time.Time
	done  bool
}

var _ collectors.Collector = (*snapshotCollector)(nil)

// Name names the source.
func (c *snapshotCollector) Name() string { return c.p.name }

// Start connects.
func (c *snapshotCollector) Start(ctx context.Context) error { return c.p.Start(ctx) }

// Shutdown closes the connection; safe twice.
func (c *snapshotCollector) Shutdown(ctx context.Context) error { return c.p.Shutdown(ctx) }

// Next returns the snapshot's events, then io.EOF.
func (c *snapshotCollector) Next(ctx context.Context) (*collectors.Batch, error) {
	if c.done {
		return nil, io.EOF
	}
	c.done = true
	b, err := c.p.Poll(ctx)
	if err != nil {
		return nil, err
	}
	if !c.since.IsZero() {
		keep := b.Events[:0]
		for _, ev := range b.Events {
			if ev.Time >= c.since.UnixNano() {
				keep = append(keep, ev)
			}
		}
		b.Events = keep
	}
	b.Lost = nil
	b.Events = append([]twicetype.Event(nil), b.Events...)
	return b, nil
}
