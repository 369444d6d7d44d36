package pgjobs

import (
	"context"
	"time"

	"github.com/twicehq/twice/sources"
)

// stream lets `twice watch` read a job table: one lane, schema.table,
// whose position is the tracker's state after a poll (gzip'd JSON in
// base64: the cursor, the ids read above it, and per followed job what
// was emitted). The records of a poll carry the position before it and
// the last one the position after it: a restart in between judges the
// poll's rows again and yields their events again, as repeated ids that
// twice counts once. A poll that emits nothing returns no record, so the
// lane can go idle.
type stream struct {
	p     *Poller
	l     *listener
	every time.Duration
	now   func() time.Time
	logf  func(string, ...any)

	loaded bool
	pos    sources.Position
	next   time.Time // when the next poll is due
	last   time.Time // when the last poll began
	more   bool

	sources.PollHealth
}

var (
	_ sources.Stream         = (*stream)(nil)
	_ sources.HealthReporter = (*stream)(nil)
)

// Name names the source.
func (s *stream) Name() string { return s.p.name }

// Replayable is true: the table is read again from the checkpointed
// cursor and state; rows the queue deleted meanwhile are lost coverage.
func (s *stream) Replayable() bool { return true }

// Lanes is the one lane, schema.table.
func (s *stream) Lanes() []string { return []string{s.p.lane} }

// Start loads the checkpointed state (once), connects and listens.
func (s *stream) Start(ctx context.Context, resume map[string]sources.Position) error {
	if !s.loaded {
		if pos := resume[s.p.lane]; pos != "" {
			if err := s.p.tracker.load(string(pos)); err != nil {
				// Starting afresh costs repeated ids, never wrong events.
				s.logf("source %s: %v; starting without it", s.p.name, err)
				s.p.tracker = newTracker(s.p.d, s.p.tracker.m, s.p.tracker.grace)
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
	s.l.start(ctx)
	s.SetHealth(nil)
	return nil
}

// wakeCooldown is the least time between two polls that notifications
// bring forward (River's own fetch cooldown): a busy queue notifying
// every insert costs at most ten polls a second.
const wakeCooldown = 100 * time.Millisecond

// Poll reads the table when a poll is due, or a notification came,
// waiting for either up to wait.
func (s *stream) Poll(ctx context.Context, wait time.Duration) ([]sources.Record, error) {
	if !s.more {
		deadline := s.now().Add(wait)
		for {
			d := s.next.Sub(s.now())
			if d <= 0 {
				break
			}
			left := deadline.Sub(s.now())
			if left <= 0 {
				return nil, nil
			}
			t := time.NewTimer(min(d, left))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-s.l.wake:
				t.Stop()
				// Bring the poll forward, to no sooner than the cooldown
				// after the last one.
				if early := s.last.Add(wakeCooldown); early.Before(s.next) {
					s.next = early
				}
			case <-t.C:
			}
		}
	}
	s.last = s.now()
	s.l.start(ctx)
	s.next = s.now().Add(s.every)
	b, more, err := s.p.Poll(ctx)
	s.SetHealth(err)
	if err != nil {
		return nil, err
	}
	s.more = more
	lane := s.p.lane
	recs := sources.BatchRecords(lane, s.pos, b)
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

// Commit has nothing to acknowledge: reading takes nothing from the
// queue.
func (s *stream) Commit(context.Context, map[string]sources.Position) error { return nil }

// Shutdown stops listening and closes the pool; safe twice.
func (s *stream) Shutdown(ctx context.Context) error {
	s.l.stop()
	return s.p.Shutdown(ctx)
}

// Stats returns the poller's counters and the statements it sent since
// it was made (for load measurements).
func (s *stream) Stats() (Stats, int64) { return s.p.Stats() }
