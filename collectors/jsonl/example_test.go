package jsonl_test

import (
	"fmt"

	"github.com/twicehq/twice/collectors/jsonl"
	"github.com/twicehq/twice/twicetype"
)

func ExampleParser_Parse() {
	var p jsonl.Parser
	ev := twicetype.Event{Source: "events.jsonl", Line: 1}
	err := p.Parse([]byte(`{"ts":"2026-11-24T11:00:00+01:00","kind":"effect","effect":"email.sent","effect_key":"receipt/payment:123","job_id":"j-1"}`), &ev)
	fmt.Println(err, ev.Kind, ev.Effect, ev.EffectKey, ev.JobID, twicetype.FormatTime(ev.Time))

	err = p.Parse([]byte(`{"ts":1795514400000,"kind":"job.started","job_id":"j-1","attempt":0}`), &ev)
	fmt.Println(err)
	// Output:
	// <nil> effect email.sent receipt/payment:123 j-1 2026-11-24T10:00:00.000Z
	// field "attempt": want an integer ≥ 1, got 0
}

func ExampleCanonicalize() {
	c, _ := jsonl.Canonicalize([]byte(`{ "ts": 1, "attrs": {"b": 1.0, "a": "\u0061"}, "kind": "state" }`))
	fmt.Println(string(c))
	// Output:
	// {"attrs":{"a":"a","b":1.0},"kind":"state","ts":1}
}
