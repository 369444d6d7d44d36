package sidecar

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/twicehq/twice/collectors/file"
	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/twicetype"
)

// stateEvent is a state event of its own identity, at second i.
func stateEvent(i int) twicetype.Event {
	return twicetype.Event{ID: fmt.Sprintf("e%d", i), Identity: uint64(i + 1),
		Time: time.Date(2026, 11, 24, 10, 0, i, 0, time.UTC).UnixNano(), Kind: twicetype.State, Entity: "x", Line: int64(i)}
}

// httpGet returns the body of GET path on the watch's API.
func httpGet(t *testing.T, w *Watcher, reg *prometheus.Registry, path string) []byte {
	t.Helper()
	srv := httptest.NewServer(w.Handler(reg))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// findingsSummary returns the summary of /findings.
func findingsSummary(t *testing.T, w *Watcher, reg *prometheus.Registry) map[string]any {
	t.Helper()
	var page struct {
		Summary map[string]any `json:"summary"`
	}
	if err := json.Unmarshal(httpGet(t, w, reg, "/findings"), &page); err != nil {
		t.Fatal(err)
	}
	return page.Summary
}

// checkpoints returns how many checkpoints this run committed.
func (w *Watcher) checkpoints() uint64 { return uint64(value(w.m.checkpoints)) }

// resumedAt returns the position the last Start of lane got.
func (s *memStream) resumedAt(lane string) Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resumed[lane]
}

// TestLostCoverage: a gap a stream reports is counted once, when its
// lane's position passes it, also across a crash that makes the stream
// read it again; it shows in twice_coverage_lost_total and in the
// summary of /findings, never as a finding.
func TestLostCoverage(t *testing.T) {
	s := newMemStream("queue", "emails", "payments")
	from := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC).UnixNano()
	for i := 0; i < 5; i++ {
		s.write("emails", stateEvent(i))
	}
	s.writeLost("emails", twicetype.Gap{Reason: "stream trimmed", Count: 120, From: from, To: from + int64(time.Minute)})
	s.writeMalformed("emails", "bad JSON")
	for i := 5; i < 10; i++ {
		s.write("payments", stateEvent(i))
	}
	dir := filepath.Join(t.TempDir(), "state")
	opts := engine.Options{ConfigHash: "gaps"}
	run := func(abort bool) (*Watcher, *prometheus.Registry) {
		reg := prometheus.NewRegistry()
		wo := watchOptions(dir, opts, s)
		wo.Registry = reg
		w := New(wo)
		if err := w.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		waitRead(t, w, 11)
		waitStarted(t, w)
		if abort {
			// Let a checkpoint cover the gap, then crash.
			waitCheckpoints(t, w, w.checkpoints()+2)
			w.abort()
		}
		return w, reg
	}
	run(true)
	w, reg := run(false)
	defer w.Shutdown(context.Background())
	if got := s.resumedAt("emails"); got != "7" {
		t.Errorf("emails resumed at %q, want 7 (after the malformed record)", got)
	}
	sum := w.eng.Summary()
	if sum.Events != 10 || sum.Malformed != 1 || len(sum.Findings) != 0 {
		t.Errorf("summary events=%d malformed=%d findings=%v", sum.Events, sum.Malformed, sum.Findings)
	}
	if metrics := string(httpGet(t, w, reg, "/metrics")); !strings.Contains(metrics, `twice_coverage_lost_total{reason="stream trimmed",source="queue"} 1`+"\n") {
		t.Errorf("/metrics lacks twice_coverage_lost_total 1:\n%s", metrics)
	}
	fs := findingsSummary(t, w, reg)
	ws, _ := fs["warnings"].([]any)
	if len(ws) != 1 || fs["coverage_reduced"] != true {
		t.Fatalf("/findings summary = %v, want one warning and coverage_reduced", fs)
	}
	want := "Source queue (emails) lost 120 events between 2026-11-24T09:00:00.000Z and 2026-11-24T09:01:00.000Z (stream trimmed)"
	if msg := ws[0].(string); !strings.HasPrefix(msg, want) {
		t.Errorf("warning %q\nwant it to start %q", msg, want)
	}
}

// waitStarted waits until every stream has started.
func waitStarted(t *testing.T, w *Watcher) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for i := range w.opts.Streams {
		for !w.health.isStarted(i) {
			if time.Now().After(deadline) {
				t.Fatalf("stream %d did not start in 30s", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// waitCheckpoints waits until the watch has committed n checkpoints.
func waitCheckpoints(t *testing.T, w *Watcher, n uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if w.checkpoints() >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no %d checkpoints in 30s", n)
}

// TestLegacyPositions: a state whose lanes were written as Kafka offsets
// (before positions were opaque) resumes at them, and a malformed
// message counted before the checkpoint's position is not counted again.
func TestLegacyPositions(t *testing.T) {
	s := newMemStream("jobs", "orders/0")
	for i := 0; i < 4; i++ {
		s.write("orders/0", stateEvent(i))
	}
	s.writeMalformed("orders/0", "bad JSON") // offset 4
	s.write("orders/0", stateEvent(5))
	dir := filepath.Join(t.TempDir(), "state")
	opts := engine.Options{ConfigHash: "legacy"}
	// The old layout: the engine took offsets 0 and 1, read the malformed
	// message at 4 and counted it.
	st, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := &meta{Version: storeVersion, ConfigHash: "legacy", NextJournal: 1, NextSeq: 1}
	raw, _ := json.Marshal(m)
	var doc map[string]any
	json.Unmarshal(raw, &doc)
	doc["lanes"] = map[string]any{"jobs orders/0": map[string]any{"next": 2, "malformed_through": 4}}
	raw, _ = json.Marshal(doc)
	if err := st.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyState, raw) }); err != nil {
		t.Fatal(err)
	}
	st.close()
	w := New(watchOptions(dir, opts, s))
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown(context.Background())
	waitRead(t, w, 3)
	waitStarted(t, w)
	if got := s.resumedAt("orders/0"); got != "2" {
		t.Errorf("resumed at %q, want 2", got)
	}
	waitCheckpoints(t, w, 2)
	if sum := w.eng.Summary(); sum.Events != 3 || sum.Malformed != 0 {
		t.Errorf("events=%d malformed=%d, want 3 (offsets 2, 3, 5) and 0 (counted before)", sum.Events, sum.Malformed)
	}
}

// TestWatchFollowsFiles runs the demo through a file tail: the file is
// written in pieces (a line cut in two), rotated (renamed and replaced)
// while the watch is down and while it runs, and truncated in place,
// while the watch is killed and restarted; the findings equal the
// audit's, every line counts once, and no coverage is reported lost.
func TestWatchFollowsFiles(t *testing.T) {
	evs, opts := demoInput(t)
	// The demo's lines in time order (demoInput's order), and the end
	// marker.
	raw, err := os.ReadFile("../testdata/demo/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	byLine := strings.SplitAfter(string(raw), "\n")
	lines := make([]string, 0, len(evs))
	for _, ev := range evs[:len(evs)-1] {
		lines = append(lines, byLine[ev.Line-1])
	}
	end := evs[len(evs)-1]
	lines = append(lines, fmt.Sprintf(`{"id":"end-marker","ts":%q,"kind":"state","entity":"end-marker"}`+"\n",
		time.Unix(0, end.Time).UTC().Format(time.RFC3339Nano)))

	dir := t.TempDir()
	logPath := filepath.Join(dir, "app.log")
	n := len(lines)
	// Files: A holds [0,c2), B [c2,c4), C [c4,c5] and, truncated, the
	// last few (c5,n) (shorter, so the truncation shows whenever it is
	// looked at).
	c1, c2, c3, c4, c5 := n/5, 2*n/5, 3*n/5, 4*n/5, n-20
	// An event without an id is named by where it was read.
	for k := range evs {
		evs[k].Source = logPath
		switch {
		case k < c2:
			evs[k].Line = int64(k + 1)
		case k < c4:
			evs[k].Line = int64(k - c2 + 1)
		case k <= c5:
			evs[k].Line = int64(k - c4 + 1)
		default:
			evs[k].Line = int64(k - c5)
		}
	}
	want := auditFindings(t, evs, opts)

	out := filepath.Join(dir, "findings.jsonl")
	state := filepath.Join(dir, "state")
	write := func(ls ...string) {
		f, err := os.OpenFile(logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(strings.Join(ls, "")); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	rotate := func(to string) {
		if err := os.Rename(logPath, filepath.Join(dir, to)); err != nil {
			t.Fatal(err)
		}
	}
	start := func() *Watcher {
		tail, err := file.NewTail("app", []string{logPath}, file.TailOptions{PollInterval: 5 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		w := New(watchOptions(state, opts, tail, NewFileSink(out)))
		if err := w.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return w
	}
	crash := func(w *Watcher) {
		waitCheckpoints(t, w, w.checkpoints()+2)
		w.abort()
	}

	// 1: a fifth of the lines and half a line.
	write(strings.Join(lines[:c1], ""), lines[c1][:20])
	w := start()
	waitRead(t, w, int64(c1))
	crash(w)
	// 2: while down, the line completed and more; rotated; the watch
	// finds the old file by its inode and reads it out.
	write(lines[c1][20:], strings.Join(lines[c1+1:c2], ""))
	rotate("app.log.1")
	write(lines[c2:c3]...)
	w = start()
	waitRead(t, w, int64(c3))
	// 3: rotated while it runs.
	write(lines[c3:c4]...)
	rotate("app.log.2")
	write(lines[c4:c5]...)
	waitRead(t, w, int64(c5))
	crash(w)
	// 4: truncated in place (copytruncate) while it runs: once it has
	// read a line, so it has the file open.
	w = start()
	write(lines[c5])
	waitRead(t, w, int64(c5+1))
	if err := os.Truncate(logPath, 0); err != nil {
		t.Fatal(err)
	}
	write(lines[c5+1:]...)
	waitRead(t, w, int64(n))
	sum := w.eng.Summary()
	if err := w.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sum.Events+sum.RepeatedIDs != int64(n) || sum.Malformed != 0 {
		t.Errorf("events+repeated=%d malformed=%d, want %d and 0: every line once", sum.Events+sum.RepeatedIDs, sum.Malformed, n)
	}
	if len(w.meta.Lost) != 0 {
		t.Errorf("lost coverage reported: %v", w.meta.Lost)
	}
	checkStream(t, readRevisions(t, out), want)
}
