package sidecar

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twicehq/twice/twicetype"
)

// Lost coverage. A stream that knows it missed records (a Redis stream
// trimmed past what was read, a stop longer than a source's retention)
// says so with a record whose Lost is set, in its lane. The gap is taken
// like a malformed record, when the lane's position passes it, so a gap
// read again after a restart is not counted again: it is counted in
// twice_coverage_lost_total{source,reason}, kept in the checkpoint
// (merged per source, lane and reason) and shown as a warning in the
// summary of /findings. It is never a finding.

// maxGapKeys bounds the gaps kept in the checkpoint: past it, gaps of new
// lanes are merged under the lane "(other lanes)".
const maxGapKeys = 1000

// lostGap is one entry of the checkpoint's lost coverage.
type lostGap struct {
	Gap twicetype.Gap `json:"gap"`
	// Reports counts the gaps merged into it.
	Reports int64 `json:"reports"`
}

// coverage counts lost coverage and shows it on the API.
type coverage struct {
	lost *prometheus.CounterVec

	mu       sync.Mutex
	warnings []twicetype.Warning
}

func newCoverage(reg prometheus.Registerer) *coverage {
	c := &coverage{lost: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "twice_coverage_lost_total",
		Help: "Gaps in coverage that sources reported: records they know they could not read (a trimmed stream, a stop longer than the retention), by source and reason. Findings about those records may be missing.",
	}, []string{"source", "reason"})}
	if reg != nil {
		reg.MustRegister(c.lost)
	}
	return c
}

// restored counts the gaps of the checkpoint, so the counter holds every
// gap the state holds.
func (c *coverage) restored(lost map[string]*lostGap) {
	for _, g := range lost {
		c.lost.WithLabelValues(g.Gap.Source, g.Gap.Reason).Add(float64(g.Reports))
	}
	c.show(lost)
}

// show sets the warnings of the API from the checkpoint's gaps.
func (c *coverage) show(lost map[string]*lostGap) {
	ws := make([]twicetype.Warning, 0, len(lost))
	for _, g := range lost {
		ws = append(ws, g.Gap.Warning())
	}
	sort.Slice(ws, func(i, k int) bool { return ws[i].Subject < ws[k].Subject })
	c.mu.Lock()
	c.warnings = ws
	c.mu.Unlock()
}

// Warnings returns the sentences about coverage lost so far.
func (c *coverage) Warnings() []twicetype.Warning {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.warnings
}

// takeLost counts a gap the lane's position passes.
func (w *Watcher) takeLost(l *lane, r Record) {
	g := *r.Lost
	g.Source = w.opts.Streams[l.stream].Name()
	if g.Lane == "" {
		g.Lane = l.local
	}
	if g.Reason == "" {
		g.Reason = "unknown"
	}
	if w.meta.Lost == nil {
		w.meta.Lost = map[string]*lostGap{}
	}
	key := g.Source + "\x00" + g.Lane + "\x00" + g.Reason
	if w.meta.Lost[key] == nil && len(w.meta.Lost) >= maxGapKeys {
		g.Lane = "(other lanes)"
		key = g.Source + "\x00" + g.Lane + "\x00" + g.Reason
	}
	if e := w.meta.Lost[key]; e != nil {
		e.Gap.Merge(g)
		e.Reports++
	} else {
		w.meta.Lost[key] = &lostGap{Gap: g, Reports: 1}
	}
	w.cov.lost.WithLabelValues(g.Source, g.Reason).Inc()
	w.cov.show(w.meta.Lost)
	w.opts.Logf("%s", g.Sentence())
}
