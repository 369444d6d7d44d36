package sidecar

import (
	"context"
	"sort"
	"time"

	"github.com/twicehq/twice/sources"
)

// Lanes and positions. A stream names its lanes itself ("orders/3", a
// queue's name); the sidecar keys them "SOURCE LANE" in the checkpoint
// and in metrics, so two sources may have lanes of the same name. A
// record's Position is where its lane resumes after it: the checkpoint
// keeps, per lane, the position of the last record the engine took
// (events, malformed records and gaps alike, in lane order), a restart
// hands it back to the stream's Start, and Commit tells the stream the
// same positions once the checkpoint holding them is durable.

// lane is one ordered part of a stream, with the records read from it
// that the engine has not taken yet.
type lane struct {
	// key is "SOURCE LANE"; local the stream's own name for it.
	key, local string
	stream     int
	queue      []Record
	head       int
	// maxTime is the largest event time read on the lane.
	maxTime int64
	hasTime bool
	// lastArrival is when the lane last delivered a record (wall clock).
	lastArrival time.Time
	// quiet is set once a poll of its stream came back without records
	// of the lane after its last record: the lane had nothing more to
	// give then. Only a quiet lane can be idle, so a lane whose records
	// wait for a busy watch loop (in the batches not taken yet) is not
	// passed over.
	quiet bool
	// polled is the position after the last record read; done after the
	// last record taken, where the lane resumes after a restart.
	polled, done       Position
	hasPolled, hasDone bool
	// legacyMalformed is, for a lane restored from a checkpoint written
	// when positions were Kafka offsets, the offset through which
	// malformed records were counted already (they were counted when
	// read, not when taken); -1 when none.
	legacyMalformed int64
}

func (l *lane) pending() int { return len(l.queue) - l.head }

func (l *lane) push(r Record, now time.Time) {
	l.lastArrival = now
	l.quiet = false
	l.polled, l.hasPolled = r.Position, true
	if r.Event != nil && (!l.hasTime || r.Event.Time > l.maxTime) {
		l.maxTime, l.hasTime = r.Event.Time, true
	}
	if l.head > 0 && l.head == len(l.queue) {
		l.queue, l.head = l.queue[:0], 0
	}
	l.queue = append(l.queue, r)
}

func (l *lane) pop() Record {
	r := l.queue[l.head]
	l.queue[l.head] = Record{}
	l.head++
	l.done, l.hasDone = r.Position, true
	return r
}

// merger puts the events of several lanes in event-time order: an event
// is released once every lane that is not idle has read up to its time,
// so a partition read ahead of another does not make the other's events
// late. A lane idle for longer than the idle timeout (nothing read) does
// not hold the others back. Records without a time (malformed, gaps) go
// as soon as they are at the head of their lane.
type merger struct {
	lanes []*lane
	idle  time.Duration
}

// idle reports whether a lane no longer holds the others back: it has
// delivered nothing for the idle timeout, and its stream said it had
// nothing more.
func (m *merger) isIdle(l *lane, now time.Time) bool {
	return l.quiet && now.Sub(l.lastArrival) > m.idle
}

// lowWatermark returns the time up to which every active lane has read,
// and false when no lane is active (all idle): then everything read can
// go.
func (m *merger) lowWatermark(now time.Time) (int64, bool) {
	var low int64
	active := false
	for _, l := range m.lanes {
		if m.isIdle(l, now) {
			continue
		}
		if !l.hasTime {
			// Active but nothing read yet: it may hold anything.
			return 0, true
		}
		if !active || l.maxTime < low {
			low = l.maxTime
		}
		active = true
	}
	if !active {
		return 0, false
	}
	return low, true
}

// release hands the records that may go, events in time order (ties to
// the lane listed first), to take.
func (m *merger) release(now time.Time, take func(*lane, Record)) {
	low, bounded := m.lowWatermark(now)
	for {
		var best *lane
		for _, l := range m.lanes {
			for l.pending() > 0 && l.queue[l.head].Event == nil {
				take(l, l.pop())
			}
			if l.pending() == 0 {
				continue
			}
			if best == nil || l.queue[l.head].Event.Time < best.queue[best.head].Event.Time {
				best = l
			}
		}
		if best == nil {
			return
		}
		if bounded && (best.queue[best.head].Event.Time > low || !best.hasTime) {
			return
		}
		take(best, best.pop())
	}
}

// laneKey is the checkpoint's name of a stream's lane.
func laneKey(source, local string) string { return source + " " + local }

// lanePos is a lane's entry in the checkpoint.
type lanePos struct {
	// Source and Lane name the stream and its lane.
	Source string `json:"source,omitempty"`
	Lane   string `json:"lane,omitempty"`
	// Position is where the lane resumes.
	Position Position `json:"position"`
	// Next and MalformedThrough are the Kafka offsets of a checkpoint
	// written before positions were opaque: Next is read as the
	// position, MalformedThrough kept while malformed records up to it
	// may still be read again.
	Next             *int64 `json:"next,omitempty"`
	MalformedThrough *int64 `json:"malformed_through,omitempty"`
}

// position returns where the lane resumes, reading a legacy offset.
func (p lanePos) position() (Position, bool) {
	switch {
	case p.Position != "":
		return p.Position, true
	case p.Next != nil && *p.Next >= 0:
		return sources.IntPosition(*p.Next), true
	}
	return "", false
}

// resumePositions returns, per stream, the positions its lanes resume
// at, by the stream's own lane names.
func resumePositions(m *meta, streams []Stream) []map[string]Position {
	out := make([]map[string]Position, len(streams))
	byName := map[string]int{}
	for i, s := range streams {
		out[i] = map[string]Position{}
		byName[s.Name()] = i
	}
	for key, p := range m.Lanes {
		pos, ok := p.position()
		if !ok {
			continue
		}
		if p.Source != "" {
			if i, ok := byName[p.Source]; ok {
				out[i][p.Lane] = pos
			}
			continue
		}
		// A legacy entry: "SOURCE LANE", the longest source name that
		// fits wins.
		best := -1
		for i, s := range streams {
			n := s.Name()
			if len(key) > len(n)+1 && key[:len(n)+1] == n+" " && (best < 0 || len(n) > len(streams[best].Name())) {
				best = i
			}
		}
		if best >= 0 {
			out[best][key[len(streams[best].Name())+1:]] = pos
		}
	}
	return out
}

func (w *Watcher) addLane(stream int, local string, now time.Time) *lane {
	key := laneKey(w.opts.Streams[stream].Name(), local)
	l := &lane{key: key, local: local, stream: stream, lastArrival: now, legacyMalformed: -1}
	if p, ok := w.meta.Lanes[key]; ok {
		if pos, ok := p.position(); ok {
			l.polled, l.done, l.hasPolled, l.hasDone = pos, pos, true, true
		}
		if p.MalformedThrough != nil && p.Next != nil && *p.MalformedThrough >= *p.Next {
			l.legacyMalformed = *p.MalformedThrough
		}
	}
	w.lanes[key] = l
	w.merge.lanes = append(w.merge.lanes, l)
	sort.Slice(w.merge.lanes, func(i, k int) bool { return w.merge.lanes[i].key < w.merge.lanes[k].key })
	return l
}

// addLanes adds the lanes a stream reports after Start.
func (w *Watcher) addLanes(stream int, locals []string) {
	now := w.opts.Now()
	for _, local := range locals {
		if w.lanes[laneKey(w.opts.Streams[stream].Name(), local)] == nil {
			w.addLane(stream, local, now)
		}
	}
}

// ingest puts polled records in their lanes; the engine takes them in
// release.
func (w *Watcher) ingest(b polled) {
	now := w.opts.Now()
	s := w.opts.Streams[b.stream]
	ord, _ := s.(sources.Ordered)
	if !b.started {
		// Lanes of the stream this poll brought nothing for are quiet;
		// push clears it for those it did.
		for _, l := range w.merge.lanes {
			if l.stream == b.stream {
				l.quiet = true
			}
		}
	}
	for _, r := range b.recs {
		l := w.lanes[laneKey(s.Name(), r.Lane)]
		if l == nil {
			l = w.addLane(b.stream, r.Lane, now)
		}
		if ord != nil && l.hasPolled && !ord.Before(r.Lane, l.polled, r.Position) {
			w.m.redelivered.WithLabelValues(s.Name()).Inc()
			continue
		}
		l.push(r, now)
	}
}

// takeMalformed counts a malformed record the lane's position passes,
// and reports whether it went to the journal.
func (w *Watcher) takeMalformed(l *lane, r Record) bool {
	if l.legacyMalformed >= 0 {
		if n, err := r.Position.Int(); err == nil && n-1 <= l.legacyMalformed {
			return false // counted before positions were opaque
		}
		l.legacyMalformed = -1
	}
	src := w.opts.Streams[l.stream].Name()
	_ = w.eng.Malformed(*r.Malformed)
	w.journal = appendMalformedEntry(w.journal, r.Malformed)
	w.m.malformed.WithLabelValues(src, w.reasonLabel(src, r.Malformed.Reason)).Inc()
	return true
}

// saveLanes writes every lane's position into the checkpoint's meta.
func (w *Watcher) saveLanes(m *meta) {
	for key, l := range w.lanes {
		if !l.hasDone {
			continue
		}
		p := lanePos{Source: w.opts.Streams[l.stream].Name(), Lane: l.local, Position: l.done}
		if l.legacyMalformed >= 0 {
			// Still ahead: keep it (with the offset it is judged from).
			if n, err := l.done.Int(); err == nil {
				through := l.legacyMalformed
				p.Next, p.MalformedThrough = &n, &through
			}
		}
		m.Lanes[key] = p
	}
}

// commitUpstream tells each stream where its lanes are durable, and
// reads its lag.
func (w *Watcher) commitUpstream(ctx context.Context) {
	per := make([]map[string]Position, len(w.opts.Streams))
	for key, l := range w.lanes {
		p, ok := w.meta.Lanes[key]
		if !ok || p.Position == "" {
			continue
		}
		if per[l.stream] == nil {
			per[l.stream] = map[string]Position{}
		}
		per[l.stream][l.local] = p.Position
	}
	for i, s := range w.opts.Streams {
		if !w.health.isStarted(i) {
			continue
		}
		if per[i] != nil {
			if err := s.Commit(ctx, per[i]); err != nil {
				w.opts.Logf("source %s: commit: %v", s.Name(), err)
			}
		}
		lr, ok := s.(sources.LagReporter)
		if !ok {
			continue
		}
		if lag, err := lr.Lag(ctx); err == nil {
			for local, n := range lag {
				w.m.lag.WithLabelValues(s.Name(), laneKey(s.Name(), local)).Set(float64(n))
			}
		}
	}
}
