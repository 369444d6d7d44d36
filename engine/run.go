package engine

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/twicetype"
)

// Run starts the collectors, merges their events by ts (ties go to the
// collector listed first, then to source order) into e, and shuts them
// down. Detection runs on its own goroutine until Finish. Several sorted files thus arrive in order without filling the
// reorder buffer. It returns the first error of a collector, wrapped with
// its name, or of strict mode.
func Run(ctx context.Context, e *Engine, cols []collectors.Collector) (err error) {
	e.startPipeline()
	defer func() {
		if err != nil {
			e.stopPipeline()
		}
		for _, c := range cols {
			if serr := c.Shutdown(context.WithoutCancel(ctx)); serr != nil && err == nil {
				err = fmt.Errorf("%s: %w", c.Name(), serr)
			}
		}
	}()
	for _, c := range cols {
		if err := c.Start(ctx); err != nil {
			return fmt.Errorf("%s: %w", c.Name(), err)
		}
	}
	curs := make([]*cursor, len(cols))
	for i, c := range cols {
		curs[i] = &cursor{col: c}
	}
	for {
		var best *cursor
		for _, c := range curs {
			ev, err := c.head(ctx, e)
			if err != nil {
				return err
			}
			if ev == nil {
				continue
			}
			if best == nil || ev.Time < best.batch.Events[best.i].Time {
				best = c
			}
		}
		if best == nil {
			return nil
		}
		if len(curs) == 1 {
			// One source: take the whole batch in order.
			for ; best.i < len(best.batch.Events); best.i++ {
				e.Add(&best.batch.Events[best.i])
			}
			continue
		}
		e.Add(&best.batch.Events[best.i])
		best.i++
	}
}

// cursor walks one collector's batches.
type cursor struct {
	col   collectors.Collector
	batch *collectors.Batch
	i     int
	done  bool
}

// head returns the collector's next event without taking it, fetching
// batches as needed; nil at the end.
func (c *cursor) head(ctx context.Context, e *Engine) (*twicetype.Event, error) {
	for !c.done && (c.batch == nil || c.i >= len(c.batch.Events)) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b, err := c.col.Next(ctx)
		if errors.Is(err, io.EOF) {
			c.done, c.batch = true, nil
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.col.Name(), err)
		}
		for _, m := range b.Malformed {
			if err := e.Malformed(m); err != nil {
				return nil, err
			}
		}
		c.batch, c.i = b, 0
	}
	if c.done {
		return nil, nil
	}
	return &c.batch.Events[c.i], nil
}
