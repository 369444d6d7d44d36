package gate_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twicehq/twice/gate"
	"github.com/twicehq/twice/twicetype"
)

func finding(det, subject string, sev twicetype.Severity, effect string) twicetype.Finding {
	f := twicetype.Finding{Detector: det, Subject: subject, Severity: sev, Fingerprint: twicetype.Fingerprint(det, subject)}
	if effect != "" {
		f.Details = map[string]any{"effect": effect}
	}
	return f
}

func TestBaselineRoundTripsAndSaysWhatIsNewAndFixed(t *testing.T) {
	old := []twicetype.Finding{
		finding(twicetype.DuplicateEffect, "receipt/p-1", twicetype.High, "email.sent"),
		finding(twicetype.LostJob, "j-9", twicetype.High, ""),
		finding(twicetype.LostJob, "j-9", twicetype.High, ""), // one fingerprint once
	}
	var buf bytes.Buffer
	if err := gate.FromFindings(old).Write(&buf); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "baseline.json")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"kind": "twice-baseline"`, `"version": 1`, `"detector": "lost-job"`, `"subject": "receipt/p-1"`, `"severity": "high"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("baseline lacks %s:\n%s", want, buf.String())
		}
	}
	base, err := gate.ReadBaseline(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(base.Findings) != 2 {
		t.Fatalf("baseline has %d findings, want 2", len(base.Findings))
	}

	// Now: p-1 is still there, j-9 was fixed, p-2 is new.
	rep := &twicetype.Report{Findings: []twicetype.Finding{
		finding(twicetype.DuplicateEffect, "receipt/p-1", twicetype.High, "email.sent"),
		finding(twicetype.DuplicateEffect, "receipt/p-2", twicetype.High, "email.sent"),
	}}
	gate.Apply(rep, base, "baseline.json", nil)
	g := rep.Gate
	if g == nil || g.Baseline != "baseline.json" {
		t.Fatalf("gate = %+v", g)
	}
	if g.Exempt(&rep.Findings[0]) != "baseline" || g.IsNew(&rep.Findings[0]) {
		t.Errorf("p-1 is in the baseline: exempt %q, new %v", g.Exempt(&rep.Findings[0]), g.IsNew(&rep.Findings[0]))
	}
	if g.Exempt(&rep.Findings[1]) != "" || !g.IsNew(&rep.Findings[1]) {
		t.Errorf("p-2 is new: exempt %q, new %v", g.Exempt(&rep.Findings[1]), g.IsNew(&rep.Findings[1]))
	}
	if len(g.Fixed) != 1 || g.Fixed[0].Subject != "j-9" || g.Fixed[0].Detector != twicetype.LostJob {
		t.Errorf("fixed = %+v, want lost-job j-9", g.Fixed)
	}
	if acc, within := gate.Exempted(rep, twicetype.High); acc != 1 || within != 0 {
		t.Errorf("exempted = %d, %d; want 1, 0", acc, within)
	}
	if acc, _ := gate.Exempted(rep, twicetype.Critical); acc != 0 {
		t.Errorf("below --fail-on nothing needs exempting, got %d", acc)
	}
}

func TestReadBaselineRejectsOtherFiles(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"report.json":  `{"version": 1, "summary": {}, "findings": []}`,
		"future.json":  `{"kind": "twice-baseline", "version": 2, "findings": []}`,
		"nofp.json":    `{"kind": "twice-baseline", "version": 1, "findings": [{"detector": "lost-job"}]}`,
		"nolist.json":  `{"kind": "twice-baseline", "version": 1}`,
		"garbage.json": `not json`,
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		_, err := gate.ReadBaseline(p)
		if !errors.Is(err, gate.ErrFormat) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v, want a format error naming the file", name, err)
		}
	}
	if _, err := gate.ReadBaseline(filepath.Join(dir, "none.json")); err == nil || errors.Is(err, gate.ErrFormat) {
		t.Errorf("a missing file: err = %v, want an I/O error", err)
	}
}

func TestBudgets(t *testing.T) {
	dup := func(n int, effect string) []twicetype.Finding {
		var fs []twicetype.Finding
		for i := range n {
			fs = append(fs, finding(twicetype.DuplicateEffect, effect+"/"+string(rune('a'+i)), twicetype.High, effect))
		}
		return fs
	}
	sum := twicetype.Summary{Jobs: 1000, Effects: 6000, EffectsByType: map[string]int64{"email.sent": 5000, "ledger.insert": 1000}}
	for _, tc := range []struct {
		name     string
		findings []twicetype.Finding
		budget   twicetype.Budget
		within   bool
		sentence string
	}{
		{"max within", dup(3, "email.sent"), twicetype.Budget{Max: 5, HasMax: true}, true,
			"duplicate-effect: within budget (3 of 5)"},
		{"max at the bound", dup(5, "email.sent"), twicetype.Budget{Max: 5, HasMax: true}, true,
			"duplicate-effect: within budget (5 of 5)"},
		{"max over", dup(6, "email.sent"), twicetype.Budget{Max: 5, HasMax: true}, false,
			"duplicate-effect: over budget (6 of 5)"},
		{"ratio of one effect type", append(dup(5, "email.sent"), dup(9, "ledger.insert")...),
			twicetype.Budget{MaxRatio: 0.001, HasMaxRatio: true, Effect: "email.sent"}, true,
			"duplicate-effect (email.sent): within budget (5 per 5000 email.sent effects = 0.001, max_ratio 0.001)"},
		{"ratio over", dup(6, "email.sent"),
			twicetype.Budget{MaxRatio: 0.001, HasMaxRatio: true, Effect: "email.sent"}, false,
			"duplicate-effect (email.sent): over budget (6 per 5000 email.sent effects = 0.0012, max_ratio 0.001)"},
		{"ratio of all effects", dup(6, "email.sent"), twicetype.Budget{MaxRatio: 0.001, HasMaxRatio: true}, true,
			"duplicate-effect: within budget (6 per 6000 effects = 0.001, max_ratio 0.001)"},
		{"ratio of no effects", dup(1, "sms.sent"), twicetype.Budget{MaxRatio: 0.5, HasMaxRatio: true, Effect: "sms.sent"}, false,
			"duplicate-effect: budget not applied: no sms.sent effects were counted to judge max_ratio 0.5 by"},
		{"both bounds", dup(3, "email.sent"), twicetype.Budget{Max: 2, HasMax: true, MaxRatio: 0.01, HasMaxRatio: true}, false,
			"duplicate-effect: over budget (3 of 2; 3 per 6000 effects = 0.0005, max_ratio 0.01)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := &twicetype.Report{Summary: sum, Findings: tc.findings}
			b := tc.budget
			gate.Apply(rep, nil, "", map[string]*twicetype.Budget{twicetype.DuplicateEffect: &b})
			if len(rep.Gate.Budgets) != 1 {
				t.Fatalf("budgets = %+v", rep.Gate.Budgets)
			}
			u := rep.Gate.Budgets[0]
			if u.Within != tc.within || u.Sentence() != tc.sentence {
				t.Errorf("within %v, %q; want %v, %q", u.Within, u.Sentence(), tc.within, tc.sentence)
			}
			f := &tc.findings[0]
			if want := map[bool]string{true: "budget", false: ""}[tc.within]; rep.Gate.Exempt(f) != want {
				t.Errorf("exempt = %q, want %q", rep.Gate.Exempt(f), want)
			}
			if rep.Gate.IsNew(f) {
				t.Error("without a baseline no finding is new")
			}
		})
	}
	// A budget of one effect type leaves the others to their severity.
	rep := &twicetype.Report{Summary: sum, Findings: append(dup(1, "email.sent"), dup(1, "ledger.insert")...)}
	gate.Apply(rep, nil, "", map[string]*twicetype.Budget{twicetype.DuplicateEffect: {Max: 5, HasMax: true, Effect: "email.sent"}})
	if rep.Gate.Exempt(&rep.Findings[1]) != "" {
		t.Error("a ledger.insert finding is not counted by an email.sent budget, so it is not exempt")
	}
	// Neither a baseline nor a budget: no gate.
	rep.Gate = &twicetype.Gate{}
	gate.Apply(rep, nil, "", nil)
	if rep.Gate != nil {
		t.Error("no baseline and no budget leave no gate")
	}
}

func TestReadReport(t *testing.T) {
	const doc = `{"version": 1, "summary": {"events": 7, "jobs": 1, "effects": 2},
	  "findings": [{"detector": "duplicate-effect", "severity": "high", "subject": "receipt/p-1",
	    "fingerprint": "abc", "count": 2, "first_ts": "2026-11-24T10:00:02.400Z", "last_ts": "2026-11-24T10:00:05.800Z",
	    "jobs": ["j-1"], "events": ["e3", "e6"], "cause": "redelivery", "message": "m", "details": {"effect": "email.sent"},
	    "job_type": "SendReceipt", "queue": "mail", "new": true}]}`
	rep, err := gate.ReadReport(strings.NewReader(doc), "r.json")
	if err != nil {
		t.Fatal(err)
	}
	f := rep.Findings[0]
	if f.Fingerprint != "abc" || f.Severity != twicetype.High || f.Cause != "redelivery" || f.JobType != "SendReceipt" ||
		f.Details["effect"] != "email.sent" || len(f.Events) != 2 || twicetype.FormatTime(f.LastTime) != "2026-11-24T10:00:05.800Z" {
		t.Errorf("finding = %+v", f)
	}
	for _, bad := range []string{`{"findings": []}`, `{"version": 1}`, `[1]`, `{"version": 9, "findings": []}`,
		`{"version": 1, "findings": [{"severity": "high"}]}`, `{"version": 1, "findings": [{"detector": "x", "subject": "s", "first_ts": "yesterday"}]}`} {
		if _, err := gate.ReadReport(strings.NewReader(bad), "r.json"); !errors.Is(err, gate.ErrFormat) {
			t.Errorf("%s: err = %v, want a format error", bad, err)
		}
	}
}
