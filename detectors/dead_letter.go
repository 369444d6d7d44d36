package detectors

import (
	"fmt"
	"time"

	"github.com/twicehq/twice/twicetype"
)

// deadLetter finds, per queue, jobs that went job.dead and were never
// enqueued again nor succeeded afterwards: dead letters nobody replays.
// A job is judged when its state is released (end of input, or the
// horizon after its last event).
type deadLetter struct {
	st     Settings
	queues map[string]*deadQueue
}

type deadQueue struct {
	count          int64
	oldest, newest int64
	jobs, refs     []string
	perHour        map[string]int64
}

func newDeadLetter(st Settings) *deadLetter {
	return &deadLetter{st: st, queues: make(map[string]*deadQueue)}
}

func (*deadLetter) ID() string { return twicetype.DeadLetter }

func (d *deadLetter) releaseJob(s *Set, j *Job) {
	if j.deadOrd == 0 {
		return
	}
	q := j.deadQ
	if q == "" {
		q = noQueue
	}
	dq := d.queues[q]
	if dq == nil {
		dq = &deadQueue{oldest: j.deadTime, newest: j.deadTime, perHour: map[string]int64{}}
		d.queues[q] = dq
	}
	dq.count++
	dq.oldest = min(dq.oldest, j.deadTime)
	dq.newest = max(dq.newest, j.deadTime)
	if len(dq.jobs) < MaxListed {
		dq.jobs = append(dq.jobs, s.show("job_id", j.ID))
		dq.refs = append(dq.refs, j.deadRef)
	}
	hour := time.Unix(0, j.deadTime).UTC().Truncate(time.Hour).Format(time.RFC3339)
	dq.perHour[hour]++
}

func (d *deadLetter) finishAll(s *Set) {
	for _, q := range sortedKeys(d.queues) {
		dq := d.queues[q]
		subject := s.showQueue(q)
		f := base(d.ID(), d.st)
		f.Subject = subject
		f.Count = dq.count
		f.FirstTime, f.LastTime = dq.oldest, dq.newest
		f.Jobs = dq.jobs
		f.Events = dq.refs
		perHour := make(map[string]any, len(dq.perHour))
		for h, n := range dq.perHour {
			perHour[h] = n
		}
		f.Message = fmt.Sprintf("%d job(s) on %s went dead and were never replayed (oldest %s)",
			dq.count, subject, twicetype.FormatTime(dq.oldest))
		f.Details = map[string]any{
			"count":    dq.count,
			"oldest":   twicetype.FormatTime(dq.oldest),
			"per_hour": perHour,
		}
		s.findings.add(q, f)
		delete(d.queues, q)
	}
}
