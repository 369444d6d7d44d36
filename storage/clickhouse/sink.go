package clickhouse

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/valyala/fastjson"

	"github.com/twicehq/twice/twicetype"
)

// DefaultBatchSize is how many events a Sink sends in one INSERT.
const DefaultBatchSize = 100_000

// SinkOptions configure a Sink.
type SinkOptions struct {
	// BatchSize is how many events are buffered before an INSERT; zero
	// means DefaultBatchSize.
	BatchSize int
	// StartPos is the input position of the first event written; zero
	// takes the clock (Unix nanoseconds), so that the positions of a later
	// sink follow those of an earlier one: "input order" across runs is
	// the order in which sinks were started, then the order of Write.
	StartPos uint64
}

// Sink writes events to the events table in batches. Positions increase
// with every event, across Write calls, so the first copy of an identity
// in input order is the one with the lowest position. Writing the same
// events again (same identities) changes no audit: later copies only add
// to summary.repeated_ids. A Sink is safe for concurrent use; events keep
// the order of the calls.
type Sink struct {
	st   *Store
	size int

	mu   sync.Mutex
	pos  uint64
	cols eventColumns
	mal  []malformedRow
	p    fastjson.Parser

	// One batch is sent in the background while the next one fills:
	// sending (encoding, the network, ClickHouse's insert) overlaps with
	// copying and flattening the next events.
	sending chan error // nil when nothing is in flight
}

type malformedRow struct {
	pos    uint64
	source string
	line   int64
	reason string
}

// Sink returns a Sink writing to the store's events table. It does no I/O.
func (s *Store) Sink(o SinkOptions) *Sink {
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.StartPos == 0 {
		o.StartPos = uint64(time.Now().UnixNano())
	}
	return &Sink{st: s, size: o.BatchSize, pos: o.StartPos}
}

// Write buffers events, sending full batches. The events are copied: the
// caller may reuse them when Write returns.
func (k *Sink) Write(ctx context.Context, evs []twicetype.Event) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := range evs {
		if cap(k.cols.pos) == 0 {
			k.cols.grow(k.size)
		}
		k.cols.add(&evs[i], k.pos, &k.p)
		k.pos++
		if k.cols.len() >= k.size {
			if err := k.flushEvents(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// WriteMalformed records lines that were not valid events, in input
// order with the events (they take positions too).
func (k *Sink) WriteMalformed(ctx context.Context, ms []twicetype.Malformed) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, m := range ms {
		k.mal = append(k.mal, malformedRow{pos: k.pos, source: m.Source, line: m.Line, reason: m.Reason})
		k.pos++
	}
	if len(k.mal) >= k.size {
		return k.flushMalformed(ctx)
	}
	return nil
}

// Flush sends what is buffered.
func (k *Sink) Flush(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.flushEvents(ctx); err != nil {
		return err
	}
	if err := k.wait(); err != nil {
		return err
	}
	return k.flushMalformed(ctx)
}

// Close flushes. The Store stays open.
func (k *Sink) Close(ctx context.Context) error { return k.Flush(ctx) }

// flushEvents starts sending the buffered events, after the batch in
// flight (if any) has been sent.
func (k *Sink) flushEvents(ctx context.Context) error {
	if err := k.wait(); err != nil {
		return err
	}
	if k.cols.len() == 0 {
		return nil
	}
	if k.st.conn == nil {
		return errClosed
	}
	cols := k.cols
	k.cols = eventColumns{}
	done := make(chan error, 1)
	k.sending = done
	go func() { done <- k.send(ctx, &cols) }()
	return nil
}

// wait waits for the batch in flight.
func (k *Sink) wait() error {
	if k.sending == nil {
		return nil
	}
	err := <-k.sending
	k.sending = nil
	return err
}

func (k *Sink) send(ctx context.Context, cols *eventColumns) error {
	b, err := k.st.conn.PrepareBatch(ctx, "INSERT INTO "+k.st.tables.Events+" ("+eventColumnList+")")
	if err != nil {
		return fmt.Errorf("clickhouse: insert into %s: %w", k.st.tables.Events, err)
	}
	if err := cols.appendTo(b); err != nil {
		_ = b.Abort()
		return fmt.Errorf("clickhouse: insert into %s: %w", k.st.tables.Events, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("clickhouse: insert into %s: %w", k.st.tables.Events, err)
	}
	return nil
}

func (k *Sink) flushMalformed(ctx context.Context) error {
	if len(k.mal) == 0 {
		return nil
	}
	b, err := k.st.conn.PrepareBatch(ctx, "INSERT INTO "+k.st.tables.Malformed+" (pos, source, line, reason)")
	if err != nil {
		return fmt.Errorf("clickhouse: insert into %s: %w", k.st.tables.Malformed, err)
	}
	for _, m := range k.mal {
		if err := b.Append(m.pos, m.source, m.line, m.reason); err != nil {
			_ = b.Abort()
			return err
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("clickhouse: insert into %s: %w", k.st.tables.Malformed, err)
	}
	k.mal = k.mal[:0]
	return nil
}
