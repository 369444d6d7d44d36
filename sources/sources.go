// Package sources is the model every tap of twice plugs into: a file, a
// Kafka topic, a Redis queue, a Postgres table, an HTTP endpoint. A tap is
// one package with a Factory; the Factory is registered once, by type, in
// a Registry (sources/builtin holds the registration lines), and from then
// on twice.yaml can name the type:
//
//   - config parsing hands a source's YAML mapping to the Factory
//     (DecodeConfig), which checks every key with exact file:line errors;
//   - `twice watch` asks the Factory for a Stream (NewStream) and runs it
//     in the sidecar's crash-safe loop: records carry opaque positions,
//     the positions go into the checkpoint, and the stream is told what is
//     durable (Commit) only after the checkpoint that covers it;
//   - `twice audit` asks a Factory whose source keeps history
//     (HistoryFactory) for collectors that read it from its start, or
//     --since, up to now, then io.EOF.
//
// A source says whether it can read a position again (Replayable), may
// report its lag and health, and reports coverage it knows it lost (a
// trimmed stream, a stop longer than the retention) as a Gap, which the
// sidecar counts (twice_coverage_lost_total) and reports carry as a
// warning. docs/architecture.md explains the model and how to add a tap.
package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/twicetype"
)

// Factory builds the sources of one type. It is stateless: one value
// serves every source of its type.
type Factory interface {
	// Type is the value of `type:` in twice.yaml that selects this
	// factory, such as "kafka" or "bullmq".
	Type() string
	// DecodeConfig reads one source's YAML mapping (every key but name
	// and type) through m, whose helpers check types and record errors
	// at the key's file:line; it records an error for every key it does
	// not know (m.Known) and for every missing or invalid value. It
	// returns the settings decoded so far (nil when nothing usable); the
	// config is used only when no error was recorded.
	DecodeConfig(m *config.SourceMapping) config.SourceSettings
	// NewStream returns the stream `twice watch` reads from src: its
	// Settings are what DecodeConfig returned (or settings built in code
	// that pass Validate; file and kafka sources have theirs in
	// src.Paths and src.Kafka). It does no I/O: the stream connects in
	// Start.
	NewStream(src config.Source, opts StreamOptions) (Stream, error)
}

// HistoryFactory is a Factory whose source keeps history (a Kafka topic, a
// Redis stream, a table), so `twice audit` can read it. A Factory without
// it can only be watched.
type HistoryFactory interface {
	Factory
	// NewCollectors returns the collectors that read src from its start
	// (or opts.Since) up to what it holds now, then io.EOF: one per part
	// read in order (a partition, a queue), merged by ts by the engine. It
	// may look the source up (which parts it has) under ctx; reading
	// happens in the collectors.
	NewCollectors(ctx context.Context, src config.Source, opts CollectOptions) ([]collectors.Collector, error)
}

// StreamOptions is what the sidecar gives every stream it builds.
type StreamOptions struct {
	// DeadLetterMaxBytes caps a source's dead-letter file
	// (watch.dead_letter_max_bytes).
	DeadLetterMaxBytes int64
	// Logf logs diagnostics; never nil when built by the Registry.
	Logf func(format string, args ...any)
	// Now is the wall clock; never nil when built by the Registry.
	Now func() time.Time
}

// CollectOptions is what `twice audit` gives the collectors of a source.
type CollectOptions struct {
	// Since, when not zero, is where reading starts: the first record at
	// or after it.
	Since time.Time
	// Stdin is what the path "-" of a file source reads.
	Stdin io.Reader
	// DeadLetterMaxBytes caps a source's dead-letter file.
	DeadLetterMaxBytes int64
	// Logf logs diagnostics; never nil when built by the Registry.
	Logf func(format string, args ...any)
	// Coverage, when set, gathers the gaps the collectors report.
	Coverage *Coverage
}

// Position is where a lane of a stream is: opaque to the sidecar, which
// stores it in the checkpoint and hands it back to the stream, and never
// interprets it. Each tap chooses its shape and documents it: a Kafka
// offset ("1234"), a Redis stream id ("1700000000000-3"), a Postgres
// cursor, a byte offset in a file. It must be printable text (it is
// written in the checkpoint as a JSON string and shown in logs).
type Position string

// IntPosition is the Position of an integer (an offset).
func IntPosition(n int64) Position { return Position(strconv.FormatInt(n, 10)) }

// Int reads back a Position written by IntPosition.
func (p Position) Int() (int64, error) {
	n, err := strconv.ParseInt(string(p), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("position %q is not an integer offset", string(p))
	}
	return n, nil
}

// Record is one thing a stream read: an event, a message that is not an
// event (Malformed), or coverage the stream knows it lost (Lost). At most
// one of the three is set; a record with none only moves its lane's
// position (a file tail that switched to the file that replaced a
// rotated one).
type Record struct {
	// Lane is the ordered part of the stream the record came from, named
	// within the stream: a topic partition "orders/3", a queue "emails".
	// The sidecar prefixes it with the stream's name in the checkpoint.
	Lane string
	// Position is where the lane resumes to read what comes after this
	// record: after a restart the stream is started at the position of
	// the last record the checkpoint covers, and must deliver the records
	// after it, not the record itself.
	Position Position
	// Event is the normalized event.
	Event *twicetype.Event
	// Malformed says why a message is not an event.
	Malformed *twicetype.Malformed
	// Lost is coverage lost before this point of the lane (records the
	// source dropped before they were read, a stop longer than its
	// retention). It is counted once, when the checkpoint covers it, like
	// a malformed record.
	Lost *twicetype.Gap
}

// Stream is a source without end, read by `twice watch`: lanes read in
// order (partitions, queues). Its methods other than Poll may be called
// from another goroutine than Poll's, so implementations guard their
// state. Constructors do no I/O.
type Stream interface {
	// Name names the source in metrics, logs and the checkpoint.
	Name() string
	// Replayable says whether the source can read a lane again from a
	// Position (Kafka, a Redis stream, a table, a file): then a restart
	// resumes exactly at the checkpoint. A source that cannot (pub/sub,
	// HTTP push) gets its positions back at Start all the same, to judge
	// what it missed while down, and relies on Commit: what is not yet
	// committed must be delivered again by the sender (an HTTP client
	// answered 2xx only at Commit) or is reported as a Gap.
	Replayable() bool
	// Start connects and resumes each lane after the position in resume
	// (keys are the stream's own lane names); lanes not in resume start
	// where the source's configuration says. A Start that fails is called
	// again, with backoff, until it works.
	Start(ctx context.Context, resume map[string]Position) error
	// Lanes returns the lanes known after Start; records of other lanes
	// may follow (a queue created later).
	Lanes() []string
	// Poll returns the records that arrived within wait, in order within
	// each lane; none when the lanes are idle. An error is retried with
	// backoff and shown on /readyz; it never ends the watch.
	Poll(ctx context.Context, wait time.Duration) ([]Record, error)
	// Commit tells the source that every lane is durable in twice up to
	// the given positions (the checkpoint covers them): a Kafka group
	// offset, an XACK, the 2xx of an HTTP push. Positions never go back.
	Commit(ctx context.Context, done map[string]Position) error
	// Shutdown stops reading and releases everything. It is safe to call
	// twice, and without Start.
	Shutdown(ctx context.Context) error
}

// LagReporter is a Stream that knows how far behind its source it is.
type LagReporter interface {
	// Lag returns, per lane, how many records the source holds beyond
	// the last one read.
	Lag(ctx context.Context) (map[string]int64, error)
}

// HealthReporter is a Stream that can tell, while running, that it is not
// getting records (a partition whose fetches fail and are retried, Redis
// unreachable). Health returns nil when all is well. It must be safe to
// call from any goroutine.
type HealthReporter interface {
	Health() error
}

// Waited is a Stream whose clients wait for their records to be durable
// (a pushed source: an SMTP client waits for its 250, an exporter for its
// 200). While Pending is above zero, the sidecar checkpoints at every
// flush (every 100 ms by default) rather than every checkpoint interval,
// so an answer waits for the next flush, not the next timed checkpoint.
// It must be safe to call from any goroutine.
type Waited interface {
	// Pending returns how many records were received and are not yet
	// committed.
	Pending() int64
}

// Ordered is a Stream whose positions within a lane can be compared: the
// sidecar then skips a record at or before a position already read (read
// again after a reconnect) and counts it in twice_redelivered_total.
type Ordered interface {
	// Before reports whether a comes before b in lane.
	Before(lane string, a, b Position) bool
}

// Registry maps source types to their factories. Build one with
// NewRegistry (sources/builtin.Registry has every tap of twice); tests
// build their own. It is safe for concurrent use once built.
type Registry struct {
	factories map[string]Factory
}

// NewRegistry returns a registry of the given factories; it panics when
// two have the same type (a programming error).
func NewRegistry(fs ...Factory) *Registry {
	r := &Registry{factories: map[string]Factory{}}
	for _, f := range fs {
		if err := r.Register(f); err != nil {
			panic(err)
		}
	}
	return r
}

// Register adds a factory; its type must be new.
func (r *Registry) Register(f Factory) error {
	t := f.Type()
	if t == "" {
		return errors.New("sources: a factory with an empty type")
	}
	if _, dup := r.factories[t]; dup {
		return fmt.Errorf("sources: type %q registered twice", t)
	}
	r.factories[t] = f
	return nil
}

// Lookup returns the factory of a type.
func (r *Registry) Lookup(typ string) (Factory, bool) {
	f, ok := r.factories[typ]
	return f, ok
}

// Types lists the registered types, sorted.
func (r *Registry) Types() []string {
	out := make([]string, 0, len(r.factories))
	for t := range r.factories {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// DecodeSource implements config.SourceTypes: it hands the mapping of a
// source of type typ to its factory; known is false for a type not
// registered.
func (r *Registry) DecodeSource(typ string, m *config.SourceMapping) (settings config.SourceSettings, known bool) {
	f, ok := r.factories[typ]
	if !ok {
		return nil, false
	}
	return f.DecodeConfig(m), true
}

// NewStream returns the stream of a configured source, for `twice watch`.
func (r *Registry) NewStream(src config.Source, opts StreamOptions) (Stream, error) {
	f, ok := r.factories[src.Type]
	if !ok {
		return nil, fmt.Errorf("source %s: unknown source type %q", src.Name, src.Type)
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s, err := f.NewStream(src, opts)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", src.Name, err)
	}
	return s, nil
}

// NewCollectors returns the collectors of a configured source, for
// `twice audit`; an error for a source that keeps no history.
func (r *Registry) NewCollectors(ctx context.Context, src config.Source, opts CollectOptions) ([]collectors.Collector, error) {
	f, ok := r.factories[src.Type]
	if !ok {
		return nil, fmt.Errorf("source %s: unknown source type %q", src.Name, src.Type)
	}
	hf, ok := f.(HistoryFactory)
	if !ok {
		return nil, &NoHistoryError{Source: src.Name, Type: src.Type}
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	cols, err := hf.NewCollectors(ctx, src, opts)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", src.Name, err)
	}
	if opts.Coverage != nil {
		for i, c := range cols {
			cols[i] = opts.Coverage.tee(src.Name, c)
		}
	}
	return cols, nil
}

// NoHistoryError is the error of an audit of a source that keeps no
// history (an HTTP endpoint, pub/sub): it can only be watched.
type NoHistoryError struct {
	Source, Type string
}

// Error says so and what to do instead.
func (e *NoHistoryError) Error() string {
	return fmt.Sprintf("source %s (type %s) keeps no history; use twice watch", e.Source, e.Type)
}

// Coverage gathers the gaps the collectors of an audit report (in
// collectors.Batch.Lost), merged per source, lane and reason. It is safe
// for concurrent use; the zero value is ready.
type Coverage struct {
	mu   sync.Mutex
	gaps map[string]*twicetype.Gap
	keys []string
}

// Add counts a gap.
func (c *Coverage) Add(g twicetype.Gap) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gaps == nil {
		c.gaps = map[string]*twicetype.Gap{}
	}
	key := g.Source + "\x00" + g.Lane + "\x00" + g.Reason
	if old := c.gaps[key]; old != nil {
		old.Merge(g)
		return
	}
	c.gaps[key] = &g
	c.keys = append(c.keys, key)
}

// Warnings returns one report warning per source, lane and reason, in the
// order first seen.
func (c *Coverage) Warnings() []twicetype.Warning {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []twicetype.Warning
	for _, k := range c.keys {
		out = append(out, c.gaps[k].Warning())
	}
	return out
}

// tee records the gaps of c's batches, as gaps of the source name.
func (c *Coverage) tee(name string, col collectors.Collector) collectors.Collector {
	return collectors.Tee(col, func(_ context.Context, b *collectors.Batch) error {
		for _, g := range b.Lost {
			g.Source = name
			c.Add(g)
		}
		return nil
	})
}
