package detectors

import (
	"fmt"

	"github.com/twicehq/twice/twicetype"
)

// lostJob finds jobs that were enqueued or started and then had no
// job.succeeded, job.dead or job.discarded within lost_after of their
// latest job.enqueued, job.started or job.failed. A deadline past the end
// of input is pending. A terminal event after the deadline does not clear
// the finding.
type lostJob struct {
	st  Settings
	due timers[lostTimer]
}

// lostState's small fields come first, so that they share a word.
type lostState struct {
	seen     bool // enqueued or started
	armed    bool
	started  bool
	lastKind twicetype.Kind
	gen      uint32
	last     int64
	lastRef  string
}

type lostTimer struct {
	job *Job
	gen uint32
}

func newLostJob(st Settings) *lostJob { return &lostJob{st: st} }

func (*lostJob) ID() string { return twicetype.LostJob }

func (d *lostJob) observe(s *Set, ev *twicetype.Event, r *refs) {
	if !ev.Kind.IsJob() {
		return
	}
	st := &r.job.lost
	switch ev.Kind {
	case twicetype.JobEnqueued, twicetype.JobStarted, twicetype.JobFailed:
		// Only a job seen enqueued or started can be lost; a failure
		// means it had started even when the tap missed the start.
		if ev.Kind == twicetype.JobFailed && !st.seen {
			return
		}
		st.seen = true
		if ev.Kind != twicetype.JobEnqueued {
			st.started = true
		}
		st.armed = true
		st.gen++
		st.last, st.lastKind, st.lastRef = ev.Time, ev.Kind, s.ref(ev)
		d.due.push(ev.Time+int64(d.st.LostAfter), lostTimer{job: r.job, gen: st.gen})
	default:
		st.armed = false
	}
}

func (d *lostJob) advance(s *Set, t int64) {
	d.due.popUntil(t, false, func(at int64, x lostTimer) { d.judge(s, at, x) })
}

func (d *lostJob) finish(s *Set, end int64, pending func(*Job)) {
	d.due.popUntil(end, true, func(at int64, x lostTimer) { d.judge(s, at, x) })
	for d.due.len() > 0 {
		x := d.due.pop().v
		if x.job.lost.armed && x.job.lost.gen == x.gen {
			pending(x.job)
		}
	}
}

func (d *lostJob) judge(s *Set, deadline int64, x lostTimer) {
	j := x.job
	st := &j.lost
	if !st.armed || st.gen != x.gen {
		return
	}
	st.armed = false
	cause, what := "never-started", "was enqueued and never started"
	if st.started {
		cause, what = "stuck", "started and never finished"
	}
	f := base(d.ID(), d.st)
	f.Subject = s.show("job_id", j.ID)
	f.Count = 1
	f.FirstTime, f.LastTime = j.started, st.last
	f.Jobs = []string{f.Subject}
	f.Events = []string{st.lastRef}
	f.Cause = cause
	f.Message = fmt.Sprintf("%s %s: no succeeded, dead or discarded within %s of its last %s",
		s.jobLabel(j), what, d.st.LostAfter, st.lastKind)
	f.Details = map[string]any{
		"queue":      s.show("queue", j.Queue),
		"last_event": st.lastKind.String(),
		"lost_after": d.st.LostAfter.String(),
		"deadline":   twicetype.FormatTime(deadline),
	}
	s.label(f, j, d.ID(), j.ID)
	s.findings.add(j.ID, f)
}
