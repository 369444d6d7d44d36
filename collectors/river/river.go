// Package river taps River (riverqueue.com), the Go job queue on
// Postgres: the collector behind a twice.yaml source of type river (spec
// §3.1). It reads the river_job table of the configured schema by polling
// it with SELECT only (no lock, no write), and wakes early on River's
// insert notifications; the polling, the reconstruction of attempts from
// a row's attempt, attempted_at, errors and finalized_at, and the lost
// coverage are package pgjobs's, shared with Oban.
//
// One lane, "SCHEMA.river_job"; its position is the tracker's state
// (the id cursor and what was emitted per unfinished job), so a
// restarted watch emits each event once; Commit does nothing upstream.
//
// docs/sources/river.md is the user documentation.
package river

import (
	"github.com/twicehq/twice/collectors/pgjobs"
	"github.com/twicehq/twice/sources"
)

// Type is the source type of River in twice.yaml.
const Type = "river"

// Dialect is River's river_job table (migrations 002–006 of River's
// riverpgxv5 driver; River v0.51).
var Dialect = &pgjobs.Dialect{
	Type: Type, IDPrefix: "river",
	Table: "river_job", StateType: "river_job_state", SchemaKey: "schema",
	Roots:   []string{"args", "metadata", "tags"},
	JobType: "kind", Meta: "metadata", Tags: "tags", Created: "created_at", Finalized: "finalized_at",
	States: map[string]string{
		"available": pgjobs.StateAvailable,
		"scheduled": pgjobs.StateScheduled,
		"pending":   pgjobs.StateWaiting,
		"running":   pgjobs.StateRunning,
		"retryable": pgjobs.StateRetryable,
		"completed": pgjobs.StateCompleted,
		"discarded": pgjobs.StateDiscarded,
		"cancelled": pgjobs.StateCancelled,
	},
	// River ≥ 0.5 notifies SCHEMA.river_insert from its client; older
	// schemas (before migration 004) had a trigger on river_insert.
	Channels: func(schema string) []string { return []string{schema + ".river_insert", "river_insert"} },
	// River's AttemptError.At is the executor's start of the attempt.
	ErrorAtStart: true,
	TimestampTZ:  true,
}

// Factory is the source factory of type river (sources.HistoryFactory):
// `twice watch` polls river_job, `twice audit` reads it as it is now. Its
// settings are a *pgjobs.Config.
var Factory sources.HistoryFactory = pgjobs.Tap{D: Dialect}
