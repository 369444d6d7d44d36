// Package webhooksink posts finding revisions to an HTTP endpoint: as
// generic JSON (each revision's line, one POST per revision, with an
// Idempotency-Key header so that a receiver can drop the repeats of an
// at-least-once delivery), or as Slack messages (one per finding that is
// new, worse than it was or back after being resolved; not one per
// revision).
//
// The URL often holds a secret (a Slack webhook's path, a token in the
// query): it is never logged nor put in an error; the sink is named by
// the URL's host and a hash of the URL.
package webhooksink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twicehq/twice/internal/backoff"
	"github.com/twicehq/twice/sidecar"
)

// The formats of a sink.
const (
	FormatJSON  = "json"
	FormatSlack = "slack"
)

// Headers each POST carries.
const (
	// IdempotencyKeyHeader is the revision's identity: "<seq>-<fingerprint>".
	// A revision posted again (after a crash between the POST and the
	// checkpoint that records it) carries the same key.
	IdempotencyKeyHeader = "Idempotency-Key"
	// SeqHeader is the revision's seq.
	SeqHeader = "X-Twice-Seq"
)

// Defaults of Options.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultMaxAttempts = 4
	DefaultMinBackoff  = 250 * time.Millisecond
	DefaultMaxBackoff  = 5 * time.Second
	// DefaultMaxRetryAfter is the longest Retry-After waited within one
	// publish; a longer one fails the publish, and the sink posts nothing
	// before it has passed (the watch retries at later checkpoints).
	DefaultMaxRetryAfter = 30 * time.Second
	// DefaultPublishTimeout bounds one publish, retries included, so that
	// a receiver that hangs holds the watch loop no longer: what was not
	// delivered is published again at the next checkpoint.
	DefaultPublishTimeout = 30 * time.Second
)

// Options configure a Sink.
type Options struct {
	// URL is where revisions are posted (http or https). It may hold a
	// secret; it is never logged.
	URL string
	// Format is FormatJSON (default) or FormatSlack.
	Format string
	// Timeout bounds one request, answer included; default DefaultTimeout.
	Timeout time.Duration
	// MaxAttempts bounds the attempts at one revision within one publish
	// (network errors, timeouts, 5xx, 408, 429); default DefaultMaxAttempts.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the jittered delays between
	// attempts; defaults DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// MaxRetryAfter is the longest Retry-After waited within a publish;
	// default DefaultMaxRetryAfter.
	MaxRetryAfter time.Duration
	// PublishTimeout bounds one publish, retries included; default
	// DefaultPublishTimeout.
	PublishTimeout time.Duration
	// Client sends the requests; default a client with Timeout.
	Client *http.Client
	// Logf logs; default none.
	Logf func(format string, args ...any)
	// Now is the clock (Retry-After dates); default time.Now.
	Now func() time.Time
}

// Sink posts revisions to a webhook. It implements sidecar.Sink and
// prometheus.Collector (twice_webhook_requests_total{sink,result}).
type Sink struct {
	o    Options
	name string
	host string

	mu      sync.Mutex
	started bool
	// delivered are the seqs posted (or refused for good) since the last
	// publish that succeeded whole: a publish retried after a failure
	// partway does not post them again.
	delivered map[uint64]bool
	// notBefore is when a Retry-After too long to wait ends.
	notBefore time.Time
	// last is the severity rank each finding last had (-1: resolved),
	// for Slack's "new or worse".
	last map[string]int

	cmu    sync.Mutex // apart from mu: a scrape does not wait for a publish's retries
	counts map[string]float64
}

func (s *Sink) count(result string) {
	s.cmu.Lock()
	s.counts[result]++
	s.cmu.Unlock()
}

// New returns a sink for o. It does no I/O.
func New(o Options) (*Sink, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("webhook sink: url must be an http:// or https:// URL")
	}
	switch o.Format {
	case "":
		o.Format = FormatJSON
	case FormatJSON, FormatSlack:
	default:
		return nil, fmt.Errorf("webhook sink: unknown format %q (json, slack)", o.Format)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout}
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	sum := sha256.Sum256([]byte(o.URL))
	return &Sink{o: o, host: u.Host,
		name:      "webhook:" + u.Host + "/" + hex.EncodeToString(sum[:4]),
		delivered: map[uint64]bool{}, last: map[string]int{}, counts: map[string]float64{}}, nil
}

// Name implements sidecar.Sink: "webhook:<host>/<8 hex digits of the
// URL's SHA-256>", stable across runs and free of the URL's secrets.
func (s *Sink) Name() string { return s.name }

// Start implements sidecar.Sink. A webhook cannot be read back: after a
// crash between a POST and the checkpoint that records it, the revision
// is posted again with the same Idempotency-Key (at least once).
func (s *Sink) Start(context.Context, uint64) (map[uint64]bool, error) {
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	return nil, nil
}

// Shutdown implements sidecar.Sink.
func (s *Sink) Shutdown(context.Context) error {
	s.mu.Lock()
	s.started = false
	s.mu.Unlock()
	return nil
}

// Publish implements sidecar.Sink: it posts each revision in order
// (Slack: each new or worse finding), retrying with backoff. A revision
// the receiver refuses for good (a 4xx other than 408 and 429) is
// counted, logged and not posted again. A revision that still fails
// after the attempts fails the publish; the watch publishes again at the
// next checkpoint, and the revisions delivered before it are not posted
// again.
func (s *Sink) Publish(ctx context.Context, revs []sidecar.Revision) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return errors.New("webhook sink not started")
	}
	if now := s.o.Now(); now.Before(s.notBefore) {
		return fmt.Errorf("webhook %s: asked to retry after %s", s.host, s.notBefore.Sub(now).Round(time.Second))
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.PublishTimeout)
	defer cancel()
	for _, r := range revs {
		if s.delivered[r.Seq] {
			continue
		}
		body, seen, err := s.body(r)
		if err != nil {
			return fmt.Errorf("webhook %s: revision %d: %w", s.host, r.Seq, err)
		}
		if body != nil {
			if err := s.post(ctx, r, body); err != nil {
				return err
			}
		}
		// Only now is the finding's state taken: a Slack message that
		// failed is judged (and posted) again at the retry.
		seen()
		s.delivered[r.Seq] = true
	}
	clear(s.delivered)
	return nil
}

// permanent is a refusal not worth retrying.
type permanent struct{ status int }

func (p permanent) Error() string { return "refused with " + strconv.Itoa(p.status) }

// post sends one revision's body, with retries.
func (s *Sink) post(ctx context.Context, r sidecar.Revision, body []byte) error {
	b := backoff.New(s.o.MinBackoff, s.o.MaxBackoff)
	var last error
	for attempt := 1; attempt <= s.o.MaxAttempts; attempt++ {
		wait, err := s.attempt(ctx, r, body)
		if err == nil {
			s.count("delivered")
			return nil
		}
		var p permanent
		if errors.As(err, &p) {
			s.count("rejected")
			s.o.Logf("webhook %s: revision %d (%s) %v: not retried", s.host, r.Seq, r.Fingerprint, err)
			return nil
		}
		s.count("failed")
		last = err
		if attempt == s.o.MaxAttempts {
			break
		}
		if wait > s.o.MaxRetryAfter {
			s.notBefore = s.o.Now().Add(wait)
			break
		}
		if wait <= 0 {
			wait = b.Next()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("webhook %s: revision %d: %w (after %v)", s.host, r.Seq, ctx.Err(), last)
		case <-t.C:
		}
	}
	return fmt.Errorf("webhook %s: revision %d: %w", s.host, r.Seq, last)
}

// attempt posts once; it returns the Retry-After of a 429 or 503.
func (s *Sink) attempt(ctx context.Context, r sidecar.Revision, body []byte) (time.Duration, error) {
	rctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, s.o.URL, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("building the request failed") // the error would quote the URL
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "twice-watch")
	req.Header.Set(IdempotencyKeyHeader, fmt.Sprintf("%d-%s", r.Seq, r.Fingerprint))
	req.Header.Set(SeqHeader, strconv.FormatUint(r.Seq, 10))
	resp, err := s.o.Client.Do(req)
	if err != nil {
		return 0, redact(err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return 0, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		return retryAfter(resp.Header.Get("Retry-After"), s.o.Now()), fmt.Errorf("answered %s", resp.Status)
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
		return 0, fmt.Errorf("answered %s", resp.Status)
	case resp.StatusCode >= 400:
		return 0, permanent{resp.StatusCode}
	default:
		return 0, fmt.Errorf("answered %s", resp.Status)
	}
}

// redact returns err without the URL a *url.Error quotes.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("%s: timed out", ue.Op)
		}
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// retryAfter reads a Retry-After header: seconds or an HTTP date; 0 when
// absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// body is what is posted for r, nil when nothing is (Slack: a revision
// that makes the finding neither new nor worse), and seen, which records
// the finding's state once r is done with.
func (s *Sink) body(r sidecar.Revision) (body []byte, seen func(), err error) {
	if s.o.Format == FormatJSON {
		return r.Line, func() {}, nil
	}
	var f slackFinding
	if err := json.Unmarshal(r.Line, &f); err != nil {
		return nil, nil, fmt.Errorf("not a finding revision: %w", err)
	}
	rank := severityRank(f.Severity)
	if f.Status == sidecar.StatusResolved {
		rank = -1
	}
	seen = func() { s.last[r.Fingerprint] = rank }
	prev, known := s.last[r.Fingerprint]
	var why string
	switch {
	case rank < 0:
		return nil, seen, nil
	case f.Revision <= 1 && !known:
		why = "New"
	case !known:
		// Stood before this run started: no message unless it worsens.
		return nil, seen, nil
	case prev < 0:
		why = "Back"
	case rank > prev:
		why = "Worse"
	default:
		return nil, seen, nil
	}
	body, err = slackMessage(why, f)
	return body, seen, err
}

// slackFinding is the part of a revision a Slack message shows.
type slackFinding struct {
	Revision    uint64 `json:"revision"`
	Status      string `json:"status"`
	Detector    string `json:"detector"`
	Severity    string `json:"severity"`
	Subject     string `json:"subject"`
	Fingerprint string `json:"fingerprint"`
	Count       int64  `json:"count"`
	Cause       string `json:"cause"`
	Message     string `json:"message"`
	JobType     string `json:"job_type"`
	Queue       string `json:"queue"`
}

func severityRank(s string) int {
	switch s {
	case "critical":
		return 4
	case "high":
		return 3
	case "medium":
		return 2
	case "low":
		return 1
	}
	return 0
}

// slackEscape escapes what Slack's mrkdwn reads as markup.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// slackMessage is a Slack incoming-webhook message about f: text (the
// notification's fallback) and blocks.
func slackMessage(why string, f slackFinding) ([]byte, error) {
	head := fmt.Sprintf("%s %s finding: %s", why, f.Severity, f.Detector)
	text := head + ": " + f.Message
	var ctx []string
	for _, kv := range [][2]string{{"subject", f.Subject}, {"job type", f.JobType}, {"queue", f.Queue}, {"cause", f.Cause}} {
		if kv[1] != "" {
			ctx = append(ctx, fmt.Sprintf("%s: `%s`", kv[0], slackEscape.Replace(kv[1])))
		}
	}
	if f.Count > 0 {
		ctx = append(ctx, fmt.Sprintf("count: %d", f.Count))
	}
	ctx = append(ctx, fmt.Sprintf("fingerprint: `%s`", f.Fingerprint))
	type text_ struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	type block struct {
		Type     string  `json:"type"`
		Text     *text_  `json:"text,omitempty"`
		Elements []text_ `json:"elements,omitempty"`
	}
	msg := struct {
		Text   string  `json:"text"`
		Blocks []block `json:"blocks"`
	}{
		Text: slackEscape.Replace(text),
		Blocks: []block{
			{Type: "section", Text: &text_{Type: "mrkdwn", Text: "*" + slackEscape.Replace(head) + "*\n" + slackEscape.Replace(f.Message)}},
			{Type: "context", Elements: []text_{{Type: "mrkdwn", Text: strings.Join(ctx, " · ")}}},
		},
	}
	return json.Marshal(msg)
}

// requestsDesc is twice_webhook_requests_total of this sink (a constant
// label, so that several webhook sinks register side by side).
func (s *Sink) requestsDesc() *prometheus.Desc {
	return prometheus.NewDesc("twice_webhook_requests_total",
		"Revisions a webhook findings sink posted, by result: delivered, rejected (a 4xx other than 408 and 429: not retried) and failed (attempts retried).",
		[]string{"result"}, prometheus.Labels{"sink": s.name})
}

// Describe implements prometheus.Collector.
func (s *Sink) Describe(ch chan<- *prometheus.Desc) { ch <- s.requestsDesc() }

// Collect implements prometheus.Collector.
func (s *Sink) Collect(ch chan<- prometheus.Metric) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	for _, result := range []string{"delivered", "rejected", "failed"} {
		ch <- prometheus.MustNewConstMetric(s.requestsDesc(), prometheus.CounterValue, s.counts[result], result)
	}
}

var (
	_ sidecar.Sink         = (*Sink)(nil)
	_ prometheus.Collector = (*Sink)(nil)
)
