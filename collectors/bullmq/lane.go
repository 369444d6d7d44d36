package bullmq

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/twicehq/twice/twicetype"
)

// position is where a lane is: the id of the last entry read, and how many
// entries the stream had ever held up to it (entries added with an id at
// or before it), -1 when unknown. The count is what tells, at the next
// read, how many entries were trimmed before they were read: Redis 7's
// XINFO STREAM counts every entry added and the stream's length, and
// BullMQ only trims from the start.
//
// As text (a sources.Position): "1700000000000-3" or "1700000000000-3/1234".
type position struct {
	id      streamID
	through int64
}

func (p position) String() string {
	if p.through < 0 {
		return p.id.String()
	}
	return p.id.String() + "/" + strconv.FormatInt(p.through, 10)
}

// parsePosition reads a position written by String.
func parsePosition(s string) (position, error) {
	idPart, count, hasCount := strings.Cut(s, "/")
	id, err := parseStreamID(idPart)
	if err != nil {
		return position{}, fmt.Errorf("position %q: %w", s, err)
	}
	p := position{id: id, through: -1}
	if hasCount {
		n, err := strconv.ParseInt(count, 10, 64)
		if err != nil || n < 0 {
			return position{}, fmt.Errorf("position %q: the count after / is not a number", s)
		}
		p.through = n
	}
	return p, nil
}

// lane reads one queue's events stream in order.
type lane struct {
	q   *queue
	pos position
	// since is set when reading started at a time (--since) rather than
	// the stream's start: entries trimmed before it were not ours to read.
	since bool
	// info is the stream's state at the last read.
	info streamInfo
}

// laneStep is what one read of a lane gave.
type laneStep struct {
	// gap, when set, is coverage lost before the outputs; gapPos is the
	// lane's position with the lost entries counted.
	gap    *twicetype.Gap
	gapPos position
	outs   []output
	// positions[i] is the lane's position after outs[i].
	positions []position
	// more: the read was full, so more entries may follow at once.
	more bool
}

// step reads up to count entries after the lane's position (and not after
// until, when it is not zero), maps them and moves the lane past those it
// consumed. On an error nothing moves.
func (l *lane) step(ctx context.Context, c redis.Cmdable, count int64, until streamID) (*laneStep, error) {
	key := l.q.streamKey()
	res, err := readAfter(ctx, c, key, l.pos.id, until, count)
	if err != nil {
		return nil, err
	}
	st := &laneStep{}
	if !res.info.exists {
		return st, nil
	}
	pos := l.pos
	if g, through, ok := l.detectGap(&res.info); ok {
		st.gap = &g
		pos.through = through
		st.gapPos = pos
	} else {
		pos.through = through
	}
	lookup := func(jobs []string, withAfter bool, last streamID) (*lookupResult, error) {
		return lookupJobs(ctx, c, l.q.keyPrefix, key, jobs, withAfter, last)
	}
	outs, err := l.q.mapBatch(res.entries, res.full, lookup)
	if err != nil {
		return nil, err
	}
	st.outs = outs
	st.positions = make([]position, len(outs))
	for i, o := range outs {
		pos.id = o.id
		if pos.through >= 0 {
			pos.through++
		}
		st.positions[i] = pos
	}
	// Caught up with the whole stream: every entry ever added is at or
	// before the position, so the count is known (again) from here on.
	if !res.full && until.isZero() && res.info.hasCounters && len(outs) == len(res.entries) {
		pos.through = res.info.entriesAdded
		if n := len(st.positions); n > 0 {
			st.positions[n-1].through = pos.through
		}
	}
	if st.gap != nil {
		l.q.stats.add(func(s *QueueStats) { s.Lost += st.gap.Count })
	}
	st.more = res.full
	l.pos, l.info = pos, res.info
	return st, nil
}

// detectGap compares the stream's counters, read with the entries, with
// the lane's position. It returns the gap when entries were trimmed after
// the position before they were read, and the count of entries at or
// before the position (with the lost ones), -1 when unknown.
func (l *lane) detectGap(info *streamInfo) (twicetype.Gap, int64, bool) {
	through := l.pos.through
	if !info.hasCounters {
		return twicetype.Gap{}, -1, false // Redis < 7.0: no counters to tell
	}
	trimmed := info.trimmed()
	switch {
	case l.pos.id.isZero() && !l.since:
		// The first read of the stream: what it no longer holds was
		// trimmed before twice looked.
		if trimmed > 0 {
			g := l.q.gap("trimmed before twice first read the stream", trimmed, streamID{}, info.first)
			return g, trimmed, true
		}
		return twicetype.Gap{}, 0, false
	case through >= 0 && info.entriesAdded < through:
		// The stream was deleted and made again (Queue.obliterate): its
		// counters started over.
		g := l.q.gap("stream deleted and created again", 0, l.pos.id, info.first)
		return g, -1, true
	case through >= 0:
		if lost := trimmed - through; lost > 0 {
			return l.q.gap("stream trimmed", lost, l.pos.id, info.first), through + lost, true
		}
		return twicetype.Gap{}, through, false
	default:
		// Resumed at a position without a count (or at --since): Redis
		// still tells whether anything after it was deleted.
		if l.pos.id.less(info.maxDeleted) {
			return l.q.gap("stream trimmed", 0, l.pos.id, info.first), -1, true
		}
		return twicetype.Gap{}, -1, false
	}
}

// gap is a gap of this queue.
func (q *queue) gap(reason string, count int64, from, to streamID) twicetype.Gap {
	g := twicetype.Gap{Source: q.source, Lane: q.name, Reason: reason, Count: count}
	if from.ms > 0 {
		g.From = time.UnixMilli(int64(from.ms)).UnixNano()
	}
	if to.ms > 0 {
		g.To = time.UnixMilli(int64(to.ms)).UnixNano()
	}
	return g
}

// lag is how many entries the stream held after the lane's position at
// the last read; false when unknown.
func (l *lane) lag() (int64, bool) {
	if !l.info.exists {
		return 0, true
	}
	if l.pos.through < 0 || !l.info.hasCounters {
		return 0, false
	}
	return max(l.info.entriesAdded-l.pos.through, 0), true
}
