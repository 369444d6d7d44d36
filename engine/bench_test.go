package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/twicehq/twice/detectors"
	"github.com/twicehq/twice/twicetype"
)

// benchEvents builds a realistic stream: per job an enqueue, a start, an
// effect and a success, with a retried crash every 100th job. Jobs start
// 1.4 s apart, so the horizon releases state as the stream goes.
func benchEvents(n int) []twicetype.Event {
	evs := make([]twicetype.Event, 0, n+8)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for j := 0; len(evs) < n; j++ {
		t := t0 + int64(j)*1400*int64(time.Millisecond)
		id := fmt.Sprintf("j-%d", j)
		key := fmt.Sprintf("payment:%d", j)
		mk := func(k twicetype.Kind, dt time.Duration) twicetype.Event {
			e := twicetype.Event{
				ID: fmt.Sprintf("e-%d", len(evs)), Time: t + int64(dt), Kind: k,
				Queue: "emails", JobType: "SendReceipt", JobID: id, Key: key,
			}
			e.Identity = xxhash.Sum64String(e.ID)
			return e
		}
		evs = append(evs, mk(twicetype.JobEnqueued, 0))
		st := mk(twicetype.JobStarted, 50*time.Millisecond)
		st.Attempt, st.HasAttempt = 1, true
		evs = append(evs, st)
		eff := mk(twicetype.Effect, 80*time.Millisecond)
		eff.Effect, eff.EffectKey = "email.sent", "receipt/"+key
		eff.Entity, eff.Seq, eff.HasSeq = "order:"+key, 1, true
		evs = append(evs, eff)
		if j%100 == 0 {
			st2 := mk(twicetype.JobStarted, 90*time.Millisecond)
			st2.Attempt, st2.HasAttempt = 2, true
			evs = append(evs, st2)
			eff2 := eff
			eff2.ID = fmt.Sprintf("e-%d", len(evs))
			eff2.Identity = xxhash.Sum64String(eff2.ID)
			eff2.Time += int64(20 * time.Millisecond)
			evs = append(evs, eff2)
		}
		evs = append(evs, mk(twicetype.JobSucceeded, 120*time.Millisecond))
	}
	return evs[:n]
}

func benchOptions() Options {
	return Options{
		Lateness: -1,
		Detectors: detectors.Options{Rules: []detectors.Rule{{
			JobType: "SendReceipt", Effect: "email.sent", Within: 5 * time.Minute, Count: 1,
			Render: func(j *detectors.Job) (string, bool) { return "receipt/" + j.Key, j.Key != "" },
		}}},
	}
}

// BenchmarkEngine measures the engine alone (identity, reorder buffer,
// all ten detectors) on parsed events.
func BenchmarkEngine(b *testing.B) {
	evs := benchEvents(200_000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := New(benchOptions())
		for k := range evs {
			e.Add(&evs[k])
		}
		rep := e.Finish()
		if rep.Summary.Events != int64(len(evs)) {
			b.Fatalf("events = %d", rep.Summary.Events)
		}
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkEngineBaselineMaps does the least any correlation of these
// events must: a set of identities and one map entry per job, touched by
// every event. BenchmarkEngine is read against it (ratio of ns/op).
func BenchmarkEngineBaselineMaps(b *testing.B) {
	evs := benchEvents(200_000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ids := make(map[uint64]struct{})
		jobs := make(map[string]int)
		for k := range evs {
			ev := &evs[k]
			if _, ok := ids[ev.Identity]; ok {
				continue
			}
			ids[ev.Identity] = struct{}{}
			jobs[ev.JobID]++
		}
		if len(ids) != len(evs) {
			b.Fatalf("ids = %d", len(ids))
		}
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
}
