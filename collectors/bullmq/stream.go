package bullmq

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/twicehq/twice/collectors/jobpath"
	"github.com/twicehq/twice/sources"
)

// rescanEvery is how often a stream whose queues are globs looks for new
// queues.
const rescanEvery = 30 * time.Second

// maxPollRecords bounds the records of one Poll, so that a long backlog
// is checkpointed as it is read.
const maxPollRecords = 20_000

// readInterval is the least time between two reads of the queues when
// they have caught up: entries that trickle in are read in batches of
// this period instead of one by one, which bounds what twice costs Redis
// (about 20 reads a second a source, whatever the job rate) at the price
// of as much detection latency.
const readInterval = 50 * time.Millisecond

// Stream lets `twice watch` follow a bullmq source (sources.Stream). Its
// lanes are the queues; a record's position is the stream entry id it
// was read at, with the count of entries the stream ever held up to it
// ("1700000000000-3/1234", see position), so that a restart resumes
// after it and knows what was trimmed meanwhile. Nothing is acknowledged
// upstream: the events stream is BullMQ's, read without consumer groups.
type Stream struct {
	name  string
	cfg   Config
	batch int64
	logf  func(format string, args ...any)
	now   func() time.Time
	// rescanEvery is how often queues are looked for (rescanEvery).
	rescanEvery time.Duration

	// mu is held by Start, Poll (also while it waits for entries) and
	// Shutdown.
	mu      sync.Mutex
	client  *redis.Client
	m       *jobpath.Mapping
	lanes   map[string]*lane
	resume  map[string]sources.Position
	scanned time.Time
	// lastRead is when the queues were last read (readInterval).
	lastRead time.Time
	// idle: the last Poll waited for entries and none came.
	idle bool
	// commands counts the Redis commands sent, over every connection.
	commands commandCounter

	// smu guards what other goroutines read while Poll runs.
	smu    sync.Mutex
	health error
	lag    map[string]int64
	stats  map[string]*Stats
}

var (
	_ sources.Stream         = (*Stream)(nil)
	_ sources.LagReporter    = (*Stream)(nil)
	_ sources.HealthReporter = (*Stream)(nil)
	_ sources.Ordered        = (*Stream)(nil)
)

// StreamOptions tune NewStream.
type StreamOptions struct {
	// Batch is how many entries one read of a queue asks for (default
	// DefaultBatch).
	Batch int
	// Logf logs diagnostics; nil for none.
	Logf func(format string, args ...any)
	// Now is the wall clock; nil for time.Now.
	Now func() time.Time
}

// NewStream returns the stream of the bullmq source named name. It does
// no I/O.
func NewStream(name string, cfg Config, opts StreamOptions) (*Stream, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMapping(&cfg)
	if err != nil {
		return nil, err
	}
	if opts.Batch <= 1 {
		opts.Batch = DefaultBatch
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Stream{name: name, cfg: cfg, batch: int64(opts.Batch), logf: opts.Logf, now: opts.Now, m: m, lanes: map[string]*lane{}, rescanEvery: rescanEvery}, nil
}

// Name returns the source's name.
func (s *Stream) Name() string { return s.name }

// Replayable is true: a queue's events stream is read again from any
// entry it still holds.
func (s *Stream) Replayable() bool { return true }

// Start connects, finds the queues and resumes each after its position
// in resume; a queue without one starts at its stream's first entry.
func (s *Stream) Start(ctx context.Context, resume map[string]sources.Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil {
		s.client.Close()
		s.client = nil
	}
	cl, err := newClient(s.cfg.Redis)
	if err != nil {
		return err
	}
	cl.AddHook(&s.commands)
	if err := cl.Ping(ctx).Err(); err != nil {
		cl.Close()
		return fmt.Errorf("redis %s: %w", redactURL(s.cfg.Redis), err)
	}
	s.client = cl
	s.resume = maps.Clone(resume)
	for q, p := range resume {
		if _, err := parsePosition(string(p)); err != nil {
			return fmt.Errorf("queue %s: %w", q, err)
		}
	}
	if err := s.rescan(ctx); err != nil {
		return err
	}
	s.publish(nil)
	return nil
}

// rescan adds the lanes of queues found since the last scan. s.mu is held.
func (s *Stream) rescan(ctx context.Context) error {
	queues, err := discoverQueues(ctx, s.client, &s.cfg)
	if err != nil {
		return err
	}
	s.scanned = s.now()
	// A queue with a position is read even when SCAN misses it.
	for q := range s.resume {
		if s.cfg.matchQueue(q) && !slices.Contains(queues, q) {
			queues = append(queues, q)
		}
	}
	for _, q := range queues {
		if _, ok := s.lanes[q]; ok {
			continue
		}
		l := &lane{q: newQueue(s.name, s.cfg.Prefix, q, s.m, s.logf), pos: position{through: -1}}
		if p, ok := s.resume[q]; ok {
			l.pos, _ = parsePosition(string(p))
		}
		s.lanes[q] = l
	}
	return nil
}

// Lanes returns the queues read, sorted.
func (s *Stream) Lanes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.lanes))
}

// Poll reads what the queues' streams hold after the lanes' positions;
// when they hold nothing it waits (XREAD BLOCK) up to wait for an entry.
func (s *Stream) Poll(ctx context.Context, wait time.Duration) ([]sources.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		return nil, fmt.Errorf("bullmq stream %s: Poll before Start", s.name)
	}
	recs, err := s.poll(ctx, wait)
	s.publish(err)
	if len(recs) > 0 {
		// The lanes moved past these: they must be taken. The error, if
		// any, comes again at the next Poll.
		return recs, nil
	}
	return nil, err
}

// publish records the health, lags and counters of the lanes for the
// readers of other goroutines. s.mu is held.
func (s *Stream) publish(err error) {
	lag := map[string]int64{}
	stats := map[string]*Stats{}
	for q, l := range s.lanes {
		if n, ok := l.lag(); ok {
			lag[q] = n
		}
		stats[q] = l.q.stats
	}
	s.smu.Lock()
	defer s.smu.Unlock()
	s.health, s.lag, s.stats = err, lag, stats
}

func (s *Stream) poll(ctx context.Context, wait time.Duration) ([]sources.Record, error) {
	if s.cfg.literalQueues() == nil && s.now().Sub(s.scanned) >= s.rescanEvery {
		if err := s.rescan(ctx); err != nil {
			return nil, err
		}
	}
	names := slices.Sorted(maps.Keys(s.lanes))
	if s.idle && wait > 0 {
		// The last Poll read nothing and waited in vain: wait first, so
		// that an idle source costs Redis one XREAD a Poll.
		ok, err := s.waitEntries(ctx, names, wait)
		if err != nil || !ok {
			return nil, err
		}
		if err := sleep(ctx, readInterval); err != nil {
			return nil, err
		}
	} else if d := s.lastRead.Add(readInterval).Sub(s.now()); d > 0 {
		if err := sleep(ctx, min(d, max(wait, 0))); err != nil {
			return nil, err
		}
	}
	s.idle = false
	s.lastRead = s.now()
	var recs []sources.Record
	waited := false
	for {
		more := false
		for _, q := range names {
			st, err := s.lanes[q].step(ctx, s.client, s.batch, streamID{})
			if err != nil {
				return recs, fmt.Errorf("queue %s: %w", q, err)
			}
			recs = appendRecords(recs, q, st)
			more = more || st.more
		}
		if len(recs) > 0 && (!more || len(recs) >= maxPollRecords) {
			return recs, nil
		}
		if more {
			continue
		}
		if waited || wait <= 0 {
			return recs, nil
		}
		ok, err := s.waitEntries(ctx, names, wait)
		if err != nil {
			return recs, err
		}
		if !ok {
			s.idle = true
			return recs, nil
		}
		waited = true
		// Let what follows the first entry arrive, and read it in one go.
		if err := sleep(ctx, readInterval); err != nil {
			return nil, err
		}
		s.lastRead = s.now()
	}
}

// waitEntries blocks up to wait until a queue has an entry after its
// lane's position.
func (s *Stream) waitEntries(ctx context.Context, names []string, wait time.Duration) (bool, error) {
	keys := make([]string, len(names))
	after := make([]streamID, len(names))
	for i, q := range names {
		keys[i], after[i] = s.lanes[q].q.streamKey(), s.lanes[q].pos.id
	}
	return waitEntries(ctx, s.client, keys, after, wait)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// appendRecords turns a lane's step into records: the gap first, then an
// event or malformed record per entry that is one. Entries that map to
// nothing (drained, progress, ...) make no record: a record without a
// time would keep the lane from going idle while such entries flow (a
// long job's progress), holding the watch's watermark back. After a
// restart they are read again, and map to nothing again.
func appendRecords(recs []sources.Record, q string, st *laneStep) []sources.Record {
	if st.gap != nil {
		g := *st.gap
		recs = append(recs, sources.Record{Lane: q, Position: sources.Position(st.gapPos.String()), Lost: &g})
	}
	for i, o := range st.outs {
		pos := sources.Position(st.positions[i].String())
		switch {
		case o.event != nil:
			recs = append(recs, sources.Record{Lane: q, Position: pos, Event: o.event})
		case o.malformed != nil:
			recs = append(recs, sources.Record{Lane: q, Position: pos, Malformed: o.malformed})
		}
	}
	return recs
}

// Commit does nothing: BullMQ's events stream is read without a consumer
// group, and the positions live in twice's checkpoint.
func (s *Stream) Commit(context.Context, map[string]sources.Position) error { return nil }

// Lag returns, per queue, the entries its stream holds after the lane's
// position, as of the last read (queues whose count is unknown, before
// Redis 7.0, are left out).
func (s *Stream) Lag(context.Context) (map[string]int64, error) {
	s.smu.Lock()
	defer s.smu.Unlock()
	return maps.Clone(s.lag), nil
}

// Health returns the error of the last Poll, nil after one that worked.
func (s *Stream) Health() error {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.health
}

// Before reports whether position a comes before b.
func (s *Stream) Before(_ string, a, b sources.Position) bool {
	pa, errA := parsePosition(string(a))
	pb, errB := parsePosition(string(b))
	return errA == nil && errB == nil && pa.id.less(pb.id)
}

// Stats returns the counts of every queue read, by queue.
func (s *Stream) Stats() map[string]QueueStats {
	s.smu.Lock()
	defer s.smu.Unlock()
	out := make(map[string]QueueStats, len(s.stats))
	for q, st := range s.stats {
		out[q] = st.Snapshot()
	}
	return out
}

// Commands returns how many Redis commands the stream has sent.
func (s *Stream) Commands() int64 { return s.commands.n.Load() }

// Shutdown closes the connection, and logs what the stream read and what
// it cost Redis. It is safe to call twice.
func (s *Stream) Shutdown(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		return nil
	}
	var sum QueueStats
	for _, l := range s.lanes {
		st := l.q.stats.Snapshot()
		sum.Entries += st.Entries
		sum.Events += st.Events
		sum.HashMissing += st.HashMissing
		sum.Lost += st.Lost
	}
	s.logf("source %s: read %d stream entries of %d queue(s) (%d events) with %d Redis commands; %d job(s) removed before their hash was read, %d entries trimmed before they were read",
		s.name, sum.Entries, len(s.lanes), sum.Events, s.commands.n.Load(), sum.HashMissing, sum.Lost)
	err := s.client.Close()
	s.client = nil
	return err
}
