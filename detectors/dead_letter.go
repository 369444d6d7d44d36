package detectors

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
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
	// dead holds, with live views on, the jobs still held that are dead
	// now, by queue. It is derived from the jobs (deadOrd != 0).
	dead map[string]map[*Job]struct{}
}

type deadQueue struct {
	// jobType is the job_type of the first job listed.
	jobType        string
	count          int64
	oldest, newest int64
	jobs, refs     []string
	perHour        map[string]int64
}

func newDeadLetter(st Settings) *deadLetter {
	return &deadLetter{st: st, queues: make(map[string]*deadQueue), dead: make(map[string]map[*Job]struct{})}
}

func (*deadLetter) ID() string { return twicetype.DeadLetter }

func (d *deadLetter) releaseJob(s *Set, j *Job) {
	if j.deadOrd == 0 {
		return
	}
	q := deadQueueName(j)
	if m := d.dead[q]; m != nil {
		delete(m, j)
		if len(m) == 0 {
			delete(d.dead, q)
		}
	}
	dq := d.queues[q]
	if dq == nil {
		dq = newDeadQueue(j.deadTime)
		d.queues[q] = dq
	}
	dq.add(s, j)
	if s.findings.dirty != nil {
		s.findings.dirty[liveKey{twicetype.DeadLetter, q}] = struct{}{}
	}
}

// deadQueueName is the queue a dead job counts on: the job's queue, the
// first value seen on any of its job.* events (spec §1), whichever event
// carried it. A job is counted when it is released, when its fields are
// final; with live views, a dead job whose queue becomes known moves from
// noQueue to it (queueLearned).
func deadQueueName(j *Job) string {
	if j.Queue == "" {
		return noQueue
	}
	return j.Queue
}

// queueLearned moves a held dead job, counted under noQueue in the live
// views, to the queue it just learned.
func (d *deadLetter) queueLearned(s *Set, j *Job) {
	if j.deadOrd != 0 && !j.released && s.findings.dirty != nil {
		d.track(s, j, true, noQueue)
	}
}

func newDeadQueue(t int64) *deadQueue {
	return &deadQueue{oldest: t, newest: t, perHour: map[string]int64{}}
}

// add counts the dead job j on the queue.
func (dq *deadQueue) add(s *Set, j *Job) {
	if dq.count == 0 {
		dq.jobType = j.Type
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
		s.findings.add(q, d.render(s, q, d.queues[q]))
		delete(d.queues, q)
	}
}

// render makes the finding of queue q from the dead jobs counted on it.
func (d *deadLetter) render(s *Set, q string, dq *deadQueue) *twicetype.Finding {
	subject := s.showQueue(q)
	f := base(d.ID(), d.st)
	f.Subject = subject
	f.Count = dq.count
	f.FirstTime, f.LastTime = dq.oldest, dq.newest
	f.Jobs = slices.Clone(dq.jobs)
	f.Events = slices.Clone(dq.refs)
	// The first listed job's type: a released job's fields are final.
	f.JobType = s.show("job_type", dq.jobType)
	if q != noQueue {
		f.Queue = s.show("queue", q)
	}
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
	return f
}

// openView returns the finding of queue q as it stands now: the dead jobs
// already released plus those still held that are dead now, nil when
// there are none.
func (d *deadLetter) openView(s *Set, q string) *twicetype.Finding {
	var open []*Job
	for j := range d.dead[q] {
		open = append(open, j)
	}
	released := d.queues[q]
	if released == nil && len(open) == 0 {
		return nil
	}
	slices.SortFunc(open, func(a, b *Job) int { return cmp.Compare(a.deadOrd, b.deadOrd) })
	var dq *deadQueue
	if released != nil {
		c := *released
		c.jobs, c.refs = slices.Clone(released.jobs), slices.Clone(released.refs)
		c.perHour = maps.Clone(released.perHour)
		dq = &c
	} else {
		dq = newDeadQueue(open[0].deadTime)
	}
	for _, j := range open {
		dq.add(s, j)
	}
	return d.render(s, q, dq)
}

// track keeps d.dead, the held jobs that are dead now, in step with j
// after an event changed whether it is dead.
func (d *deadLetter) track(s *Set, j *Job, wasDead bool, wasQueue string) {
	if wasDead {
		delete(d.dead[wasQueue], j)
		if len(d.dead[wasQueue]) == 0 {
			delete(d.dead, wasQueue)
		}
		s.findings.dirty[liveKey{twicetype.DeadLetter, wasQueue}] = struct{}{}
	}
	if j.deadOrd != 0 && !j.released {
		q := deadQueueName(j)
		if d.dead[q] == nil {
			d.dead[q] = make(map[*Job]struct{})
		}
		d.dead[q][j] = struct{}{}
		s.findings.dirty[liveKey{twicetype.DeadLetter, q}] = struct{}{}
	}
}
