package emailevents

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	sesTopic   = "arn:aws:sns:us-east-1:123456789012:ses-events"
	sesCertURL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
)

var sesNow = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

// snsSigner signs SNS messages as SNS does, with the key of a
// certificate served by its fake fetcher.
type snsSigner struct {
	key  *rsa.PrivateKey
	cert []byte // PEM

	mu      sync.Mutex
	fetched map[string]int
	fail    error
}

var (
	snsKeyOnce sync.Once
	snsKey     *rsa.PrivateKey
	snsKeyErr  error
)

func newSNSSigner(t testing.TB) *snsSigner {
	t.Helper()
	snsKeyOnce.Do(func() { snsKey, snsKeyErr = rsa.GenerateKey(rand.Reader, 2048) })
	if snsKeyErr != nil {
		t.Fatal(snsKeyErr)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sns.amazonaws.com"},
		NotBefore:    sesNow.Add(-24 * time.Hour),
		NotAfter:     sesNow.Add(365 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &snsKey.PublicKey, snsKey)
	if err != nil {
		t.Fatal(err)
	}
	return &snsSigner{key: snsKey, cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), fetched: map[string]int{}}
}

// fetch serves the certificate at any .pem URL, and an SNS answer at a
// SubscribeURL, counting the GETs.
func (s *snsSigner) fetch(_ context.Context, u string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetched[u]++
	if s.fail != nil {
		return nil, s.fail
	}
	if strings.HasSuffix(u, ".pem") {
		return s.cert, nil
	}
	return []byte(`<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"/>`), nil
}

func (s *snsSigner) gets(u string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetched[u]
}

// message returns the JSON body SNS posts for m, signed with version.
func (s *snsSigner) message(t testing.TB, m snsMessage, version string) string {
	t.Helper()
	if m.TopicArn == "" {
		m.TopicArn = sesTopic
	}
	if m.SigningCertURL == "" {
		m.SigningCertURL = sesCertURL
	}
	if m.Timestamp == "" {
		m.Timestamp = "2026-12-03T09:59:58.123Z"
	}
	m.SignatureVersion = version
	var sig []byte
	var err error
	text := awsStringToSign(m)
	if version == "1" {
		sum := sha1.Sum([]byte(text))
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA1, sum[:])
	} else {
		sum := sha256.Sum256([]byte(text))
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	m.Signature = base64.StdEncoding.EncodeToString(sig)
	fields := map[string]any{
		"Type": m.Type, "MessageId": m.MessageID, "TopicArn": m.TopicArn, "Message": m.Message,
		"Timestamp": m.Timestamp, "SignatureVersion": m.SignatureVersion, "Signature": m.Signature,
		"SigningCertURL": m.SigningCertURL,
	}
	if m.Subject != nil {
		fields["Subject"] = *m.Subject
	}
	if m.Type == snsNotification {
		fields["UnsubscribeURL"] = "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=" + sesTopic + ":c9135db0"
	} else {
		fields["Token"] = m.Token
		fields["SubscribeURL"] = m.SubscribeURL
	}
	b, err := json.MarshalIndent(fields, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// awsStringToSign is the text SNS signs, written from the SNS developer
// guide apart from the code under test: name and value lines, in byte
// order of the names, of the fields the message type lists.
func awsStringToSign(m snsMessage) string {
	fields := map[string]string{"Message": m.Message, "MessageId": m.MessageID, "Timestamp": m.Timestamp, "TopicArn": m.TopicArn, "Type": m.Type}
	if m.Type == snsNotification {
		if m.Subject != nil {
			fields["Subject"] = *m.Subject
		}
	} else {
		fields["SubscribeURL"], fields["Token"] = m.SubscribeURL, m.Token
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k + "\n" + fields[k] + "\n")
	}
	return b.String()
}

func TestSNSStringToSignIsTheDocumentedOne(t *testing.T) {
	// The examples of the SNS developer guide ("Verifying the signatures
	// of Amazon SNS messages").
	subj := "My subject"
	n := snsMessage{Type: snsNotification, Message: "My Test Message", MessageID: "4d4dc071-ddbf-465d-bba8-08f81c89da64",
		Subject: &subj, Timestamp: "2019-01-31T04:37:04.321Z", TopicArn: "arn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P"}
	want := "Message\nMy Test Message\nMessageId\n4d4dc071-ddbf-465d-bba8-08f81c89da64\nSubject\nMy subject\nTimestamp\n2019-01-31T04:37:04.321Z\nTopicArn\narn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P\nType\nNotification\n"
	if got := n.stringToSign(); got != want || awsStringToSign(n) != want {
		t.Errorf("notification:\n%q\nwant\n%q", got, want)
	}
	n.Subject = nil
	if got := n.stringToSign(); strings.Contains(got, "Subject") || got != awsStringToSign(n) {
		t.Errorf("without a subject: %q", got)
	}
	c := snsMessage{Type: snsSubscribe, Message: "My Test Message", MessageID: "3d891288-136d-417f-bc05-901c108273ee",
		SubscribeURL: "https://sns.us-east-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P&Token=233...",
		Timestamp:    "2019-01-31T19:25:13.719Z", Token: "233...", TopicArn: "arn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P"}
	want = "Message\nMy Test Message\nMessageId\n3d891288-136d-417f-bc05-901c108273ee\nSubscribeURL\n" + c.SubscribeURL +
		"\nTimestamp\n2019-01-31T19:25:13.719Z\nToken\n233...\nTopicArn\narn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P\nType\nSubscriptionConfirmation\n"
	if got := c.stringToSign(); got != want || awsStringToSign(c) != want {
		t.Errorf("confirmation:\n%q\nwant\n%q", got, want)
	}
}

// SES events as SES documents them for event publishing
// (docs.aws.amazon.com/ses, "Examples of event data that Amazon SES
// publishes to Amazon SNS"): the key in a header (a tag value cannot
// hold "/" or ":"), or in a message tag.
const (
	sesSend                 = `{"eventType":"Send","mail":{"timestamp":"2026-12-03T09:59:57.645Z","source":"sender@example.com","sourceArn":"arn:aws:ses:us-east-1:123456789012:identity/sender@example.com","sendingAccountId":"123456789012","messageId":"EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000","destination":["recipient@example.com"],"headersTruncated":false,"headers":[{"name":"From","value":"sender@example.com"},{"name":"To","value":"recipient@example.com"},{"name":"Subject","value":"Your receipt"},{"name":"X-Job-Id","value":"j-1"},{"name":"idempotency_key","value":"receipt/payment:123"}],"commonHeaders":{"from":["sender@example.com"],"to":["recipient@example.com"],"messageId":"EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000","subject":"Your receipt"},"tags":{"ses:configuration-set":["ConfigSet"],"ses:source-ip":["192.0.2.0"],"ses:from-domain":["example.com"],"ses:caller-identity":["ses_user"]}},"send":{}}`
	sesBounce               = `{"eventType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"recipient@example.com","action":"failed","status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}],"timestamp":"2026-12-03T09:59:59.350Z","feedbackId":"0100015e-example","reportingMTA":"dsn; mta.example.com"},"mail":{"timestamp":"2026-12-03T09:59:57.645Z","source":"sender@example.com","sendingAccountId":"123456789012","messageId":"EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000","destination":["recipient@example.com"],"headersTruncated":false,"tags":{"idempotency_key":["receipt-payment-123"]}}}`
	sesDeliveryNotification = `{"notificationType":"Delivery","mail":{"timestamp":"2026-12-03T09:59:57.645Z","messageId":"EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000","source":"sender@example.com","destination":["recipient@example.com"]},"delivery":{"timestamp":"2026-12-03T09:59:58.100Z","processingTimeMillis":546,"recipients":["recipient@example.com"],"smtpResponse":"250 ok","reportingMTA":"a8-70.smtp-out.amazonses.com"}}`
	sesOpen                 = `{"eventType":"Open","mail":{"timestamp":"2026-12-03T09:59:57.645Z","messageId":"EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000","destination":["recipient@example.com"],"tags":{"idempotency_key":["receipt/payment:123"]}},"open":{"ipAddress":"192.0.2.1","timestamp":"2026-12-03T10:00:57.645Z","userAgent":"Mozilla/5.0"}}`
)

func sesReceiver(t *testing.T, s *snsSigner, events ...string) *Receiver {
	t.Helper()
	now, _ := fixedClock(sesNow)
	return start(t, Config{Provider: SES, JobArg: "X-Job-Id", TopicARNs: []string{sesTopic}, Events: events},
		Options{Now: now, Fetch: s.fetch})
}

func TestSESMapsSignedNotificationsOfBothVersions(t *testing.T) {
	s := newSNSSigner(t)
	r := sesReceiver(t, s, Sent, Delivered, Bounced)
	subj := "Amazon SES Email Event Notification"
	for i, v := range []string{"1", "2"} {
		body := s.message(t, snsMessage{Type: snsNotification, MessageID: "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf32" + v, Subject: &subj, Message: sesSend}, v)
		res := receive(t, r, nil, body)
		got := effects(t, res)
		if len(got) != 1 || got[0].ID != "ses:22b80b92-fdea-4c2c-8f9d-bdfb0c7bf32"+v || got[0].Effect != "email.sent" ||
			got[0].EffectKey != "receipt/payment:123" || got[0].JobID != "j-1" || got[0].TS != "2026-12-03T09:59:57.645Z" ||
			got[0].Attrs["message_id"] != "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000" {
			t.Errorf("version %s: %+v", v, got)
		}
		noAddress(t, res, "recipient@example.com")
		if n := s.gets(sesCertURL); n != 1 {
			t.Errorf("after %d messages the certificate was fetched %d times, want once (cached)", i+1, n)
		}
	}
	b := effects(t, receive(t, r, nil, s.message(t, snsMessage{Type: snsNotification, MessageID: "m-bounce", Message: sesBounce}, "1")))
	if len(b) != 1 || b[0].Effect != "email.bounced" || b[0].EffectKey != "receipt-payment-123#bounced" ||
		b[0].Attrs["bounce_type"] != "Permanent/General" || b[0].TS != "2026-12-03T09:59:59.35Z" {
		t.Errorf("bounce: %+v", b)
	}
	d := effects(t, receive(t, r, nil, s.message(t, snsMessage{Type: snsNotification, MessageID: "m-delivery", Message: sesDeliveryNotification}, "2")))
	if len(d) != 1 || d[0].Effect != "email.delivered" ||
		d[0].EffectKey != "ses:EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000#delivered" {
		t.Errorf("an identity notification without tags: %+v", d)
	}
	if res := receive(t, r, nil, s.message(t, snsMessage{Type: snsNotification, MessageID: "m-open", Message: sesOpen}, "2")); res.Ignored != 1 || len(res.Events) != 0 {
		t.Errorf("open: %+v", res)
	}
	bad := receive(t, r, nil, s.message(t, snsMessage{Type: snsNotification, MessageID: "m-bad", Message: "not json"}, "2"))
	if len(bad.Malformed) != 1 || !strings.Contains(bad.Malformed[0], "not an SES event") {
		t.Errorf("a signed notification that is not an SES event: %+v", bad)
	}
}

func TestSESRefusesWhatItCannotVerify(t *testing.T) {
	s := newSNSSigner(t)
	r := sesReceiver(t, s)
	good := snsMessage{Type: snsNotification, MessageID: "m1", Message: sesSend}
	body := s.message(t, good, "2")

	refused(t, r, nil, strings.Replace(body, "receipt/payment:123", "receipt/payment:999", 1), http.StatusForbidden, "signature")
	refused(t, r, nil, strings.Replace(body, `"MessageId": "m1"`, `"MessageId": "m2"`, 1), http.StatusForbidden, "signature")
	refused(t, r, nil, strings.Replace(body, `"SignatureVersion": "2"`, `"SignatureVersion": "1"`, 1), http.StatusForbidden, "signature")
	refused(t, r, nil, strings.Replace(body, `"SignatureVersion": "2"`, `"SignatureVersion": "3"`, 1), http.StatusForbidden, "signature")
	other := good
	other.TopicArn = "arn:aws:sns:us-east-1:999999999999:someone-elses-topic"
	refused(t, r, nil, s.message(t, other, "2"), http.StatusForbidden, "topic")
	for _, u := range []string{
		"http://sns.us-east-1.amazonaws.com/cert.pem",
		"https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
		"https://evil.example/sns.us-east-1.amazonaws.com/cert.pem",
		"https://sns.eu-west-1.amazonaws.com/cert.pem",
		"https://sns.us-east-1.amazonaws.com:8443/cert.pem",
		"https://sns.us-east-1.amazonaws.com/cert.txt",
	} {
		m := good
		m.SigningCertURL = u
		refused(t, r, nil, s.message(t, m, "2"), http.StatusForbidden, "signature")
		if s.gets(u) != 0 {
			t.Errorf("fetched %s", u)
		}
	}
	refused(t, r, nil, sesSend, http.StatusUnauthorized, "auth") // raw message delivery
	refused(t, r, nil, `[]`, http.StatusBadRequest, "body")
	unknown := good
	unknown.Type = "Surprise"
	refused(t, r, nil, s.message(t, unknown, "2"), http.StatusBadRequest, "body")
	if st := r.Stats(); st.Events != 0 {
		t.Errorf("events recorded: %+v", st)
	}

	// A certificate that cannot be fetched is a failure of twice (SNS
	// retries), not a refusal.
	s2 := newSNSSigner(t)
	s2.fail = errors.New("connection refused")
	r2 := sesReceiver(t, s2)
	_, err := r2.Receive(context.Background(), &Request{Body: []byte(s2.message(t, good, "2"))})
	if err == nil || RejectStatus(err) != 0 || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("an unreachable certificate: %v", err)
	}
	// A certificate out of its validity is refused.
	now, advance := fixedClock(sesNow)
	r3 := start(t, Config{Provider: SES, TopicARNs: []string{sesTopic}}, Options{Now: now, Fetch: s.fetch})
	advance(400 * 24 * time.Hour)
	refused(t, r3, nil, body, http.StatusForbidden, "signature")
}

func TestSESConfirmsSubscriptionsOnlyOnSNS(t *testing.T) {
	s := newSNSSigner(t)
	r := sesReceiver(t, s)
	sub := snsMessage{
		Type: snsSubscribe, MessageID: "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
		Token:        "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6ad02428b09ceece29417f1f02d609c582afbacc99c583a916b9981dd2728f4ae6fdb82efd087cc3b7849e05798d2d2785c03b0879594eeac82c01f235d0e717736",
		Message:      "You have chosen to subscribe to the topic " + sesTopic + ".\nTo confirm the subscription, visit the SubscribeURL included in this message.",
		SubscribeURL: "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + sesTopic + "&Token=2336412f37fb687f",
	}
	for _, v := range []string{"1", "2"} {
		res := receive(t, r, nil, s.message(t, sub, v))
		if len(res.Events) != 0 || !strings.Contains(res.Note, "confirmed") {
			t.Errorf("confirmation: %+v", res)
		}
	}
	if n := s.gets(sub.SubscribeURL); n != 2 {
		t.Errorf("SubscribeURL fetched %d times, want 2", n)
	}
	evil := sub
	evil.SubscribeURL = "https://attacker.example/?Action=ConfirmSubscription"
	refused(t, r, nil, s.message(t, evil, "2"), http.StatusForbidden, "signature")
	if s.gets(evil.SubscribeURL) != 0 {
		t.Errorf("fetched a SubscribeURL outside SNS")
	}
	forged := s.message(t, sub, "2")
	forged = strings.Replace(forged, "Token=2336412f37fb687f", "Token=0000", 1)
	refused(t, r, nil, forged, http.StatusForbidden, "signature")

	unsub := sub
	unsub.Type = snsUnsubscribe
	if res := receive(t, r, nil, s.message(t, unsub, "2")); len(res.Events) != 0 || res.Note == "" {
		t.Errorf("unsubscribe confirmation: %+v", res)
	}
	if n := s.gets(sub.SubscribeURL); n != 2 {
		t.Errorf("an UnsubscribeConfirmation fetched the SubscribeURL")
	}
}
