package main

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/detectors"
	"github.com/twicehq/twice/twicetype"
)

// secondReceipt is another payment whose receipt went out twice, from
// two jobs enqueued for it: a finding crashRetry does not have.
const secondReceipt = `{"id":"f-1","ts":"2026-11-24T10:01:00Z","kind":"job.enqueued","queue":"emails","job_type":"SendReceipt","job_id":"j-2","key":"payment:456"}
{"id":"f-2","ts":"2026-11-24T10:01:00Z","kind":"job.enqueued","queue":"emails","job_type":"SendReceipt","job_id":"j-3","key":"payment:456"}
{"id":"f-3","ts":"2026-11-24T10:01:01Z","kind":"job.started","job_id":"j-2","attempt":1}
{"id":"f-4","ts":"2026-11-24T10:01:01Z","kind":"effect","effect":"email.sent","effect_key":"receipt/payment:456","job_id":"j-2","attempt":1}
{"id":"f-5","ts":"2026-11-24T10:01:02Z","kind":"job.succeeded","job_id":"j-2","attempt":1}
{"id":"f-6","ts":"2026-11-24T10:01:03Z","kind":"job.started","job_id":"j-3","attempt":1}
{"id":"f-7","ts":"2026-11-24T10:01:03Z","kind":"effect","effect":"email.sent","effect_key":"receipt/payment:456","job_id":"j-3","attempt":1}
{"id":"f-8","ts":"2026-11-24T10:01:04Z","kind":"job.succeeded","job_id":"j-3","attempt":1}
`

var (
	fpOld   = twicetype.Fingerprint(twicetype.DuplicateEffect, "receipt/payment:123")
	fpCrash = twicetype.Fingerprint(twicetype.EffectBeforeFailure, "j-1")
	fpNew   = twicetype.Fingerprint(twicetype.DuplicateEffect, "receipt/payment:456")
)

// writeBaseline audits events and writes the baseline of its findings.
func writeBaseline(t *testing.T, events string) string {
	t.Helper()
	dir := t.TempDir()
	report, baseline := filepath.Join(dir, "report.json"), filepath.Join(dir, "baseline.json")
	if _, stderr, code := runCLI(t, "audit", "--format", "json", "-o", report, events); code != exitFindings {
		t.Fatalf("audit: exit %d: %s", code, stderr)
	}
	_, stderr, code := runCLI(t, "baseline", "-o", baseline, report)
	if code != exitOK || !strings.Contains(stderr, "2 findings accepted") {
		t.Fatalf("baseline: exit %d: %s", code, stderr)
	}
	return baseline
}

// The CI gate, end to end: a baseline of today's findings passes; a new
// finding fails and is named new; a finding of the baseline that is gone
// is listed fixed — in every format, with exit codes that agree.
func TestAuditBaseline(t *testing.T) {
	old := writeFile(t, "old.jsonl", crashRetry)
	both := writeFile(t, "both.jsonl", crashRetry+secondReceipt)
	fixed := writeFile(t, "fixed.jsonl", secondReceipt)
	baseline := writeBaseline(t, old)

	var doc struct {
		Kind     string `json:"kind"`
		Version  int    `json:"version"`
		Findings []struct{ Fingerprint, Detector, Subject, Severity string }
	}
	raw, _ := os.ReadFile(baseline)
	if err := json.Unmarshal(raw, &doc); err != nil || doc.Kind != "twice-baseline" || doc.Version != 1 || len(doc.Findings) != 2 ||
		doc.Findings[0].Fingerprint != fpOld || doc.Findings[0].Subject != "receipt/payment:123" || doc.Findings[0].Severity != "high" {
		t.Fatalf("baseline %s: %v\n%s", baseline, err, raw)
	}

	// Nothing new: pass.
	out, stderr, code := runCLI(t, "audit", "--baseline", baseline, old)
	if code != exitOK || !strings.Contains(out, "[high] receipt/payment:123  (in the baseline)") ||
		!strings.Contains(out, "PASS: no finding at or above low fails (--fail-on low), 2 excused (2 in the baseline); baseline: 0 new, 2 accepted, 0 fixed") {
		t.Errorf("old findings only: exit %d, stderr %s\n%s", code, stderr, out)
	}

	// A new finding fails, and only it.
	out, _, code = runCLI(t, "audit", "--baseline", baseline, both)
	if code != exitFindings || !strings.Contains(out, "[high] receipt/payment:456  (new)") ||
		!strings.Contains(out, "FAIL: 1 finding at or above low (--fail-on low), 2 excused (2 in the baseline); baseline: 1 new, 2 accepted, 0 fixed") {
		t.Errorf("a new finding: exit %d\n%s", code, out)
	}
	// ... unless it is below --fail-on.
	if _, _, code := runCLI(t, "audit", "--baseline", baseline, "--fail-on", "critical", both); code != exitOK {
		t.Errorf("a new finding below --fail-on: exit %d, want 0", code)
	}

	// The old findings are gone: listed as fixed.
	out, _, code = runCLI(t, "audit", "--baseline", baseline, fixed)
	if code != exitFindings || !strings.Contains(out, "fixed  duplicate-effect receipt/payment:123  "+fpOld) ||
		!strings.Contains(out, "fixed  effect-before-failure j-1") || !strings.Contains(out, "baseline: 1 new, 0 accepted, 2 fixed") {
		t.Errorf("fixed findings: exit %d\n%s", code, out)
	}

	out, _, code = runCLI(t, "audit", "--baseline", baseline, "--format", "markdown", both)
	if code != exitFindings || !strings.Contains(out, "| high, **new** | duplicate-effect | receipt/payment:456 |") ||
		!strings.Contains(out, "| high, **in the baseline** | duplicate-effect | receipt/payment:123 |") {
		t.Errorf("markdown: exit %d\n%s", code, out)
	}
	out, _, _ = runCLI(t, "audit", "--baseline", baseline, "--format", "markdown", fixed)
	if !strings.Contains(out, ":heavy_check_mark: duplicate-effect receipt/payment:123") {
		t.Errorf("markdown lists no fixed finding:\n%s", out)
	}

	out, _, code = runCLI(t, "audit", "--baseline", baseline, "--format", "json", fixed)
	var rep struct {
		Findings []struct {
			Fingerprint string `json:"fingerprint"`
			New         bool   `json:"new"`
		} `json:"findings"`
		Baseline struct {
			New   []string                       `json:"new"`
			Fixed []struct{ Fingerprint string } `json:"fixed"`
		} `json:"baseline"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitFindings {
		t.Fatalf("json: exit %d, %v\n%s", code, err, out)
	}
	if len(rep.Baseline.New) != 1 || rep.Baseline.New[0] != fpNew || len(rep.Baseline.Fixed) != 2 ||
		rep.Baseline.Fixed[0].Fingerprint != fpOld || rep.Baseline.Fixed[1].Fingerprint != fpCrash ||
		len(rep.Findings) != 1 || !rep.Findings[0].New {
		t.Errorf("json baseline = %+v, findings %+v", rep.Baseline, rep.Findings)
	}

	out, _, code = runCLI(t, "audit", "--baseline", baseline, "--format", "junit", both)
	var suites struct {
		Suites []struct {
			Name     string `xml:"name,attr"`
			Failures int    `xml:"failures,attr"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal([]byte(out), &suites); err != nil || code != exitFindings {
		t.Fatalf("junit: exit %d, %v", code, err)
	}
	// The new duplicate fails (and the scorecard's run-twice case with
	// it); the crash window the baseline accepts does not.
	failures := map[string]int{}
	for _, s := range suites.Suites {
		failures[s.Name] = s.Failures
	}
	if failures[twicetype.DuplicateEffect] != 1 || failures[twicetype.EffectBeforeFailure] != 0 {
		t.Errorf("junit failures per suite = %v\n%s", failures, out)
	}
}

func TestBaselineErrors(t *testing.T) {
	events := writeFile(t, "events.jsonl", crashRetry)
	report := writeFile(t, "report.json", `{"version": 1, "summary": {}, "findings": []}`)
	notReport := writeFile(t, "events.json", `{"id": "e-1"}`)
	for _, tc := range []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"missing baseline", []string{"audit", "--baseline", "/nonexistent/baseline.json", events}, exitUsage, "--baseline: baseline: open /nonexistent/baseline.json"},
		{"a report for a baseline", []string{"audit", "--baseline", report, events}, exitUsage, `no "kind": "twice-baseline" (a JSON report?`},
		{"baseline of no report", []string{"baseline", "/nonexistent/report.json"}, exitInput, "report /nonexistent/report.json: no such file"},
		{"baseline of events", []string{"baseline", notReport}, exitUsage, "want a JSON report of twice audit --format json"},
		{"baseline of two", []string{"baseline", report, report}, exitUsage, "accepts 1 arg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.err) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tc.code, tc.err)
			}
		})
	}
	// A report from stdin, the baseline to stdout.
	out, _, code := runCLIWithInput(t, strings.NewReader(`{"version": 1, "summary": {}, "findings": [
		{"detector": "lost-job", "severity": "high", "subject": "j-9", "fingerprint": "f9", "first_ts": "2026-11-24T10:00:00Z", "last_ts": "2026-11-24T10:00:00Z"}]}`),
		"baseline", "-")
	if code != exitOK || !strings.Contains(out, `"fingerprint": "f9"`) {
		t.Errorf("baseline -: exit %d\n%s", code, out)
	}
}

// A budget lets a noisy detector have findings without failing; past it,
// they fail as usual.
func TestAuditBudget(t *testing.T) {
	events := writeFile(t, "events.jsonl", crashRetry+secondReceipt)
	for _, tc := range []struct {
		budget string
		code   int
		want   string
	}{
		{"{max: 5}", exitFindings, "duplicate-effect: within budget (2 of 5)"},
		{"{max: 1}", exitFindings, "duplicate-effect: over budget (2 of 1)"},
		{"{max_ratio: 0.5, effect: email.sent}", exitFindings, "duplicate-effect (email.sent): within budget (2 per 4 email.sent effects = 0.5, max_ratio 0.5)"},
	} {
		t.Run(tc.budget, func(t *testing.T) {
			cfg := writeFile(t, "twice.yaml", "detectors:\n  duplicate-effect: {budget: "+tc.budget+"}\n")
			out, stderr, code := runCLI(t, "audit", "-c", cfg, events)
			if code != tc.code || !strings.Contains(out, "Budgets\n  "+tc.want+"\n") {
				t.Errorf("exit %d (want %d), stderr %s\n%s", code, tc.code, stderr, out)
			}
		})
	}
	// Within budget, the duplicates do not fail; effect-before-failure
	// (medium) still does unless --fail-on is above it.
	cfg := writeFile(t, "twice.yaml", "detectors:\n  duplicate-effect: {budget: {max: 5}}\n")
	out, _, code := runCLI(t, "audit", "-c", cfg, "--fail-on", "high", events)
	if code != exitOK || !strings.Contains(out, "[high] receipt/payment:456  (within budget)") ||
		!strings.Contains(out, "PASS: no finding at or above high fails (--fail-on high), 1 below, 2 excused (2 within budget)") {
		t.Errorf("within budget: exit %d\n%s", code, out)
	}
	cfg = writeFile(t, "twice.yaml", "detectors:\n  duplicate-effect: {budget: {max: 1}}\n")
	if _, _, code := runCLI(t, "audit", "-c", cfg, "--fail-on", "high", events); code != exitFindings {
		t.Errorf("over budget: exit %d, want 1", code)
	}
	bad := writeFile(t, "twice.yaml", "detectors:\n  lost-job: {budget: {max: 1, effect: email.sent}}\n")
	if _, stderr, code := runCLI(t, "audit", "-c", bad, events); code != exitUsage || !strings.Contains(stderr, "detectors.lost-job.budget.effect") {
		t.Errorf("bad budget: exit %d, %s", code, stderr)
	}
}

func TestExplain(t *testing.T) {
	events := writeFile(t, "events.jsonl", crashRetry+secondReceipt)
	report := filepath.Join(t.TempDir(), "report.json")
	if _, _, code := runCLI(t, "audit", "--format", "json", "-o", report, events); code != exitFindings {
		t.Fatalf("audit: exit %d", code)
	}
	want := []string{
		"duplicate-effect: receipt/payment:456 (high)\nemail.sent receipt/payment:456 happened 2 times\n",
		"  rule         One effect_key was observed more than max_per_key times",
		"  cause        duplicate-enqueue: the copies came from several jobs enqueued for the same work",
		"  jobs         j-2, j-3\n",
		"  when         2026-11-24T10:01:01.000Z to 2026-11-24T10:01:03.000Z (2.0s)\n",
		"  fingerprint  " + fpNew + "\n",
		"What happened (8 events of " + events + ", in event time; * marks the events the finding names)\n",
		"  2026-11-24T10:01:00.000Z   j-2 enqueued (SendReceipt, on emails, key payment:456)  [f-1]\n",
		"  +0s                      * effect email.sent receipt/payment:456 by j-2 attempt 1  [f-4]\n",
		"  +1.0s                      j-3 succeeded attempt 1  [f-8]\n",
	}
	for name, args := range map[string][]string{
		"from a report":         {"explain", fpNew, report, "--events", events},
		"by a prefix":           {"explain", fpNew[:8], report, "--events", events},
		"auditing the events":   {"explain", fpNew, "--events", events},
		"the report from stdin": {"explain", fpNew, "-", "--events", events},
	} {
		t.Run(name, func(t *testing.T) {
			raw, _ := os.ReadFile(report)
			out, stderr, code := runCLIWithInput(t, strings.NewReader(string(raw)), args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "payment:123") {
				t.Errorf("the story of payment:456 tells events of payment:123:\n%s", out)
			}
		})
	}
	out, _, code := runCLI(t, "explain", fpNew, report)
	if code != exitOK || !strings.Contains(out, "What happened: give the audit's input with --events FILE") {
		t.Errorf("without events: exit %d\n%s", code, out)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"not in the report", []string{"explain", "0123456789abcdef", report}, exitUsage, "fingerprint 0123456789abcdef is not in " + report + " (3 findings"},
		{"not in the audit", []string{"explain", "0123456789abcdef", "--events", events}, exitUsage, "is not in the audit of " + events},
		{"too short", []string{"explain", "15", report}, exitUsage, "want at least 6 characters"},
		{"nothing to explain from", []string{"explain", fpNew}, exitUsage, "give REPORT.json"},
		{"stdin twice", []string{"explain", fpNew, "--events", "-"}, exitUsage, "reads the events twice"},
		{"missing report", []string{"explain", fpNew, "/nonexistent/report.json"}, exitInput, "no such file"},
		{"missing events", []string{"explain", fpNew, report, "--events", "/nonexistent/events.jsonl"}, exitInput, "/nonexistent/events.jsonl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.err) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tc.code, tc.err)
			}
		})
	}
}

// twice detectors shows what the code has: every detector, its default
// severity and thresholds (detectors.DefaultSettings) and its keys.
func TestDetectorsCommand(t *testing.T) {
	out, stderr, code := runCLI(t, "detectors")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	defaults := detectors.DefaultSettings()
	for _, id := range twicetype.DetectorIDs {
		st := defaults[id]
		if !strings.Contains(out, "\n"+id+" ("+st.Severity.String()+")\n") && !strings.HasPrefix(out, id+" ("+st.Severity.String()+")\n") {
			t.Errorf("%s (%s) is not listed", id, st.Severity)
		}
		for _, k := range config.ThresholdKeys(id) {
			v, _ := config.ThresholdValue(st, k)
			if !strings.Contains(out, k+": "+v) {
				t.Errorf("%s: default %s: %s is not shown", id, k, v)
			}
		}
		if !strings.Contains(out, "detectors."+id+".{"+strings.Join(config.DetectorKeys(id), ", ")+"}") {
			t.Errorf("%s: keys are not shown", id)
		}
	}
	for _, w := range []string{"max_start_delay: 15m", "lost_after: 1h", "amplification: 2, min_attempts: 20", "expect rules of twice.yaml (within 5m, count 1"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}

	out, _, code = runCLI(t, "detectors", "--format", "json")
	var cat []struct {
		ID       string            `json:"id"`
		Severity string            `json:"severity"`
		Rule     string            `json:"rule"`
		Defaults map[string]string `json:"defaults"`
		Keys     []string          `json:"keys"`
	}
	if err := json.Unmarshal([]byte(out), &cat); err != nil || code != exitOK || len(cat) != len(twicetype.DetectorIDs) {
		t.Fatalf("json: exit %d, %v\n%s", code, err, out)
	}
	for i, d := range cat {
		if d.ID != twicetype.DetectorIDs[i] || d.Severity != defaults[d.ID].Severity.String() || d.Rule == "" ||
			len(d.Defaults) != len(config.ThresholdKeys(d.ID)) {
			t.Errorf("json %d = %+v", i, d)
		}
	}
	if _, _, code := runCLI(t, "detectors", "--format", "yaml"); code != exitUsage {
		t.Errorf("--format yaml: exit %d, want 2", code)
	}
}
