package smtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"github.com/twicehq/twice/config"
	"net"
	stdsmtp "net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/twicehq/twice/collectors/push"
	"github.com/twicehq/twice/collectors/push/pushtest"
	"github.com/twicehq/twice/sources"
)

// receipt is a message as an application's mailer writes it.
func receipt(messageID, key, jobID string) []byte {
	return []byte("From: Shop <noreply@shop.test>\r\n" +
		"To: Ann <ann@example.com>\r\n" +
		"Subject: =?utf-8?q?Your_receipt_=E2=84=96123?=\r\n" +
		"Message-ID: " + messageID + "\r\n" +
		"X-Idempotency-Key: " + key + "\r\n" +
		"X-Job-Id: " + jobID + "\r\n" +
		"\r\n" +
		"Thanks for your payment.\r\n")
}

func TestMessageBecomesAnEffectAnsweredOnlyOnceDurable(t *testing.T) {
	s := sidecarless(t, Config{JobHeader: "X-Job-Id"})
	sent := make(chan error, 1)
	go func() {
		sent <- stdsmtp.SendMail(s.Addr(), nil, "noreply@shop.test", []string{"ann@example.com", "Bob@Example.com"},
			receipt("<m-1@shop.test>", "receipt/payment:123", "j-1"))
	}()
	recs := pollN(t, s, 1)
	select {
	case err := <-sent:
		t.Fatalf("the client got its answer (%v) before the commit", err)
	default:
	}
	if err := s.Commit(context.Background(), map[string]sources.Position{"messages": recs[0].Position}); err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	ev := recs[0].Event
	if ev == nil || ev.Kind.String() != "effect" || ev.Effect != "email.sent" || ev.EffectKey != "receipt/payment:123" ||
		ev.JobID != "j-1" || !strings.HasPrefix(ev.ID, "smtp:") || ev.Time != fixedClock().UnixNano() {
		t.Fatalf("event %+v", ev)
	}
	var attrs map[string]any
	if err := json.Unmarshal(ev.Attrs, &attrs); err != nil {
		t.Fatal(err)
	}
	if attrs["message_id"] != "<m-1@shop.test>" || attrs["subject"] != "Your receipt №123" || attrs["from"] != "noreply@shop.test" {
		t.Errorf("attrs %v", attrs)
	}
	to := fmt.Sprint(attrs["to"])
	if strings.Contains(strings.ToLower(to), "example.com") || !strings.Contains(to, hashRecipient("ann@example.com")) {
		t.Errorf("recipients %s: want them hashed", to)
	}
	if st := s.Stats(); st.Requests["accepted"] != 1 {
		t.Errorf("counts %v", st.Requests)
	}
}

func TestIDIsStableForTheSameMessageAndRecipients(t *testing.T) {
	cfg := Config{}
	a := parseMessage(receipt("<m-1@x>", "k", ""), "f@x", []string{"A@x", "b@x"}, cfg, nil)
	b := parseMessage(receipt("<m-1@x>", "k", ""), "f@x", []string{"b@x", "a@x"}, cfg, nil)
	other := parseMessage(receipt("<m-2@x>", "k", ""), "f@x", []string{"a@x", "b@x"}, cfg, nil)
	fewer := parseMessage(receipt("<m-1@x>", "k", ""), "f@x", []string{"a@x"}, cfg, nil)
	if a.id() != b.id() {
		t.Errorf("same message, same recipients in another order: ids %s %s", a.id(), b.id())
	}
	if a.id() == other.id() || a.id() == fewer.id() {
		t.Errorf("another Message-ID or other recipients share the id %s", a.id())
	}
	noKey := parseMessage([]byte("Message-ID: <m-3@x>\r\n\r\nhi\r\n"), "f@x", []string{"a@x"}, cfg, nil)
	if noKey.effectKey() != "<m-3@x>" {
		t.Errorf("no key header: effect_key %q, want the Message-ID", noKey.effectKey())
	}
	bare := parseMessage([]byte("hi\r\n"), "f@x", []string{"a@x"}, cfg, nil)
	if !strings.HasPrefix(bare.effectKey(), "sha256:") || bare.id() != parseMessage([]byte("hi\r\n"), "f@x", []string{"a@x"}, cfg, nil).id() {
		t.Errorf("no headers: effect_key %q id %q", bare.effectKey(), bare.id())
	}
}

// TestRetryIsNotADuplicateButAResendIs runs the source in a real watch:
// the client sends the same message again (it got no answer, say) and
// twice counts it once; the job's retry sends a new message (new
// Message-ID) with the same key, and that is a duplicate effect.
func TestRetryIsNotADuplicateButAResendIs(t *testing.T) {
	w := startWatch(t, Config{JobHeader: "X-Job-Id"}, "detectors: {}\n")
	send := func(msg []byte) {
		t.Helper()
		if err := stdsmtp.SendMail(w.s.Addr(), nil, "noreply@shop.test", []string{"ann@example.com"}, msg); err != nil {
			t.Fatal(err)
		}
	}
	send(receipt("<m-1@shop.test>", "receipt/payment:1", "j-1"))
	send(receipt("<m-1@shop.test>", "receipt/payment:1", "j-1")) // the client's retry
	summary, findings := w.findings(t)
	if summary["events"] != 1.0 || summary["repeated_ids"] != 1.0 || len(findings) != 0 {
		t.Fatalf("after a retry: summary %v, findings %v; want 1 event, 1 repeated id, no finding", summary, findings)
	}
	send(receipt("<m-2@shop.test>", "receipt/payment:1", "j-1")) // the job ran again
	summary, findings = w.findings(t)
	if summary["events"] != 2.0 || len(findings) != 1 || findings[0]["detector"] != "duplicate-effect" ||
		findings[0]["subject"] != "receipt/payment:1" || findings[0]["cause"] != "redelivery" {
		t.Fatalf("after a resend: summary %v, findings %v; want one duplicate-effect (redelivery)", summary, findings)
	}
}

func TestPythonSmtplib(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	s := sidecarless(t, Config{Username: "app", Password: config.Secret{Value: "pw-1"}})
	got := commitAll(t, s)
	script := `
import smtplib, sys
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "noreply@shop.test"
m["To"] = "ann@example.com"
m["Subject"] = "Your receipt"
m["Message-ID"] = "<py-1@shop.test>"
m["X-Idempotency-Key"] = "receipt/payment:9"
m.set_content("Thanks")
host, port = sys.argv[1].rsplit(":", 1)
with smtplib.SMTP(host, int(port)) as c:
    try:
        c.send_message(m)
        print("sent without login")
    except smtplib.SMTPSenderRefused as e:
        print("refused", e.smtp_code)
    c.login("app", "pw-1")
    c.send_message(m)
    print("sent")
`
	out, err := exec.Command(py, "-c", script, s.Addr()).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	if string(out) != "refused 530\nsent\n" {
		t.Fatalf("python printed %q", out)
	}
	r := <-got
	if r.Event.EffectKey != "receipt/payment:9" {
		t.Fatalf("event %+v", r.Event)
	}
	if st := s.Stats(); st.Requests["unauthorized"] != 1 || st.Requests["accepted"] != 1 {
		t.Fatalf("counts %v", st.Requests)
	}
}

func TestRelayForwardsThenRecords(t *testing.T) {
	up := startUpstream(t, func(u *upstream) { u.user, u.pass = "relay-user", "relay-pw" })
	pwFile := filepath.Join(t.TempDir(), "relay-password")
	if err := os.WriteFile(pwFile, []byte("relay-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := sidecarless(t, Config{Relay: &Relay{Address: up.addr, CAFile: up.caFile, Username: "relay-user", Password: config.Secret{File: pwFile}}})
	got := commitAll(t, s)
	msg := receipt("<m-9@shop.test>", "receipt/payment:9", "")
	if err := stdsmtp.SendMail(s.Addr(), nil, "noreply@shop.test", []string{"ann@example.com"}, msg); err != nil {
		t.Fatal(err)
	}
	msgs := up.messages()
	if len(msgs) != 1 || !msgs[0].authed || string(msgs[0].data) != string(msg) || msgs[0].from != "noreply@shop.test" ||
		len(msgs[0].to) != 1 || msgs[0].to[0] != "ann@example.com" {
		t.Fatalf("upstream got %+v", msgs)
	}
	r := <-got
	var attrs map[string]any
	_ = json.Unmarshal(r.Event.Attrs, &attrs)
	if r.Event.EffectKey != "receipt/payment:9" || attrs["relay"] != up.addr {
		t.Fatalf("event %+v attrs %v", r.Event, attrs)
	}
}

func TestRelayRefusalIsTheClientsAnswerAndNoEffect(t *testing.T) {
	up := startUpstream(t, func(u *upstream) {
		u.refuse = &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	})
	s := sidecarless(t, Config{Relay: &Relay{Address: up.addr, CAFile: up.caFile}})
	err := stdsmtp.SendMail(s.Addr(), nil, "noreply@shop.test", []string{"nobody@example.com"}, receipt("<m@x>", "k", ""))
	if err == nil || !strings.HasPrefix(err.Error(), "550 ") {
		t.Fatalf("SendMail: %v, want the upstream's 550", err)
	}
	// Upstream down: 451, try again later.
	down := sidecarless(t, Config{Relay: &Relay{Address: "127.0.0.1:1", NoStartTLS: true}})
	err = stdsmtp.SendMail(down.Addr(), nil, "noreply@shop.test", []string{"ann@example.com"}, receipt("<m@x>", "k", ""))
	if err == nil || !strings.HasPrefix(err.Error(), "451 ") {
		t.Fatalf("SendMail with the relay down: %v, want 451", err)
	}
	for _, st := range []*Stream{s, down} {
		if st.Pending() != 0 || st.Stats().Requests["relay_failed"] != 1 {
			t.Fatalf("a refused relay recorded something: pending %d, counts %v", st.Pending(), st.Stats().Requests)
		}
	}
}

func TestFullAndShutdownAnswer421(t *testing.T) {
	s := sidecarless(t, Config{MaxPending: 1})
	first := make(chan error, 1)
	go func() {
		first <- stdsmtp.SendMail(s.Addr(), nil, "a@x", []string{"b@x"}, receipt("<1@x>", "k1", ""))
	}()
	pollN(t, s, 1)
	err := stdsmtp.SendMail(s.Addr(), nil, "a@x", []string{"b@x"}, receipt("<2@x>", "k2", ""))
	if err == nil || !strings.HasPrefix(err.Error(), "421 ") {
		t.Fatalf("while full: %v, want 421", err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-first; err == nil || !strings.HasPrefix(err.Error(), "421 ") {
		t.Fatalf("waiting at shutdown: %v, want 421", err)
	}
}

func TestKeyTemplate(t *testing.T) {
	tmpl, err := parseKeyTemplate("receipt/{{X-Payment-Id}}/{{ x-kind }}")
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte("Message-ID: <k@x>\r\nX-Payment-Id: 123\r\nX-Kind: full\r\n\r\nhi\r\n")
	if m := parseMessage(raw, "f@x", []string{"a@x"}, Config{KeyTemplate: "…"}, tmpl); m.effectKey() != "receipt/123/full" {
		t.Errorf("key %q", m.effectKey())
	}
	missing := []byte("Message-ID: <k@x>\r\nX-Payment-Id: 123\r\n\r\nhi\r\n")
	if m := parseMessage(missing, "f@x", []string{"a@x"}, Config{}, tmpl); m.key != "" || m.effectKey() != "<k@x>" {
		t.Errorf("a header missing: key %q, effect_key %q; want the Message-ID", m.key, m.effectKey())
	}
	for tmpl, want := range map[string]string{
		"receipt/{{X-Id":   `column 9 of "receipt/{{X-Id": {{ without }}`,
		"receipt/X-Id}}":   `}} without {{`,
		"receipt/{{a b}}":  `"a b" is not a header name`,
		"receipt/constant": "has no {{Header-Name}}",
	} {
		if _, err := parseKeyTemplate(tmpl); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", tmpl, err, want)
		}
	}
	// Through the server.
	s := sidecarless(t, Config{KeyTemplate: "receipt/{{X-Payment-Id}}/{{X-Kind}}"})
	got := commitAll(t, s)
	if err := stdsmtp.SendMail(s.Addr(), nil, "f@x", []string{"a@x"}, raw); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.Event.EffectKey != "receipt/123/full" {
		t.Errorf("through the server: key %q", r.Event.EffectKey)
	}
	if _, err := load(t, "sources: [{name: s, type: smtp, key_header: K, key_template: '{{A}}'}]"); err == nil ||
		!strings.Contains(err.Error(), "sources[0].key_template: give key_header or key_template, not both") {
		t.Errorf("both: %v", err)
	}
}

func TestSTARTTLSThenAuth(t *testing.T) {
	cert := pushtest.SelfSigned(t)
	s := sidecarless(t, Config{Username: "app", Password: config.Secret{Value: "pw"}, TLS: &push.TLSFiles{CertFile: cert.CertFile, KeyFile: cert.KeyFile}})
	got := commitAll(t, s)
	c, err := stdsmtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("AUTH"); ok {
		t.Fatal("AUTH offered before STARTTLS")
	}
	if err := c.StartTLS(&tls.Config{ServerName: "127.0.0.1", RootCAs: cert.Pool}); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(stdsmtp.PlainAuth("", "app", "pw", "127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@x"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@x"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write(receipt("<tls@x>", "k-tls", ""))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.Event.EffectKey != "k-tls" {
		t.Fatalf("event %+v", r.Event)
	}
}

func TestMaxConnections(t *testing.T) {
	s := sidecarless(t, Config{MaxConnections: 1})
	first, err := stdsmtp.Dial(s.Addr()) // reads the greeting
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// Not served while the first is: no greeting. (A correct server never
	// sends one here, so the deadline cannot make this pass wrongly.)
	raw.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, _ := raw.Read(make([]byte, 64)); n != 0 {
		t.Fatal("a second client was served with max_connections 1")
	}
	if err := first.Quit(); err != nil {
		t.Fatal(err)
	}
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	greeting, err := bufio.NewReader(raw).ReadString('\n')
	if err != nil || !strings.HasPrefix(greeting, "220 ") {
		t.Fatalf("after the first left: %q %v", greeting, err)
	}
}
