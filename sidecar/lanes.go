package sidecar

import (
	"time"
)

// lane is one ordered part of a stream, with the records read from it
// that the engine has not taken yet.
type lane struct {
	name   string
	stream int
	queue  []Record
	head   int
	// maxTime is the largest event time read on the lane.
	maxTime int64
	hasTime bool
	// lastArrival is when the lane last delivered a record (wall clock).
	lastArrival time.Time
	// polled is the offset after the last record read.
	polled int64
	// malformedThrough is the offset of the last malformed record
	// counted, so that one read again after a restart is not counted
	// twice; -1 when none.
	malformedThrough int64
}

func (l *lane) pending() int { return len(l.queue) - l.head }

// next returns the offset of the first record the engine has not taken:
// where the lane resumes after a restart.
func (l *lane) next() int64 {
	if l.pending() > 0 {
		return l.queue[l.head].Offset
	}
	return l.polled
}

func (l *lane) push(r Record, now time.Time) {
	l.lastArrival = now
	l.polled = r.Offset + 1
	if r.Event == nil {
		return
	}
	if !l.hasTime || r.Event.Time > l.maxTime {
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
	return r
}

// merger puts the events of several lanes in event-time order: an event
// is released once every lane that is not idle has read up to its time,
// so a partition read ahead of another does not make the other's events
// late. A lane idle for longer than the idle timeout (nothing read) does
// not hold the others back.
type merger struct {
	lanes []*lane
	idle  time.Duration
}

// lowWatermark returns the time up to which every active lane has read,
// and false when no lane is active (all idle): then everything read can
// go.
func (m *merger) lowWatermark(now time.Time) (int64, bool) {
	var low int64
	active := false
	for _, l := range m.lanes {
		if now.Sub(l.lastArrival) > m.idle {
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

// release hands the events that may go, in time order (ties to the lane
// listed first), to take.
func (m *merger) release(now time.Time, take func(Record)) {
	low, bounded := m.lowWatermark(now)
	for {
		var best *lane
		for _, l := range m.lanes {
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
		take(best.pop())
	}
}
