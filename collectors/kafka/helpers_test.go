package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twicehq/twice/internal/kafkaprod"
	"github.com/twicehq/twice/internal/servicetest"
)

// The real broker, a topic and a group of the test's own: see
// internal/servicetest (skips with the reason when TWICE_KAFKA_BROKERS is
// unset, fails under TWICE_REQUIRE_SERVICES=1).
var (
	kafkaBrokers = servicetest.KafkaBrokers
	kafkaTopic   = servicetest.KafkaTopic
	kafkaGroup   = servicetest.KafkaGroup
)

func produce(tb testing.TB, brokers []string, topic string, msgs []kafkaprod.Message) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := kafkaprod.Produce(ctx, brokers, topic, msgs); err != nil {
		tb.Fatal(err)
	}
}
