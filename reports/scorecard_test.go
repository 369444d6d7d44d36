package reports

import (
	"strings"
	"testing"

	"github.com/twicehq/twice/twicetype"
)

// scorecardFixture is the scorecard of fullReport: SendReceipt unsafe on
// run-twice (the duplicate-effect finding is the evidence) and safe on
// partial, ChargeCard safe on run-late, a handler without a queue never
// exercised.
func scorecardFixture() []twicetype.HandlerScore {
	fp := twicetype.Fingerprint(twicetype.DuplicateEffect, "receipt/payment:123")
	return []twicetype.HandlerScore{
		scoreRow("ChargeCard", "payments", 40, nil, cs(twicetype.VerdictSafe, 2, 0), nil, nil),
		scoreRow("Cleanup", "", 3, nil, nil, nil, nil),
		scoreRow("SendReceipt", "emails", 120, cs(twicetype.VerdictUnsafe, 4, 1, fp), nil, cs(twicetype.VerdictSafe, 2, 0), nil),
	}
}

func cs(verdict string, exercised, harmed int64, fps ...string) *twicetype.ConditionScore {
	return &twicetype.ConditionScore{Verdict: verdict, Exercised: exercised, Harmed: harmed, Findings: fps}
}

// scoreRow builds a row; a nil condition is not exercised.
func scoreRow(jobType, queue string, jobs int64, conds ...*twicetype.ConditionScore) twicetype.HandlerScore {
	h := twicetype.HandlerScore{JobType: jobType, Queue: queue, Jobs: jobs}
	for i, name := range twicetype.Conditions {
		c := twicetype.ConditionScore{Verdict: twicetype.VerdictNotExercised}
		if conds[i] != nil {
			c = *conds[i]
		}
		c.Condition = name
		h.Conditions = append(h.Conditions, c)
	}
	return h
}

// TestTextScorecardFirst checks that the text report opens with the
// scorecard table, before the summary and the findings, one row per
// handler and one cell per condition.
func TestTextScorecardFirst(t *testing.T) {
	t.Parallel()
	out := render(t, "text", Options{}, fullReport())
	card, summary := strings.Index(out, "Handler safety scorecard"), strings.Index(out, "Summary")
	if card < 0 || summary < card || strings.Index(out, "Findings") < summary {
		t.Fatalf("want the scorecard before the summary and findings:\n%s", out)
	}
	lines := strings.Split(out[card:summary], "\n")
	want := [][]string{
		{"JOB", "TYPE", "QUEUE", "JOBS", "RUN-TWICE", "RUN-LATE", "PARTIAL", "OUT-OF-ORDER"},
		{"ChargeCard", "payments", "40", "—", "safe", "2", "—", "—"},
		{"Cleanup", "-", "3", "—", "—", "—", "—"},
		{"SendReceipt", "emails", "120", "UNSAFE", "1/4", "—", "safe", "2", "—"},
	}
	for i, w := range want {
		if got := strings.Fields(lines[1+i]); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("line %d = %q, want fields %q", i, lines[1+i], w)
		}
	}
	// Columns align (in runes: "—" is one): each condition's cells start
	// where its heading does.
	col := len([]rune(lines[1][:strings.Index(lines[1], "RUN-LATE")]))
	for _, l := range lines[2:5] {
		r := []rune(l)
		if len(r) <= col || r[col-1] != ' ' || r[col] == ' ' {
			t.Errorf("line %q not aligned at column %d", l, col)
		}
	}

	empty := render(t, "text", Options{}, emptyReport())
	if !strings.Contains(empty, noScorecard) {
		t.Errorf("a report without handlers should say so:\n%s", empty)
	}
}

// TestTextScorecardCap checks that with --top the text scorecard lists
// at most maxTextScoreRows handlers, unsafe ones first, and counts the
// rest.
func TestTextScorecardCap(t *testing.T) {
	t.Parallel()
	r := emptyReport()
	for i := range maxTextScoreRows + 10 {
		r.Scorecard = append(r.Scorecard, scoreRow(strings.Repeat("A", 1+i/26)+string(rune('a'+i%26)), "q", 1, nil, nil, nil, nil))
	}
	r.Scorecard = append(r.Scorecard, scoreRow("Zz", "q", 1, nil, nil, nil, cs(twicetype.VerdictUnsafe, 1, 1, "fp")))
	out := render(t, "text", Options{Top: 10}, r)
	if !strings.Contains(out, "Zz") {
		t.Errorf("the unsafe handler is not shown:\n%s", out)
	}
	if !strings.Contains(out, "… and 11 more handlers without harm") {
		t.Errorf("the handlers left out are not counted:\n%s", out)
	}
	if all := render(t, "text", Options{}, r); strings.Count(all, " q ") != len(r.Scorecard) {
		t.Errorf("without --top every handler is listed")
	}
}

// TestMarkdownScorecard checks the GFM table after the status line and
// that a scorecard of many handlers stays within --max-bytes.
func TestMarkdownScorecard(t *testing.T) {
	t.Parallel()
	out := render(t, "markdown", Options{}, fullReport())
	status, card := strings.Index(out, "**FAIL**"), strings.Index(out, "### Handler safety scorecard")
	if status < 0 || card < status || strings.Index(out, "| summary |") < card {
		t.Fatalf("want the scorecard after the status line, before the summary:\n%s", out)
	}
	for _, row := range []string{
		"| job type | queue | jobs | run-twice | run-late | partial | out-of-order |",
		"| SendReceipt | emails | 120 | **UNSAFE 1/4** | — | safe 2 | — |",
		"| Cleanup | - | 3 | — | — | — | — |",
	} {
		if !strings.Contains(out, row+"\n") {
			t.Errorf("markdown lacks row %q:\n%s", row, out)
		}
	}

	r := fullReport()
	for i := range 5000 {
		r.Scorecard = append(r.Scorecard, scoreRow(strings.Repeat("H", 1+i%7)+string(rune('a'+i%26)), "q", int64(i), nil, nil, nil, nil))
	}
	r.Scorecard = append(r.Scorecard, scoreRow("Zz", "q", 1, nil, nil, nil, cs(twicetype.VerdictUnsafe, 1, 1, "fp")))
	const limit = 16 << 10
	out = render(t, "markdown", Options{MaxBytes: limit}, r)
	if len(out) > limit {
		t.Fatalf("markdown of %d bytes, over --max-bytes %d", len(out), limit)
	}
	if !strings.Contains(out, "| Zz | q | 1 | — | — | — | **UNSAFE 1/1** |") || !strings.Contains(out, "more handlers not shown") {
		t.Errorf("a capped scorecard should show the unsafe handler first and count the rest:\n%s", out[:min(len(out), 3000)])
	}
}

// TestJUnitScorecard checks the suite "scorecard": a case per handler
// and condition, unsafe failing as the exit code does, safe passing,
// not-exercised skipped.
func TestJUnitScorecard(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts     Options
		failures int
	}{
		{Options{}, 1},
		{Options{FailOn: twicetype.Critical}, 1}, // the evidence is critical
		{Options{NeverFail: true}, 0},
	} {
		out := render(t, "junit", tc.opts, fullReport())
		suite, ok := parseJUnit(t, out)["scorecard"]
		if !ok {
			t.Fatalf("no scorecard suite:\n%s", out)
		}
		if suite.Tests != 12 || suite.Failures != tc.failures || suite.Skipped != 9 {
			t.Errorf("%+v: tests %d failures %d skipped %d, want 12 %d 9", tc.opts, suite.Tests, suite.Failures, suite.Skipped, tc.failures)
		}
		c := suite.Cases[8]
		if c.Name != "SendReceipt@emails run-twice" || c.Classname != "twice.scorecard" {
			t.Fatalf("case 8 = %s %s, want twice.scorecard SendReceipt@emails run-twice", c.Classname, c.Name)
		}
		if (len(c.Failures) == 1) != (tc.failures == 1) || (c.SystemOut == nil) != (tc.failures == 1) {
			t.Errorf("%+v: run-twice failures %+v, system-out %v", tc.opts, c.Failures, c.SystemOut)
		}
	}
}

// TestJSONScorecard checks the shape of the scorecard and the impact in
// the JSON report.
func TestJSONScorecard(t *testing.T) {
	t.Parallel()
	doc := decodeJSON(t, render(t, "json", Options{}, fullReport()))
	card, _ := doc["scorecard"].([]any)
	if len(card) != 3 {
		t.Fatalf("scorecard %#v, want 3 rows", doc["scorecard"])
	}
	row := card[2].(map[string]any)
	if row["job_type"] != "SendReceipt" || row["queue"] != "emails" || row["jobs"] != 120.0 {
		t.Errorf("row 2 = %#v", row)
	}
	twice := row["conditions"].(map[string]any)["run-twice"].(map[string]any)
	fp := twicetype.Fingerprint(twicetype.DuplicateEffect, "receipt/payment:123")
	if twice["verdict"] != "unsafe" || twice["exercised"] != 4.0 || twice["harmed"] != 1.0 ||
		len(twice["findings"].([]any)) != 1 || twice["findings"].([]any)[0] != fp {
		t.Errorf("run-twice = %#v", twice)
	}
	impact := doc["impact"].(map[string]any)
	if impact["customers"] != 1.0 || impact["stale_entities"] != 1.0 || impact["duplicated_amount"].(map[string]any)["USD"] != 12.5 {
		t.Errorf("impact = %#v", impact)
	}
	empty := decodeJSON(t, render(t, "json", Options{}, emptyReport()))
	if c, ok := empty["scorecard"].([]any); !ok || len(c) != 0 {
		t.Errorf("empty report: scorecard %#v, want []", empty["scorecard"])
	}
	if _, ok := empty["impact"]; ok {
		t.Errorf("empty report: impact present without configuration")
	}
}

// scorecardJSON is the scorecard as a JSON report holds it, decoded
// generically.
func scorecardJSON(card []twicetype.HandlerScore) []any {
	out := []any{}
	for _, h := range card {
		conds := map[string]any{}
		for _, c := range h.Conditions {
			fps := []any{}
			for _, fp := range c.Findings {
				fps = append(fps, fp)
			}
			conds[c.Condition] = map[string]any{"verdict": c.Verdict, "exercised": float64(c.Exercised),
				"harmed": float64(c.Harmed), "findings": fps}
		}
		out = append(out, map[string]any{"job_type": h.JobType, "queue": h.Queue, "jobs": float64(h.Jobs), "conditions": conds})
	}
	return out
}
