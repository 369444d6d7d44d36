package main

import (
	"context"
	"fmt"
	"time"

	"github.com/twicehq/twice/collectors/kafka"
	"github.com/twicehq/twice/sidecar"
)

// kafkaStream lets the sidecar read a kafka source: lanes are its
// partitions, named "SOURCE TOPIC/PARTITION".
type kafkaStream struct {
	name  string
	c     *kafka.Consumer
	lanes map[string]kafka.TopicPartition
}

func newKafkaStream(name string, c *kafka.Consumer) *kafkaStream {
	return &kafkaStream{name: name, c: c, lanes: map[string]kafka.TopicPartition{}}
}

func (s *kafkaStream) laneOf(tp kafka.TopicPartition) string {
	return fmt.Sprintf("%s %s/%d", s.name, tp.Topic, tp.Partition)
}

func (s *kafkaStream) Name() string { return s.name }

func (s *kafkaStream) Start(ctx context.Context, resume map[string]int64) error {
	byTP := map[kafka.TopicPartition]int64{}
	prefix := s.name + " "
	for lane, off := range resume {
		var tp kafka.TopicPartition
		if len(lane) <= len(prefix) || lane[:len(prefix)] != prefix {
			continue
		}
		rest := lane[len(prefix):]
		slash := -1
		for i := len(rest) - 1; i >= 0; i-- {
			if rest[i] == '/' {
				slash = i
				break
			}
		}
		if slash < 0 {
			continue
		}
		tp.Topic = rest[:slash]
		if _, err := fmt.Sscanf(rest[slash+1:], "%d", &tp.Partition); err != nil {
			continue
		}
		byTP[tp] = off
	}
	if err := s.c.Start(ctx, byTP); err != nil {
		return err
	}
	for _, tp := range s.c.Partitions() {
		s.lanes[s.laneOf(tp)] = tp
	}
	return nil
}

func (s *kafkaStream) Lanes() []string {
	out := make([]string, 0, len(s.lanes))
	for l := range s.lanes {
		out = append(out, l)
	}
	return out
}

func (s *kafkaStream) Poll(ctx context.Context, wait time.Duration) ([]sidecar.Record, error) {
	recs, err := s.c.Poll(ctx, wait)
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	out := make([]sidecar.Record, len(recs))
	for i := range recs {
		r := &recs[i]
		out[i] = sidecar.Record{Lane: s.laneOf(r.TP), Offset: r.Offset, Malformed: r.Malformed}
		if r.Malformed == nil {
			out[i].Event = &r.Event
		}
	}
	return out, nil
}

func (s *kafkaStream) Lag(ctx context.Context) (map[string]int64, error) {
	lag, err := s.c.Lag(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(lag))
	for tp, n := range lag {
		out[s.laneOf(tp)] = n
	}
	return out, nil
}

func (s *kafkaStream) Commit(ctx context.Context, next map[string]int64) error {
	byTP := make(map[kafka.TopicPartition]int64, len(next))
	for lane, off := range next {
		if tp, ok := s.lanes[lane]; ok {
			byTP[tp] = off
		}
	}
	return s.c.Commit(ctx, byTP)
}

func (s *kafkaStream) Shutdown(ctx context.Context) error { return s.c.Shutdown(ctx) }

// Health implements sidecar.HealthReporter: partitions whose fetches
// fail (and are being retried) make /readyz answer 503.
func (s *kafkaStream) Health() error { return s.c.Health() }
