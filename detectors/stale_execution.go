package detectors

import (
	"fmt"

	"github.com/twicehq/twice/twicetype"
)

// staleExecution finds starts that came too late: the first start after an
// enqueue more than max_start_delay after it (queue latency), or any start
// when the job's entity had already moved past the seq the job was
// enqueued with.
type staleExecution struct{ st Settings }

type staleState struct {
	waiting   bool
	enqTime   int64
	enqRef    string
	hasEnqSeq bool
	enqSeq    int64
}

func newStaleExecution(st Settings) *staleExecution { return &staleExecution{st: st} }

func (*staleExecution) ID() string { return twicetype.StaleExecution }

func (d *staleExecution) observe(s *Set, ev *twicetype.Event, r *refs) {
	j := r.job
	switch ev.Kind {
	case twicetype.JobEnqueued:
		st := &j.stale
		if !st.waiting {
			st.waiting, st.enqTime, st.enqRef = true, ev.Time, s.ref(ev)
		}
		if ev.HasSeq {
			st.hasEnqSeq, st.enqSeq = true, ev.Seq
		}
	case twicetype.JobStarted:
		st := &j.stale
		if st.waiting {
			st.waiting = false
			if delay := ev.Time - st.enqTime; delay > int64(d.st.MaxStartDelay) {
				d.flag(s, j, ev, st.enqTime, st.enqRef, fmt.Sprintf("started %s after it was enqueued (max %s)",
					fmtDur(delay), d.st.MaxStartDelay), map[string]any{
					"reason":          "start-delay",
					"start_delay":     fmtDur(delay),
					"max_start_delay": d.st.MaxStartDelay.String(),
				})
			}
		}
		if !st.hasEnqSeq || j.Entity == "" {
			return
		}
		e := s.entities[j.Entity]
		if e == nil || !e.hasSeq || e.maxSeq <= st.enqSeq {
			return
		}
		d.flag(s, j, ev, ev.Time, "", fmt.Sprintf("started on %s seq %d, but %s had reached seq %d",
			s.show("entity", j.Entity), st.enqSeq, s.show("entity", j.Entity), e.maxSeq), map[string]any{
			"reason":       "stale-seq",
			"entity":       s.show("entity", j.Entity),
			"enqueued_seq": st.enqSeq,
			"entity_seq":   e.maxSeq,
		})
	}
}

func (d *staleExecution) flag(s *Set, j *Job, start *twicetype.Event, from int64, fromRef, what string, detail map[string]any) {
	f := base(d.ID(), d.st)
	f.Subject = s.show("job_id", j.ID)
	f.Count = 1
	f.FirstTime, f.LastTime = from, start.Time
	f.Jobs = []string{f.Subject}
	if fromRef != "" {
		f.Events = append(f.Events, fromRef)
	}
	f.Events = append(f.Events, s.ref(start))
	attempt := ""
	if start.HasAttempt {
		attempt = fmt.Sprintf(" attempt %d", start.Attempt)
	}
	detail["started_at"] = twicetype.FormatTime(start.Time)
	f.Message = fmt.Sprintf("%s%s %s", s.jobLabel(j), attempt, what)
	f.Details = map[string]any{"starts": []any{detail}}
	s.findings.add(j.ID, f)
}
