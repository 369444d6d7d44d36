package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/gate"
	"github.com/twicehq/twice/reports"
	"github.com/twicehq/twice/storage/clickhouse"
	"github.com/twicehq/twice/twicetype"
)

// timeRange reads --since and --until.
func timeRange(f auditFlags) (since, until time.Time, err error) {
	if f.since != "" {
		if since, err = time.Parse(time.RFC3339Nano, f.since); err != nil {
			return since, until, usageErr("--since: want an RFC 3339 time like 2026-11-24T10:00:00Z, got %q", f.since)
		}
	}
	if f.until != "" {
		if until, err = time.Parse(time.RFC3339Nano, f.until); err != nil {
			return since, until, usageErr("--until: want an RFC 3339 time like 2026-11-25T00:00:00Z, got %q", f.until)
		}
	}
	if !since.IsZero() && !until.IsZero() && !until.After(since) {
		return since, until, usageErr("--until %s is not after --since %s", f.until, f.since)
	}
	return since, until, nil
}

// openStore opens the ClickHouse store of --to, creating its tables.
func openStore(ctx context.Context, dsn string) (*clickhouse.Store, error) {
	st, err := clickhouse.Open(dsn, clickhouse.Options{})
	if err != nil {
		return nil, usageErr("--to: %v", err)
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, inputErr(fmt.Errorf("--to: %w", err))
	}
	return st, nil
}

// auditStore runs the detectors as SQL inside ClickHouse over the events
// stored there (--from), and reports like any audit.
func auditStore(cmd *cobra.Command, e env, f auditFlags, cfg *config.Config, failOn twicetype.Severity, args []string, since, until time.Time, base *gate.Baseline) error {
	if len(args) > 0 {
		return usageErr("--from audits the events stored in ClickHouse; it takes no files or sources")
	}
	if f.to != "" {
		return usageErr("--from and --to: the events are in the store already")
	}
	if f.strict {
		return usageErr("--strict applies to files and topics; the store keeps malformed lines apart")
	}
	st, err := clickhouse.Open(f.from, clickhouse.Options{})
	if err != nil {
		return usageErr("--from: %v", err)
	}
	defer st.Close()
	source := st.DSN().String()
	reporter, err := reports.New(f.format, reportOptions(e, f, source, failOn))
	if err != nil {
		return usageErr("--format: %v", err)
	}
	out, err := createReportFile(f.output)
	if err != nil {
		return usageErr("-o: %v", err)
	}
	defer out.abort()
	rep, err := st.Audit(cmd.Context(), clickhouse.AuditOptions{Config: cfg, Since: since, Until: until})
	if err != nil {
		return inputErr(fmt.Errorf("--from %s: %w", source, err))
	}
	// The findings stay where the events are, stamped with the range.
	if err := st.WriteFindings(cmd.Context(), rep, time.Now(), since, until); err != nil {
		return inputErr(fmt.Errorf("--from %s: %w", source, err))
	}
	rep.Summary.Warnings = append(rep.Summary.Warnings, coverageWarnings(cfg, &rep.Summary, nil)...)
	applyGate(rep, cfg, base, f.baseline)
	if err := writeReport(e, out, reporter, rep); err != nil {
		return inputErr(err)
	}
	return exitFor(rep, failOn, f.strictCov)
}

// exitFor returns the exit of an audit: findings at or above failOn
// exit 1, unless the baseline accepts them or their detector is within
// budget (Report.Gate); else, under --strict-coverage, warnings exit
// exitCoverage.
func exitFor(rep *twicetype.Report, failOn twicetype.Severity, strictCoverage bool) error {
	if failOn != twicetype.SeverityNone {
		for _, fd := range rep.Findings {
			if fd.Severity >= failOn && rep.Gate.Exempt(&fd) == "" {
				return &exitError{code: exitFindings}
			}
		}
	}
	if n := len(rep.Summary.Warnings); strictCoverage && n > 0 {
		return &exitError{code: exitCoverage, err: fmt.Errorf("--strict-coverage: the report has %d warning(s): not everything was checked", n)}
	}
	return nil
}
