package engine

import (
	"github.com/twicehq/twice/detectors"
	"github.com/twicehq/twice/redact"
	"github.com/twicehq/twice/twicetype"
)

// Changes returns the findings that changed since the last call, as they
// stand now (detectors.Set.Changes); it needs Options.Detectors.Live. The
// detectors must have taken every event first, so Changes ends a
// pipeline: call it from the goroutine that calls Add.
func (e *Engine) Changes() []detectors.View {
	e.stopPipeline()
	views := e.det.Changes()
	if !e.opts.KeepEmails {
		for i := range views {
			redact.Finding(views[i].Finding)
		}
	}
	return views
}

// Advance moves event time to t without an event: deadlines strictly
// before t fire and state idle for longer than the horizon before t is
// released, as if an event at t had arrived. A sidecar uses it when its
// sources are idle. Times at or before the clock change nothing.
// Buffered events before t are audited first, and t becomes the
// watermark: an event before t that arrives later is late.
func (e *Engine) Advance(t int64) {
	for e.buf.len() > 0 && e.buf.min().time < t {
		it := e.buf.pop()
		if !e.released || it.time > e.watermark {
			e.watermark = it.time
		}
		e.released = true
		e.audit(it.ev)
	}
	e.stopPipeline()
	if !e.released || t > e.watermark {
		e.watermark = t
		e.released = true
	}
	e.det.Advance(t)
}

// Open counts the records the detectors hold: jobs, effect keys and
// entities.
func (e *Engine) Open() (jobs, keys, entities int) {
	e.stopPipeline()
	return e.det.Open()
}

// Summary returns the counts so far (events, repeats, malformed, late,
// evicted...); Pending, Jobs and Findings are only set by Finish.
func (e *Engine) Summary() twicetype.Summary {
	s := e.sum
	if e.pipe == nil {
		s.Evicted = e.det.Evicted()
	}
	return s
}

// Watermark returns the event time up to which events have been audited,
// and false before the first.
func (e *Engine) Watermark() (int64, bool) { return e.watermark, e.released }
