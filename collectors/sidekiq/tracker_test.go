package sidekiq

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// pj writes a Sidekiq payload; extra members override the defaults.
func pj(jid, class string, enqueuedAt float64, extra ...any) string {
	m := map[string]any{"jid": jid, "class": class, "queue": "default", "retry": true,
		"args": []any{map[string]any{"payment": "p-" + jid}}, "created_at": 1000.0}
	if enqueuedAt > 0 {
		m["enqueued_at"] = enqueuedAt
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func sec(s float64) int64 { return int64(s * 1e9) }

// snap is a snapshot builder for tests.
type snap struct{ s snapshot }

func at(t float64) *snap {
	return &snap{snapshot{Now: sec(t), Queues: map[string][]string{}, Truncated: map[string]bool{}}}
}
func (b *snap) queue(q string, raws ...string) *snap { b.s.Queues[q] = raws; return b }
func (b *snap) retry(raw string, score float64) *snap {
	b.s.Retry = append(b.s.Retry, zentry{raw, score})
	return b
}
func (b *snap) dead(raw string, score float64) *snap {
	b.s.Dead = append(b.s.Dead, zentry{raw, score})
	return b
}
func (b *snap) proc(id, beat string, runs ...string) *snap {
	p := process{Identity: id, Exists: true, Beat: beat}
	for _, r := range runs {
		p.Work = append(p.Work, work{Raw: r, Queue: "default", RunAt: sec(1000)})
	}
	b.s.Processes = append(b.s.Processes, p)
	return b
}
func (b *snap) stats(processed, failed int64) *snap {
	b.s.Processed, b.s.Failed = processed, failed
	return b
}

// see runs a snapshot and returns its events as "kind attempt@ts" lines.
func see(t *testing.T, tr *tracker, b *snap) []string {
	t.Helper()
	ems, bad := tr.observe(&b.s)
	for _, x := range bad {
		t.Logf("malformed %s: %s", x.lane, x.reason)
	}
	var out []string
	for _, e := range ems {
		s := e.kind.String()
		if e.attempt > 0 {
			s += fmt.Sprintf(" %d", e.attempt)
		}
		if e.retry != 0 {
			s += fmt.Sprintf(" retry=%v", e.retry > 0)
		}
		s += fmt.Sprintf(" @%g", float64(e.ts)/1e9)
		out = append(out, s)
	}
	return out
}

func want(t *testing.T, step string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s: events\n%s\nwant\n%s", step, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func newTestTracker() *tracker {
	m, err := newMapping(Config{Key: "args.0.payment"})
	if err != nil {
		panic(err)
	}
	return newTracker(m, int64(deadAfter))
}

func TestTrackerRunSeenInWorkHash(t *testing.T) {
	tr := newTestTracker()
	j := pj("a", "SendReceipt", 1099.5)
	want(t, "queued", see(t, tr, at(1100).queue("default", j).proc("P", "1100.0")), "job.enqueued @1099.5")
	want(t, "running", see(t, tr, at(1101).proc("P", "1101.0", j)), "job.started 1 @1100")
	want(t, "same beat", see(t, tr, at(1102).proc("P", "1101.0", j)))
	want(t, "gone at a newer beat", see(t, tr, at(1106).proc("P", "1106.0").stats(1, 0)), "job.succeeded 1 @1106")
	if tr.stats.SucceededCertain != 1 || tr.stats.SucceededLikely != 0 {
		t.Errorf("certain %d likely %d, want 1 0", tr.stats.SucceededCertain, tr.stats.SucceededLikely)
	}
	if len(tr.jobs) != 0 {
		t.Errorf("%d jobs still followed", len(tr.jobs))
	}
}

func TestTrackerRunBetweenTwoHeartbeats(t *testing.T) {
	tr := newTestTracker()
	j := pj("b", "SendReceipt", 1099.5)
	want(t, "queued", see(t, tr, at(1100).queue("default", j).proc("P", "b1").proc("Q", "q1")), "job.enqueued @1099.5")
	// It left the queue; it started after the poll that last saw it.
	want(t, "left", see(t, tr, at(1101).proc("P", "b1").proc("Q", "q1")), "job.started 1 @1100")
	want(t, "P beat, Q not yet", see(t, tr, at(1104).proc("P", "b2").proc("Q", "q1")))
	want(t, "both beat", see(t, tr, at(1106).proc("P", "b2").proc("Q", "q2").stats(1, 0)), "job.succeeded 1 @1106")
}

func TestTrackerRetriesDeathAndAttempts(t *testing.T) {
	tr := newTestTracker()
	j1 := pj("c", "Charge", 1099.5)
	failed1 := pj("c", "Charge", 1099.5, "retry_count", 0, "failed_at", 1100.5, "error_class", "RuntimeError", "error_message", "boom")
	j2 := pj("c", "Charge", 1110.0, "retry_count", 0, "failed_at", 1100.5)
	dead := pj("c", "Charge", 1110.0, "retry_count", 1, "failed_at", 1100.5, "retried_at", 1111.0)
	want(t, "queued", see(t, tr, at(1100).queue("default", j1).proc("P", "b1")), "job.enqueued @1099.5")
	want(t, "failed", see(t, tr, at(1101).retry(failed1, 1105).proc("P", "b1").stats(1, 1)),
		"job.started 1 @1100", "job.failed 1 retry=true @1100.5")
	want(t, "still in retry", see(t, tr, at(1102).retry(failed1, 1105).proc("P", "b2")))
	want(t, "retried", see(t, tr, at(1110.5).queue("default", j2).proc("P", "b3")), "job.enqueued @1110")
	want(t, "running again", see(t, tr, at(1110.6).proc("P", "b4", j2)), "job.started 2 @1110.5")
	want(t, "dead", see(t, tr, at(1112).dead(dead, 1111.1).proc("P", "b5").stats(2, 2)),
		"job.failed 2 retry=false @1111", "job.dead 2 @1111.1")
	if got := tr.unexplained(); got != 0 {
		t.Errorf("unexplained failures %d, want 0", got)
	}
	want(t, "dead again, read at the cursor", see(t, tr, at(1113).dead(dead, 1111.1).proc("P", "b6")))
	if len(tr.jobs) != 0 {
		t.Errorf("%d jobs still followed", len(tr.jobs))
	}
}

func TestTrackerRunAfterRetryNeverSeen(t *testing.T) {
	tr := newTestTracker()
	failed := pj("d", "Charge", 1099.5, "retry_count", 0, "failed_at", 1100.5)
	want(t, "failed", see(t, tr, at(1101).retry(failed, 1105).proc("P", "b1")),
		"job.enqueued @1099.5", "job.started 1 @1099.5", "job.failed 1 retry=true @1100.5")
	want(t, "left the retry set", see(t, tr, at(1106).proc("P", "b1")))
	got := see(t, tr, at(1107).proc("P", "b2"))
	// Pushed back at its retry time (1105) at the earliest, after the poll
	// that last saw it in the retry set (1101).
	want(t, "after a beat", got, "job.enqueued @1105", "job.started 2 @1105", "job.succeeded 2 @1107")
}

func TestTrackerProcessDiesMidJob(t *testing.T) {
	tr := newTestTracker()
	j := pj("e", "Export", 1099.5)
	see(t, tr, at(1100).proc("P", "b1", j))
	// SIGKILL: no more beats; the work hash stays until it expires.
	want(t, "silent", see(t, tr, at(1120).proc("P", "b1", j)))
	want(t, "declared dead", see(t, tr, at(1131).proc("P", "b1", j)))
	if tr.stats.LostWithProcess != 1 || len(tr.jobs) != 0 {
		t.Errorf("lost with process %d, followed %d; want 1, 0", tr.stats.LostWithProcess, len(tr.jobs))
	}
	// Sidekiq prunes the process: nothing more is said about the job.
	want(t, "pruned", see(t, tr, at(1170)))
}

func TestTrackerProcessDiesWhileARunIsUnplaced(t *testing.T) {
	tr := newTestTracker()
	j := pj("f", "Export", 1099.5)
	see(t, tr, at(1100).queue("default", j).proc("P", "p1").proc("Q", "q1"))
	want(t, "left", see(t, tr, at(1101).proc("P", "p1").proc("Q", "q1")), "job.started 1 @1100")
	// P beats on; Q never beats again and is declared dead: the run may
	// have died with Q, so no success is claimed.
	see(t, tr, at(1105).proc("P", "p2").proc("Q", "q1"))
	want(t, "Q dead", see(t, tr, at(1135).proc("P", "p3").proc("Q", "q1")))
	if tr.stats.Unknown != 1 || len(tr.jobs) != 0 {
		t.Errorf("unknown %d, followed %d; want 1, 0", tr.stats.Unknown, len(tr.jobs))
	}
}

func TestTrackerCleanShutdown(t *testing.T) {
	tr := newTestTracker()
	j := pj("g", "Export", 1099.5)
	see(t, tr, at(1100).proc("P", "b1", j).proc("Q", "q1"))
	// P shuts down: it pushes the unfinished job back and leaves the set.
	want(t, "requeued", see(t, tr, at(1101).queue("default", j).proc("Q", "q1")))
	want(t, "run again on Q", see(t, tr, at(1106).proc("Q", "q2", j)))
	want(t, "done", see(t, tr, at(1111).proc("Q", "q3")), "job.succeeded 1 @1111")
}

func TestTrackerRetryFalse(t *testing.T) {
	tr := newTestTracker()
	a := pj("h1", "Ping", 1099.5, "retry", false)
	b := pj("h2", "Ping", 1099.6, "retry", false)
	see(t, tr, at(1100).proc("P", "b1", a, b).stats(0, 0))
	// a ended while no failure went unexplained: it succeeded.
	want(t, "a done", see(t, tr, at(1105).proc("P", "b2", b).stats(1, 0)), "job.succeeded 1 @1105")
	// b ended, and a failure nobody saw was counted: a retry: false
	// failure leaves no trace, so polling cannot tell.
	want(t, "b gone", see(t, tr, at(1110).proc("P", "b3").stats(2, 1)))
	if tr.stats.Unknown != 1 {
		t.Errorf("unknown %d, want 1", tr.stats.Unknown)
	}
}

func TestTrackerSaveLoad(t *testing.T) {
	tr := newTestTracker()
	j := pj("i", "SendReceipt", 1099.5)
	dead := pj("k", "Charge", 1090, "retry_count", 0, "failed_at", 1095.0)
	see(t, tr, at(1100).queue("default", j).proc("P", "b1").dead(dead, 1095.5).stats(10, 1))
	see(t, tr, at(1101).proc("P", "b1").stats(10, 1))
	text, err := tr.save()
	if err != nil {
		t.Fatal(err)
	}
	back := newTestTracker()
	if err := back.load(text); err != nil {
		t.Fatal(err)
	}
	// The dead entry is not read again; the unplaced run is judged on.
	want(t, "after the restart", see(t, back, at(1106).proc("P", "b2").dead(dead, 1095.5).stats(11, 1)),
		"job.succeeded 1 @1106")
	if back.stats.ProcessedDelta != 1 {
		t.Errorf("processed since the base %d, want 1", back.stats.ProcessedDelta)
	}
	if err := newTestTracker().load("not a state"); err == nil {
		t.Error("load of garbage: no error")
	}
}

func TestTrackerMalformedOnce(t *testing.T) {
	tr := newTestTracker()
	for i := 0; i < 3; i++ {
		_, bad := tr.observe(&at(1100+float64(i)).queue("default", `{"jid":1}`, "not json").s)
		if i == 0 && (len(bad) != 2 || bad[0].at != 2 || bad[1].at != 1 || bad[0].lane != "queue:default") {
			t.Fatalf("first poll: malformed %+v, want 2, the next to run at 1", bad)
		}
		if i > 0 && len(bad) != 0 {
			t.Fatalf("poll %d: %d malformed again", i, len(bad))
		}
	}
	if tr.stats.Malformed != 2 {
		t.Errorf("malformed %d, want 2", tr.stats.Malformed)
	}
}

func TestTrackerTruncatedRetrySet(t *testing.T) {
	tr := newTestTracker()
	early := pj("l1", "Charge", 1000, "retry_count", 0, "failed_at", 1001.0)
	late := pj("l2", "Charge", 1000, "retry_count", 0, "failed_at", 1002.0)
	s := at(1100).retry(early, 1200).retry(late, 1300).proc("P", "b1")
	s.s.RetryTruncated = true
	see(t, tr, s)
	// A new failure with an earlier retry time pushes late out of the
	// part read: it has not left the set.
	s = at(1101).retry(pj("l0", "Charge", 1000, "retry_count", 0, "failed_at", 1100.5), 1150).retry(early, 1200).proc("P", "b2")
	s.s.RetryTruncated = true
	see(t, tr, s)
	if tj := tr.jobs["l2"]; tj == nil || tj.at != atRetry {
		t.Fatalf("l2 out of view: %+v, want still in the retry set", tj)
	}
}

func TestTrackerHistoryOnly(t *testing.T) {
	tr := newTestTracker()
	tr.historyOnly = true
	failed := pj("m", "Charge", 1099.5, "retry_count", 0, "failed_at", 1100.5)
	dead := pj("n", "Charge", 1090, "retry_count", 3, "failed_at", 1091.0, "retried_at", 1095.0)
	got := see(t, tr, at(1101).queue("default", pj("o", "Charge", 1100)).retry(failed, 1105).dead(dead, 1095.5).proc("P", "b1", pj("q", "Charge", 1100)))
	want(t, "history", got, "job.failed 4 retry=false @1095", "job.dead 4 @1095.5", "job.failed 1 retry=true @1100.5")
}

func TestTrackerMissedRuns(t *testing.T) {
	tr := newTestTracker()
	see(t, tr, at(1000).proc("P", "b0").stats(100, 0))
	// 5 runs went through between two polls, unseen.
	see(t, tr, at(1005).proc("P", "b1").stats(105, 0))
	if tr.missedNow != 0 {
		t.Fatalf("missed reported before settling: %d", tr.missedNow)
	}
	see(t, tr, at(1030).proc("P", "b2").stats(105, 0))
	if tr.missedNow != 5 || tr.missedReported != 5 {
		t.Errorf("missed now %d, reported %d; want 5, 5", tr.missedNow, tr.missedReported)
	}
	see(t, tr, at(1060).proc("P", "b3").stats(105, 0))
	if tr.missedNow != 0 {
		t.Errorf("missed reported twice: %d", tr.missedNow)
	}
	// With queues: set, stat:processed also counts other queues' runs.
	some := newTestTracker()
	some.match = Config{Queues: []string{"mailers"}}.matchQueue
	see(t, some, at(1000).proc("P", "b0").stats(100, 0))
	see(t, some, at(1030).proc("P", "b1").stats(105, 0))
	see(t, some, at(1060).proc("P", "b2").stats(105, 0))
	if some.missedReported != 0 {
		t.Errorf("a source of some queues reported %d runs missed", some.missedReported)
	}
	_ = time.Second
}

func TestTrackerDeadProcessThatCouldNotHaveRunIt(t *testing.T) {
	t.Run("other queues", func(t *testing.T) {
		tr := newTestTracker()
		j := pj("u", "Export", 1099.5)
		slow := at(1100).queue("default", j).proc("P", "p1")
		slow.s.Processes = append(slow.s.Processes, process{Identity: "S", Exists: true, Beat: "s1", Queues: []string{"slow"}})
		see(t, tr, slow)
		s := at(1101).proc("P", "p1")
		s.s.Processes = append(s.s.Processes, process{Identity: "S", Exists: true, Beat: "s1"})
		see(t, tr, s)
		// S never beats again; P does: S only fetches from slow.
		want(t, "judged without S", see(t, tr, at(1106).proc("P", "p2").proc("S", "s1")), "job.succeeded 1 @1106")
	})
	t.Run("silent before", func(t *testing.T) {
		tr := newTestTracker()
		see(t, tr, at(1000).proc("P", "p0").proc("Q", "q1"))
		j := pj("w", "Export", 1019.5)
		// Q has not beaten for 20 s when the job is seen waiting.
		see(t, tr, at(1020).queue("default", j).proc("P", "p1").proc("Q", "q1"))
		see(t, tr, at(1021).proc("P", "p1").proc("Q", "q1"))
		want(t, "P beat, Q not dead yet", see(t, tr, at(1025).proc("P", "p2").proc("Q", "q1")))
		want(t, "Q declared dead", see(t, tr, at(1031).proc("P", "p3").proc("Q", "q1")), "job.succeeded 1 @1031")
	})
}

func TestTrackerQueuesFilter(t *testing.T) {
	tr := newTestTracker()
	tr.match = Config{Queues: []string{"mail*"}}.matchQueue
	other := pj("x1", "Charge", 1099.5, "retry_count", 0, "failed_at", 1100.5)
	mine := strings.Replace(pj("x2", "SendReceipt", 1099.5, "retry_count", 0, "failed_at", 1100.5), `"queue":"default"`, `"queue":"mailers"`, 1)
	got := see(t, tr, at(1101).retry(other, 1105).retry(mine, 1106).proc("P", "b1", other))
	want(t, "only mailers", got, "job.enqueued @1099.5", "job.started 1 @1099.5", "job.failed 1 retry=true @1100.5")
	if len(tr.jobs) != 1 || tr.jobs["x2"] == nil {
		t.Errorf("followed %v, want x2 only", tr.jobs)
	}
}
