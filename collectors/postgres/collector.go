package postgres

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twicehq/twice/collectors"
)

// Collector reads a postgres source for `twice audit`: every row (from
// Since, for a timestamp cursor) up to what the table holds when Start
// runs — one REPEATABLE READ, READ ONLY transaction, so the audit sees one
// snapshot — a batch of rows per Next, then io.EOF.
type Collector struct {
	r     *reader
	since time.Time
	logf  func(string, ...any)

	tx   pgx.Tx
	pos  position
	done bool
}

var _ collectors.Collector = (*Collector)(nil)

// NewCollector returns the collector of the postgres source named name;
// since, when not zero, skips rows whose timestamp cursor is before it
// (an integer cursor is read whole). It does no I/O.
// logf (nil for none) says when since cannot apply.
func NewCollector(name string, cfg Config, since time.Time, logf func(string, ...any)) (*Collector, error) {
	r, err := newReader(name, cfg)
	if err != nil {
		return nil, err
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Collector{r: r, since: since, logf: logf}, nil
}

// Name names the source and what it reads.
func (c *Collector) Name() string { return c.r.label }

// Start connects and opens the snapshot.
func (c *Collector) Start(ctx context.Context) error {
	if err := c.r.connect(ctx); err != nil {
		return err
	}
	if !c.since.IsZero() && c.r.kind != cursorTimestamp {
		c.logf("source %s: --since applies to a timestamp cursor; the cursor %s is not one, so every row is read", c.r.name, strings.Join(c.r.cfg.Cursor, ", "))
	}
	tx, err := c.r.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		c.r.close()
		return err
	}
	c.tx = tx
	return nil
}

// Next returns the next batch of rows, io.EOF after the last.
func (c *Collector) Next(ctx context.Context) (*collectors.Batch, error) {
	if c.done {
		return nil, io.EOF
	}
	if c.tx == nil {
		return nil, errors.New("not started")
	}
	var b bounds
	if c.r.kind == cursorTimestamp {
		b.since = c.since
	}
	rows, full, err := c.r.read(ctx, c.tx, &c.pos, b)
	if err != nil {
		return nil, err
	}
	batch := &collectors.Batch{}
	for _, row := range rows {
		c.pos.After = row.after
		if row.event != nil {
			batch.Events = append(batch.Events, *row.event)
		} else {
			batch.Malformed = append(batch.Malformed, *row.malformed)
		}
	}
	if !full {
		c.done = true
	}
	return batch, nil
}

// Shutdown ends the snapshot and closes the connection; it is safe to
// call twice and without Start.
func (c *Collector) Shutdown(ctx context.Context) error {
	if c.tx != nil {
		_ = c.tx.Rollback(ctx)
		c.tx = nil
	}
	c.r.close()
	return nil
}
