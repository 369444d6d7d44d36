package detectors

import (
	"fmt"

	"github.com/twicehq/twice/twicetype"
)

// duplicateExecution finds a job that started again after one of its
// attempts had succeeded: a lost ack or an expired visibility timeout.
type duplicateExecution struct{ st Settings }

func newDuplicateExecution(st Settings) *duplicateExecution {
	return &duplicateExecution{st: st}
}

func (*duplicateExecution) ID() string { return twicetype.DuplicateExecution }

func (d *duplicateExecution) observe(s *Set, ev *twicetype.Event, r *refs) {
	if ev.Kind == twicetype.JobStarted && r.job.succeeded {
		// The job's first success is on the job (Job.succTime, succRef).
		j := r.job
		f := base(d.ID(), d.st)
		f.Subject = s.show("job_id", j.ID)
		f.Count = 1
		f.FirstTime, f.LastTime = j.succTime, ev.Time
		f.Jobs = []string{f.Subject}
		f.Events = []string{j.succRef, s.ref(ev)}
		attempt := "a new attempt"
		if ev.HasAttempt {
			attempt = fmt.Sprintf("attempt %d", ev.Attempt)
		}
		f.Message = fmt.Sprintf("%s started again (%s) after it had succeeded at %s",
			s.jobLabel(j), attempt, twicetype.FormatTime(j.succTime))
		f.Details = map[string]any{"succeeded_at": twicetype.FormatTime(j.succTime)}
		s.label(f, j, d.ID(), j.ID)
		s.findings.add(j.ID, f)
	}
}
