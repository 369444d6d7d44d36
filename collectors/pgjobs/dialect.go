package pgjobs

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The states of a job row, as the tracker knows them: River's and Oban's
// names map onto these (Oban's executing is Running, its suspended and
// River's pending are Waiting).
const (
	StateAvailable = "available"
	StateScheduled = "scheduled"
	StateWaiting   = "waiting"
	StateRunning   = "running"
	StateRetryable = "retryable"
	StateCompleted = "completed"
	StateDiscarded = "discarded"
	StateCancelled = "cancelled"
)

// finalStates are the states a job leaves only when an operator retries it.
var finalStates = []string{StateCompleted, StateDiscarded, StateCancelled}

// final reports whether a tracker state is final.
func final(s string) bool {
	return s == StateCompleted || s == StateDiscarded || s == StateCancelled
}

// Dialect is what one queue's job table looks like: its name, columns and
// states, the payload paths start from, and the channels its clients
// notify on insert. River and Oban each have one.
type Dialect struct {
	// Type is the source type (river, oban); IDPrefix starts every event
	// id.
	Type, IDPrefix string
	// Table is the table's name in its schema (river_job, oban_jobs), and
	// StateType the enum type of its state column.
	Table, StateType string
	// SchemaKey is the config key of the schema (schema, prefix).
	SchemaKey string
	// Roots are the members a payload path may start with.
	Roots []string
	// JobType, Meta, Tags, Created are the columns of the job's name, its
	// metadata (jsonb), its tags (text[]) and its insert time; Finalized
	// is an expression of the time the job reached its final state.
	JobType, Meta, Tags, Created, Finalized string
	// States maps the table's state names to the tracker's.
	States map[string]string
	// Channels are the NOTIFY channels the queue's clients signal inserts
	// on, given the schema.
	Channels func(schema string) []string
	// ErrorAtStart is set when an errors entry's "at" is when its attempt
	// began (River), not when it failed (Oban).
	ErrorAtStart bool
	// TimestampTZ is false when the table's times are timestamp without
	// time zone, in UTC (Oban).
	TimestampTZ bool
}

// table is the quoted schema.table.
func (d *Dialect) table(schema string) string {
	return pgx.Identifier{schema, d.Table}.Sanitize()
}

// ts is a time column as timestamptz.
func (d *Dialect) ts(col string) string {
	if d.TimestampTZ {
		return col
	}
	return "(" + col + " AT TIME ZONE 'UTC')"
}

// rawStates are the table's names of the tracker states in want.
func (d *Dialect) rawStates(want ...string) []string {
	var out []string
	for raw, s := range d.States {
		for _, w := range want {
			if s == w {
				out = append(out, raw)
			}
		}
	}
	return out
}

// lightColumns are what a poll reads of every row it follows, to tell
// whether it changed.
func (d *Dialect) lightColumns() string {
	return "id, state::text, attempt, coalesce(cardinality(errors), 0), " + d.ts("attempted_at") + ", " + d.ts(d.Finalized)
}

// fullColumns are what a poll reads of a new or changed row.
func (d *Dialect) fullColumns() string {
	return d.lightColumns() + ", queue, " + d.JobType + ", args::text, coalesce(" + d.Meta + "::text, '{}'), coalesce(to_json(" + d.Tags + ")::text, '[]'), " +
		d.ts(d.Created) + ", " + d.ts("scheduled_at") + ", coalesce(array_to_json(errors)::text, '[]')"
}

// Row is one job row as read: what the tracker needs of it.
type Row struct {
	ID          int64
	State       string // a tracker state (StateAvailable…)
	RawState    string // the table's own
	Attempt     int64
	NErrors     int64
	AttemptedAt time.Time // zero when never attempted
	FinalizedAt time.Time // zero when not final

	Queue, JobType string
	Args, Meta     json.RawMessage
	Tags           json.RawMessage
	CreatedAt      time.Time
	ScheduledAt    time.Time
	Errors         []AttemptError
}

// AttemptError is one entry of a row's errors array: River's
// rivertype.AttemptError and Oban's formatted attempt are both
// {attempt, at, error}.
type AttemptError struct {
	Attempt int64
	At      time.Time
	Error   string
}

// sig is what tells a followed row changed.
func (r *Row) sig() string {
	return fmt.Sprintf("%s/%d/%d/%d/%d", r.RawState, r.Attempt, r.NErrors, unixOrZero(r.AttemptedAt), unixOrZero(r.FinalizedAt))
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// parseErrors reads a row's errors array (JSON of jsonb[]).
func parseErrors(raw string) ([]AttemptError, error) {
	var items []struct {
		Attempt json.Number `json:"attempt"`
		At      string      `json:"at"`
		Error   any         `json:"error"`
	}
	if err := json.Unmarshal([]byte(raw), &items); err != nil {
		return nil, fmt.Errorf("errors: %w", err)
	}
	out := make([]AttemptError, 0, len(items))
	for i, it := range items {
		a, err := it.Attempt.Int64()
		if err != nil || a < 1 {
			return nil, fmt.Errorf("errors[%d]: attempt %q is not a run number", i, it.Attempt)
		}
		at, err := parseTime(it.At)
		if err != nil {
			return nil, fmt.Errorf("errors[%d]: at: %w", i, err)
		}
		var msg string
		switch v := it.Error.(type) {
		case string:
			msg = v
		case nil:
		default:
			b, _ := json.Marshal(v)
			msg = string(b)
		}
		out = append(out, AttemptError{Attempt: a, At: at, Error: msg})
	}
	return out, nil
}

// parseTime reads an RFC 3339 time, or one without offset (UTC), as
// Elixir's NaiveDateTime writes it.
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", strings.TrimSuffix(s, "Z"), time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a time", s)
	}
	return t, nil
}
