package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/twicehq/twice/internal/kafkasec"
)

// Defaults of a PartitionReader.
const (
	// DefaultFetchBytes is how many bytes one fetch request asks for.
	DefaultFetchBytes = 4 << 20
	// dialTimeout bounds connecting to a broker.
	dialTimeout = 10 * time.Second
	// requestSlack is how much longer than the fetch's wait the network may
	// take before a fetch counts as failed.
	requestSlack = 10 * time.Second
)

// ReaderOptions tune a PartitionReader.
type ReaderOptions struct {
	// FetchBytes is the most bytes one fetch request asks for; default
	// DefaultFetchBytes.
	FetchBytes int
	// Security is the source's TLS and SASL; nil for neither.
	Security *kafkasec.Security
}

// PartitionReader reads one partition from an offset on, with no
// consumer-group membership. It talks to the partition's leader over one
// connection: each fetch request returns a batch of up to FetchBytes, which
// Fetch hands out over as many calls as it takes. It must not be used by
// more than one goroutine at a time, except Close.
type PartitionReader struct {
	brokers []string
	tp      TopicPartition
	offset  int64 // the next offset to return
	opts    ReaderOptions
	client  *kafkago.Client

	conn  *kafkago.Conn
	batch *kafkago.Batch
	hwm   int64 // the high watermark of the last fetch, -1 before
	msgs  []Message
}

// NewPartitionReader returns a reader of tp starting at offset, the first
// offset Fetch returns (offsets are absolute; see Offsets for the first,
// the end or an offset by time). It does no I/O.
func NewPartitionReader(brokers []string, tp TopicPartition, offset int64, opts ReaderOptions) *PartitionReader {
	if opts.FetchBytes <= 0 {
		opts.FetchBytes = DefaultFetchBytes
	}
	return &PartitionReader{
		brokers: brokers, tp: tp, offset: offset, opts: opts, hwm: -1,
		client: newClient(brokers, opts.Security),
	}
}

// newClient returns a client of brokers, with sec's TLS and SASL.
func newClient(brokers []string, sec *kafkasec.Security) *kafkago.Client {
	return &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: requestSlack, Transport: sec.Transport()}
}

// TP returns the partition the reader reads.
func (r *PartitionReader) TP() TopicPartition { return r.tp }

// Offset returns the next offset Fetch will return (or skip, when the
// records there are gone or are transaction markers).
func (r *PartitionReader) Offset() int64 { return r.offset }

// LastHighWatermark returns the end offset the broker reported with the
// last fetch, -1 before the first.
func (r *PartitionReader) LastHighWatermark() int64 { return r.hwm }

// Fetch returns the next messages, at most max, in offset order: those of
// the batch at hand, or of one new fetch request that the broker answers
// as soon as it has data or after wait, so it returns within about wait
// (possibly with none). The slice is valid until the next Fetch; the
// messages' byte slices are the caller's.
//
// An error leaves the reader usable: the next Fetch connects again and goes
// on from Offset. When Offset is no longer in the log (retention deleted
// it), the reader goes on from the first offset there is, or from the end
// when Offset is past it.
func (r *PartitionReader) Fetch(ctx context.Context, max int, wait time.Duration) ([]Message, error) {
	if max <= 0 {
		max = 1
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.batch == nil {
		if err := r.request(ctx, wait); errors.Is(err, errIdle) {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
	}
	r.msgs = r.msgs[:0]
	for len(r.msgs) < max {
		m, err := r.batch.ReadMessage()
		if err != nil {
			next := r.batch.Offset()
			cerr := r.batch.Close()
			r.batch = nil
			if cerr == nil && !errors.Is(err, io.EOF) && !errors.Is(err, kafkago.RequestTimedOut) {
				cerr = err
			}
			if errors.Is(cerr, kafkago.RequestTimedOut) {
				cerr = nil // idle: nothing within the wait
			}
			if cerr != nil {
				r.reset()
				return r.msgs, r.failed(ctx, cerr)
			}
			// Past transaction markers and compacted records.
			r.offset = max64(r.offset, next)
			break
		}
		if m.Offset < r.offset {
			continue
		}
		msg := Message{
			Topic: r.tp.Topic, Partition: r.tp.Partition, Offset: m.Offset,
			Key: m.Key, Value: m.Value, Time: m.Time,
		}
		if len(m.Headers) > 0 {
			msg.Headers = make([]Header, len(m.Headers))
			for i, h := range m.Headers {
				msg.Headers[i] = Header{Key: h.Key, Value: h.Value}
			}
		}
		r.msgs = append(r.msgs, msg)
		r.offset = m.Offset + 1
	}
	return r.msgs, nil
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// errIdle says a fetch found nothing within its wait.
var errIdle = errors.New("no message within the wait")

// request sends one fetch request, connecting first when needed.
func (r *PartitionReader) request(ctx context.Context, wait time.Duration) error {
	if r.conn == nil {
		if err := r.connect(ctx); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(wait + requestSlack)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := r.conn.SetReadDeadline(deadline); err != nil {
		r.reset()
		return err
	}
	// Cancelling ctx ends a request that waits.
	conn := r.conn
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	if wait < time.Millisecond {
		wait = time.Millisecond
	}
	b := r.conn.ReadBatchWith(kafkago.ReadBatchConfig{MinBytes: 1, MaxBytes: r.opts.FetchBytes, MaxWait: wait})
	if err := b.Err(); errors.Is(err, kafkago.RequestTimedOut) {
		// The broker had nothing within wait: an idle partition, not a
		// failure (kafka-go's own Reader treats it so too).
		_ = b.Close()
		return errIdle
	}
	if err := b.Err(); err != nil && !errors.Is(err, io.EOF) {
		_ = b.Close()
		r.reset()
		return r.failed(ctx, err)
	}
	r.hwm = b.HighWaterMark()
	r.batch = b
	return nil
}

// connect dials the partition's leader and seeks to the offset.
func (r *PartitionReader) connect(ctx context.Context) error {
	d := r.opts.Security.Dialer(dialTimeout)
	var errs []error
	for _, b := range r.brokers {
		conn, err := d.DialLeader(ctx, "tcp", b, r.tp.Topic, r.tp.Partition)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := conn.Seek(r.offset, kafkago.SeekAbsolute|kafkago.SeekDontCheck); err != nil {
			conn.Close()
			errs = append(errs, err)
			continue
		}
		r.conn = conn
		return nil
	}
	return fmt.Errorf("%s: connecting to its leader: %w", r.tp, r.opts.Security.Explain(errors.Join(errs...)))
}

// failed handles a failed request: an offset out of range moves the
// reader into the log.
func (r *PartitionReader) failed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, kafkago.OffsetOutOfRange) {
		first, end, oerr := r.bounds(ctx)
		if oerr == nil {
			from := r.offset
			if r.offset < first {
				r.offset = first
			} else if r.offset > end {
				r.offset = end
			}
			return fmt.Errorf("%s: offset %d is not in the log [%d, %d): going on from %d", r.tp, from, first, end, r.offset)
		}
	}
	return fmt.Errorf("%s: %w", r.tp, err)
}

// reset drops the connection and any batch.
func (r *PartitionReader) reset() {
	if r.batch != nil {
		_ = r.batch.Close()
		r.batch = nil
	}
	if r.conn != nil {
		_ = r.conn.Close()
		r.conn = nil
	}
}

// HighWatermark returns the partition's end offset: the offset the next
// message written to it will get.
func (r *PartitionReader) HighWatermark(ctx context.Context) (int64, error) {
	_, end, err := r.bounds(ctx)
	return end, err
}

func (r *PartitionReader) bounds(ctx context.Context) (first, end int64, err error) {
	offs, err := listOffsets(ctx, r.client, []TopicPartition{r.tp}, kafkago.FirstOffset)
	if err != nil {
		return 0, 0, err
	}
	ends, err := listOffsets(ctx, r.client, []TopicPartition{r.tp}, kafkago.LastOffset)
	if err != nil {
		return 0, 0, err
	}
	return offs[r.tp], ends[r.tp], nil
}

// Close releases the connection. It is safe to call more than once.
func (r *PartitionReader) Close() error {
	r.reset()
	return nil
}

// listOffsets asks for an offset of each partition: kafkago.FirstOffset,
// kafkago.LastOffset (the end), or the first offset at or after a time in
// Unix milliseconds (the end when there is none).
func listOffsets(ctx context.Context, c *kafkago.Client, tps []TopicPartition, at int64) (map[TopicPartition]int64, error) {
	req := &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{}}
	for _, tp := range tps {
		req.Topics[tp.Topic] = append(req.Topics[tp.Topic], kafkago.OffsetRequest{Partition: tp.Partition, Timestamp: at})
	}
	resp, err := c.ListOffsets(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make(map[TopicPartition]int64, len(tps))
	var missing []TopicPartition
	for topic, parts := range resp.Topics {
		for _, p := range parts {
			tp := TopicPartition{topic, p.Partition}
			if p.Error != nil {
				return nil, fmt.Errorf("%s: listing offsets: %w", tp, p.Error)
			}
			switch at {
			case kafkago.FirstOffset:
				out[tp] = p.FirstOffset
			case kafkago.LastOffset:
				out[tp] = p.LastOffset
			default:
				off := int64(-1)
				for o := range p.Offsets {
					off = o
				}
				if off < 0 {
					missing = append(missing, tp)
					continue
				}
				out[tp] = off
			}
		}
	}
	if len(missing) > 0 {
		// No message at or after the time: start at the end.
		ends, err := listOffsets(ctx, c, missing, kafkago.LastOffset)
		if err != nil {
			return nil, err
		}
		for tp, o := range ends {
			out[tp] = o
		}
	}
	for _, tp := range tps {
		if _, ok := out[tp]; !ok {
			return nil, fmt.Errorf("%s: listing offsets: no answer for the partition", tp)
		}
	}
	return out, nil
}

// Partitions returns every partition of the source's topics, in the order
// of its topics, then by partition, connecting with sec's TLS and SASL
// (nil for neither). It fails when a topic does not exist.
func Partitions(ctx context.Context, brokers, topics []string, sec *kafkasec.Security) ([]TopicPartition, error) {
	c := newClient(brokers, sec)
	meta, err := c.Metadata(ctx, &kafkago.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("reading metadata: %w", sec.Explain(err))
	}
	var out []TopicPartition
	for _, name := range topics {
		found := false
		for _, t := range meta.Topics {
			if t.Name != name {
				continue
			}
			found = true
			if t.Error != nil {
				return nil, fmt.Errorf("topic %s: %w", name, t.Error)
			}
			ps := make([]TopicPartition, 0, len(t.Partitions))
			for _, p := range t.Partitions {
				ps = append(ps, TopicPartition{name, p.ID})
			}
			sortTPs(ps)
			out = append(out, ps...)
		}
		if !found {
			return nil, fmt.Errorf("topic %s: not in the cluster's metadata", name)
		}
	}
	return out, nil
}

func sortTPs(tps []TopicPartition) {
	for i := 1; i < len(tps); i++ {
		for j := i; j > 0 && tps[j].Partition < tps[j-1].Partition; j-- {
			tps[j], tps[j-1] = tps[j-1], tps[j]
		}
	}
}
