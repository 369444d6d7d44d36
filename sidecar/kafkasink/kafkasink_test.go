package kafkasink

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/twicehq/twice/internal/servicetest"
	"github.com/twicehq/twice/sidecar"
)

func revs(from, to uint64) []sidecar.Revision {
	var out []sidecar.Revision
	for seq := from; seq <= to; seq++ {
		fp := fmt.Sprintf("fp-%d", seq%7)
		out = append(out, sidecar.Revision{Seq: seq, Fingerprint: fp,
			Line: fmt.Appendf(nil, `{"seq":%d,"revision":1,"status":"firing","fingerprint":%q}`, seq, fp)})
	}
	return out
}

// TestSinkReadsBackWhatItPublished: after a crash between publishing and
// recording it, a new sink finds the revisions already in the topic, in
// every partition, and only those after the recorded seq.
func TestSinkReadsBackWhatItPublished(t *testing.T) {
	brokers := servicetest.KafkaBrokers(t)
	topic := servicetest.KafkaTopic(t, brokers, 3)
	ctx := context.Background()

	s := New(brokers, topic)
	held, err := s.Start(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 0 {
		t.Fatalf("empty topic holds %v", held)
	}
	if err := s.Publish(ctx, revs(1, 50)); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}

	for _, tc := range []struct {
		after uint64
		want  int
	}{{0, 50}, {20, 30}, {49, 1}, {50, 0}} {
		s2 := New(brokers, topic)
		held, err := s2.Start(ctx, tc.after)
		if err != nil {
			t.Fatal(err)
		}
		if len(held) != tc.want {
			t.Errorf("after %d: holds %d revisions, want %d", tc.after, len(held), tc.want)
		}
		for seq := tc.after + 1; seq <= 50; seq++ {
			if !held[seq] {
				t.Errorf("after %d: seq %d not found", tc.after, seq)
			}
		}
		s2.Shutdown(ctx)
	}
}

// TestSinkRetryAfterPartialPublishWritesOnce: a publish whose revisions
// go to two partitions, of which the broker takes one and refuses the
// other (a revision larger than the topic's max.message.bytes), fails
// having written part of itself; the retries, one that fails the same
// way and one that succeeds with later revisions added, leave every
// revision in the topic exactly once.
func TestSinkRetryAfterPartialPublishWritesOnce(t *testing.T) {
	brokers := servicetest.KafkaBrokers(t)
	topic := servicetest.KafkaTopic(t, brokers, 2)
	ctx := context.Background()

	// Fingerprints the sink's balancer sends to partition 0 and to 1.
	var fps [2][]string
	for i := 0; len(fps[0]) < 3 || len(fps[1]) < 3; i++ {
		fp := fmt.Sprintf("fp-%d", i)
		p := (&kafka.Hash{}).Balance(kafka.Message{Key: []byte(fp)}, 0, 1)
		fps[p] = append(fps[p], fp)
	}
	// Seqs 1..12 alternate between the partitions, even ones to 0; seq 4
	// is too large for the topic's limit, the others are small.
	var all []sidecar.Revision
	for seq := uint64(1); seq <= 12; seq++ {
		fp := fps[seq%2][seq%3]
		pad := ""
		if seq == 4 {
			pad = strings.Repeat("x", 4000)
		}
		all = append(all, sidecar.Revision{Seq: seq, Fingerprint: fp,
			Line: fmt.Appendf(nil, `{"seq":%d,"revision":1,"status":"firing","fingerprint":%q,"pad":%q}`, seq, fp, pad)})
	}

	s := New(brokers, topic)
	if _, err := s.Start(ctx, 0); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(ctx)
	setMaxMessageBytes(t, brokers, topic, "2000")
	for try := 1; try <= 2; try++ {
		err := s.Publish(ctx, all[:10])
		if err == nil {
			t.Fatalf("publish %d with a revision above max.message.bytes succeeded", try)
		}
		// The first writes the odd seqs and says so; the second is given
		// them again and sends only the even ones, all refused.
		if said := strings.Contains(err.Error(), "5 of 10 revisions written"); said != (try == 1) {
			t.Errorf("publish %d: error %q", try, err)
		}
		// The partial failure happened: the odd seqs (partition 1) are
		// in, each once, the even ones (partition 0, with seq 4) are not.
		got := topicSeqs(t, brokers, topic)
		for seq := uint64(1); seq <= 10; seq++ {
			want := 0
			if seq%2 == 1 {
				want = 1
			}
			if got[seq] != want {
				t.Fatalf("after failed publish %d: seq %d is in the topic %d times, want %d (topic: %v)", try, seq, got[seq], want, got)
			}
		}
	}
	setMaxMessageBytes(t, brokers, topic, "")
	if err := s.Publish(ctx, all); err != nil {
		t.Fatal(err)
	}
	got := topicSeqs(t, brokers, topic)
	for seq := uint64(1); seq <= 12; seq++ {
		if got[seq] != 1 {
			t.Errorf("seq %d is in the topic %d times, want once", seq, got[seq])
		}
	}
	if len(got) != 12 {
		t.Errorf("topic holds %d seqs, want 12: %v", len(got), got)
	}
	// A publish after a success writes what it is given, without reading
	// back: the sink skips only after a failure.
	if err := s.Publish(ctx, revs(13, 13)); err != nil {
		t.Fatal(err)
	}
	if n := topicSeqs(t, brokers, topic)[13]; n != 1 {
		t.Errorf("seq 13 is in the topic %d times, want once", n)
	}
}

// setMaxMessageBytes sets topic's max.message.bytes, or removes it (back
// to the broker's default) when v is "".
func setMaxMessageBytes(t *testing.T, brokers []string, topic, v string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	op := kafka.ConfigOperationSet
	if v == "" {
		op = kafka.ConfigOperationDelete
	}
	client := &kafka.Client{Addr: kafka.TCP(brokers...)}
	resp, err := client.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{
		Resources: []kafka.IncrementalAlterConfigsRequestResource{{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
			Configs: []kafka.IncrementalAlterConfigsRequestConfig{{Name: "max.message.bytes", Value: v, ConfigOperation: op}},
		}},
	})
	if err == nil && len(resp.Resources) == 1 {
		err = resp.Resources[0].Error
	}
	if err != nil {
		t.Fatalf("topic %s: setting max.message.bytes to %q: %v", topic, v, err)
	}
	// The broker applies the change after it answers: wait until it
	// describes the topic with it, or a publish may still see the old
	// limit.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		d, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"max.message.bytes"}}}})
		if err == nil && len(d.Resources) == 1 && d.Resources[0].Error == nil && len(d.Resources[0].ConfigEntries) == 1 {
			e := d.Resources[0].ConfigEntries[0]
			const topicConfig = 1 // ConfigSource DYNAMIC_TOPIC_CONFIG
			if (v != "" && e.ConfigValue == v) || (v == "" && e.ConfigSource != topicConfig) {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("topic %s: max.message.bytes not %q after 30s (last: %+v, %v)", topic, v, d, err)
		case <-tick.C:
		}
	}
}

// topicSeqs reads every partition of topic to its end and counts the
// messages of each seq.
func topicSeqs(t *testing.T, brokers []string, topic string) map[uint64]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kafka.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		t.Fatal(err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]int{}
	for _, p := range parts {
		pc, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		first, last, err := pc.ReadOffsets()
		pc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if first == last {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p.ID, MaxWait: 100 * time.Millisecond})
		if err := r.SetOffset(first); err != nil {
			t.Fatal(err)
		}
		for off := first; off < last; {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("partition %d at offset %d of %d: %v", p.ID, off, last, err)
			}
			off = m.Offset + 1
			seq, ok := messageSeq(m)
			if !ok {
				t.Fatalf("partition %d offset %d: no seq in %q", p.ID, m.Offset, m.Value)
			}
			got[seq]++
		}
		r.Close()
	}
	return got
}
