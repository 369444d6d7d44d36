package main

import (
	"context"

	"github.com/twicehq/twice/sidecar"
	"github.com/twicehq/twice/storage/clickhouse"
	"github.com/twicehq/twice/twicetype"
)

// watchStore is the event store of watch.store: ClickHouse, whose tables
// are created or migrated when it first answers (not at start: a store
// that is down must not stop the watch).
type watchStore struct {
	st   *clickhouse.Store
	sink *clickhouse.Sink
}

var _ sidecar.EventStore = (*watchStore)(nil)

func newWatchStore(st *clickhouse.Store) *watchStore {
	return &watchStore{st: st, sink: st.Sink(clickhouse.SinkOptions{})}
}

func (s *watchStore) Prepare(ctx context.Context) error { return s.st.Migrate(ctx) }

func (s *watchStore) Write(ctx context.Context, evs []twicetype.Event) error {
	return s.sink.Write(ctx, evs)
}

func (s *watchStore) WriteMalformed(ctx context.Context, ms []twicetype.Malformed) error {
	return s.sink.WriteMalformed(ctx, ms)
}

func (s *watchStore) Flush(ctx context.Context) error { return s.sink.Flush(ctx) }

// Discard starts a new sink: what the failed one buffered is dropped, to
// be written again whole. Its positions follow the old sink's (they
// start at the clock), so input order holds.
func (s *watchStore) Discard() { s.sink = s.st.Sink(clickhouse.SinkOptions{}) }
