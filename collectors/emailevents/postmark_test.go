package emailevents

import (
	"github.com/twicehq/twice/config"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Postmark webhook records as Postmark documents them
// (postmarkapp.com/developer/webhooks), with Metadata added by the sender.
const (
	postmarkDelivery = `{
  "RecordType": "Delivery",
  "ServerID": 23,
  "MessageStream": "outbound",
  "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
  "Recipient": "john@example.com",
  "Tag": "welcome-email",
  "DeliveredAt": "2019-11-05T16:33:54.9070259Z",
  "Details": "Test delivery webhook details",
  "Metadata": {"idempotency_key": "receipt/payment:123", "job_id": "j-1"}
}`
	postmarkBounce = `{
  "RecordType": "Bounce",
  "MessageStream": "outbound",
  "ID": 4323372036854775807,
  "Type": "HardBounce",
  "TypeCode": 1,
  "Name": "Hard bounce",
  "Tag": "Test",
  "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
  "Metadata": {"idempotency_key": "receipt/payment:123"},
  "ServerID": 23,
  "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
  "Details": "Test bounce details",
  "Email": "john@example.com",
  "From": "sender@example.com",
  "BouncedAt": "2019-11-05T16:33:54.9070259Z",
  "DumpAvailable": true,
  "Inactive": true,
  "CanActivate": true,
  "Subject": "Test subject",
  "Content": "<Full dump of bounce>"
}`
	postmarkOpen = `{
  "RecordType": "Open",
  "MessageStream": "outbound",
  "Metadata": {"idempotency_key": "receipt/payment:123"},
  "FirstOpen": true,
  "Recipient": "john@example.com",
  "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
  "ReceivedAt": "2019-11-05T16:33:54.9070259Z",
  "Platform": "WebMail",
  "ReadSeconds": 5,
  "Tag": "welcome-email",
  "UserAgent": "Mozilla/5.0",
  "OS": {"Name": "OS X 10.7 Lion", "Family": "OS X 10", "Company": "Apple Computer, Inc."},
  "Client": {"Name": "Chrome 35.0.1916.153", "Family": "Chrome", "Company": "Google"},
  "Geo": {"IP": "188.2.95.4", "City": "Novi Sad", "Country": "Serbia"}
}`
	postmarkSubscriptionChange = `{
  "RecordType": "SubscriptionChange",
  "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
  "ServerID": 23,
  "MessageStream": "outbound",
  "ChangedAt": "2020-02-01T10:53:34.416071Z",
  "Recipient": "bounced-address@wildbit.com",
  "Origin": "Recipient",
  "SuppressSending": true,
  "SuppressionReason": "HardBounce",
  "Tag": "my-tag",
  "Metadata": {"example": "value"}
}`
)

func postmarkAuth(user, pw string) http.Header {
	r, _ := http.NewRequest(http.MethodPost, "/", nil)
	r.SetBasicAuth(user, pw)
	return r.Header
}

func TestPostmarkMapsTheDocumentedRecords(t *testing.T) {
	r := start(t, Config{Provider: Postmark, JobArg: "job_id", Username: "twice", Password: config.Secret{Value: "s3cret"},
		Events: []string{Delivered, Bounced, Unsubscribed}}, Options{})
	auth := postmarkAuth("twice", "s3cret")

	d := effects(t, receive(t, r, auth, postmarkDelivery))
	if len(d) != 1 {
		t.Fatalf("delivery: %+v", d)
	}
	if d[0].ID != "postmark:Delivery:883953f4-6105-42a2-a16a-77a8eac79483:2019-11-05T16:33:54.9070259Z" ||
		d[0].Effect != "email.delivered" || d[0].EffectKey != "receipt/payment:123" || d[0].JobID != "j-1" ||
		d[0].TS != "2019-11-05T16:33:54.9070259Z" {
		t.Errorf("delivery = %+v", d[0])
	}
	res := receive(t, r, auth, postmarkBounce)
	b := effects(t, res)
	if len(b) != 1 || b[0].Effect != "email.bounced" || b[0].EffectKey != "receipt/payment:123#bounced" ||
		b[0].Attrs["bounce_type"] != "HardBounce" || b[0].ID != "postmark:Bounce:883953f4-6105-42a2-a16a-77a8eac79483:2019-11-05T16:33:54.9070259Z" {
		t.Errorf("bounce = %+v", b)
	}
	noAddress(t, res, "john@example.com")
	if res := receive(t, r, auth, postmarkOpen); len(res.Events) != 0 || res.Ignored != 1 {
		t.Errorf("open: %+v, want ignored", res)
	}
	u := effects(t, receive(t, r, auth, postmarkSubscriptionChange))
	if len(u) != 1 || u[0].Effect != "email.unsubscribed" || u[0].EffectKey != "postmark:883953f4-6105-42a2-a16a-77a8eac79483#unsubscribed" {
		t.Errorf("subscription change = %+v", u)
	}
	resub := strings.Replace(postmarkSubscriptionChange, `"SuppressSending": true`, `"SuppressSending": false`, 1)
	if res := receive(t, r, auth, resub); len(res.Events) != 0 || res.Ignored != 1 {
		t.Errorf("a resubscription: %+v, want ignored", res)
	}
	// A suppression made by hand names no message: nothing to record.
	manual := strings.Replace(strings.Replace(postmarkSubscriptionChange, `"MessageID": "883953f4-6105-42a2-a16a-77a8eac79483"`, `"MessageID": null`, 1), `"Origin": "Recipient"`, `"Origin": "Customer"`, 1)
	if res := receive(t, r, auth, manual); len(res.Events) != 0 || res.Ignored != 1 || len(res.Malformed) != 0 {
		t.Errorf("a manual suppression: %+v, want ignored", res)
	}
	// The record formats before RecordType: known by their fields.
	for body, want := range map[string]string{
		strings.Replace(postmarkDelivery, `"RecordType": "Delivery",`, "", 1): "email.delivered",
		strings.Replace(postmarkBounce, `"RecordType": "Bounce",`, "", 1):     "email.bounced",
	} {
		if got := effects(t, receive(t, r, auth, body)); len(got) != 1 || got[0].Effect != want {
			t.Errorf("a record without RecordType: %+v, want %s", got, want)
		}
	}
	// Postmark retrying the same record gives the same id.
	again := effects(t, receive(t, r, auth, postmarkDelivery))
	if again[0].ID != d[0].ID {
		t.Errorf("a retried record has id %s, first %s", again[0].ID, d[0].ID)
	}
}

func TestPostmarkMalformedRecords(t *testing.T) {
	r := start(t, Config{Provider: Postmark, Username: "twice", Password: config.Secret{Value: "s3cret"}}, Options{})
	auth := postmarkAuth("twice", "s3cret")
	for body, want := range map[string]string{
		`[1,2]`:                     "not a webhook record",
		`{"MessageID":"m"}`:         "no RecordType",
		`{"RecordType":"Delivery"}`: "without MessageID",
		`{"RecordType":"Delivery","MessageID":"m","DeliveredAt":"yesterday"}`: "no timestamp",
	} {
		res := receive(t, r, auth, body)
		if len(res.Events) != 0 || len(res.Malformed) != 1 || !strings.Contains(res.Malformed[0], want) {
			t.Errorf("%s: %+v, want malformed %q", body, res, want)
		}
	}
}

func TestPostmarkRefusesWrongCredentials(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := start(t, Config{Provider: Postmark, Username: "twice", Password: config.Secret{File: pwFile}}, Options{})
	refused(t, r, http.Header{}, postmarkDelivery, http.StatusUnauthorized, "auth")
	refused(t, r, postmarkAuth("twice", "wrong"), postmarkDelivery, http.StatusUnauthorized, "auth")
	refused(t, r, postmarkAuth("other", "s3cret"), postmarkDelivery, http.StatusUnauthorized, "auth")
	bearer := http.Header{}
	bearer.Set("Authorization", "Bearer s3cret")
	refused(t, r, bearer, postmarkDelivery, http.StatusUnauthorized, "auth")
	if res := receive(t, r, postmarkAuth("twice", "s3cret"), postmarkDelivery); len(res.Events) != 1 {
		t.Errorf("the password from the file: %+v", res)
	}
}

func TestSecretsFromTheEnvironment(t *testing.T) {
	t.Setenv("TWICE_TEST_POSTMARK_PW", "from-env")
	r := start(t, Config{Provider: Postmark, Username: "twice", Password: config.Secret{Env: "TWICE_TEST_POSTMARK_PW"}}, Options{})
	if res := receive(t, r, postmarkAuth("twice", "from-env"), postmarkDelivery); len(res.Events) != 1 {
		t.Errorf("the password from the environment: %+v", res)
	}
	r2, err := NewReceiver("mail", Config{Provider: Postmark, Listen: "x:1", Username: "u", Password: config.Secret{Env: "TWICE_TEST_UNSET_VARIABLE"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = r2.Start(t.Context())
	if err == nil || !strings.Contains(err.Error(), "TWICE_TEST_UNSET_VARIABLE is empty or not set") {
		t.Errorf("Start with an unset variable: %v", err)
	}
	r3, _ := NewReceiver("mail", Config{Provider: Postmark, Listen: "x:1", Username: "u", Password: config.Secret{File: "/nonexistent/pw"}}, Options{})
	if err := r3.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "/nonexistent/pw") {
		t.Errorf("Start with a missing file: %v", err)
	}
}
