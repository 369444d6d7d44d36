package push

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twicehq/twice/sources"
)

// DefaultMaxPending is Options.MaxPending's default: records received and
// not yet durable.
const DefaultMaxPending = 10_000

// DefaultLane is the name of a Stream's one lane when Options.Lane is "".
const DefaultLane = "push"

// Errors of Submit. Each is a failure the client may retry: the tap
// answers it with a retryable status (HTTP 503, SMTP 421/451), except
// ErrTooLarge (HTTP 413, SMTP 552), which a retry of the same request
// cannot cure.
var (
	// ErrFull: MaxPending records are waiting to be durable already.
	ErrFull = errors.New("too many records waiting to be recorded; retry later")
	// ErrClosed: the stream is not started, or shutting down.
	ErrClosed = errors.New("twice is not accepting records now (starting or shutting down); retry later")
	// ErrTooLarge: one Submit of more records than MaxPending.
	ErrTooLarge = errors.New("more records in one request than twice holds at once")
)

// Receiver is the server of a push tap: it listens, and hands what its
// clients send to the Stream's Submit.
type Receiver interface {
	// Start binds and begins serving in the background; it returns once
	// the server listens (an error when it cannot bind, and Start is
	// called again later). It is called at most once after it succeeded.
	Start(ctx context.Context, s *Stream) error
	// Shutdown stops serving and waits for the handlers to return, within
	// ctx. The Stream has failed every waiting Submit before it is
	// called. It is called only after Start succeeded, at most once.
	Shutdown(ctx context.Context) error
}

// Options tune a Stream.
type Options struct {
	// Lane names the stream's one lane; "" means DefaultLane.
	Lane string
	// MaxPending caps the records received and not yet durable; 0 means
	// DefaultMaxPending.
	MaxPending int
	// Logf logs diagnostics; nil for none.
	Logf func(format string, args ...any)
}

// Stream is a push source as `twice watch` reads it (sources.Stream):
// Submit puts records in its one lane and returns once the sidecar has
// committed them. Safe for concurrent use.
type Stream struct {
	name string
	lane string
	max  int64
	rcv  Receiver
	logf func(string, ...any)

	mu        sync.Mutex
	started   bool
	closed    bool
	next      int64 // the position of the last record received
	committed int64 // the last position the sidecar committed
	queue     []sources.Record
	waiters   []*waiter // in order of last
	arrived   chan struct{}
	done      chan struct{}

	submitted, durable atomic.Int64
	results            sync.Map // result string → *atomic.Int64
}

type waiter struct {
	last int64
	ch   chan struct{}
	err  error
}

var (
	_ sources.Stream = (*Stream)(nil)
	_ sources.Waited = (*Stream)(nil) // the watch checkpoints at every flush while clients wait
)

// NewStream returns the stream of the push source named name, served by
// rcv. It does no I/O.
func NewStream(name string, rcv Receiver, opts Options) *Stream {
	if opts.Lane == "" {
		opts.Lane = DefaultLane
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	return &Stream{
		name: name, lane: opts.Lane, max: int64(opts.MaxPending), rcv: rcv, logf: opts.Logf,
		arrived: make(chan struct{}, 1), done: make(chan struct{}),
	}
}

// Name returns the source's name.
func (s *Stream) Name() string { return s.name }

// Lane returns the name of the stream's one lane.
func (s *Stream) Lane() string { return s.lane }

// Replayable is false: what a client pushed cannot be read again. What
// was not committed is sent again by its client, which got no success
// answer.
func (s *Stream) Replayable() bool { return false }

// Start goes on with the sequence of positions after the lane's resume
// position and starts the Receiver. It is safe to call twice; after
// Shutdown it fails.
func (s *Stream) Start(ctx context.Context, resume map[string]sources.Position) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("source %s: shut down", s.name)
	}
	if s.started {
		s.mu.Unlock()
		return nil
	}
	var base int64
	if p, ok := resume[s.lane]; ok {
		n, err := p.Int()
		if err != nil || n < 0 {
			s.mu.Unlock()
			return fmt.Errorf("source %s: resume position %q of lane %s is not a record sequence number", s.name, string(p), s.lane)
		}
		base = n
	}
	s.next, s.committed = base, base
	s.mu.Unlock()
	// Not under mu: the receiver may call the stream. Until started is
	// set, a Submit from a handler fails with ErrClosed (retryable).
	if err := s.rcv.Start(ctx, s); err != nil {
		return fmt.Errorf("source %s: %w", s.name, err)
	}
	s.mu.Lock()
	if s.closed {
		// Shut down while the receiver started: it is ours to stop.
		s.mu.Unlock()
		_ = s.rcv.Shutdown(ctx)
		return fmt.Errorf("source %s: shut down", s.name)
	}
	s.started = true
	s.mu.Unlock()
	return nil
}

// Lanes returns nothing: the lane joins the watch with its first record,
// so a push source nobody sends to never holds the others back.
func (s *Stream) Lanes() []string { return nil }

// Submit puts recs in the lane (their Lane and Position are set here) and
// returns nil once the sidecar has committed them all: only then may the
// client be told they are recorded. It fails at once with ErrClosed,
// ErrFull or ErrTooLarge, taking none of them; later with ErrClosed
// when the stream shuts down first, or ctx.Err() when ctx ends first
// (the records may still be recorded: a client that retries sends
// the same ids). An empty recs returns nil.
func (s *Stream) Submit(ctx context.Context, recs []sources.Record) error {
	if len(recs) == 0 {
		return nil
	}
	n := int64(len(recs))
	s.mu.Lock()
	switch {
	case s.closed || !s.started:
		s.mu.Unlock()
		return ErrClosed
	case n > s.max:
		s.mu.Unlock()
		return ErrTooLarge
	case s.next-s.committed+n > s.max:
		s.mu.Unlock()
		return ErrFull
	}
	for i := range recs {
		s.next++
		recs[i].Lane = s.lane
		recs[i].Position = sources.IntPosition(s.next)
	}
	s.queue = append(s.queue, recs...)
	w := &waiter{last: s.next, ch: make(chan struct{})}
	s.waiters = append(s.waiters, w)
	s.mu.Unlock()
	s.submitted.Add(n)
	select {
	case s.arrived <- struct{}{}:
	default:
	}
	select {
	case <-w.ch:
		return w.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Check returns the error a Submit of n records would fail with at once
// (ErrClosed, ErrTooLarge, ErrFull), nil when they would be taken now. A
// tap that must act before it submits (a relay that forwards first)
// checks so that it does not act on what it then could not record.
func (s *Stream) Check(n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed || !s.started:
		return ErrClosed
	case int64(n) > s.max:
		return ErrTooLarge
	case s.next-s.committed+int64(n) > s.max:
		return ErrFull
	}
	return nil
}

// Poll returns the records submitted since the last Poll, waiting up to
// wait for the first.
func (s *Stream) Poll(ctx context.Context, wait time.Duration) ([]sources.Record, error) {
	if recs := s.take(); recs != nil {
		return recs, nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-s.arrived:
	case <-t.C:
	case <-ctx.Done():
	case <-s.done:
	}
	return s.take(), nil
}

func (s *Stream) take() []sources.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return nil
	}
	recs := s.queue
	s.queue = nil
	return recs
}

// Commit answers the clients whose records the checkpoint covers: their
// Submit returns nil.
func (s *Stream) Commit(_ context.Context, done map[string]sources.Position) error {
	p, ok := done[s.lane]
	if !ok {
		return nil
	}
	n, err := p.Int()
	if err != nil {
		return fmt.Errorf("source %s: commit: %w", s.name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= s.committed {
		return nil
	}
	if n > s.next {
		// Never given out: a position of an earlier run the checkpoint
		// holds and Start was not told of. Nothing waits for it.
		n = s.next
	}
	s.durable.Add(n - s.committed)
	s.committed = n
	i := 0
	for ; i < len(s.waiters) && s.waiters[i].last <= n; i++ {
		close(s.waiters[i].ch)
		s.waiters[i] = nil
	}
	s.waiters = s.waiters[i:]
	return nil
}

// Shutdown answers every client still waiting with ErrClosed and stops
// the Receiver. Safe to call twice, and without Start.
func (s *Stream) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	for _, w := range s.waiters {
		w.err = ErrClosed
		close(w.ch)
	}
	s.waiters, s.queue = nil, nil
	started := s.started
	s.mu.Unlock()
	if !started {
		return nil
	}
	if err := s.rcv.Shutdown(ctx); err != nil {
		return fmt.Errorf("source %s: shutdown: %w", s.name, err)
	}
	return nil
}

// Health returns nil once started; before, ErrClosed (the receiver does
// not listen yet).
func (s *Stream) Health() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.closed {
		return ErrClosed
	}
	return nil
}

// Pending returns how many records were received and are not yet
// durable.
func (s *Stream) Pending() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next - s.committed
}

// Count adds one to the count of requests that ended in result (a short
// stable word: "accepted", "unauthorized", "full", "invalid"…), shown in
// Stats and in twice_push_requests_total{source,result}.
func (s *Stream) Count(result string) {
	c, ok := s.results.Load(result)
	if !ok {
		c, _ = s.results.LoadOrStore(result, new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(1)
}

// Stats are the counts of a Stream.
type Stats struct {
	// Submitted is the records handed to Submit and taken; Durable those
	// committed since Start; Pending those taken and not yet committed.
	Submitted, Durable, Pending int64
	// Requests counts requests by result (Count).
	Requests map[string]int64
}

// Stats returns the stream's counts.
func (s *Stream) Stats() Stats {
	st := Stats{Submitted: s.submitted.Load(), Durable: s.durable.Load(), Pending: s.Pending(), Requests: map[string]int64{}}
	s.results.Range(func(k, v any) bool {
		st.Requests[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return st
}
