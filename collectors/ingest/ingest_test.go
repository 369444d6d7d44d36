package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"github.com/twicehq/twice/config"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twicehq/twice/collectors/push"
	"github.com/twicehq/twice/collectors/push/pushtest"
	"github.com/twicehq/twice/sidecar"
	"github.com/twicehq/twice/sources"
)

const jobEvents = `{"id":"e-1","ts":"2026-11-24T10:00:00Z","kind":"job.enqueued","queue":"emails","job_type":"SendReceipt","job_id":"j-1","key":"payment:123"}
{"id":"e-2","ts":"2026-11-24T10:00:01Z","kind":"job.started","job_id":"j-1","attempt":1}

{"id":"e-3","ts":"2026-11-24T10:00:02Z","kind":"job.succeeded","job_id":"j-1","attempt":1}
`

// bundle is an ingest stream run by a real sidecar watcher.
type bundle struct {
	s   *Stream
	w   *sidecar.Watcher
	reg *prometheus.Registry
	url string
}

func startWatch(t *testing.T, cfg Config) *bundle {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	s, err := NewStream("api", cfg, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)
	w := sidecar.New(sidecar.Options{StateDir: t.TempDir(), Streams: []sidecar.Stream{s}, Registry: reg,
		CheckpointInterval: 20 * time.Millisecond, Logf: t.Logf})
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	waitFor(t, "the ingest server to listen", func() bool { return s.Addr() != "" })
	return &bundle{s: s, w: w, reg: reg, url: "http://" + s.Addr() + Path}
}

// waitFor polls cond until it holds, failing after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// post sends body and returns the status and the decoded answer.
func post(t *testing.T, url, token, body string) (int, Response, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r Response
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("answer %d %q is not JSON: %v", resp.StatusCode, b, err)
	}
	return resp.StatusCode, r, resp.Header
}

// summary returns the summary of the watch's GET /findings.
func (b *bundle) summary(t *testing.T) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	b.w.Handler(b.reg).ServeHTTP(rec, httptest.NewRequest("GET", "/findings", nil))
	var page struct {
		Summary map[string]any `json:"summary"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for k, v := range page.Summary {
		if f, ok := v.(float64); ok {
			out[k] = f
		}
	}
	return out
}

func TestIngestAnswersOnceEventsAreDurableAndIsIdempotent(t *testing.T) {
	b := startWatch(t, Config{})
	code, r, _ := post(t, b.url, "", jobEvents)
	if code != http.StatusOK || r.Accepted != 3 || r.Rejected != 0 || len(r.Errors) != 0 {
		t.Fatalf("answer %d %+v, want 200 with 3 accepted", code, r)
	}
	// Answered only after the checkpoint: the watch has audited them.
	if s := b.summary(t); s["events"] != 3 {
		t.Fatalf("summary after the 200: %v, want 3 events", s)
	}
	// The same body again (a client retry): accepted, counted once.
	code, r, _ = post(t, b.url, "", jobEvents)
	if code != http.StatusOK || r.Accepted != 3 {
		t.Fatalf("retry: %d %+v", code, r)
	}
	if s := b.summary(t); s["events"] != 3 || s["repeated_ids"] != 3 {
		t.Fatalf("summary after a retry: %v, want 3 events and 3 repeated ids", s)
	}
	if st := b.s.Stats(); st.Requests["accepted"] != 2 || st.Durable != 6 {
		t.Fatalf("stats %+v", st)
	}
}

func TestIngestListsBadLinesAndKeepsTheGoodOnes(t *testing.T) {
	b := startWatch(t, Config{})
	body := `{"id":"g-1","ts":"2026-11-24T10:00:00Z","kind":"state","entity":"order:1"}
{"id":"b-1","ts":"2026-11-24T10:00:01Z","kind":"effect","effect":"email.sent"}
not json
{"id":"g-2","ts":"2026-11-24T10:00:02Z","kind":"state","entity":"order:1"}`
	code, r, _ := post(t, b.url, "", body)
	want := Response{Accepted: 2, Rejected: 2, Errors: []LineError{
		{Line: 2, Error: `missing field "effect_key" (needed by kind "effect")`},
		{Line: 3, Error: "invalid JSON: invalid character 'n' looking for beginning of value"},
	}}
	if code != http.StatusUnprocessableEntity || r.Accepted != want.Accepted || r.Rejected != want.Rejected || len(r.Errors) != 2 ||
		r.Errors[0].Line != 2 || r.Errors[1].Line != 3 || !strings.Contains(r.Errors[0].Error, "effect_key") {
		t.Fatalf("answer %d %+v\nwant 422 %+v", code, r, want)
	}
	if s := b.summary(t); s["events"] != 2 || s["malformed"] != 2 {
		t.Fatalf("summary: %v, want the 2 good events audited and the 2 bad lines counted as malformed", s)
	}
	// All lines bad: still 422, nothing audited.
	code, r, _ = post(t, b.url, "", "{}\n[1]\n")
	if code != http.StatusUnprocessableEntity || r.Accepted != 0 || r.Rejected != 2 {
		t.Fatalf("all bad: %d %+v", code, r)
	}
	// Nothing at all: 400.
	code, r, _ = post(t, b.url, "", "\n \n")
	if code != http.StatusBadRequest || r.Error == "" {
		t.Fatalf("empty: %d %+v", code, r)
	}
}

func TestIngestRefusals(t *testing.T) {
	b := startWatch(t, Config{Token: config.Secret{Value: "s3cret"}, MaxBodyBytes: 1024})
	if code, r, h := post(t, b.url, "", jobEvents); code != http.StatusUnauthorized || r.Error == "" || h.Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: %d %+v", code, r)
	}
	if code, _, _ := post(t, b.url, "wrong", jobEvents); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	if code, r, _ := post(t, b.url, "s3cret", jobEvents); code != http.StatusOK || r.Accepted != 3 {
		t.Fatalf("right token: %d %+v", code, r)
	}
	big := strings.Repeat(`{"id":"x","ts":"2026-11-24T10:00:00Z","kind":"state","entity":"e"}`+"\n", 20)
	if code, r, _ := post(t, b.url, "s3cret", big); code != http.StatusRequestEntityTooLarge || !strings.Contains(r.Error, "max_body_bytes") {
		t.Fatalf("big body: %d %+v", code, r)
	}
	// A body without Content-Length (chunked) is cut at the limit too.
	req, _ := http.NewRequest(http.MethodPost, b.url, io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked big body: %d", resp.StatusCode)
	}
	resp, err = http.Get(b.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	if code, _, _ := post(t, strings.TrimSuffix(b.url, Path)+"/v1/other", "s3cret", jobEvents); code != http.StatusNotFound {
		t.Fatalf("other path: %d", code)
	}
	st := b.s.Stats()
	if st.Requests["unauthorized"] != 2 || st.Requests["too_large"] != 2 || st.Requests["accepted"] != 1 {
		t.Fatalf("counts %+v", st.Requests)
	}
	if s := b.summary(t); s["events"] != 3 {
		t.Fatalf("summary %v: only the authorized request's events count", s)
	}
}

func TestIngestWithCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	b := startWatch(t, Config{Token: config.Secret{Value: "s3cret"}})
	f := filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(f, []byte(jobEvents), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(curl, "-sS", "-w", "\n%{http_code}", "-H", "Authorization: Bearer s3cret",
		"-H", "Content-Type: application/x-ndjson", "--data-binary", "@"+f, b.url).Output()
	if err != nil {
		t.Fatalf("curl: %v", err)
	}
	if got := string(out); got != "{\"accepted\":3,\"rejected\":0}\n\n200" {
		t.Fatalf("curl printed %q", got)
	}
	if s := b.summary(t); s["events"] != 3 {
		t.Fatalf("summary %v", s)
	}
}

// sidecarless starts an ingest stream that no watch reads: the test
// polls and commits itself.
func sidecarless(t *testing.T, cfg Config) (*Stream, string) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	s, err := NewStream("api", cfg, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s, "http://" + s.Addr() + Path
}

type answer struct {
	code  int
	r     Response
	retry string
}

func postAsync(t *testing.T, url, body string) <-chan answer {
	ch := make(chan answer, 1)
	go func() {
		resp, err := http.Post(url, "application/x-ndjson", strings.NewReader(body))
		if err != nil {
			t.Error(err)
			ch <- answer{}
			return
		}
		defer resp.Body.Close()
		var r Response
		_ = json.NewDecoder(resp.Body).Decode(&r)
		ch <- answer{resp.StatusCode, r, resp.Header.Get("Retry-After")}
	}()
	return ch
}

func pollN(t *testing.T, s *Stream, n int) []sources.Record {
	t.Helper()
	var out []sources.Record
	waitFor(t, "records to poll", func() bool {
		recs, _ := s.Poll(context.Background(), 10*time.Millisecond)
		out = append(out, recs...)
		return len(out) >= n
	})
	return out
}

func TestIngestHoldsTheAnswerUntilCommitAndPushesBack(t *testing.T) {
	s, url := sidecarless(t, Config{MaxPending: 4})
	first := postAsync(t, url, jobEvents)
	recs := pollN(t, s, 3)
	// The handler has submitted (the records were polled), and nothing
	// committed them: the client has no answer yet.
	select {
	case a := <-first:
		t.Fatalf("answered %d before the commit", a.code)
	default:
	}
	// Full: 3 of 4 pending, 3 more do not fit.
	if a := <-postAsync(t, url, jobEvents); a.code != http.StatusServiceUnavailable || a.retry != "1" {
		t.Fatalf("while full: %+v, want 503 with Retry-After 1", a)
	}
	// More than fits at all: 413.
	if a := <-postAsync(t, url, jobEvents+jobEvents); a.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("6 events with max_pending 4: %+v", a)
	}
	if err := s.Commit(context.Background(), map[string]sources.Position{"events": recs[2].Position}); err != nil {
		t.Fatal(err)
	}
	if a := <-first; a.code != http.StatusOK || a.r.Accepted != 3 {
		t.Fatalf("after the commit: %+v", a)
	}
	// A client still waiting at shutdown is told to retry.
	waiting := postAsync(t, url, jobEvents)
	pollN(t, s, 3)
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a := <-waiting; a.code != http.StatusServiceUnavailable || a.retry != "1" {
		t.Fatalf("at shutdown: %+v, want 503 with Retry-After", a)
	}
}

func TestIngestGzipBody(t *testing.T) {
	b := startWatch(t, Config{MaxBodyBytes: 2048})
	send := func(body []byte, enc string) (int, Response) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, b.url, bytes.NewReader(body))
		req.Header.Set("Content-Encoding", enc)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r Response
		_ = json.NewDecoder(resp.Body).Decode(&r)
		return resp.StatusCode, r
	}
	if code, r := send(gzipped(jobEvents), "gzip"); code != http.StatusOK || r.Accepted != 3 {
		t.Fatalf("gzip: %d %+v", code, r)
	}
	// Small on the wire, too large once decompressed.
	bomb := gzipped(strings.Repeat(" ", 4096) + jobEvents)
	if code, r := send(bomb, "gzip"); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("gzip bomb (%d bytes sent): %d %+v", len(bomb), code, r)
	}
	if code, _ := send([]byte(jobEvents), "br"); code != http.StatusUnsupportedMediaType {
		t.Fatalf("br: %d", code)
	}
	if code, _ := send([]byte("not gzip"), "gzip"); code != http.StatusBadRequest {
		t.Fatalf("bad gzip: %d", code)
	}
	if s := b.summary(t); s["events"] != 3 {
		t.Fatalf("summary %v", s)
	}
}

func gzipped(s string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(s))
	zw.Close()
	return buf.Bytes()
}

func TestIngestOverHTTPS(t *testing.T) {
	cert := pushtest.SelfSigned(t)
	b := startWatch(t, Config{TLS: &push.TLSFiles{CertFile: cert.CertFile, KeyFile: cert.KeyFile}})
	url := strings.Replace(b.url, "http://", "https://", 1)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool}}}
	resp, err := client.Post(url, "application/x-ndjson", strings.NewReader(jobEvents))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTPS: %d", resp.StatusCode)
	}
	// Plain HTTP to it is no request.
	resp, err = http.Post(b.url, "application/x-ndjson", strings.NewReader(jobEvents))
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP accepted by an HTTPS source")
		}
	}
	if s := b.summary(t); s["events"] != 3 {
		t.Fatalf("summary %v", s)
	}
}
