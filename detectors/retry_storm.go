package detectors

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/twicehq/twice/twicetype"
)

// retryStorm finds, per queue and tumbling window aligned to the Unix
// epoch, many attempts for few jobs: attempts started ÷ distinct jobs
// started ≥ amplification, with at least min_attempts attempts.
//
// A start counts on its job's queue: the first value seen on any of the
// job's job.* events (spec §1), whichever event carried it. A start of a
// job whose queue is not known yet waits on the job until the queue
// arrives, the job is released, or a horizon has passed (then it counts
// under noQueue); windows of its time, on every queue, are judged only
// once no start of their time waits.
type retryStorm struct {
	st      Settings
	windows map[stormKey]*stormWindow
	// nextEnd is the earliest end of a window that no waiting start
	// holds back, so that advance costs nothing between boundaries.
	nextEnd int64
	// waiting counts, per window start, the starts waiting for their
	// job's queue. Derived from the jobs' storm lists.
	waiting map[int64]int
	// pend has an entry per waiting start, in the order they came, to
	// place those that waited longer than the horizon. Derived too: an
	// entry whose start was placed is skipped.
	pend fifo[stormPend]
}

type stormKey struct {
	queue string
	start int64
}

type stormWindow struct {
	attempts int64
	// jobs maps each job started in the window to its first start's
	// order: findings list jobs in that order.
	jobs map[string]uint64
	// refs are the first MaxListed starts, by order.
	refs []ordRef
	// first is the job of the window's first start: its job_type is the
	// finding's.
	first *Job
}

type ordRef struct {
	ord uint64
	ref string
}

// stormStart is a start waiting for its job's queue.
type stormStart struct {
	time int64
	ord  uint64
	ref  string
}

type stormPend struct {
	job  *Job
	ord  uint64
	time int64
}

func newRetryStorm(st Settings) *retryStorm {
	return &retryStorm{st: st, windows: make(map[stormKey]*stormWindow), waiting: make(map[int64]int), nextEnd: math.MaxInt64}
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
	j := r.job
	ws := d.windowStart(ev.Time)
	ended := ws+int64(d.st.Window) <= s.clock // only a late start
	if j.Queue == "" {
		if ended && d.waiting[ws] == 0 {
			return // a late start for windows already judged
		}
		l := j.lateOf()
		l.storm = append(l.storm, stormStart{time: ev.Time, ord: r.ord, ref: s.ref(ev)})
		d.waiting[ws]++
		d.pend.push(stormPend{job: j, ord: r.ord, time: ev.Time})
		return
	}
	if ended && d.windows[stormKey{j.Queue, ws}] == nil && d.waiting[ws] == 0 {
		return // a late start for a window already judged
	}
	d.add(j.Queue, ws, j, r.ord, s.ref(ev))
}

// add counts a start of job j on queue q in the window from ws.
func (d *retryStorm) add(q string, ws int64, j *Job, ord uint64, ref string) {
	k := stormKey{q, ws}
	w := d.windows[k]
	if w == nil {
		w = &stormWindow{jobs: make(map[string]uint64)}
		d.windows[k] = w
		if d.waiting[ws] == 0 {
			d.nextEnd = min(d.nextEnd, ws+int64(d.st.Window))
		}
	}
	w.attempts++
	if o, ok := w.jobs[j.ID]; !ok || ord < o {
		w.jobs[j.ID] = ord
		if w.first == nil || ord <= w.jobs[w.first.ID] {
			w.first = j
		}
	}
	w.addRef(ord, ref)
}

// addRef keeps the first MaxListed starts by order; starts mostly come
// in order, so this appends or returns at once.
func (w *stormWindow) addRef(ord uint64, ref string) {
	n := len(w.refs)
	if n == MaxListed && ord > w.refs[n-1].ord {
		return
	}
	i := n
	for i > 0 && w.refs[i-1].ord > ord {
		i--
	}
	if n < MaxListed {
		w.refs = append(w.refs, ordRef{})
	}
	copy(w.refs[i+1:], w.refs[i:])
	w.refs[i] = ordRef{ord, ref}
}

// place counts the first n waiting starts of j on its queue, noQueue
// when it has none: it learned its queue, it is released, or they waited
// a horizon.
func (d *retryStorm) place(s *Set, j *Job, n int) {
	q := j.Queue
	if q == "" {
		q = noQueue
	}
	l := j.late
	for _, x := range l.storm[:n] {
		ws := d.windowStart(x.time)
		d.add(q, ws, j, x.ord, x.ref)
		if d.waiting[ws]--; d.waiting[ws] <= 0 {
			delete(d.waiting, ws)
			d.nextEnd = min(d.nextEnd, ws+int64(d.st.Window))
		}
	}
	if n == len(l.storm) {
		l.storm = nil
		j.tidyLate()
	} else {
		l.storm = l.storm[n:]
	}
}

func (d *retryStorm) releaseJob(s *Set, j *Job) {
	if n := len(j.stormStarts()); n > 0 {
		d.place(s, j, n)
	}
}

// advance places the starts that waited longer than the horizon and
// judges the windows that ended at or before t.
func (d *retryStorm) advance(s *Set, t int64) {
	for d.pend.len() > 0 && d.pend.peek().time < t-s.horizon {
		x := d.pend.pop()
		n, st := 0, x.job.stormStarts()
		for n < len(st) && st[n].ord <= x.ord {
			n++
		}
		if n > 0 {
			d.place(s, x.job, n)
		}
	}
	if len(d.windows) == 0 || t < d.nextEnd {
		return
	}
	d.closeUntil(s, t)
}

func (d *retryStorm) closeUntil(s *Set, t int64) {
	d.nextEnd = math.MaxInt64
	var due []stormKey
	for k := range d.windows {
		if d.waiting[k.start] > 0 {
			continue // placing its last waiting start lowers nextEnd
		}
		if end := k.start + int64(d.st.Window); end <= t {
			due = append(due, k)
		} else {
			d.nextEnd = min(d.nextEnd, end)
		}
	}
	sortStormKeys(due)
	for _, k := range due {
		d.judge(s, k, d.windows[k])
		delete(d.windows, k)
	}
}

func sortStormKeys(ks []stormKey) {
	slices.SortFunc(ks, func(a, b stormKey) int {
		if c := cmp.Compare(a.queue, b.queue); c != 0 {
			return c
		}
		return cmp.Compare(a.start, b.start)
	})
}

// finish places every start still waiting (the jobs' fields are final)
// and judges every window.
func (d *retryStorm) finish(s *Set, _ int64, _ func(*Job)) {
	for d.pend.len() > 0 {
		if j := d.pend.pop().job; len(j.stormStarts()) > 0 {
			d.place(s, j, len(j.stormStarts()))
		}
	}
	keys := make([]stormKey, 0, len(d.windows))
	for k := range d.windows {
		keys = append(keys, k)
	}
	sortStormKeys(keys)
	for _, k := range keys {
		d.judge(s, k, d.windows[k])
		delete(d.windows, k)
	}
	d.nextEnd = math.MaxInt64
}

func (d *retryStorm) judge(s *Set, k stormKey, w *stormWindow) {
	jobs := int64(len(w.jobs))
	// attempts/jobs is correctly rounded, so a ratio that equals the
	// configured amplification compares equal (1.1*50 would not).
	if w.attempts < int64(d.st.MinAttempts) || float64(w.attempts)/float64(jobs) < d.st.Amplification {
		return
	}
	q := k.queue
	when := twicetype.FormatTime(k.start)
	rfc := timeRFC3339(k.start)
	subject := q + "@" + rfc
	f := base(d.ID(), d.st)
	f.Subject = s.showQueue(q) + "@" + rfc
	f.Count = w.attempts
	f.FirstTime, f.LastTime = k.start, k.start+int64(d.st.Window)
	for _, id := range w.jobList() {
		f.Jobs = append(f.Jobs, s.show("job_id", id))
	}
	f.Events = make([]string, len(w.refs))
	for i, r := range w.refs {
		f.Events[i] = r.ref
	}
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
	s.label(f, w.first, d.ID(), subject)
	if q != noQueue {
		f.Queue = s.show("queue", q)
	}
	s.findings.add(subject, f)
}

// jobList returns the window's jobs in the order of their first start.
func (w *stormWindow) jobList() []string {
	type jo struct {
		id  string
		ord uint64
	}
	l := make([]jo, 0, len(w.jobs))
	for id, o := range w.jobs {
		l = append(l, jo{id, o})
	}
	slices.SortFunc(l, func(a, b jo) int { return cmp.Compare(a.ord, b.ord) })
	ids := make([]string, len(l))
	for i, x := range l {
		ids[i] = x.id
	}
	return ids
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
