package servicetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// EnvKafkaBrokers holds the comma-separated host:port of the test brokers;
// `scripts/services up kafka` prints its export.
const EnvKafkaBrokers = "TWICE_KAFKA_BROKERS"

// kafkaTimeout bounds each admin step: create, wait for leaders, delete.
const kafkaTimeout = 30 * time.Second

// KafkaBrokers returns the brokers of TWICE_KAFKA_BROKERS. When it is unset
// the test is skipped, or fails under TWICE_REQUIRE_SERVICES=1.
func KafkaBrokers(tb testing.TB) []string {
	tb.Helper()
	brokers := addrs(os.Getenv(EnvKafkaBrokers))
	if len(brokers) == 0 {
		unavailable(tb, "kafka", EnvKafkaBrokers)
	}
	return brokers
}

// KafkaTopic creates a topic of its own for tb, named after the test, with
// the given number of partitions (replication factor 1), waits until every
// partition has a leader, and deletes it when tb ends.
func KafkaTopic(tb testing.TB, brokers []string, partitions int) string {
	tb.Helper()
	if partitions < 1 {
		tb.Fatalf("servicetest.KafkaTopic: %d partitions", partitions)
	}
	topic := uniqueName(tb)
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}

	ctx, cancel := context.WithTimeout(context.Background(), kafkaTimeout)
	defer cancel()
	res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}},
	})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		tb.Fatalf("servicetest: create topic %s on %v: %v", topic, brokers, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), kafkaTimeout)
		defer cancel()
		res, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
		if err == nil {
			err = res.Errors[topic]
		}
		if err != nil && !errors.Is(err, kafka.UnknownTopicOrPartition) {
			tb.Errorf("servicetest: delete topic %s: %v", topic, err)
		}
	})

	if err := waitFor(ctx, func() error { return leadersReady(ctx, client, topic, partitions) }); err != nil {
		tb.Fatalf("servicetest: topic %s: %v", topic, err)
	}
	return topic
}

// KafkaGroup returns a consumer group id of tb's own.
func KafkaGroup(tb testing.TB) string {
	tb.Helper()
	return uniqueName(tb)
}

// leadersReady is nil once topic has its partitions and each partition's
// leader serves it. A leader in the metadata is not enough: the broker may
// answer Not Leader For Partition for a moment after that, so every
// partition must also answer ListOffsets, which its leader serves.
func leadersReady(ctx context.Context, client *kafka.Client, topic string, partitions int) error {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return err
	}
	if len(md.Topics) != 1 {
		return fmt.Errorf("metadata has %d topics, want 1", len(md.Topics))
	}
	t := md.Topics[0]
	if t.Error != nil {
		return t.Error
	}
	if len(t.Partitions) != partitions {
		return fmt.Errorf("%d of %d partitions", len(t.Partitions), partitions)
	}
	reqs := make([]kafka.OffsetRequest, 0, partitions)
	for _, p := range t.Partitions {
		if p.Error != nil {
			return fmt.Errorf("partition %d: %w", p.ID, p.Error)
		}
		if p.Leader.Host == "" {
			return fmt.Errorf("partition %d has no leader", p.ID)
		}
		reqs = append(reqs, kafka.FirstOffsetOf(p.ID))
	}
	offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return err
	}
	if got := len(offs.Topics[topic]); got != partitions {
		return fmt.Errorf("offsets of %d of %d partitions", got, partitions)
	}
	for _, p := range offs.Topics[topic] {
		if p.Error != nil {
			return fmt.Errorf("partition %d: %w", p.Partition, p.Error)
		}
	}
	return nil
}

// waitFor calls check until it returns nil, or returns its last error when
// ctx ends.
func waitFor(ctx context.Context, check func() error) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// The variables `scripts/services up kafka` exports for the broker's
// secured listeners (scripts/services.d/kafka/security.sh).
const (
	EnvKafkaTLSBrokers     = "TWICE_KAFKA_TLS_BROKERS"
	EnvKafkaMTLSBrokers    = "TWICE_KAFKA_MTLS_BROKERS"
	EnvKafkaSASLSSLBrokers = "TWICE_KAFKA_SASL_SSL_BROKERS"
	EnvKafkaSASLBrokers    = "TWICE_KAFKA_SASL_BROKERS"
	EnvKafkaCAFile         = "TWICE_KAFKA_CA_FILE"
	EnvKafkaClientCert     = "TWICE_KAFKA_CLIENT_CERT"
	EnvKafkaClientKey      = "TWICE_KAFKA_CLIENT_KEY"
	EnvKafkaScramUser      = "TWICE_KAFKA_SCRAM_USER"
	EnvKafkaScramPassword  = "TWICE_KAFKA_SCRAM_PASSWORD"
	EnvKafkaPlainUser      = "TWICE_KAFKA_PLAIN_USER"
	EnvKafkaPlainPassword  = "TWICE_KAFKA_PLAIN_PASSWORD"
)

// KafkaSecure is what connects to the test broker's secured listeners:
// the same cluster as KafkaBrokers, so a topic KafkaTopic makes is read
// and written on every listener.
type KafkaSecure struct {
	// TLSBrokers: TLS with the server's certificate only; MTLSBrokers:
	// TLS that requires a client certificate; SASLSSLBrokers: SASL over
	// TLS; SASLBrokers: SASL without TLS.
	TLSBrokers, MTLSBrokers, SASLSSLBrokers, SASLBrokers []string
	// CAFile signed the brokers' certificate and ClientCert (PEM files);
	// ClientKey is the client's key.
	CAFile, ClientCert, ClientKey string
	// ScramUser has SCRAM-SHA-256 and SCRAM-SHA-512 credentials;
	// PlainUser is a PLAIN user.
	ScramUser, ScramPassword, PlainUser, PlainPassword string
}

// KafkaSecurity returns the secured listeners of the test broker. When
// they are not exported the test is skipped, or fails under
// TWICE_REQUIRE_SERVICES=1.
func KafkaSecurity(tb testing.TB) KafkaSecure {
	tb.Helper()
	get := func(env string) string {
		v := os.Getenv(env)
		if v == "" {
			unavailable(tb, "kafka", env)
		}
		return v
	}
	return KafkaSecure{
		TLSBrokers:     addrs(get(EnvKafkaTLSBrokers)),
		MTLSBrokers:    addrs(get(EnvKafkaMTLSBrokers)),
		SASLSSLBrokers: addrs(get(EnvKafkaSASLSSLBrokers)),
		SASLBrokers:    addrs(get(EnvKafkaSASLBrokers)),
		CAFile:         get(EnvKafkaCAFile),
		ClientCert:     get(EnvKafkaClientCert),
		ClientKey:      get(EnvKafkaClientKey),
		ScramUser:      get(EnvKafkaScramUser),
		ScramPassword:  get(EnvKafkaScramPassword),
		PlainUser:      get(EnvKafkaPlainUser),
		PlainPassword:  get(EnvKafkaPlainPassword),
	}
}
