package jsonl

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/twicehq/twice/twicetype"
)

// JobEvent is the JSON form of a job event (spec §1) that the queue taps
// write and then parse with BuildEvent: encoding/json writes it in field
// order, without the empty fields.
type JobEvent struct {
	ID      string          `json:"id"`
	TS      string          `json:"ts"`
	Kind    string          `json:"kind"`
	Queue   string          `json:"queue,omitempty"`
	JobType string          `json:"job_type,omitempty"`
	JobID   string          `json:"job_id"`
	Attempt int64           `json:"attempt,omitempty"`
	Key     string          `json:"key,omitempty"`
	Entity  string          `json:"entity,omitempty"`
	Retry   *bool           `json:"retry,omitempty"`
	Error   string          `json:"error,omitempty"`
	Attrs   json.RawMessage `json:"attrs,omitempty"`
}

var parsers = sync.Pool{New: func() any { return NewParser() }}

// ParseLine parses one line of the event format exactly as a line of a
// file is parsed; source and line say where it came from (Event.Source,
// Event.Line). The error is a *ParseError whose Error is the reason.
// Safe for concurrent use.
func ParseLine(b []byte, source string, line int64) (twicetype.Event, error) {
	p := parsers.Get().(*Parser)
	defer parsers.Put(p)
	ev := twicetype.Event{Source: source, Line: line}
	if err := p.Parse(b, &ev); err != nil {
		return twicetype.Event{}, err
	}
	return ev, nil
}

// BuildEvent writes obj (a JobEvent, or any struct or map with the
// fields of spec §1) as JSON and parses it with ParseLine, so an event a
// tap builds is valid exactly when the same line in a file would be, and
// its identity is that of its id. Safe for concurrent use.
func BuildEvent(obj any, source string, line int64) (twicetype.Event, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return twicetype.Event{}, fmt.Errorf("encode event: %w", err)
	}
	ev, err := ParseLine(b, source, line)
	if err != nil {
		return twicetype.Event{}, fmt.Errorf("event %s: %w", b, err)
	}
	return ev, nil
}
