package webhooksink_test

import (
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

	"github.com/twicehq/twice/internal/watchtest"
	"github.com/twicehq/twice/sidecar/webhooksink"
)

func TestMain(m *testing.M) { os.Exit(watchtest.Main(m)) }

// hooks is a real HTTP receiver of both formats, keeping each body by
// path and idempotency key.
type hooks struct {
	mu    sync.Mutex
	posts map[string][]post // by path
	// held, when set, receives the first JSON post, which is answered
	// only once release is closed.
	held    chan post
	release chan struct{}
}

type post struct{ key, body string }

func (h *hooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p := post{r.Header.Get(webhooksink.IdempotencyKeyHeader), string(body)}
	h.mu.Lock()
	h.posts[r.URL.Path] = append(h.posts[r.URL.Path], p)
	first := r.URL.Path == "/json" && len(h.posts["/json"]) == 1
	h.mu.Unlock()
	if first && h.held != nil {
		h.held <- p
		<-h.release
	}
	w.WriteHeader(http.StatusOK)
}

func (h *hooks) get(path string) []post {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]post(nil), h.posts[path]...)
}

// TestWatchPostsRedactedFindings runs the real `twice watch` with a file
// source whose job sends a receipt to an email address twice, and two
// webhook sinks: the generic JSON one gets the duplicate-effect finding's
// revision, Slack one message; neither body holds the raw address (the
// engine redacts it before any sink sees it). The JSON receiver holds its
// first POST unanswered while the watch is SIGKILLed: the revision was
// delivered but the watch could not record it, so the next run posts it
// again, with the same Idempotency-Key and body (at least once; a
// receiver that keeps keys holds it once).
func TestWatchPostsRedactedFindings(t *testing.T) {
	bin := watchtest.Build(t)
	dir := t.TempDir()
	h := &hooks{posts: map[string][]post{}, held: make(chan post, 1), release: make(chan struct{})}
	srv := httptest.NewServer(h)
	defer srv.Close()

	const email = "alice.smith@example.com"
	events := filepath.Join(dir, "events.jsonl")
	lines := fmt.Sprintf(`{"id": "e-1", "ts": "2026-11-24T10:00:00Z", "kind": "job.enqueued", "queue": "emails", "job_type": "SendReceipt", "job_id": "j-1", "key": %[1]q}
{"id": "e-2", "ts": "2026-11-24T10:00:01Z", "kind": "job.started", "queue": "emails", "job_type": "SendReceipt", "job_id": "j-1", "attempt": 1}
{"id": "e-3", "ts": "2026-11-24T10:00:02Z", "kind": "effect", "job_id": "j-1", "attempt": 1, "effect": "email.sent", "effect_key": "receipt/%[1]s"}
{"id": "e-4", "ts": "2026-11-24T10:00:03Z", "kind": "effect", "job_id": "j-1", "attempt": 1, "effect": "email.sent", "effect_key": "receipt/%[1]s"}
{"id": "e-5", "ts": "2026-11-24T10:00:04Z", "kind": "job.succeeded", "queue": "emails", "job_type": "SendReceipt", "job_id": "j-1", "attempt": 1}
`, email)
	if err := os.WriteFile(events, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "twice.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `
sources:
  - {name: jobs, type: file, path: %s}
expect:
  - {job_type: SendReceipt, effect: email.sent, effect_key: "receipt/{{key}}", within: 1m}
watch:
  state_dir: %s
  listen: "127.0.0.1:0"
  checkpoint_interval: 50ms
  findings:
    - {type: webhook, url: "%s/json?token=s3cret"}
    - {type: webhook, url_env: TWICE_TEST_SLACK_URL, format: slack, timeout: 2s}
`, events, filepath.Join(dir, "state"), srv.URL), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TWICE_TEST_SLACK_URL", srv.URL+"/slack")
	logPath := filepath.Join(dir, "watch.log")

	w := watchtest.Start(t, bin, cfg, logPath, 1)
	var first post
	w.WaitFor(t, "the first revision posted to the JSON webhook", func() bool {
		select {
		case first = <-h.held:
			return true
		default:
			return false
		}
	})
	// Delivered, not answered: the crash between the POST and the
	// checkpoint that would record it.
	w.Kill()
	close(h.release)

	w = watchtest.Start(t, bin, cfg, logPath, 1)
	w.WaitFor(t, "the revision posted again and Slack's message", func() bool {
		return len(h.get("/json")) >= 2 && len(h.get("/slack")) >= 1
	})
	jsonPosts, slackPosts := h.get("/json"), h.get("/slack")
	if jsonPosts[1].key != first.key || jsonPosts[1].body != first.body {
		t.Errorf("posted again as %q %s, first as %q %s", jsonPosts[1].key, jsonPosts[1].body, first.key, first.body)
	}
	var rev struct {
		Seq      uint64 `json:"seq"`
		Status   string `json:"status"`
		Detector string `json:"detector"`
		Subject  string `json:"subject"`
	}
	if err := json.Unmarshal([]byte(jsonPosts[0].body), &rev); err != nil {
		t.Fatalf("json webhook body: %v: %s", err, jsonPosts[0].body)
	}
	if rev.Detector != "duplicate-effect" || rev.Status != "firing" || !strings.Contains(rev.Subject, "<email:") {
		t.Errorf("json webhook got %+v, want a firing duplicate-effect with a redacted subject", rev)
	}
	if want := fmt.Sprintf("%d-", rev.Seq); !strings.HasPrefix(jsonPosts[0].key, want) {
		t.Errorf("key %q, want it to start with %q", jsonPosts[0].key, want)
	}
	var msg struct{ Text string }
	if err := json.Unmarshal([]byte(slackPosts[0].body), &msg); err != nil || !strings.HasPrefix(msg.Text, "New high finding: duplicate-effect") {
		t.Errorf("slack message %q (%v)", slackPosts[0].body, err)
	}
	w.WaitFor(t, "the webhook sinks' deliveries counted", func() bool { return w.Metrics()["twice_webhook_requests_total"] >= 2 })
	w.Stop(t)

	for _, path := range []string{"/json", "/slack"} {
		byKey := map[string]string{}
		for _, p := range h.get(path) {
			if strings.Contains(p.body, email) || strings.Contains(p.body, "alice.smith") {
				t.Errorf("%s: the raw address reached the webhook: %s", path, p.body)
			}
			if prev, ok := byKey[p.key]; ok && prev != p.body {
				t.Errorf("%s: key %s posted with two bodies:\n%s\n%s", path, p.key, prev, p.body)
			}
			byKey[p.key] = p.body
		}
	}
	log, _ := os.ReadFile(logPath)
	if strings.Contains(string(log), "s3cret") || strings.Contains(string(log), srv.URL+"/json") {
		t.Errorf("the webhook URL is in the log:\n%s", watchtest.Tail(string(log), 2000))
	}
}
