// Package kafkasink publishes finding revisions to a Kafka topic, keyed by
// fingerprint, so that a compacted topic holds the last revision of every
// finding. It is the only part of the sidecar that imports kafka-go.
package kafkasink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/twicehq/twice/internal/kafkasec"
	"github.com/twicehq/twice/sidecar"
)

// seqHeader carries a revision's seq on each message, read back on Start.
const seqHeader = "twice-seq"

// Sink writes revisions to Topic. Each message: key = fingerprint, value
// = the revision's JSON line, header twice-seq = its seq.
type Sink struct {
	brokers []string
	topic   string
	sec     *kafkasec.Security

	mu     sync.Mutex
	w      *kafka.Writer
	closed bool
	// unsure is set while the last publish failed: the broker may have
	// taken part of it (one partition's batch written, another's
	// refused), so the next publish reads the topic's tail back and
	// skips what is there, as Start does after a crash.
	unsure bool
}

// New returns a sink for topic on brokers. It does no I/O.
func New(brokers []string, topic string) *Sink {
	return &Sink{brokers: brokers, topic: topic}
}

// Options tune NewWith.
type Options struct {
	// Security is the sink's TLS and SASL (kafkasec.Load); nil for
	// neither.
	Security *kafkasec.Security
}

// NewWith is New, with options. It does no I/O.
func NewWith(brokers []string, topic string, o Options) *Sink {
	return &Sink{brokers: brokers, topic: topic, sec: o.Security}
}

// dialTimeout bounds connecting to a broker.
const dialTimeout = 10 * time.Second

// Name implements sidecar.Sink.
func (s *Sink) Name() string { return "kafka:" + s.topic }

// Start implements sidecar.Sink: it reads back, from the end of each
// partition, the revisions after `after` that a run stopped by a crash
// published without recording it.
func (s *Sink) Start(ctx context.Context, after uint64) (map[uint64]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w != nil {
		return nil, nil
	}
	held, err := s.recover(ctx, after)
	if err != nil {
		return nil, fmt.Errorf("kafka topic %s: reading back: %w", s.topic, s.sec.Explain(err))
	}
	s.w = &kafka.Writer{
		Addr:         kafka.TCP(s.brokers...),
		Transport:    s.sec.Transport(),
		Topic:        s.topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		BatchSize:    1000,
		MaxAttempts:  5,
	}
	return held, nil
}

// recover scans each partition backwards, a window at a time, until it
// meets a revision at or before `after`: revisions are written in seq
// order, so everything later lies after it.
func (s *Sink) recover(ctx context.Context, after uint64) (map[uint64]bool, error) {
	conn, err := s.sec.Dialer(dialTimeout).DialContext(ctx, "tcp", s.brokers[0])
	if err != nil {
		return nil, err
	}
	parts, err := conn.ReadPartitions(s.topic)
	conn.Close()
	if err != nil {
		return nil, err
	}
	held := map[uint64]bool{}
	for _, p := range parts {
		if err := s.recoverPartition(ctx, p, after, held); err != nil {
			return nil, fmt.Errorf("partition %d: %w", p.ID, err)
		}
	}
	return held, nil
}

const window = 1000

func (s *Sink) recoverPartition(ctx context.Context, p kafka.Partition, after uint64, held map[uint64]bool) error {
	conn, err := s.sec.Dialer(dialTimeout).DialLeader(ctx, "tcp", fmt.Sprintf("%s:%d", p.Leader.Host, p.Leader.Port), s.topic, p.ID)
	if err != nil {
		return err
	}
	first, last, err := conn.ReadOffsets()
	conn.Close()
	if err != nil {
		return err
	}
	for end := last; end > first; end -= window {
		start := max(first, end-window)
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: s.brokers, Topic: s.topic, Partition: p.ID, Dialer: s.sec.Dialer(dialTimeout),
			MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond,
		})
		if err := r.SetOffset(start); err != nil {
			r.Close()
			return err
		}
		reachedOld := false
		for off := start; off < end; {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				return err
			}
			off = m.Offset + 1
			seq, ok := messageSeq(m)
			if !ok {
				continue
			}
			if seq <= after {
				reachedOld = true
				continue
			}
			held[seq] = true
		}
		r.Close()
		if reachedOld {
			return nil
		}
	}
	return nil
}

func messageSeq(m kafka.Message) (uint64, bool) {
	for _, h := range m.Headers {
		if h.Key == seqHeader {
			v, err := strconv.ParseUint(string(h.Value), 10, 64)
			return v, err == nil
		}
	}
	var head struct {
		Seq uint64 `json:"seq"`
	}
	if json.Unmarshal(m.Value, &head) == nil && head.Seq > 0 {
		return head.Seq, true
	}
	return 0, false
}

// Publish implements sidecar.Sink; it returns once every broker replica
// has the revisions. After a publish that failed, it first reads back
// from the end of each partition the revisions the broker took anyway,
// and does not write them again: a publish retried after a partial
// failure writes each revision once.
func (s *Sink) Publish(ctx context.Context, revs []sidecar.Revision) error {
	s.mu.Lock()
	w, unsure := s.w, s.unsure
	s.mu.Unlock()
	if w == nil {
		return errors.New("kafka sink not started")
	}
	if unsure && len(revs) > 0 {
		first := revs[0].Seq
		for _, r := range revs {
			first = min(first, r.Seq)
		}
		rctx, cancel := context.WithTimeout(ctx, readBackTimeout)
		held, err := s.recover(rctx, first-1)
		cancel()
		if err != nil {
			return fmt.Errorf("kafka topic %s: reading back after a failed publish: %w", s.topic, err)
		}
		revs = notHeld(revs, held)
	}
	msgs := make([]kafka.Message, len(revs))
	for i, r := range revs {
		msgs[i] = kafka.Message{
			Key:     []byte(r.Fingerprint),
			Value:   r.Line,
			Headers: []kafka.Header{{Key: seqHeader, Value: []byte(strconv.FormatUint(r.Seq, 10))}},
		}
	}
	err := w.WriteMessages(ctx, msgs...)
	s.mu.Lock()
	s.unsure = err != nil
	s.mu.Unlock()
	var werr kafka.WriteErrors
	if errors.As(err, &werr) && werr.Count() < len(werr) {
		return fmt.Errorf("kafka topic %s: %d of %d revisions written, the rest refused (the written ones are not written again): %w",
			s.topic, len(werr)-werr.Count(), len(werr), err)
	}
	if err != nil {
		return fmt.Errorf("kafka topic %s: %w", s.topic, s.sec.Explain(err))
	}
	return nil
}

// readBackTimeout bounds the reading back after a failed publish, so that
// a topic whose leaders do not answer fails the publish (retried at the
// next checkpoint) rather than holding the watch.
const readBackTimeout = 10 * time.Second

// notHeld returns the revisions of revs whose seq is not in held.
func notHeld(revs []sidecar.Revision, held map[uint64]bool) []sidecar.Revision {
	if len(held) == 0 {
		return revs
	}
	out := make([]sidecar.Revision, 0, len(revs))
	for _, r := range revs {
		if !held[r.Seq] {
			out = append(out, r)
		}
	}
	return out
}

// Shutdown implements sidecar.Sink.
func (s *Sink) Shutdown(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil || s.closed {
		return nil
	}
	s.closed = true
	err := s.w.Close()
	s.sec.Close()
	return err
}
