package sidecar

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/twicetype"
)

// laneInput is demoInput with an end marker on each of spread's lanes
// (demoInput's, and two more 1 and 2 ms later), for a watch whose
// IdleTimeout is longer than the test: every lane then reads past every
// event but the markers, so all those are released in time order however
// unevenly the lanes are polled and however long the loop waits, and so
// is the first marker, which is at the low watermark; the other two stay
// held (held = 2), and so does anything written behind them. The test
// then does not depend on when the merge deems a lane idle.
func laneInput(tb testing.TB) (evs []twicetype.Event, opts engine.Options, held int) {
	tb.Helper()
	evs, opts = demoInput(tb)
	end := evs[len(evs)-1]
	for i := 1; i <= 2; i++ {
		m := end
		m.ID = fmt.Sprintf("%s-%d", end.ID, i)
		m.Identity = end.Identity + uint64(i)
		m.Time = end.Time + int64(i)*int64(time.Millisecond)
		m.Line = end.Line + int64(i)
		evs = append(evs, m)
	}
	return evs, opts, 2
}

// polledAll reports whether the watch has read every record written to s.
func polledAll(s *memStream) bool {
	lag, _ := s.Lag(context.Background())
	for _, n := range lag {
		if n != 0 {
			return false
		}
	}
	return true
}

// crashable wraps the findings sinks of one run of the watch, so that a
// test can make them fail, or crash the run just after a sink has
// published and before the watch records it.
type crashable struct {
	mu      sync.Mutex
	failing map[string]bool // sinks whose Publish fails, writing nothing
	stallOn string          // the sink whose next Publish writes, then stalls
	stalled chan struct{}   // closed when it stalls
	release chan struct{}   // lets it return (an error)
	dead    bool            // every Publish fails, writing nothing
}

func newCrashable() *crashable {
	return &crashable{failing: map[string]bool{}, stalled: make(chan struct{}), release: make(chan struct{})}
}

func (c *crashable) wrap(s Sink) Sink { return crashSink{Sink: s, c: c} }

type crashSink struct {
	Sink
	c *crashable
}

func (s crashSink) Publish(ctx context.Context, revs []Revision) error {
	c := s.c
	c.mu.Lock()
	dead, failing, stall := c.dead, c.failing[s.Name()], c.stallOn == s.Name()
	if stall {
		c.stallOn = ""
	}
	c.mu.Unlock()
	if dead || failing {
		return errors.New("findings sink down (test)")
	}
	if err := s.Sink.Publish(ctx, revs); err != nil {
		return err
	}
	if stall {
		close(c.stalled)
		<-c.release
		return errors.New("crashed after publishing (test)")
	}
	return nil
}

// metricSum returns the sum of the series of the metric name in reg.
func metricSum(tb testing.TB, reg *prometheus.Registry, name string) float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// copyDir copies the regular files of src (recursively) to dst.
func copyDir(tb testing.TB, src, dst string) {
	tb.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// TestCrashInEveryPhase crashes the watch (no last checkpoint) once in each
// phase of its life, each made to happen and seen in its metrics before the
// crash, while events keep arriving; the next start must say, in its
// metrics, that it restored what the phase leads to. At the end the two
// findings files, taken as they are, hold each revision once and end with
// the audit's findings. (TestWatchSurvivesCrashes crashes at random
// moments instead.)
func TestCrashInEveryPhase(t *testing.T) {
	evs, opts, held := laneInput(t)
	want := auditFindings(t, evs, opts)
	s := newMemStream("demo", "t/0", "t/1", "t/2")
	dir := t.TempDir()
	outA, outB := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	nameB := NewFileSink(outB).Name()
	state := filepath.Join(dir, "state-0")
	ctx := context.Background()
	written, malformed := 0, 0
	feed := func(n int) bool {
		n = min(n, len(evs)-written)
		spread(s, evs[written:written+n])
		written += n
		return n > 0
	}
	// until waits for cond while the watch runs, giving it more events
	// whenever it has read all there are.
	until := func(w *Watcher, what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if polledAll(s) && !feed(50) {
				t.Fatalf("no event left while waiting for %s", what)
			}
			select {
			case <-w.Done():
				t.Fatalf("watch stopped while waiting for %s: %v", what, w.Err())
			case <-time.After(2 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 30s", what)
			}
		}
	}

	type phase struct {
		name string
		// snapshotInterval of the run crashed in the phase: 0 keeps
		// watchOptions', -1 snapshots at every checkpoint.
		snapshotInterval time.Duration
		// restored checks the next start's metrics.
		restored func(snap, journal, unpublished float64) bool
	}
	phases := []phase{
		{"journal alone", time.Hour, func(snap, journal, _ float64) bool { return snap == 0 && journal >= 1 }},
		{"snapshot alone", -1, func(snap, journal, _ float64) bool { return snap == 1 && journal == 0 }},
		{"snapshot and journal", time.Hour, func(snap, journal, _ float64) bool { return snap == 1 && journal >= 1 }},
		{"committed, not published", 0, func(_, _, unpublished float64) bool { return unpublished >= 1 }},
		{"published, not recorded", 0, func(_, _, unpublished float64) bool { return unpublished >= 1 }},
	}
	var prev *phase
	for i := range phases {
		ph := &phases[i]
		feed(150) // events arrive while the watch is down
		s.writeMalformed("t/1", "bad JSON")
		malformed++
		c := newCrashable()
		reg := prometheus.NewRegistry()
		wo := watchOptions(state, opts, s, c.wrap(NewFileSink(outA)), c.wrap(NewFileSink(outB)))
		wo.Registry, wo.IdleTimeout = reg, time.Hour
		switch {
		case ph.snapshotInterval < 0:
			wo.SnapshotInterval = wo.CheckpointInterval
		case ph.snapshotInterval > 0:
			wo.SnapshotInterval = ph.snapshotInterval
		}
		w := New(wo)
		if err := w.Start(ctx); err != nil {
			t.Fatalf("start before the crash in phase %q: %v", ph.name, err)
		}
		if prev != nil {
			snap, journal := metricSum(t, reg, "twice_restored_snapshot"), metricSum(t, reg, "twice_restored_journal_checkpoints")
			unpublished := metricSum(t, reg, "twice_restored_unpublished_revisions")
			if !prev.restored(snap, journal, unpublished) {
				t.Fatalf("after the crash in phase %q, the start restored snapshot=%v journal checkpoints=%v unpublished revisions=%v",
					prev.name, snap, journal, unpublished)
			}
		}
		switch i {
		case 0, 2:
			until(w, "journal checkpoint", func() bool { return metricSum(t, reg, "twice_journal_checkpoints") >= 1 })
		case 1:
			until(w, "snapshot", func() bool { return metricSum(t, reg, "twice_snapshots_total") >= 1 })
		case 3:
			c.mu.Lock()
			c.failing[nameB] = true
			c.mu.Unlock()
			until(w, "failed publish", func() bool { return metricSum(t, reg, "twice_publish_errors_total") >= 1 })
		case 4:
			// The run stalls just after the first sink has written a
			// revision; its state as it is then is what a crash at
			// that moment leaves, and the next run starts from a copy
			// of it. The stalled run then writes nothing more.
			c.mu.Lock()
			c.stallOn = NewFileSink(outA).Name()
			c.mu.Unlock()
			until(w, "publish", func() bool {
				select {
				case <-c.stalled:
					return true
				default:
					return false
				}
			})
			next := filepath.Join(dir, "state-1")
			copyDir(t, state, next)
			state = next
			c.mu.Lock()
			c.dead = true
			c.mu.Unlock()
			close(c.release)
		}
		w.abort()
		if err := w.Err(); err != nil {
			t.Fatalf("phase %q: %v", ph.name, err)
		}
		prev = ph
	}

	feed(len(evs))
	reg := prometheus.NewRegistry()
	wo := watchOptions(state, opts, s, NewFileSink(outA), NewFileSink(outB))
	wo.Registry, wo.IdleTimeout = reg, time.Hour
	w := New(wo)
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if unpublished := metricSum(t, reg, "twice_restored_unpublished_revisions"); !prev.restored(0, 0, unpublished) {
		t.Fatalf("after the crash in phase %q, the start found %v unpublished revisions", prev.name, unpublished)
	}
	waitRead(t, w, int64(len(evs)-held+malformed))
	sum := w.eng.Summary()
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if sum.Events != int64(len(evs)-held-4) || sum.RepeatedIDs != 4 || sum.Malformed != int64(malformed) {
		t.Errorf("summary events=%d repeated=%d malformed=%d, want %d 4 %d: each record counts once",
			sum.Events, sum.RepeatedIDs, sum.Malformed, len(evs)-held-4, malformed)
	}
	checkStream(t, readRevisions(t, outA), want)
	checkStream(t, readRevisions(t, outB), want)
}
