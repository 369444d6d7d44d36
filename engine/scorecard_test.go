package engine_test

import (
	"slices"
	"testing"

	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/internal/eventstest"
	"github.com/twicehq/twice/twicetype"
)

// TestAuditScorecard audits a small hand-written input: SendReceipt was
// redelivered and sent its receipt twice (unsafe on run-twice),
// ChargeCard failed after holding funds and its retry held a new
// amount, not the same one again (safe on partial), and Cleanup never
// met any of the conditions.
func TestAuditScorecard(t *testing.T) {
	e := engine.New(engine.Options{Lateness: -1})
	for _, ev := range eventstest.Events(t, "testdata/scorecard.jsonl") {
		e.Add(&ev)
	}
	rep := e.Finish()
	fp := map[string]string{}
	for _, f := range rep.Findings {
		fp[f.Detector+" "+f.Subject] = f.Fingerprint
	}
	type row struct {
		handler string
		jobs    int64
		verdict map[string]string
	}
	var got []row
	for _, h := range rep.Scorecard {
		r := row{handler: h.JobType + "/" + h.Queue, jobs: h.Jobs, verdict: map[string]string{}}
		for _, c := range h.Conditions {
			r.verdict[c.Condition] = c.Verdict
		}
		got = append(got, r)
	}
	u, s, n := twicetype.VerdictUnsafe, twicetype.VerdictSafe, twicetype.VerdictNotExercised
	want := []row{
		{"ChargeCard/payments", 1, map[string]string{"run-twice": s, "run-late": n, "partial": s, "out-of-order": n}},
		{"Cleanup/maint", 2, map[string]string{"run-twice": n, "run-late": n, "partial": n, "out-of-order": n}},
		{"SendReceipt/mail", 1, map[string]string{"run-twice": u, "run-late": n, "partial": u, "out-of-order": n}},
	}
	if len(got) != len(want) {
		t.Fatalf("scorecard %+v, want %d rows", rep.Scorecard, len(want))
	}
	for i := range want {
		if got[i].handler != want[i].handler || got[i].jobs != want[i].jobs {
			t.Errorf("row %d = %s with %d jobs, want %s with %d", i, got[i].handler, got[i].jobs, want[i].handler, want[i].jobs)
		}
		for c, v := range want[i].verdict {
			if got[i].verdict[c] != v {
				t.Errorf("%s %s = %q, want %q", want[i].handler, c, got[i].verdict[c], v)
			}
		}
	}
	send := rep.Scorecard[2].Conditions
	dup := fp["duplicate-effect receipt/payment:1"]
	if dup == "" {
		t.Fatalf("no duplicate-effect finding for receipt/payment:1: %+v", rep.Findings)
	}
	if c := send[0]; c.Exercised != 1 || c.Harmed != 1 || !slices.Equal(c.Findings, []string{dup}) {
		t.Errorf("SendReceipt run-twice = %+v, want exercised 1, harmed 1, evidence [%s]", c, dup)
	}
	if c := rep.Scorecard[0].Conditions[2]; c.Exercised != 1 || c.Harmed != 0 || len(c.Findings) != 0 {
		t.Errorf("ChargeCard partial = %+v, want exercised 1 without harm", c)
	}
}
