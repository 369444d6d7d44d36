package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/internal/kafkasec"
	"github.com/twicehq/twice/internal/schemaregistry"
	"github.com/twicehq/twice/twicetype"
)

// RangeOptions tune NewRangeCollectors; zero values mean the defaults.
type RangeOptions struct {
	// From is where each partition starts: its first offset when zero,
	// else its first offset at or after From.
	From time.Time
	// DeadLetterMaxBytes caps the source's dead-letter file; default
	// config.DefaultDeadLetterMaxBytes.
	DeadLetterMaxBytes int64
	// FetchMax is the most messages of one batch; default 8192.
	FetchMax int
	// FetchBytes is the most bytes of one fetch request.
	FetchBytes int
	// Security is the source's TLS and SASL (kafkasec.Load); nil for
	// neither.
	Security *kafkasec.Security
	// Registry is the source's schema registry client; when nil and the
	// source has schema_registry, NewRangeCollectors loads one.
	Registry *schemaregistry.Client
}

// rangeWait is how long one fetch waits for data the partition should have.
const rangeWait = 500 * time.Millisecond

// NewRangeCollectors returns one collector per partition in tps (from
// Partitions), each reading its partition from opts.From up to the
// partition's end offset as of its Start, then io.EOF. The engine merges
// them by ts, so a topic audited this way gives the findings of the same
// events in a file. It does no I/O. The collectors share the source's
// malformed counters (the returned Stats) and dead-letter file.
func NewRangeCollectors(src config.Source, tps []TopicPartition, opts RangeOptions) ([]collectors.Collector, *Stats, error) {
	if r := src.Kafka.SchemaRegistry; r != nil && opts.Registry == nil {
		reg, err := schemaregistry.Load(r)
		if err != nil {
			return nil, nil, fmt.Errorf("source %s: %w", src.Name, err)
		}
		opts.Registry = reg
	}
	if _, err := NewMapper(src, MapperOptions{Registry: opts.Registry}); err != nil {
		return nil, nil, err
	}
	if opts.DeadLetterMaxBytes <= 0 {
		opts.DeadLetterMaxBytes = config.DefaultDeadLetterMaxBytes
	}
	if opts.FetchMax <= 0 {
		opts.FetchMax = 8192
	}
	shared := &rangeShared{stats: NewStats(), open: len(tps)}
	if src.Kafka.DeadLetter != "" {
		shared.dl = NewDeadLetter(src.Kafka.DeadLetter, opts.DeadLetterMaxBytes)
	}
	cols := make([]collectors.Collector, len(tps))
	for i, tp := range tps {
		m, _ := NewMapper(src, MapperOptions{Stats: shared.stats, DeadLetter: shared.dl, Registry: opts.Registry})
		cols[i] = &rangeCollector{src: src, tp: tp, opts: opts, mapper: m, shared: shared}
	}
	return cols, shared.stats, nil
}

// rangeShared is what the collectors of one source share; the last to shut
// down closes the dead-letter file.
type rangeShared struct {
	stats *Stats
	dl    *DeadLetter
	mu    sync.Mutex
	open  int
}

func (s *rangeShared) release() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open--
	if s.open == 0 && s.dl != nil {
		return s.dl.Close()
	}
	return nil
}

type rangeCollector struct {
	src    config.Source
	tp     TopicPartition
	opts   RangeOptions
	mapper *Mapper
	shared *rangeShared

	r        *PartitionReader
	end      int64
	shutdown bool
	// pending are the fetched messages not yet mapped: those after a
	// message whose schema the registry could not give, which is first.
	pending []Message
}

func (c *rangeCollector) Name() string { return c.src.Name + " " + c.tp.String() }

// Start finds the partition's start and end offsets.
func (c *rangeCollector) Start(ctx context.Context) error {
	if c.r != nil {
		return nil
	}
	client := newClient(c.src.Kafka.Brokers, c.opts.Security)
	at := int64(kafkago.FirstOffset)
	if !c.opts.From.IsZero() {
		at = c.opts.From.UnixMilli()
	}
	starts, err := listOffsets(ctx, client, []TopicPartition{c.tp}, at)
	if err != nil {
		return c.opts.Security.Explain(err)
	}
	ends, err := listOffsets(ctx, client, []TopicPartition{c.tp}, kafkago.LastOffset)
	if err != nil {
		return err
	}
	c.end = ends[c.tp]
	c.r = NewPartitionReader(c.src.Kafka.Brokers, c.tp, starts[c.tp], ReaderOptions{FetchBytes: c.opts.FetchBytes, Security: c.opts.Security})
	return nil
}

// Next returns the next batch, io.EOF at the end offset.
func (c *rangeCollector) Next(ctx context.Context) (*collectors.Batch, error) {
	if c.r == nil {
		return nil, errors.New("collector not started")
	}
	failures := 0
	for {
		msgs, err := c.pending, error(nil)
		if len(msgs) == 0 {
			if c.r.Offset() >= c.end {
				return nil, io.EOF
			}
			msgs, err = c.r.Fetch(ctx, c.opts.FetchMax, rangeWait)
		}
		c.pending = nil
		b := &collectors.Batch{}
		for i := range msgs {
			if msgs[i].Offset >= c.end {
				break
			}
			var merr error
			if b.Events, merr = c.mapper.MapAllContext(ctx, &msgs[i], b.Events); IsRetryable(merr) {
				// The registry cannot give the message's schema: keep
				// it and the rest for the next try.
				c.pending = msgs[i:]
				if len(b.Events) > 0 || len(b.Malformed) > 0 {
					return b, nil
				}
				err = merr
				break
			} else if merr != nil {
				var mal twicetype.Malformed
				if !errors.As(merr, &mal) {
					mal = twicetype.Malformed{Source: c.mapper.Label(c.tp), Line: msgs[i].Offset, Reason: merr.Error()}
				}
				b.Malformed = append(b.Malformed, mal)
			}
		}
		if len(b.Events) > 0 || len(b.Malformed) > 0 {
			return b, nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			// A partition moving to another leader, say; the offset to go
			// on from is kept.
			if failures++; failures >= 5 {
				return nil, fmt.Errorf("%s: %w", c.tp, err)
			}
			select {
			case <-time.After(time.Duration(failures) * 200 * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
}

// Shutdown closes the connection; the last collector of the source closes
// its dead-letter file.
func (c *rangeCollector) Shutdown(context.Context) error {
	if c.shutdown {
		return nil
	}
	c.shutdown = true
	if c.r != nil {
		c.r.Close()
	}
	return c.shared.release()
}
