package detectors

import (
	"fmt"

	"github.com/twicehq/twice/twicetype"
)

// duplicateExecution finds a job that started again after one of its
// attempts had succeeded: a lost ack or an expired visibility timeout.
type duplicateExecution struct{ st Settings }

type dupExecState struct {
	successRef  string
	successTime int64
}

func newDuplicateExecution(st Settings) *duplicateExecution {
	return &duplicateExecution{st: st}
}

func (*duplicateExecution) ID() string { return twicetype.DuplicateExecution }

func (d *duplicateExecution) observe(s *Set, ev *twicetype.Event, r *refs) {
	switch ev.Kind {
	case twicetype.JobSucceeded:
		if !r.job.succeeded {
			r.job.dupEx = dupExecState{successRef: s.ref(ev), successTime: ev.Time}
		}
	case twicetype.JobStarted:
		j := r.job
		if !j.succeeded {
			return
		}
		f := base(d.ID(), d.st)
		f.Subject = s.show("job_id", j.ID)
		f.Count = 1
		f.FirstTime, f.LastTime = j.dupEx.successTime, ev.Time
		f.Jobs = []string{f.Subject}
		f.Events = []string{j.dupEx.successRef, s.ref(ev)}
		attempt := "a new attempt"
		if ev.HasAttempt {
			attempt = fmt.Sprintf("attempt %d", ev.Attempt)
		}
		f.Message = fmt.Sprintf("%s started again (%s) after it had succeeded at %s",
			s.jobLabel(j), attempt, twicetype.FormatTime(j.dupEx.successTime))
		f.Details = map[string]any{"succeeded_at": twicetype.FormatTime(j.dupEx.successTime)}
		s.findings.add(j.ID, f)
	}
}
