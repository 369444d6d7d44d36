package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twicehq/twice/twicetype"
)

// WriteFindings stores a report's findings in the findings table, stamped
// with auditedAt and the audited range (zero times: open). The table keeps
// the latest row per detector and fingerprint.
func (s *Store) WriteFindings(ctx context.Context, rep *twicetype.Report, auditedAt, since, until time.Time) error {
	if s.conn == nil {
		return errClosed
	}
	if len(rep.Findings) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.tables.Findings+
		" (audited_at, since, until, detector, severity, subject, fingerprint, count, first_ts, last_ts, jobs, events, cause, message, details)")
	if err != nil {
		return fmt.Errorf("clickhouse: insert into %s: %w", s.tables.Findings, err)
	}
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	for i := range rep.Findings {
		f := &rep.Findings[i]
		details, err := json.Marshal(f.Details)
		if err != nil {
			_ = b.Abort()
			return fmt.Errorf("clickhouse: finding %s: details: %w", f.Fingerprint, err)
		}
		if err := b.Append(auditedAt.UTC(), opt(since), opt(until), f.Detector, f.Severity.String(), f.Subject,
			f.Fingerprint, f.Count, time.Unix(0, f.FirstTime).UTC(), time.Unix(0, f.LastTime).UTC(),
			f.Jobs, f.Events, f.Cause, f.Message, string(details)); err != nil {
			_ = b.Abort()
			return err
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("clickhouse: insert into %s: %w", s.tables.Findings, err)
	}
	return nil
}
