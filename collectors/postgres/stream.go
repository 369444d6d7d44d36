package postgres

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twicehq/twice/sources"
)

// Stream lets `twice watch` follow a postgres source (sources.Stream): one
// lane, named after the table (or "query"), polled every poll_interval, at
// once again after a whole batch. See the package comment for positions
// and late commits.
type Stream struct {
	r    *reader
	now  func() time.Time
	logf func(string, ...any)

	mu      sync.Mutex // guards started, r.pool against Shutdown
	started bool
	pos     position
	next    time.Time // when the next query may run
	lane    string

	// Health is the last poll's error while the source cannot be read
	// (Postgres unreachable, the grant revoked), nil once a poll works.
	sources.PollHealth
}

var (
	_ sources.Stream         = (*Stream)(nil)
	_ sources.HealthReporter = (*Stream)(nil)
)

// StreamOptions tune NewStream.
type StreamOptions struct {
	// Logf logs diagnostics; nil for none.
	Logf func(format string, args ...any)
	// Now is the wall clock; nil for time.Now.
	Now func() time.Time
}

// NewStream returns the stream of the postgres source named name. It does
// no I/O.
func NewStream(name string, cfg Config, opts StreamOptions) (*Stream, error) {
	r, err := newReader(name, cfg)
	if err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	return &Stream{r: r, now: opts.Now, logf: opts.Logf, lane: cfg.lane()}, nil
}

// Name returns the source's name.
func (s *Stream) Name() string { return s.r.name }

// Replayable is true: a table can be read again after a position.
func (s *Stream) Replayable() bool { return true }

// Lanes returns the one lane: the table, or "query".
func (s *Stream) Lanes() []string { return []string{s.lane} }

// Start connects, learns the columns and resumes after resume's position
// of the lane (from the first row without one).
func (s *Stream) Start(ctx context.Context, resume map[string]sources.Position) error {
	pos, err := parsePosition(string(resume[s.lane]), len(s.r.cfg.Cursor))
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.r.connect(ctx); err != nil {
		return err
	}
	if len(pos.Holes) > 0 && s.r.kind != cursorInteger {
		pos.Holes = nil
	}
	if _, resumed := resume[s.lane]; !resumed && s.r.cfg.Start == StartLatest {
		last, err := s.r.last(ctx)
		if err != nil {
			s.r.close()
			return err
		}
		pos.After = last
	}
	s.pos, s.next, s.started = pos, time.Time{}, true
	return nil
}

// Poll waits until the next poll is due (at most wait), then reads the
// rows after the lane's position: those settled, for a timestamp cursor.
func (s *Stream) Poll(ctx context.Context, wait time.Duration) ([]sources.Record, error) {
	s.mu.Lock()
	started := s.started
	next := s.next
	s.mu.Unlock()
	if !started {
		return nil, errors.New("not started")
	}
	if d := next.Sub(s.now()); d > 0 {
		t := time.NewTimer(min(d, wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		if next.After(s.now()) {
			return nil, nil
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.r.pool == nil {
		return nil, errors.New("shut down")
	}
	now := s.now()
	settle := s.r.cfg.settle()
	var b bounds
	switch s.r.kind {
	case cursorInteger:
		expire(&s.pos, now, settle)
	case cursorTimestamp:
		if settle > 0 {
			b.settledBy = now.Add(-settle)
		}
	}
	rows, full, err := s.r.read(ctx, s.r.pool, &s.pos, b)
	s.SetHealth(err)
	if err != nil {
		s.next = now.Add(s.r.cfg.pollInterval())
		return nil, err
	}
	if full {
		s.next = now
	} else {
		s.next = now.Add(s.r.cfg.pollInterval())
	}
	out := make([]sources.Record, 0, len(rows))
	for _, row := range rows {
		s.r.advance(&s.pos, row.after, now)
		out = append(out, sources.Record{Lane: s.lane, Position: sources.Position(s.pos.encode()), Event: row.event, Malformed: row.malformed})
	}
	return out, nil
}

// Commit does nothing: twice resumes from its own checkpoint, and a table
// has nothing to acknowledge.
func (s *Stream) Commit(context.Context, map[string]sources.Position) error { return nil }

// Shutdown closes the connections; it is safe to call twice and without
// Start.
func (s *Stream) Shutdown(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.r.close()
	s.started = false
	return nil
}
