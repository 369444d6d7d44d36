package emailevents

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
)

// postmark reads Postmark's webhooks: one JSON record per request, its
// RecordType naming the event. Postmark signs nothing; its webhook URL
// carries HTTP basic auth credentials (https://user:password@host/…),
// which twice checks.
type postmark struct {
	cfg  *Config
	mu   sync.Mutex
	want [32]byte // SHA-256 of "username:password"
	set  bool
	open bool // no credentials (loopback only): nothing is checked
}

func (p *postmark) start(context.Context) error {
	if p.cfg.Username == "" {
		p.mu.Lock()
		p.open = true
		p.mu.Unlock()
		return nil
	}
	pw, err := loadSecret(p.cfg.Password)
	if err != nil {
		return fmt.Errorf("password: %w", err)
	}
	p.mu.Lock()
	p.want = sha256.Sum256([]byte(p.cfg.Username + ":" + pw))
	p.set = true
	p.mu.Unlock()
	return nil
}

// postmarkRecord is the part of a Postmark webhook record twice reads.
type postmarkRecord struct {
	RecordType      string                     `json:"RecordType"`
	MessageID       string                     `json:"MessageID"`
	Recipient       string                     `json:"Recipient"`
	Email           string                     `json:"Email"`
	Type            string                     `json:"Type"`
	DeliveredAt     string                     `json:"DeliveredAt"`
	BouncedAt       string                     `json:"BouncedAt"`
	ReceivedAt      string                     `json:"ReceivedAt"`
	ChangedAt       string                     `json:"ChangedAt"`
	SuppressSending *bool                      `json:"SuppressSending"`
	Metadata        map[string]json.RawMessage `json:"Metadata"`
}

func (p *postmark) receive(_ context.Context, req *Request) ([]observation, *Result, error) {
	p.mu.Lock()
	want, set, open := p.want, p.set, p.open
	p.mu.Unlock()
	switch {
	case open:
	case !set:
		return nil, nil, errors.New("postmark: password not loaded (Start not called)")
	default:
		if err := checkBasicAuth(req.Header, want); err != nil {
			return nil, nil, err
		}
	}
	o, mal := parsePostmark(req.Body)
	res := &Result{}
	if mal != "" {
		res.Malformed = []string{mal}
		return nil, res, nil
	}
	return []observation{o}, res, nil
}

// checkBasicAuth checks the request's basic credentials against the
// SHA-256 of "username:password", in constant time.
func checkBasicAuth(h http.Header, want [32]byte) error {
	user, pw, ok := basicAuth(h)
	if !ok {
		return reject(http.StatusUnauthorized, "auth", "no basic auth credentials: put them in the webhook URL (https://USER:PASSWORD@host/)")
	}
	got := sha256.Sum256([]byte(user + ":" + pw))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return reject(http.StatusUnauthorized, "auth", "wrong basic auth credentials")
	}
	return nil
}

// basicAuth reads the Authorization header's basic credentials.
func basicAuth(h http.Header) (user, pw string, ok bool) {
	r := http.Request{Header: h}
	return r.BasicAuth()
}

// parsePostmark reads one verified Postmark record.
func parsePostmark(body []byte) (observation, string) {
	var r postmarkRecord
	d := json.NewDecoder(bytes.NewReader(body))
	if err := d.Decode(&r); err != nil {
		return observation{}, "postmark: body is not a webhook record: " + err.Error()
	}
	if r.RecordType == "" {
		// Postmark's webhooks before RecordType (still what its bounce
		// and delivery examples show): one kind of record per URL.
		switch {
		case r.DeliveredAt != "":
			r.RecordType = "Delivery"
		case r.BouncedAt != "" && r.Type == "SpamComplaint":
			r.RecordType = "SpamComplaint"
		case r.BouncedAt != "":
			r.RecordType = "Bounce"
		default:
			return observation{}, "postmark: no RecordType"
		}
	}
	if r.MessageID == "" {
		if r.RecordType == "SubscriptionChange" {
			// A suppression made by hand (Origin Customer or Admin) is
			// about an address, not a message.
			return observation{id: "postmark:SubscriptionChange::" + r.ChangedAt, raw: r.RecordType}, ""
		}
		return observation{}, fmt.Sprintf("postmark: %s record without MessageID", r.RecordType)
	}
	o := observation{raw: r.RecordType, messageID: r.MessageID}
	var at string
	switch r.RecordType {
	case "Delivery":
		o.typ, at = Delivered, r.DeliveredAt
	case "Bounce":
		o.typ, at, o.bounce = Bounced, r.BouncedAt, r.Type
	case "SpamComplaint":
		o.typ, at = Complained, r.BouncedAt
	case "Open", "Click":
		at = r.ReceivedAt
	case "SubscriptionChange":
		at = r.ChangedAt
		if r.SuppressSending != nil && *r.SuppressSending {
			o.typ = Unsubscribed
		}
	}
	if t, ok := rfc3339Time(at); ok {
		o.ts = t
	}
	// Postmark records carry no event id: the record type, the message
	// and the time of the event as Postmark wrote it identify one.
	o.id = "postmark:" + r.RecordType + ":" + r.MessageID + ":" + at
	rcpt := r.Recipient
	if rcpt == "" {
		rcpt = r.Email
	}
	if rcpt != "" {
		o.recipients = []string{rcpt}
	}
	meta := r.Metadata
	o.arg = func(name string) (string, bool) { return argString(meta[name]) }
	return o, ""
}
