package emailevents

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxTokens caps the Mailgun tokens remembered; a request that would
// need more is answered 503 (Mailgun sends it again later).
const maxTokens = 1_000_000

// maxFutureSkew is how far in the future a Mailgun timestamp may be.
const maxFutureSkew = time.Minute

// mailgun reads Mailgun's webhooks: a JSON object with "signature"
// (timestamp, token, and the hex HMAC-SHA256 of timestamp+token under the
// webhook signing key) and "event-data". The signature does not cover the
// body, so a signature is accepted only while its timestamp is within
// max_age of now, and each token only once.
type mailgun struct {
	cfg *Config
	now func() time.Time

	mu   sync.Mutex
	key  []byte
	open bool // no signing key (loopback only): nothing is verified
	// tokens maps a token spent (or in flight) to its timestamp, so it
	// can be forgotten once older than max_age.
	tokens map[string]time.Time
	order  []string
	head   int
}

func newMailgun(cfg *Config, now func() time.Time) *mailgun {
	return &mailgun{cfg: cfg, now: now, tokens: map[string]time.Time{}}
}

func (m *mailgun) start(context.Context) error {
	if !m.cfg.SigningKey.IsSet() {
		m.mu.Lock()
		m.open = true
		m.mu.Unlock()
		return nil
	}
	v, err := loadSecret(m.cfg.SigningKey)
	if err != nil {
		return fmt.Errorf("signing_key: %w", err)
	}
	m.mu.Lock()
	m.key = []byte(v)
	m.mu.Unlock()
	return nil
}

// mailgunPayload is a Mailgun webhook body.
type mailgunPayload struct {
	Signature *struct {
		Timestamp json.RawMessage `json:"timestamp"`
		Token     string          `json:"token"`
		Signature string          `json:"signature"`
	} `json:"signature"`
	EventData json.RawMessage `json:"event-data"`
}

// mailgunEvent is the part of event-data twice reads.
type mailgunEvent struct {
	ID        string      `json:"id"`
	Timestamp json.Number `json:"timestamp"`
	Event     string      `json:"event"`
	Severity  string      `json:"severity"`
	Reason    string      `json:"reason"`
	Recipient string      `json:"recipient"`
	Message   struct {
		Headers struct {
			MessageID string `json:"message-id"`
		} `json:"headers"`
	} `json:"message"`
	UserVariables map[string]json.RawMessage `json:"user-variables"`
}

func (m *mailgun) receive(_ context.Context, req *Request) ([]observation, *Result, error) {
	var p mailgunPayload
	d := json.NewDecoder(bytes.NewReader(req.Body))
	d.UseNumber()
	if err := d.Decode(&p); err != nil {
		return nil, nil, reject(http.StatusBadRequest, "body", "not a Mailgun webhook body (JSON with signature and event-data): %v", err)
	}
	m.mu.Lock()
	open := m.open
	m.mu.Unlock()
	if open {
		o, mal := parseMailgunEvent(p.EventData)
		if mal != "" {
			return nil, &Result{Malformed: []string{mal}}, nil
		}
		return []observation{o}, &Result{}, nil
	}
	if p.Signature == nil || p.Signature.Token == "" || p.Signature.Signature == "" || len(p.Signature.Timestamp) == 0 {
		return nil, nil, reject(http.StatusUnauthorized, "auth", "no signature (timestamp, token, signature)")
	}
	ts, ok := argString(p.Signature.Timestamp)
	if !ok {
		return nil, nil, reject(http.StatusForbidden, "signature", "signature timestamp is not a number")
	}
	release, err := m.verify(ts, p.Signature.Token, p.Signature.Signature)
	if err != nil {
		return nil, nil, err
	}
	res := &Result{release: release}
	o, mal := parseMailgunEvent(p.EventData)
	if mal != "" {
		res.Malformed = []string{mal}
		return nil, res, nil
	}
	return []observation{o}, res, nil
}

// verify checks a Mailgun signature, its age and its token, and spends
// the token; the function returned gives it back.
func (m *mailgun) verify(ts, token, sig string) (func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.key == nil {
		return nil, errors.New("mailgun: signing key not loaded (Start not called)")
	}
	want, err := hex.DecodeString(sig)
	if err != nil {
		return nil, reject(http.StatusForbidden, "signature", "signature is not hex")
	}
	mac := hmac.New(sha256.New, m.key)
	mac.Write([]byte(ts))
	mac.Write([]byte(token))
	if !hmac.Equal(mac.Sum(nil), want) {
		return nil, reject(http.StatusForbidden, "signature", "bad signature")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, reject(http.StatusForbidden, "signature", "signature timestamp %q is not whole Unix seconds", ts)
	}
	at := time.Unix(sec, 0)
	now := m.now()
	maxAge := m.cfg.maxAge()
	switch {
	case now.Sub(at) > maxAge:
		return nil, reject(http.StatusForbidden, "stale", "signature is %s old, more than max_age %s", now.Sub(at).Truncate(time.Second), maxAge)
	case at.Sub(now) > maxFutureSkew:
		return nil, reject(http.StatusForbidden, "stale", "signature timestamp is %s in the future", at.Sub(now).Truncate(time.Second))
	}
	m.expire(now.Add(-maxAge))
	if _, seen := m.tokens[token]; seen {
		return nil, reject(http.StatusForbidden, "replay", "token already used")
	}
	if len(m.tokens) >= maxTokens {
		return nil, fmt.Errorf("mailgun: %d tokens within max_age %s: too many to remember, try again later", len(m.tokens), maxAge)
	}
	m.tokens[token] = at
	m.order = append(m.order, token)
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.tokens, token)
	}, nil
}

// expire forgets tokens whose timestamp is before cutoff: a request
// carrying them is stale anyway. Tokens are forgotten in the order they
// were spent; one spent with an older timestamp than a later one waits
// for it (never forgotten too early).
func (m *mailgun) expire(cutoff time.Time) {
	for m.head < len(m.order) {
		tok := m.order[m.head]
		at, ok := m.tokens[tok]
		if ok && !at.Before(cutoff) {
			break
		}
		if ok {
			delete(m.tokens, tok)
		}
		m.order[m.head] = ""
		m.head++
	}
	if m.head > 1024 && m.head > len(m.order)/2 {
		m.order = append([]string(nil), m.order[m.head:]...)
		m.head = 0
	}
}

// mailgunTypes maps Mailgun's event names to the normalized types;
// failed depends on severity and reason.
var mailgunTypes = map[string]string{
	"accepted":     Sent,
	"delivered":    Delivered,
	"rejected":     Dropped,
	"complained":   Complained,
	"unsubscribed": Unsubscribed,
}

// parseMailgunEvent reads the event-data of a verified request.
func parseMailgunEvent(raw json.RawMessage) (observation, string) {
	if len(raw) == 0 {
		return observation{}, "mailgun: no event-data"
	}
	var e mailgunEvent
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&e); err != nil {
		return observation{}, "mailgun: event-data is not an event: " + err.Error()
	}
	if e.ID == "" {
		return observation{}, "mailgun: event-data without id"
	}
	if e.Event == "" {
		return observation{}, "mailgun: event-data without event"
	}
	o := observation{
		id:        "mailgun:" + e.ID,
		typ:       mailgunTypes[e.Event],
		raw:       e.Event,
		messageID: e.Message.Headers.MessageID,
	}
	if e.Event == "failed" {
		// A temporary failure is retried by Mailgun: not an outcome yet.
		if e.Severity == "permanent" {
			o.typ = Bounced
			if strings.HasPrefix(e.Reason, "suppress-") {
				o.typ = Dropped
			}
			o.bounce = e.Reason
		}
	}
	if t, ok := unixTime(e.Timestamp); ok {
		o.ts = t
	}
	if e.Recipient != "" {
		o.recipients = []string{e.Recipient}
	}
	uv := e.UserVariables
	o.arg = func(name string) (string, bool) { return argString(uv[name]) }
	return o, ""
}
