package twicetype

import "fmt"

// Kind is the kind of a normalized event (spec §1).
type Kind uint8

// The kinds of normalized events. KindUnknown is the zero value and never
// appears on a valid event.
const (
	KindUnknown Kind = iota
	JobEnqueued
	JobStarted
	JobSucceeded
	JobFailed
	JobDead
	JobDiscarded
	Effect
	State
)

var kindNames = [...]string{
	KindUnknown:  "unknown",
	JobEnqueued:  "job.enqueued",
	JobStarted:   "job.started",
	JobSucceeded: "job.succeeded",
	JobFailed:    "job.failed",
	JobDead:      "job.dead",
	JobDiscarded: "job.discarded",
	Effect:       "effect",
	State:        "state",
}

// String returns the kind as it is written in events.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// IsJob reports whether the kind is one of the job.* kinds.
func (k Kind) IsJob() bool { return k >= JobEnqueued && k <= JobDiscarded }

// ParseKind returns the kind named s, or false when s names no kind.
func ParseKind(s string) (Kind, bool) {
	switch s {
	case "job.enqueued":
		return JobEnqueued, true
	case "job.started":
		return JobStarted, true
	case "job.succeeded":
		return JobSucceeded, true
	case "job.failed":
		return JobFailed, true
	case "job.dead":
		return JobDead, true
	case "job.discarded":
		return JobDiscarded, true
	case "effect":
		return Effect, true
	case "state":
		return State, true
	}
	return KindUnknown, false
}

// Event is one normalized observation (spec §1). Optional integer and
// boolean fields come with a Has flag, because zero is a value.
//
// Strings that appear in many events (kind, queue, job type, effect type)
// may be interned by the collector; code must never modify them.
type Event struct {
	// ID is the event's own id, "" when it had none.
	ID string
	// Identity is the 64-bit hash that decides whether two events are the
	// same observation: of ID when present, else of the canonical content.
	Identity uint64
	// Time is the event time in Unix nanoseconds.
	Time int64
	Kind Kind
	// SecondsLikeTS is set when ts was an integer that, read as Unix
	// milliseconds (spec §1), falls before 2001-01-01: most likely Unix
	// seconds, which put the event in January 1970. It sits beside Kind,
	// in what would be padding.
	SecondsLikeTS bool

	Queue     string
	JobType   string
	JobID     string
	Key       string
	Effect    string
	EffectKey string
	Entity    string
	Error     string

	Attempt     int64
	HasAttempt  bool
	Seq         int64
	HasSeq      bool
	Terminal    bool
	HasTerminal bool
	Retry       bool
	HasRetry    bool

	// Attrs is the raw JSON object of the attrs field, nil when absent.
	Attrs []byte

	// Source and Line say where the event was read: a file path (or "-"),
	// a topic/partition, and the line or offset within it.
	Source string
	Line   int64
}

// Ref is how reports name the event: its id, or where it was read when it
// had no id.
func (e *Event) Ref() string {
	if e.ID != "" {
		return e.ID
	}
	return fmt.Sprintf("%s:%d", e.Source, e.Line)
}
