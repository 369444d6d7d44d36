package main

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/twicetype"
)

// exitCoverage is the exit of an audit under --strict-coverage that has
// no finding at or above --fail-on but could not check everything: a
// code of its own, so that a script can tell "the code has a problem"
// (1) from "the audit is set up wrong" (4). Findings take precedence.
const exitCoverage = 4

// secondsTS counts the events whose integer ts looks like Unix seconds
// (twicetype.Event.SecondsLikeTS) and keeps the first of them. Collectors
// run on their own goroutines, hence the atomics.
type secondsTS struct {
	n     atomic.Int64
	first atomic.Pointer[secondsSample]
}

type secondsSample struct {
	ref  string
	time int64
}

// tee wraps c so that its events are counted.
func (s *secondsTS) tee(c collectors.Collector) collectors.Collector {
	return collectors.Tee(c, func(_ context.Context, b *collectors.Batch) error {
		var n int64
		for i := range b.Events {
			if ev := &b.Events[i]; ev.SecondsLikeTS {
				if n == 0 && s.first.Load() == nil {
					s.first.CompareAndSwap(nil, &secondsSample{ref: ev.Source + ":" + fmt.Sprint(ev.Line), time: ev.Time})
				}
				n++
			}
		}
		if n > 0 {
			s.n.Add(n)
		}
		return nil
	})
}

// before2001 is 2001-01-01T00:00:00Z in Unix nanoseconds.
const before2001 = 978_307_200 * int64(1e9)

// coverageWarnings says what an audit could not check, from its summary,
// the rules of cfg and, for an audit of files or topics, the count of
// seconds-like timestamps (nil for an audit of stored events, which judges
// by the earliest event time instead).
func coverageWarnings(cfg *config.Config, s *twicetype.Summary, secs *secondsTS) []twicetype.Warning {
	var ws []twicetype.Warning
	switch {
	case s.Events == 0 && s.Malformed == 0:
		ws = append(ws, twicetype.Warning{Code: twicetype.WarnNoEvents,
			Message: "The input held no events: nothing was checked. Check the files, sources or time range given."})
	case s.Events == 0:
		ws = append(ws, twicetype.Warning{Code: twicetype.WarnAllMalformed,
			Message: fmt.Sprintf("Every line read (%d) was malformed: nothing was checked. "+
				"See the malformed lines for why; an event needs at least ts and kind, and the fields its kind needs.", s.Malformed)})
	}
	if w, ok := secondsWarning(s, secs); ok {
		ws = append(ws, w)
	}
	if s.Events > 0 {
		ws = append(ws, ruleWarnings(cfg, s)...)
	}
	if s.Evicted > 0 {
		ws = append(ws, twicetype.Warning{Code: twicetype.WarnEvicted,
			Message: fmt.Sprintf("%d state records were dropped by a memory cap (watch.limits) before they could no longer produce a finding: findings about them may be missing.", s.Evicted)})
	}
	return ws
}

// ruleWarnings warns of expect rules that checked nothing: no job of their
// job_type, or a template that rendered for none of them. It needs the
// per-rule counts of the audit (Summary.Rules); without them it says
// nothing.
func ruleWarnings(cfg *config.Config, s *twicetype.Summary) []twicetype.Warning {
	if len(s.Rules) != len(cfg.Expect) {
		return nil
	}
	var ws []twicetype.Warning
	for i, r := range cfg.Expect {
		c := s.Rules[i]
		name := fmt.Sprintf("expect rule %s → %s", r.JobType, r.Effect)
		if r.Line > 0 {
			name += fmt.Sprintf(" (line %d of the config)", r.Line)
		}
		subject := r.JobType + " " + r.Effect
		switch {
		case c.Jobs == 0:
			ws = append(ws, twicetype.Warning{Code: twicetype.WarnRuleNoJobs, Subject: subject, Message: fmt.Sprintf(
				"%s checked nothing: no job of type %q was seen. Check its job_type against the job_type of your job events (it is case-sensitive).",
				name, r.JobType)})
		case c.Rendered == 0:
			tmpl := ""
			if r.EffectKey != nil {
				tmpl = r.EffectKey.String()
			}
			ws = append(ws, twicetype.Warning{Code: twicetype.WarnRuleNeverRendered, Subject: subject, Message: fmt.Sprintf(
				"%s checked nothing: its effect_key %q rendered for none of the %d %s job(s), so no effect was expected of them. "+
					"A field it reads was missing on every job, or null, an object or an array; check the fields of your job events.",
				name, tmpl, c.Jobs, r.JobType)})
		}
	}
	return ws
}

// secondsWarning warns of integer timestamps that look like seconds.
func secondsWarning(s *twicetype.Summary, secs *secondsTS) (twicetype.Warning, bool) {
	const fix = "Integer ts values are Unix milliseconds: multiply seconds by 1000 (or write RFC 3339 times such as 2026-11-24T10:00:00Z)."
	if secs == nil {
		// Stored events keep their time, not how it was written: judge
		// by the earliest one.
		if s.Events == 0 || s.From >= before2001 {
			return twicetype.Warning{}, false
		}
		return twicetype.Warning{Code: twicetype.WarnSecondsTS, Message: fmt.Sprintf(
			"The earliest event is at %s, before 2001: its ts was most likely written in Unix seconds and read as milliseconds. %s",
			twicetype.FormatTime(s.From), fix)}, true
	}
	n := secs.n.Load()
	if n == 0 {
		return twicetype.Warning{}, false
	}
	msg := fmt.Sprintf("%d event(s) have an integer ts before 2001 when read as Unix milliseconds", n)
	if first := secs.first.Load(); first != nil {
		msg += fmt.Sprintf(" (the first at %s reads as %s)", first.ref, twicetype.FormatTime(first.time))
	}
	msg += ": they were most likely written in Unix seconds, and their deadlines and windows are wrong. " + fix
	return twicetype.Warning{Code: twicetype.WarnSecondsTS, Message: msg}, true
}
