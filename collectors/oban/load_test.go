package oban

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/twicehq/twice/collectors/pgjobs"
)

// TestLoad measures what the tap costs the database at the default
// poll_interval (1s), idle and with 50 jobs/s going through Oban's
// transitions (insert and its notification, fetch, complete): statements
// sent per second. It runs only with TWICE_PGJOBS_LOAD=1 (it takes 20 s);
// docs/sources/oban.md gives its figures:
//
//	eval "$(scripts/services up postgres)"
//	TWICE_PGJOBS_LOAD=1 go test -count=1 -run TestLoad -v ./collectors/oban/
func TestLoad(t *testing.T) {
	if os.Getenv("TWICE_PGJOBS_LOAD") != "1" {
		t.Skip("skipped: set TWICE_PGJOBS_LOAD=1 to measure the load")
	}
	const window = 10 * time.Second
	e := newEnv(t)
	s := newStream(t, e, pgjobs.Config{})
	ctx := context.Background()
	stats := s.(interface{ Stats() (pgjobs.Stats, int64) })
	measure := func(name string, during func(stop <-chan struct{})) {
		st0, q0 := stats.Stats()
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { defer close(done); during(stop) }()
		end := time.Now().Add(window)
		for time.Now().Before(end) {
			if _, err := s.Poll(ctx, time.Until(end)); err != nil {
				t.Fatal(err)
			}
		}
		close(stop)
		<-done
		st1, q1 := stats.Stats()
		secs := window.Seconds()
		t.Logf("%s: %.1f statements/s, %.1f polls/s, %.1f rows judged/s", name,
			float64(q1-q0)/secs, float64(st1.Polls-st0.Polls)/secs, float64(st1.Rows-st0.Rows)/secs)
	}
	measure("idle", func(<-chan struct{}) {})
	measure("busy (50 jobs/s)", func(stop <-chan struct{}) {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				id := e.insert("MyApp.Mail", "default", `{}`, 3)
				e.exec(`SELECT pg_notify('public.oban_insert', '{"queue": "default"}')`)
				e.fetch(id)
				e.complete(id)
			}
		}
	})
}
