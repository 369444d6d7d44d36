package sidekiq

import (
	"context"
	"fmt"
	"time"

	"github.com/twicehq/twice/sources"
)

// PollLane is the one lane of a poll-mode stream: the tracker's state
// spans every queue, so it is one position.
const PollLane = "poll"

// pollStream lets `twice watch` read a sidekiq source in poll mode. It is
// not replayable: Sidekiq keeps no history of what went through its
// queues. Its position is the tracker's state after a snapshot (gzip'd
// JSON in base64), so that after a restart the jobs it was following are
// still judged. The records of a snapshot carry the position before it,
// and the last one the position after it: a restart in between reads the
// snapshot's changes again, as repeated ids. A snapshot that changed
// nothing returns no record (a record without an event would keep the
// lane from ever counting as idle, and hold every other lane back), so
// the checkpointed state is the one of the last snapshot with news: a
// restart judges from it, with repeated ids again.
type pollStream struct {
	p     *Poller
	every time.Duration
	now   func() time.Time
	logf  func(string, ...any)

	loaded bool
	pos    sources.Position // after the last snapshot
	next   time.Time        // when the next snapshot is due

	sources.PollHealth
}

var (
	_ sources.Stream         = (*pollStream)(nil)
	_ sources.HealthReporter = (*pollStream)(nil)
)

// Name names the source.
func (s *pollStream) Name() string { return s.p.name }

// Replayable is false: Sidekiq keeps no history of its queues.
func (s *pollStream) Replayable() bool { return false }

// Lanes is the one lane, PollLane.
func (s *pollStream) Lanes() []string { return []string{PollLane} }

// Start loads the state of the checkpoint (once) and connects.
func (s *pollStream) Start(ctx context.Context, resume map[string]sources.Position) error {
	if !s.loaded {
		if pos := resume[PollLane]; pos != "" {
			if err := s.p.tracker.load(string(pos)); err != nil {
				// Starting afresh costs repeated ids and the judgement of
				// the jobs in flight, never wrong events.
				s.logf("source %s: %v; starting without it", s.p.name, err)
				fresh := newTracker(s.p.tracker.m, s.p.tracker.deadAfter)
				fresh.match = s.p.tracker.match
				s.p.tracker = fresh
			} else {
				s.pos = pos
			}
		}
		s.loaded = true
	}
	if err := s.p.Start(ctx); err != nil {
		s.SetHealth(err)
		return err
	}
	s.SetHealth(nil)
	return nil
}

// Poll reads a snapshot when one is due, waiting for it up to wait.
func (s *pollStream) Poll(ctx context.Context, wait time.Duration) ([]sources.Record, error) {
	now := s.now()
	if now.Before(s.next) {
		d := s.next.Sub(now)
		if d > wait {
			d = wait
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		if s.now().Before(s.next) {
			return nil, nil
		}
	}
	s.next = s.now().Add(s.every)
	b, err := s.p.Poll(ctx)
	if err != nil {
		s.SetHealth(err)
		return nil, err
	}
	s.SetHealth(nil)
	recs := sources.BatchRecords(PollLane, s.pos, b)
	if len(recs) == 0 {
		return nil, nil
	}
	state, err := s.p.tracker.save()
	if err != nil {
		return nil, err
	}
	s.pos = sources.Position(state)
	recs[len(recs)-1].Position = s.pos
	return recs, nil
}

// Commit has nothing to acknowledge: polling takes nothing from Sidekiq.
func (s *pollStream) Commit(context.Context, map[string]sources.Position) error { return nil }

// Shutdown closes the connection; safe twice.
func (s *pollStream) Shutdown(ctx context.Context) error { return s.p.Shutdown(ctx) }

// middlewareStream lets `twice watch` read the middleware's stream: one
// lane, the stream key, whose position is "ENTRY-ID/N" (see Position). It
// is replayable: the stream is read again from any entry it still holds,
// and entries trimmed before twice read them are reported as lost.
type middlewareStream struct {
	r    *StreamReader
	lane string

	sources.PollHealth
}

var (
	_ sources.Stream         = (*middlewareStream)(nil)
	_ sources.LagReporter    = (*middlewareStream)(nil)
	_ sources.HealthReporter = (*middlewareStream)(nil)
	_ sources.Ordered        = (*middlewareStream)(nil)
)

// Name names the source.
func (s *middlewareStream) Name() string { return s.r.name }

// Replayable is true: the stream is read again from any entry it holds.
func (s *middlewareStream) Replayable() bool { return true }

// Lanes is the one lane, the stream's key.
func (s *middlewareStream) Lanes() []string { return []string{s.lane} }

// Start connects and resumes after the checkpoint's position.
func (s *middlewareStream) Start(ctx context.Context, resume map[string]sources.Position) error {
	from, err := ParsePosition(string(resume[s.lane]))
	if err != nil {
		return fmt.Errorf("%s: lane %s: %w", s.r.name, s.lane, err)
	}
	err = s.r.Start(ctx, from)
	s.SetHealth(err)
	return err
}

// readBatch is how many entries one Poll reads at most.
const readBatch = 1000

// Poll reads the entries that arrived within wait.
func (s *middlewareStream) Poll(ctx context.Context, wait time.Duration) ([]sources.Record, error) {
	recs, err := s.r.Read(ctx, wait, readBatch)
	s.SetHealth(err)
	if err != nil {
		return nil, err
	}
	out := make([]sources.Record, 0, len(recs)+1)
	for _, r := range recs {
		pos := sources.Position(r.Pos.String())
		if r.Lost != nil {
			out = append(out, sources.Record{Lane: s.lane, Position: pos, Lost: r.Lost})
		}
		out = append(out, sources.Record{Lane: s.lane, Position: pos, Event: r.Event, Malformed: r.Malformed})
	}
	return out, nil
}

// Before compares two positions by entry id.
func (s *middlewareStream) Before(_ string, a, b sources.Position) bool {
	x, errA := ParsePosition(string(a))
	y, errB := ParsePosition(string(b))
	return errA == nil && errB == nil && compareIDs(x.ID, y.ID) < 0
}

// Lag returns the entries the middleware wrote that twice has not read.
func (s *middlewareStream) Lag(ctx context.Context) (map[string]int64, error) {
	n, err := s.r.Lag(ctx)
	if err != nil {
		return nil, err
	}
	return map[string]int64{s.lane: n}, nil
}

// Commit has nothing to acknowledge: the stream is read without a
// consumer group, and trimmed by the middleware's MAXLEN.
func (s *middlewareStream) Commit(context.Context, map[string]sources.Position) error { return nil }

// Shutdown closes the connection; safe twice.
func (s *middlewareStream) Shutdown(ctx context.Context) error { return s.r.Shutdown(ctx) }
