package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/audit"
	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/collectors/file"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/internal/kafkaprod"
	"github.com/twicehq/twice/twicetype"
)

func kafkaSource(brokers []string, topic, group string) config.Source {
	return config.Source{Name: "src", Type: config.SourceKafka, Kafka: &config.KafkaSource{
		Brokers: brokers, Topics: []string{topic}, Group: group, Format: config.FormatTwice, Start: config.StartEarliest,
	}}
}

func runAudit(tb testing.TB, cfg *config.Config, cols []collectors.Collector) *twicetype.Report {
	tb.Helper()
	eng := engine.New(audit.EngineOptions(cfg))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := engine.Run(ctx, eng, cols); err != nil {
		tb.Fatal(err)
	}
	return eng.Finish()
}

// comparable drops what names where an event was read: refs of events
// without id are file:line in one and source topic[p]:offset in the other.
func findingsOf(rep *twicetype.Report) []string {
	var out []string
	for _, f := range rep.Findings {
		var evs []string
		for _, e := range f.Events {
			if strings.Contains(e, ":") && (strings.Contains(e, ".jsonl:") || strings.Contains(e, "]:")) {
				e = "(no id)"
			}
			evs = append(evs, e)
		}
		d, _ := json.Marshal(f.Details)
		out = append(out, fmt.Sprintf("%s %s %s n=%d %d-%d jobs=%v events=%v cause=%s %s %s",
			f.Detector, f.Severity, f.Subject, f.Count, f.FirstTime, f.LastTime, f.Jobs, evs, f.Cause, f.Message, d))
	}
	return out
}

// TestRangeCollectorsMatchFile produces each scenario's events to a
// 3-partition topic, keyed by job, and checks that auditing the topic
// gives the findings of auditing the file.
func TestRangeCollectorsMatchFile(t *testing.T) {
	brokers := kafkaBrokers(t)
	dirs, _ := filepath.Glob("../../testdata/scenarios/*")
	ran := 0
	for _, dir := range dirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
		if len(files) == 0 {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			cfg := config.Default()
			if _, err := os.Stat(filepath.Join(dir, "twice.yaml")); err == nil {
				var err error
				if cfg, err = config.Load(filepath.Join(dir, "twice.yaml")); err != nil {
					t.Fatal(err)
				}
			}
			var fileCols []collectors.Collector
			var msgs []kafkaprod.Message
			for _, f := range files {
				fileCols = append(fileCols, file.New(f, file.Options{}))
				m, err := kafkaprod.Lines(f)
				if err != nil {
					t.Fatal(err)
				}
				msgs = append(msgs, m...)
			}
			want := runAudit(t, cfg, fileCols)
			topic := kafkaTopic(t, brokers, 3)
			produce(t, brokers, topic, msgs)

			src := kafkaSource(brokers, topic, kafkaGroup(t))
			tps, err := Partitions(context.Background(), brokers, []string{topic}, nil)
			if err != nil || len(tps) != 3 {
				t.Fatalf("Partitions = %v, %v", tps, err)
			}
			cols, stats, err := NewRangeCollectors(src, tps, RangeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got := runAudit(t, cfg, cols)
			if filepath.Base(dir) == "repeated-ids" {
				// The one deliberate difference: lines without id and with
				// equal content are one observation in a file, but two
				// messages at two offsets are two.
				if got.Summary.Events != want.Summary.Events+2 {
					t.Errorf("events from the topic %d, from the file %d; want 2 more", got.Summary.Events, want.Summary.Events)
				}
				return
			}
			if g, w := findingsOf(got), findingsOf(want); !slices.Equal(g, w) {
				t.Errorf("findings from the topic:\n%s\nfrom the file:\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
			}
			gs, ws := got.Summary, want.Summary
			if gs.Events != ws.Events || gs.Jobs != ws.Jobs || gs.Effects != ws.Effects || gs.Malformed != ws.Malformed || gs.Pending != ws.Pending {
				t.Errorf("summary from the topic %+v, from the file %+v", gs, ws)
			}
			if stats.Counts().Malformed != ws.Malformed {
				t.Errorf("stats count %d malformed, the file %d", stats.Counts().Malformed, ws.Malformed)
			}
		})
		ran++
	}
	if ran < 10 {
		t.Fatalf("only %d scenarios", ran)
	}
}

// event returns a normalized event line of job j.
func event(i, j int) kafkaprod.Message {
	v := fmt.Sprintf(`{"id":"e-%d","ts":%d,"kind":"job.started","queue":"q","job_type":"T","job_id":"j-%d","attempt":1}`, i, 1700000000000+i, j)
	return kafkaprod.Message{Key: fmt.Appendf(nil, "j-%d", j), Value: []byte(v)}
}

// pollAll polls until n records arrived.
func pollAll(tb testing.TB, c *Consumer, n int) []Record {
	tb.Helper()
	var recs []Record
	deadline := time.Now().Add(30 * time.Second)
	for len(recs) < n {
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d records after 30s", len(recs), n)
		}
		got, err := c.Poll(context.Background(), time.Second)
		if err != nil {
			tb.Fatal(err)
		}
		recs = append(recs, got...)
	}
	return recs
}

func TestConsumerResumeAndCommit(t *testing.T) {
	brokers := kafkaBrokers(t)
	topic := kafkaTopic(t, brokers, 3)
	var msgs []kafkaprod.Message
	for i := range 60 {
		msgs = append(msgs, event(i, i%7))
	}
	produce(t, brokers, topic, msgs)
	group := kafkaGroup(t)
	src := kafkaSource(brokers, topic, group)
	ctx := context.Background()

	c, err := NewConsumer(src, ConsumerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, nil); err != nil {
		t.Fatal("second Start:", err)
	}
	recs := pollAll(t, c, 60)
	if len(c.Partitions()) != 3 {
		t.Errorf("Partitions = %v", c.Partitions())
	}
	// Per partition, offsets in order from 0; the events of a job in order.
	next := map[TopicPartition]int64{}
	lastOfJob := map[string]int64{}
	for _, r := range recs {
		if r.Malformed != nil {
			t.Fatalf("malformed: %v", r.Malformed)
		}
		if r.Offset != next[r.TP] {
			t.Fatalf("%s: offset %d, want %d", r.TP, r.Offset, next[r.TP])
		}
		next[r.TP]++
		if r.Event.Time < lastOfJob[r.Event.JobID] {
			t.Errorf("job %s out of order", r.Event.JobID)
		}
		lastOfJob[r.Event.JobID] = r.Event.Time
		if want := "src " + r.TP.String(); r.Event.Source != want || r.Event.Line != r.Offset {
			t.Errorf("source %s:%d, want %s:%d", r.Event.Source, r.Event.Line, want, r.Offset)
		}
	}
	lag, err := c.Lag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for tp, l := range lag {
		if l != 0 {
			t.Errorf("lag of %s = %d", tp, l)
		}
	}
	// Commit then OffsetFetch.
	if err := c.Commit(ctx, next); err != nil {
		t.Fatal(err)
	}
	got, err := OffsetFetch(ctx, newClient(brokers, nil), group, c.Partitions())
	if err != nil {
		t.Fatal(err)
	}
	if !mapsEqual(got, next) {
		t.Errorf("committed %v, want %v", got, next)
	}
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal("second Shutdown:", err)
	}
	if _, err := c.Poll(ctx, time.Millisecond); err == nil {
		t.Error("Poll after Shutdown succeeded")
	}

	// Resume: partition 0 from offset 2 (the checkpoint wins), the others
	// from the group's commits minus what we move back.
	tp0 := TopicPartition{topic, 0}
	if next[tp0] < 3 {
		t.Fatalf("partition 0 has %d messages, the test needs 3", next[tp0])
	}
	back := map[TopicPartition]int64{}
	for tp, o := range next {
		back[tp] = o
	}
	tp1 := TopicPartition{topic, 1}
	back[tp1] = next[tp1] - 1
	if err := OffsetCommit(ctx, newClient(brokers, nil), group, back); err != nil {
		t.Fatal(err)
	}
	c2, _ := NewConsumer(src, ConsumerOptions{})
	defer c2.Shutdown(ctx)
	if err := c2.Start(ctx, map[TopicPartition]int64{tp0: 2}); err != nil {
		t.Fatal(err)
	}
	want := int(next[tp0]-2) + 1
	recs = pollAll(t, c2, want)
	if more, _ := c2.Poll(ctx, 300*time.Millisecond); len(more) > 0 {
		t.Errorf("%d more records than resumed", len(more))
	}
	for _, r := range recs {
		if r.TP == tp0 && r.Offset < 2 || r.TP == tp1 && r.Offset != next[tp1]-1 || r.TP.Partition == 2 {
			t.Errorf("resumed record %s@%d", r.TP, r.Offset)
		}
	}
}

func mapsEqual(a, b map[TopicPartition]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestConsumerStartLatestAndIdle(t *testing.T) {
	brokers := kafkaBrokers(t)
	topic := kafkaTopic(t, brokers, 2)
	produce(t, brokers, topic, []kafkaprod.Message{event(1, 1), event(2, 2)})
	src := kafkaSource(brokers, topic, kafkaGroup(t))
	src.Kafka.Start = config.StartLatest
	ctx := context.Background()
	c, _ := NewConsumer(src, ConsumerOptions{FetchWait: 100 * time.Millisecond})
	defer c.Shutdown(ctx)
	if err := c.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// Idle: an empty poll returns after its wait, not later.
	for range 3 {
		start := time.Now()
		recs, err := c.Poll(ctx, 200*time.Millisecond)
		if err != nil || len(recs) != 0 {
			t.Fatalf("Poll = %d records, %v; want none (start: latest)", len(recs), err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("an idle Poll took %v", d)
		}
	}
	produce(t, brokers, topic, []kafkaprod.Message{event(3, 3)})
	recs := pollAll(t, c, 1)
	if len(recs) != 1 || recs[0].Event.ID != "e-3" {
		t.Errorf("records = %+v", recs)
	}
}

func TestConsumerStartTime(t *testing.T) {
	brokers := kafkaBrokers(t)
	topic := kafkaTopic(t, brokers, 1)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var msgs []kafkaprod.Message
	for i := range 10 {
		m := event(i, 0)
		m.Time = base.Add(time.Duration(i) * time.Minute)
		msgs = append(msgs, m)
	}
	produce(t, brokers, topic, msgs)
	src := kafkaSource(brokers, topic, kafkaGroup(t))
	src.Kafka.Start, src.Kafka.StartTime = config.StartTime, base.Add(6*time.Minute)
	ctx := context.Background()
	c, _ := NewConsumer(src, ConsumerOptions{})
	defer c.Shutdown(ctx)
	if err := c.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	recs := pollAll(t, c, 4)
	if recs[0].Offset != 6 || recs[0].Event.ID != "e-6" {
		t.Errorf("first record %d %s, want offset 6", recs[0].Offset, recs[0].Event.ID)
	}

	// Audit from a time, to the end as of Start.
	tps, _ := Partitions(ctx, brokers, []string{topic}, nil)
	cols, _, err := NewRangeCollectors(src, tps, RangeOptions{From: base.Add(8 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	rep := runAudit(t, config.Default(), cols)
	if rep.Summary.Events != 2 {
		t.Errorf("audited %d events from minute 8, want 2", rep.Summary.Events)
	}
}

func TestConsumerDeadLetter(t *testing.T) {
	brokers := kafkaBrokers(t)
	topic := kafkaTopic(t, brokers, 1)
	var msgs []kafkaprod.Message
	for i := range 10 {
		if i%3 == 1 {
			msgs = append(msgs, kafkaprod.Message{Key: []byte("k"), Value: fmt.Appendf(nil, `{"ts":%d,"kind":"bogus"}`, i)})
			continue
		}
		msgs = append(msgs, event(i, 0))
	}
	produce(t, brokers, topic, msgs)
	dlPath := filepath.Join(t.TempDir(), "dead.jsonl")
	src := kafkaSource(brokers, topic, kafkaGroup(t))
	src.Kafka.DeadLetter = dlPath
	ctx := context.Background()
	c, _ := NewConsumer(src, ConsumerOptions{})
	if err := c.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	recs := pollAll(t, c, 10)
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	bad := 0
	for i, r := range recs {
		if r.Offset != int64(i) {
			t.Fatalf("record %d has offset %d", i, r.Offset)
		}
		if (r.Malformed != nil) != (i%3 == 1) {
			t.Errorf("record %d: malformed %v", i, r.Malformed)
		}
		if r.Malformed != nil {
			bad++
			want := fmt.Sprintf(`src %s[0]:%d: unknown kind "bogus"`, topic, i)
			if got := r.Malformed.Error(); got != want {
				t.Errorf("malformed = %q, want %q", got, want)
			}
		}
	}
	lines := readLines(t, dlPath)
	if len(lines) != bad || bad != 3 {
		t.Fatalf("%d dead letters, %d malformed", len(lines), bad)
	}
	var dl struct {
		Topic, Key, Value, Reason string
		Partition                 int
		Offset                    int64
	}
	if err := json.Unmarshal([]byte(lines[0]), &dl); err != nil {
		t.Fatal(err)
	}
	if dl.Topic != topic || dl.Offset != 1 || dl.Key != "k" || dl.Value != `{"ts":1,"kind":"bogus"}` || dl.Reason != `unknown kind "bogus"` {
		t.Errorf("dead letter %+v", dl)
	}
	if c := c.Stats().Counts(); c.Malformed != 3 || c.DeadLettered != 3 {
		t.Errorf("stats %+v", c)
	}
}

func TestConsumerUnknownTopic(t *testing.T) {
	brokers := kafkaBrokers(t)
	src := kafkaSource(brokers, kafkaGroup(t), "g") // a topic name nobody created
	c, _ := NewConsumer(src, ConsumerOptions{})
	defer c.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := c.Start(ctx, nil)
	if err == nil {
		t.Fatal("Start on a missing topic succeeded")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start hung: %v", err)
	}
}
