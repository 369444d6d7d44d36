package push_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	stdsmtp "net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twicehq/twice/internal/watchtest"
)

func TestMain(m *testing.M) { os.Exit(watchtest.Main(m)) }

// pushAddrs returns the addresses the push sources of the watch started
// at log offset from listen on, by source name, once n of them do.
func pushAddrs(t *testing.T, w *watchtest.Proc, logPath string, from, n int) map[string]string {
	t.Helper()
	re := regexp.MustCompile(`source (\w+): (?:listening on https?://|SMTP on )(\S+)`)
	var addrs map[string]string
	w.WaitFor(t, "the push sources to listen", func() bool {
		raw, _ := os.ReadFile(logPath)
		addrs = map[string]string{}
		for _, m := range re.FindAllStringSubmatch(string(raw[min(from, len(raw)):]), -1) {
			addrs[m[1]] = m[2]
		}
		return len(addrs) == n
	})
	return addrs
}

func logSize(path string) int {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return int(fi.Size())
}

// TestWatchSMTPIngestWebhookAcrossSIGKILL drives `twice watch` with an
// ingest, an smtp and a webhook source: a job's events come through
// ingest, its receipts through SMTP, a partner notification through the
// webhook proxy. One receipt is sent twice by the job (a duplicate
// effect), one job sends none (a missing effect). The watch is SIGKILLed
// after some messages were acknowledged; what was acknowledged is there
// after the restart, and the clients' retries of acknowledged messages
// (same ids) are counted once, never as findings.
func TestWatchSMTPIngestWebhookAcrossSIGKILL(t *testing.T) {
	bin := watchtest.Build(t)
	dir := t.TempDir()
	var partnerCalls atomic.Int64
	partner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		partnerCalls.Add(1)
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "ok")
	}))
	defer partner.Close()
	cfg := filepath.Join(dir, "twice.yaml")
	writeFile(t, cfg, fmt.Sprintf(`
sources:
  - {name: api, type: ingest, listen: "127.0.0.1:0", token: s3cret}
  - {name: mail, type: smtp, listen: "127.0.0.1:0", job_header: X-Job-Id}
  - {name: hooks, type: webhook, listen: "127.0.0.1:0", upstream: %q, job_header: X-Job-Id}
expect:
  - {job_type: SendReceipt, effect: email.sent, effect_key: "receipt/{{key}}", within: 1m}
watch:
  state_dir: %s
  listen: "127.0.0.1:0"
  checkpoint_interval: 50ms
  idle_timeout: 300ms
`, partner.URL, filepath.Join(dir, "state")))
	logPath := filepath.Join(dir, "watch.log")

	// Event time: the jobs ran just before the test; emails are stamped
	// by twice as they arrive.
	t0 := time.Now().UTC().Truncate(time.Second).Add(-2 * time.Second)
	ts := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }
	var jobs strings.Builder
	for i := 1; i <= 4; i++ {
		fmt.Fprintf(&jobs, `{"id":"e-%d-enq","ts":%q,"kind":"job.enqueued","queue":"emails","job_type":"SendReceipt","job_id":"j-%d","key":"payment:%d"}`+"\n", i, ts(0), i, i)
		fmt.Fprintf(&jobs, `{"id":"e-%d-start","ts":%q,"kind":"job.started","job_id":"j-%d","attempt":1}`+"\n", i, ts(time.Second), i)
		fmt.Fprintf(&jobs, `{"id":"e-%d-ok","ts":%q,"kind":"job.succeeded","job_id":"j-%d","attempt":1}`+"\n", i, ts(2*time.Second), i)
	}

	w := watchtest.Start(t, bin, cfg, logPath, 3)
	addrs := pushAddrs(t, w, logPath, 0, 3)
	ingest := func(body string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+addrs["api"]+"/v1/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("ingest: %d %s", resp.StatusCode, b)
		}
	}
	email := func(messageID, job, key string) {
		t.Helper()
		msg := "From: shop@shop.test\r\nTo: ann@example.com\r\nSubject: Your receipt\r\nMessage-ID: " + messageID +
			"\r\nX-Job-Id: " + job + "\r\nX-Idempotency-Key: " + key + "\r\n\r\nThanks.\r\n"
		if err := stdsmtp.SendMail(addrs["mail"], nil, "shop@shop.test", []string{"ann@example.com"}, []byte(msg)); err != nil {
			t.Fatalf("SMTP %s: %v", messageID, err)
		}
	}
	notify := func() {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+addrs["hooks"]+"/notify", strings.NewReader(`{"payment":4}`))
		req.Header.Set("Idempotency-Key", "notify/payment:4")
		req.Header.Set("X-Job-Id", "j-4")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || string(b) != "ok" {
			t.Fatalf("webhook: %d %q, want the partner's 201 ok", resp.StatusCode, b)
		}
	}

	// Acknowledged before the crash: every job's events, j-1's receipt
	// and j-2's first receipt.
	ingest(jobs.String())
	email("<r-1@shop.test>", "j-1", "receipt/payment:1")
	email("<r-2a@shop.test>", "j-2", "receipt/payment:2")
	w.Kill()

	from := logSize(logPath)
	w = watchtest.Start(t, bin, cfg, logPath, 3)
	addrs = pushAddrs(t, w, logPath, from, 3)
	// Nothing acknowledged was lost.
	if got := w.Findings().Summary.Events; got != 14 {
		t.Fatalf("after the restart: %d events, want the 14 acknowledged before SIGKILL", got)
	}
	// Clients that did not trust their answers send again (same ids);
	// j-2's job sends its receipt a second time (a new message); j-4
	// sends its receipt and notifies the partner, twice (a retry); j-3
	// sends nothing.
	ingest(jobs.String())
	email("<r-1@shop.test>", "j-1", "receipt/payment:1")
	email("<r-2b@shop.test>", "j-2", "receipt/payment:2")
	email("<r-4@shop.test>", "j-4", "receipt/payment:4")
	notify()
	notify()
	// Time moves past j-3's deadline (1m after it succeeded).
	ingest(fmt.Sprintf(`{"id":"clock","ts":%q,"kind":"state","entity":"clock"}`, ts(2*time.Minute)))

	want := []string{
		"duplicate-effect receipt/payment:2 cause=redelivery jobs=j-2",
		"missing-effect j-3 cause= jobs=j-3",
	}
	w.WaitFor(t, "the findings", func() bool { return slices.Equal(w.Findings().Keys(nil), want) })
	page := w.Findings()
	// 12 job events, the clock, 4 receipts, 1 delivery; repeated: 12 job
	// events, 1 receipt, 1 delivery.
	if page.Summary.Events != 18 || page.Summary.RepeatedIDs != 14 || page.Summary.Malformed != 0 {
		t.Fatalf("summary %+v, want 18 events, 14 repeated ids", page.Summary)
	}
	if partnerCalls.Load() != 2 {
		t.Fatalf("the partner got %d calls, want 2 (the proxy forwards every request)", partnerCalls.Load())
	}
	m := w.Metrics()
	// This run answered 2 ingest requests, 3 messages, 2 deliveries.
	if m["twice_push_requests_total"] != 7 || m["twice_push_pending_records"] != 0 {
		t.Fatalf("push metrics: requests %v, pending %v", m["twice_push_requests_total"], m["twice_push_pending_records"])
	}
	w.Stop(t)

	// The sources keep no history: an audit says so.
	out, err := exec.Command(bin, "audit", "--config", cfg, "mail").CombinedOutput()
	var ee *exec.ExitError
	if err == nil || !errors.As(err, &ee) || ee.ExitCode() != 2 ||
		!strings.Contains(string(out), "source mail (type smtp) keeps no history; use twice watch") {
		t.Fatalf("audit of an smtp source: %v\n%s", err, out)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
