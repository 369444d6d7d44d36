package detectors

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/twicehq/twice/twicetype"
)

// openRecordCase feeds n records of one kind into a Set with every
// detector on, each record made by the events a realistic stream has for
// it, and nothing old enough for the horizon to release.
type openRecordCase struct {
	name   string
	events func(i int, t int64, emit func(*twicetype.Event))
	open   func(s *Set) int
}

// parsedEvent builds an event whose strings share one allocation, as
// collectors/jsonl's parser makes them, so that what a record keeps of an
// event's strings counts as it does in an audit.
func parsedEvent(k twicetype.Kind, t int64, id, jobID, key, effectKey, entity string) *twicetype.Event {
	all := id + jobID + key + effectKey + entity
	cut := func(n int) string {
		s := all[:n]
		all = all[n:]
		return s
	}
	ev := &twicetype.Event{Kind: k, Time: t, Source: "events.jsonl"}
	ev.ID, ev.JobID, ev.Key, ev.EffectKey, ev.Entity = cut(len(id)), cut(len(jobID)), cut(len(key)), cut(len(effectKey)), cut(len(entity))
	return ev
}

var openRecordCases = []openRecordCase{{
	// A job as scripts/gen writes most of them: enqueued with its type,
	// queue, key and entity, started, succeeded (its effect is another
	// record, counted below).
	name: "job",
	events: func(i int, t int64, emit func(*twicetype.Event)) {
		n := strconv.Itoa(100000 + i)
		enq := parsedEvent(twicetype.JobEnqueued, t, "e"+n+"a", "j-"+n, "payment:"+n, "", "order:"+n)
		enq.Queue, enq.JobType, enq.Seq, enq.HasSeq = "emails", "SendReceipt", 2, true
		emit(enq)
		st := parsedEvent(twicetype.JobStarted, t+1, "e"+n+"b", "j-"+n, "", "", "")
		st.Queue, st.Attempt, st.HasAttempt = "emails", 1, true
		emit(st)
		ok := parsedEvent(twicetype.JobSucceeded, t+2, "e"+n+"c", "j-"+n, "", "", "")
		ok.Attempt, ok.HasAttempt = 1, true
		emit(ok)
	},
	open: func(s *Set) int { j, _, _ := s.Open(); return j },
}, {
	// An effect key with its one effect, without job_id or entity (a
	// job's effect is counted with the key, not with the job).
	name: "effect_key",
	events: func(i int, t int64, emit func(*twicetype.Event)) {
		n := strconv.Itoa(100000 + i)
		ev := parsedEvent(twicetype.Effect, t, "e"+n, "", "", "receipt/payment:"+n, "")
		ev.Effect = "email.sent"
		emit(ev)
	},
	open: func(s *Set) int { _, k, _ := s.Open(); return k },
}, {
	// An entity with one state event (seq and a status).
	name: "entity",
	events: func(i int, t int64, emit func(*twicetype.Event)) {
		n := strconv.Itoa(100000 + i)
		ev := parsedEvent(twicetype.State, t, "e"+n, "", "", "", "order:"+n)
		ev.Seq, ev.HasSeq = 1, true
		emit(ev)
	},
	open: func(s *Set) int { _, _, e := s.Open(); return e },
}}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// openRecordBytes returns the heap a Set holds per open record after n
// records of c: the records, their map and expiry entries, the strings
// they keep, the detectors' state for them.
func openRecordBytes(tb testing.TB, c openRecordCase, n int) float64 {
	rule := Rule{
		JobType: "SendReceipt", Effect: "email.sent", Within: 5 * time.Minute, Count: 1,
		Render: func(j *Job) (string, bool) { return "receipt/" + j.Key, j.Key != "" },
	}
	before := heapInUse()
	s := New(Options{Rules: []Rule{rule}})
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := range n {
		// 1 ms apart: n records span far less than the horizon.
		c.events(i, t0+int64(i)*int64(time.Millisecond), s.Process)
	}
	after := heapInUse()
	open := c.open(s)
	if open != n {
		tb.Fatalf("%s: %d open records after %d, want all of them", c.name, open, n)
	}
	runtime.KeepAlive(s)
	return float64(after-before) / float64(open)
}

// BenchmarkOpenRecordBytes reports the heap bytes per open job, effect key
// and entity (B/job, B/effect_key, B/entity): what the audit's memory
// grows by with open state.
//
//	go test -run '^$' -bench OpenRecordBytes -benchtime 1x ./detectors
func BenchmarkOpenRecordBytes(b *testing.B) {
	for _, c := range openRecordCases {
		b.Run(c.name, func(b *testing.B) {
			var per float64
			for range b.N {
				per = openRecordBytes(b, c, 100_000)
			}
			b.ReportMetric(per, "B/"+c.name)
		})
	}
}

// TestOpenRecordBytes keeps the bytes per open record from growing back
// unnoticed: each stays under a bound a little above what it measures
// now (see BenchmarkOpenRecordBytes).
func TestOpenRecordBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the heap of 20,000 records of each kind")
	}
	bound := map[string]float64{"job": 1000, "effect_key": 300, "entity": 240}
	for _, c := range openRecordCases {
		per := openRecordBytes(t, c, 20_000)
		t.Logf("%s: %.0f bytes per open record", c.name, per)
		if per > bound[c.name] {
			t.Errorf("%s: %.0f bytes per open record, want at most %.0f", c.name, per, bound[c.name])
		}
	}
}
