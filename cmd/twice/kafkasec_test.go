package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/twicehq/twice/internal/kafkaprod"
	"github.com/twicehq/twice/internal/servicetest"
)

// crashRetryEvents is the README's crash and retry: attempt 1 sends the
// receipt and never succeeds, attempt 2 sends it again.
func crashRetryEvents() []kafkaprod.Message {
	lines := []string{
		`{"id":"e-1","ts":"2026-11-24T10:00:00Z","kind":"job.enqueued","queue":"emails","job_type":"SendReceipt","job_id":"j-1","key":"payment:123"}`,
		`{"id":"e-2","ts":"2026-11-24T10:00:01Z","kind":"job.started","job_id":"j-1","attempt":1}`,
		`{"id":"e-3","ts":"2026-11-24T10:00:02Z","kind":"effect","effect":"email.sent","effect_key":"receipt/payment:123","job_id":"j-1","attempt":1}`,
		`{"id":"e-4","ts":"2026-11-24T10:00:32Z","kind":"job.started","job_id":"j-1","attempt":2}`,
		`{"id":"e-5","ts":"2026-11-24T10:00:33Z","kind":"effect","effect":"email.sent","effect_key":"receipt/payment:123","job_id":"j-1","attempt":2}`,
		`{"id":"e-6","ts":"2026-11-24T10:00:34Z","kind":"job.succeeded","job_id":"j-1","attempt":2}`,
	}
	out := make([]kafkaprod.Message, len(lines))
	for i, l := range lines {
		out[i] = kafkaprod.Message{Key: []byte("j-1"), Value: []byte(l)}
	}
	return out
}

// TestAuditKafkaSourceOverSCRAMAndTLS: `twice audit SOURCE` reads a topic
// over SASL_SSL (SCRAM-SHA-512, the CA of the test broker, the password
// in a file next to twice.yaml) and reports the findings of its events.
func TestAuditKafkaSourceOverSCRAMAndTLS(t *testing.T) {
	brokers := servicetest.KafkaBrokers(t)
	sec := servicetest.KafkaSecurity(t)
	topic := servicetest.KafkaTopic(t, brokers, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := kafkaprod.Produce(ctx, brokers, topic, crashRetryEvents()); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kafka-password"), []byte(sec.ScramPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "twice.yaml")
	yaml := fmt.Sprintf(`sources:
  - name: events
    type: kafka
    brokers: [%s]
    topics: [%s]
    tls: {ca_file: %s}
    sasl: {mechanism: SCRAM-SHA-512, username: %s, password_file: kafka-password}
`, strings.Join(sec.SASLSSLBrokers, ", "), topic, sec.CAFile, sec.ScramUser)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCLI(t, "audit", "-c", cfg, "--format", "json", "events")
	if code != exitFindings {
		t.Fatalf("exit %d, want %d (findings)\nstderr: %s\nstdout: %s", code, exitFindings, stderr, stdout)
	}
	var report struct {
		Summary struct {
			Events int `json:"events"`
		} `json:"summary"`
		Findings []struct {
			Detector string `json:"detector"`
			Subject  string `json:"subject"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	var got []string
	for _, f := range report.Findings {
		got = append(got, f.Detector+" "+f.Subject)
	}
	slices.Sort(got)
	want := []string{"duplicate-effect receipt/payment:123", "effect-before-failure j-1"}
	if report.Summary.Events != 6 || !slices.Equal(got, want) {
		t.Errorf("audit over SCRAM+TLS: %d events, findings %q; want 6 events, %q", report.Summary.Events, got, want)
	}

	// The same source with a wrong password: exit 3, the reason on
	// stderr, no password anywhere.
	const wrong = "not-the-password-42"
	if err := os.WriteFile(filepath.Join(dir, "kafka-password"), []byte(wrong), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = runCLI(t, "audit", "-c", cfg, "events")
	if code != exitInput || !strings.Contains(stderr, `source events: reading metadata: SASL SCRAM-SHA-512 authentication as "`+sec.ScramUser+`" failed`) {
		t.Errorf("audit with a wrong password: exit %d, stderr %q; want %d naming the source and the failed login", code, stderr, exitInput)
	}
	if strings.Contains(stdout+stderr, wrong) {
		t.Errorf("the output shows the password:\n%s%s", stdout, stderr)
	}
}

// TestWatchKafkaSASLWrongPasswordThenRotated: a watch whose source's
// password (in a file) is wrong does not exit: /readyz answers 503 naming
// the source and the failed login, the source is retried with backoff,
// and nothing it logs shows the password. Once the file holds the right
// password the retries read it (no restart), every event is audited,
// /readyz answers 200, and the findings reach a kafka sink that
// publishes over SASL_SSL with its password in an environment variable.
func TestWatchKafkaSASLWrongPasswordThenRotated(t *testing.T) {
	brokers := servicetest.KafkaBrokers(t)
	sec := servicetest.KafkaSecurity(t)
	topic := servicetest.KafkaTopic(t, brokers, 1)
	findingsTopic := servicetest.KafkaTopic(t, brokers, 1)
	msgs := crashRetryEvents()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := kafkaprod.Produce(ctx, brokers, topic, msgs); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const wrong = "not-the-password-42"
	pwFile := filepath.Join(dir, "kafka-password")
	if err := os.WriteFile(pwFile, []byte(wrong+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "twice.yaml")
	yaml := fmt.Sprintf(`sources:
  - name: events
    type: kafka
    brokers: [%[1]s]
    topics: [%[2]s]
    group: %[3]s
    tls: {ca_file: %[4]s}
    sasl: {mechanism: SCRAM-SHA-512, username: %[5]s, password_file: kafka-password}
watch:
  state_dir: state
  listen: 127.0.0.1:0
  checkpoint_interval: 100ms
  idle_timeout: 200ms
  findings:
    - type: kafka
      brokers: [%[1]s]
      topic: %[6]s
      tls: {ca_file: %[4]s}
      sasl: {mechanism: SCRAM-SHA-256, username: %[5]s, password_env: %[7]s}
`, strings.Join(sec.SASLSSLBrokers, ", "), topic, servicetest.KafkaGroup(t), sec.CAFile, sec.ScramUser, findingsTopic, servicetest.EnvKafkaScramPassword)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}

	w := startCLIWatch(t, "-c", cfg)
	w.waitFor(t, "two failed starts", func() bool { return w.metric("twice_source_retries_total") >= 2 })
	code, body := w.get(t, "/readyz")
	login := `SASL SCRAM-SHA-512 authentication as "` + sec.ScramUser + `" failed`
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "source events: not started") || !strings.Contains(body, login) {
		t.Fatalf("/readyz with a wrong password: %d %q, want 503 naming the source and the failed login", code, body)
	}
	if code, _ := w.get(t, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz with a wrong password: %d, want 200 (the watch runs)", code)
	}

	// The secret is rotated in place, as a Kubernetes secret volume does.
	if err := os.WriteFile(pwFile, []byte(sec.ScramPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.waitFor(t, "every event audited", func() bool { return w.metric("twice_events_total") == float64(len(msgs)) })
	w.waitFor(t, "/readyz 200", func() bool { c, _ := w.get(t, "/readyz"); return c == http.StatusOK })
	w.waitFor(t, "the duplicate effect published to the findings topic", func() bool {
		return slices.Contains(findingsIn(t, brokers, findingsTopic), "duplicate-effect")
	})
	if code := w.stop(t); code != exitOK {
		t.Fatalf("exit %d after stop:\n%s", code, w.stderr.String())
	}
	if log := w.stderr.String(); strings.Contains(log, wrong) || strings.Contains(log, sec.ScramPassword) || !strings.Contains(log, login) {
		t.Errorf("the watch's log shows a password, or does not say the login failed:\n%s", log)
	}
}

// findingsIn returns the detectors of the revisions in topic (one
// partition), read over PLAINTEXT.
func findingsIn(t *testing.T, brokers []string, topic string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := kafkago.DialLeader(ctx, "tcp", brokers[0], topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, last, err := conn.ReadOffsets()
	if err != nil || last == 0 {
		return nil
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: brokers, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var out []string
	for off := int64(0); off < last; {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("findings topic at offset %d of %d: %v", off, last, err)
		}
		off = m.Offset + 1
		var rev struct {
			Detector string `json:"detector"`
		}
		if err := json.Unmarshal(m.Value, &rev); err != nil {
			t.Fatalf("findings topic offset %d: %v: %q", m.Offset, err, m.Value)
		}
		out = append(out, rev.Detector)
	}
	return out
}

// TestWatchKafkaSecurityThatCannotBeReadIsAConfigError: a CA file that is
// not there, or a password variable that is not set, stops twice watch
// at its start with exit 2, naming the source or the sink and the key,
// before anything connects.
func TestWatchKafkaSecurityThatCannotBeReadIsAConfigError(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ name, yaml, want string }{
		{"source ca_file", `sources:
  - {name: events, type: kafka, brokers: ["127.0.0.1:1"], topics: [t], tls: {ca_file: certs/ca.pem}}
watch: {listen: "", findings: []}
`, "source events: tls.ca_file: open " + filepath.Join(dir, "certs/ca.pem")},
		{"sink password_env", `sources:
  - {name: events, type: kafka, brokers: ["127.0.0.1:1"], topics: [t]}
watch:
  listen: ""
  findings:
    - {type: kafka, brokers: ["127.0.0.1:1"], topic: f, sasl: {mechanism: PLAIN, username: u, password_env: TWICE_TEST_UNSET_KAFKA_PASSWORD}}
`, "watch.findings (kafka topic f): sasl: environment variable TWICE_TEST_UNSET_KAFKA_PASSWORD is empty or not set"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(dir, "twice.yaml")
			if err := os.WriteFile(cfg, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, stderr, code := runCLI(t, "watch", "-c", cfg, "--state-dir", filepath.Join(dir, "state"))
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d with %q", code, stderr, exitUsage, tt.want)
			}
		})
	}
}
