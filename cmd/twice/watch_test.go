package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/twicehq/twice/internal/kafkaprod"
	"github.com/twicehq/twice/internal/promtext"
	"github.com/twicehq/twice/internal/servicetest"
	"github.com/twicehq/twice/storage/clickhouse"
)

// cliWatch is `twice watch` running in-process.
type cliWatch struct {
	cancel context.CancelFunc
	stderr *syncBuffer
	code   chan int
	addr   string
}

var apiLine = regexp.MustCompile(`HTTP API on http://(\S+)`)

// startCLIWatch runs `twice watch ARGS...` and waits for its HTTP API
// (watch.listen must be set; 127.0.0.1:0 picks a free port).
func startCLIWatch(t *testing.T, args ...string) *cliWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &cliWatch{cancel: cancel, stderr: &syncBuffer{}, code: make(chan int, 1)}
	go func() {
		w.code <- run(ctx, append([]string{"watch"}, args...), env{
			stdin: strings.NewReader(""), stdout: io.Discard, stderr: w.stderr,
			isTerminal: func(io.Writer) bool { return false },
			getenv:     func(string) string { return "" },
		})
	}()
	t.Cleanup(func() { w.stop(t) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := apiLine.FindStringSubmatch(w.stderr.String()); m != nil {
			w.addr = m[1]
			return w
		}
		select {
		case code := <-w.code:
			w.code <- code
			t.Fatalf("twice watch exited %d before its HTTP API:\n%s", code, w.stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no HTTP API within 30s:\n%s", w.stderr.String())
		}
	}
}

// stop cancels the watch (as SIGTERM does) and returns its exit code.
func (w *cliWatch) stop(t *testing.T) int {
	t.Helper()
	w.cancel()
	select {
	case code := <-w.code:
		w.code <- code
		return code
	case <-time.After(30 * time.Second):
		t.Fatalf("twice watch did not stop within 30s:\n%s", w.stderr.String())
		return -1
	}
}

// get returns the status and body of GET path on the watch's API.
func (w *cliWatch) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + w.addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns the sum of a twice_ metric's series.
func (w *cliWatch) metric(name string) float64 { return promtext.Sums(w.addr)[name] }

// waitFor waits until cond holds, failing after a minute with the log.
func (w *cliWatch) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		select {
		case code := <-w.code:
			w.code <- code
			t.Fatalf("twice watch exited %d while waiting for %s:\n%s", code, what, w.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s:\n%s", what, w.stderr.String())
		}
	}
}

// jobEvents returns n events of n/2 jobs (started, succeeded) for a topic.
func jobEvents(n int) []kafkaprod.Message {
	base := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var out []kafkaprod.Message
	for i := range n {
		kind := "job.started"
		if i%2 == 1 {
			kind = "job.succeeded"
		}
		line := fmt.Sprintf(`{"id":"e-%d","ts":%q,"kind":%q,"queue":"q","job_type":"T","job_id":"j-%d","attempt":1}`,
			i, base.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), kind, i/2)
		out = append(out, kafkaprod.Message{Key: []byte(fmt.Sprintf("j-%d", i/2)), Value: []byte(line)})
	}
	return out
}

// writeWatchConfig writes a twice.yaml reading topic through brokers.
func writeWatchConfig(t *testing.T, dir, brokers, topic, group, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`sources:
  - name: jobs
    type: kafka
    brokers: [%s]
    topics: [%s]
    group: %s
watch:
  state_dir: %s
  listen: 127.0.0.1:0
  checkpoint_interval: 100ms
  idle_timeout: 200ms
  idle_advance: false
  findings: []
%s`, brokers, topic, group, filepath.Join(dir, "state"), extra)
	path := filepath.Join(dir, "twice.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestWatchBrokerDownAtStart: with the broker unreachable, twice watch
// starts, serves its API, answers 503 on /readyz naming the source and
// counts its retries; when the broker is reachable it reads and audits
// every event and /readyz answers 200; when the partitions fail during
// the run, /readyz answers 503 again and the watch goes on. Real Kafka
// behind a proxy the test opens.
func TestWatchBrokerDownAtStart(t *testing.T) {
	brokers := servicetest.KafkaBrokers(t)
	topic := servicetest.KafkaTopic(t, brokers, 2)
	msgs := jobEvents(40)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := kafkaprod.Produce(ctx, brokers, topic, msgs); err != nil {
		t.Fatal(err)
	}
	proxy := servicetest.NewProxy(t, brokers[0])
	dir := t.TempDir()
	cfg := writeWatchConfig(t, dir, proxy.Addr(), topic, servicetest.KafkaGroup(t), "")

	w := startCLIWatch(t, "-c", cfg)
	w.waitFor(t, "two failed starts", func() bool { return w.metric("twice_source_retries_total") >= 2 })
	code, body := w.get(t, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "source jobs: not started") {
		t.Fatalf("/readyz with the broker down: %d %q, want 503 naming the source", code, body)
	}
	if code, _ := w.get(t, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz with the broker down: %d, want 200 (the watch runs)", code)
	}

	proxy.Up()
	w.waitFor(t, "every event audited", func() bool { return w.metric("twice_events_total") == float64(len(msgs)) })
	w.waitFor(t, "/readyz 200", func() bool { c, _ := w.get(t, "/readyz"); return c == http.StatusOK })
	w.waitFor(t, "the lag measured", func() bool { _, ok := promtext.Sums(w.addr)["twice_consumer_lag"]; return ok })

	// Gone during the run (the topic deleted): fetches fail and are
	// retried, /readyz says so, the lag keeps its last value, the watch
	// goes on.
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 10 * time.Second}
	if _, err := client.DeleteTopics(ctx, &kafkago.DeleteTopicsRequest{Topics: []string{topic}}); err != nil {
		t.Fatal(err)
	}
	w.waitFor(t, "/readyz 503 naming the failing partitions", func() bool {
		c, body := w.get(t, "/readyz")
		return c == http.StatusServiceUnavailable && strings.Contains(body, "source jobs: not read") && strings.Contains(body, "partitions failing")
	})
	if _, ok := promtext.Sums(w.addr)["twice_consumer_lag"]; !ok {
		t.Error("twice_consumer_lag is gone while the broker fails; want its last value")
	}
	if code := w.stop(t); code != exitOK {
		t.Fatalf("exit %d after stop:\n%s", code, w.stderr.String())
	}
}

// TestWatchStoreOutage: with ClickHouse unreachable, twice watch with
// watch.store starts and audits; the events wait in state_dir (counted
// in twice_store_backlog_records), also across a restart; when ClickHouse
// answers, the watch migrates it and writes them, and the store ends
// with exactly the events, each once. Real Kafka and ClickHouse, the
// latter behind a proxy the test takes down.
func TestWatchStoreOutage(t *testing.T) {
	brokers := servicetest.KafkaBrokers(t)
	dsn := servicetest.ClickHouseDatabase(t, servicetest.ClickHouseDSN(t, "native"))
	topic := servicetest.KafkaTopic(t, brokers, 2)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := servicetest.NewProxy(t, u.Host)
	proxied := *u
	proxied.Host = proxy.Addr()
	dir := t.TempDir()
	cfg := writeWatchConfig(t, dir, strings.Join(brokers, ", "), topic, servicetest.KafkaGroup(t),
		"  store: "+proxied.String()+"\n")
	msgs := jobEvents(200)
	produce := func(msgs []kafkaprod.Message) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := kafkaprod.Produce(ctx, brokers, topic, msgs); err != nil {
			t.Fatal(err)
		}
	}

	// The store is down: the watch starts, audits, and keeps the events.
	produce(msgs[:100])
	w := startCLIWatch(t, "-c", cfg)
	w.waitFor(t, "100 events audited", func() bool { return w.metric("twice_events_total") == 100 })
	w.waitFor(t, "100 records held for the store", func() bool {
		m := promtext.Sums(w.addr)
		return m["twice_store_backlog_records"] == 100 && m["twice_store_errors_total"] >= 1
	})
	if n := w.metric("twice_store_events_total"); n != 0 {
		t.Fatalf("twice_store_events_total = %v while the store is down", n)
	}
	if code, body := w.get(t, "/readyz"); code != http.StatusOK || !strings.Contains(body, "degraded: store") {
		t.Errorf("/readyz with the store down: %d %q, want 200 (the audit goes on) saying the store is behind", code, body)
	}
	if code := w.stop(t); code != exitOK {
		t.Fatalf("exit %d with the store down:\n%s", code, w.stderr.String())
	}

	// Restarted, still down: what the first run held is still held.
	produce(msgs[100:])
	w = startCLIWatch(t, "-c", cfg)
	w.waitFor(t, "the other 100 events audited", func() bool { return w.metric("twice_events_total") == 100 })
	w.waitFor(t, "200 records held across the restart", func() bool { return w.metric("twice_store_backlog_records") == 200 })

	// The store answers: migrated, caught up.
	proxy.Up()
	w.waitFor(t, "the backlog written", func() bool {
		m := promtext.Sums(w.addr)
		return m["twice_store_backlog_records"] == 0 && m["twice_store_events_total"] == 200
	})
	if code := w.stop(t); code != exitOK {
		t.Fatalf("exit %d:\n%s", code, w.stderr.String())
	}
	st, err := clickhouse.Open(dsn, clickhouse.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	var rows, ids uint64
	if err := st.QueryRow(ctx, "SELECT count(), uniqExact(identity) FROM twice_events").Scan(&rows, &ids); err != nil {
		t.Fatal(err)
	}
	if rows != 200 || ids != 200 {
		t.Fatalf("the store holds %d rows of %d identities, want the 200 events once each", rows, ids)
	}
}

// TestWatchStateMismatchIsAConfigError: a state whose snapshot another
// twice version wrote stops twice watch with exit 2 before its HTTP API
// starts, with a message naming --reset-state; --reset-state then starts
// it; and changed rules re-judge the state instead of refusing it. No
// service is needed: the source's broker is a port that refuses.
func TestWatchStateMismatchIsAConfigError(t *testing.T) {
	proxy := servicetest.NewProxy(t, "127.0.0.1:1") // never up
	dir := t.TempDir()
	cfg := writeWatchConfig(t, dir, proxy.Addr(), "jobs", "g", "  snapshot_interval: 100ms\n")
	w := startCLIWatch(t, "-c", cfg)
	snaps := filepath.Join(dir, "state", "snapshot-*")
	w.waitFor(t, "a snapshot", func() bool { f, _ := filepath.Glob(snaps); return len(f) > 0 })
	if code := w.stop(t); code != exitOK {
		t.Fatalf("exit %d:\n%s", code, w.stderr.String())
	}
	files, _ := filepath.Glob(snaps)
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	raw[len("TWICESNP")] = 99 // the format version of a twice to come
	if err := os.WriteFile(files[0], raw, 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr syncBuffer
	code := run(ctx, []string{"watch", "-c", cfg}, env{
		stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr,
		isTerminal: func(io.Writer) bool { return false }, getenv: func(string) string { return "" },
	})
	if code != exitUsage || !strings.Contains(stderr.String(), "--reset-state") || strings.Contains(stderr.String(), "HTTP API on") {
		t.Fatalf("exit %d, stderr:\n%s\nwant exit 2 naming --reset-state before the HTTP API starts", code, stderr.String())
	}

	w = startCLIWatch(t, "-c", cfg, "--reset-state")
	if code := w.stop(t); code != exitOK {
		t.Fatalf("--reset-state: exit %d:\n%s", code, w.stderr.String())
	}

	// A new rule: re-judged, not refused.
	cfg = writeWatchConfig(t, dir, proxy.Addr(), "jobs", "g", "  snapshot_interval: 100ms\n"+
		"expect:\n  - {job_type: SendReceipt, effect: email.sent, effect_key: \"receipt/{{key}}\", within: 5m}\n")
	w = startCLIWatch(t, "-c", cfg)
	if code := w.stop(t); code != exitOK {
		t.Fatalf("with a new rule: exit %d:\n%s", code, w.stderr.String())
	}
	if log := w.stderr.String(); !strings.Contains(log, "configuration changed") || !strings.Contains(log, "+ rule \"SendReceipt\"") {
		t.Errorf("the log does not say what changed:\n%s", log)
	}
}
