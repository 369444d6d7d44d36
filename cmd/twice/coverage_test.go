package main

import (
	"encoding/xml"
	"strings"
	"testing"
)

// warningsOf returns summary.warnings of a JSON report.
func warningsOf(t *testing.T, out string) []string {
	t.Helper()
	var ws []string
	raw, _ := decodeReport(t, out)["summary"].(map[string]any)["warnings"].([]any)
	for _, w := range raw {
		ws = append(ws, w.(string))
	}
	return ws
}

// TestAuditNeverAllClearWhenNothingWasChecked: an input that checks
// nothing (empty, every line malformed, timestamps in seconds) exits 0 as
// before, but every format says so, and --strict-coverage fails it.
func TestAuditNeverAllClearWhenNothingWasChecked(t *testing.T) {
	// One enqueue in 2026 written in seconds: no finding (its lost-job
	// deadline is past the end of input), but every time is in 1970.
	seconds := `{"id":"e-1","ts":1795514400,"kind":"job.enqueued","queue":"emails","job_type":"SendReceipt","job_id":"j-1"}` + "\n"
	for _, tc := range []struct {
		name, input string
		want        []string // in the warning
	}{
		{"empty", "", []string{"no events", "nothing was checked"}},
		{"only blank lines", "\n\n", []string{"no events"}},
		{"every line malformed", "{not json\n{\"ts\":1}\n", []string{"Every line read (2) was malformed", "nothing was checked"}},
		{"seconds", seconds, []string{"1 event(s) have an integer ts before 2001", "events.jsonl:1", "1970-01-21T18:45:14.400Z", "multiply seconds by 1000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events := writeFile(t, "events.jsonl", tc.input)
			out, stderr, code := runCLI(t, "audit", "-q", "--format", "json", events)
			if code != exitOK {
				t.Fatalf("exit %d, want 0 without --strict-coverage; stderr %s", code, stderr)
			}
			ws := warningsOf(t, out)
			if len(ws) != 1 {
				t.Fatalf("warnings %q, want one", ws)
			}
			for _, want := range tc.want {
				if !strings.Contains(ws[0], want) {
					t.Errorf("warning %q does not say %q", ws[0], want)
				}
			}
			for _, format := range []string{"text", "markdown", "junit"} {
				out, _, _ := runCLI(t, "audit", "-q", "--format", format, events)
				if !strings.Contains(out, tc.want[0]) {
					t.Errorf("%s report does not show the warning:\n%s", format, out)
				}
			}
			out, _, _ = runCLI(t, "audit", "-q", "--format", "junit", events)
			var suites struct {
				Failures int `xml:"failures,attr"`
				Skipped  int `xml:"skipped,attr"`
			}
			if err := xml.Unmarshal([]byte(out), &suites); err != nil || suites.Failures != 0 || suites.Skipped != 1 {
				t.Errorf("junit: failures=%d skipped=%d (%v), want 0 and 1", suites.Failures, suites.Skipped, err)
			}

			_, stderr, code = runCLI(t, "audit", "-q", "--strict-coverage", events)
			if code != exitCoverage || !strings.Contains(stderr, "--strict-coverage") {
				t.Errorf("--strict-coverage: exit %d, want %d; stderr %s", code, exitCoverage, stderr)
			}
			out, _, _ = runCLI(t, "audit", "-q", "--strict-coverage", "--format", "junit", events)
			if err := xml.Unmarshal([]byte(out), &suites); err != nil || suites.Failures != 1 {
				t.Errorf("junit under --strict-coverage: failures=%d (%v), want 1", suites.Failures, err)
			}
		})
	}
}

// TestAuditCoverageQuietOnGoodInput: a plain audit has no warnings, and
// --strict-coverage leaves its exit alone; findings exit 1 before
// warnings exit 4.
func TestAuditCoverageQuietOnGoodInput(t *testing.T) {
	events := writeFile(t, "events.jsonl", crashRetry)
	out, _, code := runCLI(t, "audit", "--strict-coverage", "--format", "json", events)
	if code != exitFindings {
		t.Fatalf("exit %d, want %d", code, exitFindings)
	}
	if ws := warningsOf(t, out); len(ws) != 0 {
		t.Fatalf("warnings %q on a good input", ws)
	}
	if strings.Contains(out, `"warnings"`) {
		t.Fatal("summary.warnings present though empty")
	}
	clean := writeFile(t, "clean.jsonl", strings.SplitAfter(crashRetry, "\n")[0])
	if _, _, code := runCLI(t, "audit", "--strict-coverage", clean); code != exitOK {
		t.Fatalf("clean input under --strict-coverage: exit %d, want 0", code)
	}
	// Findings and a warning: the findings decide the exit.
	mixed := writeFile(t, "mixed.jsonl", crashRetry+`{"id":"e-9","ts":1795514400,"kind":"state","entity":"x"}`+"\n")
	out, _, code = runCLI(t, "audit", "--strict-coverage", "--format", "json", mixed)
	if code != exitFindings || len(warningsOf(t, out)) != 1 {
		t.Fatalf("findings and a warning: exit %d, warnings %q; want exit 1 and one warning", code, warningsOf(t, out))
	}
}

