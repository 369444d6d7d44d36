package sidecar

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twicehq/twice/twicetype"
)

// memStore is an EventStore in memory whose every call fails while down:
// a unit-test fake of the store boundary (the ClickHouse store is tested
// for real in cmd/twice).
type memStore struct {
	mu        sync.Mutex
	down      bool
	prepared  int
	buf       []twicetype.Event
	bufMal    []twicetype.Malformed
	events    map[uint64]int // identity → copies written
	malformed int
}

var errDown = errors.New("connection refused")

func newMemStore(down bool) *memStore { return &memStore{down: down, events: map[uint64]int{}} }

func (s *memStore) setDown(d bool) { s.mu.Lock(); s.down = d; s.mu.Unlock() }

func (s *memStore) Prepare(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errDown
	}
	s.prepared++
	return nil
}

func (s *memStore) Write(_ context.Context, evs []twicetype.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errDown
	}
	s.buf = append(s.buf, evs...)
	return nil
}

func (s *memStore) WriteMalformed(_ context.Context, ms []twicetype.Malformed) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bufMal = append(s.bufMal, ms...)
	return nil
}

func (s *memStore) Flush(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errDown
	}
	for _, ev := range s.buf {
		s.events[ev.Identity]++
	}
	s.malformed += len(s.bufMal)
	s.buf, s.bufMal = nil, nil
	return nil
}

func (s *memStore) Discard() {
	s.mu.Lock()
	s.buf, s.bufMal = nil, nil
	s.mu.Unlock()
}

// counts returns how many identities the store holds, and how many
// copies in all.
func (s *memStore) counts() (ids, copies int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.events {
		copies += n
	}
	return len(s.events), copies
}

// TestStoreBacklogSurvivesRestarts: events audited while the store is
// down wait in the state across a clean stop and a crash, and are all
// written once it is up; the store is prepared before the first write.
func TestStoreBacklogSurvivesRestarts(t *testing.T) {
	evs, opts := demoInput(t)
	s := newMemStream("demo", "t/0", "t/1", "t/2")
	dir := filepath.Join(t.TempDir(), "state")
	store := newMemStore(true)
	ctx := context.Background()
	read := 0
	run := func(n int, stop func(w *Watcher)) *Watcher {
		spread(s, evs[:n])
		evs = evs[n:]
		read += n
		wo := watchOptions(dir, opts, s)
		wo.Store, wo.StoreName = store, "mem"
		wo.Registry = prometheus.NewRegistry()
		w := New(wo)
		if err := w.Start(ctx); err != nil {
			t.Fatal(err)
		}
		waitRead(t, w, int64(read)) // the summary counts every run's
		stop(w)
		return w
	}
	total := len(evs)
	// Down: a clean stop, then a crash after a checkpoint.
	w := run(300, func(w *Watcher) {
		waitUntil(t, "300 records held", func() bool { return value(w.sm.backlog) == 300 })
		if err := w.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	})
	if value(w.m.stored) != 0 || value(w.m.storeErrors) == 0 {
		t.Fatalf("store down: %v written, %v errors", value(w.m.stored), value(w.m.storeErrors))
	}
	run(300, func(w *Watcher) {
		waitUntil(t, "600 records held across the restart", func() bool { return value(w.sm.backlog) == 600 })
		w.abort()
	})
	// Up: everything written, the store prepared first.
	store.setDown(false)
	w = run(len(evs), func(w *Watcher) {
		waitUntil(t, "the backlog written", func() bool { return value(w.sm.backlog) == 0 && w.storeW.storedThrough() > 0 })
		if err := w.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	})
	ids, copies := store.counts()
	if ids != total-4 { // the demo repeats 4 identities
		t.Errorf("the store holds %d identities, want %d", ids, total-4)
	}
	if copies < total {
		t.Errorf("the store holds %d events, want all %d (copies included)", copies, total)
	}
	if store.prepared == 0 {
		t.Error("the store was written without Prepare")
	}
}

// TestStoreBacklogIsBounded: while the store is down, the history is
// capped; what the cap drops is counted in twice_store_dropped_total,
// and what it keeps is written when the store is back: together, every
// record.
func TestStoreBacklogIsBounded(t *testing.T) {
	evs, opts := demoInput(t)
	s := newMemStream("demo", "t/0", "t/1", "t/2")
	store := newMemStore(true)
	wo := watchOptions(filepath.Join(t.TempDir(), "state"), opts, s)
	wo.Store, wo.StoreName = store, "mem"
	wo.HistoryMaxBytes = 1 // every segment is over the cap
	w := New(wo)
	ctx := context.Background()
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown(ctx)
	spread(s, evs[:len(evs)/2])
	waitRead(t, w, int64(len(evs)/2))
	waitUntil(t, "records dropped by the cap", func() bool { return value(w.m.storeDropped) > 0 })
	store.setDown(false)
	spread(s, evs[len(evs)/2:])
	waitRead(t, w, int64(len(evs)))
	// The writer tries again after its backoff.
	waitUntil(t, "the rest written", func() bool {
		_, copies := store.counts()
		return float64(copies)+value(w.m.storeDropped) == float64(len(evs))
	})
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	_, copies := store.counts()
	dropped := value(w.m.storeDropped)
	if got := float64(copies) + dropped; got != float64(len(evs)) {
		t.Fatalf("written %d + dropped %v = %v, want every one of the %d records", copies, dropped, got, len(evs))
	}
	if value(w.sm.backlog) != 0 {
		t.Errorf("backlog %v after a clean stop with the store up", value(w.sm.backlog))
	}
}
