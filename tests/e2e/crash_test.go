// Package e2e holds end-to-end tests that run the twice binary against
// real services started by scripts/services.
package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/twicehq/twice/internal/eventstest"
	"github.com/twicehq/twice/internal/kafkaprod"
	"github.com/twicehq/twice/internal/promtext"
	"github.com/twicehq/twice/internal/servicetest"
)

var soak = flag.Bool("soak", false, "run the long crash test: more events, more kills")

// repoRoot is the module root, from this package's directory.
const repoRoot = "../.."

// buildTwice builds the twice binary once per test.
func buildTwice(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "twice")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/twice")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// generate writes n generated events with every fault and returns the
// file and the generator's twice.yaml (expectations and thresholds).
func generate(t *testing.T, dir string, n int, seed uint64) (string, string) {
	t.Helper()
	events, cfg := filepath.Join(dir, "events.jsonl"), filepath.Join(dir, "gen.yaml")
	cmd := exec.Command("go", "run", "./scripts/gen", "-events", strconv.Itoa(n),
		"-seed", strconv.FormatUint(seed, 10), "-o", events, "-config", cfg)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return events, string(raw)
}

// endMarkers are one event per partition two days after the input, and
// one more two days later: the first moves event time past every
// deadline and horizon in the watch, as the end of input does in an
// audit; the second lets the first out of the reorder buffer.
func endMarkers(last time.Time, partitions int) []kafkaprod.Message {
	var out []kafkaprod.Message
	for round, after := range []time.Duration{48 * time.Hour, 96 * time.Hour} {
		for p := 0; p < partitions; p++ {
			ts := last.Add(after + time.Duration(p)*time.Millisecond)
			line := fmt.Sprintf(`{"id":"end-%d-%d","ts":%q,"kind":"state","entity":"end-marker"}`, round, p, ts.UTC().Format(time.RFC3339Nano))
			out = append(out, kafkaprod.Message{Value: []byte(line), Partition: p, Explicit: true})
		}
	}
	return out
}

// lastTime returns the largest ts of the generated lines.
func lastTime(t *testing.T, msgs []kafkaprod.Message) time.Time {
	t.Helper()
	var last time.Time
	for _, m := range msgs {
		var v struct {
			TS any `json:"ts"`
		}
		if json.Unmarshal(m.Value, &v) != nil {
			continue
		}
		var ts time.Time
		switch x := v.TS.(type) {
		case string:
			ts, _ = time.Parse(time.RFC3339Nano, x)
		case float64:
			ts = time.UnixMilli(int64(x))
		}
		if ts.After(last) {
			last = ts
		}
	}
	return last
}

type watchProc struct {
	cmd    *exec.Cmd
	stderr *os.File
}

func startWatch(t *testing.T, bin, cfg, logPath string) *watchProc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "watch", "--config", cfg)
	cmd.Stdout, cmd.Stderr = io.Discard, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return &watchProc{cmd: cmd, stderr: logf}
}

func (p *watchProc) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
	p.stderr.Close()
}

// stop sends SIGTERM and requires a clean exit within 10s.
func (p *watchProc) stop(t *testing.T) {
	t.Helper()
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("twice watch after SIGTERM: %v", err)
		}
		t.Logf("SIGTERM to exit: %v", time.Since(start).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Fatal("twice watch did not exit within 10s of SIGTERM")
	}
	p.stderr.Close()
}

// TestCrashRestartFindingsExactlyOnce produces a stream of events with
// every fault at a steady rate while twice watch is SIGKILLed at random
// moments and restarted; at the end, the findings it published — the
// file and the Kafka topic, taken as they are, with no deduplication —
// hold each revision once, and their last revisions equal the findings of
// twice audit over the same topic.
func TestCrashRestartFindingsExactlyOnce(t *testing.T) {
	brokers := servicetest.KafkaBrokers(t)
	events, kills, rate := 12_000, 4, 4000
	if *soak {
		events, kills, rate = 200_000, 25, 8000
	}
	bin := buildTwice(t)
	dir := t.TempDir()
	topic := servicetest.KafkaTopic(t, brokers, 6)
	outTopic := servicetest.KafkaTopic(t, brokers, 3)
	group := servicetest.KafkaGroup(t)
	store := servicetest.ClickHouseDatabase(t, servicetest.ClickHouseDSN(t, "native"))
	evPath, genCfg := generate(t, dir, events, 11)
	msgs, err := kafkaprod.Lines(evPath)
	if err != nil {
		t.Fatal(err)
	}
	msgs = append(msgs, endMarkers(lastTime(t, msgs), 6)...)

	addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(20000))
	findingsFile := filepath.Join(dir, "findings.jsonl")
	cfgPath := filepath.Join(dir, "twice.yaml")
	cfg := genCfg + fmt.Sprintf(`
sources:
  - name: events
    type: kafka
    brokers: [%s]
    topics: [%s]
    group: %s
engine:
  lateness: 10m
watch:
  state_dir: %s
  listen: %s
  checkpoint_interval: 300ms
  snapshot_interval: 700ms      # so that restarts restore snapshots and journals both
  idle_advance: false          # the events are history, not live
  store: %s
  findings:
    - {type: file, path: %s}
    - {type: kafka, brokers: [%s], topic: %s}
`, strings.Join(brokers, ", "), topic, group, filepath.Join(dir, "state"), addr, store, findingsFile, strings.Join(brokers, ", "), outTopic)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	// The producer writes at a steady rate while the watch is killed.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	produced := make(chan error, 1)
	go func() {
		const chunk = 400
		tick := time.NewTicker(time.Duration(float64(time.Second) * chunk / float64(rate)))
		defer tick.Stop()
		for i := 0; i < len(msgs); i += chunk {
			if err := kafkaprod.Produce(ctx, brokers, topic, msgs[i:min(i+chunk, len(msgs))]); err != nil {
				produced <- err
				return
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				produced <- ctx.Err()
				return
			}
		}
		produced <- nil
	}()

	logPath := filepath.Join(dir, "watch.log")
	defer func() {
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			var keep []string
			for _, l := range strings.Split(string(log), "\n") {
				if !strings.Contains(l, "Request Timed Out") {
					keep = append(keep, l)
				}
			}
			t.Logf("watch log:\n%s", tail(strings.Join(keep, "\n"), 6000))
		}
	}()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for k := 0; k < kills; k++ {
		p := startWatch(t, bin, cfgPath, logPath)
		time.Sleep(time.Duration(300+rng.IntN(1500)) * time.Millisecond)
		p.kill(t)
	}
	if err := <-produced; err != nil {
		t.Fatalf("producer: %v", err)
	}
	p := startWatch(t, bin, cfgPath, logPath)
	// Wait until the watch has read the whole topic and checkpointed.
	want := float64(len(msgs))
	deadline := time.Now().Add(2 * time.Minute)
	for {
		m := promtext.Sums(addr)
		if m != nil && m["twice_consumer_lag"] == 0 && m["twice_checkpoints_total"] > 2 &&
			m["twice_events_total"]+m["twice_malformed_total"]+m["twice_repeated_events_total"] > 0 {
			break
		}
		if time.Now().After(deadline) {
			p.kill(t)
			t.Fatalf("watch did not catch up with %v messages: %v", want, m)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second)
	p.stop(t)

	auditOut := filepath.Join(dir, "audit.json")
	cmd := exec.Command(bin, "audit", "--config", cfgPath, "--format", "json", "-o", auditOut, "events")
	if out, err := cmd.CombinedOutput(); err != nil && cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("twice audit: %v\n%s", err, out)
	}
	want2 := auditFindings(t, auditOut)
	if len(want2) < 10 {
		t.Fatalf("audit found only %d findings: the input lacks faults", len(want2))
	}

	log, _ := os.ReadFile(logPath)
	if !strings.Contains(string(log), `restored: snapshot "snapshot-`) {
		t.Errorf("no restart restored a snapshot: the test exercised only journals")
	}
	fileRevs := eventstest.JSONLines(t, findingsFile)
	checkRevisions(t, "findings file", fileRevs, want2, true)
	kafkaRevs := readTopic(t, brokers, outTopic)
	checkRevisions(t, "findings topic", kafkaRevs, want2, false)

	// The events the watch stored in ClickHouse (at least once, across the
	// kills), audited there with SQL, give the same findings.
	storeOut := filepath.Join(dir, "store.json")
	cmd = exec.Command(bin, "audit", "--config", cfgPath, "--format", "json", "-o", storeOut, "--from", store)
	if out, err := cmd.CombinedOutput(); err != nil && cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("twice audit --from: %v\n%s", err, out)
	}
	fromStore := auditFindings(t, storeOut)
	if len(fromStore) != len(want2) {
		t.Errorf("audit of the store: %d findings, of the topic %d", len(fromStore), len(want2))
	}
	for fp, w := range want2 {
		if fromStore[fp] != w {
			t.Errorf("audit of the store differs on %s:\n got %s\nwant %s", fp, fromStore[fp], w)
		}
	}
	t.Logf("%d messages, %d kills, %d findings, %d revisions", len(msgs), kills, len(want2), len(fileRevs))
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// auditFindings reads a JSON report: each finding, re-encoded, by
// fingerprint.
func auditFindings(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Findings []map[string]any `json:"findings"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range rep.Findings {
		b, _ := json.Marshal(f)
		out[f["fingerprint"].(string)] = string(b)
	}
	return out
}

// readTopic reads every message of every partition of topic.
func readTopic(t *testing.T, brokers []string, topic string) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := kafkago.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		t.Fatal(err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, p := range parts {
		lc, err := kafkago.DialLeader(ctx, "tcp", fmt.Sprintf("%s:%d", p.Leader.Host, p.Leader.Port), topic, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		first, last, err := lc.ReadOffsets()
		lc.Close()
		if err != nil {
			t.Fatal(err)
		}
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p.ID, MaxWait: 100 * time.Millisecond})
		if err := r.SetOffset(first); err != nil {
			t.Fatal(err)
		}
		for off := first; off < last; {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			off = m.Offset + 1
			var v map[string]any
			if err := json.Unmarshal(m.Value, &v); err != nil {
				t.Fatalf("topic %s partition %d offset %d: %v", topic, p.ID, m.Offset, err)
			}
			if string(m.Key) != v["fingerprint"] {
				t.Fatalf("message key %q is not the fingerprint %v", m.Key, v["fingerprint"])
			}
			out = append(out, v)
		}
		r.Close()
	}
	return out
}

// checkRevisions checks a stream of revisions taken as it is: every seq
// 1..n exactly once (in order when ordered), each finding's revisions
// 1..k exactly once, and the last revision of each finding that stands
// equal to the audit's finding.
func checkRevisions(t *testing.T, what string, revs []map[string]any, want map[string]string, ordered bool) {
	t.Helper()
	seen := map[uint64]bool{}
	perFP := map[string]map[uint64]map[string]any{}
	for i, r := range revs {
		seq := uint64(r["seq"].(float64))
		if seen[seq] {
			t.Fatalf("%s: seq %d published twice", what, seq)
		}
		seen[seq] = true
		if ordered && seq != uint64(i+1) {
			t.Fatalf("%s: line %d has seq %d", what, i+1, seq)
		}
		fp := r["fingerprint"].(string)
		if perFP[fp] == nil {
			perFP[fp] = map[uint64]map[string]any{}
		}
		rev := uint64(r["revision"].(float64))
		if perFP[fp][rev] != nil {
			t.Fatalf("%s: %s %s revision %d published twice", what, r["detector"], r["subject"], rev)
		}
		perFP[fp][rev] = r
	}
	for seq := uint64(1); seq <= uint64(len(revs)); seq++ {
		if !seen[seq] {
			t.Fatalf("%s: seq %d missing of %d", what, seq, len(revs))
		}
	}
	standing := 0
	for fp, byRev := range perFP {
		n := uint64(len(byRev))
		for rev := uint64(1); rev <= n; rev++ {
			if byRev[rev] == nil {
				t.Fatalf("%s: finding %s lacks revision %d of %d", what, fp, rev, n)
			}
		}
		last := byRev[n]
		if last["status"] == "resolved" {
			if _, ok := want[fp]; ok {
				t.Errorf("%s: %s %s resolved; the audit has it", what, last["detector"], last["subject"])
			}
			continue
		}
		standing++
		w, ok := want[fp]
		if !ok {
			t.Errorf("%s: %s %s stands; the audit has no such finding", what, last["detector"], last["subject"])
			continue
		}
		for _, k := range []string{"seq", "revision", "status", "emitted_at"} {
			delete(last, k)
		}
		got, _ := json.Marshal(last)
		if string(got) != w {
			t.Errorf("%s: %s %s\n got %s\nwant %s", what, last["detector"], last["subject"], got, w)
		}
	}
	if standing != len(want) {
		t.Errorf("%s: %d findings stand, the audit has %d", what, standing, len(want))
	}
}
