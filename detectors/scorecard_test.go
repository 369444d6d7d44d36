package detectors

import (
	"slices"
	"testing"
	"time"

	"github.com/twicehq/twice/twicetype"
)

// cond returns the score of condition name in h.
func cond(t *testing.T, h twicetype.HandlerScore, name string) twicetype.ConditionScore {
	t.Helper()
	i := slices.Index(twicetype.Conditions, name)
	if i < 0 || len(h.Conditions) != len(twicetype.Conditions) || h.Conditions[i].Condition != name {
		t.Fatalf("%s/%s: conditions %+v, want one per twicetype.Conditions in order", h.JobType, h.Queue, h.Conditions)
	}
	return h.Conditions[i]
}

func wantCond(t *testing.T, h twicetype.HandlerScore, name, verdict string, exercised, harmed int64, fps ...string) {
	t.Helper()
	c := cond(t, h, name)
	if c.Verdict != verdict || c.Exercised != exercised || c.Harmed != harmed || !slices.Equal(c.Findings, fps) {
		t.Errorf("%s/%s %s = %s exercised %d harmed %d findings %v; want %s %d %d %v",
			h.JobType, h.Queue, name, c.Verdict, c.Exercised, c.Harmed, c.Findings, verdict, exercised, harmed, fps)
	}
}

func finding(det, fp, jobType, queue string, jobs ...string) twicetype.Finding {
	return twicetype.Finding{Detector: det, Fingerprint: fp, JobType: jobType, Queue: queue, Jobs: jobs,
		Details: map[string]any{}}
}

func stale(fp, jobType, queue, job string, reasons ...string) twicetype.Finding {
	f := finding(twicetype.StaleExecution, fp, jobType, queue, job)
	var starts []any
	for _, r := range reasons {
		starts = append(starts, map[string]any{"reason": r})
	}
	f.Details["starts"] = starts
	return f
}

func dup(fp, cause, jobType, queue string, jobs ...string) twicetype.Finding {
	f := finding(twicetype.DuplicateEffect, fp, jobType, queue, jobs...)
	f.Cause = cause
	return f
}

func only(t *testing.T, card []twicetype.HandlerScore) twicetype.HandlerScore {
	t.Helper()
	if len(card) != 1 {
		t.Fatalf("scorecard has %d rows, want 1: %+v", len(card), card)
	}
	return card[0]
}

func TestScorecardRunTwice(t *testing.T) {
	counts := []ScoreCount{{JobType: "Send", Queue: "mail", Jobs: 10, Restarted: 3}}
	t.Run("retries without harm are safe", func(t *testing.T) {
		h := only(t, Scorecard(counts, nil))
		if h.Jobs != 10 {
			t.Errorf("jobs = %d, want 10", h.Jobs)
		}
		wantCond(t, h, twicetype.CondRunTwice, twicetype.VerdictSafe, 3, 0)
	})
	t.Run("a duplicate enqueue exercises, a repeated effect harms", func(t *testing.T) {
		h := only(t, Scorecard(counts, []twicetype.Finding{
			dup("fp-b", "duplicate-enqueue", "Send", "mail", "j1", "j2"),
			dup("fp-a", "redelivery", "Send", "mail", "j3"),
			dup("fp-u", "unknown", "Send", "mail"),
		}))
		// 3 restarted + 2 jobs enqueued twice; j1, j2, j3 harmed.
		wantCond(t, h, twicetype.CondRunTwice, twicetype.VerdictUnsafe, 5, 3, "fp-a", "fp-b")
	})
	t.Run("harm counts as exercised", func(t *testing.T) {
		h := only(t, Scorecard([]ScoreCount{{JobType: "Send", Queue: "mail", Jobs: 1}},
			[]twicetype.Finding{dup("fp", "replay", "Send", "mail", "j1")}))
		wantCond(t, h, twicetype.CondRunTwice, twicetype.VerdictUnsafe, 1, 1, "fp")
	})
}

func TestScorecardRunLate(t *testing.T) {
	h := only(t, Scorecard(nil, []twicetype.Finding{
		stale("s1", "Ship", "q", "j1", "start-delay"),
		stale("s2", "Ship", "q", "j2", "start-delay"),
		stale("s3", "Ship", "q", "j3", "stale-seq"), // not late: out of order
	}))
	wantCond(t, h, twicetype.CondRunLate, twicetype.VerdictSafe, 2, 0)

	card := Scorecard(nil, []twicetype.Finding{
		stale("s1", "Ship", "q", "j1", "start-delay"),
		stale("s2", "Ship", "q", "j2", "start-delay"),
		finding(twicetype.EffectAfterTerminal, "eat", "Other", "q", "j2"),
	})
	if len(card) != 2 || card[1].JobType != "Ship" {
		t.Fatalf("scorecard %+v, want rows Other/q and Ship/q", card)
	}
	// The harm finding counts for j2 whatever handler it shows.
	h = card[1]
	wantCond(t, h, twicetype.CondRunLate, twicetype.VerdictUnsafe, 2, 1, "eat", "s2")
}

func TestScorecardPartial(t *testing.T) {
	h := only(t, Scorecard(nil, []twicetype.Finding{
		finding(twicetype.EffectBeforeFailure, "e1", "Charge", "pay", "j1"),
	}))
	wantCond(t, h, twicetype.CondPartial, twicetype.VerdictSafe, 1, 0)

	h = only(t, Scorecard(nil, []twicetype.Finding{
		finding(twicetype.EffectBeforeFailure, "e1", "Charge", "pay", "j1"),
		finding(twicetype.EffectBeforeFailure, "e2", "Charge", "pay", "j2"),
		dup("d", "redelivery", "Charge", "pay", "j2"),
	}))
	wantCond(t, h, twicetype.CondPartial, twicetype.VerdictUnsafe, 2, 1, "d", "e2")
}

func TestScorecardOutOfOrder(t *testing.T) {
	h := only(t, Scorecard(nil, []twicetype.Finding{
		stale("s1", "Sync", "q", "j1", "stale-seq"),
		stale("s2", "Sync", "q", "j2", "start-delay", "stale-seq"),
	}))
	wantCond(t, h, twicetype.CondOutOfOrder, twicetype.VerdictSafe, 2, 0)
	wantCond(t, h, twicetype.CondRunLate, twicetype.VerdictSafe, 1, 0)

	h = only(t, Scorecard(nil, []twicetype.Finding{
		stale("s1", "Sync", "q", "j1", "stale-seq"),
		finding(twicetype.OutOfOrder, "o", "Sync", "q", "j1", "j2"),
	}))
	// j1 is counted once though both findings name it.
	wantCond(t, h, twicetype.CondOutOfOrder, twicetype.VerdictUnsafe, 2, 2, "o")
}

func TestScorecardRowsAndVerdicts(t *testing.T) {
	if card := Scorecard(nil, []twicetype.Finding{finding(twicetype.OutOfOrder, "o", "", "")}); card != nil {
		t.Fatalf("no handler: scorecard %+v, want nil", card)
	}
	card := Scorecard([]ScoreCount{{JobType: "B", Queue: "q", Jobs: 2}, {JobType: "A", Queue: "z", Jobs: 1}, {JobType: "A", Queue: "b", Jobs: 4}},
		[]twicetype.Finding{finding(twicetype.OutOfOrder, "o", "C", "q", "j9")})
	var got []string
	for _, h := range card {
		got = append(got, h.JobType+"/"+h.Queue)
	}
	if want := []string{"A/b", "A/z", "B/q", "C/q"}; !slices.Equal(got, want) {
		t.Fatalf("rows %v, want %v (sorted by job type, then queue; a finding's handler gets a row)", got, want)
	}
	for _, name := range twicetype.Conditions {
		wantCond(t, card[0], name, twicetype.VerdictNotExercised, 0, 0)
	}
	if card[3].Jobs != 0 {
		t.Errorf("C/q jobs = %d, want 0", card[3].Jobs)
	}

	// Evidence is capped and sorted.
	var fs []twicetype.Finding
	for i := range twicetype.MaxScoreFindings + 5 {
		fs = append(fs, dup(string(rune('z'-i)), "redelivery", "A", "b", string(rune('a'+i))))
	}
	c := cond(t, Scorecard(nil, fs)[0], twicetype.CondRunTwice)
	if c.Harmed != int64(len(fs)) || len(c.Findings) != twicetype.MaxScoreFindings || !slices.IsSorted(c.Findings) {
		t.Errorf("harmed %d findings %v: want %d harmed, %d sorted fingerprints", c.Harmed, c.Findings, len(fs), twicetype.MaxScoreFindings)
	}
}

// TestScoreCounts checks the counters the Set keeps: distinct jobs per
// first job type and queue, those that started more than once, jobs
// without a type left out, a job the horizon released and saw again
// counted once.
func TestScoreCounts(t *testing.T) {
	s := New(Options{Horizon: time.Hour})
	at := int64(time.Hour)
	ev := func(kind twicetype.Kind, job, typ, queue string) {
		at += int64(time.Second)
		s.Process(&twicetype.Event{Time: at, Kind: kind, JobID: job, JobType: typ, Queue: queue})
	}
	ev(twicetype.JobEnqueued, "a", "Send", "mail")
	ev(twicetype.JobStarted, "a", "", "")
	ev(twicetype.JobStarted, "a", "", "")
	ev(twicetype.JobStarted, "a", "", "")
	ev(twicetype.JobSucceeded, "a", "", "")
	ev(twicetype.JobStarted, "b", "", "mail") // type learned later
	ev(twicetype.JobSucceeded, "b", "Send", "other")
	ev(twicetype.JobStarted, "c", "Send", "")
	ev(twicetype.JobSucceeded, "c", "", "")
	ev(twicetype.JobStarted, "n", "", "mail") // never typed
	ev(twicetype.JobStarted, "n", "", "")
	ev(twicetype.JobSucceeded, "n", "", "")
	at += int64(3 * time.Hour) // the horizon releases a, b, c, n
	ev(twicetype.JobStarted, "a", "Send", "mail")
	ev(twicetype.JobStarted, "a", "", "")
	ev(twicetype.JobSucceeded, "a", "", "")
	s.Finish(at)
	got := s.ScoreCounts()
	want := []ScoreCount{{JobType: "Send", Queue: "", Jobs: 1}, {JobType: "Send", Queue: "mail", Jobs: 2, Restarted: 1}}
	if !slices.Equal(got, want) {
		t.Fatalf("ScoreCounts = %+v, want %+v", got, want)
	}
}
