package detectors

import (
	"fmt"
	"sort"
	"time"

	"github.com/twicehq/twice/twicetype"
)

// retryStorm finds, per queue and tumbling window aligned to the Unix
// epoch, many attempts for few jobs: attempts started ÷ distinct jobs
// started ≥ amplification, with at least min_attempts attempts.
type retryStorm struct {
	st     Settings
	queues map[string]*stormWindow
	// nextEnd is the earliest end of an open window, so that advance costs
	// nothing between window boundaries.
	nextEnd int64
}

type stormWindow struct {
	start    int64
	attempts int64
	jobs     map[string]struct{}
	jobList  []string
	refs     []string
}

func newRetryStorm(st Settings) *retryStorm {
	return &retryStorm{st: st, queues: make(map[string]*stormWindow)}
}

func (*retryStorm) ID() string { return twicetype.RetryStorm }

func (d *retryStorm) windowStart(t int64) int64 {
	w := int64(d.st.Window)
	start := t / w * w
	if t < 0 && t%w != 0 {
		start -= w
	}
	return start
}

func (d *retryStorm) observe(s *Set, ev *twicetype.Event, r *refs) {
	if ev.Kind != twicetype.JobStarted {
		return
	}
	q := ev.Queue
	if q == "" {
		q = r.job.Queue
	}
	if q == "" {
		q = noQueue
	}
	start := d.windowStart(ev.Time)
	w := d.queues[q]
	if w != nil && w.start != start {
		if start < w.start {
			return // a late start for a window already judged
		}
		d.judge(s, q, w)
		w = nil
	}
	if w == nil {
		w = &stormWindow{start: start, jobs: make(map[string]struct{})}
		d.queues[q] = w
		if len(d.queues) == 1 || start+int64(d.st.Window) < d.nextEnd {
			d.nextEnd = start + int64(d.st.Window)
		}
	}
	w.attempts++
	if len(w.refs) < MaxListed {
		w.refs = append(w.refs, s.ref(ev))
	}
	if _, ok := w.jobs[ev.JobID]; !ok {
		w.jobs[ev.JobID] = struct{}{}
		w.jobList = append(w.jobList, ev.JobID)
	}
}

// advance judges the windows that ended at or before t.
func (d *retryStorm) advance(s *Set, t int64) {
	if len(d.queues) == 0 || t < d.nextEnd {
		return
	}
	d.closeUntil(s, t)
}

func (d *retryStorm) closeUntil(s *Set, t int64) {
	d.nextEnd = 0
	for _, q := range sortedKeys(d.queues) {
		w := d.queues[q]
		end := w.start + int64(d.st.Window)
		if end <= t {
			d.judge(s, q, w)
			delete(d.queues, q)
			continue
		}
		if d.nextEnd == 0 || end < d.nextEnd {
			d.nextEnd = end
		}
	}
}

func (d *retryStorm) finish(s *Set, _ int64, _ func(*Job)) {
	for _, q := range sortedKeys(d.queues) {
		d.judge(s, q, d.queues[q])
		delete(d.queues, q)
	}
}

func (d *retryStorm) judge(s *Set, q string, w *stormWindow) {
	jobs := int64(len(w.jobs))
	// attempts/jobs is correctly rounded, so a ratio that equals the
	// configured amplification compares equal (1.1*50 would not).
	if w.attempts < int64(d.st.MinAttempts) || float64(w.attempts)/float64(jobs) < d.st.Amplification {
		return
	}
	when := twicetype.FormatTime(w.start)
	rfc := timeRFC3339(w.start)
	subject := q + "@" + rfc
	f := base(d.ID(), d.st)
	f.Subject = s.showQueue(q) + "@" + rfc
	f.Count = w.attempts
	f.FirstTime, f.LastTime = w.start, w.start+int64(d.st.Window)
	for _, id := range w.jobList {
		f.Jobs = append(f.Jobs, s.show("job_id", id))
	}
	f.Events = w.refs
	amp := float64(w.attempts) / float64(jobs)
	f.Message = fmt.Sprintf("%s: %d attempts of %d job(s) in the %s from %s (×%.1f)",
		s.showQueue(q), w.attempts, jobs, d.st.Window, when, amp)
	f.Details = map[string]any{
		"queue":         s.showQueue(q),
		"window":        d.st.Window.String(),
		"window_start":  when,
		"attempts":      w.attempts,
		"jobs":          jobs,
		"amplification": amp,
	}
	s.findings.add(subject, f)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func timeRFC3339(ns int64) string {
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}
