package sidekiq

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twicehq/twice/collectors/jobpath"
	"github.com/twicehq/twice/twicetype"
)

// Position is where a reader of the middleware stream stands: the id of
// the last entry read and its number n. The zero Position is the start of
// the stream.
type Position struct {
	ID string
	N  int64
}

// String writes the position as "ID/N"; ParsePosition reads it back.
func (p Position) String() string {
	if p.ID == "" {
		return ""
	}
	return p.ID + "/" + strconv.FormatInt(p.N, 10)
}

// ParsePosition reads a position written by String; "" is the start.
func ParsePosition(s string) (Position, error) {
	if s == "" {
		return Position{}, nil
	}
	id, n, ok := strings.Cut(s, "/")
	if !ok || !validID(id) {
		return Position{}, fmt.Errorf("sidekiq: position %q: want STREAM-ID/N", s)
	}
	v, err := strconv.ParseInt(n, 10, 64)
	if err != nil || v < 0 {
		return Position{}, fmt.Errorf("sidekiq: position %q: N is not a count", s)
	}
	return Position{ID: id, N: v}, nil
}

// validID reports whether s is a stream entry id "ms-seq".
func validID(s string) bool {
	ms, seq, ok := strings.Cut(s, "-")
	_, e1 := strconv.ParseUint(ms, 10, 64)
	_, e2 := strconv.ParseUint(seq, 10, 64)
	return ok && e1 == nil && e2 == nil
}

// compareIDs orders two entry ids: -1, 0 or 1.
func compareIDs(a, b string) int {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	x, _ := strconv.ParseUint(am, 10, 64)
	y, _ := strconv.ParseUint(bm, 10, 64)
	if x == y {
		x, _ = strconv.ParseUint(as, 10, 64)
		y, _ = strconv.ParseUint(bs, 10, 64)
	}
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// idTime is the time of an entry id, in Unix ns.
func idTime(id string) int64 {
	ms, _, _ := strings.Cut(id, "-")
	v, _ := strconv.ParseInt(ms, 10, 64)
	return v * int64(time.Millisecond)
}

// StreamRecord is one entry of the middleware stream: an event, a
// malformed entry, or neither (an entry of a queue the source does not
// read). Pos is the position after it.
type StreamRecord struct {
	Pos       Position
	Event     *twicetype.Event
	Malformed *twicetype.Malformed
	// Lost is set on the first entry after a gap: entries the stream
	// lost before it.
	Lost *twicetype.Gap
}

// StreamReader is middleware mode: it reads the stream that
// integrations/sidekiq/twice_middleware.rb writes, from a position, and
// maps its entries to events. Entries carry a number n without holes, so
// a trim that took entries before twice read them shows as a gap: lost
// coverage, never a finding. It is not safe for concurrent use, except
// Stats and Gaps.
type StreamReader struct {
	name   string
	cfg    Config
	key    string
	seqKey string
	client *redis.Client
	m      *jobpath.Mapping
	b      *builder
	pos    Position

	mu    sync.Mutex
	stats StreamStats
	gaps  []twicetype.Gap
}

// StreamStats are the counters of a StreamReader since it was made.
type StreamStats struct {
	// Entries read, Events mapped from them, Malformed entries, and
	// Skipped entries of queues the source does not read.
	Entries, Events, Malformed, Skipped int64
	// Lost entries: trimmed from the stream before twice read them.
	Lost int64
	// Resets: times the numbering started again (its key was deleted).
	Resets int64
}

// NewStreamReader returns the reader of a sidekiq source in middleware
// mode. It does no I/O; cfg must be valid.
func NewStreamReader(name string, cfg Config) (*StreamReader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	if cfg.Mode != ModeMiddleware {
		return nil, fmt.Errorf("sidekiq %s: a stream reader for mode %s", name, cfg.Mode)
	}
	m, err := newMapping(cfg)
	if err != nil {
		return nil, fmt.Errorf("sidekiq %s: %w", name, err)
	}
	key := keys{cfg.Namespace}.of(cfg.Stream)
	return &StreamReader{name: name, cfg: cfg, key: key, seqKey: key + ":seq", m: m, b: newBuilder(name)}, nil
}

// Name names the source.
func (r *StreamReader) Name() string { return r.name }

// Start connects and sets where reading resumes: after from.
func (r *StreamReader) Start(ctx context.Context, from Position) error {
	r.mu.Lock()
	if r.client == nil {
		c, err := newClient(r.cfg)
		if err != nil {
			r.mu.Unlock()
			return err
		}
		r.client = c
	}
	c := r.client
	r.mu.Unlock()
	r.mu.Lock()
	r.pos = from
	r.mu.Unlock()
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("sidekiq %s: connect to %s: %w", r.name, redactURL(r.cfg.Redis), err)
	}
	return nil
}

// Position is where the reader stands.
func (r *StreamReader) Position() Position {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pos
}

// Read returns up to count entries after the reader's position, waiting
// up to wait for the first one (0: do not wait). The position advances
// past them.
func (r *StreamReader) Read(ctx context.Context, wait time.Duration, count int64) ([]StreamRecord, error) {
	c := r.conn()
	if c == nil {
		return nil, fmt.Errorf("sidekiq %s: Read before Start", r.name)
	}
	from := r.Position().ID
	if from == "" {
		from = "0-0"
	}
	args := &redis.XReadArgs{Streams: []string{r.key, from}, Count: count, Block: -1}
	if wait > 0 {
		args.Block = wait
	}
	res, err := c.XRead(ctx, args).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sidekiq %s: XREAD %s: %w", r.name, r.key, err)
	}
	var out []StreamRecord
	for _, s := range res {
		for _, msg := range s.Messages {
			out = append(out, r.take(msg.ID, msg.Values))
		}
	}
	return out, nil
}

// ReadRange returns up to count entries after the reader's position and
// at or before end, without waiting: for audits of what the stream holds.
func (r *StreamReader) ReadRange(ctx context.Context, end string, count int64) ([]StreamRecord, error) {
	start := "-"
	if id := r.Position().ID; id != "" {
		start = "(" + id
	}
	return r.readRange(ctx, start, end, count)
}

// readRange reads entries from start (an XRANGE bound) to end.
func (r *StreamReader) readRange(ctx context.Context, start, end string, count int64) ([]StreamRecord, error) {
	c := r.conn()
	if c == nil {
		return nil, fmt.Errorf("sidekiq %s: Read before Start", r.name)
	}
	msgs, err := c.XRangeN(ctx, r.key, start, end, count).Result()
	if err != nil {
		return nil, fmt.Errorf("sidekiq %s: XRANGE %s: %w", r.name, r.key, err)
	}
	out := make([]StreamRecord, 0, len(msgs))
	for _, msg := range msgs {
		out = append(out, r.take(msg.ID, msg.Values))
	}
	return out, nil
}

// LastID returns the id of the stream's last entry, "" when it is empty.
func (r *StreamReader) LastID(ctx context.Context) (string, error) {
	c := r.conn()
	if c == nil {
		return "", fmt.Errorf("sidekiq %s: LastID before Start", r.name)
	}
	msgs, err := c.XRevRangeN(ctx, r.key, "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("sidekiq %s: XREVRANGE %s: %w", r.name, r.key, err)
	}
	if len(msgs) == 0 {
		return "", nil
	}
	return msgs[0].ID, nil
}

// Lag is how many entries the middleware wrote that the reader has not
// read: the stream's numbering minus the reader's.
func (r *StreamReader) Lag(ctx context.Context) (int64, error) {
	c := r.conn()
	if c == nil {
		return 0, fmt.Errorf("sidekiq %s: Lag before Start", r.name)
	}
	n, err := c.Get(ctx, r.seqKey).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sidekiq %s: GET %s: %w", r.name, r.seqKey, err)
	}
	r.mu.Lock()
	read := r.pos.N
	r.mu.Unlock()
	return max(0, n-read), nil
}

// conn returns the client, nil before Start and after Shutdown.
func (r *StreamReader) conn() *redis.Client {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.client
}

// take maps one entry and advances the position past it.
func (r *StreamReader) take(id string, values map[string]any) StreamRecord {
	n, _ := strconv.ParseInt(field(values, "n"), 10, 64)
	var lost *twicetype.Gap
	r.mu.Lock()
	r.stats.Entries++
	switch {
	case n <= 0:
	case r.pos.N > 0 && n > r.pos.N+1:
		g := twicetype.Gap{Source: r.name, Lane: r.key, Reason: "stream trimmed", From: idTime(r.pos.ID), To: idTime(id), Count: n - r.pos.N - 1}
		r.stats.Lost += g.Count
		r.addGap(g)
		lost = &g
	case r.pos.N > 0 && n <= r.pos.N:
		r.stats.Resets++
	}
	if n > 0 {
		r.pos = Position{ID: id, N: n}
	} else {
		r.pos = Position{ID: id, N: r.pos.N}
	}
	rec := StreamRecord{Pos: r.pos, Lost: lost}
	r.mu.Unlock()
	ev, skip, err := r.event(id, values)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err != nil:
		r.stats.Malformed++
		rec.Malformed = &twicetype.Malformed{Source: r.name + " " + r.key, Line: n, Reason: "entry " + id + ": " + err.Error()}
	case skip:
		r.stats.Skipped++
	default:
		r.stats.Events++
		rec.Event = ev
	}
	return rec
}

func (r *StreamReader) addGap(g twicetype.Gap) {
	for i := range r.gaps {
		if r.gaps[i].Lane == g.Lane && r.gaps[i].Reason == g.Reason {
			r.gaps[i].Merge(g)
			return
		}
	}
	r.gaps = append(r.gaps, g)
}

func field(values map[string]any, name string) string {
	s, _ := values[name].(string)
	return s
}

// The middleware's event names.
var streamKinds = map[string]twicetype.Kind{
	"enqueued":  twicetype.JobEnqueued,
	"started":   twicetype.JobStarted,
	"succeeded": twicetype.JobSucceeded,
	"failed":    twicetype.JobFailed,
	"dead":      twicetype.JobDead,
	"discarded": twicetype.JobDiscarded,
}

// event maps one entry; skip is set for a queue the source does not read.
func (r *StreamReader) event(id string, values map[string]any) (ev *twicetype.Event, skip bool, err error) {
	if v := field(values, "v"); v != "1" {
		return nil, false, fmt.Errorf("version %q, want 1 (a newer middleware than this twice?)", v)
	}
	name := field(values, "e")
	kind, ok := streamKinds[name]
	if !ok {
		return nil, false, fmt.Errorf("unknown event %q", name)
	}
	raw := field(values, "job")
	if raw == "" {
		return nil, false, errors.New(`no "job" field`)
	}
	j, err := parseJob([]byte(raw), r.m)
	if err != nil {
		return nil, false, err
	}
	if !r.cfg.matchQueue(j.Queue) {
		return nil, true, nil
	}
	sp := spec{id: "sidekiq:" + j.JID + ":" + id, kind: kind, job: j, err: field(values, "error")}
	sp.ts = idTime(id)
	if s := field(values, "ts"); s != "" {
		us, err := strconv.ParseInt(s, 10, 64)
		if err != nil || us <= 0 || us > math.MaxInt64/1000 {
			return nil, false, fmt.Errorf("ts %q is not Unix microseconds", s)
		}
		sp.ts = us * int64(time.Microsecond)
	}
	if s := field(values, "attempt"); s != "" && kind != twicetype.JobEnqueued && kind != twicetype.JobDiscarded {
		a, err := strconv.ParseInt(s, 10, 64)
		if err != nil || a < 1 {
			return nil, false, fmt.Errorf("attempt %q is not a run number", s)
		}
		sp.attempt = a
	}
	if kind == twicetype.JobFailed {
		switch field(values, "retry") {
		case "1":
			sp.retry = 1
		case "0":
			sp.retry = -1
		default:
			return nil, false, fmt.Errorf("failed without retry 0 or 1")
		}
	}
	e, err := r.b.build(sp, r.key)
	if err != nil {
		return nil, false, err
	}
	return &e, false, nil
}

// Stats returns the counters; safe at any time.
func (r *StreamReader) Stats() StreamStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Gaps returns the coverage lost to trims since the reader was made.
func (r *StreamReader) Gaps() []twicetype.Gap {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]twicetype.Gap(nil), r.gaps...)
}

// Shutdown closes the connection; safe to call twice.
func (r *StreamReader) Shutdown(context.Context) error {
	r.mu.Lock()
	c := r.client
	r.client = nil
	r.mu.Unlock()
	if c == nil {
		return nil
	}
	err := c.Close()
	if err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("sidekiq %s: close: %w", r.name, err)
	}
	return nil
}
