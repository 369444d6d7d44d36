package river

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/twicehq/twice/collectors/pgjobs"
)

// TestLoad measures what the tap costs the database at the default
// poll_interval (1s), idle and with River working 50 jobs/s, each insert
// notifying: statements sent per second and polls per second. It runs
// only with TWICE_PGJOBS_LOAD=1 (it takes 20 s); docs/sources/river.md
// gives its figures:
//
//	eval "$(scripts/services up postgres)"
//	TWICE_PGJOBS_LOAD=1 go test -count=1 -run TestLoad -v ./collectors/river/
func TestLoad(t *testing.T) {
	if os.Getenv("TWICE_PGJOBS_LOAD") != "1" {
		t.Skip("skipped: set TWICE_PGJOBS_LOAD=1 to measure the load")
	}
	const window = 10 * time.Second
	e := newEnv(t)
	c := e.client()
	e.run(c)
	s := newStream(t, e, pgjobs.Config{})
	ctx := context.Background()
	if err := s.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	stats := s.(interface{ Stats() (pgjobs.Stats, int64) })
	measure := func(name string, during func(stop <-chan struct{})) {
		st0, q0 := stats.Stats()
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { defer close(done); during(stop) }()
		end := time.Now().Add(window)
		var events int
		for time.Now().Before(end) {
			recs, err := s.Poll(ctx, time.Until(end))
			if err != nil {
				t.Fatal(err)
			}
			events += len(recs)
		}
		close(stop)
		<-done
		st1, q1 := stats.Stats()
		secs := window.Seconds()
		t.Logf("%s: %.1f statements/s, %.1f polls/s, %.1f rows judged/s, %d events, %d jobs followed at the end",
			name, float64(q1-q0)/secs, float64(st1.Polls-st0.Polls)/secs, float64(st1.Rows-st0.Rows)/secs, events, st1.Following)
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
				if _, err := c.Insert(ctx, ReceiptArgs{Payment: "p", Skip: true}, nil); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
}

// TestLoadBacklog measures one poll's time in the database with 100,000
// jobs waiting (a queue no worker reads): the light read of every
// unfinished row is what a backlog costs. Only with TWICE_PGJOBS_LOAD=1.
func TestLoadBacklog(t *testing.T) {
	if os.Getenv("TWICE_PGJOBS_LOAD") != "1" {
		t.Skip("skipped: set TWICE_PGJOBS_LOAD=1 to measure the load")
	}
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `INSERT INTO river_job (kind, args, queue, max_attempts)
		SELECT 'SendReceipt', '{"payment": "p"}', 'backlog', 25 FROM generate_series(1, 100000)`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, "ANALYZE river_job"); err != nil {
		t.Fatal(err)
	}
	s := newStream(t, e, pgjobs.Config{PollInterval: 10 * time.Millisecond})
	if err := s.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	stats := s.(interface{ Stats() (pgjobs.Stats, int64) })
	start := time.Now()
	for {
		st, _ := stats.Stats()
		if st.Following >= 100000 {
			break
		}
		if _, err := s.Poll(ctx, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	st0, q0 := stats.Stats()
	t.Logf("read 100,000 new rows in %v (%d polls, %v in the database)", time.Since(start).Round(time.Millisecond), st0.Polls, st0.ReadTime.Round(time.Millisecond))
	for i := 0; i < 10; i++ {
		if _, err := s.Poll(ctx, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	st1, q1 := stats.Stats()
	polls := st1.Polls - st0.Polls
	t.Logf("with 100,000 jobs waiting: %v in the database per poll, %d statements per poll",
		((st1.ReadTime - st0.ReadTime) / time.Duration(polls)).Round(time.Millisecond), (q1-q0)/polls)
}
