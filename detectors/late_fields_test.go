package detectors

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/twicetype"
)

// ev builds events for the tests below; times are offsets from 10:00.
type ev = twicetype.Event

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC).UnixNano()

func at(d time.Duration) int64 { return t0 + int64(d) }

func run(s *Set, evs []ev) []twicetype.Finding {
	end := evs[0].Time
	for i := range evs {
		s.Process(&evs[i])
		end = max(end, evs[i].Time)
	}
	s.Finish(end)
	return s.Findings().Sorted()
}

func receiptRule() Rule {
	return Rule{JobType: "SendReceipt", Effect: "email.sent", Within: 5 * time.Minute, Count: 1,
		Render: func(j *Job) (string, bool) { return "receipt/" + j.Key, j.Key != "" }}
}

func findingsOf(fs []twicetype.Finding, detector string) []twicetype.Finding {
	var out []twicetype.Finding
	for _, f := range fs {
		if f.Detector == detector {
			out = append(out, f)
		}
	}
	return out
}

// TestLateKeySetsTheExpectationOfTheSuccess: a key that arrives after the
// job's success, even after the deadline, sets the expectation from the
// first success, and effects seen before the deadline meet it.
func TestLateKeySetsTheExpectationOfTheSuccess(t *testing.T) {
	evs := []ev{
		{ID: "a1", Time: at(0), Kind: twicetype.JobSucceeded, JobID: "j-1", JobType: "SendReceipt"},
		{ID: "b1", Time: at(time.Second), Kind: twicetype.JobSucceeded, JobID: "j-2", JobType: "SendReceipt"},
		{ID: "b2", Time: at(time.Minute), Kind: twicetype.Effect, Effect: "email.sent", EffectKey: "receipt/p:2"},
		// The keys come on a later copy of the success, after both
		// deadlines (10:05:00 and 10:05:01).
		{ID: "a2", Time: at(10 * time.Minute), Kind: twicetype.JobSucceeded, JobID: "j-1", Key: "p:1"},
		{ID: "b3", Time: at(10 * time.Minute), Kind: twicetype.JobSucceeded, JobID: "j-2", Key: "p:2"},
		{ID: "z", Time: at(11 * time.Minute), Kind: twicetype.State, Entity: "x"},
	}
	fs := findingsOf(run(New(Options{Rules: []Rule{receiptRule()}}), evs), twicetype.MissingEffect)
	if len(fs) != 1 || fs[0].Subject != "j-1" {
		t.Fatalf("missing-effect findings %+v, want j-1 only", fs)
	}
	f := fs[0]
	if f.FirstTime != at(0) || f.LastTime != at(5*time.Minute) || !slices.Equal(f.Events, []string{"a1"}) {
		t.Fatalf("finding %+v: want measured from the first success a1, deadline 10:05", f)
	}
}

// TestLateEntityChecksTheSeqAtTheStart: a start held for its job's entity
// is checked against the entity's highest seq when it started, not when
// the entity became known; its start delay comes first.
func TestLateEntityChecksTheSeqAtTheStart(t *testing.T) {
	seq := func(n int64) (int64, bool) { return n, true }
	evs := []ev{
		{ID: "e1", Time: at(0), Kind: twicetype.JobEnqueued, JobID: "j-1", Seq: 3, HasSeq: true},
		{ID: "e2", Time: at(0), Kind: twicetype.JobEnqueued, JobID: "j-2", Seq: 3, HasSeq: true},
		{ID: "s1", Time: at(time.Minute), Kind: twicetype.State, Entity: "order:1"},
		{ID: "s2", Time: at(2 * time.Minute), Kind: twicetype.State, Entity: "order:2"},
		{ID: "j1", Time: at(20 * time.Minute), Kind: twicetype.JobStarted, JobID: "j-1"},
		{ID: "j2", Time: at(20 * time.Minute), Kind: twicetype.JobStarted, JobID: "j-2"},
		{ID: "s3", Time: at(21 * time.Minute), Kind: twicetype.State, Entity: "order:1"},
		{ID: "s4", Time: at(21 * time.Minute), Kind: twicetype.State, Entity: "order:2"},
		{ID: "k1", Time: at(22 * time.Minute), Kind: twicetype.JobSucceeded, JobID: "j-1", Entity: "order:1"},
		{ID: "k2", Time: at(22 * time.Minute), Kind: twicetype.JobSucceeded, JobID: "j-2", Entity: "order:2"},
	}
	// order:1 is at seq 2 when j-1 starts (9 only later): not stale.
	// order:2 is at seq 5 when j-2 starts, 9 later: stale, reached 5.
	evs[2].Seq, evs[2].HasSeq = seq(2)
	evs[3].Seq, evs[3].HasSeq = seq(5)
	evs[6].Seq, evs[6].HasSeq = seq(9)
	evs[7].Seq, evs[7].HasSeq = seq(9)
	fs := findingsOf(run(New(Options{}), evs), twicetype.StaleExecution)
	if len(fs) != 2 || fs[0].Subject != "j-1" || fs[1].Subject != "j-2" {
		t.Fatalf("stale-execution findings %+v, want j-1 (delay) and j-2 (delay, seq)", fs)
	}
	reasons := func(f twicetype.Finding) []string {
		var rs []string
		for _, st := range f.Details["starts"].([]any) {
			rs = append(rs, st.(map[string]any)["reason"].(string))
		}
		return rs
	}
	if got := reasons(fs[0]); !slices.Equal(got, []string{"start-delay"}) {
		t.Errorf("j-1: %v, want start-delay only (order:1 was at seq 2 when it started)", got)
	}
	if got := reasons(fs[1]); !slices.Equal(got, []string{"start-delay", "stale-seq"}) {
		t.Errorf("j-2: %v, want start-delay then stale-seq", got)
	}
	if !strings.Contains(fs[1].Message, "start") || fs[1].Details["starts"].([]any)[1].(map[string]any)["entity_seq"] != int64(5) {
		t.Errorf("j-2: %+v, want entity_seq 5 (at the start), not 9", fs[1].Details)
	}
}

// TestStartsWaitForTheirQueue: a start whose job has no queue yet holds
// the windows of its time on every queue; it counts on the queue its job
// learns later, or on "(none)" once it waited a horizon.
func TestStartsWaitForTheirQueue(t *testing.T) {
	st := DefaultSettings()
	rs := st[twicetype.RetryStorm]
	rs.MinAttempts = 2
	st[twicetype.RetryStorm] = rs
	opts := Options{Detectors: st}
	evs := []ev{
		// j-1 on q starts twice: a storm on q@10:00 if it stood alone.
		{ID: "a", Time: at(1 * time.Second), Kind: twicetype.JobStarted, JobID: "j-1", Queue: "q"},
		{ID: "b", Time: at(2 * time.Second), Kind: twicetype.JobStarted, JobID: "j-1"},
		// j-2 starts once in the same minute; its queue comes later.
		{ID: "c", Time: at(3 * time.Second), Kind: twicetype.JobStarted, JobID: "j-2"},
		{ID: "d", Time: at(90 * time.Second), Kind: twicetype.State, Entity: "x"},
		{ID: "e", Time: at(2 * time.Minute), Kind: twicetype.JobSucceeded, JobID: "j-2", Queue: "q"},
	}
	s := New(opts)
	for i := range evs[:4] {
		s.Process(&evs[i])
	}
	if fs := s.Findings().Sorted(); len(fs) != 0 {
		t.Fatalf("q@10:00 judged while j-2's start waits for its queue: %+v", fs)
	}
	for i := range evs[4:] {
		s.Process(&evs[4+i])
	}
	s.Finish(evs[len(evs)-1].Time)
	if fs := findingsOf(s.Findings().Sorted(), twicetype.RetryStorm); len(fs) != 0 {
		t.Fatalf("retry-storm %+v: q@10:00 has 3 attempts of 2 jobs, below 2.0", fs)
	}

	// A job that never learns its queue in time: its starts count under
	// (none) once they waited a horizon, even though the job stays open.
	evs = []ev{
		{ID: "a", Time: at(1 * time.Second), Kind: twicetype.JobStarted, JobID: "j-3"},
		{ID: "b", Time: at(2 * time.Second), Kind: twicetype.JobStarted, JobID: "j-3"},
		{ID: "c", Time: at(3 * time.Second), Kind: twicetype.JobStarted, JobID: "j-4", Queue: "q"},
		{ID: "d", Time: at(2 * time.Hour), Kind: twicetype.State, Entity: "x"},
		{ID: "e", Time: at(3 * time.Hour), Kind: twicetype.JobFailed, JobID: "j-3", Queue: "late"},
	}
	opts.Horizon = time.Hour
	fs := findingsOf(run(New(opts), evs), twicetype.RetryStorm)
	if len(fs) != 1 || fs[0].Subject != "(none)@2026-11-24T10:00:00Z" || fs[0].Count != 2 || fs[0].Queue != "" {
		t.Fatalf("retry-storm %+v, want (none)@10:00 with 2 attempts", fs)
	}
}

// TestLiveViewsFollowLateFields: with live views, a finding made before
// its job's type was known is relabelled when the type arrives, and a
// dead job counted under (none) moves to the queue it learns.
func TestLiveViewsFollowLateFields(t *testing.T) {
	s := New(Options{Live: true})
	for _, e := range []ev{
		{ID: "a", Time: at(0), Kind: twicetype.JobStarted, JobID: "j-1"},
		{ID: "b", Time: at(time.Second), Kind: twicetype.JobSucceeded, JobID: "j-1"},
		{ID: "c", Time: at(2 * time.Second), Kind: twicetype.JobStarted, JobID: "j-1"},
		{ID: "d", Time: at(3 * time.Second), Kind: twicetype.JobDead, JobID: "j-2"},
	} {
		s.Process(&e)
	}
	vs := s.Changes()
	if v, _ := viewOf(vs, twicetype.DuplicateExecution); v.Finding == nil ||
		!strings.HasPrefix(v.Finding.Message, "job j-1 started again") || v.Finding.JobType != "" {
		t.Fatalf("duplicate-execution view %+v, want it about job j-1 of no known type", v.Finding)
	}
	if v, _ := viewOf(vs, twicetype.DeadLetter); v.Finding == nil || v.Finding.Subject != "(none)" {
		t.Fatalf("dead-letter view %+v, want on (none)", v.Finding)
	}
	for _, e := range []ev{
		{ID: "e", Time: at(4 * time.Second), Kind: twicetype.JobSucceeded, JobID: "j-1", JobType: "SyncOrder", Queue: "sync"},
		{ID: "f", Time: at(5 * time.Second), Kind: twicetype.JobDead, JobID: "j-2", Queue: "billing"},
	} {
		s.Process(&e)
	}
	vs = s.Changes()
	v, _ := viewOf(vs, twicetype.DuplicateExecution)
	if v.Finding == nil || !strings.HasPrefix(v.Finding.Message, "SyncOrder j-1 started again") ||
		v.Finding.JobType != "SyncOrder" || v.Finding.Queue != "sync" {
		t.Fatalf("duplicate-execution view %+v, want relabelled SyncOrder on sync", v.Finding)
	}
	var none, billing bool
	for _, v := range vs {
		if v.Detector != twicetype.DeadLetter {
			continue
		}
		if v.Fingerprint == twicetype.Fingerprint(twicetype.DeadLetter, "(none)") && v.Finding == nil {
			none = true
		}
		if v.Finding != nil && v.Finding.Subject == "billing" && v.Finding.Count == 1 {
			billing = true
		}
	}
	if !none || !billing {
		t.Fatalf("dead-letter views %+v, want (none) resolved and billing with j-2", vs)
	}
}

// TestRuleCoverageCountsJobsAndRenders: per rule, the jobs of its type
// (whichever event gave the type) and those its template rendered for.
func TestRuleCoverageCountsJobsAndRenders(t *testing.T) {
	other := Rule{JobType: "ChargeCard", Effect: "ledger.insert", Within: time.Minute, Count: 1,
		Render: func(j *Job) (string, bool) { return "ledger/" + j.Key, j.Key != "" }}
	s := New(Options{Rules: []Rule{receiptRule(), other}})
	run(s, []ev{
		{ID: "a", Time: at(0), Kind: twicetype.JobEnqueued, JobID: "j-1", JobType: "SendReceipt", Key: "p:1"},
		{ID: "b", Time: at(1), Kind: twicetype.JobEnqueued, JobID: "j-2", JobType: "SendReceipt"},
		{ID: "c", Time: at(2), Kind: twicetype.JobEnqueued, JobID: "j-3", Key: "p:3"},
		{ID: "d", Time: at(3), Kind: twicetype.JobSucceeded, JobID: "j-3", JobType: "SendReceipt"},
		{ID: "e", Time: at(4), Kind: twicetype.JobEnqueued, JobID: "j-4", JobType: "RefundOrder", Key: "p:4"},
	})
	want := []twicetype.RuleCoverage{{Jobs: 3, Rendered: 2}, {Jobs: 0, Rendered: 0}}
	if got := s.RuleCoverage(); !slices.Equal(got, want) {
		t.Fatalf("rule coverage %+v, want %+v", got, want)
	}
}

// TestAttemptSetMatchesAMap: the ranges of attemptSet hold exactly the
// attempts added, in any order.
func TestAttemptSetMatchesAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var a attemptSet
		m := map[int64]bool{}
		for range r.IntN(40) {
			n := int64(r.IntN(30))
			a.add(n)
			m[n] = true
		}
		for n := int64(-1); n <= 31; n++ {
			if a.has(n) != m[n] {
				t.Fatalf("%v has(%d) = %v, want %v", a, n, a.has(n), m[n])
			}
		}
		for i := 1; i < len(a); i++ {
			if a[i].lo <= a[i-1].hi+1 {
				t.Fatalf("%v: ranges overlap or touch", a)
			}
		}
	}
}
