package emailevents

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// SNS message types.
const (
	snsNotification = "Notification"
	snsSubscribe    = "SubscriptionConfirmation"
	snsUnsubscribe  = "UnsubscribeConfirmation"
)

// maxCerts caps the signing certificates an SES receiver keeps.
const maxCerts = 32

// snsHost is the host of SNS's certificates and subscription URLs in a
// region: sns.REGION.amazonaws.com (.com.cn in China).
var snsHost = regexp.MustCompile(`^sns\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$`)

// snsMessage is an SNS HTTP(S) message, as POSTed to a subscribed
// endpoint (raw message delivery off).
type snsMessage struct {
	Type             string  `json:"Type"`
	MessageID        string  `json:"MessageId"`
	Token            string  `json:"Token"`
	TopicArn         string  `json:"TopicArn"`
	Subject          *string `json:"Subject"`
	Message          string  `json:"Message"`
	SubscribeURL     string  `json:"SubscribeURL"`
	Timestamp        string  `json:"Timestamp"`
	SignatureVersion string  `json:"SignatureVersion"`
	Signature        string  `json:"Signature"`
	SigningCertURL   string  `json:"SigningCertURL"`
}

// stringToSign is the text SNS signs: name and value lines of the
// message's fields in byte order, Subject only when present.
func (m *snsMessage) stringToSign() string {
	var b strings.Builder
	add := func(k, v string) { b.WriteString(k); b.WriteByte('\n'); b.WriteString(v); b.WriteByte('\n') }
	add("Message", m.Message)
	add("MessageId", m.MessageID)
	if m.Type == snsNotification {
		if m.Subject != nil {
			add("Subject", *m.Subject)
		}
		add("Timestamp", m.Timestamp)
		add("TopicArn", m.TopicArn)
		add("Type", m.Type)
		return b.String()
	}
	add("SubscribeURL", m.SubscribeURL)
	add("Timestamp", m.Timestamp)
	add("Token", m.Token)
	add("TopicArn", m.TopicArn)
	add("Type", m.Type)
	return b.String()
}

// ses reads Amazon SES events published to SNS topics, as SNS posts them
// to an HTTPS subscription: each message signed with the RSA key of an
// X.509 certificate SNS serves from sns.REGION.amazonaws.com.
type ses struct {
	cfg   *Config
	now   func() time.Time
	fetch func(ctx context.Context, url string) ([]byte, error)
	logf  func(format string, args ...any)

	mu    sync.Mutex
	certs map[string]*x509.Certificate
}

func newSES(cfg *Config, opts Options) *ses {
	return &ses{cfg: cfg, now: opts.Now, fetch: opts.Fetch, logf: opts.Logf, certs: map[string]*x509.Certificate{}}
}

func (s *ses) start(context.Context) error { return nil }

// httpFetch GETs an https URL and returns its body (at most 1 MiB).
func httpFetch(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return body, nil
}

// topicRegion returns the region of a topic ARN.
func topicRegion(arn string) string {
	parts := strings.Split(arn, ":")
	if len(parts) < 6 {
		return ""
	}
	return parts[3]
}

// checkSNSURL checks that u is an https URL of SNS in region.
func checkSNSURL(u, region string) error {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "https" || p.User != nil || p.Port() != "" {
		return fmt.Errorf("%q is not an https URL of SNS", u)
	}
	m := snsHost.FindStringSubmatch(p.Hostname())
	if m == nil || m[1] != region {
		return fmt.Errorf("%q is not on sns.%s.amazonaws.com", u, region)
	}
	return nil
}

// cert returns the certificate at u, from the cache or fetched.
func (s *ses) cert(ctx context.Context, u string) (*x509.Certificate, error) {
	s.mu.Lock()
	c := s.certs[u]
	s.mu.Unlock()
	if c == nil {
		body, err := s.fetch(ctx, u)
		if err != nil {
			return nil, fmt.Errorf("ses: fetch signing certificate: %w", err)
		}
		blk, _ := pem.Decode(body)
		if blk == nil || blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("ses: %s is not a PEM certificate", u)
		}
		c, err = x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("ses: signing certificate %s: %w", u, err)
		}
		s.mu.Lock()
		if len(s.certs) >= maxCerts {
			clear(s.certs)
		}
		s.certs[u] = c
		s.mu.Unlock()
	}
	now := s.now()
	if now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return nil, reject(http.StatusForbidden, "signature", "signing certificate %s is not valid now", u)
	}
	return c, nil
}

// verify checks an SNS message's topic, certificate URL and signature.
func (s *ses) verify(ctx context.Context, m *snsMessage) error {
	if !topicARN.MatchString(m.TopicArn) {
		return reject(http.StatusForbidden, "topic", "TopicArn %q is not an SNS topic ARN", m.TopicArn)
	}
	if len(s.cfg.TopicARNs) > 0 && !slices.Contains(s.cfg.TopicARNs, m.TopicArn) {
		return reject(http.StatusForbidden, "topic", "topic %q is not in topic_arns", m.TopicArn)
	}
	region := topicRegion(m.TopicArn)
	if err := checkSNSURL(m.SigningCertURL, region); err != nil {
		return reject(http.StatusForbidden, "signature", "SigningCertURL: %v", err)
	}
	if !strings.HasSuffix(m.SigningCertURL, ".pem") {
		return reject(http.StatusForbidden, "signature", "SigningCertURL %q is not a .pem file", m.SigningCertURL)
	}
	var h crypto.Hash
	var digest []byte
	switch m.SignatureVersion {
	case "1":
		sum := sha1.Sum([]byte(m.stringToSign()))
		h, digest = crypto.SHA1, sum[:]
	case "2":
		sum := sha256.Sum256([]byte(m.stringToSign()))
		h, digest = crypto.SHA256, sum[:]
	default:
		return reject(http.StatusForbidden, "signature", "unknown SignatureVersion %q", m.SignatureVersion)
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil {
		return reject(http.StatusForbidden, "signature", "Signature is not base64")
	}
	c, err := s.cert(ctx, m.SigningCertURL)
	if err != nil {
		return err
	}
	pub, ok := c.PublicKey.(*rsa.PublicKey)
	if !ok {
		return reject(http.StatusForbidden, "signature", "signing certificate has no RSA key")
	}
	if rsa.VerifyPKCS1v15(pub, h, digest, sig) != nil {
		return reject(http.StatusForbidden, "signature", "bad signature")
	}
	return nil
}

func (s *ses) receive(ctx context.Context, req *Request) ([]observation, *Result, error) {
	var m snsMessage
	if err := json.Unmarshal(req.Body, &m); err != nil {
		return nil, nil, reject(http.StatusBadRequest, "body", "not an SNS message (is raw message delivery on? turn it off): %v", err)
	}
	if m.Signature == "" || m.SigningCertURL == "" {
		return nil, nil, reject(http.StatusUnauthorized, "auth", "SNS message without Signature or SigningCertURL (is raw message delivery on? turn it off)")
	}
	switch m.Type {
	case snsNotification, snsSubscribe, snsUnsubscribe:
	default:
		return nil, nil, reject(http.StatusBadRequest, "body", "unknown SNS message Type %q", m.Type)
	}
	if err := s.verify(ctx, &m); err != nil {
		return nil, nil, err
	}
	switch m.Type {
	case snsSubscribe:
		if err := checkSNSURL(m.SubscribeURL, topicRegion(m.TopicArn)); err != nil {
			return nil, nil, reject(http.StatusForbidden, "signature", "SubscribeURL: %v", err)
		}
		if _, err := s.fetch(ctx, m.SubscribeURL); err != nil {
			return nil, nil, fmt.Errorf("ses: confirm the subscription to %s: %w", m.TopicArn, err)
		}
		s.logf("ses: confirmed the subscription to %s", m.TopicArn)
		return nil, &Result{Note: "subscription to " + m.TopicArn + " confirmed"}, nil
	case snsUnsubscribe:
		s.logf("ses: the subscription to %s was removed", m.TopicArn)
		return nil, &Result{Note: "unsubscribed from " + m.TopicArn}, nil
	}
	o, mal := parseSESEvent([]byte(m.Message))
	if mal != "" {
		return nil, &Result{Malformed: []string{mal}}, nil
	}
	if m.MessageID == "" {
		return nil, &Result{Malformed: []string{"ses: SNS notification without MessageId"}}, nil
	}
	o.id = "ses:" + m.MessageID
	return []observation{o}, &Result{}, nil
}

// sesAddrs are recipients as SES lists them in bounces and complaints.
type sesAddrs []struct {
	EmailAddress string `json:"emailAddress"`
}

func (a sesAddrs) list() []string {
	var out []string
	for _, r := range a {
		out = append(out, r.EmailAddress)
	}
	return out
}

// sesEvent is the part of an SES event (event publishing: eventType; or
// an identity notification: notificationType) twice reads.
type sesEvent struct {
	EventType        string `json:"eventType"`
	NotificationType string `json:"notificationType"`
	Mail             struct {
		Timestamp   string   `json:"timestamp"`
		MessageID   string   `json:"messageId"`
		Destination []string `json:"destination"`
		Headers     []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"headers"`
		Tags map[string][]string `json:"tags"`
	} `json:"mail"`
	Delivery *struct {
		Timestamp  string   `json:"timestamp"`
		Recipients []string `json:"recipients"`
	} `json:"delivery"`
	Bounce *struct {
		Timestamp         string   `json:"timestamp"`
		BounceType        string   `json:"bounceType"`
		BounceSubType     string   `json:"bounceSubType"`
		BouncedRecipients sesAddrs `json:"bouncedRecipients"`
	} `json:"bounce"`
	Complaint *struct {
		Timestamp            string   `json:"timestamp"`
		ComplainedRecipients sesAddrs `json:"complainedRecipients"`
	} `json:"complaint"`
	Reject *struct {
		Reason string `json:"reason"`
	} `json:"reject"`
}

// parseSESEvent reads the SES event an SNS notification carries.
func parseSESEvent(msg []byte) (observation, string) {
	var e sesEvent
	d := json.NewDecoder(bytes.NewReader(msg))
	if err := d.Decode(&e); err != nil {
		return observation{}, "ses: the SNS Message is not an SES event: " + err.Error()
	}
	typ := e.EventType
	if typ == "" {
		typ = e.NotificationType
	}
	if typ == "" {
		return observation{}, "ses: the SNS Message has neither eventType nor notificationType"
	}
	if e.Mail.MessageID == "" {
		return observation{}, fmt.Sprintf("ses: %s event without mail.messageId", typ)
	}
	o := observation{raw: typ, messageID: e.Mail.MessageID}
	at := e.Mail.Timestamp
	switch typ {
	case "Send":
		o.typ, o.recipients = Sent, e.Mail.Destination
	case "Delivery":
		o.typ = Delivered
		if e.Delivery != nil {
			at, o.recipients = e.Delivery.Timestamp, e.Delivery.Recipients
		}
	case "Bounce":
		o.typ = Bounced
		if e.Bounce != nil {
			at, o.recipients = e.Bounce.Timestamp, e.Bounce.BouncedRecipients.list()
			o.bounce = e.Bounce.BounceType
			if e.Bounce.BounceSubType != "" {
				o.bounce += "/" + e.Bounce.BounceSubType
			}
		}
	case "Complaint":
		o.typ = Complained
		if e.Complaint != nil {
			at, o.recipients = e.Complaint.Timestamp, e.Complaint.ComplainedRecipients.list()
		}
	case "Reject", "Rendering Failure":
		o.typ, o.recipients = Dropped, e.Mail.Destination
		if e.Reject != nil {
			o.bounce = e.Reject.Reason
		}
	}
	if t, ok := rfc3339Time(at); ok {
		o.ts = t
	}
	mail := e.Mail
	o.arg = func(name string) (string, bool) {
		if vs := mail.Tags[name]; len(vs) > 0 {
			return vs[0], true
		}
		for _, h := range mail.Headers {
			if strings.EqualFold(h.Name, name) {
				return h.Value, true
			}
		}
		return "", false
	}
	return o, ""
}
