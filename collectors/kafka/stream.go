package kafka

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twicehq/twice/sources"
)

// Stream lets `twice watch` read a kafka source (sources.Stream): its
// lanes are the partitions, named "TOPIC/PARTITION", and a record's
// position is the offset after it, in decimal ("1235" after offset
// 1234), which is where the partition resumes.
type Stream struct {
	name string
	c    *Consumer

	mu    sync.Mutex
	lanes map[string]TopicPartition
}

var (
	_ sources.Stream         = (*Stream)(nil)
	_ sources.LagReporter    = (*Stream)(nil)
	_ sources.HealthReporter = (*Stream)(nil)
	_ sources.Ordered        = (*Stream)(nil)
)

// NewStream returns the stream of a consumer of the source name. It does
// no I/O.
func NewStream(name string, c *Consumer) *Stream {
	return &Stream{name: name, c: c, lanes: map[string]TopicPartition{}}
}

func laneOf(tp TopicPartition) string { return tp.Topic + "/" + strconv.Itoa(tp.Partition) }

// parseLane reads a lane name back; topics may hold '/' no more than
// '.', so the partition follows the last slash.
func parseLane(lane string) (TopicPartition, bool) {
	i := strings.LastIndexByte(lane, '/')
	if i <= 0 {
		return TopicPartition{}, false
	}
	p, err := strconv.Atoi(lane[i+1:])
	if err != nil || p < 0 {
		return TopicPartition{}, false
	}
	return TopicPartition{Topic: lane[:i], Partition: p}, true
}

// Name returns the source's name.
func (s *Stream) Name() string { return s.name }

// Replayable is true: a partition is read again from any offset it still
// holds.
func (s *Stream) Replayable() bool { return true }

// Start starts the consumer, each partition at its position in resume.
func (s *Stream) Start(ctx context.Context, resume map[string]sources.Position) error {
	byTP := map[TopicPartition]int64{}
	for lane, pos := range resume {
		tp, ok := parseLane(lane)
		if !ok {
			continue
		}
		off, _, err := parsePosition(pos)
		if err != nil {
			return fmt.Errorf("%s: lane %s: %w", s.name, lane, err)
		}
		byTP[tp] = off
	}
	if err := s.c.Start(ctx, byTP); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tp := range s.c.Partitions() {
		s.lanes[laneOf(tp)] = tp
	}
	return nil
}

// Lanes returns the partitions, after Start.
func (s *Stream) Lanes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.lanes))
	for l := range s.lanes {
		out = append(out, l)
	}
	return out
}

// Poll returns the messages mapped within wait.
func (s *Stream) Poll(ctx context.Context, wait time.Duration) ([]sources.Record, error) {
	recs, err := s.c.Poll(ctx, wait)
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	out := make([]sources.Record, len(recs))
	for i := range recs {
		r := &recs[i]
		out[i] = sources.Record{Lane: laneOf(r.TP), Position: recordPosition(r.Offset, r.Part), Malformed: r.Malformed}
		if r.Malformed == nil && !r.Skipped {
			out[i].Event = &r.Event
		}
	}
	return out, nil
}

// Before compares two positions: offsets, or an offset and the events
// of its message taken (fanout.go).
func (s *Stream) Before(_ string, a, b sources.Position) bool {
	x, xp, errA := parsePosition(a)
	y, yp, errB := parsePosition(b)
	return errA == nil && errB == nil && (x < y || x == y && xp < yp)
}

// Lag returns, per partition, the messages after the last one read.
func (s *Stream) Lag(ctx context.Context) (map[string]int64, error) {
	lag, err := s.c.Lag(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(lag))
	for tp, n := range lag {
		out[laneOf(tp)] = n
	}
	return out, nil
}

// Commit writes the positions to the source's consumer group.
func (s *Stream) Commit(ctx context.Context, done map[string]sources.Position) error {
	s.mu.Lock()
	byTP := make(map[TopicPartition]int64, len(done))
	for lane, pos := range done {
		tp, ok := s.lanes[lane]
		if !ok {
			continue
		}
		off, _, err := parsePosition(pos)
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("lane %s: %w", lane, err)
		}
		byTP[tp] = off
	}
	s.mu.Unlock()
	return s.c.Commit(ctx, byTP)
}

// Shutdown stops the consumer.
func (s *Stream) Shutdown(ctx context.Context) error { return s.c.Shutdown(ctx) }

// Health implements sources.HealthReporter: partitions whose fetches
// fail (and are being retried) make /readyz answer 503.
func (s *Stream) Health() error { return s.c.Health() }
