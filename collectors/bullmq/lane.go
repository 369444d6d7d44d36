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
	g, pos, ok := l.detectGap(&res.info)
	if ok {
		st.gap, st.gapPos = &g, pos
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
// the lane's position. BullMQ only trims a stream from its start, so the
// entries it no longer holds (entries-added less length, Redis 7) are
// exactly those before its first entry. It returns the gap when some of
// them came after the lane's position, and the position the lane moves to
// past them: just before the first entry, with the count of entries up to
// there. That position is after the lane's, so the gap's record is never
// taken for one read again. Without a gap it returns the lane's position
// and its count.
func (l *lane) detectGap(info *streamInfo) (twicetype.Gap, position, bool) {
	pos := l.pos
	if !info.hasCounters {
		pos.through = -1 // Redis < 7.0: no counters to tell
		return twicetype.Gap{}, pos, false
	}
	trimmed := info.trimmed()
	edge := info.last // every entry at or before edge is gone
	if info.length > 0 {
		edge = info.first.prev()
	}
	past := position{id: edge, through: trimmed}
	switch {
	case pos.id.isZero() && !l.since:
		// The first read of the stream: what it no longer holds was
		// trimmed before twice looked.
		if trimmed > 0 && pos.id.less(edge) {
			return l.q.gap("trimmed before twice first read the stream", trimmed, streamID{}, info.first), past, true
		}
		pos.through = 0
		return twicetype.Gap{}, pos, false
	case pos.through >= 0 && info.entriesAdded < pos.through:
		// The stream was deleted and made again (Queue.obliterate): its
		// counters started over.
		past = position{id: streamID{pos.id.ms, pos.id.seq + 1}, through: -1}
		if info.length > 0 && !past.id.less(info.first) {
			pos.through = -1
			return twicetype.Gap{}, pos, false
		}
		return l.q.gap("stream deleted and created again", 0, pos.id, info.first), past, true
	case pos.through >= 0:
		if lost := trimmed - pos.through; lost > 0 && pos.id.less(edge) {
			return l.q.gap("stream trimmed", lost, pos.id, info.first), past, true
		}
		return twicetype.Gap{}, pos, false
	default:
		// Resumed at a position without a count, or at --since: entries
		// were lost if the stream lost any after it; how many is not
		// known (nor, when nothing was written between the position and
		// the first entry left, whether any).
		if trimmed > 0 && pos.id.less(edge) {
			return l.q.gap("stream trimmed", 0, pos.id, info.first), past, true
		}
		return twicetype.Gap{}, pos, false
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
