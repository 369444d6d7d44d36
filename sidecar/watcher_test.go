package sidecar

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twicehq/twice/audit"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/internal/eventstest"
	"github.com/twicehq/twice/reports"
	"github.com/twicehq/twice/twicetype"
)

// demoInput returns the demo's events sorted by time (ties in input
// order) with a last event two days after the others, so that every
// deadline fires and every record is released in the watch as at the end
// of an audit; and the engine options of the demo's twice.yaml.
func demoInput(tb testing.TB) ([]twicetype.Event, engine.Options) {
	tb.Helper()
	cfg, err := config.Load("../testdata/demo/twice.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	evs := eventstest.Events(tb, "../testdata/demo/events.jsonl")
	sort.SliceStable(evs, func(i, k int) bool { return evs[i].Time < evs[k].Time })
	last := evs[len(evs)-1].Time
	evs = append(evs, twicetype.Event{ID: "end-marker", Identity: 42, Time: last + int64(48*time.Hour),
		Kind: twicetype.State, Entity: "end-marker", Source: "marker", Line: 1})
	opts := audit.EngineOptions(cfg)
	opts.ConfigHash = "demo"
	return evs, opts
}

// auditFindings audits events in order and returns each finding's JSON by
// fingerprint.
func auditFindings(tb testing.TB, evs []twicetype.Event, opts engine.Options) map[string]string {
	tb.Helper()
	e := engine.New(opts)
	for i := range evs {
		ev := evs[i]
		e.Add(&ev)
	}
	out := map[string]string{}
	for _, f := range e.Finish().Findings {
		b, err := reports.FindingJSON(&f)
		if err != nil {
			tb.Fatal(err)
		}
		out[f.Fingerprint] = string(b)
	}
	return out
}

// spread writes sorted events to three lanes; events of one time go to
// one lane, so that merging the lanes by time gives the input order back.
func spread(s *memStream, evs []twicetype.Event) {
	lanes := []string{"t/0", "t/1", "t/2"}
	for _, ev := range evs {
		s.write(lanes[uint64(ev.Time/int64(time.Millisecond))%3], ev)
	}
}

// readRevisions reads a findings file: every line, in order.
func readRevisions(tb testing.TB, path string) []map[string]any {
	tb.Helper()
	return eventstest.JSONLines(tb, path)
}

// body drops the stream's own fields from a revision, leaving the spec §5
// finding, re-encoded for comparison.
func body(tb testing.TB, rev map[string]any) string {
	tb.Helper()
	m := map[string]any{}
	for k, v := range rev {
		switch k {
		case "seq", "revision", "status", "emitted_at":
			continue
		}
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func canon(tb testing.TB, s string) string {
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		tb.Fatal(err)
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// checkStream checks a findings stream taken as it is: seqs 1..n, each
// fingerprint's revisions 1..k with none twice, and the last revision of
// each finding that stands equal to the audit's finding.
func checkStream(tb testing.TB, revs []map[string]any, want map[string]string) {
	tb.Helper()
	last := map[string]map[string]any{}
	for i, r := range revs {
		if seq := uint64(r["seq"].(float64)); seq != uint64(i+1) {
			tb.Fatalf("revision %d has seq %d: seqs must run 1, 2, 3... with no gap or repeat", i+1, seq)
		}
		fp := r["fingerprint"].(string)
		rev := uint64(r["revision"].(float64))
		prev := uint64(0)
		if l := last[fp]; l != nil {
			prev = uint64(l["revision"].(float64))
		}
		if rev != prev+1 {
			tb.Fatalf("seq %d: %s %s revision %d after %d", i+1, r["detector"], r["subject"], rev, prev)
		}
		last[fp] = r
	}
	standing := 0
	for fp, r := range last {
		if r["status"] == StatusResolved {
			if _, ok := want[fp]; ok {
				tb.Errorf("%s %s resolved, the audit has it", r["detector"], r["subject"])
			}
			continue
		}
		standing++
		w, ok := want[fp]
		if !ok {
			tb.Errorf("%s %s stands, the audit has no such finding", r["detector"], r["subject"])
			continue
		}
		if got := body(tb, r); got != canon(tb, w) {
			tb.Errorf("%s %s:\n got %s\nwant %s", r["detector"], r["subject"], got, canon(tb, w))
		}
	}
	if standing != len(want) {
		tb.Errorf("%d findings stand, the audit has %d", standing, len(want))
	}
}

// waitRead waits until the watch has taken n records and made every
// finding they lead to.
func waitRead(tb testing.TB, w *Watcher, n int64) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		w.view.mu.RLock()
		s := w.view.summary
		w.view.mu.RUnlock()
		if s.Events+s.RepeatedIDs+s.Malformed >= n {
			return
		}
		select {
		case <-w.Done():
			tb.Fatalf("watch stopped: %v", w.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	tb.Fatalf("watch did not take %d records in 30s", n)
}

func watchOptions(dir string, opts engine.Options, s Stream, sinks ...Sink) Options {
	return Options{
		Engine: opts, StateDir: dir, Streams: []Stream{s}, Sinks: sinks,
		CheckpointInterval: 20 * time.Millisecond, SnapshotInterval: 150 * time.Millisecond,
		FlushInterval: 5 * time.Millisecond, IdleTimeout: 50 * time.Millisecond,
	}
}

// TestWatchFindsWhatTheAuditFinds runs the demo through the watch once,
// without a crash.
func TestWatchFindsWhatTheAuditFinds(t *testing.T) {
	evs, opts := demoInput(t)
	want := auditFindings(t, evs, opts)
	s := newMemStream("demo", "t/0", "t/1", "t/2")
	spread(s, evs)
	dir := t.TempDir()
	out := filepath.Join(dir, "findings.jsonl")
	w := New(watchOptions(filepath.Join(dir, "state"), opts, s, NewFileSink(out)))
	ctx := context.Background()
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitRead(t, w, int64(len(evs)))
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	checkStream(t, readRevisions(t, out), want)
	if c := s.committed; c["t/0"]+c["t/1"]+c["t/2"] != int64(len(evs)) {
		t.Errorf("committed offsets %v, want all %d records", c, len(evs))
	}
}

// TestWatchSurvivesCrashes kills the watch (no last checkpoint) at random
// moments while events keep arriving, restarts it on the same state, and
// requires the findings file, taken as it is, to hold each revision once
// and end with the audit's findings.
func TestWatchSurvivesCrashes(t *testing.T) {
	evs, opts := demoInput(t)
	want := auditFindings(t, evs, opts)
	s := newMemStream("demo", "t/0", "t/1", "t/2")
	dir := t.TempDir()
	out := filepath.Join(dir, "findings.jsonl")
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	ctx := context.Background()
	written, malformed := 0, 0
	for round := 0; ; round++ {
		// Events keep coming while the watch runs and while it is down.
		n := min(len(evs)-written, 200+rng.IntN(500))
		spread(s, evs[written:written+n])
		s.writeMalformed("t/1", "bad JSON")
		malformed++
		written += n
		wo := watchOptions(filepath.Join(dir, "state"), opts, s, NewFileSink(out), NewFileSink(out+".2"))
		wo.CheckpointInterval, wo.SnapshotInterval = 10*time.Millisecond, 40*time.Millisecond
		w := New(wo)
		if err := w.Start(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if written == len(evs) {
			waitRead(t, w, int64(len(evs)+malformed))
			sum := w.eng.Summary()
			if err := w.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if sum.Events != int64(len(evs))-4 || sum.RepeatedIDs != 4 || sum.Malformed != int64(malformed) {
				t.Errorf("summary events=%d repeated=%d malformed=%d, want %d 4 %d: each record counts once",
					sum.Events, sum.RepeatedIDs, sum.Malformed, len(evs)-4, malformed)
			}
			t.Logf("%d crashes, %d checkpoints, snapshot %q", round, w.meta.Checkpoints, w.meta.Snapshot)
			break
		}
		time.Sleep(time.Duration(rng.IntN(60)) * time.Millisecond)
		w.abort()
		if err := w.Err(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	checkStream(t, readRevisions(t, out), want)
	checkStream(t, readRevisions(t, out+".2"), want)
}

// fakeClock is a wall clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestIdleAdvanceFiresDeadlines: a job enqueued and never started is
// reported lost an hour later although no other event arrives, when
// event time may follow the wall clock; and not without it.
func TestIdleAdvanceFiresDeadlines(t *testing.T) {
	for _, advance := range []bool{true, false} {
		clock := &fakeClock{now: time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)}
		s := newMemStream("jobs", "t/0")
		s.write("t/0", twicetype.Event{ID: "a", Identity: 1, Time: clock.Now().UnixNano(),
			Kind: twicetype.JobEnqueued, JobID: "j-1", Queue: "mail"})
		wo := watchOptions(t.TempDir(), engine.Options{ConfigHash: "x"}, s)
		reg := prometheus.NewRegistry()
		wo.Now, wo.IdleAdvance, wo.Registry = clock.Now, advance, reg
		w := New(wo)
		if err := w.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		waitRead(t, w, 1)
		lost := func() bool {
			for _, sf := range w.view.all() {
				if sf.detector == twicetype.LostJob {
					return true
				}
			}
			return false
		}
		// The clock stood still, so no checkpoint was due; it jumps two
		// and a half hours, and the first checkpoint after that comes
		// in the flush that advanced event time (or not) and looked at
		// the findings.
		clock.add(150 * time.Minute)
		waitUntil(t, "a checkpoint", func() bool { return metricSum(t, reg, "twice_checkpoints_total") >= 1 })
		if got := lost(); got != advance {
			t.Errorf("idle advance %v: lost-job reported = %v", advance, got)
		}
		if err := w.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
