package kafka

import (
	"context"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/twicehq/twice/internal/kafkaprod"
)

// TestConsumerHealthWhileFetchesFail: when the partitions can no longer
// be fetched (here the topic is deleted under the consumer, on the real
// broker), the consumer keeps retrying, Poll does not fail, and Health
// names the failing partitions and the error.
func TestConsumerHealthWhileFetchesFail(t *testing.T) {
	brokers := kafkaBrokers(t)
	topic := kafkaTopic(t, brokers, 2)
	produce(t, brokers, topic, []kafkaprod.Message{event(1, 1), event(2, 2)})
	errs := make(chan error, 100)
	c, err := NewConsumer(kafkaSource(brokers, topic, kafkaGroup(t)), ConsumerOptions{
		FetchWait: 100 * time.Millisecond,
		OnError: func(_ TopicPartition, err error) {
			select {
			case errs <- err:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	defer c.Shutdown(ctx)
	if err := c.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	pollAll(t, c, 2)
	if err := c.Health(); err != nil {
		t.Fatalf("Health while fetching: %v", err)
	}

	client := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 10 * time.Second}
	if _, err := client.DeleteTopics(ctx, &kafkago.DeleteTopicsRequest{Topics: []string{topic}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-errs:
	case <-time.After(30 * time.Second):
		t.Fatal("no failed fetch within 30s of deleting the topic")
	}
	deadline := time.Now().Add(30 * time.Second)
	for c.Health() == nil {
		if time.Now().After(deadline) {
			t.Fatal("Health stayed nil while fetches failed")
		}
		if _, err := c.Poll(ctx, 10*time.Millisecond); err != nil {
			t.Fatalf("Poll while fetches fail: %v (they are retried)", err)
		}
	}
	if h := c.Health().Error(); !strings.Contains(h, "of 2 partitions failing ("+topic+"[") {
		t.Errorf("Health = %q, want the failing partitions named", h)
	}
}
