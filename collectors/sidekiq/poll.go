package sidekiq

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/twicetype"
)

// deadAfter is how long a Sidekiq process may go without a heartbeat
// (Sidekiq beats every 5 s and drops a process after 60 s) before poll
// mode counts it as dead, and the jobs it was running as lost with it.
const deadAfter = 30 * time.Second

// Poller is poll mode: it reads Sidekiq's Redis structures, one
// consistent snapshot per Poll, and returns the events the changes
// since the previous snapshot imply. Construct it with NewPoller; it is
// not safe for concurrent use, except Stats and Coverage.
type Poller struct {
	name   string
	cfg    Config
	keys   keys
	client *redis.Client

	tracker *tracker
	builder *builder

	mu        sync.Mutex
	stats     trackerStats
	last      time.Time // when the last snapshot was read
	missed    int64     // runs reported missed
	following int       // jobs followed after the last snapshot
}

// NewPoller returns the poller of a sidekiq source named name. It does no
// I/O; cfg must be valid.
func NewPoller(name string, cfg Config) (*Poller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	if cfg.Mode != ModePoll {
		return nil, fmt.Errorf("sidekiq %s: a poller for mode %s", name, cfg.Mode)
	}
	m, err := newMapping(cfg)
	if err != nil {
		return nil, fmt.Errorf("sidekiq %s: %w", name, err)
	}
	t := newTracker(m, int64(deadAfter))
	if len(cfg.Queues) > 0 {
		t.match = cfg.matchQueue
	}
	return &Poller{
		name: name, cfg: cfg, keys: keys{cfg.Namespace},
		tracker: t,
		builder: newBuilder(name),
	}, nil
}

// Name names the source.
func (p *Poller) Name() string { return p.name }

// Start connects to Redis and checks that it answers.
func (p *Poller) Start(ctx context.Context) error {
	p.mu.Lock()
	if p.client == nil {
		c, err := newClient(p.cfg)
		if err != nil {
			p.mu.Unlock()
			return err
		}
		p.client = c
	}
	c := p.client
	p.mu.Unlock()
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("sidekiq %s: connect to %s: %w", p.name, redactURL(p.cfg.Redis), err)
	}
	return nil
}

// Poll reads one snapshot and returns the events it implies, sorted by
// time, and the payloads first found malformed in it.
func (p *Poller) Poll(ctx context.Context) (*collectors.Batch, error) {
	p.mu.Lock()
	c := p.client
	p.mu.Unlock()
	if c == nil {
		return nil, fmt.Errorf("sidekiq %s: Poll before Start", p.name)
	}
	s, err := readSnapshot(ctx, c, p.cfg, p.keys, p.tracker.cursor)
	if err != nil {
		return nil, fmt.Errorf("sidekiq %s: %w", p.name, err)
	}
	return p.take(s)
}

// take runs one snapshot through the tracker.
func (p *Poller) take(s *snapshot) (*collectors.Batch, error) {
	ems, bad := p.tracker.observe(s)
	b := &collectors.Batch{Events: make([]twicetype.Event, 0, len(ems))}
	for _, e := range ems {
		ev, err := p.builder.build(e.spec, e.lane)
		if err != nil {
			b.Malformed = append(b.Malformed, twicetype.Malformed{Source: p.name + " " + e.lane, Reason: err.Error()})
			continue
		}
		b.Events = append(b.Events, ev)
	}
	for _, x := range bad {
		b.Malformed = append(b.Malformed, twicetype.Malformed{Source: p.name + " " + x.lane, Line: x.at, Reason: x.reason})
	}
	if n := p.tracker.missedNow; n > 0 {
		b.Lost = append(b.Lost, twicetype.Gap{Source: p.name, Lane: missedLane, Reason: missedReason, Count: n, To: s.Now})
	}
	p.mu.Lock()
	p.stats = p.tracker.stats
	p.stats.Events = make(map[string]int64, len(p.tracker.stats.Events))
	for k, v := range p.tracker.stats.Events {
		p.stats.Events[k] = v
	}
	p.last = time.Unix(0, s.Now)
	p.missed = p.tracker.missedReported
	p.following = len(p.tracker.jobs)
	p.mu.Unlock()
	return b, nil
}

// PollStats are poll mode's counters since Start.
type PollStats struct {
	// Snapshots read.
	Snapshots int64
	// Events emitted, by kind.
	Events map[string]int64
	// Inferred successes: Certain while no failure went unexplained,
	// Likely otherwise.
	SucceededCertain, SucceededLikely int64
	// Unknown: runs that ended without a trace, whose outcome polling
	// could not tell.
	Unknown int64
	// LostWithProcess: runs that were in the work hash of a process that
	// died (SIGKILL, OOM): Sidekiq's basic fetch loses them.
	LostWithProcess int64
	// Processed and Failed: stat:processed and stat:failed since Start.
	Processed, Failed int64
	// RunsSeenEnding: runs whose end polling saw.
	RunsSeenEnding int64
	// Malformed: payloads that are not Sidekiq jobs.
	Malformed int64
	// Following: jobs waiting, running or in retry that the poller
	// follows now, whose end it has yet to judge.
	Following int
}

// Stats returns the counters. It is safe to call at any time.
func (p *Poller) Stats() PollStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	return PollStats{
		Snapshots: s.Snapshots, Events: s.Events,
		SucceededCertain: s.SucceededCertain, SucceededLikely: s.SucceededLikely,
		Unknown: s.Unknown, LostWithProcess: s.LostWithProcess,
		Processed: s.ProcessedDelta, Failed: s.FailedDelta,
		RunsSeenEnding: s.RunsSeenEnding, Malformed: s.Malformed, Following: p.following,
	}
}

// What poll mode reports as lost coverage: runs that Sidekiq counted in
// stat:processed whose end no poll saw (they went through a queue and a
// worker between two polls and two heartbeats). It is a fact about the
// input, never a finding.
const (
	missedLane   = "all queues"
	missedReason = "runs between two polls"
)

// Coverage returns the runs missed so far, as one gap (nil for none).
// stat:processed is flushed at each process's heartbeat, so the count is
// taken 20 s late, and errs low rather than high.
func (p *Poller) Coverage() []twicetype.Gap {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.missed <= 0 {
		return nil
	}
	return []twicetype.Gap{{Source: p.name, Lane: missedLane, Reason: missedReason, Count: p.missed}}
}

// Shutdown closes the connection. It is safe to call twice.
func (p *Poller) Shutdown(context.Context) error {
	p.mu.Lock()
	c := p.client
	p.client = nil
	p.mu.Unlock()
	if c == nil {
		return nil
	}
	err := c.Close()
	if err != nil && err != redis.ErrClosed {
		return fmt.Errorf("sidekiq %s: close: %w", p.name, err)
	}
	return nil
}
