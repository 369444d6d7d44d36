package postgres

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestLoad measures the queries a stream at the default poll interval
// sends, idle and while rows arrive (docs/sources/postgres.md). It runs
// only with TWICE_PG_LOAD=1:
//
//	TWICE_PG_LOAD=1 go test -count=1 -run TestLoad -v ./collectors/postgres/
func TestLoad(t *testing.T) {
	if os.Getenv("TWICE_PG_LOAD") != "1" {
		t.Skip("set TWICE_PG_LOAD=1 to measure the load on Postgres")
	}
	db := newDB(t)
	db.exec(ledgerDDL)
	cfg := ledgerConfig(db.reader("ledger"))
	ctx := context.Background()
	const span = 10 * time.Second
	run := func(name string, rate int) {
		s := startStream(t, cfg, time.Now, "")
		before := s.r.queries
		start := time.Now()
		stop := make(chan struct{})
		inserted := make(chan int64)
		go func() {
			var n int64
			tick := time.NewTicker(time.Second / time.Duration(max(rate, 1)))
			defer tick.Stop()
			for {
				select {
				case <-stop:
					inserted <- n
					return
				case <-tick.C:
					if rate == 0 {
						continue
					}
					if _, err := db.conn.Exec(ctx, `INSERT INTO ledger (created_at, payment_id, job_id, amount) VALUES (now(), 'p', 1, 1)`); err == nil {
						n++
					}
				}
			}
		}()
		var rows int
		for time.Since(start) < span {
			recs, err := s.Poll(ctx, 200*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			rows += len(recs)
		}
		close(stop)
		n := <-inserted
		queries := s.r.queries - before
		el := time.Since(start).Seconds()
		t.Logf("%s: %d rows inserted, %d read, %d queries in %.1fs: %.2f queries/s", name, n, rows, queries, el, float64(queries)/el)
		_ = s.Shutdown(ctx)
	}
	run("idle", 0)
	run("busy, 200 rows/s", 200)

	// Throughput: an audit of 100,000 rows, in batches of the default size.
	db.exec(`INSERT INTO ledger (created_at, payment_id, job_id, amount, meta)
		SELECT '2026-11-24 10:00:00Z'::timestamptz + g * interval '1 ms', 'p' || g, g, g / 100.0, '{"card": "visa"}'
		FROM generate_series(1, 100000) g`)
	start := time.Now()
	evs, mal := collect(t, cfg, time.Time{})
	el := time.Since(start)
	t.Logf("audit: %d rows (%d malformed) in %v: %.0f rows/s", len(evs)+len(mal), len(mal), el.Round(time.Millisecond), float64(len(evs)+len(mal))/el.Seconds())
}
