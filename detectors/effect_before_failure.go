package detectors

import (
	"fmt"
	"math"
	"sort"

	"github.com/twicehq/twice/twicetype"
)

// effectBeforeFailure finds the crash window: an attempt produced an effect
// and then failed, went dead, or was followed by another attempt without
// succeeding, so the retry repeats the effect.
type effectBeforeFailure struct{ st Settings }

// ebfState is the per-job state: the attempt running now, the attempts
// that ended, and the attempts that produced effects and are not judged
// yet.
type ebfState struct {
	cur int64
	// ended holds every attempt that succeeded, failed, died or was
	// discarded: an effect that carries one arrives too late to be
	// repeated by a retry of it (a late tap). Whatever the tap saw of
	// their starts, so an attempt that succeeded is never in the crash
	// window.
	ended attemptSet
	// open are the attempts with effects that neither succeeded nor
	// failed yet. A discarded attempt stays open: another attempt that
	// starts after it repeats its effects.
	open []attemptEffects
	// running is set while attempt cur runs.
	running bool
}

// attemptSet is a set of attempt numbers as sorted, disjoint ranges:
// attempts mostly end in order, so it is one range.
type attemptSet []attemptRange

type attemptRange struct{ lo, hi int64 }

func (a attemptSet) has(n int64) bool {
	for _, r := range a {
		if n < r.lo {
			return false
		}
		if n <= r.hi {
			return true
		}
	}
	return false
}

func (a *attemptSet) add(n int64) {
	s := *a
	// The first range that ends at or after n.
	i := sort.Search(len(s), func(i int) bool { return s[i].hi >= n })
	if i < len(s) && s[i].lo <= n {
		return
	}
	joinPrev := i > 0 && n > math.MinInt64 && s[i-1].hi == n-1
	joinNext := i < len(s) && n < math.MaxInt64 && s[i].lo == n+1
	switch {
	case joinPrev && joinNext:
		s[i-1].hi = s[i].hi
		s = append(s[:i], s[i+1:]...)
	case joinPrev:
		s[i-1].hi = n
	case joinNext:
		s[i].lo = n
	default:
		s = append(s, attemptRange{})
		copy(s[i+1:], s[i:])
		s[i] = attemptRange{n, n}
	}
	*a = s
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
			if a < st.cur || st.ended.has(a) {
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
		st.ended.add(a)
		if a == st.cur {
			st.running = false
		}
		for i := range st.open {
			if st.open[i].attempt != a {
				continue
			}
			switch ev.Kind {
			case twicetype.JobDiscarded:
				// No retry follows a discard, unless another attempt
				// starts anyway: that start flags it.
				return
			case twicetype.JobFailed, twicetype.JobDead:
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
	s.label(f, j, d.ID(), j.ID)
	s.findings.add(j.ID, f)
}
