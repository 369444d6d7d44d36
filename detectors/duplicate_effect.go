package detectors

import (
	"fmt"

	"github.com/twicehq/twice/twicetype"
)

// duplicateEffect finds an effect_key observed more than max_per_key times
// and says why: a replay of a dead job, a redelivery of one job, several
// enqueues of the same work, or unknown when no effect links to a job.
type duplicateEffect struct{ st Settings }

func newDuplicateEffect(st Settings) *duplicateEffect { return &duplicateEffect{st: st} }

func (*duplicateEffect) ID() string { return twicetype.DuplicateEffect }

// releaseKey judges a key once it can see no more effects.
func (d *duplicateEffect) releaseKey(s *Set, k *EffectKey) {
	if f := d.judge(s, k); f != nil {
		s.findings.add(k.Key, f)
	}
}

// judge returns the finding for the effects of k seen so far, nil when
// they are within max_per_key.
func (d *duplicateEffect) judge(s *Set, k *EffectKey) *twicetype.Finding {
	n := len(k.effects)
	if n <= d.st.MaxPerKey {
		return nil
	}
	var jobIDs []string
	spans := map[string]*linkSpan{}
	link := func(id string, j *Job, ord uint64) {
		sp := spans[id]
		if sp == nil {
			sp = &linkSpan{job: j, first: ord}
			spans[id] = sp
			jobIDs = append(jobIDs, id)
		}
		if sp.job == nil {
			sp.job = j
		}
		sp.last = ord
	}
	events := make([]string, 0, n)
	for i := range k.effects {
		e := &k.effects[i]
		events = append(events, e.ref)
		if e.jobID != "" {
			link(e.jobID, s.jobs[e.jobID], e.ord)
			continue
		}
		// Jobs that rendered the key when the effect was seen, and those
		// that render it now (a job may learn its key later).
		for _, id := range e.linked {
			link(id, s.jobs[id], e.ord)
		}
		var buf [4]*Job
		for _, j := range s.linked.jobs(e.effect, k.Key, buf[:0]) {
			link(j.ID, j, e.ord)
		}
	}
	cause := "unknown"
	switch {
	case len(jobIDs) == 0:
	case replayed(spans):
		cause = "replay"
	case len(jobIDs) == 1:
		cause = "redelivery"
	default:
		cause = "duplicate-enqueue"
	}
	f := base(d.ID(), d.st)
	f.Subject = s.show("effect_key", k.Key)
	f.Count = int64(n)
	f.FirstTime, f.LastTime = k.effects[0].time, k.effects[n-1].time
	for _, id := range jobIDs {
		f.Jobs = append(f.Jobs, s.show("job_id", id))
	}
	f.Events = events
	f.Cause = cause
	effect := k.effects[0].effect
	f.Message = fmt.Sprintf("%s %s happened %d times", s.show("effect", effect), f.Subject, n)
	f.Details = map[string]any{"effect": s.show("effect", effect), "max_per_key": int64(d.st.MaxPerKey)}
	return f
}

// linkSpan is the first and last effect of a key linked to one job.
type linkSpan struct {
	job         *Job
	first, last uint64
}

// replayed reports whether one of the linked jobs went job.dead and was
// enqueued again, both between two of the effects linked to it.
func replayed(spans map[string]*linkSpan) bool {
	for _, sp := range spans {
		if sp.job == nil {
			continue
		}
		for _, r := range sp.job.replays {
			if sp.first < r.deadOrd && r.enqOrd < sp.last {
				return true
			}
		}
	}
	return false
}
