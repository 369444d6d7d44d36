package sidecar

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/twicetype"
)

// downStream is a memStream whose Start and Poll fail while down is set,
// as a source whose broker is unreachable.
type downStream struct {
	*memStream
	mu     sync.Mutex
	down   error
	starts int
}

func (s *downStream) setDown(err error) {
	s.mu.Lock()
	s.down = err
	s.mu.Unlock()
}

func (s *downStream) Start(ctx context.Context, resume map[string]Position) error {
	s.mu.Lock()
	err := s.down
	s.starts++
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.memStream.Start(ctx, resume)
}

func (s *downStream) Poll(ctx context.Context, wait time.Duration) ([]Record, error) {
	s.mu.Lock()
	err := s.down
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return s.memStream.Poll(ctx, wait)
}

// value reads a counter's or gauge's value.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// readyz returns the status and body of GET /readyz.
func readyz(t *testing.T, srv *httptest.Server) (int, string) {
	t.Helper()
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitUntil polls cond until it holds, failing after 30s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSourceDownAtStartIsRetried: a source that cannot start does not
// stop the watch: Start succeeds, /readyz answers 503 naming the source
// and the error, the retries are counted, the other source is audited
// meanwhile, and once the source comes up its events are audited and
// /readyz answers 200.
func TestSourceDownAtStartIsRetried(t *testing.T) {
	down := &downStream{memStream: newMemStream("jobs", "j/0")}
	down.setDown(errors.New("dial tcp 127.0.0.1:9: connect: connection refused"))
	up := newMemStream("effects", "e/0")
	down.write("j/0", twicetype.Event{ID: "a", Identity: 1, Time: 1, Kind: twicetype.JobEnqueued, JobID: "j-1"})
	up.write("e/0", twicetype.Event{ID: "b", Identity: 2, Time: 2, Kind: twicetype.Effect, Effect: "x", EffectKey: "k"})

	reg := prometheus.NewRegistry()
	wo := watchOptions(t.TempDir(), engine.Options{ConfigHash: "x"}, down)
	wo.Streams = append(wo.Streams, up)
	wo.Registry = reg
	w := New(wo)
	srv := httptest.NewServer(w.Handler(reg))
	defer srv.Close()
	ctx := context.Background()
	if err := w.Start(ctx); err != nil {
		t.Fatalf("Start with a source down: %v", err)
	}
	defer w.Shutdown(ctx)

	retries := func() float64 { return value(w.health.retries.WithLabelValues("jobs")) }
	waitUntil(t, "two failed starts", func() bool { return retries() >= 2 })
	code, body := readyz(t, srv)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "source jobs: not started") ||
		!strings.Contains(body, "connection refused") || strings.Contains(body, "source effects") {
		t.Fatalf("/readyz with jobs down: %d %q, want 503 naming jobs and why", code, body)
	}
	if got := value(w.health.up.WithLabelValues("jobs")); got != 0 {
		t.Errorf("twice_source_up{source=jobs} = %v while down", got)
	}
	waitRead(t, w, 1) // the effects source is audited meanwhile
	select {
	case <-w.Done():
		t.Fatalf("the watch stopped: %v", w.Err())
	default:
	}

	down.setDown(nil)
	waitRead(t, w, 2)
	waitUntil(t, "/readyz 200", func() bool { c, _ := readyz(t, srv); return c == http.StatusOK })
	if got := value(w.health.up.WithLabelValues("jobs")); got != 1 {
		t.Errorf("twice_source_up{source=jobs} = %v once read", got)
	}

	// Down during the run: not ready, retried, never the end of the watch.
	before := retries()
	down.setDown(errors.New("fetch: broker gone"))
	waitUntil(t, "a failed poll", func() bool { return retries() > before })
	code, body = readyz(t, srv)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "source jobs: not read: fetch: broker gone") {
		t.Fatalf("/readyz with jobs failing: %d %q", code, body)
	}
	down.write("j/0", twicetype.Event{ID: "c", Identity: 3, Time: 3, Kind: twicetype.JobStarted, JobID: "j-1"})
	down.setDown(nil)
	waitRead(t, w, 3)
	waitUntil(t, "/readyz 200 again", func() bool { c, _ := readyz(t, srv); return c == http.StatusOK })
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if c := down.committed["j/0"]; c != 2 {
		t.Errorf("jobs committed through %d, want 2", c)
	}
}

// TestSinkDownAtStartIsRetried: a findings sink that cannot start leaves
// its revisions in the outbox, /readyz says so, and once it starts it
// gets every revision once.
func TestSinkDownAtStartIsRetried(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)}
	s := newMemStream("jobs", "t/0")
	ts := clock.Now().UnixNano()
	// Two executions of one job: a duplicate-execution finding.
	s.write("t/0",
		twicetype.Event{ID: "a", Identity: 1, Time: ts, Kind: twicetype.JobStarted, JobID: "j-1", Attempt: 1, HasAttempt: true},
		twicetype.Event{ID: "b", Identity: 2, Time: ts + 1, Kind: twicetype.JobSucceeded, JobID: "j-1", Attempt: 1, HasAttempt: true},
		twicetype.Event{ID: "c", Identity: 3, Time: ts + 2, Kind: twicetype.JobStarted, JobID: "j-1", Attempt: 1, HasAttempt: true},
		twicetype.Event{ID: "d", Identity: 4, Time: ts + 3, Kind: twicetype.JobSucceeded, JobID: "j-1", Attempt: 1, HasAttempt: true})
	sink := &flakySink{err: errors.New("kafka: connection refused")}
	wo := watchOptions(t.TempDir(), engine.Options{ConfigHash: "x"}, s, sink)
	wo.Now = clock.Now
	w := New(wo)
	srv := httptest.NewServer(w.Handler(nil))
	defer srv.Close()
	ctx := context.Background()
	if err := w.Start(ctx); err != nil {
		t.Fatalf("Start with a sink down: %v", err)
	}
	defer w.Shutdown(ctx)
	waitRead(t, w, 4)
	waitUntil(t, "a finding", func() bool { return len(w.view.all()) > 0 })
	code, body := readyz(t, srv)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "findings sink flaky: kafka: connection refused") {
		t.Fatalf("/readyz with the sink down: %d %q", code, body)
	}
	sink.setErr(nil)
	for i := 0; sink.published() == 0; i++ {
		if i > 3000 {
			t.Fatal("the sink never got the revisions")
		}
		clock.add(time.Second) // past the sink's backoff
		time.Sleep(10 * time.Millisecond)
	}
	waitUntil(t, "/readyz 200", func() bool { c, _ := readyz(t, srv); return c == http.StatusOK })
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n, want := sink.published(), len(w.view.all()); n != want {
		t.Errorf("the sink got %d revisions, want %d (one per finding)", n, want)
	}
}

// flakySink is a Sink whose Start fails while err is set.
type flakySink struct {
	mu   sync.Mutex
	err  error
	revs []Revision
}

func (s *flakySink) setErr(err error) { s.mu.Lock(); s.err = err; s.mu.Unlock() }

func (s *flakySink) published() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.revs) }

func (s *flakySink) Name() string { return "flaky" }

func (s *flakySink) Start(context.Context, uint64) (map[uint64]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return nil, s.err
}

func (s *flakySink) Publish(_ context.Context, revs []Revision) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revs = append(s.revs, revs...)
	return nil
}

func (s *flakySink) Shutdown(context.Context) error { return nil }
