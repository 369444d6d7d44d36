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
	jobs := map[string]*Job{}
	// first and last are the first and last effects that link to a job.
	var first, last uint64
	link := func(id string, j *Job, ord uint64) {
		if _, ok := jobs[id]; !ok {
			jobIDs = append(jobIDs, id)
		}
		if jobs[id] == nil {
			jobs[id] = j
		}
		if first == 0 {
			first = ord
		}
		last = ord
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
	case replayed(jobIDs, jobs, first, last):
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
	if len(jobIDs) > 0 {
		s.label(f, jobs[jobIDs[0]], d.ID(), k.Key)
	}
	effect := k.effects[0].effect
	f.Message = fmt.Sprintf("%s %s happened %d times", s.show("effect", effect), f.Subject, n)
	f.Details = map[string]any{"effect": s.show("effect", effect), "max_per_key": int64(d.st.MaxPerKey)}
	if s.opts.Impact != nil {
		linked := make([]*Job, 0, len(jobIDs))
		for _, id := range jobIDs {
			linked = append(linked, jobs[id])
		}
		s.impactDetails(f, k, n, linked)
	}
	return f
}

// replayed reports whether one of the linked jobs went job.dead and was
// enqueued again, both between two of the key's linked effects (spec §2):
// between the first and the last effect that link to a job, whichever
// jobs those are.
func replayed(ids []string, jobs map[string]*Job, first, last uint64) bool {
	for _, id := range ids {
		j := jobs[id]
		if j == nil {
			continue
		}
		for _, r := range j.replays {
			if first < r.deadOrd && r.enqOrd < last {
				return true
			}
		}
	}
	return false
}
