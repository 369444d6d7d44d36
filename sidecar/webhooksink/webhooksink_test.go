package webhooksink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twicehq/twice/sidecar"
)

// receiver is a real HTTP server that records what it is posted and
// answers by the test's rule.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []request
	answer func(n int, r request) (status int, header http.Header)
}

type request struct {
	at   time.Time
	path string
	key  string
	seq  string
	ct   string
	body []byte
}

func newReceiver(t *testing.T, answer func(n int, r request) (int, http.Header)) *receiver {
	rc := &receiver{answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := request{at: time.Now(), path: r.URL.Path, key: r.Header.Get(IdempotencyKeyHeader),
			seq: r.Header.Get(SeqHeader), ct: r.Header.Get("Content-Type"), body: body}
		rc.mu.Lock()
		rc.got = append(rc.got, req)
		n := len(rc.got)
		rc.mu.Unlock()
		status, h := http.StatusOK, http.Header(nil)
		if rc.answer != nil {
			status, h = rc.answer(n, req)
		}
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.got...)
}

func rev(seq, revision uint64, fp, status, severity string) sidecar.Revision {
	return sidecar.Revision{Seq: seq, Fingerprint: fp, Line: fmt.Appendf(nil,
		`{"seq":%d,"revision":%d,"status":%q,"emitted_at":"2026-12-03T10:00:00Z","detector":"duplicate-effect","severity":%q,"subject":"receipt/payment:%s","fingerprint":%q,"count":%d,"cause":"redelivery","message":"email.sent receipt/payment:%s happened %d times"}`,
		seq, revision, status, severity, fp, fp, revision+1, fp, revision+1)}
}

func started(t *testing.T, o Options) *Sink {
	t.Helper()
	if o.MinBackoff == 0 {
		o.MinBackoff, o.MaxBackoff = time.Millisecond, 5*time.Millisecond
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	held, err := s.Start(context.Background(), 0)
	if err != nil || held != nil {
		t.Fatalf("Start: %v %v", held, err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s
}

func counts(t *testing.T, s *Sink) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" {
					out[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// TestPublishPostsEachRevision: generic JSON posts each revision's line
// as it is, in order, with its seq and idempotency key.
func TestPublishPostsEachRevision(t *testing.T) {
	rc := newReceiver(t, nil)
	s := started(t, Options{URL: rc.URL + "/hooks/twice"})
	revs := []sidecar.Revision{rev(1, 1, "a", "firing", "high"), rev(2, 1, "b", "firing", "low"), rev(3, 2, "a", "resolved", "high")}
	if err := s.Publish(context.Background(), revs); err != nil {
		t.Fatal(err)
	}
	got := rc.requests()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	for i, r := range got {
		if !bytes.Equal(r.body, revs[i].Line) {
			t.Errorf("request %d: body %s, want %s", i, r.body, revs[i].Line)
		}
		if want := fmt.Sprintf("%d-%s", revs[i].Seq, revs[i].Fingerprint); r.key != want {
			t.Errorf("request %d: Idempotency-Key %q, want %q", i, r.key, want)
		}
		if r.seq != fmt.Sprint(revs[i].Seq) || r.ct != "application/json" || r.path != "/hooks/twice" {
			t.Errorf("request %d: seq %q, content type %q, path %q", i, r.seq, r.ct, r.path)
		}
	}
	if c := counts(t, s); c["delivered"] != 3 || c["rejected"] != 0 || c["failed"] != 0 {
		t.Errorf("counts %v", c)
	}
}

// TestPublishRetries5xx: a receiver that answers 500 twice gets the
// revision a third time, with the same key, and the publish succeeds.
func TestPublishRetries5xx(t *testing.T) {
	rc := newReceiver(t, func(n int, _ request) (int, http.Header) {
		if n <= 2 {
			return http.StatusInternalServerError, nil
		}
		return http.StatusNoContent, nil
	})
	s := started(t, Options{URL: rc.URL})
	if err := s.Publish(context.Background(), []sidecar.Revision{rev(7, 1, "a", "firing", "high")}); err != nil {
		t.Fatal(err)
	}
	got := rc.requests()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	for _, r := range got {
		if r.key != "7-a" {
			t.Errorf("key %q, want 7-a on every attempt", r.key)
		}
	}
	if c := counts(t, s); c["delivered"] != 1 || c["failed"] != 2 {
		t.Errorf("counts %v, want 1 delivered, 2 failed", c)
	}
}

// TestFailedPublishRetriedWithoutRepeats: a publish that fails on its
// second revision (the receiver down for it) returns an error; retried
// with later revisions added, it does not post the first again.
func TestFailedPublishRetriedWithoutRepeats(t *testing.T) {
	var down sync.Mutex
	broken := true
	rc := newReceiver(t, func(_ int, r request) (int, http.Header) {
		down.Lock()
		defer down.Unlock()
		if broken && r.seq == "2" {
			return http.StatusBadGateway, nil
		}
		return http.StatusOK, nil
	})
	s := started(t, Options{URL: rc.URL, MaxAttempts: 2})
	ctx := context.Background()
	revs := []sidecar.Revision{rev(1, 1, "a", "firing", "high"), rev(2, 1, "b", "firing", "high")}
	if err := s.Publish(ctx, revs); err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("publish with the receiver failing: %v, want a 502 error", err)
	}
	down.Lock()
	broken = false
	down.Unlock()
	if err := s.Publish(ctx, append(revs, rev(3, 1, "c", "firing", "high"))); err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, r := range rc.requests() {
		per[r.seq]++
	}
	if per["1"] != 1 || per["2"] != 3 || per["3"] != 1 {
		t.Errorf("requests per seq %v, want 1:1 2:3 (two failed, one delivered) 3:1", per)
	}
}

// TestPermanent4xxNotRetried: a 400 or 404 is not retried: counted as
// rejected, logged, and the publish goes on with the next revision. 408
// is retried.
func TestPermanent4xxNotRetried(t *testing.T) {
	rc := newReceiver(t, func(n int, r request) (int, http.Header) {
		switch r.seq {
		case "1":
			return http.StatusBadRequest, nil
		case "2":
			return http.StatusNotFound, nil
		case "3":
			if n == 3 {
				return http.StatusRequestTimeout, nil
			}
		}
		return http.StatusOK, nil
	})
	var logs bytes.Buffer
	s := started(t, Options{URL: rc.URL, Logf: func(f string, a ...any) { fmt.Fprintf(&logs, f+"\n", a...) }})
	revs := []sidecar.Revision{rev(1, 1, "a", "firing", "high"), rev(2, 1, "b", "firing", "high"), rev(3, 1, "c", "firing", "high")}
	if err := s.Publish(context.Background(), revs); err != nil {
		t.Fatal(err)
	}
	if n := len(rc.requests()); n != 4 {
		t.Errorf("%d requests, want 4 (400 and 404 once, 408 then 200)", n)
	}
	if c := counts(t, s); c["rejected"] != 2 || c["delivered"] != 1 || c["failed"] != 1 {
		t.Errorf("counts %v, want 2 rejected, 1 delivered, 1 failed", c)
	}
	if !strings.Contains(logs.String(), "refused with 400: not retried") || !strings.Contains(logs.String(), "refused with 404") {
		t.Errorf("log does not name the refusals:\n%s", logs.String())
	}
}

// TestRetryAfterHonoured: a 429 with Retry-After: 1 is tried again no
// sooner than a second later; one longer than MaxRetryAfter fails the
// publish at once, and nothing is posted before it has passed.
func TestRetryAfterHonoured(t *testing.T) {
	rc := newReceiver(t, func(n int, _ request) (int, http.Header) {
		if n == 1 {
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}
		}
		return http.StatusOK, nil
	})
	s := started(t, Options{URL: rc.URL})
	if err := s.Publish(context.Background(), []sidecar.Revision{rev(1, 1, "a", "firing", "high")}); err != nil {
		t.Fatal(err)
	}
	got := rc.requests()
	if len(got) != 2 {
		t.Fatalf("%d requests, want 2", len(got))
	}
	if gap := got[1].at.Sub(got[0].at); gap < time.Second {
		t.Errorf("retried %v after a 429 with Retry-After: 1", gap)
	}

	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	long := newReceiver(t, func(n int, _ request) (int, http.Header) {
		if n == 1 {
			return http.StatusTooManyRequests, http.Header{"Retry-After": {now.Add(time.Hour).Format(http.TimeFormat)}}
		}
		return http.StatusOK, nil
	})
	clock := now
	s2 := started(t, Options{URL: long.URL, Now: func() time.Time { return clock }})
	revs := []sidecar.Revision{rev(1, 1, "a", "firing", "high")}
	if err := s2.Publish(context.Background(), revs); err == nil {
		t.Fatal("publish succeeded despite a Retry-After of an hour")
	}
	clock = now.Add(30 * time.Minute)
	if err := s2.Publish(context.Background(), revs); err == nil || !strings.Contains(err.Error(), "retry after 30m0s") {
		t.Fatalf("publish within the Retry-After: %v", err)
	}
	if n := len(long.requests()); n != 1 {
		t.Fatalf("%d requests within the Retry-After, want 1", n)
	}
	clock = now.Add(time.Hour + time.Second)
	if err := s2.Publish(context.Background(), revs); err != nil {
		t.Fatal(err)
	}
	if n := len(long.requests()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

// TestTimeoutAndSecretsNeverShown: a receiver that does not answer is
// timed out; no error, log line or sink name holds the URL's secrets
// (path token, query token, user info), whether the server hangs,
// answers 500 or is gone.
func TestTimeoutAndSecretsNeverShown(t *testing.T) {
	const token = "s3cr3tT0k3n"
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	failing := newReceiver(t, func(int, request) (int, http.Header) { return http.StatusInternalServerError, nil })
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()

	var logs bytes.Buffer
	for _, base := range []string{hang.URL, failing.URL, gone.URL} {
		u := strings.Replace(base, "http://", "http://user:"+token+"@", 1) + "/services/T0/B0/" + token + "?token=" + token
		s := started(t, Options{URL: u, Timeout: 100 * time.Millisecond, MaxAttempts: 2,
			Logf: func(f string, a ...any) { fmt.Fprintf(&logs, f+"\n", a...) }})
		start := time.Now()
		err := s.Publish(context.Background(), []sidecar.Revision{rev(1, 1, "a", "firing", "high")})
		if err == nil {
			t.Fatalf("%s: publish succeeded", base)
		}
		if base == hang.URL {
			if !strings.Contains(err.Error(), "timed out") {
				t.Errorf("hanging server: error %q does not say it timed out", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("hanging server: publish took %v with a 100ms timeout", d)
			}
		}
		for _, shown := range []string{err.Error(), s.Name(), logs.String(), fmt.Sprint(counts(t, s))} {
			if strings.Contains(shown, token) || strings.Contains(shown, "/services/") {
				t.Errorf("%s: the URL's secret is shown: %q", base, shown)
			}
		}
	}
	if _, err := New(Options{URL: "ftp://" + token + "@x/"}); err == nil || strings.Contains(err.Error(), token) {
		t.Errorf("bad URL: error %v", err)
	}
}

// TestNameStableAndDistinct: the name is the same for the same URL (it
// is the key of the sink's position in the checkpoint) and differs
// between two webhooks of one host.
func TestNameStableAndDistinct(t *testing.T) {
	a1, _ := New(Options{URL: "https://hooks.slack.com/services/T/B/one"})
	a2, _ := New(Options{URL: "https://hooks.slack.com/services/T/B/one"})
	b, _ := New(Options{URL: "https://hooks.slack.com/services/T/B/two"})
	if a1.Name() != a2.Name() || a1.Name() == b.Name() || !strings.HasPrefix(a1.Name(), "webhook:hooks.slack.com/") {
		t.Errorf("names %q %q %q", a1.Name(), a2.Name(), b.Name())
	}
}

// TestRepostAfterCrashHasSameKey: a webhook cannot be read back, so a
// revision posted just before a crash is posted again by the next run
// (at least once); it carries the same Idempotency-Key, so a receiver
// that keeps the keys it has seen holds each revision once.
func TestRepostAfterCrashHasSameKey(t *testing.T) {
	seen := map[string]int{}
	var mu sync.Mutex
	rc := newReceiver(t, func(_ int, r request) (int, http.Header) {
		mu.Lock()
		seen[r.key]++
		mu.Unlock()
		return http.StatusOK, nil
	})
	revs := []sidecar.Revision{rev(1, 1, "a", "firing", "high"), rev(2, 1, "b", "firing", "high")}
	first := started(t, Options{URL: rc.URL})
	if err := first.Publish(context.Background(), revs); err != nil {
		t.Fatal(err)
	}
	// The crash: the checkpoint never recorded the publish. The next run
	// starts a new sink after seq 0 and publishes the outbox again.
	second := started(t, Options{URL: rc.URL})
	if err := second.Publish(context.Background(), append(revs, rev(3, 2, "a", "firing", "critical"))); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 || seen["1-a"] != 2 || seen["2-b"] != 2 || seen["3-a"] != 1 {
		t.Errorf("keys posted %v: want 1-a and 2-b twice with the same key, 3-a once", seen)
	}
}

// TestSlackMessages: Slack gets one message per finding that is new,
// worse (higher severity) or back after being resolved; not for a
// revision that only counts more, not for a resolution, not for a
// finding first seen at a later revision (it stood before this run).
func TestSlackMessages(t *testing.T) {
	rc := newReceiver(t, nil)
	s := started(t, Options{URL: rc.URL, Format: FormatSlack})
	revs := []sidecar.Revision{
		rev(1, 1, "a", "firing", "high"),     // new
		rev(2, 2, "a", "firing", "high"),     // counts more: no message
		rev(3, 3, "a", "firing", "critical"), // worse
		rev(4, 5, "z", "firing", "critical"), // stood before this run: no message
		rev(5, 4, "a", "resolved", "critical"),
		rev(6, 5, "a", "firing", "medium"), // back
		rev(7, 1, "b", "firing", "low"),    // new
	}
	if err := s.Publish(context.Background(), revs); err != nil {
		t.Fatal(err)
	}
	got := rc.requests()
	want := []struct{ seq, head string }{{"1", "New high finding: duplicate-effect"}, {"3", "Worse critical finding: duplicate-effect"},
		{"6", "Back medium finding: duplicate-effect"}, {"7", "New low finding: duplicate-effect"}}
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d", len(got), len(want))
	}
	for i, r := range got {
		var msg struct {
			Text   string `json:"text"`
			Blocks []struct {
				Type string `json:"type"`
				Text *struct {
					Type string `json:"type"`
					Text string `json:"text"`
				} `json:"text"`
				Elements []struct {
					Type string `json:"type"`
					Text string `json:"text"`
				} `json:"elements"`
			} `json:"blocks"`
		}
		dec := json.NewDecoder(bytes.NewReader(r.body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&msg); err != nil {
			t.Fatalf("message %d: %v: %s", i, err, r.body)
		}
		if r.seq != want[i].seq || !strings.HasPrefix(msg.Text, want[i].head+": email.sent receipt/payment:") {
			t.Errorf("message %d: seq %s text %q, want seq %s %q…", i, r.seq, msg.Text, want[i].seq, want[i].head)
		}
		if len(msg.Blocks) != 2 || msg.Blocks[0].Type != "section" || msg.Blocks[0].Text == nil || msg.Blocks[0].Text.Type != "mrkdwn" ||
			!strings.HasPrefix(msg.Blocks[0].Text.Text, "*"+want[i].head+"*\n") ||
			msg.Blocks[1].Type != "context" || len(msg.Blocks[1].Elements) != 1 || !strings.Contains(msg.Blocks[1].Elements[0].Text, "fingerprint: `") {
			t.Errorf("message %d: blocks %s", i, r.body)
		}
	}
}

// TestSlackEscapes: a subject with Slack markup (<!channel>, a link)
// is shown as text.
func TestSlackEscapes(t *testing.T) {
	rc := newReceiver(t, nil)
	s := started(t, Options{URL: rc.URL, Format: FormatSlack})
	r := sidecar.Revision{Seq: 1, Fingerprint: "x", Line: []byte(`{"seq":1,"revision":1,"status":"firing","detector":"d","severity":"high","subject":"<!channel> & <https://evil|x>","fingerprint":"x","message":"<!here>"}`)}
	if err := s.Publish(context.Background(), []sidecar.Revision{r}); err != nil {
		t.Fatal(err)
	}
	// As Slack reads it: JSON's \u escapes undone.
	body := strings.NewReplacer(`\u0026`, "&", `\u003c`, "<", `\u003e`, ">").Replace(string(rc.requests()[0].body))
	if strings.Contains(body, "<!") || strings.Contains(body, "<https") {
		t.Errorf("markup not escaped: %s", body)
	}
	if !strings.Contains(body, "&lt;!channel&gt; &amp; &lt;https://evil|x&gt;") {
		t.Errorf("subject not shown escaped: %s", body)
	}
}

// TestSlackMessageRetried: a Slack message whose publish failed is posted
// at the retry (the finding is not taken as already announced).
func TestSlackMessageRetried(t *testing.T) {
	var mu sync.Mutex
	failing := true
	rc := newReceiver(t, func(int, request) (int, http.Header) {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			return http.StatusServiceUnavailable, nil
		}
		return http.StatusOK, nil
	})
	s := started(t, Options{URL: rc.URL, Format: FormatSlack, MaxAttempts: 2})
	revs := []sidecar.Revision{rev(1, 1, "a", "firing", "high")}
	if err := s.Publish(context.Background(), revs); err == nil {
		t.Fatal("publish succeeded with Slack answering 503")
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	if err := s.Publish(context.Background(), revs); err != nil {
		t.Fatal(err)
	}
	got := rc.requests()
	if len(got) != 3 || !bytes.Contains(got[2].body, []byte("New high finding")) {
		t.Fatalf("%d requests, the last %s: want the message posted at the retry", len(got), got[len(got)-1].body)
	}
}

// TestPublishTimeout: a publish to a receiver that hangs ends at
// PublishTimeout, however long each request may take, and fails.
func TestPublishTimeout(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	s := started(t, Options{URL: hang.URL, Timeout: time.Minute, PublishTimeout: 200 * time.Millisecond})
	start := time.Now()
	err := s.Publish(context.Background(), []sidecar.Revision{rev(1, 1, "a", "firing", "high")})
	if err == nil {
		t.Fatal("publish to a hanging receiver succeeded")
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("publish took %v with a PublishTimeout of 200ms", d)
	}
}
