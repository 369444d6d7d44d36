package sidecar

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twicehq/twice/audit"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/twicetype"
)

// engineOf loads a twice.yaml text and returns its engine options with
// their hash and text, as twice watch builds them.
func engineOf(t *testing.T, yaml string) (engine.Options, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "twice.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	opts := audit.EngineOptions(cfg)
	opts.ConfigHash = audit.ConfigHash(cfg)
	return opts, audit.ConfigText(cfg)
}

// logBuffer collects a watch's log.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.b, format+"\n", args...)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFiles waits until cond holds for the files matching pattern.
func waitFiles(t *testing.T, what, pattern string, cond func([]string) bool) []string {
	t.Helper()
	var files []string
	waitUntil(t, what, func() bool {
		files, _ = filepath.Glob(pattern)
		return cond(files)
	})
	return files
}

// lastRevisions reads a findings file and returns each finding's last
// revision by detector and subject, checking seqs and revisions run on
// with no gap or repeat.
func lastRevisions(t *testing.T, path string) map[string]map[string]any {
	t.Helper()
	revs := readRevisions(t, path)
	last := map[string]map[string]any{}
	for i, r := range revs {
		if seq := int(r["seq"].(float64)); seq != i+1 {
			t.Fatalf("revision %d has seq %d", i+1, seq)
		}
		k := r["detector"].(string) + " " + r["subject"].(string)
		prev := 0.0
		if l := last[k]; l != nil {
			prev = l["revision"].(float64)
		}
		if r["revision"].(float64) != prev+1 {
			t.Fatalf("%s: revision %v after %v", k, r["revision"], prev)
		}
		last[k] = r
	}
	return last
}

const rejudgeRules = `expect:
  - {job_type: SendReceipt, effect: email.sent, effect_key: "receipt/{{key}}", within: 5m}
`

// TestChangedConfigIsRejudged: a watch restarted with another rule set
// and another threshold keeps its state and re-judges it: findings the
// new configuration does not make are resolved, a finding resting on
// events older than the history (pruned past the horizon) stays as
// published, positions go on, identities in the history still count a
// copy as repeated, the summary's counts go on, and the first snapshot
// makes the new configuration the state's.
func TestChangedConfigIsRejudged(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	out := filepath.Join(dir, "findings.jsonl")
	s := newMemStream("events", "t/0")
	ctx := context.Background()
	start := func(yaml string) (*Watcher, *logBuffer) {
		t.Helper()
		opts, text := engineOf(t, yaml)
		wo := watchOptions(state, opts, s, NewFileSink(out))
		wo.ConfigText = text
		logs := &logBuffer{}
		wo.Logf = logs.logf
		w := New(wo)
		if err := w.Start(ctx); err != nil {
			t.Fatalf("Start: %v\n%s", err, logs)
		}
		return w, logs
	}
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC).UnixNano()
	t1 := t0 + int64(72*time.Hour)
	id := uint64(0)
	ev := func(ts int64, kind twicetype.Kind, f func(e *twicetype.Event)) twicetype.Event {
		id++
		e := twicetype.Event{ID: fmt.Sprintf("e-%d", id), Identity: id, Time: ts, Kind: kind, Source: "t/0", Line: int64(id)}
		f(e2p(&e))
		return e
	}
	effect := func(ts int64, key string) twicetype.Event {
		return ev(ts, twicetype.Effect, func(e *twicetype.Event) { e.Effect, e.EffectKey = "email.sent", key })
	}
	job := func(ts int64, kind twicetype.Kind) twicetype.Event {
		return ev(ts, kind, func(e *twicetype.Event) {
			e.JobID, e.JobType, e.Key, e.Queue = "j-1", "SendReceipt", "p1", "mail"
			e.Attempt, e.HasAttempt = 1, true
		})
	}
	sec := int64(time.Second)

	// Configuration A: the rule, and one effect a key.
	w, _ := start(rejudgeRules)
	history := filepath.Join(state, historyDirName, "segment-*")
	s.write("t/0", effect(t0, "old"), effect(t0+sec, "old"))
	waitRead(t, w, 2)
	old := waitFiles(t, "a history segment with the old events", history, func(f []string) bool { return len(f) > 0 })
	newer := []twicetype.Event{effect(t1, "new"), effect(t1+sec, "new"),
		job(t1+2*sec, twicetype.JobEnqueued), job(t1+3*sec, twicetype.JobStarted), job(t1+4*sec, twicetype.JobSucceeded),
		ev(t1+int64(time.Hour), twicetype.State, func(e *twicetype.Event) { e.Entity = "marker" })}
	s.write("t/0", newer...)
	waitRead(t, w, 8)
	waitFiles(t, "the old events pruned from the history (past the horizon)", history, func(f []string) bool {
		for _, o := range old {
			for _, x := range f {
				if x == o {
					return false
				}
			}
		}
		return true
	})
	waitUntil(t, "three findings", func() bool { return len(w.view.all()) == 3 })
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	before := lastRevisions(t, out)
	for _, k := range []string{"duplicate-effect old", "duplicate-effect new", "missing-effect j-1"} {
		if r := before[k]; r == nil || r["status"] != StatusFiring {
			t.Fatalf("under A, %s: %v; want it firing (findings %v)", k, r, before)
		}
	}

	// Configuration B: no rule, and two effects a key allowed.
	snaps, _ := filepath.Glob(filepath.Join(state, "snapshot-*"))
	w, logs := start("detectors:\n  duplicate-effect: {max_per_key: 2}\n")
	for _, want := range []string{"configuration changed", "  - rule", "  + detector \"duplicate-effect\"", "re-judged"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, logs)
		}
	}
	if sum := w.summary(); sum.Events != 8 {
		t.Errorf("summary events %d after re-judging, want the 8 audited before", sum.Events)
	}
	// A copy of an event the history holds is a repeat.
	s.write("t/0", newer[0])
	waitUntil(t, "the copy counted as a repeat", func() bool {
		w.view.mu.RLock()
		defer w.view.mu.RUnlock()
		return w.view.summary.RepeatedIDs == 1
	})
	// The first snapshot under B replaces A's.
	waitFiles(t, "a snapshot under the new configuration", filepath.Join(state, "snapshot-*"), func(f []string) bool {
		return len(f) == 1 && (len(snaps) == 0 || f[0] != snaps[0])
	})
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	after := lastRevisions(t, out)
	for k, want := range map[string]string{
		"duplicate-effect new": StatusResolved, // two effects are allowed now
		"missing-effect j-1":   StatusResolved, // the rule is gone
		"duplicate-effect old": StatusFiring,   // its events are older than the history
	} {
		if got := after[k]["status"]; got != want {
			t.Errorf("under B, %s is %v, want %s", k, got, want)
		}
	}
	if c := s.committed["t/0"]; c != int64(len(newer)+3) {
		t.Errorf("committed through %d, want %d: positions go on", c, len(newer)+3)
	}

	// Restarted under B: nothing to re-judge, nothing published again.
	n := len(readRevisions(t, out))
	w, logs = start("detectors:\n  duplicate-effect: {max_per_key: 2}\n")
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "configuration changed") {
		t.Errorf("re-judged again under the same configuration:\n%s", logs)
	}
	if got := len(readRevisions(t, out)); got != n {
		t.Errorf("%d revisions after a restart under the same configuration, want the %d before", got, n)
	}
}

func e2p(e *twicetype.Event) *twicetype.Event { return e }

// TestSnapshotOfAnotherVersion: a snapshot in a format this build does
// not read is refused by Open with ErrStateMismatch and a message naming
// --reset-state; with ResetState the state is rebuilt from its history
// and the watch goes on from its positions.
func TestSnapshotOfAnotherVersion(t *testing.T) {
	evs, opts := demoInput(t)
	s := newMemStream("demo", "t/0", "t/1", "t/2")
	spread(s, evs)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	ctx := context.Background()
	w := New(watchOptions(state, opts, s))
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitRead(t, w, int64(len(evs)))
	waitFiles(t, "a snapshot", filepath.Join(state, "snapshot-*"), func(f []string) bool { return len(f) == 1 })
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	snaps, _ := filepath.Glob(filepath.Join(state, "snapshot-*"))
	raw, err := os.ReadFile(snaps[0])
	if err != nil {
		t.Fatal(err)
	}
	raw[len("TWICESNP")] = 99 // the format version of a twice to come
	if err := os.WriteFile(snaps[0], raw, 0o644); err != nil {
		t.Fatal(err)
	}

	w = New(watchOptions(state, opts, s))
	err = w.Open(ctx)
	if !errors.Is(err, ErrStateMismatch) || !strings.Contains(err.Error(), "--reset-state") ||
		!strings.Contains(err.Error(), "format version 99") {
		t.Fatalf("Open on a snapshot of another version: %v; want ErrStateMismatch naming the version and --reset-state", err)
	}
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	wo := watchOptions(state, opts, s)
	wo.ResetState = true
	w = New(wo)
	if err := w.Start(ctx); err != nil {
		t.Fatalf("Start with ResetState: %v", err)
	}
	if sum := w.summary(); sum.Events != int64(len(evs))-4 {
		t.Errorf("summary events %d after the reset, want %d", sum.Events, len(evs)-4)
	}
	// Its first snapshot replaces the unreadable one: no reset needed
	// after it.
	waitFiles(t, "a snapshot of this version", filepath.Join(state, "snapshot-*"), func(f []string) bool {
		return len(f) == 1 && f[0] != snaps[0]
	})
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	w = New(watchOptions(state, opts, s))
	if err := w.Start(ctx); err != nil {
		t.Fatalf("Start after the reset: %v", err)
	}
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}
