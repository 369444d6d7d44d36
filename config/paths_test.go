package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestLoadPathsRelativeToTheFile: relative paths written in twice.yaml
// mean the same from any working directory: relative to the file's
// folder. Absolute paths, "-" and defaults are left alone.
func TestLoadPathsRelativeToTheFile(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "conf")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "twice.yaml")
	src := `sources:
  - {name: one, path: events.jsonl}
  - {name: many, paths: [logs/a.jsonl, /abs/b.jsonl, "-"]}
  - {name: k, type: kafka, brokers: ["127.0.0.1:9092"], topics: [t], dead_letter: dead/k.jsonl}
watch:
  state_dir: state
  findings: [{type: file, path: out/findings.jsonl}]
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Sources[0].Paths, []string{filepath.Join(dir, "events.jsonl")}; !reflect.DeepEqual(got, want) {
		t.Errorf("path = %q, want %q", got, want)
	}
	if got, want := c.Sources[1].Paths, []string{filepath.Join(dir, "logs/a.jsonl"), "/abs/b.jsonl", "-"}; !reflect.DeepEqual(got, want) {
		t.Errorf("paths = %q, want %q", got, want)
	}
	if got, want := c.Sources[2].Kafka.DeadLetter, filepath.Join(dir, "dead/k.jsonl"); got != want {
		t.Errorf("dead_letter = %q, want %q", got, want)
	}
	if got, want := c.Watch.StateDir, filepath.Join(dir, "state"); got != want {
		t.Errorf("state_dir = %q, want %q", got, want)
	}
	if got, want := c.Watch.Findings[0].Path, filepath.Join(dir, "out/findings.jsonl"); got != want {
		t.Errorf("file sink path = %q, want %q", got, want)
	}

	// Parse keeps what is written; a default stays a default.
	c, err = Parse("twice.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if c.Sources[0].Paths[0] != "events.jsonl" || c.Watch.StateDir != "state" {
		t.Errorf("Parse changed paths: %q %q", c.Sources[0].Paths, c.Watch.StateDir)
	}
	if err := os.WriteFile(path, []byte("sources: [{path: e.jsonl}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err = Load(path); err != nil || c.Watch.StateDir != DefaultStateDir || c.Sources[0].Name != "e.jsonl" {
		t.Errorf("Load = %+v, %v; want the default state dir and the name as written", c, err)
	}
}

func TestSourceFilesGlobs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"b.jsonl", "a.jsonl", "c.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := Source{Name: "s", Paths: []string{filepath.Join(dir, "*.jsonl"), "plain.jsonl"}}
	got, err := s.Files()
	want := []string{filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl"), "plain.jsonl"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Files = %q, %v; want %q", got, err, want)
	}

	var pe *PatternError
	s.Paths = []string{filepath.Join(dir, "*.gz")}
	if _, err := s.Files(); !errors.As(err, &pe) || pe.Bad || !strings.Contains(err.Error(), "no file matches") {
		t.Errorf("glob without match: %v", err)
	}
	s.Paths = []string{filepath.Join(dir, "[.jsonl")}
	if _, err := s.Files(); !errors.As(err, &pe) || !pe.Bad {
		t.Errorf("bad glob: %v", err)
	}
}

// TestSyntaxErrorNamesTheLine: a YAML syntax error is reported on the line
// at fault, not where the enclosing block starts.
func TestSyntaxErrorNamesTheLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, src string
		line      int
	}{
		{"bad indent in a list", "expect:\n  - job_type: SendReceipt\n    effect: email.sent\n   effect_key: \"receipt/{{key}}\"\n    within: 5m\n", 4},
		{"unclosed flow mapping", "detectors:\n  lost-job:\n    lost_after: 1h\n  retry-storm: {window: 1m\n", 4},
		{"tab for indent", "expect:\n  - job_type: A\n    effect: e\n\teffect_key: x\n", 4},
		{"value on a key's line", "sources:\n  - name: a\n    type: file\n      path: x\n", 4},
		{"first line", "[\n", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("twice.yaml", []byte(tc.src))
			var e *Error
			if !errors.As(err, &e) || e.Line != tc.line || !strings.Contains(e.Msg, "invalid YAML") {
				t.Errorf("error %v (line %d), want invalid YAML on line %d", err, lineOf(e), tc.line)
			}
		})
	}
}

func lineOf(e *Error) int {
	if e == nil {
		return -1
	}
	return e.Line
}
