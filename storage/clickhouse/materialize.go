package clickhouse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
)

// materialize computes the audit's two costliest CTEs once, into tables
// of their own, and points the query set at them: ev (the counted events:
// finding the repeated copies groups every event by identity) and jf (the
// per-job first values, an aggregation over every job event with its
// attrs). Without it, each of the dozen queries of an audit deduplicates
// and aggregates all events again.
//
// The tables are MergeTree tables in the events table's database, named
// twice_audit_{ev,jf}_<random>, dropped by the returned function (which
// the audit defers). ev keeps every column of the CTE but attrs and
// attrs_flat, which only jf reads. When they cannot be created (a user
// without CREATE TABLE, say), the audit runs on the CTEs as before:
// the same report, slower.
func (a *auditRun) materialize(ctx context.Context) (func(), error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return func() {}, nil
	}
	prefix := ""
	if i := strings.LastIndexByte(a.s.tables.Events, '.'); i >= 0 {
		prefix = a.s.tables.Events[:i+1]
	}
	suffix := hex.EncodeToString(b[:])
	ev, jf := prefix+"twice_audit_ev_"+suffix, prefix+"twice_audit_jf_"+suffix
	drop := func() {
		c := context.WithoutCancel(ctx)
		_ = a.s.conn.Exec(c, "DROP TABLE IF EXISTS "+ev)
		_ = a.s.conn.Exec(c, "DROP TABLE IF EXISTS "+jf)
	}
	stmts := []string{
		"CREATE TABLE " + jf + " ENGINE = MergeTree ORDER BY job_id AS\n" + a.q.with() + "\nSELECT * FROM jf",
		"CREATE TABLE " + ev + " ENGINE = MergeTree ORDER BY o AS\n" + a.q.with() + "\nSELECT * EXCEPT (attrs, attrs_flat) FROM ev",
	}
	for _, s := range stmts {
		if err := a.s.conn.Exec(ctx, s); err != nil {
			drop()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("clickhouse: materialize: %w", err)
			}
			return func() {}, nil
		}
	}
	a.q.evTable, a.q.jfTable = ev, jf
	return drop, nil
}
