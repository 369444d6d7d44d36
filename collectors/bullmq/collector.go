package bullmq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/internal/backoff"
)

// retryFor bounds how long an audit collector retries a Redis that does
// not answer before it gives up on the audit.
const retryFor = 30 * time.Second

// Collector reads one queue's events stream for `twice audit`: from its
// start (or Since) to its last entry as of Start, then io.EOF.
type Collector struct {
	source string
	cfg    Config
	queue  string
	since  time.Time
	batch  int64
	logf   func(format string, args ...any)

	client *redis.Client
	lane   *lane
	until  streamID
	done   bool
	closed bool
}

var _ collectors.Collector = (*Collector)(nil)

// CollectorOptions tune NewCollector.
type CollectorOptions struct {
	// Since, when not zero, starts at the first entry at or after it.
	Since time.Time
	// Batch is how many entries one read asks for (default DefaultBatch).
	Batch int
	// Logf logs what the collector could not see (job hashes removed
	// before they were read); nil for none.
	Logf func(format string, args ...any)
}

// NewCollector returns the collector of queue of the bullmq source named
// source. It does no I/O.
func NewCollector(source string, cfg Config, queue string, opts CollectorOptions) (*Collector, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Batch <= 1 {
		opts.Batch = DefaultBatch
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	return &Collector{source: source, cfg: cfg, queue: queue, since: opts.Since, batch: int64(opts.Batch), logf: opts.Logf}, nil
}

// Name is "SOURCE QUEUE".
func (c *Collector) Name() string { return c.source + " " + c.queue }

// Stats returns the counts of what the collector read.
func (c *Collector) Stats() QueueStats {
	if c.lane == nil {
		return QueueStats{}
	}
	return c.lane.q.stats.Snapshot()
}

// Start connects and notes the stream's last entry: the audit ends there.
func (c *Collector) Start(ctx context.Context) error {
	if c.client != nil {
		return nil
	}
	m, err := newMapping(&c.cfg)
	if err != nil {
		return err
	}
	cl, err := newClient(c.cfg.Redis)
	if err != nil {
		return err
	}
	c.client = cl
	q := newQueue(c.source, c.cfg.Prefix, c.queue, m, c.logf)
	c.lane = &lane{q: q, pos: position{through: -1}}
	if !c.since.IsZero() {
		ms := c.since.UnixMilli()
		c.lane.pos.id = streamID{ms: uint64(max(ms-1, 0)), seq: math.MaxUint64}
		c.lane.since = true
	}
	var info *redis.XInfoStream
	err = c.retry(ctx, func() error {
		var err error
		info, err = cl.XInfoStream(ctx, q.streamKey()).Result()
		if noSuchKey(err) {
			info, err = nil, nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("queue %s: %w", c.queue, err)
	}
	if info == nil || info.LastGeneratedID == "" {
		c.done = true // no stream: nothing to audit
		return nil
	}
	if c.until, err = parseStreamID(info.LastGeneratedID); err != nil {
		return err
	}
	if !c.lane.pos.id.less(c.until) {
		c.done = true
	}
	return nil
}

// Next returns the events of the next read, io.EOF after the stream's
// last entry as of Start.
func (c *Collector) Next(ctx context.Context) (*collectors.Batch, error) {
	if c.client == nil {
		return nil, errors.New("bullmq collector: Next before Start")
	}
	if c.done {
		c.report()
		return nil, io.EOF
	}
	var st *laneStep
	err := c.retry(ctx, func() error {
		var err error
		st, err = c.lane.step(ctx, c.client, c.batch, c.until)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", c.queue, err)
	}
	b := &collectors.Batch{}
	if st.gap != nil {
		b.Lost = append(b.Lost, *st.gap)
	}
	for _, o := range st.outs {
		switch {
		case o.event != nil:
			b.Events = append(b.Events, *o.event)
		case o.malformed != nil:
			b.Malformed = append(b.Malformed, *o.malformed)
		}
	}
	if !st.more || !c.lane.pos.id.less(c.until) {
		c.done = true
	}
	return b, nil
}

// report logs, once at the end, what the audit could not see whole.
func (c *Collector) report() {
	if c.lane == nil || c.closed {
		return
	}
	c.closed = true
	s := c.Stats()
	if s.HashMissing > 0 {
		c.logf("source %s queue %s: %d job(s) were removed from Redis (removeOnComplete, removeOnFail) before twice read them: their events carry no key, entity or attrs, and no job_type unless \"added\" named it", c.source, c.queue, s.HashMissing)
	}
	if s.PayloadErrors > 0 {
		c.logf("source %s queue %s: %d job(s) had data or opts that are not JSON: their key, entity and attrs are left out", c.source, c.queue, s.PayloadErrors)
	}
}

// retry runs f until it succeeds, with backoff and jitter, for up to
// retryFor: a Redis restarting is waited for.
func (c *Collector) retry(ctx context.Context, f func() error) error {
	b := backoff.New(100*time.Millisecond, 5*time.Second)
	deadline := time.Now().Add(retryFor)
	for {
		err := f()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		c.logf("source %s queue %s: %v (retrying)", c.source, c.queue, err)
		if werr := b.Wait(ctx); werr != nil {
			return err
		}
	}
}

// Shutdown closes the connection. It is safe to call twice.
func (c *Collector) Shutdown(context.Context) error {
	if c.client == nil {
		return nil
	}
	err := c.client.Close()
	c.client = nil
	c.done = true
	return err
}
