package webhook

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
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twicehq/twice/collectors/push"
	"github.com/twicehq/twice/collectors/push/pushtest"
	"github.com/twicehq/twice/sources"
)

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

func fixedClock() time.Time { return time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC) }

// got is a request as the upstream received it.
type got struct {
	method, uri, host string
	header            http.Header
	body              []byte
}

// fakeUpstream records what it gets and answers with answer.
type fakeUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []got
}

func (u *fakeUpstream) requests() []got {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]got(nil), u.reqs...)
}

func startUpstream(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *fakeUpstream {
	u := &fakeUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, got{r.Method, r.RequestURI, r.Host, r.Header.Clone(), b})
		u.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func startProxy(t *testing.T, cfg Config) *Stream {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	s, err := NewStream("hooks", cfg, fixedClock, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

// commitAll plays the sidecar: it polls, commits at once, and sends what
// it polled on the channel.
func commitAll(t *testing.T, s *Stream) <-chan sources.Record {
	ch := make(chan sources.Record, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			recs, _ := s.Poll(ctx, 10*time.Millisecond)
			if len(recs) == 0 {
				continue
			}
			for _, r := range recs {
				ch <- r
			}
			_ = s.Commit(ctx, map[string]sources.Position{s.Lane(): recs[len(recs)-1].Position})
		}
	}()
	return ch
}

func gz(t *testing.T, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func TestProxyForwardsUnchangedByteForByte(t *testing.T) {
	respBody := gz(t, `{"ok":true}`)
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Encoding"] = []string{"gzip"}
		h["Set-Cookie"] = []string{"a=1", "b=2"}
		h["X-Partner-Trace"] = []string{"t-1"}
		h["Date"] = []string{"Tue, 01 Dec 2026 10:00:00 GMT"}
		h["Content-Length"] = []string{"35"}
		w.WriteHeader(http.StatusAccepted)
		w.Write(respBody)
	})
	if len(respBody) != 35 {
		t.Fatalf("gzip body is %d bytes; fix Content-Length above", len(respBody))
	}
	s := startProxy(t, Config{Upstream: up.URL + "/base", JobHeader: "X-Job-Id"})
	recorded := commitAll(t, s)

	body := []byte("\x00\x01binary\r\npayload\xff")
	req, _ := http.NewRequest(http.MethodPut, "http://"+s.Addr()+"/hooks/pay?x=1&x=2&y=%20z", bytes.NewReader(body))
	sent := http.Header{
		"Accept-Encoding": {"gzip"},
		"Content-Type":    {"application/octet-stream"},
		"Idempotency-Key": {"pay:123"},
		"X-Job-Id":        {"j-7"},
		"X-Multi":         {"one", "two"},
		"X-Forwarded-For": {"10.1.2.3"},
		"Authorization":   {"Bearer partner-secret"},
		"User-Agent":      {"shop/1.0"},
	}
	req.Header = sent.Clone()
	resp, err := http.DefaultTransport.(*http.Transport).RoundTrip(req) // no transparent gzip
	if err != nil {
		t.Fatal(err)
	}
	gotBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	reqs := up.requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream got %d requests", len(reqs))
	}
	r := reqs[0]
	wantHeader := sent.Clone()
	wantHeader["Content-Length"] = []string{strconv.Itoa(len(body))}
	if r.method != http.MethodPut || r.uri != "/base/hooks/pay?x=1&x=2&y=%20z" || !bytes.Equal(r.body, body) ||
		!reflect.DeepEqual(r.header, wantHeader) || r.host != strings.TrimPrefix(up.URL, "http://") {
		t.Fatalf("upstream got %s %s host %s\nheaders %v\nbody %q\nwant headers %v", r.method, r.uri, r.host, r.header, r.body, wantHeader)
	}
	wantResp := http.Header{
		"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}, "Set-Cookie": {"a=1", "b=2"},
		"X-Partner-Trace": {"t-1"}, "Date": {"Tue, 01 Dec 2026 10:00:00 GMT"}, "Content-Length": {"35"},
	}
	if resp.StatusCode != http.StatusAccepted || !bytes.Equal(gotBody, respBody) || !reflect.DeepEqual(resp.Header, wantResp) {
		t.Fatalf("client got %d %v %q\nwant 202 %v %q", resp.StatusCode, resp.Header, gotBody, wantResp, respBody)
	}

	rec := <-recorded
	ev := rec.Event
	var attrs map[string]any
	_ = json.Unmarshal(ev.Attrs, &attrs)
	if ev.Effect != "webhook.delivered" || ev.EffectKey != "pay:123" || ev.JobID != "j-7" || !strings.HasPrefix(ev.ID, "webhook:") ||
		attrs["status"] != 202.0 || attrs["method"] != "PUT" || attrs["url"] != up.URL+"/base/hooks/pay" {
		t.Fatalf("event %+v attrs %v", ev, attrs)
	}
}

func TestAnswerWaitsForTheRecord(t *testing.T) {
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	s := startProxy(t, Config{Upstream: up.URL})
	answered := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://"+s.Addr()+"/hook", strings.NewReader(`{}`))
		req.Header.Set("Idempotency-Key", "k-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	var recs []sources.Record
	waitFor(t, "the delivery's record", func() bool {
		recs, _ = s.Poll(context.Background(), 10*time.Millisecond)
		return len(recs) > 0
	})
	select {
	case code := <-answered:
		t.Fatalf("the client got %d before the record was durable", code)
	default:
	}
	if err := s.Commit(context.Background(), map[string]sources.Position{s.Lane(): recs[0].Position}); err != nil {
		t.Fatal(err)
	}
	if code := <-answered; code != http.StatusOK {
		t.Fatalf("answer %d", code)
	}
}

func TestFailedDeliveriesAreNotEffects(t *testing.T) {
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Why", "overloaded")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "try later")
	})
	s := startProxy(t, Config{Upstream: up.URL})
	resp, err := http.Post("http://"+s.Addr()+"/hook", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || string(b) != "try later" || resp.Header.Get("X-Why") != "overloaded" {
		t.Fatalf("client got %d %q %v: want the upstream's answer unchanged", resp.StatusCode, b, resp.Header)
	}
	down := startProxy(t, Config{Upstream: "http://127.0.0.1:1"})
	resp, err = http.Post("http://"+down.Addr()+"/hook", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("upstream down: %d, want 502", resp.StatusCode)
	}
	for _, st := range []*Stream{s, down} {
		if st.Pending() != 0 || st.Stats().Submitted != 0 {
			t.Fatalf("a failed delivery was recorded: %+v", st.Stats())
		}
	}
	if s.Stats().Requests["upstream_5xx"] != 1 || down.Stats().Requests["upstream_unreachable"] != 1 {
		t.Fatalf("counts %v %v", s.Stats().Requests, down.Stats().Requests)
	}
}

func TestKeyPathAndStableIDs(t *testing.T) {
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	s := startProxy(t, Config{Upstream: up.URL, KeyPath: "data.payment.id"})
	recorded := commitAll(t, s)
	send := func(body string) sources.Record {
		t.Helper()
		resp, err := http.Post("http://"+s.Addr()+"/hook", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("answer %d", resp.StatusCode)
		}
		return <-recorded
	}
	first := send(`{"type":"payment.succeeded","data":{"payment":{"id":123}}}`)
	retry := send(`{"type":"payment.succeeded","data":{"payment":{"id":123}}}`)
	other := send(`{"type":"payment.succeeded","data":{"payment":{"id":123}},"attempt":2}`)
	if first.Event.EffectKey != "123" || retry.Event.EffectKey != "123" || other.Event.EffectKey != "123" {
		t.Fatalf("keys %q %q %q, want 123", first.Event.EffectKey, retry.Event.EffectKey, other.Event.EffectKey)
	}
	if first.Event.ID != retry.Event.ID || first.Event.ID == other.Event.ID {
		t.Fatalf("ids: first %s retry %s other %s; want the retry to share the first's id, another body not", first.Event.ID, retry.Event.ID, other.Event.ID)
	}
	noKey := send(`{"data":{}}`)
	if noKey.Event.EffectKey != noKey.Event.ID || s.Stats().Requests["no_key"] != 1 {
		t.Fatalf("no key: effect_key %q id %q counts %v", noKey.Event.EffectKey, noKey.Event.ID, s.Stats().Requests)
	}
}

func TestTokenAndBackpressureRefuseBeforeForwarding(t *testing.T) {
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	s := startProxy(t, Config{Upstream: up.URL, Token: config.Secret{Value: "tk"}, MaxPending: 1})
	post := func(token string) *http.Response {
		req, _ := http.NewRequest("POST", "http://"+s.Addr()+"/hook", strings.NewReader(`{}`))
		if token != "" {
			req.Header.Set(TokenHeader, token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post("wrong"); resp.StatusCode != http.StatusUnauthorized || len(up.requests()) != 0 {
		t.Fatalf("wrong token: %d, upstream got %d requests", resp.StatusCode, len(up.requests()))
	}
	first := make(chan int, 1)
	go func() { first <- post("tk").StatusCode }()
	waitFor(t, "the first delivery to wait for its record", func() bool { return s.Pending() == 1 })
	if resp := post("tk"); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || len(up.requests()) != 1 {
		t.Fatalf("while full: %d, upstream got %d requests; want 503 and no forwarding", resp.StatusCode, len(up.requests()))
	}
	if h := up.requests()[0].header; h.Get(TokenHeader) != "" {
		t.Fatalf("the token went upstream: %v", h)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Delivered, and the record not durable at shutdown: the answer is
	// still the upstream's.
	if code := <-first; code != http.StatusOK {
		t.Fatalf("delivered at shutdown: %d, want the upstream's 200", code)
	}
	if s.Stats().Requests["delivered_unrecorded"] != 1 {
		t.Fatalf("counts %v", s.Stats().Requests)
	}
}

func TestProxyOverHTTPS(t *testing.T) {
	cert := pushtest.SelfSigned(t)
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	s := startProxy(t, Config{Upstream: up.URL, TLS: &push.TLSFiles{CertFile: cert.CertFile, KeyFile: cert.KeyFile}})
	commitAll(t, s)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool}}}
	resp, err := client.Post("https://"+s.Addr()+"/hook", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(up.requests()) != 1 {
		t.Fatalf("HTTPS: %d, upstream got %d", resp.StatusCode, len(up.requests()))
	}
}
