// Package e2e holds end-to-end tests that run the twice binary against
// real services started by scripts/services.
package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/twicehq/twice/internal/eventstest"
	"github.com/twicehq/twice/internal/kafkaprod"
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

// phase is a moment of the watch's life a kill must land in, at least
// once a run: each is made to happen (by the configuration of the run that
// is killed, or by what the test does to it) and seen to happen in what
// the watch reports, then the kill comes at a random moment within it; the
// next start says, in its metrics, what it restored from, which must be
// what the phase leads to.
type phase int

const (
	// phaseJournalOnly kills the first run, which never snapshots, after a
	// checkpoint: the next start replays a journal on an empty state.
	phaseJournalOnly phase = iota
	// phaseSnapshot kills a run that snapshots at every checkpoint, after
	// the first: the next start restores a snapshot and no journal.
	phaseSnapshot
	// phaseJournal kills a run that never snapshots, started from a
	// snapshot, after a checkpoint: the next start restores the snapshot
	// and replays the checkpoints after it.
	phaseJournal
	// phasePublish kills a run while the findings topic refuses a batch
	// of more than one revision (max.message.bytes 1100), after a publish
	// of which the broker took part (one partition's batch written,
	// another's refused) and retried at a later checkpoint: revisions
	// are committed in the outbox and not published. The next start
	// publishes them; none is published twice.
	phasePublish
	// phaseAnytime kills a run with the main configuration at a random
	// moment within 2s of its start being seen: mid-checkpoint,
	// mid-snapshot, mid-publish, as it falls.
	phaseAnytime
)

func (ph phase) String() string {
	return [...]string{"journal-only", "snapshot", "journal", "publish", "anytime"}[ph]
}

// checkRestored says what is wrong with what a start restored after a
// kill in ph; "" when it is what ph leads to.
func (ph phase) checkRestored(m map[string]float64) string {
	snap, journal := m["twice_restored_snapshot"], m["twice_restored_journal_checkpoints"]
	switch ph {
	case phaseJournalOnly:
		if snap != 0 || journal < 1 {
			return fmt.Sprintf("restored snapshot=%v journal checkpoints=%v; want the journal alone", snap, journal)
		}
	case phaseSnapshot:
		if snap != 1 || journal != 0 {
			return fmt.Sprintf("restored snapshot=%v journal checkpoints=%v; want a snapshot alone", snap, journal)
		}
	case phaseJournal:
		if snap != 1 || journal < 1 {
			return fmt.Sprintf("restored snapshot=%v journal checkpoints=%v; want a snapshot and a journal after it", snap, journal)
		}
	case phasePublish:
		if m["twice_restored_unpublished_revisions"] < 1 {
			return "found no committed revision left to publish"
		}
	}
	return ""
}

var killSeed = flag.Uint64("kill-seed", 0, "seed of the kill moments (0: from the clock); the test logs the one it used")

// TestCrashRestartFindingsExactlyOnce produces a stream of events with
// every fault while twice watch is SIGKILLed and restarted, once in each
// phase (journal alone, snapshot alone, snapshot and journal, revisions
// committed and not published, anywhere), at a random moment within it;
// at the end, the findings it published — the file and the Kafka topic,
// taken as they are, with no deduplication — hold each revision once, and
// their last revisions equal the findings of twice audit over the same
// topic, and of the audit of the events the watch stored in ClickHouse.
func TestCrashRestartFindingsExactlyOnce(t *testing.T) {
	brokers := servicetest.KafkaBrokers(t)
	events, rate := 12_000, 4000
	plan := []phase{phaseJournalOnly, phaseSnapshot, phaseJournal, phasePublish, phaseAnytime}
	if *soak {
		events, rate = 200_000, 8000
		for i := 0; i < 5; i++ {
			plan = append(plan, phaseSnapshot, phaseJournal, phasePublish, phaseAnytime)
		}
	}
	seed := *killSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("kill seed %d (-args -kill-seed %d replays the kill moments)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	bin := buildTwice(t)
	dir := t.TempDir()
	const partitions = 6
	topic := servicetest.KafkaTopic(t, brokers, partitions)
	outTopic := servicetest.KafkaTopic(t, brokers, 3)
	group := servicetest.KafkaGroup(t)
	// The store over HTTP: the test's ClickHouse (chDB's server) can abort
	// when a native-protocol client vanishes mid-query, which every SIGKILL
	// here does ("Connection reset by peer" in its TCP handler; a real
	// clickhouse-server survives it), and took the server down for the
	// tests after this one. The HTTP handler survives it.
	store := servicetest.ClickHouseDatabase(t, servicetest.ClickHouseDSN(t, "http"))
	evPath, genCfg := generate(t, dir, events, 11)
	msgs, err := kafkaprod.Lines(evPath)
	if err != nil {
		t.Fatal(err)
	}
	msgs = append(msgs, endMarkers(lastTime(t, msgs), partitions)...)

	findingsFile := filepath.Join(dir, "findings.jsonl")
	// One configuration but for the snapshot interval: the main one (also
	// audited), one that never snapshots and one that snapshots at every
	// checkpoint. The interval is not part of the state's configuration:
	// a run may restore what a run with another one wrote.
	config := func(name, snapshotInterval string) string {
		path := filepath.Join(dir, name)
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
  listen: 127.0.0.1:0
  checkpoint_interval: 300ms
  snapshot_interval: %s
  idle_advance: false          # the events are history, not live
  store: %s
  findings:
    - {type: file, path: %s}
    - {type: kafka, brokers: [%s], topic: %s}
`, strings.Join(brokers, ", "), topic, group, filepath.Join(dir, "state"), snapshotInterval, store, findingsFile, strings.Join(brokers, ", "), outTopic)
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cfgPath := config("twice.yaml", "700ms")
	configOf := map[phase]string{
		phaseJournalOnly: config("never-snapshot.yaml", "1000h"),
		phaseJournal:     config("never-snapshot.yaml", "1000h"),
		phaseSnapshot:    config("always-snapshot.yaml", "300ms"),
		phasePublish:     cfgPath,
		phaseAnytime:     cfgPath,
	}

	// Two thirds of the events go at a steady rate while the watch is
	// killed; the rest when a phase needs events and the watch has read
	// all there were, then all at the end.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const chunk = 400
	fd := &feed{brokers: brokers, topic: topic, msgs: msgs}
	steadyCtx, stopSteady := context.WithCancel(ctx)
	steadyDone := make(chan error, 1)
	go func() { steadyDone <- fd.steady(steadyCtx, chunk, rate, events*2/3) }()

	var logs []string
	defer func() {
		if t.Failed() {
			for _, path := range logs[max(0, len(logs)-3):] {
				log, _ := os.ReadFile(path)
				var keep []string
				for _, l := range strings.Split(string(log), "\n") {
					if !strings.Contains(l, "Request Timed Out") {
						keep = append(keep, l)
					}
				}
				t.Logf("%s:\n%s", filepath.Base(path), tail(strings.Join(keep, "\n"), 4000))
			}
		}
	}()
	start := func(cfg string) *watchProc {
		path := filepath.Join(dir, fmt.Sprintf("watch-%d.log", len(logs)+1))
		logs = append(logs, path)
		p := startWatch(t, bin, cfg, path)
		p.waitFor(t, "/readyz 200", p.ready)
		return p
	}
	// until waits for cond on the metrics of p; when needEvents and the
	// watch has read every message produced and checkpointed twice since
	// the last nudge, it produces another chunk.
	until := func(p *watchProc, what string, needEvents bool, cond func(map[string]float64) bool) {
		t.Helper()
		nudgedAt := -1.0
		p.waitFor(t, what, func() bool {
			m := p.metrics()
			if m == nil {
				return false
			}
			if cond(m) {
				return true
			}
			if lag, ok := m["twice_consumer_lag"]; needEvents && ok && lag == 0 && m["twice_checkpoints_total"] >= nudgedAt+2 {
				n, err := fd.produce(ctx, chunk)
				if err != nil {
					t.Fatalf("producer: %v", err)
				}
				if n == 0 {
					t.Fatalf("no event left to produce while waiting for %s", what)
				}
				nudgedAt = m["twice_checkpoints_total"]
			}
			return false
		})
	}

	var (
		prev   phase
		killed bool
		report []string
	)
	// checkPrev checks what p restored after the last kill.
	checkPrev := func(p *watchProc) {
		t.Helper()
		if !killed {
			return
		}
		m := p.metrics()
		if msg := prev.checkRestored(m); msg != "" {
			t.Fatalf("after the kill in phase %s, the next start %s", prev, msg)
		}
		report = append(report, fmt.Sprintf("%s→snapshot=%v,journal=%v,unpublished=%v", prev,
			m["twice_restored_snapshot"], m["twice_restored_journal_checkpoints"], m["twice_restored_unpublished_revisions"]))
	}
	for k, ph := range plan {
		p := start(configOf[ph])
		checkPrev(p)
		var delay time.Duration
		switch ph {
		case phaseJournalOnly, phaseJournal:
			until(p, "a journal checkpoint", true, func(m map[string]float64) bool {
				return m["twice_journal_checkpoints"] >= 1
			})
			delay = time.Duration(rng.Int64N(int64(time.Second)))
		case phaseSnapshot:
			until(p, "a snapshot", false, func(m map[string]float64) bool {
				return m["twice_snapshots_total"] >= 1
			})
			delay = time.Duration(rng.Int64N(int64(time.Second)))
		case phasePublish:
			setTopicMaxMessageBytes(t, brokers, outTopic, "1100")
			// The refused batch stays refused while the limit holds, so
			// every checkpoint after the partial publish retries it.
			retryFrom := -1.0
			until(p, "a publish the findings topic took part of, then a retry", true, func(m map[string]float64) bool {
				if retryFrom < 0 {
					log, _ := os.ReadFile(p.logPath)
					if strings.Contains(string(log), "revisions written, the rest refused") {
						retryFrom = m["twice_publish_errors_total"] + 1
					}
					return false
				}
				return m["twice_publish_errors_total"] > retryFrom
			})
			delay = time.Duration(rng.Int64N(int64(time.Second)))
		case phaseAnytime:
			delay = time.Duration(rng.Int64N(int64(2 * time.Second)))
		}
		// The kill comes at a random moment within the phase: each phase
		// lasts until the kill, so the wait is no synchronisation.
		time.Sleep(delay)
		p.kill(t)
		if ph == phasePublish {
			setTopicMaxMessageBytes(t, brokers, outTopic, "")
		}
		t.Logf("kill %d in phase %s, %v into it; %d messages produced", k+1, ph, delay.Round(time.Millisecond), fd.produced())
		prev, killed = ph, true
	}
	stopSteady()
	if err := <-steadyDone; err != nil {
		t.Fatalf("producer: %v", err)
	}
	if _, err := fd.produce(ctx, len(msgs)); err != nil {
		t.Fatalf("producer: %v", err)
	}
	p := start(cfgPath)
	checkPrev(p)
	// The watch has taken every message and checkpointed once the group's
	// offsets, which it commits after each checkpoint, reach the ends.
	var behind map[int]int64
	p.waitFor(t, "group offsets at the end of the topic", func() bool {
		var err error
		behind, err = groupBehind(ctx, brokers, topic, group, partitions)
		if err != nil {
			t.Logf("group offsets: %v", err)
			return false
		}
		for _, n := range behind {
			if n != 0 {
				return false
			}
		}
		return true
	})
	// And it has written what it took to the store, which it does on
	// its own after the checkpoints.
	p.waitFor(t, "an empty store backlog", func() bool {
		m := p.metrics()
		return m != nil && m["twice_store_backlog_records"] == 0
	})
	p.stop(t)
	t.Logf("restarts: %s", strings.Join(report, " "))

	auditOut := filepath.Join(dir, "audit.json")
	cmd := exec.Command(bin, "audit", "--config", cfgPath, "--format", "json", "-o", auditOut, "events")
	if out, err := cmd.CombinedOutput(); err != nil && cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("twice audit: %v\n%s", err, out)
	}
	want := auditFindings(t, auditOut)
	if len(want) < 10 {
		t.Fatalf("audit found only %d findings: the input lacks faults", len(want))
	}

	fileRevs := eventstest.JSONLines(t, findingsFile)
	checkRevisions(t, "findings file", fileRevs, want, true)
	kafkaRevs := readTopic(t, brokers, outTopic)
	checkRevisions(t, "findings topic", kafkaRevs, want, false)

	// The events the watch stored in ClickHouse (at least once, across the
	// kills), audited there with SQL, give the same findings.
	storeOut := filepath.Join(dir, "store.json")
	cmd = exec.Command(bin, "audit", "--config", cfgPath, "--format", "json", "-o", storeOut, "--from", store)
	if out, err := cmd.CombinedOutput(); err != nil && cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("twice audit --from: %v\n%s", err, out)
	}
	fromStore := auditFindings(t, storeOut)
	if len(fromStore) != len(want) {
		t.Errorf("audit of the store: %d findings, of the topic %d", len(fromStore), len(want))
	}
	for fp, w := range want {
		if fromStore[fp] != w {
			t.Errorf("audit of the store differs on %s:\n got %s\nwant %s", fp, fromStore[fp], w)
		}
	}
	t.Logf("%d messages, %d kills, %d findings, %d revisions", len(msgs), len(plan), len(want), len(fileRevs))
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
