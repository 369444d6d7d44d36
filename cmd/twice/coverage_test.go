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
			// The JUnit schema has no skipped count on <testsuites>: count
			// the skipped warning cases (malformed lines are a skipped
			// case of their own; so are handlers the scorecard suite saw
			// not exercised).
			var suites struct {
				Failures int `xml:"failures,attr"`
				Cases    []struct {
					Classname string    `xml:"classname,attr"`
					Name      string    `xml:"name,attr"`
					Skipped   *struct{} `xml:"skipped"`
				} `xml:"testsuite>testcase"`
			}
			skipped := func() int {
				n := 0
				for _, c := range suites.Cases {
					if c.Skipped != nil && c.Classname == "twice.coverage" && c.Name != "malformed" {
						n++
					}
				}
				return n
			}
			if err := xml.Unmarshal([]byte(out), &suites); err != nil || suites.Failures != 0 || skipped() != 1 {
				t.Errorf("junit: failures=%d skipped warnings=%d (%v), want 0 and 1", suites.Failures, skipped(), err)
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

// TestAuditWarnsAboutRulesThatCheckedNothing: an expect rule whose
// job_type no job has, or whose template renders for none of its jobs,
// is a warning; a rule that checked something is not.
func TestAuditWarnsAboutRulesThatCheckedNothing(t *testing.T) {
	events := writeFile(t, "events.jsonl", crashRetry)
	cfg := writeFile(t, "twice.yaml", `expect:
  - {job_type: SendReceipt, effect: email.sent, effect_key: "receipt/{{key}}"}
  - {job_type: SendReciept, effect: email.sent, effect_key: "receipt/{{key}}"}
  - {job_type: SendReceipt, effect: ledger.insert, effect_key: "ledger/{{attrs.payment_id}}"}
`)
	out, stderr, code := runCLI(t, "audit", "-c", cfg, "--format", "json", events)
	if code != exitFindings {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	ws := warningsOf(t, out)
	if len(ws) != 2 {
		t.Fatalf("warnings %q, want two", ws)
	}
	for i, want := range []string{
		`expect rule SendReciept → email.sent (line 3 of the config) checked nothing: no job of type "SendReciept" was seen`,
		`expect rule SendReceipt → ledger.insert (line 4 of the config) checked nothing: its effect_key "ledger/{{attrs.payment_id}}" rendered for none of the 1 SendReceipt job(s)`,
	} {
		if !strings.HasPrefix(ws[i], want) {
			t.Errorf("warning %d = %q, want it to start %q", i, ws[i], want)
		}
	}
	// Under --strict-coverage the findings still decide (exit 1); with
	// --fail-on none, the warnings do.
	if _, _, code := runCLI(t, "audit", "-c", cfg, "--strict-coverage", "--fail-on", "none", events); code != exitCoverage {
		t.Errorf("--strict-coverage --fail-on none: exit %d, want %d", code, exitCoverage)
	}
	junit, _, _ := runCLI(t, "audit", "-c", cfg, "--format", "junit", events)
	if !strings.Contains(junit, `name="rule-no-jobs SendReciept email.sent"`) || !strings.Contains(junit, `name="rule-never-rendered SendReceipt ledger.insert"`) {
		t.Errorf("junit does not name the rules:\n%s", junit)
	}
}
