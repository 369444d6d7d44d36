package kafka

import (
	"context"
	"fmt"

	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/internal/kafkasec"
	"github.com/twicehq/twice/sources"
)

// Factory is the source factory of type kafka (sources.HistoryFactory):
// its settings are config.KafkaSource, decoded by config.DecodeKafka.
type Factory struct{}

var _ sources.HistoryFactory = Factory{}

// Type returns "kafka".
func (Factory) Type() string { return config.SourceKafka }

// DecodeConfig decodes the keys of spec §3.1 for kafka into a
// *config.KafkaSource.
func (Factory) DecodeConfig(m *config.SourceMapping) config.SourceSettings {
	return config.DecodeKafka(m)
}

// NewStream returns a Stream over a Consumer of src.
func (Factory) NewStream(src config.Source, opts sources.StreamOptions) (sources.Stream, error) {
	// The certificates and the password are read here, so that a path
	// or a variable that is wrong stops the watch at its start.
	sec, err := kafkasec.Load(src.Kafka.TLS, src.Kafka.SASL)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", src.Name, err)
	}
	c, err := NewConsumer(src, ConsumerOptions{
		Security:           sec,
		DeadLetterMaxBytes: opts.DeadLetterMaxBytes,
		OnError: func(tp TopicPartition, err error) {
			opts.Logf("source %s %s: %v (retrying)", src.Name, tp, err)
		},
	})
	if err != nil {
		return nil, err
	}
	return NewStream(src.Name, c), nil
}

// NewCollectors returns one collector per partition of src's topics,
// each reading from opts.Since (or the start) to the partition's end as
// of its Start.
func (Factory) NewCollectors(ctx context.Context, src config.Source, opts sources.CollectOptions) ([]collectors.Collector, error) {
	sec, err := kafkasec.Load(src.Kafka.TLS, src.Kafka.SASL)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", src.Name, err)
	}
	tps, err := Partitions(ctx, src.Kafka.Brokers, src.Kafka.Topics, sec)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", src.Name, err)
	}
	cols, _, err := NewRangeCollectors(src, tps, RangeOptions{From: opts.Since, DeadLetterMaxBytes: opts.DeadLetterMaxBytes, Security: sec})
	return cols, err
}
