package postgres

import (
	"context"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/twicehq/twice/internal/servicetest"
)

// TestPostgresGoneAndBack: while the connection is cut a poll fails (the
// sidecar retries it and shows it on /readyz); once Postgres is reachable
// again the stream goes on after the last row it read, losing nothing.
func TestPostgresGoneAndBack(t *testing.T) {
	db := newDB(t)
	db.exec(ledgerDDL)
	db.exec(`INSERT INTO ledger (created_at, payment_id, job_id, amount) VALUES ('2026-11-24 10:00:00Z', 'p1', 1, 1)`)
	u, err := url.Parse(db.reader("ledger"))
	if err != nil {
		t.Fatal(err)
	}
	proxy := servicetest.NewProxy(t, u.Host)
	proxy.Up()
	u.Host = proxy.Addr()
	s := startStream(t, ledgerConfig(u.String()), time.Now, "")
	if got := summary(poll(t, s)); !slices.Equal(got, []string{"charge/p1"}) {
		t.Fatalf("first poll %q", got)
	}
	proxy.Down()
	db.exec(`INSERT INTO ledger (created_at, payment_id, job_id, amount) VALUES ('2026-11-24 10:00:01Z', 'p2', 2, 1)`)
	s.next = time.Time{}
	if recs, err := s.Poll(context.Background(), time.Second); err == nil {
		t.Fatalf("a poll with Postgres unreachable: %q, no error", summary(recs))
	}
	if s.Health() == nil {
		t.Error("unhealthy, Health says nothing")
	}
	proxy.Up()
	db.exec(`INSERT INTO ledger (created_at, payment_id, job_id, amount) VALUES ('2026-11-24 10:00:02Z', 'p3', 3, 1)`)
	if got := summary(poll(t, s)); !slices.Equal(got, []string{"charge/p2", "charge/p3"}) {
		t.Fatalf("after Postgres came back: %q", got)
	}
	if err := s.Health(); err != nil {
		t.Errorf("healthy again, Health says %v", err)
	}
}
