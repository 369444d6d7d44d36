package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the golden reports of testdata/scenarios")

// scenario is a scenario's expected.yaml: what a person expects the audit
// of its events to report.
type scenario struct {
	Description string           `yaml:"description"`
	Args        []string         `yaml:"args"`
	Exit        *int             `yaml:"exit"`
	Summary     map[string]any   `yaml:"summary"`
	Findings    []map[string]any `yaml:"findings"`
}

// TestScenarios runs every testdata/scenarios/NAME as a subtest: it audits
// NAME/events*.jsonl with NAME/twice.yaml, checks the report against the
// hand-written NAME/expected.yaml, and compares the JSON and text reports
// with the golden files (rewritten with -update).
func TestScenarios(t *testing.T) {
	root, err := filepath.Abs("../../testdata/scenarios")
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		ran++
		t.Run(d.Name(), func(t *testing.T) { runScenario(t, filepath.Join(root, d.Name())) })
	}
	if ran == 0 {
		t.Fatal("no scenarios found under testdata/scenarios")
	}
}

func runScenario(t *testing.T, dir string) {
	t.Chdir(dir)
	raw, err := os.ReadFile("expected.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var want scenario
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&want); err != nil {
		t.Fatalf("expected.yaml: %v", err)
	}
	inputs, _ := filepath.Glob("events*.jsonl")
	gz, _ := filepath.Glob("events*.jsonl.gz")
	inputs = append(inputs, gz...)
	sort.Strings(inputs)
	if len(inputs) == 0 {
		t.Fatal("no events*.jsonl")
	}
	args := []string{"audit", "--color", "never"}
	if _, err := os.Stat("twice.yaml"); err == nil {
		args = append(args, "--config", "twice.yaml")
	}
	args = append(args, want.Args...)

	jsonOut, stderr, code := runCLI(t, append(append(args, "--format", "json"), inputs...)...)
	if want.Exit != nil && code != *want.Exit {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", code, *want.Exit, stderr)
	}
	if code == exitUsage || code == exitInput {
		golden(t, "stderr.golden", []byte(stderr))
		return
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(jsonOut), &got); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, jsonOut)
	}
	checkScenario(t, want, got)
	golden(t, "report.golden.json", []byte(jsonOut))
	textOut, _, _ := runCLI(t, append(args, inputs...)...)
	golden(t, "report.golden.txt", []byte(textOut))
}

func checkScenario(t *testing.T, want scenario, got map[string]any) {
	t.Helper()
	if want.Summary != nil {
		if diff := subset(normalize(t, want.Summary), got["summary"], "summary"); diff != "" {
			t.Error(diff)
		}
	}
	findings, _ := got["findings"].([]any)
	// A redacted subject is a hash: an expected finding without a subject
	// is matched on its detector alone.
	name := func(f map[string]any, withSubject bool) string {
		if !withSubject {
			return fmt.Sprint(f["detector"])
		}
		return fmt.Sprintf("%v %v", f["detector"], f["subject"])
	}
	var gotIDs, wantIDs []string
	for i, f := range findings {
		withSubject := true
		if i < len(want.Findings) {
			_, withSubject = want.Findings[i]["subject"]
		}
		gotIDs = append(gotIDs, name(f.(map[string]any), withSubject))
	}
	for _, f := range want.Findings {
		_, withSubject := f["subject"]
		wantIDs = append(wantIDs, name(f, withSubject))
	}
	if !reflect.DeepEqual(gotIDs, wantIDs) {
		t.Fatalf("findings:\n got %q\nwant %q", gotIDs, wantIDs)
	}
	for i, f := range want.Findings {
		if diff := subset(normalize(t, f), findings[i], fmt.Sprintf("findings[%d]", i)); diff != "" {
			t.Errorf("%s\n got %q\nwant %q", diff, gotIDs, wantIDs)
		}
	}
}

// normalize turns YAML-decoded values into what encoding/json decodes.
func normalize(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// subset reports where got differs from want: maps need every key of
// want, lists the same length, scalars equality.
func subset(want, got any, path string) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: got %v, want an object", path, got)
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var diffs []string
		for _, k := range keys {
			gv, ok := g[k]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: missing", path, k))
				continue
			}
			if d := subset(w[k], gv, path+"."+k); d != "" {
				diffs = append(diffs, d)
			}
		}
		return strings.Join(diffs, "\n")
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: got %v, want %v", path, got, want)
		}
		var diffs []string
		for i := range w {
			if d := subset(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); d != "" {
				diffs = append(diffs, d)
			}
		}
		return strings.Join(diffs, "\n")
	}
	if !reflect.DeepEqual(want, got) {
		return fmt.Sprintf("%s: got %v, want %v", path, got, want)
	}
	return ""
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(name, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/twice -run TestScenarios -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (rerun with -update if the change is meant):\n--- got\n%s", name, got)
	}
}

// runCLI runs the CLI in-process and returns stdout, stderr and the exit
// code.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runCLIWithInput(t, nil, args...)
}

func runCLIWithInput(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errb bytes.Buffer
	code = run(context.Background(), args, env{
		stdin: stdin, stdout: &out, stderr: &errb,
		isTerminal: func(io.Writer) bool { return false },
		getenv:     func(string) string { return "" },
	})
	return out.String(), errb.String(), code
}

// TestScenariosTwiceOverFindTheSame feeds every scenario's events twice
// (the auditor's own input is at least once too): the findings must be
// exactly those of one copy, and every line of the second copy a repeated
// id.
func TestScenariosTwiceOverFindTheSame(t *testing.T) {
	root, err := filepath.Abs("../../testdata/scenarios")
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(root)
	dirs := []string{filepath.Join(root, "..", "demo")}
	for _, d := range entries {
		if d.IsDir() {
			dirs = append(dirs, filepath.Join(root, d.Name()))
		}
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Chdir(dir)
			inputs, _ := filepath.Glob("events*.jsonl")
			args := []string{"audit", "--format", "json"}
			if _, err := os.Stat("twice.yaml"); err == nil {
				args = append(args, "--config", "twice.yaml")
			}
			once, _, code1 := runCLI(t, append(args, inputs...)...)
			twice, _, code2 := runCLI(t, append(append(args, inputs...), inputs...)...)
			if code1 != code2 {
				t.Fatalf("exit %d once, %d twice over", code1, code2)
			}
			if code1 > exitFindings {
				return // strict-malformed: no report either way
			}
			a, b := decodeReport(t, once), decodeReport(t, twice)
			fa, _ := json.Marshal(a["findings"])
			fb, _ := json.Marshal(b["findings"])
			if string(fa) != string(fb) {
				t.Fatalf("findings differ when the input is delivered twice:\nonce:  %s\ntwice: %s", fa, fb)
			}
			sa, sb := a["summary"].(map[string]any), b["summary"].(map[string]any)
			if sb["events"] != sa["events"] || sb["repeated_ids"].(float64) != 2*sa["repeated_ids"].(float64)+sa["events"].(float64) {
				t.Fatalf("summary twice over: events %v repeated %v; once: events %v repeated %v",
					sb["events"], sb["repeated_ids"], sa["events"], sa["repeated_ids"])
			}
		})
	}
}
