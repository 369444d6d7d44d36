package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/internal/backoff"
	"github.com/twicehq/twice/internal/kafkasec"
	"github.com/twicehq/twice/internal/schemaregistry"
	"github.com/twicehq/twice/twicetype"
)

// Record is one message of a Consumer, mapped: Event is valid when
// Malformed is nil.
type Record struct {
	TP        TopicPartition
	Offset    int64
	Event     twicetype.Event
	Malformed *twicetype.Malformed
	// Skipped is set for a message that maps to no event; Event is then
	// not valid either.
	Skipped bool
	// Part is k > 0 for the k-th of several events of one message, before
	// its last (fanout.go); 0 for the last, or only, record of a message.
	Part int
}

// ConsumerOptions tune a Consumer; zero values mean the defaults.
type ConsumerOptions struct {
	// DeadLetterMaxBytes caps the source's dead-letter file; default
	// config.DefaultDeadLetterMaxBytes.
	DeadLetterMaxBytes int64
	// FetchMax is the most messages a partition maps at once; default
	// 4096.
	FetchMax int
	// FetchBytes is the most bytes of one fetch request; default
	// DefaultFetchBytes.
	FetchBytes int
	// Buffer is how many mapped batches each partition may hold ahead of
	// Poll; default 4.
	Buffer int
	// FetchWait is how long a fetch request waits on the broker for an
	// idle partition; default 500ms.
	FetchWait time.Duration
	// OnError, if set, sees each failed fetch; the partition retries with
	// backoff (and jitter) and Health reports it until a fetch succeeds.
	// It is called from the partitions' goroutines.
	OnError func(tp TopicPartition, err error)
	// Security is the source's TLS and SASL, from kafkasec.Load; when nil
	// Start loads the source's own.
	Security *kafkasec.Security
	// Registry is the source's schema registry client; when nil and the
	// source has schema_registry, NewConsumer loads one.
	Registry *schemaregistry.Client
}

// Consumer reads every partition of a kafka source for `twice watch`.
//
// It does not join the source's consumer group: the detectors correlate
// events across partitions and topics (a job's effects need not share its
// key or topic), so one process must see every partition, and a group
// would split them across members on each rebalance. twice keeps its own
// positions in its checkpoint and passes them to Start; Commit writes them
// to the group only so that lag dashboards see twice, and a consumer
// without a checkpoint starts from them.
//
// Each partition has a goroutine that fetches and maps; Poll returns what
// they mapped, in offset order per partition.
type Consumer struct {
	src   config.Source
	opts  ConsumerOptions
	stats *Stats
	dl    *DeadLetter

	mu        sync.Mutex
	started   bool
	shut      bool
	client    *kafkago.Client
	tps       []TopicPartition
	positions map[TopicPartition]int64 // next offset Poll returns, per partition
	// failing holds, per partition whose last fetch failed, the error.
	failing map[TopicPartition]error
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	out     chan []Record
}

// NewConsumer returns a Consumer of a kafka source. It does no I/O.
func NewConsumer(src config.Source, opts ConsumerOptions) (*Consumer, error) {
	if src.Type != config.SourceKafka || src.Kafka == nil {
		return nil, fmt.Errorf("source %q is not a kafka source", src.Name)
	}
	if opts.DeadLetterMaxBytes <= 0 {
		opts.DeadLetterMaxBytes = config.DefaultDeadLetterMaxBytes
	}
	if opts.FetchMax <= 0 {
		opts.FetchMax = 4096
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 4
	}
	if opts.FetchWait <= 0 {
		opts.FetchWait = 500 * time.Millisecond
	}
	if r := src.Kafka.SchemaRegistry; r != nil && opts.Registry == nil {
		reg, err := schemaregistry.Load(r)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", src.Name, err)
		}
		opts.Registry = reg
	}
	c := &Consumer{src: src, opts: opts, stats: NewStats()}
	if src.Kafka.DeadLetter != "" {
		c.dl = NewDeadLetter(src.Kafka.DeadLetter, opts.DeadLetterMaxBytes)
	}
	// Fail here, not in Start, on a map that cannot be used.
	if _, err := NewMapper(src, MapperOptions{Registry: opts.Registry}); err != nil {
		return nil, err
	}
	return c, nil
}

// Stats returns the source's malformed-message counters.
func (c *Consumer) Stats() *Stats { return c.stats }

// Start finds every partition of the source's topics and starts reading
// each: at resume[tp] when given, else at the group's committed offset,
// else at the source's start (earliest, latest, or the first offset at or
// after its time). A second Start does nothing.
func (c *Consumer) Start(ctx context.Context, resume map[TopicPartition]int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.shut {
		return nil
	}
	k := c.src.Kafka
	if c.opts.Security == nil && (k.TLS != nil || k.SASL != nil) {
		sec, err := kafkasec.Load(k.TLS, k.SASL)
		if err != nil {
			return fmt.Errorf("%s: %w", c.src.Name, err)
		}
		c.opts.Security = sec
	}
	c.client = newClient(k.Brokers, c.opts.Security)
	tps, err := Partitions(ctx, k.Brokers, k.Topics, c.opts.Security)
	if err != nil {
		return fmt.Errorf("%s: %w", c.src.Name, err)
	}
	starts, err := c.startOffsets(ctx, tps, resume)
	if err != nil {
		return fmt.Errorf("%s: %w", c.src.Name, c.opts.Security.Explain(err))
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	c.tps = tps
	c.positions = starts
	c.out = make(chan []Record, c.opts.Buffer*len(tps))
	for _, tp := range tps {
		m, err := NewMapper(c.src, MapperOptions{Stats: c.stats, DeadLetter: c.dl, Registry: c.opts.Registry})
		if err != nil {
			cancel()
			return err
		}
		r := NewPartitionReader(k.Brokers, tp, starts[tp], ReaderOptions{FetchBytes: c.opts.FetchBytes, Security: c.opts.Security})
		c.wg.Add(1)
		go c.run(rctx, r, m)
	}
	c.started = true
	return nil
}

// startOffsets picks where each partition starts.
func (c *Consumer) startOffsets(ctx context.Context, tps []TopicPartition, resume map[TopicPartition]int64) (map[TopicPartition]int64, error) {
	out := make(map[TopicPartition]int64, len(tps))
	var rest []TopicPartition
	for _, tp := range tps {
		if o, ok := resume[tp]; ok && o >= 0 {
			out[tp] = o
		} else {
			rest = append(rest, tp)
		}
	}
	if len(rest) == 0 {
		return out, nil
	}
	committed, err := c.committed(ctx, rest)
	if err != nil {
		return nil, err
	}
	var none []TopicPartition
	for _, tp := range rest {
		if o, ok := committed[tp]; ok && o >= 0 {
			out[tp] = o
		} else {
			none = append(none, tp)
		}
	}
	if len(none) == 0 {
		return out, nil
	}
	at := int64(kafkago.FirstOffset)
	switch k := c.src.Kafka; k.Start {
	case config.StartLatest:
		at = kafkago.LastOffset
	case config.StartTime:
		at = k.StartTime.UnixMilli()
	}
	offs, err := listOffsets(ctx, c.client, none, at)
	if err != nil {
		return nil, err
	}
	maps.Copy(out, offs)
	return out, nil
}

// committed returns the group's committed offsets of tps that have one.
func (c *Consumer) committed(ctx context.Context, tps []TopicPartition) (map[TopicPartition]int64, error) {
	return OffsetFetch(ctx, c.client, c.src.Kafka.Group, tps)
}

// OffsetFetch returns the committed offsets of group for the partitions
// that have one.
func OffsetFetch(ctx context.Context, client *kafkago.Client, group string, tps []TopicPartition) (map[TopicPartition]int64, error) {
	req := &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{}}
	for _, tp := range tps {
		req.Topics[tp.Topic] = append(req.Topics[tp.Topic], tp.Partition)
	}
	var resp *kafkago.OffsetFetchResponse
	err := retryCoordinator(ctx, func() error {
		var err error
		if resp, err = client.OffsetFetch(ctx, req); err == nil {
			err = resp.Error
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fetching the offsets of group %s: %w", group, err)
	}
	out := map[TopicPartition]int64{}
	for topic, parts := range resp.Topics {
		for _, p := range parts {
			if p.Error != nil {
				return nil, fmt.Errorf("fetching the offsets of group %s: %s[%d]: %w", group, topic, p.Partition, p.Error)
			}
			if p.CommittedOffset >= 0 {
				out[TopicPartition{topic, p.Partition}] = p.CommittedOffset
			}
		}
	}
	return out, nil
}

// run fetches and maps one partition until ctx ends.
func (c *Consumer) run(ctx context.Context, r *PartitionReader, m *Mapper) {
	defer c.wg.Done()
	defer r.Close()
	retry := backoff.New(100*time.Millisecond, 5*time.Second)
	for ctx.Err() == nil {
		msgs, err := r.Fetch(ctx, c.opts.FetchMax, c.opts.FetchWait)
		if len(msgs) > 0 {
			recs := make([]Record, 0, len(msgs))
			var evs []twicetype.Event
			for i := 0; i < len(msgs); i++ {
				var merr error
				evs, merr = m.MapAllContext(ctx, &msgs[i], evs[:0])
				if merr != nil && IsRetryable(merr) {
					// The schema registry cannot give the message's
					// schema: hand over what is mapped, then try the
					// same message again, so none is lost or passed
					// over; Health says the partition waits.
					if !c.send(ctx, recs) {
						return
					}
					recs = make([]Record, 0, len(msgs)-i)
					c.setFailing(r.tp, merr)
					if c.opts.OnError != nil {
						c.opts.OnError(r.tp, merr)
					}
					if retry.Wait(ctx) != nil {
						return
					}
					i--
					continue
				}
				switch {
				case merr != nil:
					var mal twicetype.Malformed
					if !errors.As(merr, &mal) {
						mal = twicetype.Malformed{Source: m.Label(r.tp), Line: msgs[i].Offset, Reason: merr.Error()}
					}
					recs = append(recs, Record{TP: r.tp, Offset: msgs[i].Offset, Malformed: &mal})
				case len(evs) == 0:
					recs = append(recs, Record{TP: r.tp, Offset: msgs[i].Offset, Skipped: true})
				}
				for j := range evs {
					rec := Record{TP: r.tp, Offset: msgs[i].Offset, Event: evs[j]}
					if j < len(evs)-1 {
						rec.Part = j + 1
					}
					recs = append(recs, rec)
				}
			}
			if !c.send(ctx, recs) {
				return
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if c.opts.OnError != nil {
				c.opts.OnError(r.tp, err)
			}
			c.setFailing(r.tp, err)
			if retry.Wait(ctx) != nil {
				return
			}
			continue
		}
		c.setFailing(r.tp, nil)
		retry.Reset()
	}
}

// send hands recs to Poll; false when ctx ended first.
func (c *Consumer) send(ctx context.Context, recs []Record) bool {
	if len(recs) == 0 {
		return true
	}
	select {
	case c.out <- recs:
		return true
	case <-ctx.Done():
		return false
	}
}

// setFailing records the outcome of a partition's last fetch.
func (c *Consumer) setFailing(tp TopicPartition, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		delete(c.failing, tp)
		return
	}
	if c.failing == nil {
		c.failing = map[TopicPartition]error{}
	}
	c.failing[tp] = err
}

// Health returns nil while every partition's last fetch succeeded, else
// an error counting and naming the failing partitions (up to three) with
// the error of the first. Fetches are retried; Health says that records are not
// arriving meanwhile.
func (c *Consumer) Health() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.failing) == 0 {
		return nil
	}
	tps := make([]TopicPartition, 0, len(c.failing))
	for tp := range c.failing {
		tps = append(tps, tp)
	}
	sortTPs(tps)
	names := make([]string, 0, 3)
	for _, tp := range tps[:min(3, len(tps))] {
		names = append(names, tp.String())
	}
	more := ""
	if len(tps) > 3 {
		more = fmt.Sprintf(" and %d more", len(tps)-3)
	}
	return fmt.Errorf("%d of %d partitions failing (%s%s): %w", len(tps), len(c.tps), strings.Join(names, ", "), more, c.failing[tps[0]])
}

// maxPoll bounds the records one Poll returns, when more are ready.
const maxPoll = 1 << 16

// Poll returns the records mapped since the last Poll, waiting up to wait
// for the first; none when nothing arrived. Records of one partition come
// in offset order. It fails only when ctx ends or the Consumer is not
// running.
func (c *Consumer) Poll(ctx context.Context, wait time.Duration) ([]Record, error) {
	c.mu.Lock()
	out, started, shut := c.out, c.started, c.shut
	c.mu.Unlock()
	if !started || shut {
		return nil, errors.New("kafka consumer is not running")
	}
	var recs []Record
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case b := <-out:
		recs = b
	case <-t.C:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
drain:
	for len(recs) < maxPoll {
		select {
		case b := <-out:
			recs = append(recs, b...)
		default:
			break drain
		}
	}
	c.mu.Lock()
	for i := range recs {
		c.positions[recs[i].TP] = recs[i].Offset + 1
	}
	c.mu.Unlock()
	return recs, nil
}

// Partitions returns the partitions the Consumer reads, nil before Start.
func (c *Consumer) Partitions() []TopicPartition {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]TopicPartition(nil), c.tps...)
}

// Lag returns, per partition, how many messages lie between what Poll has
// returned and the partition's end.
func (c *Consumer) Lag(ctx context.Context) (map[TopicPartition]int64, error) {
	c.mu.Lock()
	tps, client := c.tps, c.client
	c.mu.Unlock()
	if client == nil {
		return nil, errors.New("kafka consumer is not started")
	}
	ends, err := listOffsets(ctx, client, tps, kafkago.LastOffset)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	lag := make(map[TopicPartition]int64, len(tps))
	for _, tp := range tps {
		lag[tp] = max(0, ends[tp]-c.positions[tp])
	}
	return lag, nil
}

// Commit commits offsets to the source's group; each is the NEXT offset to
// read of its partition (the last one processed plus 1), as Kafka has it.
// The commit is a standalone one (generation -1, no member), which Kafka
// accepts for a group with no members.
func (c *Consumer) Commit(ctx context.Context, offsets map[TopicPartition]int64) error {
	c.mu.Lock()
	client := c.client
	c.mu.Unlock()
	if client == nil {
		client = newClient(c.src.Kafka.Brokers, c.opts.Security)
	}
	return OffsetCommit(ctx, client, c.src.Kafka.Group, offsets)
}

// OffsetCommit commits offsets to group as a standalone consumer.
func OffsetCommit(ctx context.Context, client *kafkago.Client, group string, offsets map[TopicPartition]int64) error {
	if len(offsets) == 0 {
		return nil
	}
	req := &kafkago.OffsetCommitRequest{GroupID: group, GenerationID: -1, Topics: map[string][]kafkago.OffsetCommit{}}
	for tp, o := range offsets {
		req.Topics[tp.Topic] = append(req.Topics[tp.Topic], kafkago.OffsetCommit{Partition: tp.Partition, Offset: o})
	}
	err := retryCoordinator(ctx, func() error {
		resp, err := client.OffsetCommit(ctx, req)
		if err != nil {
			return err
		}
		var errs []error
		for topic, parts := range resp.Topics {
			for _, p := range parts {
				if p.Error != nil {
					errs = append(errs, fmt.Errorf("%s[%d]: %w", topic, p.Partition, p.Error))
				}
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return fmt.Errorf("committing the offsets of group %s: %w", group, err)
	}
	return nil
}

// retryCoordinator runs f again, with backoff, while the group's
// coordinator is moving or loading (as it is for a while after a group's
// first use, or a broker's start).
func retryCoordinator(ctx context.Context, f func() error) error {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || attempt == 10 || !(errors.Is(err, kafkago.NotCoordinatorForGroup) ||
			errors.Is(err, kafkago.GroupCoordinatorNotAvailable) || errors.Is(err, kafkago.GroupLoadInProgress)) {
			return err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(2*backoff, time.Second)
	}
}

// Shutdown stops the partitions' goroutines and closes the dead-letter
// file. It is safe to call more than once, and without Start.
func (c *Consumer) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	if c.shut {
		c.mu.Unlock()
		return nil
	}
	c.shut = true
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.opts.Security.Close()
	if c.dl != nil {
		return c.dl.Close()
	}
	return nil
}
