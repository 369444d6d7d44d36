package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/internal/kafkaprod"
	"github.com/twicehq/twice/internal/watchtest"
	"github.com/twicehq/twice/sources"
)

func TestMain(m *testing.M) { os.Exit(watchtest.Main(m)) }

// dbzTopics creates a topic of the test's own for each topic of the
// recorded messages; it returns the topic names by recorded name, and the
// messages of each, keyed as Debezium keys them.
func dbzTopics(t *testing.T, brokers []string, file string) (map[string]string, map[string][]kafkaprod.Message) {
	t.Helper()
	msgs, _ := dbzMessages(t, file)
	topics := map[string]string{}
	byTopic := map[string][]kafkaprod.Message{}
	for _, m := range msgs {
		if _, ok := topics[m.Topic]; !ok {
			topics[m.Topic] = kafkaTopic(t, brokers, 2)
		}
		byTopic[m.Topic] = append(byTopic[m.Topic], kafkaprod.Message{Key: m.Key, Value: m.Value})
	}
	return topics, byTopic
}

// produceRecorded produces the recorded messages of the named topics.
func produceRecorded(t *testing.T, brokers []string, topics map[string]string, msgs map[string][]kafkaprod.Message, names ...string) {
	t.Helper()
	for _, name := range names {
		produce(t, brokers, topics[name], msgs[name])
	}
}

// dbzConfig is a twice.yaml reading the ledger and the orders as Debezium
// captured them; the transaction topic and the heartbeats are read too, as
// a user listing every topic of the connector would, and skipped.
func dbzConfig(t *testing.T, brokers []string, topics map[string]string, prefix, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`sources:
  - name: ledger
    type: kafka
    brokers: [%[1]s]
    topics: [%[2]s, %[4]s]
    format: debezium
    debezium:
      table: ledger
      effect: ledger.insert
      effect_key: '"charge/" + row.payment_id'
      job_id: row.job_id
      entity: '"order:" + string(row.order_id)'
  - name: orders
    type: kafka
    brokers: [%[1]s]
    topics: [%[3]s, %[5]s]
    format: debezium
    debezium:
      table: orders
      entity: '"order:" + string(row.id)'
      state: {terminal: 'row.status == "refunded"'}
%[6]s`, strings.Join(brokers, ", "), topics[prefix+".public.ledger"], topics[prefix+".public.orders"],
		topics[prefix+".transaction"], topics["__debezium-heartbeat."+prefix], extra)
	path := filepath.Join(t.TempDir(), "twice.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// twice audit of Debezium topics on the real Kafka finds the ledger row
// inserted twice for one payment and the charge on an order after its
// refund, and nothing else: snapshot reads, the delete, its tombstone,
// transaction markers and heartbeats are skipped, none malformed.
func TestDebeziumAuditCLI(t *testing.T) {
	brokers := kafkaBrokers(t)
	bin := watchtest.Build(t)
	for _, tc := range []struct {
		file, prefix string
		lsns         [4]string // of the inserts of p-7, the refund of order 43, the insert of p-9
	}{
		{"postgres.jsonl", "shop", [4]string{"24023128", "24023456", "24023800", "24024100"}},
		{"postgres-schemas.jsonl", "shop", [4]string{"24023128", "24023456", "24023800", "24024100"}},
		// What the connector really wrote (scripts/debezium-record).
		{"recorded.jsonl", "shop", [4]string{"26671448", "26671664", "26671880", "26672064"}},
		{"recorded-schemas.jsonl", "shops", [4]string{"26671448", "26671664", "26671880", "26672064"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			p := tc.prefix
			topics, msgs := dbzTopics(t, brokers, tc.file)
			produceRecorded(t, brokers, topics, msgs, p+".public.orders", p+".public.ledger", p+".transaction", "__debezium-heartbeat."+p)
			cfg := dbzConfig(t, brokers, topics, p, "")
			cmd := exec.Command(bin, "audit", "-c", cfg, "--format", "json")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("twice audit: %v (want exit 1: findings)\n%s", err, stderr.String())
			}
			var rep struct {
				Summary struct {
					Events, Malformed, Effects int
				}
				Findings []struct {
					Detector, Subject, Cause string
					Jobs, Events             []string
				}
			}
			if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
				t.Fatalf("%v\n%s", err, stdout.String())
			}
			var got []string
			for _, f := range rep.Findings {
				got = append(got, fmt.Sprintf("%s %s cause=%s jobs=%v events=%v", f.Detector, f.Subject, f.Cause, f.Jobs, f.Events))
			}
			slices.Sort(got)
			l := tc.lsns
			want := []string{
				fmt.Sprintf("duplicate-effect charge/p-7 cause=redelivery jobs=[j-1] events=[%[1]s/public.ledger@%[2]s/c#effect %[1]s/public.ledger@%[3]s/c#effect]", p, l[0], l[1]),
				fmt.Sprintf("effect-after-terminal charge/p-9 cause= jobs=[j-2] events=[%[1]s/public.orders@%[2]s/u#state %[1]s/public.ledger@%[3]s/c#effect]", p, l[2], l[3]),
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			// 3 inserts and 4 changes of orders; 8 messages skipped.
			if s := rep.Summary; s.Events != 7 || s.Effects != 3 || s.Malformed != 0 {
				t.Errorf("summary %+v, want 7 events, 3 effects, none malformed", s)
			}
		})
	}
}

// twice watch of what the connector wrote counts what it skips in
// twice_skipped_total and finds the same. The orders are produced and
// taken first, so the charges arrive after the refund whatever the
// partitions' pace (late events are audited in arrival order).
func TestDebeziumWatch(t *testing.T) {
	brokers := kafkaBrokers(t)
	bin := watchtest.Build(t)
	topics, msgs := dbzTopics(t, brokers, "recorded.jsonl")
	dir := t.TempDir()
	cfg := dbzConfig(t, brokers, topics, "shop", fmt.Sprintf("watch: {listen: 127.0.0.1:0, state_dir: %s, findings: [], idle_timeout: 1s}\n", filepath.Join(dir, "state")))
	w := watchtest.Start(t, bin, cfg, filepath.Join(dir, "watch.log"), 2)
	produceRecorded(t, brokers, topics, msgs, "shop.public.orders", "__debezium-heartbeat.shop")
	// orders: its 4 changes are states, the 2 heartbeats are skipped.
	w.WaitFor(t, "the orders taken", func() bool {
		m := w.Metrics()
		return m["twice_events_total"] >= 4 && m["twice_skipped_total"] >= 2
	})
	produceRecorded(t, brokers, topics, msgs, "shop.public.ledger", "shop.transaction")
	// ledger: its 6 messages and the 12 transaction markers, but for the
	// 3 inserts, are skipped.
	w.WaitFor(t, "every message read", func() bool {
		m := w.Metrics()
		return m["twice_events_total"] >= 7 && m["twice_skipped_total"] >= 17
	})
	m := w.Metrics()
	if m["twice_events_total"] != 7 || m["twice_skipped_total"] != 17 || m["twice_malformed_total"] != 0 {
		t.Errorf("events %v, skipped %v, malformed %v; want 7, 17, 0", m["twice_events_total"], m["twice_skipped_total"], m["twice_malformed_total"])
	}
	want := []string{"duplicate-effect charge/p-7 cause=redelivery jobs=j-1", "effect-after-terminal charge/p-9 cause= jobs=j-2"}
	w.WaitFor(t, "two findings", func() bool { return len(w.Findings().Keys(nil)) >= len(want) })
	if got := w.Findings().Keys(nil); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	w.Stop(t)
}

// A stream resumed within a message (after the first of its events) reads
// the message again from its start: the event already taken comes at a
// position the sidecar passes over, the others after it; the group is
// committed the message's own offset, where it must be read again.
func TestStreamResumesWithinAMessage(t *testing.T) {
	brokers := kafkaBrokers(t)
	topic := kafkaTopic(t, brokers, 1)
	group := kafkaGroup(t)
	y := fmt.Sprintf(`sources:
  - name: src
    type: kafka
    brokers: [%s]
    topics: [%s]
    group: %s
    format: map
    map:
      - {ts: value.at, kind: '"effect"', effect: '"e"', effect_key: '"k/" + string(value.n)'}
      - {ts: value.at, kind: '"state"', entity: '"x/" + string(value.n)', seq: value.n}
`, strings.Join(brokers, ","), topic, group)
	c, err := config.Parse("twice.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []kafkaprod.Message
	for n := range 3 {
		msgs = append(msgs, kafkaprod.Message{Value: fmt.Appendf(nil, `{"n":%d,"at":"2026-11-24T10:00:0%dZ"}`, n, n)})
	}
	produce(t, brokers, topic, msgs)
	cons, err := NewConsumer(c.Sources[0], ConsumerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := NewStream("src", cons)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lane := topic + "/0"
	resume := sources.Position("1.1") // offset 1, its first event taken
	if err := s.Start(ctx, map[string]sources.Position{lane: resume}); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	var got []string
	for len(got) < 4 && ctx.Err() == nil {
		recs, err := s.Poll(ctx, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			got = append(got, fmt.Sprintf("%s %s %v", r.Position, r.Event.Kind, s.Before(lane, resume, r.Position)))
		}
	}
	want := []string{"1.1 effect false", "2 state true", "2.1 effect true", "3 state true"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Fatalf("records %v, want %v", got, want)
	}
	if err := s.Commit(ctx, map[string]sources.Position{lane: "2.1"}); err != nil {
		t.Fatal(err)
	}
	committed, err := OffsetFetch(ctx, newClient(brokers, nil), group, []TopicPartition{{topic, 0}})
	if err != nil || committed[TopicPartition{topic, 0}] != 2 {
		t.Errorf("committed %v %v, want offset 2", committed, err)
	}
}
