// Package engine runs an audit: it takes normalized events as they arrive,
// counts each observation once, puts them in event-time order with a
// bounded reorder buffer, and feeds them to the detectors.
//
// Identity: the first copy of an identity (spec §1) counts; later copies
// are counted in repeated_ids and dropped. The set of identities seen keeps
// 8 bytes an identity.
//
// Order: events wait in a min-heap on (ts, arrival) until the watermark —
// the largest ts seen minus the allowed lateness — passes them, or until
// the buffer holds more than its cap, whichever comes first. An event that
// arrives after an event with a later ts has already been released is late:
// it is counted in Summary.Late and audited at once, in arrival order. An
// event more than the lateness behind the largest ts seen is counted late
// too, though it may still find its place in the buffer.
package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/twicehq/twice/detectors"
	"github.com/twicehq/twice/internal/hashset"
	"github.com/twicehq/twice/redact"
	"github.com/twicehq/twice/twicetype"
)

// DefaultReorderBuffer is the default cap on events held for reordering.
const DefaultReorderBuffer = 100_000

// Options configure an Engine.
type Options struct {
	Detectors detectors.Options
	// Lateness is how far behind the largest ts seen an event may arrive
	// and still be put in order. Negative means no time bound: only
	// ReorderBuffer bounds the buffer, which sorts small inputs exactly.
	Lateness time.Duration
	// ReorderBuffer caps the events held for reordering; zero means
	// DefaultReorderBuffer.
	ReorderBuffer int
	// Strict makes the first malformed line an error.
	Strict bool
	// MaxIdentities bounds the identities remembered to recognise repeated
	// deliveries (0: all of them, as an audit of files needs). A sidecar
	// runs without end: it remembers the last MaxIdentities to
	// 2×MaxIdentities, 8 bytes each, so a copy delivered again after that
	// many newer events would count twice.
	MaxIdentities int
	// OnMalformed, if set, sees every malformed line as it is found.
	OnMalformed func(twicetype.Malformed)
	// KeepEmails leaves email addresses in findings as they are; by
	// default Finish and Changes redact them (package redact).
	KeepEmails bool
	// ConfigHash identifies the configuration (rules, settings,
	// redaction) for snapshots: Snapshot writes it and Restore refuses a
	// snapshot taken with another.
	ConfigHash string
}

// Engine is one audit in progress. It is not safe for concurrent use.
type Engine struct {
	opts Options
	det  *detectors.Set
	ids  hashset.Set
	// idsOld is the previous generation of identities when
	// Options.MaxIdentities bounds them.
	idsOld hashset.Set
	sum    twicetype.Summary

	buf       reorderBuffer
	arrivals  uint64
	maxTime   int64
	watermark int64
	released  bool
	finished  *twicetype.Report

	// With a pipeline (see pipeline.go) the detectors run on their own
	// goroutine and ordered events reach them in chunks.
	pipe *pipeline
}

// audit hands one ordered event to the detectors.
func (e *Engine) audit(ev *twicetype.Event) {
	if e.pipe != nil {
		e.pipe.send(ev)
		return
	}
	e.det.Process(ev)
}

// New builds an Engine. It does no I/O.
func New(opts Options) *Engine {
	if opts.ReorderBuffer <= 0 {
		opts.ReorderBuffer = DefaultReorderBuffer
	}
	return &Engine{opts: opts, det: detectors.New(opts.Detectors)}
}

// ErrMalformed is wrapped by the error Malformed returns in strict mode.
var ErrMalformed = errors.New("malformed event")

// Malformed records a line that was not a valid event. In strict mode it
// returns an error naming the line.
func (e *Engine) Malformed(m twicetype.Malformed) error {
	e.sum.Malformed++
	if len(e.sum.MalformedLines) < twicetype.MaxMalformedLines {
		e.sum.MalformedLines = append(e.sum.MalformedLines, m)
	}
	if e.opts.OnMalformed != nil {
		e.opts.OnMalformed(m)
	}
	if e.opts.Strict {
		return fmt.Errorf("%s:%d: %w: %s", m.Source, m.Line, ErrMalformed, m.Reason)
	}
	return nil
}

// Add takes one valid event. The engine keeps the pointer until the event
// has been audited; the caller must not change the event afterwards.
func (e *Engine) Add(ev *twicetype.Event) {
	if e.idsOld.Len() > 0 && e.idsOld.Has(ev.Identity) || !e.ids.Add(ev.Identity) {
		e.sum.RepeatedIDs++
		return
	}
	if max := e.opts.MaxIdentities; max > 0 && e.ids.Len() >= max {
		// Two generations of at most max identities each: repeats are
		// recognised among the last max to 2×max identities seen.
		e.idsOld, e.ids = e.ids, hashset.Set{}
	}
	s := &e.sum
	if s.Events == 0 || ev.Time < s.From {
		s.From = ev.Time
	}
	if s.Events == 0 || ev.Time > s.To {
		s.To = ev.Time
	}
	s.Events++
	if ev.Kind == twicetype.Effect {
		s.Effects++
		if s.EffectsByType == nil {
			s.EffectsByType = map[string]int64{}
		}
		s.EffectsByType[ev.Effect]++
	}
	late := e.released && ev.Time < e.watermark
	if e.opts.Lateness >= 0 && s.Events > 1 && ev.Time < e.maxTime-int64(e.opts.Lateness) {
		late = true
	}
	if late {
		s.Late++
	}
	if e.released && ev.Time < e.watermark {
		// Events after it have been audited already: audit it now.
		e.audit(ev)
		return
	}
	e.arrivals++
	if s.Events == 1 || ev.Time > e.maxTime {
		e.maxTime = ev.Time
	}
	e.buf.push(bufItem{time: ev.Time, seq: e.arrivals, ev: ev})
	e.release(false)
}

// release audits the events the watermark has passed, or all of them.
func (e *Engine) release(all bool) {
	lateness := int64(e.opts.Lateness)
	for e.buf.len() > 0 {
		top := e.buf.min()
		if !all && e.buf.len() <= e.opts.ReorderBuffer &&
			(lateness < 0 || top.time > e.maxTime-lateness) {
			return
		}
		it := e.buf.pop()
		if !e.released || it.time > e.watermark {
			e.watermark = it.time
		}
		e.released = true
		e.audit(it.ev)
	}
}

// Finish audits what is still buffered, ends the audit at the largest ts
// seen and returns the report. Later calls return the same report.
func (e *Engine) Finish() *twicetype.Report {
	if e.finished != nil {
		return e.finished
	}
	e.release(true)
	e.stopPipeline()
	if e.sum.Events > 0 {
		e.sum.Pending = e.det.Finish(e.sum.To)
	}
	e.sum.Jobs = e.det.Jobs()
	e.sum.Evicted = e.det.Evicted()
	if rc := e.det.RuleCoverage(); len(rc) > 0 {
		e.sum.Rules = rc
	}
	f := e.det.Findings()
	e.sum.Findings = f.Counts(e.det.Enabled())
	e.finished = &twicetype.Report{Summary: e.sum, Findings: f.Sorted()}
	e.finished.Scorecard = detectors.Scorecard(e.det.ScoreCounts(), e.finished.Findings)
	if e.opts.Detectors.Impact != nil {
		e.finished.Impact = detectors.ImpactOf(e.finished.Findings)
	}
	if !e.opts.KeepEmails {
		redact.Report(e.finished)
	}
	return e.finished
}
