package servicetest

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestKafkaTopic runs the helpers against the real broker: a fresh topic of
// three partitions takes a message and gives it back to a fresh group, and
// is gone once its test ends.
func TestKafkaTopic(t *testing.T) {
	brokers := KafkaBrokers(t)
	var topic string
	t.Run("produce and consume", func(t *testing.T) {
		topic = KafkaTopic(t, brokers, 3)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()

		client := &kafka.Client{Addr: kafka.TCP(brokers...)}
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(md.Topics[0].Partitions); got != 3 {
			t.Fatalf("topic %s has %d partitions, want 3", topic, got)
		}

		w := &kafka.Writer{
			Addr:         kafka.TCP(brokers...),
			Topic:        topic,
			Balancer:     &kafka.Hash{},
			RequiredAcks: kafka.RequireAll,
			BatchTimeout: 10 * time.Millisecond,
		}
		defer w.Close()
		if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("job-1"), Value: []byte(`{"kind":"effect"}`)}); err != nil {
			t.Fatalf("produce: %v", err)
		}

		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:     brokers,
			Topic:       topic,
			GroupID:     KafkaGroup(t),
			StartOffset: kafka.FirstOffset,
			MaxWait:     100 * time.Millisecond,
		})
		defer r.Close()
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("consume: %v", err)
		}
		if string(m.Key) != "job-1" || string(m.Value) != `{"kind":"effect"}` {
			t.Fatalf("read back key %q value %q", m.Key, m.Value)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), kafkaTimeout)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(brokers...)}
	err := waitFor(ctx, func() error {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil {
			return err
		}
		if len(md.Topics) == 1 && errors.Is(md.Topics[0].Error, kafka.UnknownTopicOrPartition) {
			return nil
		}
		return errors.New("topic still listed")
	})
	if err != nil {
		t.Fatalf("topic %s after its test ended: %v", topic, err)
	}
}

func TestUniqueName(t *testing.T) {
	a, b := KafkaGroup(t), KafkaGroup(t)
	if a == b {
		t.Fatalf("two groups named %s", a)
	}
	valid := regexp.MustCompile(`^[A-Za-z0-9_-]+-[0-9a-f]{12}$`)
	t.Run("odd/name with spaces.and:dots "+strings.Repeat("x", 120), func(t *testing.T) {
		name := uniqueName(t)
		if !valid.MatchString(name) || len(name) > 120 {
			t.Fatalf("name %q: want [A-Za-z0-9_-]{1,100}-<12 hex>", name)
		}
		if !strings.HasPrefix(name, "TestUniqueName_odd_name_with_spaces_and_dots_x") {
			t.Fatalf("name %q does not start with the test's name", name)
		}
	})
}

func TestAddrs(t *testing.T) {
	got := addrs(" 127.0.0.1:1 ,, 127.0.0.1:2,")
	if strings.Join(got, "|") != "127.0.0.1:1|127.0.0.1:2" {
		t.Fatalf("addrs = %q", got)
	}
	if got := addrs(" "); len(got) != 0 {
		t.Fatalf("addrs(blank) = %q", got)
	}
}

// recorder is a testing.TB that records Skipf and Fatalf; both end the
// goroutine they run on, as the real ones do.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestKafkaBrokersUnset: without TWICE_KAFKA_BROKERS a test skips and says
// how to start Kafka; with TWICE_REQUIRE_SERVICES=1 it fails instead.
func TestKafkaBrokersUnset(t *testing.T) {
	for _, require := range []string{"", "1"} {
		t.Setenv(EnvKafkaBrokers, "")
		t.Setenv(EnvRequire, require)
		r := &recorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			KafkaBrokers(r)
			t.Errorf("require=%q: KafkaBrokers returned with no brokers", require)
		}()
		<-done
		got := r.skipped
		if require == "1" {
			got = r.failed
		}
		if !strings.Contains(got, `eval "$(scripts/services up kafka)"`) {
			t.Errorf("require=%q: skipped %q, failed %q; want the start command", require, r.skipped, r.failed)
		}
	}
	t.Setenv(EnvKafkaBrokers, "127.0.0.1:1, 127.0.0.1:2")
	if got := KafkaBrokers(t); len(got) != 2 || got[1] != "127.0.0.1:2" {
		t.Fatalf("KafkaBrokers = %q", got)
	}
}
