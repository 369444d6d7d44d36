package bullmq

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// entries builds stream entries from lines "MS-SEQ event k=v k=v" (the
// event name is the "event" field).
func entries(t *testing.T, lines ...string) []entry {
	t.Helper()
	var out []entry
	for _, l := range lines {
		parts := strings.Fields(l)
		id, err := parseStreamID(parts[0])
		if err != nil {
			t.Fatal(err)
		}
		f := map[string]string{}
		if parts[1] != "-" {
			f["event"] = parts[1]
		}
		for _, kv := range parts[2:] {
			k, v, _ := strings.Cut(kv, "=")
			f[k] = v
		}
		out = append(out, entry{id: id, fields: f})
	}
	return out
}

// fakeRedis answers lookups from job hashes and stream entries after the
// batch, and records what it was asked.
type fakeRedis struct {
	jobs  map[string]jobInfo
	after []entry
	asked [][]string
	fail  error
}

func (f *fakeRedis) lookup(jobs []string, withAfter bool, last streamID) (*lookupResult, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	f.asked = append(f.asked, jobs)
	res := &lookupResult{jobs: map[string]jobInfo{}}
	for _, j := range jobs {
		res.jobs[j] = f.jobs[j]
	}
	if withAfter {
		for _, e := range f.after {
			if last.less(e.id) {
				res.after = append(res.after, e)
			}
		}
	}
	return res, nil
}

func job(name, data string, ats int64) jobInfo {
	return toJobInfo("", []any{name, data, "{}", "1700000000000", fmt.Sprint(ats)})
}

func testQueue(t *testing.T, c Config) *queue {
	t.Helper()
	m, err := newMapping(&c)
	if err != nil {
		t.Fatal(err)
	}
	return newQueue("jobs", "bull", "payments", m, t.Logf)
}

// summary writes the events of outs compactly: "kind job attempt
// [retry] [key] [error]", and "-" for an entry that maps to nothing.
func summary(outs []output) []string {
	var s []string
	for _, o := range outs {
		switch {
		case o.malformed != nil:
			s = append(s, "malformed: "+o.malformed.Reason)
		case o.event == nil:
			s = append(s, "-")
		default:
			e := o.event
			line := fmt.Sprintf("%s %s", e.Kind, e.JobID)
			if e.HasAttempt {
				line += fmt.Sprintf(" #%d", e.Attempt)
			}
			if e.HasRetry && e.Retry {
				line += " retry"
			}
			if e.Key != "" {
				line += " key=" + e.Key
			}
			if e.JobType != "" {
				line += " type=" + e.JobType
			}
			s = append(s, line)
		}
	}
	return s
}

func check(t *testing.T, got []output, want ...string) {
	t.Helper()
	g := summary(got)
	if strings.Join(g, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n  %s\nwant:\n  %s", strings.Join(g, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestMapLifecycles maps the entries bullmq 6.7.6 wrote for the fault mix
// of the integration test (copied from a real run): a success, a failure
// retried after a backoff (delayed), one retried at once (waiting from
// active), a job that used up its attempts, a dead job replayed, and a
// stall.
func TestMapLifecycles(t *testing.T) {
	q := testQueue(t, Config{Key: "data.payment"})
	r := &fakeRedis{jobs: map[string]jobInfo{
		"1": job("SendReceipt", `{"payment":"payment:1"}`, 1),
		"2": job("SendReceipt", `{"payment":"payment:2"}`, 2),
		"3": job("SendReceipt", `{"payment":"payment:3"}`, 2),
		"4": job("SendReceipt", `{"payment":"payment:4"}`, 2),
		"5": job("SendReceipt", `{"payment":"payment:5"}`, 2),
		"6": job("SendReceipt", `{"payment":"payment:6"}`, 2),
	}}
	batch := entries(t,
		"1000-0 added jobId=1 name=SendReceipt",
		"1000-1 waiting jobId=1",
		"1001-0 active jobId=1 prev=waiting",
		"1002-0 added jobId=2 name=SendReceipt",
		"1002-1 waiting jobId=2",
		"1003-0 added jobId=3 name=SendReceipt",
		"1003-1 waiting jobId=3",
		"1004-0 active jobId=2 prev=waiting",
		"1005-0 completed jobId=1 returnvalue=sent prev=active",
		"1005-1 active jobId=3 prev=waiting",
		"1006-0 added jobId=4 name=SendReceipt",
		"1006-1 waiting jobId=4",
		"1007-0 active jobId=4 prev=waiting",
		"1008-0 added jobId=5 name=SendReceipt",
		"1008-1 waiting jobId=5",
		"1009-0 active jobId=5 prev=waiting",
		"1010-0 delayed jobId=2 delay=1200",
		"1011-0 waiting jobId=3 prev=active",
		"1012-0 waiting jobId=4 prev=active",
		"1012-1 failed jobId=5 failedReason=crashed prev=active",
		"1012-2 retries-exhausted jobId=5 attemptsMade=1",
		"1012-3 active jobId=3 prev=waiting",
		"1013-0 active jobId=4 prev=waiting",
		"1014-0 completed jobId=3 returnvalue=sent prev=active",
		"1015-0 failed jobId=4 failedReason=unavailable prev=active",
		"1015-1 retries-exhausted jobId=4 attemptsMade=2",
		"1200-0 waiting jobId=2 prev=delayed",
		"1200-1 active jobId=2 prev=waiting",
		"1201-0 completed jobId=2 returnvalue=sent prev=active",
		"1201-1 drained",
		"1300-0 added jobId=6 name=SendReceipt",
		"1300-1 waiting jobId=6",
		"1301-0 active jobId=6 prev=waiting",
		"2000-0 waiting jobId=5 prev=failed",
		"2001-0 active jobId=5 prev=waiting",
		"2002-0 completed jobId=5 returnvalue=sent prev=active",
		"3000-0 waiting jobId=6 prev=active",
		"3000-1 stalled jobId=6",
		"3001-0 active jobId=6 prev=waiting",
		"3002-0 completed jobId=6 returnvalue=sent prev=active",
	)
	outs, err := q.mapBatch(batch, false, r.lookup)
	if err != nil {
		t.Fatal(err)
	}
	check(t, outs,
		"job.enqueued 1 key=payment:1 type=SendReceipt",
		"-",
		"job.started 1 #1 key=payment:1 type=SendReceipt",
		"job.enqueued 2 key=payment:2 type=SendReceipt",
		"-",
		"job.enqueued 3 key=payment:3 type=SendReceipt",
		"-",
		"job.started 2 #1 key=payment:2 type=SendReceipt",
		"job.succeeded 1 #1 key=payment:1 type=SendReceipt",
		"job.started 3 #1 key=payment:3 type=SendReceipt",
		"job.enqueued 4 key=payment:4 type=SendReceipt",
		"-",
		"job.started 4 #1 key=payment:4 type=SendReceipt",
		"job.enqueued 5 key=payment:5 type=SendReceipt",
		"-",
		"job.started 5 #1 key=payment:5 type=SendReceipt",
		"job.failed 2 #1 retry key=payment:2 type=SendReceipt",
		"job.failed 3 #1 retry key=payment:3 type=SendReceipt",
		"job.failed 4 #1 retry key=payment:4 type=SendReceipt",
		"job.dead 5 #1 key=payment:5 type=SendReceipt",
		"-",
		"job.started 3 #2 key=payment:3 type=SendReceipt",
		"job.started 4 #2 key=payment:4 type=SendReceipt",
		"job.succeeded 3 #2 key=payment:3 type=SendReceipt",
		"job.dead 4 #2 key=payment:4 type=SendReceipt",
		"-",
		"-",
		"job.started 2 #2 key=payment:2 type=SendReceipt",
		"job.succeeded 2 #2 key=payment:2 type=SendReceipt",
		"-",
		"job.enqueued 6 key=payment:6 type=SendReceipt",
		"-",
		"job.started 6 #1 key=payment:6 type=SendReceipt",
		"job.enqueued 5 key=payment:5 type=SendReceipt",
		"job.started 5 #2 key=payment:5 type=SendReceipt",
		"job.succeeded 5 #2 key=payment:5 type=SendReceipt",
		"-",
		"job.failed 6 #1 retry key=payment:6 type=SendReceipt",
		"job.started 6 #2 key=payment:6 type=SendReceipt",
		"job.succeeded 6 #2 key=payment:6 type=SendReceipt",
	)
	ev := outs[19].event // the dead job
	if ev.Error != "crashed" || ev.Queue != "payments" || ev.ID != "bull:payments:1012-1" {
		t.Errorf("job.dead: error %q queue %q id %q", ev.Error, ev.Queue, ev.ID)
	}
	if got := outs[37].event.Error; !strings.HasPrefix(got, "stalled") {
		t.Errorf("the stall's error is %q", got)
	}
	if ts := outs[0].event.Time; ts != 1000*1e6 {
		t.Errorf("event time %d, want the entry id's milliseconds", ts)
	}
	st := q.stats.Snapshot()
	if st.Entries != int64(len(batch)) || st.Ignored["retries-exhausted"] != 2 || st.Ignored["drained"] != 1 || st.Ignored["waiting (stalled)"] != 1 {
		t.Errorf("stats %+v", st)
	}
	// Every job ended: nothing is remembered.
	if len(q.jobs) != 0 {
		t.Errorf("%d jobs remembered after they ended", len(q.jobs))
	}
}

// TestMapResolvesAttempts starts reading in the middle of jobs' lives:
// the attempt counts come from the hashes' ats less the starts that
// followed in the stream, read in one transaction.
func TestMapResolvesAttempts(t *testing.T) {
	q := testQueue(t, Config{Key: "data.p"})
	r := &fakeRedis{
		jobs: map[string]jobInfo{
			"7": job("Sync", `{"p":"a"}`, 4), // 2 starts before the batch, 1 in it, 1 after
			"8": job("Sync", `{"p":"b"}`, 3), // started 3 times, none after
			"9": {},                          // removed since
		},
		after: entries(t, "5000-0 active jobId=7 prev=waiting"),
	}
	batch := entries(t,
		"4000-0 delayed jobId=7 delay=4500",
		"4001-0 completed jobId=8 prev=active",
		"4002-0 waiting jobId=7 prev=delayed",
		"4003-0 active jobId=7 prev=waiting",
		"4004-0 active jobId=9 prev=waiting",
		"4005-0 completed jobId=9 prev=active",
	)
	outs, err := q.mapBatch(batch, false, r.lookup)
	if err != nil {
		t.Fatal(err)
	}
	check(t, outs,
		"job.failed 7 #2 retry key=a type=Sync",
		"job.succeeded 8 #3 key=b type=Sync",
		"-",
		"job.started 7 #3 key=a type=Sync",
		"job.started 9",
		"job.succeeded 9",
	)
	if st := q.stats.Snapshot(); st.HashMissing != 1 || st.AttemptsUnknown != 2 {
		t.Errorf("stats %+v: want 1 hash missing, 2 events without attempt", st)
	}
	// Job 7 is remembered: its next start needs no read.
	r.asked = nil
	outs, _ = q.mapBatch(entries(t, "5000-0 active jobId=7 prev=waiting"), false, r.lookup)
	check(t, outs, "job.started 7 #4 key=a type=Sync")
	if len(r.asked) != 0 {
		t.Errorf("asked Redis for %v", r.asked)
	}
}

// TestMapHoldsStallAtBatchEnd: a "waiting" from "active" at the end of a
// full read is left for the next, where its "stalled" shows; at the end
// of a read that was not full, nothing follows it: a retry at once.
func TestMapHoldsStallAtBatchEnd(t *testing.T) {
	q := testQueue(t, Config{})
	r := &fakeRedis{}
	outs, _ := q.mapBatch(entries(t,
		"1-0 added jobId=1 name=A",
		"2-0 active jobId=1 prev=waiting",
		"3-0 waiting jobId=1 prev=active",
	), true, r.lookup)
	check(t, outs, "job.enqueued 1 type=A", "job.started 1 #1 type=A")
	outs, _ = q.mapBatch(entries(t,
		"3-0 waiting jobId=1 prev=active",
		"3-1 stalled jobId=1",
		"4-0 active jobId=1 prev=waiting",
		"5-0 waiting jobId=1 prev=active",
	), false, r.lookup)
	check(t, outs, "-", "job.failed 1 #1 retry type=A", "job.started 1 #2 type=A", "job.failed 1 #2 retry type=A")
	if len(r.asked) != 0 {
		t.Errorf("asked Redis for %v: the names were in the entries", r.asked)
	}
}

// TestMapOtherEntries: delayed jobs, removals, deduplication, and entries
// that cannot be mapped.
func TestMapOtherEntries(t *testing.T) {
	q := testQueue(t, Config{Key: "data.k", Entity: "data.e", Attrs: map[string]string{"amount": "data.amount", "none": "data.nothing"}})
	r := &fakeRedis{jobs: map[string]jobInfo{
		"d": job("Later", `{"k":1,"e":"order:1","amount":12.50}`, 0),
		"x": job("Later", `not json`, 0),
	}}
	outs, err := q.mapBatch(entries(t,
		"1-0 added jobId=d name=Later",
		"1-1 delayed jobId=d delay=9",
		"2-0 added jobId=x name=Later",
		"2-1 waiting jobId=x",
		"3-0 removed jobId=d prev=delayed",
		"3-1 removed jobId=old prev=completed",
		"4-0 duplicated jobId=x",
		"4-1 deduplicated jobId=x deduplicationId=k deduplicatedJobId=y",
		"5-0 active prev=waiting",
		"5-1 -",
		"6-0 progress jobId=x data=50",
	), false, r.lookup)
	if err != nil {
		t.Fatal(err)
	}
	check(t, outs,
		"job.enqueued d key=1 type=Later",
		"-",
		"job.enqueued x type=Later",
		"-",
		"job.discarded d key=1 type=Later",
		"-",
		"-",
		"-",
		`malformed: entry 5-0: "active" without jobId`,
		"malformed: entry 5-1: no event name",
		"-",
	)
	if got := string(outs[0].event.Attrs); got != `{"amount":12.50}` {
		t.Errorf("attrs %s", got)
	}
	if got := outs[0].event.Entity; got != "order:1" {
		t.Errorf("entity %q", got)
	}
	st := q.stats.Snapshot()
	if st.PayloadErrors != 1 || st.Malformed != 2 || st.Ignored["duplicated"] != 1 || st.Ignored["deduplicated"] != 1 || st.Ignored["delayed"] != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestMapLookupFails: when Redis cannot be read, nothing moves.
func TestMapLookupFails(t *testing.T) {
	q := testQueue(t, Config{Key: "data.k"})
	r := &fakeRedis{fail: errors.New("connection refused")}
	batch := entries(t, "1-0 added jobId=1 name=A", "2-0 active jobId=1 prev=waiting")
	if _, err := q.mapBatch(batch, false, r.lookup); err == nil {
		t.Fatal("no error")
	}
	if len(q.jobs) != 0 || q.stats.Snapshot().Entries != 0 {
		t.Fatalf("state moved: %d jobs, %+v", len(q.jobs), q.stats.Snapshot())
	}
	r.fail = nil
	r.jobs = map[string]jobInfo{"1": job("A", `{"k":"v"}`, 1)}
	outs, err := q.mapBatch(batch, false, r.lookup)
	if err != nil {
		t.Fatal(err)
	}
	check(t, outs, "job.enqueued 1 key=v type=A", "job.started 1 #1 key=v type=A")
}

func TestPosition(t *testing.T) {
	for _, s := range []string{"0-0", "1700000000000-3", "1700000000000-3/1234"} {
		p, err := parsePosition(s)
		if err != nil || p.String() != s {
			t.Errorf("%q: %v, %v", s, p, err)
		}
	}
	for _, s := range []string{"", "x", "1-2/-1", "1-2/x", "1-x"} {
		if _, err := parsePosition(s); err == nil {
			t.Errorf("%q: no error", s)
		}
	}
	a, _ := parseStreamID("5-1")
	b, _ := parseStreamID("5-2")
	c, _ := parseStreamID("6-0")
	if !a.less(b) || !b.less(c) || c.less(a) || a.less(a) {
		t.Error("order of stream ids")
	}
}
