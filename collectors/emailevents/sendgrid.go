package emailevents

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// SendGrid's signed event webhook headers.
const (
	SendGridSignatureHeader = "X-Twilio-Email-Event-Webhook-Signature"
	SendGridTimestampHeader = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// sendgrid reads SendGrid's event webhook: a JSON array of events, signed
// with ECDSA P-256 over SHA-256 of the timestamp header followed by the
// body, the signature base64 ASN.1 DER.
type sendgrid struct {
	cfg *Config
	mu  sync.Mutex
	key *ecdsa.PublicKey
	// open is set by start when no key is configured (loopback only):
	// requests are not verified.
	open bool
}

// parseECDSAKey reads SendGrid's verification key: base64 of the DER
// (PKIX) public key, as the dashboard shows it, or a PEM block.
func parseECDSAKey(s string) (*ecdsa.PublicKey, error) {
	s = strings.TrimSpace(s)
	var der []byte
	if strings.HasPrefix(s, "-----BEGIN") {
		b, _ := pem.Decode([]byte(s))
		if b == nil {
			return nil, errors.New("not a valid PEM public key")
		}
		der = b.Bytes
	} else {
		d, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, errors.New("not base64: want the verification key the SendGrid dashboard shows (base64 DER) or a PEM public key")
		}
		der = d
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, errors.New("not a DER public key: want the verification key the SendGrid dashboard shows")
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("a %T, want an ECDSA public key", pub)
	}
	return k, nil
}

func (s *sendgrid) start(context.Context) error {
	if !s.cfg.VerificationKey.IsSet() {
		s.mu.Lock()
		s.open = true
		s.mu.Unlock()
		return nil
	}
	v, err := loadSecret(s.cfg.VerificationKey)
	if err != nil {
		return fmt.Errorf("verification_key: %w", err)
	}
	k, err := parseECDSAKey(v)
	if err != nil {
		return fmt.Errorf("verification_key: %w", err)
	}
	s.mu.Lock()
	s.key = k
	s.mu.Unlock()
	return nil
}

// verifySendGrid checks SendGrid's signature of body.
func verifySendGrid(key *ecdsa.PublicKey, h http.Header, body []byte) error {
	sig, ts := h.Get(SendGridSignatureHeader), h.Get(SendGridTimestampHeader)
	if sig == "" || ts == "" {
		return reject(http.StatusUnauthorized, "auth", "no %s or %s header: enable the signed event webhook", SendGridSignatureHeader, SendGridTimestampHeader)
	}
	der, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return reject(http.StatusForbidden, "signature", "%s is not base64", SendGridSignatureHeader)
	}
	hsh := sha256.New()
	hsh.Write([]byte(ts))
	hsh.Write(body)
	if !ecdsa.VerifyASN1(key, hsh.Sum(nil), der) {
		return reject(http.StatusForbidden, "signature", "bad signature")
	}
	return nil
}

// sendgridEvent is the part of one SendGrid event twice reads; every
// other member (custom_args are merged into the event) is in all.
type sendgridEvent struct {
	Email     string      `json:"email"`
	Timestamp json.Number `json:"timestamp"`
	Event     string      `json:"event"`
	EventID   string      `json:"sg_event_id"`
	MessageID string      `json:"sg_message_id"`
	Type      string      `json:"type"`
}

// sendgridTypes maps SendGrid's event names to the normalized types.
var sendgridTypes = map[string]string{
	"processed":         Sent,
	"delivered":         Delivered,
	"bounce":            Bounced,
	"dropped":           Dropped,
	"spamreport":        Complained,
	"unsubscribe":       Unsubscribed,
	"group_unsubscribe": Unsubscribed,
}

func (s *sendgrid) receive(_ context.Context, req *Request) ([]observation, *Result, error) {
	s.mu.Lock()
	key, open := s.key, s.open
	s.mu.Unlock()
	switch {
	case open:
	case key == nil:
		return nil, nil, errors.New("sendgrid: verification key not loaded (Start not called)")
	default:
		if err := verifySendGrid(key, req.Header, req.Body); err != nil {
			return nil, nil, err
		}
	}
	obs, mal := parseSendGrid(req.Body)
	return obs, &Result{Malformed: mal}, nil
}

// parseSendGrid reads a verified SendGrid batch; what is not an event is
// returned as malformed reasons.
func parseSendGrid(body []byte) ([]observation, []string) {
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, []string{"sendgrid: body is not a JSON array of events: " + err.Error()}
	}
	var obs []observation
	var mal []string
	for i, r := range raw {
		o, err := parseSendGridEvent(r)
		if err != "" {
			mal = append(mal, fmt.Sprintf("sendgrid: event %d: %s", i, err))
			continue
		}
		obs = append(obs, o)
	}
	return obs, mal
}

func parseSendGridEvent(r json.RawMessage) (observation, string) {
	var e sendgridEvent
	d := json.NewDecoder(bytes.NewReader(r))
	d.UseNumber()
	if err := d.Decode(&e); err != nil {
		return observation{}, "not an event object: " + err.Error()
	}
	var all map[string]json.RawMessage
	_ = json.Unmarshal(r, &all)
	if e.EventID == "" {
		return observation{}, "no sg_event_id"
	}
	if e.Event == "" {
		return observation{}, "no event"
	}
	o := observation{
		id:        "sendgrid:" + e.EventID,
		typ:       sendgridTypes[e.Event],
		raw:       e.Event,
		messageID: e.MessageID,
		arg: func(name string) (string, bool) {
			return argString(all[name])
		},
	}
	if t, ok := unixTime(e.Timestamp); ok {
		o.ts = t
	}
	if e.Email != "" {
		o.recipients = []string{e.Email}
	}
	if e.Event == "bounce" {
		o.bounce = e.Type
		if o.bounce == "" {
			o.bounce = "bounce"
		}
	}
	return o, ""
}
