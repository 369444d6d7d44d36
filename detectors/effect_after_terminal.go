package detectors

import (
	"fmt"

	"github.com/twicehq/twice/twicetype"
)

// effectAfterTerminal finds effects on an entity after a state with
// terminal: true for it, such as a receipt after a refund.
type effectAfterTerminal struct{ st Settings }

func newEffectAfterTerminal(st Settings) *effectAfterTerminal {
	return &effectAfterTerminal{st: st}
}

func (*effectAfterTerminal) ID() string { return twicetype.EffectAfterTerminal }

func (d *effectAfterTerminal) observe(s *Set, ev *twicetype.Event, r *refs) {
	e := r.entity
	if e == nil {
		return
	}
	switch {
	case ev.Kind == twicetype.State && ev.Terminal:
		if !e.terminal {
			e.terminal, e.termTime, e.termRef, e.termOrd = true, ev.Time, s.ref(ev), r.ord
		}
	case ev.Kind == twicetype.Effect && e.terminal:
		f := base(d.ID(), d.st)
		f.Subject = s.show("effect_key", ev.EffectKey)
		f.Count = 1
		f.FirstTime, f.LastTime = ev.Time, ev.Time
		if ev.JobID != "" {
			f.Jobs = []string{s.show("job_id", ev.JobID)}
		}
		f.Events = []string{e.termRef, s.ref(ev)}
		entity := s.show("entity", e.Name)
		f.Message = fmt.Sprintf("%s %s on %s after it reached a terminal state at %s",
			s.show("effect", ev.Effect), f.Subject, entity, twicetype.FormatTime(e.termTime))
		f.Details = map[string]any{
			"entity":         entity,
			"terminal_at":    twicetype.FormatTime(e.termTime),
			"terminal_event": e.termRef,
		}
		s.label(f, r.job, d.ID(), ev.EffectKey)
		s.findings.add(ev.EffectKey, f)
	}
}
