package detectors

import (
	"fmt"

	"github.com/twicehq/twice/twicetype"
)

// outOfOrder finds, per entity, effects and states that carry a seq lower
// than one already observed on an effect or state of that entity.
type outOfOrder struct{ st Settings }

type oooState struct {
	count       int64
	refs        []string
	jobs        []string
	first, last int64
	pairs       []any
	// firstJob is the raw job_id of the first regression with one.
	firstJob string
}

func newOutOfOrder(st Settings) *outOfOrder { return &outOfOrder{st: st} }

func (*outOfOrder) ID() string { return twicetype.OutOfOrder }

func (d *outOfOrder) observe(s *Set, ev *twicetype.Event, r *refs) {
	e := r.entity
	if e == nil || !ev.HasSeq || !e.hasSeq || ev.Seq >= e.maxSeq {
		return
	}
	if e.ooo == nil {
		e.ooo = &oooState{first: ev.Time}
	}
	o := e.ooo
	o.count++
	o.last = ev.Time
	if len(o.refs) < MaxListed {
		o.refs = append(o.refs, s.ref(ev))
		o.pairs = append(o.pairs, map[string]any{"event": s.ref(ev), "seq": ev.Seq, "after_seq": e.maxSeq})
	}
	if ev.JobID != "" {
		if len(o.jobs) == 0 {
			o.firstJob = ev.JobID
		}
		o.jobs = union(o.jobs, []string{s.show("job_id", ev.JobID)})
	}
}

func (d *outOfOrder) releaseEntity(s *Set, e *Entity) {
	if f := d.judge(s, e); f != nil {
		s.findings.add(e.Name, f)
	}
}

// judge returns the finding for the regressions of e seen so far, nil
// when there are none.
func (d *outOfOrder) judge(s *Set, e *Entity) *twicetype.Finding {
	o := e.ooo
	if o == nil || o.count == 0 {
		return nil
	}
	f := base(d.ID(), d.st)
	f.Subject = s.show("entity", e.Name)
	f.Count = o.count
	f.FirstTime, f.LastTime = o.first, o.last
	f.Jobs = o.jobs
	f.Events = o.refs
	if o.firstJob != "" {
		s.label(f, s.jobs[o.firstJob], d.ID(), e.Name)
	}
	stale := e.lastSeq < e.maxSeq
	f.Message = fmt.Sprintf("%s went back in seq %d time(s) (highest %d)", f.Subject, o.count, e.maxSeq)
	if stale {
		f.Message += fmt.Sprintf("; its last update carries seq %d, so its final state is stale", e.lastSeq)
	}
	f.Details = map[string]any{
		"final_stale": stale,
		"highest_seq": e.maxSeq,
		"last_seq":    e.lastSeq,
		"regressions": o.pairs,
	}
	return f
}
