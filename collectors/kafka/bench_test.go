package kafka

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/twicehq/twice/internal/kafkaprod"
)

const (
	benchTopic      = "twice-bench-consumer-6p-1m"
	benchPartitions = 6
	benchEvents     = 1_000_000
)

// benchEvent is a normalized event of about 200 bytes.
func benchEvent(i int) kafkaprod.Message {
	j := i / 5
	kinds := [...]string{"job.enqueued", "job.started", "effect", "job.succeeded", "state"}
	var v string
	switch k := kinds[i%5]; k {
	case "effect":
		v = fmt.Sprintf(`{"id":"e-%08d","ts":%d,"kind":"effect","queue":"emails","job_type":"SendReceipt","job_id":"j-%07d","attempt":1,"effect":"email.sent","effect_key":"receipt/payment:%07d"}`, i, 1700000000000+i, j, j)
	case "state":
		v = fmt.Sprintf(`{"id":"e-%08d","ts":%d,"kind":"state","queue":"emails","job_type":"SendReceipt","job_id":"j-%07d","entity":"order:%07d","seq":%d,"terminal":false,"attrs":{"n":1}}`, i, 1700000000000+i, j, j, i)
	default:
		v = fmt.Sprintf(`{"id":"e-%08d","ts":%d,"kind":"%s","queue":"emails","job_type":"SendReceipt","job_id":"j-%07d","attempt":1,"key":"payment:%07d","entity":"order:%07d"}`, i, 1700000000000+i, k, j, j, j)
	}
	return kafkaprod.Message{Key: fmt.Appendf(nil, "j-%07d", j), Value: []byte(v)}
}

// benchTopicReady makes sure the benchmark topic holds benchEvents events,
// producing them on first use (it is kept between runs), and returns the
// end offset of each partition.
func benchTopicReady(b *testing.B, brokers []string) map[TopicPartition]int64 {
	b.Helper()
	ctx := context.Background()
	client := newClient(brokers, nil)
	tps := make([]TopicPartition, benchPartitions)
	for p := range tps {
		tps[p] = TopicPartition{benchTopic, p}
	}
	ends, err := listOffsets(ctx, client, tps, kafkago.LastOffset)
	total := int64(0)
	for _, e := range ends {
		total += e
	}
	if err == nil && total == benchEvents {
		return ends
	}
	if err == nil {
		_, _ = client.DeleteTopics(ctx, &kafkago.DeleteTopicsRequest{Topics: []string{benchTopic}})
		time.Sleep(2 * time.Second) // topic deletion is asynchronous
	}
	if err := kafkaprod.CreateTopic(ctx, brokers, benchTopic, benchPartitions); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	msgs := make([]kafkaprod.Message, benchEvents)
	size := 0
	for i := range msgs {
		msgs[i] = benchEvent(i)
		size += len(msgs[i].Value)
	}
	produce(b, brokers, benchTopic, msgs)
	b.Logf("produced %d events (%d bytes of values on average) in %v", benchEvents, size/benchEvents, time.Since(start))
	if ends, err = listOffsets(ctx, client, tps, kafkago.LastOffset); err != nil {
		b.Fatal(err)
	}
	return ends
}

// BenchmarkConsumer reads the whole 6-partition topic with Consumer.Poll
// (fetch and map to events) and, in the same run, with bare kafka-go
// Readers (one per partition, no mapping), and reports both rates and
// their ratio.
func BenchmarkConsumer(b *testing.B) {
	brokers := kafkaBrokers(b)
	ends := benchTopicReady(b, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var bareTime, twiceTime time.Duration
	b.ResetTimer()
	for range b.N {
		// Bare kafka-go.
		start := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var bare int64
		for tp, end := range ends {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := kafkago.NewReader(kafkago.ReaderConfig{
					Brokers: brokers, Topic: tp.Topic, Partition: tp.Partition,
					MinBytes: 1, MaxBytes: DefaultFetchBytes, MaxWait: 500 * time.Millisecond,
					QueueCapacity: 4096,
				})
				defer r.Close()
				n := int64(0)
				for n < end {
					m, err := r.ReadMessage(ctx)
					if err != nil {
						b.Error(err)
						return
					}
					n = m.Offset + 1
				}
				mu.Lock()
				bare += n
				mu.Unlock()
			}()
		}
		wg.Wait()
		bareTime += time.Since(start)
		if bare != benchEvents {
			b.Fatalf("bare read %d messages", bare)
		}

		// twice's Consumer.
		start = time.Now()
		src := kafkaSource(brokers, benchTopic, kafkaGroup(b))
		c, err := NewConsumer(src, ConsumerOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Start(ctx, nil); err != nil {
			b.Fatal(err)
		}
		n := 0
		for n < benchEvents {
			recs, err := c.Poll(ctx, time.Second)
			if err != nil {
				b.Fatal(err)
			}
			for i := range recs {
				if recs[i].Malformed != nil {
					b.Fatal(recs[i].Malformed)
				}
			}
			n += len(recs)
		}
		twiceTime += time.Since(start)
		_ = c.Shutdown(ctx)
	}
	b.StopTimer()
	total := float64(b.N) * benchEvents
	twiceRate := total / twiceTime.Seconds()
	bareRate := total / bareTime.Seconds()
	b.ReportMetric(twiceRate, "events/s")
	b.ReportMetric(bareRate, "bare-msgs/s")
	b.ReportMetric(twiceRate/bareRate, "ratio")
	b.ReportMetric(0, "ns/op")
}
