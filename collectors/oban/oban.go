// Package oban taps Oban (getoban.pro), the Elixir job queue on Postgres:
// the collector behind a twice.yaml source of type oban (spec §3.1). It
// reads the oban_jobs table of the configured prefix by polling it with
// SELECT only (no lock, no write), and wakes early on Oban's insert
// notifications (PREFIX.oban_insert); the polling, the reconstruction of
// attempts from a row's attempt, attempted_at, errors and completed_at /
// discarded_at / cancelled_at, and the lost coverage are package
// pgjobs's, shared with River.
//
// One lane, "PREFIX.oban_jobs"; its position is the tracker's state (the
// id cursor and what was emitted per unfinished job), so a restarted
// watch emits each event once; Commit does nothing upstream.
//
// docs/sources/oban.md is the user documentation.
package oban

import (
	"github.com/twicehq/twice/collectors/pgjobs"
	"github.com/twicehq/twice/sources"
)

// Type is the source type of Oban in twice.yaml.
const Type = "oban"

// Dialect is Oban's oban_jobs table (Oban's Postgres migrations v01–v14;
// testdata/oban_jobs.sql).
var Dialect = &pgjobs.Dialect{
	Type: Type, IDPrefix: "oban",
	Table: "oban_jobs", StateType: "oban_job_state", SchemaKey: "prefix",
	Roots:   []string{"args", "meta", "tags"},
	JobType: "worker", Meta: "meta", Tags: "tags", Created: "inserted_at",
	Finalized: "CASE state WHEN 'completed' THEN completed_at WHEN 'discarded' THEN discarded_at WHEN 'cancelled' THEN cancelled_at END",
	States: map[string]string{
		"available": pgjobs.StateAvailable,
		"scheduled": pgjobs.StateScheduled,
		"suspended": pgjobs.StateWaiting,
		"executing": pgjobs.StateRunning,
		"retryable": pgjobs.StateRetryable,
		"completed": pgjobs.StateCompleted,
		"discarded": pgjobs.StateDiscarded,
		"cancelled": pgjobs.StateCancelled,
	},
	// Oban's Postgres notifier sends PREFIX.oban_insert; before Oban 2.14
	// (migration v12) a trigger did.
	Channels: func(prefix string) []string { return []string{prefix + ".oban_insert"} },
	// Oban's error "at" is when the attempt failed; times are timestamp
	// without time zone, in UTC.
	ErrorAtStart: false,
	TimestampTZ:  false,
}

// Factory is the source factory of type oban (sources.HistoryFactory):
// `twice watch` polls oban_jobs, `twice audit` reads it as it is now. Its
// settings are a *pgjobs.Config.
var Factory sources.HistoryFactory = pgjobs.Tap{D: Dialect}
