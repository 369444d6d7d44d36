package push

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/twicehq/twice/collectors/jsonl"
	"github.com/twicehq/twice/sources"
	"github.com/twicehq/twice/twicetype"
)

var parsers = sync.Pool{New: func() any { return jsonl.NewParser() }}

// ParseLine parses one line of the event format (spec §1) exactly as a
// line of a file is parsed; source and line say where it came from
// (Event.Source, Event.Line). The error is a *jsonl.ParseError whose
// Error is the reason. Safe for concurrent use.
func ParseLine(b []byte, source string, line int64) (twicetype.Event, error) {
	p := parsers.Get().(*jsonl.Parser)
	defer parsers.Put(p)
	ev := twicetype.Event{Source: source, Line: line}
	if err := p.Parse(b, &ev); err != nil {
		return twicetype.Event{}, err
	}
	return ev, nil
}

// BuildEvent writes obj (a struct or map with the fields of spec §1) as
// JSON and parses it with ParseLine, so a tapped event is valid exactly
// when the same line in a file would be, and its identity is that of its
// id.
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

// Effect is an effect observed by a push tap: an email received, a
// webhook delivered, a provider's delivery event.
type Effect struct {
	// ID is the event's id: stable for the same observation sent again
	// (derived from what the client sent, never from when it arrived).
	ID string `json:"id"`
	// Time is when the effect happened (or was received).
	Time time.Time `json:"-"`
	// Effect and EffectKey are required; the others are left out when
	// empty.
	Effect    string         `json:"effect"`
	EffectKey string         `json:"effect_key"`
	JobID     string         `json:"job_id,omitempty"`
	Attempt   int64          `json:"attempt,omitempty"`
	Key       string         `json:"key,omitempty"`
	Entity    string         `json:"entity,omitempty"`
	Attrs     map[string]any `json:"attrs,omitempty"`
}

// Event returns the effect as a normalized event (BuildEvent); source
// and line say where it was received.
func (e Effect) Event(source string, line int64) (twicetype.Event, error) {
	type wire struct {
		TS   string `json:"ts"`
		Kind string `json:"kind"`
		Effect
	}
	return BuildEvent(wire{TS: e.Time.UTC().Format(time.RFC3339Nano), Kind: "effect", Effect: e}, source, line)
}

// EventRecord is a Record of ev, for Submit.
func EventRecord(ev twicetype.Event) sources.Record { return sources.Record{Event: &ev} }
