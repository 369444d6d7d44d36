package detectors

import (
	"fmt"
	"math"

	"github.com/twicehq/twice/twicetype"
)

// effectBeforeFailure finds the crash window: an attempt produced an effect
// and then failed, went dead, or was followed by another attempt without
// succeeding, so the retry repeats the effect.
type effectBeforeFailure struct{ st Settings }

// ebfState is the per-job state: the attempt running now and the attempts
// that produced effects and have not ended yet.
type ebfState struct {
	cur     int64
	running bool
	// ended is set once the current attempt succeeded, failed, died or
	// was discarded: an effect that carries it arrives too late to be
	// repeated by a retry of it.
	ended bool
	open  []attemptEffects
}

type attemptEffects struct {
	attempt int64
	refs    []string
	first   int64
}

func newEffectBeforeFailure(st Settings) *effectBeforeFailure {
	return &effectBeforeFailure{st: st}
}

func (*effectBeforeFailure) ID() string { return twicetype.EffectBeforeFailure }

func (d *effectBeforeFailure) observe(s *Set, ev *twicetype.Event, r *refs) {
	switch ev.Kind {
	case twicetype.JobStarted:
		st := &r.job.ebf
		a := st.cur
		if a < math.MaxInt64 {
			a++
		}
		if ev.HasAttempt {
			a = ev.Attempt
		}
		// Another attempt started: every other attempt that produced an
		// effect without succeeding left it behind for this one to repeat.
		for i := 0; i < len(st.open); {
			if st.open[i].attempt != a {
				d.flag(s, r.job, st.open[i], ev, "another attempt started")
				st.open = append(st.open[:i], st.open[i+1:]...)
				continue
			}
			i++
		}
		if a != st.cur {
			st.ended = false
		}
		st.cur, st.running = a, true
	case twicetype.Effect:
		j := s.effectJob(ev, r)
		if j == nil {
			return
		}
		st := &j.ebf
		a := int64(0)
		switch {
		case ev.HasAttempt:
			a = ev.Attempt
			// An attempt that was superseded or has ended cannot be
			// repeated by a retry any more (a late tap, such as a
			// provider's webhook after the ack).
			if a < st.cur || (a == st.cur && st.ended) {
				return
			}
		case st.running:
			a = st.cur
		default:
			return
		}
		for i := range st.open {
			if st.open[i].attempt == a {
				st.open[i].refs = append(st.open[i].refs, s.ref(ev))
				return
			}
		}
		st.open = append(st.open, attemptEffects{attempt: a, refs: []string{s.ref(ev)}, first: ev.Time})
	case twicetype.JobSucceeded, twicetype.JobFailed, twicetype.JobDead, twicetype.JobDiscarded:
		st := &r.job.ebf
		a := st.cur
		if ev.HasAttempt {
			a = ev.Attempt
		}
		if a == st.cur {
			st.running, st.ended = false, true
		}
		for i := range st.open {
			if st.open[i].attempt != a {
				continue
			}
			if ev.Kind == twicetype.JobFailed || ev.Kind == twicetype.JobDead {
				d.flag(s, r.job, st.open[i], ev, "then "+ev.Kind.String())
			}
			st.open = append(st.open[:i], st.open[i+1:]...)
			break
		}
	}
}

func (d *effectBeforeFailure) flag(s *Set, j *Job, a attemptEffects, end *twicetype.Event, how string) {
	f := base(d.ID(), d.st)
	f.Subject = s.show("job_id", j.ID)
	f.Count = 1
	f.FirstTime, f.LastTime = a.first, end.Time
	f.Jobs = []string{f.Subject}
	f.Events = append(append([]string(nil), a.refs...), s.ref(end))
	f.Message = fmt.Sprintf("attempt %d of %s produced %d effect(s), %s: a retry repeats them",
		a.attempt, s.jobLabel(j), len(a.refs), how)
	f.Details = map[string]any{
		"attempts": []any{map[string]any{
			"attempt":  a.attempt,
			"effects":  int64(len(a.refs)),
			"ended_by": end.Kind.String(),
		}},
	}
	s.findings.add(j.ID, f)
}
