package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/twicehq/twice/internal/servicetest"
	"github.com/twicehq/twice/reports"
)

// emailEvents carry addresses in an effect key, an entity, a job id, a
// queue, an error message and attrs: every place a finding can show.
const emailEvents = `{"id":"e-1","ts":"2026-11-24T10:00:00Z","kind":"job.enqueued","queue":"mail-dave@example.com","job_type":"SendReceipt","job_id":"j-1","key":"ann@example.com","attrs":{"customer_email":"ann@example.com","amount":9.5}}
{"id":"e-2","ts":"2026-11-24T10:00:01Z","kind":"job.started","job_id":"j-1","attempt":1}
{"id":"e-3","ts":"2026-11-24T10:00:02Z","kind":"effect","effect":"email.sent","effect_key":"receipt/ann@example.com","job_id":"j-1","attempt":1}
{"id":"e-4","ts":"2026-11-24T10:00:03Z","kind":"job.failed","job_id":"j-1","attempt":1,"retry":true,"error":"SMTP 421 for ann@example.com"}
{"id":"e-5","ts":"2026-11-24T10:00:04Z","kind":"job.started","job_id":"j-1","attempt":2}
{"id":"e-6","ts":"2026-11-24T10:00:05Z","kind":"effect","effect":"email.sent","effect_key":"receipt/ann@example.com","job_id":"j-1","attempt":2}
{"id":"e-7","ts":"2026-11-24T10:00:06Z","kind":"job.succeeded","job_id":"j-1","attempt":2}
{"id":"e-8","ts":"2026-11-24T10:00:07Z","kind":"state","entity":"user:bob@example.com","seq":2}
{"id":"e-9","ts":"2026-11-24T10:00:08Z","kind":"state","entity":"user:bob@example.com","seq":1}
{"id":"e-10","ts":"2026-11-24T10:00:09Z","kind":"job.enqueued","queue":"mail-dave@example.com","job_type":"Welcome","job_id":"job-carol@example.com"}
{"id":"e-11","ts":"2026-11-24T10:00:10Z","kind":"job.started","job_id":"job-carol@example.com","attempt":1}
{"id":"e-12","ts":"2026-11-24T10:00:11Z","kind":"effect","effect":"email.sent","effect_key":"welcome/carol@example.com","job_id":"job-carol@example.com","attempt":1}
{"id":"e-13","ts":"2026-11-24T10:00:12Z","kind":"job.dead","job_id":"job-carol@example.com","attempt":1,"error":"bounced: carol@example.com"}
`

// rawAddresses are the addresses of emailEvents.
var rawAddresses = []string{"ann@example.com", "bob@example.com", "carol@example.com", "dave@example.com"}

const emailImpact = "impact: {amount: attrs.amount, customer: attrs.customer_email}\n"

// leaked returns the addresses of emailEvents found in out.
func leaked(out string) []string {
	var found []string
	for _, a := range rawAddresses {
		if strings.Contains(out, a) {
			found = append(found, a)
		}
	}
	return found
}

// TestAuditRedactsEmailsInEveryFormat: no address of the input reaches a
// report of any format by default; redact_emails: false keeps them.
func TestAuditRedactsEmailsInEveryFormat(t *testing.T) {
	events := writeFile(t, "events.jsonl", emailEvents)
	for _, keep := range []bool{false, true} {
		cfg := writeFile(t, "twice.yaml", emailImpact+fmt.Sprintf("redact_emails: %v\n", !keep))
		for _, format := range reports.Formats {
			t.Run(fmt.Sprintf("%s/keep=%v", format, keep), func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "report."+format)
				_, stderr, code := runCLI(t, "audit", "-c", cfg, "--format", format, "-o", out, events)
				if code != exitFindings {
					t.Fatalf("exit %d, want %d: %s", code, exitFindings, stderr)
				}
				b, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				found := leaked(string(b))
				if !keep && len(found) > 0 {
					t.Errorf("the %s report shows %v:\n%s", format, found, b)
				}
				if keep && !strings.Contains(string(b), "ann@example.com") {
					t.Errorf("with redact_emails: false the %s report lacks ann@example.com:\n%s", format, b)
				}
				if !keep && !strings.Contains(string(b), "email:") {
					t.Errorf("the %s report shows no redacted address:\n%s", format, b)
				}
			})
		}
	}
}

// TestAuditRedactedFindingsKeepFingerprints: the fingerprints are those
// of the raw subjects, redacted or not, so baselines keep matching.
func TestAuditRedactedFindingsKeepFingerprints(t *testing.T) {
	events := writeFile(t, "events.jsonl", emailEvents)
	fps := map[bool][]string{}
	for _, keep := range []bool{false, true} {
		cfg := writeFile(t, "twice.yaml", fmt.Sprintf("redact_emails: %v\n", !keep))
		out, stderr, code := runCLI(t, "audit", "-c", cfg, "--format", "json", events)
		if code != exitFindings {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		for _, f := range decodeReport(t, out)["findings"].([]any) {
			fps[keep] = append(fps[keep], f.(map[string]any)["fingerprint"].(string))
		}
	}
	if strings.Join(fps[false], " ") == "" || !sameSet(fps[false], fps[true]) {
		t.Errorf("fingerprints redacted %v, kept %v: want the same", fps[false], fps[true])
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

// TestWatchRedactsEmailsInSinksAndAPI: twice watch publishes findings
// without the input's addresses to its file and webhook sinks and its
// /findings API; redact_emails: false keeps them.
func TestWatchRedactsEmailsInSinksAndAPI(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			var mu sync.Mutex
			var hooked strings.Builder
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				hooked.Write(b)
				mu.Unlock()
			}))
			defer hook.Close()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "app.log"), []byte(emailEvents), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(dir, "twice.yaml")
			if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`sources:
  - name: app
    path: app.log
%sredact_emails: %v
watch:
  state_dir: state
  listen: 127.0.0.1:0
  checkpoint_interval: 50ms
  idle_timeout: 100ms
  idle_advance: false
  findings:
    - {type: file, path: findings.jsonl}
    - {type: webhook, url: %q}
`, emailImpact, !keep, hook.URL)), 0o644); err != nil {
				t.Fatal(err)
			}
			w := startCLIWatch(t, "-c", cfg)
			w.waitFor(t, "every event", func() bool { return w.metric("twice_events_total") == 13 })
			// The duplicate receipt and the out-of-order user are
			// published live, before their state is released.
			var api string
			w.waitFor(t, "the findings on /findings", func() bool {
				_, api = w.get(t, "/findings")
				var page struct {
					Findings []map[string]any `json:"findings"`
				}
				if json.Unmarshal([]byte(api), &page) != nil {
					return false
				}
				seen := map[string]bool{}
				for _, f := range page.Findings {
					seen[f["detector"].(string)] = true
				}
				return seen["duplicate-effect"] && seen["out-of-order"]
			})
			var sunk []byte
			w.waitFor(t, "the findings in the file sink", func() bool {
				sunk, _ = os.ReadFile(filepath.Join(dir, "findings.jsonl"))
				return strings.Contains(string(sunk), "duplicate-effect") && strings.Contains(string(sunk), "out-of-order")
			})
			hooks := func() string {
				mu.Lock()
				defer mu.Unlock()
				return hooked.String()
			}
			w.waitFor(t, "the findings at the webhook", func() bool {
				h := hooks()
				return strings.Contains(h, "duplicate-effect") && strings.Contains(h, "out-of-order")
			})
			if code := w.stop(t); code != exitOK {
				t.Fatalf("exit %d:\n%s", code, w.stderr.String())
			}
			for name, out := range map[string]string{"/findings": api, "file sink": string(sunk), "webhook sink": hooks()} {
				found := leaked(out)
				if !keep && len(found) > 0 {
					t.Errorf("%s shows %v:\n%s", name, found, out)
				}
				if keep && !strings.Contains(out, "ann@example.com") {
					t.Errorf("with redact_emails: false %s lacks ann@example.com:\n%s", name, out)
				}
			}
		})
	}
}

// TestWatchRedactsEmailsInKafkaSink: the findings twice watch publishes
// to Kafka carry no address of the input. Real Kafka.
func TestWatchRedactsEmailsInKafkaSink(t *testing.T) {
	brokers := servicetest.KafkaBrokers(t)
	topic := servicetest.KafkaTopic(t, brokers, 1)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.log"), []byte(emailEvents), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "twice.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`sources:
  - name: app
    path: app.log
%swatch:
  state_dir: state
  listen: 127.0.0.1:0
  checkpoint_interval: 50ms
  idle_timeout: 100ms
  idle_advance: false
  findings:
    - {type: kafka, brokers: [%s], topic: %s}
`, emailImpact, strings.Join(brokers, ", "), topic)), 0o644); err != nil {
		t.Fatal(err)
	}
	w := startCLIWatch(t, "-c", cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: brokers, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var got strings.Builder
	for !strings.Contains(got.String(), `"duplicate-effect"`) || !strings.Contains(got.String(), `"out-of-order"`) {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("reading the findings topic: %v; read so far:\n%s\n%s", err, got.String(), w.stderr.String())
		}
		got.Write(m.Value)
		got.WriteByte('\n')
	}
	if code := w.stop(t); code != exitOK {
		t.Fatalf("exit %d:\n%s", code, w.stderr.String())
	}
	if found := leaked(got.String()); len(found) > 0 {
		t.Errorf("the kafka sink shows %v:\n%s", found, got.String())
	}
	if !strings.Contains(got.String(), "email:") {
		t.Errorf("the kafka sink shows no redacted address:\n%s", got.String())
	}
}
