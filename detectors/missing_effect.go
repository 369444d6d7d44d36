package detectors

import (
	"fmt"

	"github.com/twicehq/twice/twicetype"
)

// missingEffect checks expectations: a succeeded job of a rule's type must
// produce count effects of the rule's type and rendered key by its
// success time + within. Deadlines past the end of input stay pending.
type missingEffect struct {
	st    Settings
	rules []Rule
	// due has one queue per rule, so each stays in deadline order.
	due []timers[expectation]
}

type expectation struct {
	job       *Job
	key       string
	ref       string
	succeeded int64
}

func newMissingEffect(st Settings, rules []Rule) *missingEffect {
	return &missingEffect{st: st, rules: rules, due: make([]timers[expectation], len(rules))}
}

func (*missingEffect) ID() string { return twicetype.MissingEffect }

func (d *missingEffect) observe(s *Set, ev *twicetype.Event, r *refs) {
	if ev.Kind != twicetype.JobSucceeded || r.job == nil || r.job.succeeded {
		return
	}
	j := r.job
	for i := range d.rules {
		if j.rendered != nil && j.rendered[i] != "" {
			d.push(s, j, i, ev.Time, s.ref(ev))
		}
	}
}

// expect sets the expectation of rule i for j, which succeeded before
// the rule's key rendered for it (a field arrived on a later event): from
// its first success, as if the field had been known all along. A
// deadline already past fires at the next event.
func (d *missingEffect) expect(s *Set, j *Job, i int) {
	d.push(s, j, i, j.succTime, j.succRef)
}

func (d *missingEffect) push(s *Set, j *Job, i int, succeeded int64, ref string) {
	d.due[i].push(succeeded+int64(d.rules[i].Within), expectation{job: j, key: j.rendered[i], ref: ref, succeeded: succeeded})
	j.miss++
}

func (d *missingEffect) advance(s *Set, t int64) {
	for i := range d.due {
		d.due[i].popUntil(t, false, func(at int64, x expectation) { d.judge(s, i, at, x) })
	}
}

func (d *missingEffect) finish(s *Set, end int64, pending func(*Job)) {
	for i := range d.due {
		d.due[i].popUntil(end, true, func(at int64, x expectation) { d.judge(s, i, at, x) })
		for d.due[i].len() > 0 {
			pending(d.due[i].pop().v.job)
		}
	}
}

func (d *missingEffect) judge(s *Set, i int, deadline int64, x expectation) {
	x.job.miss--
	rule := d.rules[i]
	var seen []string
	if k := s.keys[x.key]; k != nil {
		for _, e := range k.effects {
			if e.effect == rule.Effect && e.time <= deadline {
				seen = append(seen, e.ref)
			}
		}
	}
	if len(seen) >= rule.Count {
		return
	}
	j := x.job
	f := base(d.ID(), d.st)
	f.Subject = s.show("job_id", j.ID)
	f.Count = 1
	f.FirstTime, f.LastTime = x.succeeded, deadline
	f.Jobs = []string{f.Subject}
	f.Events = append([]string{x.ref}, seen...)
	effect, key := s.show("effect", rule.Effect), s.show("effect_key", x.key)
	f.Message = fmt.Sprintf("%s succeeded but %s %s was observed %d of %d times within %s",
		s.jobLabel(j), effect, key, len(seen), rule.Count, rule.Within)
	f.Details = map[string]any{
		"job_type": s.show("job_type", j.Type),
		"missing": []any{map[string]any{
			"effect":     effect,
			"effect_key": key,
			"expected":   int64(rule.Count),
			"observed":   int64(len(seen)),
			"within":     rule.Within.String(),
			"deadline":   twicetype.FormatTime(deadline),
		}},
	}
	s.label(f, j, d.ID(), j.ID)
	s.findings.add(j.ID, f)
}
