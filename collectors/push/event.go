package push

import (
	"time"

	"github.com/twicehq/twice/collectors/jsonl"
	"github.com/twicehq/twice/sources"
	"github.com/twicehq/twice/twicetype"
)

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

// Event returns the effect as a normalized event (jsonl.BuildEvent); source
// and line say where it was received.
func (e Effect) Event(source string, line int64) (twicetype.Event, error) {
	type wire struct {
		TS   string `json:"ts"`
		Kind string `json:"kind"`
		Effect
	}
	return jsonl.BuildEvent(wire{TS: e.Time.UTC().Format(time.RFC3339Nano), Kind: "effect", Effect: e}, source, line)
}

// EventRecord is a Record of ev, for Submit.
func EventRecord(ev twicetype.Event) sources.Record { return sources.Record{Event: &ev} }
