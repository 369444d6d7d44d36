package detectors

import (
	"fmt"
	"slices"

	"github.com/twicehq/twice/twicetype"
)

// staleExecution finds starts that came too late: the first start after an
// enqueue more than max_start_delay after it (queue latency), or any start
// when the job's entity had already moved past the seq the job was
// enqueued with.
//
// The job's entity is the first value seen on any of its job.* events
// (spec §1). A start with an enqueued seq whose job has no entity yet is
// held on the job until the entity arrives (then it is checked against
// the entity's highest seq as it was at the start, kept for it in
// Entity.hist), the job is released, or a horizon has passed; the starts
// after it are held too, so that a job's findings come in start order
// whichever event carried its entity.
type staleExecution struct {
	st Settings
	// pend has an entry per held start that checks a seq, in order: its
	// head is the pin, the earliest start entities keep seq history for.
	// An entry whose start is no longer held is skipped. Derived from
	// the jobs.
	pend fifo[stalePend]
}

type stalePend struct {
	job  *Job
	ord  uint64
	time int64
}

type staleState struct {
	waiting   bool
	hasEnqSeq bool
	enqTime   int64
	enqRef    string
	enqSeq    int64
}

// heldStart is a start whose findings wait: check says it is to be
// checked against the entity's seq (enqSeq), hasDelay that it came delay
// after its enqueue (enqTime, enqRef), more than max_start_delay.
type heldStart struct {
	ord        uint64
	time       int64
	ref        string
	attempt    int64
	hasAttempt bool
	check      bool
	enqSeq     int64
	hasDelay   bool
	delay      int64
	enqTime    int64
	enqRef     string
}

// seqStep is a rise of an entity's highest seq, kept while a held start
// may need the highest seq before it: at ord, it rose from prevMax
// (prevHas false: the entity had no seq yet).
type seqStep struct {
	ord     uint64
	prevMax int64
	prevHas bool
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
		h := heldStart{ord: r.ord, time: ev.Time, ref: s.ref(ev), attempt: ev.Attempt, hasAttempt: ev.HasAttempt}
		if st.waiting {
			st.waiting = false
			if delay := ev.Time - st.enqTime; delay > int64(d.st.MaxStartDelay) {
				h.hasDelay, h.delay, h.enqTime, h.enqRef = true, delay, st.enqTime, st.enqRef
			}
		}
		h.check, h.enqSeq = st.hasEnqSeq, st.enqSeq
		if h.check && j.Entity == "" || len(j.heldStarts()) > 0 {
			l := j.lateOf()
			l.held = append(l.held, h)
			if h.check {
				d.pend.push(stalePend{job: j, ord: r.ord, time: ev.Time})
			}
			return
		}
		var e *Entity
		if h.check {
			e = s.entities[j.Entity]
		}
		hi, has := e.seqNow()
		d.emit(s, j, &h, hi, has)
	}
}

// seqNow is the entity's highest seq; false when it has none (or e is
// nil).
func (e *Entity) seqNow() (int64, bool) {
	if e == nil {
		return 0, false
	}
	return e.maxSeq, e.hasSeq
}

// seqBefore is the entity's highest seq before the event of order ord,
// which must not be older than the pin when it was seen.
func (e *Entity) seqBefore(ord uint64) (int64, bool) {
	if e == nil {
		return 0, false
	}
	for _, st := range e.hist {
		if st.ord > ord {
			return st.prevMax, st.prevHas
		}
	}
	return e.maxSeq, e.hasSeq
}

// seqRises is called before e's highest seq rises at ord: while starts
// are held, the entity keeps the rises since the earliest of them.
func (d *staleExecution) seqRises(e *Entity, ord uint64) {
	pin := d.pin()
	if pin == 0 {
		e.hist = nil
		return
	}
	i := 0
	for i < len(e.hist) && e.hist[i].ord < pin {
		i++
	}
	e.hist = append(slices.Delete(e.hist, 0, i), seqStep{ord: ord, prevMax: e.maxSeq, prevHas: e.hasSeq})
}

// pin returns the order of the earliest held start that checks a seq, 0
// when there is none.
func (d *staleExecution) pin() uint64 {
	for d.pend.len() > 0 {
		x := d.pend.peek()
		if x.job.holds(x.ord) {
			return x.ord
		}
		d.pend.pop()
	}
	return 0
}

// holds reports whether the start of order ord is still held: held starts
// leave from the front, or all at once.
func (j *Job) holds(ord uint64) bool {
	h := j.heldStarts()
	return len(h) > 0 && h[0].ord <= ord
}

// entityLearned checks the held starts of j, whose entity just became
// known, against the entity's seq as it was at each start.
func (d *staleExecution) entityLearned(s *Set, j *Job) {
	e := s.entities[j.Entity]
	held := j.heldStarts()
	j.late.held = nil
	j.tidyLate()
	for i := range held {
		hi, has := e.seqBefore(held[i].ord)
		d.emit(s, j, &held[i], hi, has)
	}
}

// letGo emits the held starts up to ord, and those after it that check
// nothing, without a seq check: their entity is not known.
func (d *staleExecution) letGo(s *Set, j *Job, ord uint64) {
	held := j.heldStarts()
	n := 0
	for n < len(held) && (held[n].ord <= ord || !held[n].check) {
		d.emit(s, j, &held[n], 0, false)
		n++
	}
	if n == len(held) {
		j.late.held = nil
		j.tidyLate()
	} else {
		j.late.held = held[n:]
	}
}

func (d *staleExecution) releaseJob(s *Set, j *Job) {
	if h := j.heldStarts(); len(h) > 0 {
		d.letGo(s, j, h[len(h)-1].ord)
	}
}

// advance lets go of the starts held longer than the horizon.
func (d *staleExecution) advance(s *Set, t int64) {
	for d.pend.len() > 0 && d.pend.peek().time < t-s.horizon {
		x := d.pend.pop()
		if x.job.holds(x.ord) {
			d.letGo(s, x.job, x.ord)
		}
	}
}

func (d *staleExecution) finish(*Set, int64, func(*Job)) {}

// emit adds the findings of start h: its start delay, and its seq check
// against maxSeq, the entity's highest seq when it started.
func (d *staleExecution) emit(s *Set, j *Job, h *heldStart, maxSeq int64, hasMax bool) {
	if h.hasDelay {
		d.flag(s, j, h, h.enqTime, h.enqRef, fmt.Sprintf("started %s after it was enqueued (max %s)",
			fmtDur(h.delay), d.st.MaxStartDelay), map[string]any{
			"reason":          "start-delay",
			"start_delay":     fmtDur(h.delay),
			"max_start_delay": d.st.MaxStartDelay.String(),
		})
	}
	if !h.check || !hasMax || maxSeq <= h.enqSeq {
		return
	}
	entity := s.show("entity", j.Entity)
	d.flag(s, j, h, h.time, "", fmt.Sprintf("started on %s seq %d, but %s had reached seq %d",
		entity, h.enqSeq, entity, maxSeq), map[string]any{
		"reason":       "stale-seq",
		"entity":       entity,
		"enqueued_seq": h.enqSeq,
		"entity_seq":   maxSeq,
	})
}

func (d *staleExecution) flag(s *Set, j *Job, h *heldStart, from int64, fromRef, what string, detail map[string]any) {
	f := base(d.ID(), d.st)
	f.Subject = s.show("job_id", j.ID)
	f.Count = 1
	f.FirstTime, f.LastTime = from, h.time
	f.Jobs = []string{f.Subject}
	if fromRef != "" {
		f.Events = append(f.Events, fromRef)
	}
	f.Events = append(f.Events, h.ref)
	attempt := ""
	if h.hasAttempt {
		attempt = fmt.Sprintf(" attempt %d", h.attempt)
	}
	detail["started_at"] = twicetype.FormatTime(h.time)
	f.Message = fmt.Sprintf("%s%s %s", s.jobLabel(j), attempt, what)
	f.Details = map[string]any{"starts": []any{detail}}
	s.label(f, j, d.ID(), j.ID)
	s.findings.add(j.ID, f)
}
