package reports

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/twicehq/twice/twicetype"
)

// gatedReport is fullReport under a CI gate: the baseline accepts lost-job
// j-7 and lists a finding this audit no longer found; dead-letter is
// within its budget, retry-storm over it. The other findings are new.
func gatedReport() *twicetype.Report {
	r := fullReport()
	r.Gate = &twicetype.Gate{
		Baseline: "baseline.json",
		Accepted: map[string]bool{twicetype.Fingerprint(twicetype.LostJob, "j-7"): true},
		Fixed: []twicetype.BaselineEntry{{Fingerprint: twicetype.Fingerprint(twicetype.MissingEffect, "j-3"),
			Detector: twicetype.MissingEffect, Subject: "j-3", Severity: twicetype.High}},
		Budgets: []twicetype.BudgetUse{
			{Detector: twicetype.RetryStorm, Budget: twicetype.Budget{Max: 0, HasMax: true}, Findings: 1},
			{Detector: twicetype.DeadLetter, Budget: twicetype.Budget{Max: 5, HasMax: true}, Findings: 1, Within: true},
		},
	}
	return r
}

func findingBy(t *testing.T, r *twicetype.Report, det string) *twicetype.Finding {
	t.Helper()
	for i := range r.Findings {
		if r.Findings[i].Detector == det {
			return &r.Findings[i]
		}
	}
	t.Fatalf("no %s finding", det)
	return nil
}

func TestGateDecidesWhatFails(t *testing.T) {
	t.Parallel()
	r := gatedReport()
	o := Options{FailOn: twicetype.Medium, gate: r.Gate}
	for det, fails := range map[string]bool{
		twicetype.DuplicateEffect: true,  // critical, new
		twicetype.LostJob:         false, // high, in the baseline
		twicetype.DeadLetter:      false, // medium, within budget
		twicetype.RetryStorm:      true,  // medium, over budget
	} {
		if got := o.fails(findingBy(t, r, det)); got != fails {
			t.Errorf("%s fails = %v, want %v", det, got, fails)
		}
	}
	// All findings accepted or within budget: the audit passes.
	all := gatedReport()
	for i := range all.Findings {
		all.Gate.Accepted[fingerprint(&all.Findings[i])] = true
	}
	pass, line := verdict(all, Options{})
	if !pass || line != "PASS: no finding at or above low fails (--fail-on low), 6 excused (6 in the baseline); baseline: 0 new, 6 accepted, 1 fixed" {
		t.Errorf("verdict = %v %q", pass, line)
	}
}

func TestGateInEveryFormat(t *testing.T) {
	t.Parallel()
	opts := Options{FailOn: twicetype.Medium, Top: 0}

	text := render(t, "text", opts, gatedReport())
	for _, want := range []string{
		"[critical] receipt/payment:123  (new)",
		"[high] j-7  (in the baseline)",
		"[medium] webhooks  (within budget)",
		"Baseline baseline.json\n  5 findings new (not in the baseline), 1 in the baseline, 1 fixed (in the baseline, no longer found)\n  fixed  missing-effect j-3",
		"Budgets\n  retry-storm: over budget (1 of 0)\n  dead-letter: within budget (1 of 5)\n",
		"FAIL: 3 findings at or above medium (--fail-on medium), 1 below, 2 excused (1 in the baseline, 1 within budget); baseline: 5 new, 1 accepted, 1 fixed\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}

	md := render(t, "markdown", opts, gatedReport())
	for _, want := range []string{
		"| critical, **new** | duplicate-effect |",
		"| high, **in the baseline** | lost-job |",
		"### Baseline\n\n5 findings **new** (not in baseline.json), 1 in the baseline, 1 fixed",
		"- :heavy_check_mark: missing-effect j-3",
		"### Budgets\n\n- retry-storm: over budget (1 of 0)\n- dead-letter: within budget (1 of 5)",
		"- **high** j-7 (in the baseline)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Count(md, "<details>") != strings.Count(md, "</details>") {
		t.Error("markdown leaves a <details> open")
	}

	var doc struct {
		Findings []struct {
			Detector string `json:"detector"`
			New      bool   `json:"new"`
			Exempt   string `json:"exempt"`
		} `json:"findings"`
		Baseline struct {
			File  string   `json:"file"`
			New   []string `json:"new"`
			Fixed []struct {
				Fingerprint, Detector, Subject string
			} `json:"fixed"`
		} `json:"baseline"`
		Budgets []struct {
			Detector string `json:"detector"`
			Max      *int   `json:"max"`
			Findings int    `json:"findings"`
			Within   bool   `json:"within"`
			Message  string `json:"message"`
		} `json:"budgets"`
	}
	if err := json.Unmarshal([]byte(render(t, "json", opts, gatedReport())), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Baseline.File != "baseline.json" || len(doc.Baseline.New) != 5 || len(doc.Baseline.Fixed) != 1 ||
		doc.Baseline.Fixed[0].Subject != "j-3" || doc.Baseline.Fixed[0].Fingerprint != twicetype.Fingerprint(twicetype.MissingEffect, "j-3") {
		t.Errorf("json baseline = %+v", doc.Baseline)
	}
	for _, f := range doc.Findings {
		want := map[string]string{twicetype.LostJob: "baseline", twicetype.DeadLetter: "budget"}[f.Detector]
		if f.Exempt != want || f.New != (f.Detector != twicetype.LostJob) {
			t.Errorf("json %s: new %v exempt %q", f.Detector, f.New, f.Exempt)
		}
	}
	if len(doc.Budgets) != 2 || doc.Budgets[1].Max == nil || *doc.Budgets[1].Max != 5 || !doc.Budgets[1].Within ||
		doc.Budgets[1].Message != "dead-letter: within budget (1 of 5)" {
		t.Errorf("json budgets = %+v", doc.Budgets)
	}
	// Without a gate the report has none of it.
	plain := render(t, "json", opts, fullReport())
	for _, key := range []string{`"baseline"`, `"budgets"`, `"new"`, `"exempt"`} {
		if strings.Contains(plain, key) {
			t.Errorf("a report without a gate has %s", key)
		}
	}

	suites := parseJUnit(t, render(t, "junit", opts, gatedReport()))
	failed := map[string]bool{}
	for _, s := range suites {
		for _, c := range s.Cases {
			failed[c.Name] = len(c.Failures) > 0
		}
	}
	for name, want := range map[string]bool{
		"lost-job j-7":                         false,
		"dead-letter webhooks":                 false,
		"duplicate-effect receipt/payment:123": true,
		"fixed missing-effect j-3":             false,
	} {
		got, ok := failed[name]
		if !ok || got != want {
			t.Errorf("junit case %q: present %v, failed %v; want failed %v", name, ok, got, want)
		}
	}
	lost := suites[twicetype.LostJob].Cases[0]
	if lost.SystemOut == nil || !strings.HasPrefix(*lost.SystemOut, "high, in the baseline baseline.json: does not fail the audit") {
		t.Errorf("junit lost-job system-out = %v", lost.SystemOut)
	}
}
