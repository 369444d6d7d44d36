package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestWatchSendGridEvents: twice watch receives SendGrid's signed event
// webhook next to the jobs of a file source. SendGrid posting the same
// batch again (it got no answer) is one observation, never a finding; the
// same receipt sent twice under two message ids is a duplicate-effect;
// an unsigned request is refused, counted, and records nothing.
func TestWatchSendGridEvents(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var jobs strings.Builder
	for i, key := range []string{"payment:1", "payment:2"} {
		id := fmt.Sprintf("j-%d", i+1)
		for j, kind := range []string{"job.enqueued", "job.started", "job.succeeded"} {
			fmt.Fprintf(&jobs, `{"id":"%s-%d","ts":"%s","kind":"%s","job_type":"SendReceipt","job_id":"%s","key":"%s","attempt":1}`+"\n",
				id, j, t0.Add(time.Duration(j)*time.Second).Format(time.RFC3339), kind, id, key)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "jobs.jsonl"), []byte(jobs.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "twice.yaml")
	if err := os.WriteFile(cfg, []byte(`sources:
  - name: jobs
    path: jobs.jsonl
  - name: mail
    type: sendgrid
    listen: 127.0.0.1:0
    verification_key: `+base64.StdEncoding.EncodeToString(der)+`
    key_arg: idempotency_key
    job_arg: job_id
expect:
  - job_type: SendReceipt
    effect: email.sent
    effect_key: "receipt/{{key}}"
    within: 5m
watch:
  state_dir: state
  listen: 127.0.0.1:0
  checkpoint_interval: 50ms
  idle_timeout: 100ms
  idle_advance: false
  findings: []
`), 0o644); err != nil {
		t.Fatal(err)
	}

	var hook string
	start := func() *cliWatch {
		w := startCLIWatch(t, "-c", cfg)
		w.waitFor(t, "the sendgrid source to listen", func() bool {
			m := regexp.MustCompile(`source mail: listening on (http://\S+)`).FindStringSubmatch(w.stderr.String())
			if m != nil {
				hook = m[1]
			}
			return m != nil
		})
		return w
	}
	w := start()

	processed := func(eventID, msgID, key, job string, at time.Time) string {
		return fmt.Sprintf(`{"email":"customer@example.com","timestamp":%d,"smtp-id":"<%s@ismtpd-555>","event":"processed","category":["receipts"],"sg_event_id":"%s","sg_message_id":"%s.filter0001.16648.5515E0B88.0","idempotency_key":"%s","job_id":"%s"}`,
			at.Unix(), msgID, eventID, msgID, key, job)
	}
	postBatch := func(signed bool, events ...string) int {
		t.Helper()
		body := "[" + strings.Join(events, ",") + "]"
		req, err := http.NewRequest(http.MethodPost, hook+"/", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if signed {
			ts := strconv.FormatInt(time.Now().Unix(), 10)
			sum := sha256.Sum256([]byte(ts + body))
			sig, err := ecdsa.SignASN1(rand.Reader, priv, sum[:])
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Twilio-Email-Event-Webhook-Signature", base64.StdEncoding.EncodeToString(sig))
			req.Header.Set("X-Twilio-Email-Event-Webhook-Timestamp", ts)
		}
		c := &http.Client{Timeout: 30 * time.Second}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	first := processed("sg-e-1", "msg-1", "receipt/payment:1", "j-1", t0.Add(time.Second))
	if code := postBatch(true, first); code != http.StatusOK {
		t.Fatalf("first batch: %d\n%s", code, w.stderr.String())
	}
	// SendGrid retries the batch (as when it did not get the answer).
	if code := postBatch(true, first); code != http.StatusOK {
		t.Fatalf("the retried batch: %d", code)
	}
	// The receipt of payment:2 goes out twice, as two messages.
	if code := postBatch(true,
		processed("sg-e-2", "msg-2", "receipt/payment:2", "j-2", t0.Add(time.Second)),
		processed("sg-e-3", "msg-3", "receipt/payment:2", "j-2", t0.Add(2*time.Second))); code != http.StatusOK {
		t.Fatalf("second batch: %d", code)
	}
	forged := processed("sg-e-4", "msg-4", "receipt/payment:1", "j-1", t0.Add(2*time.Second))
	if code := postBatch(false, forged); code != http.StatusUnauthorized {
		t.Fatalf("an unsigned batch: %d, want 401", code)
	}

	type finding struct {
		Detector, Subject, Cause string
		Count                    float64
	}
	findings := func() []finding {
		_, body := w.get(t, "/findings")
		var page struct{ Findings []finding }
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatalf("/findings: %v\n%s", err, body)
		}
		return page.Findings
	}
	w.waitFor(t, "the duplicate receipt", func() bool {
		for _, f := range findings() {
			if f.Detector == "duplicate-effect" {
				return true
			}
		}
		return false
	})
	w.waitFor(t, "the retried event to be counted as repeated", func() bool {
		return w.metric("twice_repeated_events_total") == 1
	})
	got := findings()
	if len(got) != 1 || got[0].Subject != "receipt/payment:2" || got[0].Count != 2 || got[0].Cause != "redelivery" {
		t.Errorf("findings %+v, want one duplicate-effect on receipt/payment:2 (2 sends, both linked to j-2)", got)
	}
	if n := w.metric("twice_push_durable_records_total"); n != 4 {
		t.Errorf("twice_push_durable_records_total = %v, want 4 (the retried event twice, then two)", n)
	}
	metrics := func() string { _, b := w.get(t, "/metrics"); return b }()
	if !strings.Contains(metrics, `twice_push_requests_total{result="unauthorized",source="mail"} 1`) {
		t.Errorf("the unsigned request is not counted as unauthorized:\n%s", grepLines(metrics, "twice_push_requests_total"))
	}
	if strings.Contains(w.stderr.String(), "customer@example.com") {
		t.Errorf("the recipient's address is in the log")
	}

	// twice restarts; SendGrid posts the first batch once more (its
	// answer was lost): the id is remembered across the restart.
	if code := w.stop(t); code != 0 {
		t.Fatalf("watch exited %d:\n%s", code, w.stderr.String())
	}
	w = start()
	if code := postBatch(true, first); code != http.StatusOK {
		t.Fatalf("the batch after the restart: %d", code)
	}
	w.waitFor(t, "the batch after the restart to be counted as repeated", func() bool {
		return w.metric("twice_repeated_events_total") == 1
	})
	if got := findings(); len(got) != 1 || got[0].Subject != "receipt/payment:2" {
		t.Errorf("findings after the restart %+v, want only the duplicate receipt of payment:2", got)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
