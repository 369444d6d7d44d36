package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/collectors/kafka/mapexpr"
	"github.com/twicehq/twice/keytemplate"
	"github.com/twicehq/twice/twicetype"
)

// parseOK parses src and fails the test on error.
func parseOK(tb testing.TB, src string) *Config {
	tb.Helper()
	c, err := Parse("twice.yaml", []byte(src))
	if err != nil {
		tb.Fatalf("Parse:\n%s\n\nerror:\n%v", src, err)
	}
	if err := c.Validate(); err != nil {
		tb.Fatalf("Validate after Parse: %v", err)
	}
	return c
}

func TestDefault(t *testing.T) {
	t.Parallel()
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if len(c.Sources) != 0 || len(c.Expect) != 0 || len(c.Redact) != 0 {
		t.Errorf("Default() has sources, rules or redactions: %+v", c)
	}
	want := Engine{Lateness: LatenessUnbounded, ReorderBuffer: 100000, Horizon: 24 * time.Hour}
	if c.Engine != want {
		t.Errorf("Engine = %+v, want %+v", c.Engine, want)
	}
	severities := map[string]twicetype.Severity{
		"duplicate-effect":      twicetype.High,
		"missing-effect":        twicetype.High,
		"effect-before-failure": twicetype.Medium,
		"duplicate-execution":   twicetype.Low,
		"out-of-order":          twicetype.High,
		"stale-execution":       twicetype.Medium,
		"effect-after-terminal": twicetype.High,
		"lost-job":              twicetype.High,
		"retry-storm":           twicetype.Medium,
		"dead-letter":           twicetype.Medium,
	}
	if len(c.Detectors) != len(severities) {
		t.Errorf("Default() has %d detectors, want %d", len(c.Detectors), len(severities))
	}
	for id, sev := range severities {
		want := Detector{
			Enabled:       true,
			Severity:      sev,
			MaxPerKey:     1,
			MaxStartDelay: 15 * time.Minute,
			LostAfter:     time.Hour,
			Window:        time.Minute,
			Amplification: 2.0,
			MinAttempts:   20,
		}
		if got := c.Detectors[id]; got != want {
			t.Errorf("Detectors[%q] = %+v, want %+v", id, got, want)
		}
	}
	wantWatch := Watch{
		StateDir:           "./twice-state",
		Listen:             "127.0.0.1:8080",
		CheckpointInterval: time.Second,
		SnapshotInterval:   time.Minute,
		IdleTimeout:        5 * time.Second,
		IdleAdvance:        true,
		Findings:           []Sink{{Type: "stdout"}},
		Limits:             Limits{MaxJobs: 1_000_000, MaxEffectKeys: 1_000_000, MaxEntities: 1_000_000, MaxIdentities: 10_000_000},
		DeadLetterMaxBytes: 64 << 20,
	}
	if !reflect.DeepEqual(c.Watch, wantWatch) {
		t.Errorf("Watch = %+v, want %+v", c.Watch, wantWatch)
	}
	// Default returns a fresh configuration each time.
	c.Detectors["lost-job"] = Detector{}
	if Default().Detectors["lost-job"].LostAfter != time.Hour {
		t.Error("Default() shares its detector map")
	}
}

func TestParseEmpty(t *testing.T) {
	t.Parallel()
	for _, src := range []string{
		"",
		"\n\n",
		"# only a comment\n  # and another\n",
		"---\n",
		"---\n# comment\n...\n",
		"~\n",
		"null",
		"sources:\nexpect:\ndetectors:\nredact:\nengine:\n",
		"sources: []\nexpect: []\ndetectors: {}\nredact: []\nengine: {}\n",
		"\ufeff# BOM\n",
	} {
		c := parseOK(t, src)
		if !reflect.DeepEqual(c, Default()) {
			t.Errorf("Parse(%q) = %+v, want Default()", src, c)
		}
	}
}

// TestTestdataConfig loads the complete example and checks every value.
func TestTestdataConfig(t *testing.T) {
	t.Parallel()
	c, err := Load("testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}

	wantSources := []Source{
		// Load makes relative paths relative to the file's folder; a
		// source named after its path keeps the path as written.
		{Name: "production", Type: "file", Paths: []string{"testdata/events/2026-11-24.jsonl.gz", "testdata/events/2026-11-25.jsonl"}, Line: 10},
		{Name: "events/today.jsonl", Type: "file", Paths: []string{"testdata/events/today.jsonl"}, Line: 16},
		{Name: "jobs", Type: "kafka", Line: 20, Kafka: &KafkaSource{
			Brokers: []string{"kafka-1:9092", "kafka-2:9092"},
			Topics:  []string{"job-events", "effects"},
			Group:   "twice-prod",
			Format:  "twice",
			Start:   "latest",
		}},
		{Name: "mailer", Type: "kafka", Line: 32, Kafka: &KafkaSource{
			Brokers:    []string{"localhost:9092"},
			Topics:     []string{"mailer.log"},
			Group:      "twice",
			Format:     "map",
			Start:      "time",
			StartTime:  time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC),
			DeadLetter: "/var/lib/twice/mailer.dead.jsonl",
		}},
	}
	// The map's programs are compared by what they say and where.
	var maps []string
	for _, s := range c.Sources {
		if s.Kafka == nil {
			continue
		}
		for _, f := range s.Kafka.Map {
			maps = append(maps, fmt.Sprintf("%d:%d %s: %s", f.Line, f.Column, f.Field, f.Expr))
		}
		s.Kafka.Map = nil
	}
	if !reflect.DeepEqual(c.Sources, wantSources) {
		t.Errorf("Sources =\n%+v\nwant\n%+v", c.Sources, wantSources)
	}
	wantMaps := []string{
		`38:11 id: value.uuid`,
		`39:11 ts: timestamp`,
		`40:13 kind: value.type == "sent" ? "effect" : "state"`,
		`41:14 queue: topic`,
		`42:15 effect: "email." + value.type`,
		`43:19 effect_key: "receipt/" + value.payment_id`,
		`44:15 entity: key`,
		`45:12 seq: value.version`,
		`46:14 attrs: {"trace": headers["trace-id"]}`,
	}
	if !slices.Equal(maps, wantMaps) {
		t.Errorf("map =\n%s\nwant\n%s", strings.Join(maps, "\n"), strings.Join(wantMaps, "\n"))
	}
	wantWatch := Watch{
		StateDir:           "/var/lib/twice",
		Listen:             ":9090",
		CheckpointInterval: 5 * time.Second,
		SnapshotInterval:   10 * time.Minute,
		IdleTimeout:        30 * time.Second,
		Findings: []Sink{
			{Type: "stdout", Line: 112},
			{Type: "file", Path: "/var/log/twice/findings.jsonl", Line: 113},
			{Type: "kafka", Brokers: []string{"kafka-1:9092"}, Topic: "twice-findings", Line: 114},
		},
		Limits:             Limits{MaxJobs: 2000000, MaxEffectKeys: 500000, MaxEntities: 0, MaxIdentities: 5_000_000},
		DeadLetterMaxBytes: 16 << 20,
	}
	if !reflect.DeepEqual(c.Watch, wantWatch) {
		t.Errorf("Watch =\n%+v\nwant\n%+v", c.Watch, wantWatch)
	}

	type rule struct {
		JobType, Effect, EffectKey string
		Within                     time.Duration
		Count, Line                int
	}
	var rules []rule
	for _, r := range c.Expect {
		rules = append(rules, rule{r.JobType, r.Effect, r.EffectKey.String(), r.Within, r.Count, r.Line})
	}
	wantRules := []rule{
		{"SendReceipt", "email.sent", "receipt/{{key}}", 10 * time.Minute, 2, 56},
		{"ChargeCard", "ledger.insert", "{{job_type}}:{{ attrs.payment_id }}", 90 * time.Second, 1, 61},
	}
	if !reflect.DeepEqual(rules, wantRules) {
		t.Errorf("Expect =\n%+v\nwant\n%+v", rules, wantRules)
	}
	key, ok := c.Expect[1].EffectKey.Render(keytemplate.Fields{JobType: "ChargeCard", Attrs: []byte(`{"payment_id":"p-1"}`)})
	if !ok || key != "ChargeCard:p-1" {
		t.Errorf("rendered effect_key = %q, %v", key, ok)
	}

	def := Default().Detectors
	with := func(id string, f func(d *Detector)) Detector {
		d := def[id]
		f(&d)
		return d
	}
	wantDetectors := map[string]Detector{
		"duplicate-effect": with("duplicate-effect", func(d *Detector) { d.Severity = twicetype.Critical; d.MaxPerKey = 2 }),
		"missing-effect":   with("missing-effect", func(d *Detector) { d.Severity = twicetype.Medium }),
		"effect-before-failure": with("effect-before-failure", func(d *Detector) {
			d.Enabled = false
			d.Severity = twicetype.High
		}),
		"duplicate-execution": with("duplicate-execution", func(d *Detector) { d.Severity = twicetype.Medium }),
		"out-of-order": with("out-of-order", func(d *Detector) {
			d.Enabled = false
			d.Severity = twicetype.Critical
		}),
		"stale-execution": with("stale-execution", func(d *Detector) {
			d.Severity = twicetype.Low
			d.MaxStartDelay = 30 * time.Minute
		}),
		"effect-after-terminal": with("effect-after-terminal", func(d *Detector) { d.Severity = twicetype.Critical }),
		"lost-job": with("lost-job", func(d *Detector) {
			d.Severity = twicetype.Medium
			d.LostAfter = 2 * time.Hour
		}),
		"retry-storm": with("retry-storm", func(d *Detector) {
			d.Severity = twicetype.High
			d.Window = 5 * time.Minute
			d.Amplification = 3.5
			d.MinAttempts = 50
		}),
		"dead-letter": with("dead-letter", func(d *Detector) {
			d.Enabled = false
			d.Severity = twicetype.Low
		}),
	}
	if !reflect.DeepEqual(c.Detectors, wantDetectors) {
		for id := range wantDetectors {
			if c.Detectors[id] != wantDetectors[id] {
				t.Errorf("Detectors[%q] = %+v, want %+v", id, c.Detectors[id], wantDetectors[id])
			}
		}
		t.Errorf("Detectors has %d entries, want %d", len(c.Detectors), len(wantDetectors))
	}
	// The example changes every value from its default.
	for id, d := range c.Detectors {
		if d.Severity == def[id].Severity {
			t.Errorf("testdata/config.yaml leaves %s.severity at its default", id)
		}
	}

	if want := []string{"key", "effect_key", "entity", "error"}; !slices.Equal(c.Redact, want) {
		t.Errorf("Redact = %q, want %q", c.Redact, want)
	}
	if want := (Engine{Lateness: 2 * time.Minute, ReorderBuffer: 5000, Horizon: 48 * time.Hour}); c.Engine != want {
		t.Errorf("Engine = %+v, want %+v", c.Engine, want)
	}
}

func TestParseOverrides(t *testing.T) {
	t.Parallel()
	c := parseOK(t, `
expect:
  - job_type: SendReceipt
    effect: email.sent
    effect_key: "receipt/{{key}}"
detectors:
  duplicate-effect: {max_per_key: 3, severity: critical}
  dead-letter: {enabled: false}
  missing-effect:
  retry-storm: {amplification: 4}
engine: {lateness: 0s}
`)
	r := c.Expect[0]
	if r.Within != DefaultWithin || r.Count != 1 || r.Line != 3 {
		t.Errorf("rule = %+v, want within 5m, count 1, line 3", r)
	}
	want := Default()
	d := want.Detectors["duplicate-effect"]
	d.MaxPerKey, d.Severity = 3, twicetype.Critical
	want.Detectors["duplicate-effect"] = d
	d = want.Detectors["dead-letter"]
	d.Enabled = false
	want.Detectors["dead-letter"] = d
	d = want.Detectors["retry-storm"]
	d.Amplification = 4
	want.Detectors["retry-storm"] = d
	if !reflect.DeepEqual(c.Detectors, want.Detectors) {
		t.Errorf("Detectors = %+v\nwant %+v", c.Detectors, want.Detectors)
	}
	if want := (Engine{Lateness: 0, ReorderBuffer: DefaultReorderBuffer, Horizon: DefaultHorizon}); c.Engine != want {
		t.Errorf("Engine = %+v, want %+v", c.Engine, want)
	}
}

// TestParseSpecExample parses the example of spec §3.
func TestParseSpecExample(t *testing.T) {
	t.Parallel()
	c := parseOK(t, `
expect:
  - job_type: SendReceipt
    effect: email.sent
    effect_key: "receipt/{{key}}"
    within: 5m
detectors:
  stale-execution: {max_start_delay: 15m}
  lost-job: {lost_after: 1h}
  retry-storm: {window: 1m, amplification: 2.0, min_attempts: 20}
  duplicate-effect: {max_per_key: 1, severity: critical}
`)
	want := Default()
	d := want.Detectors["duplicate-effect"]
	d.Severity = twicetype.Critical
	want.Detectors["duplicate-effect"] = d
	if !reflect.DeepEqual(c.Detectors, want.Detectors) {
		t.Errorf("Detectors = %+v\nwant %+v", c.Detectors, want.Detectors)
	}
	if len(c.Expect) != 1 || c.Expect[0].EffectKey.String() != "receipt/{{key}}" || c.Expect[0].Within != 5*time.Minute {
		t.Errorf("Expect = %+v", c.Expect)
	}
}

func TestParseSources(t *testing.T) {
	t.Parallel()
	c := parseOK(t, `
sources:
  - path: a.jsonl
  - {name: b, paths: [b1.jsonl, b2.jsonl.gz]}
  - type: file
    paths: ["-"]
`)
	want := []Source{
		{Name: "a.jsonl", Type: "file", Paths: []string{"a.jsonl"}, Line: 3},
		{Name: "b", Type: "file", Paths: []string{"b1.jsonl", "b2.jsonl.gz"}, Line: 4},
		{Name: "-", Type: "file", Paths: []string{"-"}, Line: 5},
	}
	if !reflect.DeepEqual(c.Sources, want) {
		t.Errorf("Sources = %+v\nwant %+v", c.Sources, want)
	}
}

func TestParseKafkaSources(t *testing.T) {
	t.Parallel()
	c := parseOK(t, `
sources:
  - &kafka
    name: a
    type: kafka
    brokers: [localhost:9092]
    topics: [t1]
  - <<: *kafka
    name: b
    topics: [t2, t3]
    format: map
    map: {ts: 1700000000000, kind: '"state"', entity: key, terminal: true}
    start: "2026-11-24T10:00:00.5+01:00"
watch:
  listen: ""
  findings: []
  dead_letter_max_bytes: 1000
`)
	if len(c.Sources) != 2 {
		t.Fatalf("Sources = %+v", c.Sources)
	}
	a, b := c.Sources[0], c.Sources[1]
	wantA := &KafkaSource{Brokers: []string{"localhost:9092"}, Topics: []string{"t1"}, Group: "twice", Format: "twice", Start: "earliest"}
	if a.Name != "a" || a.Type != "kafka" || a.Paths != nil || !reflect.DeepEqual(a.Kafka, wantA) {
		t.Errorf("sources[0] = %+v %+v, want defaults %+v", a, a.Kafka, wantA)
	}
	var fields []string
	for _, f := range b.Kafka.Map {
		fields = append(fields, f.Field+"="+f.Expr.String())
	}
	if want := []string{"ts=1700000000000", `kind="state"`, "entity=key", "terminal=true"}; !slices.Equal(fields, want) {
		t.Errorf("map = %q, want %q", fields, want)
	}
	if b.Kafka.Start != "time" || !b.Kafka.StartTime.Equal(time.Date(2026, 11, 24, 9, 0, 0, 5e8, time.UTC)) {
		t.Errorf("start = %q %v", b.Kafka.Start, b.Kafka.StartTime)
	}
	if !slices.Equal(b.Kafka.Brokers, []string{"localhost:9092"}) || !slices.Equal(b.Kafka.Topics, []string{"t2", "t3"}) {
		t.Errorf("merged source = %+v", b.Kafka)
	}
	if c.Watch.Listen != "" || c.Watch.Findings == nil || len(c.Watch.Findings) != 0 || c.Watch.DeadLetterMaxBytes != 1000 {
		t.Errorf("Watch = %+v", c.Watch)
	}
	if c.Watch.StateDir != DefaultStateDir || c.Watch.IdleTimeout != DefaultIdleTimeout {
		t.Errorf("Watch defaults lost: %+v", c.Watch)
	}
}

func TestParseSizes(t *testing.T) {
	t.Parallel()
	for src, want := range map[string]int64{
		"1": 1, "1B": 1, "2KiB": 2048, "3 MiB": 3 << 20, "1GiB": 1 << 30, "5KB": 5000, "7MB": 7e6, "2GB": 2e9,
	} {
		c := parseOK(t, "watch: {dead_letter_max_bytes: "+src+"}\n")
		if c.Watch.DeadLetterMaxBytes != want {
			t.Errorf("%s = %d, want %d", src, c.Watch.DeadLetterMaxBytes, want)
		}
	}
}

func TestParseAnchorsAndMerge(t *testing.T) {
	t.Parallel()
	c := parseOK(t, `
expect:
  - &receipt
    job_type: SendReceipt
    effect: email.sent
    effect_key: "receipt/{{key}}"
    within: &slow 30m
  - <<: *receipt
    effect: sms.sent
    within: 1m
  - <<: [*receipt]
    count: 2
detectors:
  lost-job: {lost_after: *slow}
`)
	got := make([]string, 0, len(c.Expect))
	for _, r := range c.Expect {
		got = append(got, r.JobType+" "+r.Effect+" "+r.EffectKey.String()+" "+r.Within.String()+" "+string(rune('0'+r.Count)))
	}
	want := []string{
		"SendReceipt email.sent receipt/{{key}} 30m0s 1",
		"SendReceipt sms.sent receipt/{{key}} 1m0s 1",
		"SendReceipt email.sent receipt/{{key}} 30m0s 2",
	}
	if !slices.Equal(got, want) {
		t.Errorf("rules =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if c.Detectors["lost-job"].LostAfter != 30*time.Minute {
		t.Errorf("lost_after = %v, want 30m", c.Detectors["lost-job"].LostAfter)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	const rule = "    job_type: A\n    effect: e\n    effect_key: \"{{key}}\"\n"
	tests := []struct {
		name string
		src  string
		want string
	}{
		// Structure.
		{"unknown top-level key", "detector: {}\n",
			`twice.yaml:1:1: unknown key "detector" (known: sources, expect, detectors, redact, redact_emails, impact, engine, watch)`},
		{"top level is a list", "- a\n",
			`twice.yaml:1:1: want a mapping, got a list`},
		{"top level is a string", "hello\n",
			`twice.yaml:1:1: want a mapping, got "hello"`},
		{"duplicate top-level key", "redact: []\nredact: [key]\n",
			`twice.yaml:2:1: duplicate key "redact" (first on line 1)`},
		{"syntax error", "engine:\n  horizon: 1h\n  lateness 2m\n  x: 1\n",
			`twice.yaml:3: invalid YAML: could not find expected ':'`},
		{"two documents", "redact: []\n---\nredact: []\n",
			`twice.yaml:2:1: more than one YAML document (a configuration is one document)`},
		{"alias cycle", "expect: &a [*a]\n",
			`twice.yaml: an alias refers to the node that holds it`},
		{"key is a list", "? [a]\n: 1\n",
			`twice.yaml:1:3: want a name as key, got a list`},

		// Sources.
		{"unknown source type", "sources:\n  - type: x\n    path: a\n",
			`twice.yaml:2:11: sources[0].type: unknown source type "x" (known: file, kafka)`},
		{"unknown source key", "sources:\n  - path: a\n    topic: t\n",
			`twice.yaml:3:5: sources[0]: unknown key "topic" (known: name, type, path, paths)`},
		{"source without paths", "sources:\n  - name: a\n",
			`twice.yaml:2:5: sources[0]: missing path or paths`},
		{"source with path and paths", "sources:\n  - path: a\n    paths: [b]\n",
			`twice.yaml:3:5: sources[0]: give path or paths, not both`},
		{"empty paths", "sources:\n  - paths: []\n",
			`twice.yaml:2:12: sources[0].paths: no paths`},
		{"paths is a string", "sources:\n  - paths: a.jsonl\n",
			`twice.yaml:2:12: sources[0].paths: want a list, got "a.jsonl"`},
		{"empty path", "sources:\n  - paths: [a, \"\"]\n",
			`twice.yaml:2:16: sources[0].paths[1]: must not be empty`},
		{"duplicate source name", "sources:\n  - path: a\n  - name: a\n    path: b\n",
			`twice.yaml:3:11: sources[1].name: duplicate source name "a" (also sources[0])`},
		{"duplicate default name", "sources:\n  - path: a\n  - paths: [a, b]\n",
			`twice.yaml:3:13: sources[1].name: duplicate source name "a" (also sources[0])`},
		{"sources is a mapping", "sources: {path: a}\n",
			`twice.yaml:1:10: sources: want a list, got a mapping`},

		// Kafka sources.
		{"kafka source without name", "sources:\n  - type: kafka\n    brokers: [b:9092]\n    topics: [t]\n",
			`twice.yaml:2:5: sources[0]: missing name (a kafka source needs it)`},
		{"kafka source without brokers and topics", "sources:\n  - {name: k, type: kafka}\n",
			"twice.yaml:2:5: sources[0]: missing brokers (a kafka source needs it)\n" +
				"twice.yaml:2:5: sources[0]: missing topics (a kafka source needs it)"},
		{"kafka source with paths", "sources:\n  - name: k\n    type: kafka\n    brokers: [b:9092]\n    topics: [t]\n    paths: [a]\n",
			`twice.yaml:6:5: sources[0]: unknown key "paths" (known: name, type, brokers, topics, group, format, map, skip, debezium, start, dead_letter, tls, sasl, schema_registry)`},
		{"empty brokers", "sources:\n  - {name: k, type: kafka, brokers: [], topics: [t]}\n",
			`twice.yaml:2:37: sources[0].brokers: no brokers`},
		{"broker without port", "sources:\n  - {name: k, type: kafka, brokers: [localhost], topics: [t]}\n",
			`twice.yaml:2:38: sources[0].brokers[0]: want host:port, got "localhost"`},
		{"broker is a number", "sources:\n  - {name: k, type: kafka, brokers: [9092], topics: [t]}\n",
			`twice.yaml:2:38: sources[0].brokers[0]: want a string, got 9092`},
		{"bad topic name", "sources:\n  - {name: k, type: kafka, brokers: [b:1], topics: [\"a b\"]}\n",
			`twice.yaml:2:53: sources[0].topics[0]: invalid topic name "a b" (letters, digits, '.', '_' and '-', at most 249)`},
		{"topic listed twice", "sources:\n  - {name: k, type: kafka, brokers: [b:1], topics: [t, t]}\n",
			`twice.yaml:2:56: sources[0].topics[1]: topic "t" is listed twice`},
		{"empty group", "sources:\n  - name: k\n    type: kafka\n    brokers: [b:9092]\n    topics: [t]\n    group: \"\"\n",
			`twice.yaml:6:12: sources[0].group: must not be empty`},
		{"unknown format", "sources:\n  - name: k\n    type: kafka\n    brokers: [b:9092]\n    topics: [t]\n    format: avro\n",
			`twice.yaml:6:13: sources[0].format: unknown format "avro" (known: twice, map, debezium)`},
		{"map without format map", "sources:\n  - name: k\n    type: kafka\n    brokers: [b:9092]\n    topics: [t]\n    map: {ts: timestamp, kind: \"\\\"state\\\"\"}\n",
			`twice.yaml:6:5: sources[0].map: map needs format: map`},
		{"format map without map", "sources:\n  - name: k\n    type: kafka\n    brokers: [b:9092]\n    topics: [t]\n    format: map\n",
			`twice.yaml:6:13: sources[0].format: format map needs a map`},
		{"map without ts", "sources:\n  - name: k\n    type: kafka\n    brokers: [b:9092]\n    topics: [t]\n    format: map\n    map:\n      kind: \"\\\"state\\\"\"\n      entity: key\n",
			`twice.yaml:7:5: sources[0].map: missing ts (every event needs it)`},
		{"map of an unknown field", "sources:\n  - name: k\n    type: kafka\n    brokers: [b:9092]\n    topics: [t]\n    format: map\n    map:\n      ts: timestamp\n      kind: value.kind\n      job: value.job\n",
			`twice.yaml:10:7: sources[0].map: unknown field "job" (known: id, ts, kind, queue, job_type, job_id, attempt, key, effect, effect_key, entity, seq, terminal, retry, error, attrs)`},
		{"map expression syntax error", "sources:\n  - name: k\n    type: kafka\n    brokers: [b:9092]\n    topics: [t]\n    format: map\n    map:\n      ts: timestamp\n      kind: value.kind ==\n",
			`twice.yaml:9:13: sources[0].map.kind: unexpected token EOF (column 13 of the expression)`},
		{"map expression unknown name", "sources:\n  - name: k\n    type: kafka\n    brokers: [b:9092]\n    topics: [t]\n    format: map\n    map:\n      ts: timestamp\n      kind: valu.kind\n",
			`twice.yaml:9:13: sources[0].map.kind: unknown name valu (column 1 of the expression)`},
		{"map expression null", "sources:\n  - name: k\n    type: kafka\n    brokers: [b:9092]\n    topics: [t]\n    format: map\n    map:\n      ts: timestamp\n      kind:\n",
			`twice.yaml:9:12: sources[0].map.kind: want an expression, got nothing`},
		{"map expression a list", "sources:\n  - name: k\n    type: kafka\n    brokers: [b:9092]\n    topics: [t]\n    format: map\n    map:\n      ts: timestamp\n      kind: [a]\n",
			`twice.yaml:9:13: sources[0].map.kind: want an expression, got a list`},
		{"bad start", "sources:\n  - name: k\n    type: kafka\n    brokers: [b:9092]\n    topics: [t]\n    start: yesterday\n",
			`twice.yaml:6:12: sources[0].start: want earliest, latest or an RFC 3339 time, got "yesterday"`},
		{"start time without zone", "sources:\n  - name: k\n    type: kafka\n    brokers: [b:9092]\n    topics: [t]\n    start: \"2026-11-24T10:00:00\"\n",
			`twice.yaml:6:12: sources[0].start: want earliest, latest or an RFC 3339 time, got "2026-11-24T10:00:00"`},
		{"empty dead_letter", "sources:\n  - name: k\n    type: kafka\n    brokers: [b:9092]\n    topics: [t]\n    dead_letter: \"\"\n",
			`twice.yaml:6:18: sources[0].dead_letter: must not be empty`},
		{"unknown kafka source key", "sources:\n  - name: k\n    type: kafka\n    brokers: [b:9092]\n    topics: [t]\n    topic: t\n",
			`twice.yaml:6:5: sources[0]: unknown key "topic" (known: name, type, brokers, topics, group, format, map, skip, debezium, start, dead_letter, tls, sasl, schema_registry)`},
		{"duplicate kafka source name", "sources:\n  - name: k\n    type: kafka\n    brokers: [b:9092]\n    topics: [t]\n  - {name: k, type: kafka, brokers: [b:9092], topics: [t]}\n",
			`twice.yaml:6:12: sources[1].name: duplicate source name "k" (also sources[0])`},

		// Watch.
		{"watch is a list", "watch: [a]\n",
			`twice.yaml:1:8: watch: want a mapping, got a list`},
		{"unknown watch key", "watch:\n  state: x\n",
			`twice.yaml:2:3: watch: unknown key "state" (known: state_dir, listen, checkpoint_interval, snapshot_interval, idle_timeout, idle_advance, findings, store, limits, dead_letter_max_bytes)`},
		{"empty state_dir", "watch: {state_dir: \"\"}\n",
			`twice.yaml:1:20: watch.state_dir: must not be empty`},
		{"bad listen", "watch: {listen: localhost}\n",
			`twice.yaml:1:17: watch.listen: want host:port (or "" for no HTTP API), got "localhost"`},
		{"listen port out of range", "watch: {listen: \":70000\"}\n",
			`twice.yaml:1:17: watch.listen: want host:port (or "" for no HTTP API), got ":70000"`},
		{"zero checkpoint_interval", "watch: {checkpoint_interval: 0s}\n",
			`twice.yaml:1:30: watch.checkpoint_interval: must be greater than 0, got 0s`},
		{"bad snapshot_interval", "watch: {snapshot_interval: 1}\n",
			`twice.yaml:1:28: watch.snapshot_interval: want a Go duration like 90s or 15m, got 1`},
		{"negative idle_timeout", "watch: {idle_timeout: -1s}\n",
			`twice.yaml:1:23: watch.idle_timeout: must be greater than 0, got -1s`},
		{"findings is a mapping", "watch: {findings: {type: stdout}}\n",
			`twice.yaml:1:19: watch.findings: want a list, got a mapping`},
		{"sink without type", "watch:\n  findings:\n    - path: f\n",
			`twice.yaml:3:7: watch.findings[0]: missing type (stdout, file, kafka, webhook)`},
		{"unknown sink type", "watch:\n  findings:\n    - type: slack\n",
			`twice.yaml:3:13: watch.findings[0].type: unknown sink type "slack" (known: stdout, file, kafka, webhook)`},
		{"file sink without path", "watch:\n  findings:\n    - type: file\n",
			`twice.yaml:3:7: watch.findings[0]: missing path (a file sink needs it)`},
		{"stdout sink with path", "watch:\n  findings:\n    - {type: stdout, path: f}\n",
			`twice.yaml:3:22: watch.findings[0]: unknown key "path" (known: type)`},
		{"kafka sink without topic", "watch:\n  findings:\n    - {type: kafka, brokers: [b:1]}\n",
			`twice.yaml:3:7: watch.findings[0]: missing topic (a kafka sink needs it)`},
		{"kafka sink with bad broker", "watch:\n  findings:\n    - {type: kafka, brokers: [b], topic: t}\n",
			`twice.yaml:3:31: watch.findings[0].brokers[0]: want host:port, got "b"`},
		{"negative limit", "watch:\n  limits: {max_jobs: -1}\n",
			`twice.yaml:2:22: watch.limits.max_jobs: must be at least 0 (0: no cap), got -1`},
		{"unknown limit", "watch:\n  limits: {max_queues: 1}\n",
			`twice.yaml:2:12: watch.limits: unknown key "max_queues" (known: max_jobs, max_effect_keys, max_entities, max_identities)`},
		{"limit is a string", "watch:\n  limits: {max_entities: lots}\n",
			`twice.yaml:2:26: watch.limits.max_entities: want an integer, got "lots"`},
		{"zero dead_letter_max_bytes", "watch: {dead_letter_max_bytes: 0}\n",
			`twice.yaml:1:32: watch.dead_letter_max_bytes: must be at least 1, got 0`},
		{"bad dead_letter_max_bytes", "watch: {dead_letter_max_bytes: 64 megs}\n",
			`twice.yaml:1:32: watch.dead_letter_max_bytes: want a size in bytes like 67108864 or 64MiB, got "64 megs"`},

		// Expectations.
		{"bad within", "expect:\n  - within: 5 minutes\n" + strings.Replace(rule, "    job_type", "    job_type", 1),
			`twice.yaml:2:13: expect[0].within: want a Go duration like 90s or 15m, got "5 minutes"`},
		{"within is a number", "expect:\n  -\n" + rule + "    within: 300\n",
			`twice.yaml:6:13: expect[0].within: want a Go duration like 90s or 15m, got 300`},
		{"zero within", "expect:\n  -\n" + rule + "    within: 0s\n",
			`twice.yaml:6:13: expect[0].within: must be greater than 0, got 0s`},
		{"negative within", "expect:\n  -\n" + rule + "    within: -1m\n",
			`twice.yaml:6:13: expect[0].within: must be greater than 0, got -1m0s`},
		{"count is a float", "expect:\n  -\n" + rule + "    count: 1.5\n",
			`twice.yaml:6:12: expect[0].count: want an integer, got 1.5`},
		{"count is a string", "expect:\n  -\n" + rule + "    count: \"3\"\n",
			`twice.yaml:6:12: expect[0].count: want an integer, got "3"`},
		{"count is zero", "expect:\n  -\n" + rule + "    count: 0\n",
			`twice.yaml:6:12: expect[0].count: must be at least 1, got 0`},
		{"count out of range", "expect:\n  -\n" + rule + "    count: 99999999999999999999\n",
			`twice.yaml:6:12: expect[0].count: want an integer, got 99999999999999999999`},
		{"missing required keys", "expect:\n  - within: 1m\n",
			"twice.yaml:2:5: expect[0]: missing job_type\n" +
				"twice.yaml:2:5: expect[0]: missing effect\n" +
				"twice.yaml:2:5: expect[0]: missing effect_key"},
		{"unknown rule key", "expect:\n  -\n" + rule + "    withn: 1m\n",
			`twice.yaml:6:5: expect[0]: unknown key "withn" (known: job_type, effect, effect_key, within, count)`},
		{"bad template", "expect:\n  - job_type: A\n    effect: e\n    effect_key: \"receipt/{{kee}}\"\n",
			`twice.yaml:4:17: expect[0].effect_key: column 11 of "receipt/{{kee}}": unknown field "kee" (known: key, entity, job_id, job_type, queue, attrs.NAME)`},
		{"unclosed template", "expect:\n  - job_type: A\n    effect: e\n    effect_key: a/{{key\n",
			`twice.yaml:4:17: expect[0].effect_key: column 3 of "a/{{key": "{{" is not closed by "}}"`},
		{"job_type is a number", "expect:\n  - job_type: 42\n    effect: e\n    effect_key: k\n",
			`twice.yaml:2:15: expect[0].job_type: want a string, got 42`},
		{"empty effect", "expect:\n  - job_type: A\n    effect: \"\"\n    effect_key: k\n",
			`twice.yaml:3:13: expect[0].effect: must not be empty`},
		{"null effect", "expect:\n  - job_type: A\n    effect:\n    effect_key: k\n",
			`twice.yaml:3:12: expect[0].effect: want a string, got nothing`},
		{"rule is a string", "expect:\n  - SendReceipt\n",
			`twice.yaml:2:5: expect[0]: want a mapping, got "SendReceipt"`},
		{"duplicate rule key", "expect:\n  -\n" + rule + "    effect: f\n",
			`twice.yaml:6:5: expect[0]: duplicate key "effect" (first on line 4)`},

		// Detectors.
		{"unknown detector", "detectors:\n  lost-job: {}\n  dup-effect: {max_per_key: 2}\n",
			`twice.yaml:3:3: detectors: unknown detector "dup-effect" (known: duplicate-effect, missing-effect, effect-before-failure, duplicate-execution, out-of-order, stale-execution, effect-after-terminal, lost-job, retry-storm, dead-letter)`},
		{"unknown detector key", "detectors:\n  lost-job:\n    enabled: true\n    severity: high\n    lost_afte: 2h\n",
			`twice.yaml:5:5: detectors.lost-job: unknown key "lost_afte" (known: enabled, severity, lost_after, budget)`},
		{"threshold of another detector", "detectors:\n  lost-job: {window: 1m}\n",
			`twice.yaml:2:14: detectors.lost-job: unknown key "window" (known: enabled, severity, lost_after, budget)`},
		{"threshold on a detector without", "detectors:\n  dead-letter: {max_per_key: 2}\n",
			`twice.yaml:2:17: detectors.dead-letter: unknown key "max_per_key" (known: enabled, severity, budget)`},
		{"duplicate detector", "detectors:\n  lost-job: {}\n  lost-job: {}\n",
			`twice.yaml:3:3: detectors: duplicate key "lost-job" (first on line 2)`},
		{"duplicate detector key", "detectors:\n  lost-job:\n    lost_after: 1h\n    lost_after: 2h\n",
			`twice.yaml:4:5: detectors.lost-job: duplicate key "lost_after" (first on line 3)`},
		{"detector is a bool", "detectors:\n  dead-letter: false\n",
			`twice.yaml:2:16: detectors.dead-letter: want a mapping such as {enabled: false}, got false`},
		{"detectors is a list", "detectors: [lost-job]\n",
			`twice.yaml:1:12: detectors: want a mapping, got a list`},
		{"enabled is yes", "detectors:\n  lost-job: {enabled: yes}\n",
			`twice.yaml:2:23: detectors.lost-job.enabled: want true or false, got "yes"`},
		{"unknown severity", "detectors:\n  lost-job: {severity: urgent}\n",
			`twice.yaml:2:24: detectors.lost-job.severity: unknown severity "urgent" (known: critical, high, medium, low)`},
		{"severity none", "detectors:\n  lost-job: {severity: none}\n",
			`twice.yaml:2:24: detectors.lost-job.severity: unknown severity "none" (known: critical, high, medium, low)`},
		{"severity is a number", "detectors:\n  lost-job: {severity: 1}\n",
			`twice.yaml:2:24: detectors.lost-job.severity: want a string, got 1`},
		{"max_per_key zero", "detectors:\n  duplicate-effect: {max_per_key: 0}\n",
			`twice.yaml:2:35: detectors.duplicate-effect.max_per_key: must be at least 1, got 0`},
		{"max_per_key float", "detectors:\n  duplicate-effect: {max_per_key: 1.0}\n",
			`twice.yaml:2:35: detectors.duplicate-effect.max_per_key: want an integer, got 1.0`},
		{"max_start_delay zero", "detectors:\n  stale-execution: {max_start_delay: 0s}\n",
			`twice.yaml:2:38: detectors.stale-execution.max_start_delay: must be greater than 0, got 0s`},
		{"lost_after days", "detectors:\n  lost-job: {lost_after: 1d}\n",
			`twice.yaml:2:26: detectors.lost-job.lost_after: want a Go duration like 90s or 15m, got "1d"`},
		{"window negative", "detectors:\n  retry-storm: {window: -1m}\n",
			`twice.yaml:2:25: detectors.retry-storm.window: must be greater than 0, got -1m0s`},
		{"amplification below 1", "detectors:\n  retry-storm: {amplification: 0.5}\n",
			`twice.yaml:2:32: detectors.retry-storm.amplification: must be at least 1, got 0.5`},
		{"amplification infinite", "detectors:\n  retry-storm: {amplification: .inf}\n",
			`twice.yaml:2:32: detectors.retry-storm.amplification: must be a finite number, got +Inf`},
		{"amplification string", "detectors:\n  retry-storm: {amplification: \"2\"}\n",
			`twice.yaml:2:32: detectors.retry-storm.amplification: want a number, got "2"`},
		{"min_attempts negative", "detectors:\n  retry-storm: {min_attempts: -3}\n",
			`twice.yaml:2:31: detectors.retry-storm.min_attempts: must be at least 1, got -3`},

		// Redaction.
		{"unknown redact field", "redact: [key, emial]\n",
			`twice.yaml:1:15: redact[1]: unknown field "emial" (known: id, job_id, key, effect_key, entity, queue, job_type, effect, error, attrs.NAME)`},
		{"redact twice", "redact: [key, key]\n",
			`twice.yaml:1:15: redact[1]: "key" is listed twice`},
		{"redact is a string", "redact: key\n",
			`twice.yaml:1:9: redact: want a list, got "key"`},
		{"redact item is a list", "redact: [[key]]\n",
			`twice.yaml:1:10: redact[0]: want a string, got a list`},

		// Engine.
		{"negative lateness", "engine: {lateness: -1s}\n",
			`twice.yaml:1:20: engine.lateness: must not be negative, got -1s`},
		{"zero horizon", "engine: {horizon: 0s}\n",
			`twice.yaml:1:19: engine.horizon: must be greater than 0, got 0s`},
		{"zero reorder buffer", "engine: {reorder_buffer: 0}\n",
			`twice.yaml:1:26: engine.reorder_buffer: must be at least 1, got 0`},
		{"unknown engine key", "engine:\n  buffer: 10\n",
			`twice.yaml:2:3: engine: unknown key "buffer" (known: lateness, reorder_buffer, horizon)`},
		{"custom tag", "engine: {reorder_buffer: !big 5}\n",
			`twice.yaml:1:26: engine.reorder_buffer: want an integer, got !big "5"`},
		{"mistagged int", "engine: {reorder_buffer: !!int five}\n",
			`twice.yaml:1:26: engine.reorder_buffer: want an integer, got five`},

		// Merge keys.
		{"merge of a scalar", "engine:\n  <<: 5\n",
			`twice.yaml:2:7: engine: <<: want a mapping to merge, got 5`},
		{"merged unknown key", "expect:\n  - <<: {job_type: A, effect: e, effect_key: k, bogus: 1}\n",
			`twice.yaml:2:49: expect[0]: unknown key "bogus" (known: job_type, effect, effect_key, within, count)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("twice.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse:\n%s\n= %+v, want error", tt.src, c)
			}
			if c != nil {
				t.Errorf("Parse returned a configuration with its error")
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse:\n%s\nerror:\n %s\nwant:\n %s", tt.src, got, tt.want)
			}
		})
	}
}

func TestParseMultipleErrors(t *testing.T) {
	t.Parallel()
	src := `engine: {horizon: 0s}
detectors:
  lost-job: {lost_after: soon}
  dup-effect: {}
expect:
  - job_type: A
    within: 5 minutes
redact: [key, nope]
`
	_, err := Parse("conf/twice.yaml", []byte(src))
	want := []string{
		`conf/twice.yaml:1:19: engine.horizon: must be greater than 0, got 0s`,
		`conf/twice.yaml:3:26: detectors.lost-job.lost_after: want a Go duration like 90s or 15m, got "soon"`,
		`conf/twice.yaml:4:3: detectors: unknown detector "dup-effect" (known: duplicate-effect, missing-effect, effect-before-failure, duplicate-execution, out-of-order, stale-execution, effect-after-terminal, lost-job, retry-storm, dead-letter)`,
		`conf/twice.yaml:6:5: expect[0]: missing effect`,
		`conf/twice.yaml:6:5: expect[0]: missing effect_key`,
		`conf/twice.yaml:7:13: expect[0].within: want a Go duration like 90s or 15m, got "5 minutes"`,
		`conf/twice.yaml:8:15: redact[1]: unknown field "nope" (known: id, job_id, key, effect_key, entity, queue, job_type, effect, error, attrs.NAME)`,
	}
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Each is an *Error, reachable through the join.
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %T does not unwrap to a list", err)
	}
	for _, e := range joined.Unwrap() {
		var ce *Error
		if !errors.As(e, &ce) || ce.File != "conf/twice.yaml" || ce.Line == 0 {
			t.Errorf("error %v is not a positioned *Error", e)
		}
	}
}

func TestParseManyErrorsAreCapped(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("redact:\n")
	for range maxErrors + 5 {
		b.WriteString("  - nope\n")
	}
	_, err := Parse("twice.yaml", []byte(b.String()))
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxErrors+1 || lines[maxErrors] != "twice.yaml: and 5 more errors" {
		t.Errorf("got %d lines ending %q", len(lines), lines[len(lines)-1])
	}
}

func TestParseAliasBomb(t *testing.T) {
	t.Parallel()
	src := `a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
sources: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
`
	_, err := Parse("twice.yaml", []byte(src))
	if want := "twice.yaml: more than 100000 values, counting what aliases expand to"; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	_, err := Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "reading config: ") {
		t.Errorf("Load(missing) = %v, want a wrapped fs.ErrNotExist", err)
	}

	path := filepath.Join(dir, "twice.yaml")
	if err := os.WriteFile(path, []byte("engine:\n  horizon: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	if want := path + `:2:12: engine.horizon: want a Go duration like 90s or 15m, got 1`; err == nil || err.Error() != want {
		t.Errorf("Load = %v, want %s", err, want)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(c *Config)
		want   string
	}{
		{"default", func(*Config) {}, ""},
		{"good rule and source", func(c *Config) {
			c.Expect = []Rule{{JobType: "A", Effect: "e", EffectKey: keytemplate.MustParse("{{key}}"), Within: time.Minute, Count: 1}}
			c.Sources = []Source{{Name: "s", Type: "file", Paths: []string{"a"}}}
			c.Redact = []string{"key"}
			c.Engine.Lateness = 0
		}, ""},
		{"bad rule", func(c *Config) {
			c.Expect = []Rule{{}}
		}, "expect[0].job_type: empty\n" +
			"expect[0].effect: empty\n" +
			"expect[0].effect_key: no template\n" +
			"expect[0].within: must be greater than 0, got 0s\n" +
			"expect[0].count: must be at least 1, got 0"},
		{"bad sources", func(c *Config) {
			c.Sources = []Source{{Name: "s", Type: "ftp", Paths: []string{""}}, {Name: "s", Type: "file"}, {Type: "file", Paths: []string{"a"}}}
		}, "sources[0].type: unknown source type \"ftp\" (known: file, kafka)\n" +
			"sources[1].name: duplicate source name \"s\" (also sources[0])\n" +
			"sources[1].paths: no paths\n" +
			"sources[2].name: empty"},
		{"bad thresholds", func(c *Config) {
			d := c.Detectors["retry-storm"]
			d.Window, d.Amplification, d.MinAttempts, d.Severity = 0, 0.5, 0, twicetype.SeverityNone
			c.Detectors["retry-storm"] = d
			d = c.Detectors["duplicate-effect"]
			d.MaxPerKey = 0
			c.Detectors["duplicate-effect"] = d
		}, "detectors.duplicate-effect.max_per_key: must be at least 1, got 0\n" +
			"detectors.retry-storm.severity: unknown severity \"none\" (known: critical, high, medium, low)\n" +
			"detectors.retry-storm.window: must be greater than 0, got 0s\n" +
			"detectors.retry-storm.amplification: must be at least 1, got 0.5\n" +
			"detectors.retry-storm.min_attempts: must be at least 1, got 0"},
		{"thresholds of other detectors are not checked", func(c *Config) {
			c.Detectors["dead-letter"] = Detector{Enabled: true, Severity: twicetype.Low}
		}, ""},
		{"missing and unknown detectors", func(c *Config) {
			delete(c.Detectors, "lost-job")
			c.Detectors["dup"] = Detector{}
		}, "detectors.lost-job: no entry (start from config.Default())\n" +
			"detectors: unknown detector \"dup\" (known: duplicate-effect, missing-effect, effect-before-failure, duplicate-execution, out-of-order, stale-execution, effect-after-terminal, lost-job, retry-storm, dead-letter)"},
		{"bad redact", func(c *Config) { c.Redact = []string{"key", "attrs", "key"} },
			"redact[1]: unknown field \"attrs\" (known: id, job_id, key, effect_key, entity, queue, job_type, effect, error, attrs.NAME)\n" +
				"redact[2]: \"key\" is listed twice"},
		{"bad engine", func(c *Config) { c.Engine = Engine{Lateness: -2} },
			"engine.lateness: must not be negative (or LatenessUnbounded), got -2ns\n" +
				"engine.reorder_buffer: must be at least 1, got 0\n" +
				"engine.horizon: must be greater than 0, got 0s"},
		{"good kafka sources", func(c *Config) {
			c.Sources = []Source{
				{Name: "a", Type: "kafka", Kafka: &KafkaSource{Brokers: []string{"b:9092"}, Topics: []string{"t"}, Group: "g", Format: "twice", Start: "latest"}},
				{Name: "b", Type: "kafka", Kafka: &KafkaSource{Brokers: []string{"b:9092"}, Topics: []string{"t"}, Group: "g", Format: "map",
					Map: []MapField{
						{Field: "ts", Expr: mapexpr.MustCompile("timestamp")},
						{Field: "kind", Expr: mapexpr.MustCompile(`"state"`)},
					},
					Start: "time", StartTime: time.Unix(1, 0)}},
			}
		}, ""},
		{"bad kafka sources", func(c *Config) {
			c.Sources = []Source{
				{Name: "a", Type: "kafka"},
				{Name: "b", Type: "kafka", Paths: []string{"x"}, Kafka: &KafkaSource{Brokers: []string{"b", ""}, Topics: []string{"t", "t", "a/b"}, Format: "twice",
					Map: []MapField{{Field: "ts"}}, Start: "now"}},
				{Name: "c", Type: "kafka", Kafka: &KafkaSource{Brokers: []string{"b:1"}, Topics: []string{"t"}, Group: "g", Format: "map",
					Map: []MapField{{Field: "ts"}, {Field: "ts"}, {Field: "job"}}, Start: "time"}},
				{Name: "d", Type: "file", Paths: []string{"p"}, Kafka: &KafkaSource{}},
			}
		}, "sources[0]: no Kafka settings\n" +
			"sources[1].paths: a kafka source has no paths\n" +
			"sources[1].brokers[0]: want host:port, got \"b\"\n" +
			"sources[1].brokers[1]: want host:port, got \"\"\n" +
			"sources[1].topics[1]: topic \"t\" is listed twice\n" +
			"sources[1].topics[2]: invalid topic name \"a/b\" (letters, digits, '.', '_' and '-', at most 249)\n" +
			"sources[1].group: empty\n" +
			"sources[1].map: map needs format: map\n" +
			"sources[1].start: want earliest, latest or an RFC 3339 time, got \"now\"\n" +
			"sources[2].map.ts: no expression\n" +
			"sources[2].map.ts: set twice\n" +
			"sources[2].map: unknown field \"job\" (known: id, ts, kind, queue, job_type, job_id, attempt, key, effect, effect_key, entity, seq, terminal, retry, error, attrs)\n" +
			"sources[2].map: missing kind (every event needs it)\n" +
			"sources[2].start: StartTime is zero\n" +
			"sources[3]: a file source has no Kafka settings"},
		{"bad watch", func(c *Config) {
			c.Watch = Watch{Listen: "nope", IdleTimeout: time.Second,
				Findings: []Sink{{Type: "stdout"}, {Type: "file"}, {Type: "kafka", Topic: "t"}, {Type: "kafka", Brokers: []string{"x"}}, {Type: "pager"}},
				Limits:   Limits{MaxJobs: -1},
			}
		}, "watch.checkpoint_interval: must be greater than 0, got 0s\n" +
			"watch.dead_letter_max_bytes: must be at least 1, got 0\n" +
			"watch.findings[1].path: empty\n" +
			"watch.findings[2].brokers: no brokers\n" +
			"watch.findings[3].brokers[0]: want host:port, got \"x\"\n" +
			"watch.findings[3].topic: must not be empty\n" +
			"watch.findings[4].type: unknown sink type \"pager\" (known: stdout, file, kafka, webhook)\n" +
			"watch.limits.max_jobs: must be at least 0 (0: no cap), got -1\n" +
			"watch.listen: want host:port (or \"\" for no HTTP API), got \"nope\"\n" +
			"watch.snapshot_interval: must be greater than 0, got 0s\n" +
			"watch.state_dir: empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tt.modify(c)
			err := c.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		e    Error
		want string
	}{
		{Error{File: "f", Line: 3, Column: 12, Path: "a.b", Msg: "m"}, "f:3:12: a.b: m"},
		{Error{File: "f", Line: 3, Msg: "m"}, "f:3: m"},
		{Error{File: "f", Msg: "m"}, "f: m"},
		{Error{Line: 3, Column: 4, Path: "p", Msg: "m"}, "3:4: p: m"},
		{Error{Path: "p", Msg: "m"}, "p: m"},
		{Error{Msg: "m"}, "m"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%+v.Error() = %q, want %q", tt.e, got, tt.want)
		}
	}
}

func TestDurationsAreCapped(t *testing.T) {
	_, err := Parse("twice.yaml", []byte("detectors:\n  lost-job: {lost_after: 2500000h}\n"))
	if err == nil || !strings.Contains(err.Error(), "twice.yaml:2:") || !strings.Contains(err.Error(), "ten years") {
		t.Fatalf("err = %v, want a line-numbered error about the ten-year cap", err)
	}
	c := Default()
	c.Engine.Horizon = MaxDuration + time.Hour
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "ten years") {
		t.Fatalf("Validate = %v, want the cap", err)
	}
}
