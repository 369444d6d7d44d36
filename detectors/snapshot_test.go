package detectors

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/twicehq/twice/internal/codec"
	"github.com/twicehq/twice/twicetype"
)

// snapCovered lists, per struct of the detector state, every field and
// how Snapshot handles it: "enc" written and restored, "cfg" rebuilt by
// New from the Options, "derived" rebuilt on restore from what is
// written. TestSnapshotCoversEveryField fails when a struct gains,
// loses or renames a field: decide how the snapshot handles it (and
// encode it in snapshot.go), then add it here.
var snapCovered = map[reflect.Type]map[string]string{
	reflect.TypeFor[Set](): {
		"opts": "cfg", "settings": "cfg", "rules": "cfg", "horizon": "cfg", "detectors": "cfg",
		"observers": "cfg", "advancers": "cfg", "jobRel": "cfg", "keyRel": "cfg", "entityRel": "cfg",
		"finishers": "cfg", "dup": "cfg", "ooo": "cfg", "dl": "cfg", "me": "cfg", "rs": "cfg", "se": "cfg",
		"ruleJobs": "enc", "ruleRendered": "enc",
		"jobs": "enc", "jobIDs": "enc", "keys": "enc", "entities": "enc", "linked": "enc", "pins": "derived",
		"jobExp": "enc", "keyExp": "enc", "entityExp": "enc", "clock": "enc", "started": "enc",
		"ord": "enc", "evicted": "enc", "findings": "enc", "score": "enc",
	},
	reflect.TypeFor[Job](): {
		"ID": "enc", "Type": "enc", "Queue": "enc", "Key": "enc", "Entity": "enc", "Attrs": "enc",
		"started": "enc", "life": "enc", "rendered": "enc", "replays": "enc", "replayDead": "enc", "deadOrd": "enc",
		"deadTime": "enc", "deadRef": "enc", "succeeded": "enc", "succTime": "enc", "succRef": "enc",
		"open": "enc", "late": "enc",
		"ebf": "enc", "stale": "enc", "lost": "enc", "miss": "enc", "score": "enc",
	},
	reflect.TypeFor[replay]():      {"deadOrd": "enc", "enqOrd": "enc"},
	reflect.TypeFor[scoreCounts](): {"m": "enc"},
	reflect.TypeFor[EffectKey]():   {"Key": "enc", "effects": "enc", "impact": "enc", "life": "enc"},
	reflect.TypeFor[effectObs](): {
		"ref": "enc", "effect": "enc", "jobID": "enc", "linked": "enc", "time": "enc", "ord": "enc", "attempt": "enc",
	},
	reflect.TypeFor[Entity](): {
		"Name": "enc", "hasSeq": "enc", "maxSeq": "enc", "lastSeq": "enc", "hist": "enc", "life": "enc", "ooo": "enc",
		"terminal": "enc", "termTime": "enc", "termRef": "enc", "termOrd": "enc",
	},
	reflect.TypeFor[life]():           {"lastSeen": "enc", "released": "enc"},
	reflect.TypeFor[linkIndex]():      {"rules": "cfg", "m": "enc"},
	reflect.TypeFor[linkEntry]():      {"first": "enc", "more": "enc"},
	reflect.TypeFor[linkRef]():        {"job": "enc", "rule": "enc"},
	reflect.TypeFor[expiry[Job]]():    {"at": "enc", "rec": "enc"},
	reflect.TypeFor[fifo[int]]():      {"buf": "enc", "head": "enc", "size": "enc"},
	reflect.TypeFor[timers[int]]():    {"inOrder": "enc", "last": "enc", "heap": "enc"},
	reflect.TypeFor[timer[int]]():     {"at": "enc", "v": "enc"},
	reflect.TypeFor[Findings]():       {"byFP": "enc", "order": "enc", "dirty": "enc", "made": "derived"},
	reflect.TypeFor[liveKey]():        {"detector": "enc", "raw": "enc"},
	reflect.TypeFor[ebfState]():       {"cur": "enc", "running": "enc", "ended": "enc", "open": "enc"},
	reflect.TypeFor[attemptRange]():   {"lo": "enc", "hi": "enc"},
	reflect.TypeFor[attemptEffects](): {"attempt": "enc", "refs": "enc", "first": "enc"},
	reflect.TypeFor[staleState](): {
		"waiting": "enc", "enqTime": "enc", "enqRef": "enc", "hasEnqSeq": "enc", "enqSeq": "enc",
	},
	reflect.TypeFor[jobLate](): {"storm": "enc", "held": "enc", "unlabelled": "enc"},
	reflect.TypeFor[heldStart](): {
		"ord": "enc", "time": "enc", "ref": "enc", "attempt": "enc", "hasAttempt": "enc", "check": "enc",
		"enqSeq": "enc", "hasDelay": "enc", "delay": "enc", "enqTime": "enc", "enqRef": "enc",
	},
	reflect.TypeFor[seqStep]():    {"ord": "enc", "prevMax": "enc", "prevHas": "enc"},
	reflect.TypeFor[stormStart](): {"time": "enc", "ord": "enc", "ref": "enc"},
	reflect.TypeFor[stormPend]():  {"job": "derived", "ord": "derived", "time": "derived"},
	reflect.TypeFor[stalePend]():  {"job": "derived", "ord": "derived", "time": "derived"},
	reflect.TypeFor[stormKey]():   {"queue": "enc", "start": "enc"},
	reflect.TypeFor[ordRef]():     {"ord": "enc", "ref": "enc"},
	reflect.TypeFor[lostState](): {
		"seen": "enc", "armed": "enc", "gen": "enc", "started": "enc", "last": "enc", "lastKind": "enc", "lastRef": "enc",
	},
	reflect.TypeFor[oooState](): {
		"count": "enc", "refs": "enc", "jobs": "enc", "first": "enc", "last": "enc", "pairs": "enc", "firstJob": "enc",
	},
	reflect.TypeFor[lostJob]():       {"st": "cfg", "due": "enc"},
	reflect.TypeFor[lostTimer]():     {"job": "enc", "gen": "enc"},
	reflect.TypeFor[missingEffect](): {"st": "cfg", "rules": "cfg", "due": "enc"},
	reflect.TypeFor[expectation]():   {"job": "enc", "key": "enc", "ref": "enc", "succeeded": "enc"},
	reflect.TypeFor[retryStorm](): {
		"st": "cfg", "windows": "enc", "nextEnd": "derived", "waiting": "derived", "pend": "derived",
	},
	reflect.TypeFor[stormWindow](): {"attempts": "enc", "jobs": "enc", "refs": "enc", "first": "enc"},
	reflect.TypeFor[deadLetter]():  {"st": "cfg", "queues": "enc", "dead": "derived"},
	reflect.TypeFor[deadQueue](): {
		"jobType": "enc", "count": "enc", "oldest": "enc", "newest": "enc", "jobs": "enc", "refs": "enc", "perHour": "enc",
	},
	reflect.TypeFor[duplicateEffect]():     {"st": "cfg"},
	reflect.TypeFor[duplicateExecution]():  {"st": "cfg"},
	reflect.TypeFor[effectAfterTerminal](): {"st": "cfg"},
	reflect.TypeFor[effectBeforeFailure](): {"st": "cfg"},
	reflect.TypeFor[outOfOrder]():          {"st": "cfg"},
	reflect.TypeFor[staleExecution]():      {"st": "cfg", "pend": "derived"},
	reflect.TypeFor[twicetype.Finding](): {
		"Detector": "enc", "Severity": "enc", "Subject": "enc", "Fingerprint": "enc", "Count": "enc",
		"FirstTime": "enc", "LastTime": "enc", "Jobs": "enc", "Events": "enc", "Cause": "enc",
		"Message": "enc", "JobType": "enc", "Queue": "enc", "Details": "enc",
	},
}

func TestSnapshotCoversEveryField(t *testing.T) {
	for typ, want := range snapCovered {
		got := map[string]bool{}
		for i := range typ.NumField() {
			name := typ.Field(i).Name
			got[name] = true
			if _, ok := want[name]; !ok {
				t.Errorf("%s.%s is not in the snapshot: encode it in detectors/snapshot.go and list it in snapCovered", typ.Name(), name)
			}
		}
		for name := range want {
			if !got[name] {
				t.Errorf("%s.%s is listed in snapCovered but is no field any more", typ.Name(), name)
			}
		}
	}
	// Every detector's type is listed: a new detector needs its state
	// snapshotted too.
	for _, d := range New(Options{}).detectors {
		if _, ok := snapCovered[reflect.TypeOf(d).Elem()]; !ok {
			t.Errorf("detector type %T is not in snapCovered", d)
		}
	}
}

// snapOptions has two rules (one job type renders two keys, several jobs
// one key) and short deadlines, so that a few thousand events cross many
// horizons, deadlines and windows.
func snapOptions(live bool) Options {
	st := DefaultSettings()
	for id, s := range st {
		s.LostAfter, s.MaxStartDelay, s.Window, s.MinAttempts = 2*time.Minute, 30*time.Second, 10*time.Second, 4
		st[id] = s
	}
	return Options{
		Rules: []Rule{
			{JobType: "SendReceipt", Effect: "email.sent", Within: time.Minute, Count: 1,
				Render: func(j *Job) (string, bool) { return "receipt/" + j.Key, j.Key != "" }},
			{JobType: "SendReceipt", Effect: "ledger.insert", Within: 90 * time.Second, Count: 2,
				Render: func(j *Job) (string, bool) { return "ledger/" + j.Entity, j.Entity != "" }},
			{JobType: "ChargeCard", Effect: "email.sent", Within: 30 * time.Second, Count: 1,
				Render: func(j *Job) (string, bool) { return "receipt/" + j.Key, j.Key != "" }},
		},
		Detectors: st,
		Horizon:   3 * time.Minute,
		Live:      live,
	}
}

// snapStream is a random stream over a small pool of jobs, keys and
// entities: every kind, attempts, effects with and without job_id, seqs
// going back, terminal states, and one event in twenty late.
func snapStream(seed uint64, n int) []twicetype.Event {
	r := rand.New(rand.NewPCG(seed, 7))
	t := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	kinds := []twicetype.Kind{twicetype.JobEnqueued, twicetype.JobStarted, twicetype.JobStarted, twicetype.JobSucceeded,
		twicetype.JobFailed, twicetype.JobDead, twicetype.JobDiscarded, twicetype.Effect, twicetype.Effect, twicetype.State}
	evs := make([]twicetype.Event, 0, n)
	for i := range n {
		t += r.Int64N(int64(2 * time.Second))
		ev := twicetype.Event{ID: "e-" + strconv.Itoa(i), Time: t, Kind: kinds[r.IntN(len(kinds))]}
		if r.IntN(20) == 0 {
			ev.Time -= r.Int64N(int64(time.Minute)) // late
		}
		job := r.IntN(40) + i/25 // a pool that moves along
		entity := "order:" + strconv.Itoa(r.IntN(30)+i/60)
		if ev.Kind.IsJob() || (ev.Kind == twicetype.Effect && r.IntN(3) > 0) {
			ev.JobID = "j-" + strconv.Itoa(job)
		}
		if r.IntN(3) == 0 {
			ev.HasAttempt, ev.Attempt = true, int64(1+r.IntN(3))
		}
		if r.IntN(2) == 0 {
			ev.HasSeq, ev.Seq = true, int64(r.IntN(10))
		}
		switch ev.Kind {
		case twicetype.JobEnqueued:
			ev.JobType = []string{"SendReceipt", "ChargeCard", ""}[job%3]
			ev.Queue = []string{"emails", "payments", ""}[job%3]
			ev.Key = "payment:" + strconv.Itoa(job/2) // two jobs a key
			if job%4 != 0 {
				ev.Entity = entity
			}
			if job%5 == 0 {
				ev.Attrs = []byte(`{"n":1}`)
			}
		case twicetype.JobFailed:
			ev.HasRetry, ev.Retry, ev.Error = true, r.IntN(2) == 0, "boom"
			// Some jobs name their entity and queue only on a later
			// event: held starts, seq history, starts waiting for a
			// queue, relabelled findings.
			ev.Entity, ev.Queue = entity, "late"
		case twicetype.Effect:
			if r.IntN(2) == 0 {
				ev.Effect, ev.EffectKey = "email.sent", "receipt/payment:"+strconv.Itoa(job/2)
			} else {
				ev.Effect, ev.EffectKey = "ledger.insert", "ledger/"+entity
			}
			ev.Entity = entity
		case twicetype.State:
			ev.Entity = entity
			ev.HasTerminal, ev.Terminal = true, r.IntN(8) == 0
		}
		if r.IntN(10) == 0 {
			ev.ID, ev.Source, ev.Line = "", "s.jsonl", int64(i+1)
		}
		evs = append(evs, ev)
	}
	return evs
}

func snapSet(tb testing.TB, s *Set) []byte {
	tb.Helper()
	w := codec.NewWriter(nil)
	s.Snapshot(w)
	if err := w.Err(); err != nil {
		tb.Fatal(err)
	}
	return bytes.Clone(w.Bytes())
}

type snapResult struct {
	Findings []twicetype.Finding
	Pending  int64
	Jobs     int64
	Views    [][]View
}

func snapRun(s *Set, evs []twicetype.Event, from int, end int64) snapResult {
	var res snapResult
	for i := from; i < len(evs); i++ {
		s.Process(&evs[i])
		if i%5 == 4 {
			res.Views = append(res.Views, s.Changes())
		}
	}
	res.Pending = s.Finish(end)
	res.Jobs = s.Jobs()
	res.Findings = s.Findings().Sorted()
	res.Views = append(res.Views, s.Changes())
	return res
}

// TestSetSnapshotCuts cuts a random stream at every 23rd event: the
// restored Set must give the findings, pending count, job count and live
// views of the uninterrupted one, and snapshot to the same bytes. It also
// requires that the cuts met the rarer shapes of state (timers in heaps,
// link entries with several jobs, open retry windows, released dead letters, pending live changes).
func TestSetSnapshotCuts(t *testing.T) {
	for _, v := range []struct {
		name       string
		live, caps bool
	}{{"plain", false, false}, {"live", true, false}, {"capped", false, true}} {
		live := v.live
		snapOptions := func(live bool) Options {
			o := snapOptions(live)
			if v.caps {
				o.MaxJobs, o.MaxKeys, o.MaxEntities = 25, 15, 10
			}
			return o
		}
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			evs := snapStream(1, 1000)
			end := evs[0].Time
			for _, ev := range evs {
				end = max(end, ev.Time)
			}
			want := snapRun(New(snapOptions(live)), evs, 0, end)
			if len(want.Findings) < 30 || want.Pending == 0 {
				t.Fatalf("the stream finds too little: %d findings, %d pending", len(want.Findings), want.Pending)
			}
			seen := map[string]bool{}
			for cut := 0; cut <= len(evs); cut += 23 {
				s := New(snapOptions(live))
				var before [][]View
				for i := range cut {
					s.Process(&evs[i])
					if i%5 == 4 {
						before = append(before, s.Changes())
					}
				}
				snapShapes(s, seen)
				snap := snapSet(t, s)
				r, err := RestoreSet(snapOptions(live), codec.NewReader("snapshot", snap))
				if err != nil {
					t.Fatalf("cut %d: %v", cut, err)
				}
				if again := snapSet(t, r); !bytes.Equal(again, snap) {
					t.Fatalf("cut %d: the snapshot of the restored set differs", cut)
				}
				got := snapRun(r, evs, cut, end)
				got.Views = append(before, got.Views...)
				if !reflect.DeepEqual(got, want) {
					if !reflect.DeepEqual(got.Findings, want.Findings) {
						for i := range min(len(got.Findings), len(want.Findings)) {
							if !reflect.DeepEqual(got.Findings[i], want.Findings[i]) {
								t.Fatalf("cut %d: finding %d\n got %+v\nwant %+v", cut, i, got.Findings[i], want.Findings[i])
							}
						}
					}
					t.Fatalf("cut %d: pending %d/%d jobs %d/%d findings %d/%d views equal %v", cut,
						got.Pending, want.Pending, got.Jobs, want.Jobs, len(got.Findings), len(want.Findings),
						reflect.DeepEqual(got.Views, want.Views))
				}
			}
			shapes := []string{"heap timer", "link more", "storm window", "dead queue", "ebf open", "replay", "ooo pairs",
				"storm waiting", "stale held", "seq hist"}
			if live {
				shapes = append(shapes, "dirty", "dead held")
			}
			if v.caps {
				shapes = append(shapes, "evicted")
			}
			for _, k := range shapes {
				if !seen[k] {
					t.Errorf("no cut had a %s", k)
				}
			}
		})
	}
}

// snapShapes notes the rarer shapes of state s is in.
func snapShapes(s *Set, seen map[string]bool) {
	for _, d := range s.detectors {
		switch d := d.(type) {
		case *lostJob:
			if len(d.due.heap) > 0 {
				seen["heap timer"] = true
			}
		case *missingEffect:
			for i := range d.due {
				if len(d.due[i].heap) > 0 {
					seen["heap timer"] = true
				}
			}
		case *retryStorm:
			if len(d.windows) > 0 {
				seen["storm window"] = true
			}
			if len(d.waiting) > 0 {
				seen["storm waiting"] = true
			}
		case *deadLetter:
			if len(d.queues) > 0 {
				seen["dead queue"] = true
			}
			if len(d.dead) > 0 {
				seen["dead held"] = true
			}
		}
	}
	for _, le := range s.linked.m {
		if len(le.more) > 0 {
			seen["link more"] = true
		}
	}
	for _, j := range s.jobs {
		if len(j.ebf.open) > 0 {
			seen["ebf open"] = true
		}
		if len(j.replays) > 0 {
			seen["replay"] = true
		}
		if len(j.heldStarts()) > 0 {
			seen["stale held"] = true
		}
	}
	for _, e := range s.entities {
		if e.ooo != nil && len(e.ooo.pairs) > 0 {
			seen["ooo pairs"] = true
		}
		if len(e.hist) > 0 {
			seen["seq hist"] = true
		}
	}
	if len(s.findings.dirty) > 0 {
		seen["dirty"] = true
	}
	if s.evicted > 0 {
		seen["evicted"] = true
	}
}

// TestSnapshotDetailValues: every type detectors put in details comes
// back as it was, nil and empty apart.
func TestSnapshotDetailValues(t *testing.T) {
	s := New(Options{})
	f := &twicetype.Finding{Detector: "x", Subject: "s", Severity: twicetype.High, Count: 3, FirstTime: -1, LastTime: math.MaxInt64,
		Details: map[string]any{
			"int64": int64(-5), "int": 7, "uint": uint64(math.MaxUint64), "string": "v", "true": true, "false": false,
			"float": 2.5, "nan": math.Inf(1), "nil": nil, "list": []any{int64(1), "a", map[string]any{"k": []any{}}},
			"empty list": []any{}, "nil list": []any(nil), "map": map[string]any{"a": map[string]any{}},
			"nil map": map[string]any(nil), "strings": []string{"x"},
		}}
	s.findings.add("s", f)
	s.findings.add("t", &twicetype.Finding{Detector: "x", Subject: "t", Jobs: []string{"j"}})
	snap := snapSet(t, s)
	r, err := RestoreSet(Options{}, codec.NewReader("snapshot", snap))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.findings.byFP, s.findings.byFP) || !reflect.DeepEqual(r.findings.order, s.findings.order) {
		t.Fatalf("findings:\n got %+v\nwant %+v", r.findings.Sorted(), s.findings.Sorted())
	}
	s.findings.byFP[s.findings.order[0]].Details["bad"] = struct{}{}
	w := codec.NewWriter(nil)
	s.Snapshot(w)
	if w.Err() == nil {
		t.Fatal("a detail of an unknown type was accepted")
	}
}

func TestRestoreSetRefusesAnotherShape(t *testing.T) {
	s := New(snapOptions(false))
	evs := snapStream(2, 200)
	for i := range evs {
		s.Process(&evs[i])
	}
	snap := snapSet(t, s)
	for name, o := range map[string]Options{
		"horizon": func() Options { o := snapOptions(false); o.Horizon = time.Hour; return o }(),
		"rules":   func() Options { o := snapOptions(false); o.Rules = o.Rules[:2]; return o }(),
		"detectors": func() Options {
			o := snapOptions(false)
			st := o.Detectors[twicetype.RetryStorm]
			st.Enabled = false
			o.Detectors[twicetype.RetryStorm] = st
			return o
		}(),
	} {
		_, err := RestoreSet(o, codec.NewReader("snapshot", snap))
		if err == nil || !errors.Is(err, codec.ErrOtherConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzRestoreSet feeds RestoreSet damaged snapshots with no checksum in
// the way: it must fail cleanly or give a Set that can go on and finish.
func FuzzRestoreSet(f *testing.F) {
	evs := snapStream(3, 400)
	for _, cut := range []int{0, 50, 200, 400} {
		for _, live := range []bool{false, true} {
			s := New(snapOptions(live))
			for i := range cut {
				s.Process(&evs[i])
			}
			f.Add(snapSet(f, s), live)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, live bool) {
		s, err := RestoreSet(snapOptions(live), codec.NewReader("snapshot", data))
		if err != nil {
			return
		}
		for i := 300; i < len(evs); i++ {
			s.Process(&evs[i])
		}
		s.Changes()
		s.Finish(evs[len(evs)-1].Time)
		s.Findings().Sorted()
	})
}

// BenchmarkSetSnapshot measures the detector state alone after 60,000
// random events (the engine benchmark has the full picture).
func BenchmarkSetSnapshot(b *testing.B) {
	evs := snapStream(4, 60_000)
	s := New(snapOptions(false))
	for i := range evs {
		s.Process(&evs[i])
	}
	snap := snapSet(b, s)
	jobs, keys, ents := s.Open()
	b.Logf("%d jobs, %d keys, %d entities, %d findings: %d bytes", jobs, keys, ents, len(s.findings.order), len(snap))
	b.Run("snapshot", func(b *testing.B) {
		w := codec.NewWriter(nil)
		for b.Loop() {
			w.Reset(nil)
			s.Snapshot(w)
		}
		b.ReportMetric(float64(len(w.Bytes())), "bytes")
	})
	b.Run("restore", func(b *testing.B) {
		for b.Loop() {
			if _, err := RestoreSet(snapOptions(false), codec.NewReader("snapshot", snap)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
