package emailevents

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"github.com/twicehq/twice/config"
	"net/http"
	"strings"
	"testing"
)

// sendgridKey is a key pair like the one SendGrid signs with; the public
// half encoded as the dashboard shows it (base64 of the DER).
type sendgridKey struct {
	priv   *ecdsa.PrivateKey
	public string
}

func newSendGridKey(t testing.TB) sendgridKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return sendgridKey{priv: priv, public: base64.StdEncoding.EncodeToString(der)}
}

// sign returns the headers SendGrid sends with body: the timestamp and
// the base64 ASN.1 ECDSA signature of SHA-256(timestamp + body).
func (k sendgridKey) sign(t testing.TB, ts, body string) http.Header {
	t.Helper()
	sum := sha256.Sum256([]byte(ts + body))
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(SendGridSignatureHeader, base64.StdEncoding.EncodeToString(sig))
	h.Set(SendGridTimestampHeader, ts)
	h.Set("Content-Type", "application/json")
	return h
}

// sendgridBatch is a batch shaped like SendGrid's documented example
// (docs.sendgrid.com, Event Webhook reference), with custom_args
// idempotency_key and job_id, which SendGrid merges into each event.
const sendgridBatch = `[
  {"email":"customer@example.com","timestamp":1764756000,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>","event":"processed","category":["receipts"],"sg_event_id":"rbtnWrG1DVDGGGFHFyun0A==","sg_message_id":"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0","idempotency_key":"receipt/payment:123","job_id":"j-1"},
  {"email":"customer@example.com","timestamp":1764756001,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>","event":"deferred","ip":"168.1.1.1","category":["receipts"],"sg_event_id":"t7LEShmowp86DTdUW8M-GQ==","sg_message_id":"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0","response":"400 try again later","attempt":"5","idempotency_key":"receipt/payment:123","job_id":"j-1"},
  {"email":"customer@example.com","timestamp":1764756002,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>","event":"delivered","ip":"168.1.1.1","category":["receipts"],"sg_event_id":"rWVYmVk90MjZJ9iohOBa3w==","sg_message_id":"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0","response":"250 OK","idempotency_key":"receipt/payment:123","job_id":"j-1"},
  {"email":"customer@example.com","timestamp":1764756003,"event":"open","sg_machine_open":false,"category":["receipts"],"sg_event_id":"FOTFFO0ecsBE-zxFXfs6WA==","sg_message_id":"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0","useragent":"Mozilla/4.0","ip":"255.255.255.255","idempotency_key":"receipt/payment:123","job_id":"j-1"},
  {"email":"customer@example.com","timestamp":1764756004,"event":"click","category":["receipts"],"sg_event_id":"kCAi1KttyQdEKHhdC-nuEA==","sg_message_id":"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0","useragent":"Mozilla/4.0","ip":"255.255.255.255","url":"http://www.sendgrid.com/","url_offset":{"index":0,"type":"html"},"idempotency_key":"receipt/payment:123","job_id":"j-1"},
  {"email":"other@example.com","timestamp":1764756005,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>","event":"bounce","category":["receipts"],"sg_event_id":"6g4ZI7SA-xmRDv57GoPIPw==","sg_message_id":"14c5d75ce93.dfd.64b469.filter0002.16648.5515E0B88.0","reason":"500 unknown recipient","status":"5.0.0","type":"blocked","idempotency_key":"receipt/payment:124"},
  {"email":"other@example.com","timestamp":1764756006,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>","event":"dropped","category":["receipts"],"sg_event_id":"zmzJhfJgAfUSOW80yEbPyw==","sg_message_id":"14c5d75ce93.dfd.64b469.filter0003.16648.5515E0B88.0","reason":"Bounced Address","status":"5.0.0","idempotency_key":"receipt/payment:125"},
  {"email":"customer@example.com","timestamp":1764756007,"event":"spamreport","sg_event_id":"37nvH5QBz858KGVYCM4uOA==","sg_message_id":"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0","idempotency_key":"receipt/payment:123"},
  {"email":"customer@example.com","timestamp":1764756008,"event":"unsubscribe","sg_event_id":"jHV8U5Ug5EudyU_8o5UOTg==","sg_message_id":"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"},
  {"email":"customer@example.com","timestamp":1764756009,"event":"group_resubscribe","sg_event_id":"f5Y5c4tcStiwR3Bwnb0lGg==","sg_message_id":"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0","asm_group_id":10}
]`

func TestSendGridMapsTheDocumentedEvents(t *testing.T) {
	k := newSendGridKey(t)
	r := start(t, Config{Provider: SendGrid, JobArg: "job_id", VerificationKey: config.Secret{Value: k.public},
		Events: []string{Sent, Delivered, Bounced, Dropped, Complained, Unsubscribed}}, Options{})
	res := receive(t, r, k.sign(t, "1764756010", sendgridBatch), sendgridBatch)
	got := effects(t, res)
	want := []struct{ id, effect, key, job string }{
		{"sendgrid:rbtnWrG1DVDGGGFHFyun0A==", "email.sent", "receipt/payment:123", "j-1"},
		{"sendgrid:rWVYmVk90MjZJ9iohOBa3w==", "email.delivered", "receipt/payment:123#delivered", "j-1"},
		{"sendgrid:6g4ZI7SA-xmRDv57GoPIPw==", "email.bounced", "receipt/payment:124#bounced", ""},
		{"sendgrid:zmzJhfJgAfUSOW80yEbPyw==", "email.dropped", "receipt/payment:125#dropped", ""},
		{"sendgrid:37nvH5QBz858KGVYCM4uOA==", "email.complained", "receipt/payment:123#complained", ""},
		{"sendgrid:jHV8U5Ug5EudyU_8o5UOTg==", "email.unsubscribed", "sendgrid:14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0#unsubscribed", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.ID != w.id || g.Effect != w.effect || g.EffectKey != w.key || g.JobID != w.job {
			t.Errorf("event %d = %s %s %s job %q, want %s %s %s job %q", i, g.ID, g.Effect, g.EffectKey, g.JobID, w.id, w.effect, w.key, w.job)
		}
	}
	if res.Ignored != 4 || res.NoKey != 1 || len(res.Malformed) != 0 {
		t.Errorf("ignored %d, no key %d, malformed %v; want 4 (deferred, open, click, group_resubscribe), 1, none", res.Ignored, res.NoKey, res.Malformed)
	}
	first := got[0]
	if first.TS != "2025-12-03T10:00:00Z" {
		t.Errorf("ts %s, want 2025-12-03T10:00:00Z", first.TS)
	}
	if first.Attrs["provider"] != "sendgrid" || first.Attrs["event"] != "processed" ||
		first.Attrs["message_id"] != "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0" {
		t.Errorf("attrs %v", first.Attrs)
	}
	if rs, _ := first.Attrs["recipients"].([]any); len(rs) != 1 || rs[0] != hashAddress("Customer@Example.com ") {
		t.Errorf("recipients %v, want the hash of the address", first.Attrs["recipients"])
	}
	if got[2].Attrs["bounce_type"] != "blocked" {
		t.Errorf("bounce attrs %v", got[2].Attrs)
	}
	noAddress(t, res, "customer@example.com", "other@example.com")
}

func TestSendGridRecordsOnlySendsByDefault(t *testing.T) {
	k := newSendGridKey(t)
	r := start(t, Config{Provider: SendGrid, VerificationKey: config.Secret{Value: k.public}}, Options{})
	res := receive(t, r, k.sign(t, "1764756010", sendgridBatch), sendgridBatch)
	got := effects(t, res)
	if len(got) != 1 || got[0].Effect != "email.sent" || got[0].JobID != "" {
		t.Fatalf("got %+v, want only the processed event, with no job (job_arg not set)", got)
	}
	if res.Ignored != 9 {
		t.Errorf("ignored %d, want 9", res.Ignored)
	}
}

func TestSendGridRecipientsPlainAndOmitted(t *testing.T) {
	k := newSendGridKey(t)
	body := `[{"email":"a@example.com","timestamp":1764756000,"event":"processed","sg_event_id":"e1","sg_message_id":"m1","idempotency_key":"k"}]`
	for mode, want := range map[string]any{RecipientsPlain: []any{"a@example.com"}, RecipientsOmit: nil} {
		r := start(t, Config{Provider: SendGrid, Recipients: mode, VerificationKey: config.Secret{Value: k.public}}, Options{})
		got := effects(t, receive(t, r, k.sign(t, "1", body), body))
		rs, ok := got[0].Attrs["recipients"]
		if want == nil && ok || want != nil && (!ok || rs.([]any)[0] != "a@example.com") {
			t.Errorf("recipients %s: attrs %v", mode, got[0].Attrs)
		}
	}
}

func TestSendGridPerRecipientKeys(t *testing.T) {
	k := newSendGridKey(t)
	body := `[{"email":"a@example.com","timestamp":1764756000,"event":"processed","sg_event_id":"e1","sg_message_id":"m1.filter1","idempotency_key":"k"},
	{"email":"b@example.com","timestamp":1764756000,"event":"processed","sg_event_id":"e2","sg_message_id":"m1.filter2","idempotency_key":"k"}]`
	r := start(t, Config{Provider: SendGrid, PerRecipient: true, VerificationKey: config.Secret{Value: k.public}}, Options{})
	got := effects(t, receive(t, r, k.sign(t, "1", body), body))
	if len(got) != 2 || got[0].EffectKey != "k/"+hashAddress("a@example.com") || got[1].EffectKey != "k/"+hashAddress("b@example.com") {
		t.Fatalf("got %+v", got)
	}
}

func TestSendGridMalformedEventsAreCountedAndTheRestRecorded(t *testing.T) {
	k := newSendGridKey(t)
	body := `[{"email":"a@example.com","timestamp":1764756000,"event":"processed","sg_message_id":"m1","idempotency_key":"k1"},
	 "not an object",
	 {"email":"a@example.com","event":"processed","sg_event_id":"e3","sg_message_id":"m3","idempotency_key":"k3"},
	 {"email":"a@example.com","timestamp":1764756000,"event":"processed","sg_event_id":"e4","idempotency_key":{"nested":1}},
	 {"email":"a@example.com","timestamp":1764756000,"event":"processed","sg_event_id":"e5","sg_message_id":"m5","idempotency_key":42}]`
	r := start(t, Config{Provider: SendGrid, VerificationKey: config.Secret{Value: k.public}}, Options{})
	res := receive(t, r, k.sign(t, "1", body), body)
	got := effects(t, res)
	if len(got) != 1 || got[0].EffectKey != "42" {
		t.Fatalf("got %+v, want the one good event, keyed by the number 42", got)
	}
	if len(res.Malformed) != 4 {
		t.Fatalf("malformed %q, want 4", res.Malformed)
	}
	for i, want := range []string{"event 0: no sg_event_id", "event 1: not an event object", `"processed": no timestamp`, "neither"} {
		if !strings.Contains(res.Malformed[i], want) {
			t.Errorf("malformed[%d] = %q, want it to say %q", i, res.Malformed[i], want)
		}
	}
	notArray := `{"event":"processed"}`
	res = receive(t, r, k.sign(t, "1", notArray), notArray)
	if len(res.Events) != 0 || len(res.Malformed) != 1 || !strings.Contains(res.Malformed[0], "not a JSON array") {
		t.Errorf("a verified body that is not an array: %+v", res)
	}
	if s := r.Stats(); s.Malformed != 5 || s.Events != 1 || s.Requests != 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestSendGridRefusesWhatItCannotVerify(t *testing.T) {
	k := newSendGridKey(t)
	other := newSendGridKey(t)
	r := start(t, Config{Provider: SendGrid, VerificationKey: config.Secret{Value: k.public}}, Options{})
	body := `[{"email":"a@example.com","timestamp":1764756000,"event":"processed","sg_event_id":"e1","sg_message_id":"m1","idempotency_key":"k"}]`
	good := k.sign(t, "1764756000", body)

	refused(t, r, http.Header{}, body, http.StatusUnauthorized, "auth")
	refused(t, r, good, strings.Replace(body, `"k"`, `"k2"`, 1), http.StatusForbidden, "signature")
	tsMoved := good.Clone()
	tsMoved.Set(SendGridTimestampHeader, "1764756001")
	refused(t, r, tsMoved, body, http.StatusForbidden, "signature")
	refused(t, r, other.sign(t, "1764756000", body), body, http.StatusForbidden, "signature")
	notB64 := good.Clone()
	notB64.Set(SendGridSignatureHeader, "%%%")
	refused(t, r, notB64, body, http.StatusForbidden, "signature")
	if s := r.Stats(); s.Events != 0 || s.Requests != 5 {
		t.Errorf("stats %+v", s)
	}
	// The same signed batch again (SendGrid retrying it) is accepted, with
	// the same ids.
	a := effects(t, receive(t, r, good, body))
	b := effects(t, receive(t, r, good, body))
	if len(a) != 1 || len(b) != 1 || a[0].ID != b[0].ID {
		t.Errorf("a retried batch: %+v then %+v, want one event with the same id", a, b)
	}
}

func TestSendGridKeyForms(t *testing.T) {
	k := newSendGridKey(t)
	der, _ := base64.StdEncoding.DecodeString(k.public)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	for _, s := range []string{k.public, pemKey, "  " + k.public + "\n"} {
		if _, err := parseECDSAKey(s); err != nil {
			t.Errorf("parseECDSAKey(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "not base64!", base64.StdEncoding.EncodeToString([]byte("junk")), "-----BEGIN PUBLIC KEY-----\nxx\n"} {
		if _, err := parseECDSAKey(s); err == nil {
			t.Errorf("parseECDSAKey(%q) accepted it", s)
		}
	}
}

// TestSendGridPublishedVector checks the verifier against the key,
// timestamp, body and signature SendGrid's own Go library tests its
// verifier with (sendgrid-go, helpers/eventwebhook): a signature made by
// SendGrid's reference, not by this package's tests.
func TestSendGridPublishedVector(t *testing.T) {
	const (
		publicKey = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA=="
		ts        = "1588788367"
		sig       = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0="
		body      = `{"category":"example_payload","event":"test_event","message_id":"message_id"}`
	)
	key, err := parseECDSAKey(publicKey)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(SendGridSignatureHeader, sig)
	h.Set(SendGridTimestampHeader, ts)
	if err := verifySendGrid(key, h, []byte(body)); err != nil {
		t.Errorf("SendGrid's own signature refused: %v", err)
	}
	if err := verifySendGrid(key, h, []byte(body+" ")); RejectStatus(err) != http.StatusForbidden {
		t.Errorf("a changed body: %v", err)
	}
	h.Set(SendGridTimestampHeader, "1588788368")
	if err := verifySendGrid(key, h, []byte(body)); RejectStatus(err) != http.StatusForbidden {
		t.Errorf("a changed timestamp: %v", err)
	}
}
