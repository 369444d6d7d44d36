// Package kafkaprod writes normalized events to Kafka topics, for tests and
// benchmarks of the kafka collector: it creates topics and produces JSON
// lines keyed so that the events of one job (or entity) keep their order.
package kafkaprod

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/valyala/fastjson"
)

// CreateTopic creates topic with the given partitions (replication 1) and
// waits until every partition has a leader.
func CreateTopic(ctx context.Context, brokers []string, topic string, partitions int) error {
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 30 * time.Second}
	resp, err := c.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1,
	}}})
	if err != nil {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	if err := resp.Errors[topic]; err != nil && !errors.Is(err, kafkago.TopicAlreadyExists) {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	for {
		meta, err := c.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
		if err == nil && len(meta.Topics) == 1 && meta.Topics[0].Error == nil && len(meta.Topics[0].Partitions) == partitions {
			ready := true
			for _, p := range meta.Topics[0].Partitions {
				ready = ready && p.Error == nil && p.Leader.ID >= 0 && p.Leader.Host != ""
			}
			if ready {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for topic %s: %w (last: %v)", topic, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Message is one message to produce.
type Message struct {
	Key, Value []byte
	Headers    map[string]string
	// Partition, when Explicit, is the partition written to; otherwise the
	// key's hash picks it.
	Partition int
	Explicit  bool
	Time      time.Time
}

// Key returns the key an event line is produced with: its job_id, else its
// entity, else its effect_key, else none; so each job's events stay in
// order in one partition.
func Key(line []byte) []byte {
	v, err := fastjson.ParseBytes(line)
	if err != nil {
		return nil
	}
	for _, f := range []string{"job_id", "entity", "effect_key"} {
		if s := v.GetStringBytes(f); len(s) > 0 {
			return append([]byte(nil), s...)
		}
	}
	return nil
}

// Lines returns the non-blank lines of a JSON Lines file as messages keyed
// by Key.
func Lines(path string) ([]Message, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Message
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		line = append([]byte(nil), line...)
		out = append(out, Message{Key: Key(line), Value: line})
	}
	return out, sc.Err()
}

// Produce writes msgs to topic in order (per partition) and waits until
// the broker has them all. Keyed messages go to the partition of their
// key's hash (kafka-go's Hash balancer, as the Java client's murmur2 does
// not matter here); unkeyed ones round-robin, unless Explicit.
func Produce(ctx context.Context, brokers []string, topic string, msgs []Message) error {
	w := &kafkago.Writer{
		Addr:         kafkago.TCP(brokers...),
		Topic:        topic,
		Balancer:     balancer{},
		BatchSize:    5000,
		BatchBytes:   4 << 20,
		BatchTimeout: 5 * time.Millisecond,
		RequiredAcks: kafkago.RequireAll,
		MaxAttempts:  5,
	}
	defer w.Close()
	const chunk = 50000
	for len(msgs) > 0 {
		n := min(chunk, len(msgs))
		kms := make([]kafkago.Message, n)
		for i, m := range msgs[:n] {
			km := kafkago.Message{Key: m.Key, Value: m.Value, Time: m.Time}
			if m.Explicit {
				// Carried to the balancer in a header, which stays on the
				// message.
				km.Headers = append(km.Headers, kafkago.Header{Key: partitionHeader, Value: []byte(strconv.Itoa(m.Partition))})
			}
			for k, v := range m.Headers {
				km.Headers = append(km.Headers, kafkago.Header{Key: k, Value: []byte(v)})
			}
			kms[i] = km
		}
		if err := w.WriteMessages(ctx, kms...); err != nil {
			return fmt.Errorf("producing to %s: %w", topic, err)
		}
		msgs = msgs[n:]
	}
	return nil
}

const partitionHeader = "x-twice-test-partition"

// balancer sends a message with the partition header to that partition,
// one with a key to the key's hash, others round-robin.
type balancer struct{}

var (
	hash kafkago.Hash
	rr   kafkago.RoundRobin
)

func (balancer) Balance(msg kafkago.Message, partitions ...int) int {
	for _, h := range msg.Headers {
		if h.Key == partitionHeader {
			p, _ := strconv.Atoi(string(h.Value))
			return p
		}
	}
	if len(msg.Key) > 0 {
		return hash.Balance(msg, partitions...)
	}
	return rr.Balance(msg, partitions...)
}
