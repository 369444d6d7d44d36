package config

import (
	"errors"
	"os"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, that every error is a
// list of *Error, and that whatever Parse accepts passes Validate.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("testdata/config.yaml"); err == nil {
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"# comment\n",
		"expect:\n  - job_type: A\n    effect: e\n    effect_key: \"{{attrs.x.y}}/{{key}}\"\n    within: 1m\n    count: 2\n",
		"detectors: {lost-job: {lost_after: 0s}, dup: {}}\n",
		"sources:\n  - {name: a, path: x}\n  - {name: a, paths: []}\n",
		"engine: {lateness: 0s, reorder_buffer: 0x10, horizon: 1h}\n",
		"a: &a {b: *a}\n",
		"expect:\n  - &r {job_type: A, effect: e, effect_key: k}\n  - <<: [*r, *r]\n    count: !!int 3\n",
		"redact: [key, key, !!binary aGk=]\n",
		"---\n---\n",
		"? - x\n: y\n",
		"sources:\n  - {name: k, type: kafka, brokers: [b:1], topics: [t], format: map, map: {ts: timestamp, kind: 'value.k ?? \"state\"'}, start: 2026-11-24T10:00:00Z}\n",
		"watch: {listen: \":0\", findings: [{type: file, path: f}, {type: kafka, brokers: [b:1], topic: t}], limits: {max_jobs: 0}, dead_letter_max_bytes: 1KiB}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("twice.yaml", data)
		if err != nil {
			if c != nil {
				t.Fatal("Parse returned a configuration with an error")
			}
			errs := []error{err}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			}
			for _, e := range errs {
				var ce *Error
				if !errors.As(e, &ce) || ce.Msg == "" {
					t.Fatalf("error %q (%T) is not an *Error", e, e)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate rejects: %v\n%s", err, data)
		}
	})
}
