package emailevents

import (
	"context"
	"fmt"
	"github.com/twicehq/twice/config"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twicehq/twice/sources"
)

// sidecar plays twice watch for a stream: it polls and, while commit is
// on, commits what it polled.
type sidecar struct {
	s *Stream

	mu     sync.Mutex
	recs   []sources.Record
	commit bool
}

func runSidecar(t *testing.T, s *Stream, commit bool) *sidecar {
	t.Helper()
	sc := &sidecar{s: s, commit: commit}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		var last sources.Position
		for ctx.Err() == nil {
			recs, _ := s.Poll(ctx, 20*time.Millisecond)
			sc.mu.Lock()
			sc.recs = append(sc.recs, recs...)
			if len(recs) > 0 {
				last = recs[len(recs)-1].Position
			}
			commit := sc.commit
			sc.mu.Unlock()
			if commit && last != "" {
				_ = s.Commit(ctx, map[string]sources.Position{s.Lane(): last})
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return sc
}

func (sc *sidecar) setCommit(on bool) {
	sc.mu.Lock()
	sc.commit = on
	sc.mu.Unlock()
}

func (sc *sidecar) records() []sources.Record {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return append([]sources.Record(nil), sc.recs...)
}

func startStream(t *testing.T, cfg Config, opts Options) *Stream {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	s, err := NewStream("mail", cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

func post(t *testing.T, s *Stream, h http.Header, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+s.Addr()+"/webhooks", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
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

func TestStreamServesSendGrid(t *testing.T) {
	k := newSendGridKey(t)
	var logMu sync.Mutex
	var logged []string
	logf := func(format string, args ...any) {
		logMu.Lock()
		logged = append(logged, fmt.Sprintf(format, args...))
		logMu.Unlock()
	}
	s := startStream(t, Config{Provider: SendGrid, VerificationKey: config.Secret{Value: k.public}, MaxBodyBytes: 4096}, Options{Logf: logf})
	sc := runSidecar(t, s, true)

	code, answer := post(t, s, k.sign(t, "1764756010", sendgridBatch), sendgridBatch)
	if code != http.StatusOK || !strings.Contains(answer, "1 events recorded") {
		t.Fatalf("signed batch: %d %s", code, answer)
	}
	recs := sc.records()
	if len(recs) != 1 || recs[0].Event == nil || recs[0].Event.EffectKey != "receipt/payment:123" || recs[0].Lane != SendGrid || recs[0].Position != "1" {
		t.Fatalf("records %+v", recs)
	}

	bad := strings.Replace(sendgridBatch, "payment:123", "payment:666", 1)
	if code, _ := post(t, s, k.sign(t, "1764756010", sendgridBatch), bad); code != http.StatusForbidden {
		t.Errorf("a tampered batch: %d", code)
	}
	if code, _ := post(t, s, k.sign(t, "1764756011", sendgridBatch), bad); code != http.StatusForbidden {
		t.Errorf("a tampered batch again: %d", code)
	}
	if code, _ := post(t, s, nil, sendgridBatch); code != http.StatusUnauthorized {
		t.Errorf("an unsigned batch: %d", code)
	}
	logMu.Lock()
	var refusals []string
	for _, l := range logged {
		if strings.Contains(l, "refused a request") {
			refusals = append(refusals, l)
		}
	}
	logMu.Unlock()
	if len(refusals) != 2 || !strings.Contains(refusals[0], "(403 signature): bad signature") || !strings.Contains(refusals[1], "(401 auth)") {
		t.Errorf("refusals logged: %q, want one per kind within a minute", refusals)
	}
	big := "[" + strings.Repeat(" ", 5000) + "]"
	if code, _ := post(t, s, k.sign(t, "1", big), big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over max_body_bytes: %d", code)
	}
	resp, err := http.Get("http://" + s.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
	malformed := `[{"event":"processed"}]`
	if code, _ := post(t, s, k.sign(t, "1", malformed), malformed); code != http.StatusOK {
		t.Errorf("a signed batch of a malformed event: %d", code)
	}
	recs = sc.records()
	if len(recs) != 2 || recs[1].Malformed == nil || !strings.Contains(recs[1].Malformed.Reason, "no sg_event_id") {
		t.Errorf("records after refusals: %+v", recs)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)
	text := gatherText(t, reg)
	for _, line := range []string{
		`twice_email_provider_events_total{outcome="effect",source="mail"} 1`,
		`twice_email_provider_events_total{outcome="ignored",source="mail"} 9`,
		`twice_email_provider_events_total{outcome="malformed",source="mail"} 1`,
		`twice_push_requests_total{result="bad_signature",source="mail"} 2`,
	} {
		if !strings.Contains(text, line) {
			t.Errorf("metrics lack %s:\n%s", line, text)
		}
	}
	st := s.Stats()
	want := map[string]int64{"accepted": 2, "bad_signature": 2, "unauthorized": 1, "too_large": 1, "invalid": 1}
	for k, v := range want {
		if st.Requests[k] != v {
			t.Errorf("requests %v, want %v", st.Requests, want)
			break
		}
	}
}

// gatherText returns the metrics of reg in the text format.
func gatherText(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() { // sorted by name
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			fmt.Fprintf(&b, "%s{%s} %g\n", mf.GetName(), strings.Join(labels, ","), v)
		}
	}
	return b.String()
}

func TestStreamGivesMailgunTokensBackWhenNotRecorded(t *testing.T) {
	now, _ := fixedClock(mailgunNow)
	s := startStream(t, Config{Provider: Mailgun, SigningKey: config.Secret{Value: mailgunKey}, MaxPending: 1}, Options{Now: now})
	sc := runSidecar(t, s, false)
	ts := mailgunNow.Unix()
	first := mailgunBody(mailgunKey, ts, "tok-1", "accepted", "id-1", "", "")
	second := mailgunBody(mailgunKey, ts, "tok-2", "accepted", "id-2", "", "")

	firstDone := make(chan int, 1)
	go func() { // not post: no t.Fatal off the test's goroutine
		resp, err := http.Post("http://"+s.Addr()+"/", "application/json", strings.NewReader(first))
		if err != nil {
			firstDone <- 0
			return
		}
		resp.Body.Close()
		firstDone <- resp.StatusCode
	}()
	waitFor(t, "the first request to be submitted", func() bool { return len(sc.records()) == 1 })
	// Twice holds max_pending records not yet durable: the second is
	// refused for now, and its token given back.
	if code, _ := post(t, s, nil, second); code != http.StatusServiceUnavailable {
		t.Fatalf("a request over max_pending: %d, want 503", code)
	}
	sc.setCommit(true)
	if code := <-firstDone; code != http.StatusOK {
		t.Fatalf("the first request: %d", code)
	}
	if code, body := post(t, s, nil, second); code != http.StatusOK {
		t.Fatalf("Mailgun's retry of the refused request: %d %s", code, body)
	}
	if code, _ := post(t, s, nil, second); code != http.StatusForbidden {
		t.Errorf("a replay of a recorded request: %d, want 403", code)
	}
	var ids []string
	for _, r := range sc.records() {
		ids = append(ids, r.Event.ID)
	}
	if fmt.Sprint(ids) != "[mailgun:id-1 mailgun:id-2]" {
		t.Errorf("recorded %v", ids)
	}
}

func TestStreamConfirmsSNSSubscriptions(t *testing.T) {
	sig := newSNSSigner(t)
	now, _ := fixedClock(sesNow)
	s := startStream(t, Config{Provider: SES, TopicARNs: []string{sesTopic}}, Options{Now: now, Fetch: sig.fetch})
	sc := runSidecar(t, s, true)
	sub := snsMessage{Type: snsSubscribe, MessageID: "m-sub", Token: "tok", Message: "confirm",
		SubscribeURL: "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + sesTopic + "&Token=tok"}
	if code, _ := post(t, s, nil, sig.message(t, sub, "1")); code != http.StatusOK {
		t.Fatalf("subscription confirmation: %d", code)
	}
	if sig.gets(sub.SubscribeURL) != 1 {
		t.Errorf("SubscribeURL not fetched")
	}
	body := sig.message(t, snsMessage{Type: snsNotification, MessageID: "m-1", Message: sesSend}, "2")
	for range 2 { // SNS retrying the same notification
		if code, _ := post(t, s, nil, body); code != http.StatusOK {
			t.Fatalf("notification: %d", code)
		}
	}
	recs := sc.records()
	if len(recs) != 2 || recs[0].Event.ID != "ses:m-1" || recs[1].Event.ID != "ses:m-1" {
		t.Errorf("records %+v, want the notification twice with one id", recs)
	}
	if st := s.Stats(); st.Requests["confirmed"] != 1 || st.Requests["accepted"] != 2 {
		t.Errorf("requests %v", st.Requests)
	}
}
