package emailevents

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/twicehq/twice/config"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

const mailgunKey = "key-7e55d003b6ae2b5a7fb2b2e4bb7e1f0c"

// mailgunEventData is event-data shaped like Mailgun's documented
// delivered webhook (documentation.mailgun.com, Webhooks), with the
// sender's user variables.
const mailgunEventData = `{
    "event": "%s",
    "timestamp": 1529006854.329574,
    "id": "%s",
    "log-level": "info",
    "severity": "%s",
    "reason": "%s",
    "envelope": {"transport": "smtp", "sender": "bob@sandbox.mailgun.org", "sending-ip": "209.61.154.250", "targets": "alice@example.com"},
    "flags": {"is-routed": false, "is-authenticated": true, "is-system-test": false, "is-test-mode": false},
    "delivery-status": {"tls": true, "mx-host": "smtp-in.example.com", "code": 250, "description": "", "session-seconds": 0.4331989288330078, "utf8": true, "attempt-no": 1, "message": "OK", "certificate-verified": true},
    "message": {"headers": {"to": "Alice <alice@example.com>", "message-id": "20130503182626.18666.16540@sandbox.mailgun.org", "from": "Bob <bob@sandbox.mailgun.org>", "subject": "Test delivered webhook"}, "attachments": [], "size": 111},
    "recipient": "alice@example.com",
    "recipient-domain": "example.com",
    "storage": {"url": "https://se.api.mailgun.net/v3/domains/sandbox.mailgun.org/messages/message_key", "key": "message_key"},
    "campaigns": [],
    "tags": ["my_tag_1", "my_tag_2"],
    "user-variables": {"idempotency_key": "receipt/payment:123", "job_id": "j-1"}
}`

// mailgunBody builds a webhook body signed as Mailgun signs it: the hex
// HMAC-SHA256 of timestamp + token under the signing key.
func mailgunBody(key string, ts int64, token, event, id, severity, reason string) string {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(strconv.FormatInt(ts, 10) + token))
	sig := hex.EncodeToString(mac.Sum(nil))
	data := fmt.Sprintf(mailgunEventData, event, id, severity, reason)
	return fmt.Sprintf(`{"signature":{"timestamp":"%d","token":"%s","signature":"%s"},"event-data":%s}`, ts, token, sig, data)
}

var mailgunNow = time.Unix(1529006860, 0)

func TestMailgunMapsTheDocumentedEvents(t *testing.T) {
	now, _ := fixedClock(mailgunNow)
	r := start(t, Config{Provider: Mailgun, JobArg: "job_id", SigningKey: config.Secret{Value: mailgunKey},
		Events: []string{Sent, Delivered, Bounced, Dropped}}, Options{Now: now})
	ts := mailgunNow.Unix() - 5
	cases := []struct {
		event, severity, reason string
		effect, key             string
	}{
		{"accepted", "", "", "email.sent", "receipt/payment:123"},
		{"delivered", "", "", "email.delivered", "receipt/payment:123#delivered"},
		{"failed", "permanent", "bounce", "email.bounced", "receipt/payment:123#bounced"},
		{"failed", "permanent", "suppress-bounce", "email.dropped", "receipt/payment:123#dropped"},
		{"failed", "temporary", "generic", "", ""},
		{"opened", "", "", "", ""},
		{"complained", "", "", "", ""},
	}
	for i, c := range cases {
		id := fmt.Sprintf("DACSsAdVSeGpLid7TN03W%d", i)
		res := receive(t, r, nil, mailgunBody(mailgunKey, ts, fmt.Sprintf("token-%02d-a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3d", i), c.event, id, c.severity, c.reason))
		got := effects(t, res)
		if c.effect == "" {
			if len(got) != 0 || res.Ignored != 1 {
				t.Errorf("%s %s: %+v, want ignored", c.event, c.severity, got)
			}
			continue
		}
		if len(got) != 1 || got[0].ID != "mailgun:"+id || got[0].Effect != c.effect || got[0].EffectKey != c.key ||
			got[0].JobID != "j-1" || got[0].TS != "2018-06-14T20:07:34.329574Z" ||
			got[0].Attrs["message_id"] != "20130503182626.18666.16540@sandbox.mailgun.org" {
			t.Errorf("%s %s: %+v", c.event, c.severity, got)
		}
		noAddress(t, res, "alice@example.com")
	}
}

func TestMailgunRefusesBadStaleAndReplayedSignatures(t *testing.T) {
	now, advance := fixedClock(mailgunNow)
	r := start(t, Config{Provider: Mailgun, SigningKey: config.Secret{Value: mailgunKey}, MaxAge: 10 * time.Minute}, Options{Now: now})
	ts := mailgunNow.Unix()
	tok := func(i int) string { return fmt.Sprintf("%050d", i) }

	refused(t, r, nil, `{"event-data":{}}`, http.StatusUnauthorized, "auth")
	refused(t, r, nil, `not json`, http.StatusBadRequest, "body")
	refused(t, r, nil, mailgunBody("another-key", ts, tok(1), "accepted", "id1", "", ""), http.StatusForbidden, "signature")
	// A signature is for its timestamp and token only.
	good := mailgunBody(mailgunKey, ts, tok(2), "accepted", "id2", "", "")
	refused(t, r, nil, strings.Replace(good, tok(2), tok(3), 1), http.StatusForbidden, "signature")
	refused(t, r, nil, strings.Replace(good, strconv.FormatInt(ts, 10), strconv.FormatInt(ts+1, 10), 1), http.StatusForbidden, "signature")
	refused(t, r, nil, mailgunBody(mailgunKey, ts-601, tok(4), "accepted", "id4", "", ""), http.StatusForbidden, "stale")
	refused(t, r, nil, mailgunBody(mailgunKey, ts+120, tok(5), "accepted", "id5", "", ""), http.StatusForbidden, "stale")

	if res := receive(t, r, nil, good); len(res.Events) != 1 {
		t.Fatalf("the good request: %+v", res)
	}
	// The same token again — the same request replayed, or another body
	// under a captured signature — is refused.
	refused(t, r, nil, good, http.StatusForbidden, "replay")
	refused(t, r, nil, mailgunBody(mailgunKey, ts, tok(2), "accepted", "forged", "", ""), http.StatusForbidden, "replay")

	// A request that could not be recorded gives its token back, so that
	// Mailgun's retry is taken.
	retry := mailgunBody(mailgunKey, ts, tok(6), "accepted", "id6", "", "")
	res := receive(t, r, nil, retry)
	res.Release()
	res.Release() // a second call does nothing
	if res := receive(t, r, nil, retry); len(res.Events) != 1 {
		t.Fatalf("the retry of a released request: %+v", res)
	}
	refused(t, r, nil, retry, http.StatusForbidden, "replay")

	// Tokens are forgotten once their signatures are stale: memory stays
	// bounded, and the request is refused as stale instead.
	advance(11 * time.Minute)
	refused(t, r, nil, good, http.StatusForbidden, "stale")
	if res := receive(t, r, nil, mailgunBody(mailgunKey, ts+660, tok(7), "accepted", "id7", "", "")); len(res.Events) != 1 {
		t.Fatalf("a fresh request: %+v", res)
	}
	m := r.p.(*mailgun)
	m.mu.Lock()
	n := len(m.tokens)
	m.mu.Unlock()
	if n != 1 {
		t.Errorf("%d tokens remembered after max_age, want 1 (the fresh one)", n)
	}
}

func TestMailgunMalformedEventData(t *testing.T) {
	now, _ := fixedClock(mailgunNow)
	r := start(t, Config{Provider: Mailgun, SigningKey: config.Secret{Value: mailgunKey}}, Options{Now: now})
	ts := mailgunNow.Unix()
	mac := hmac.New(sha256.New, []byte(mailgunKey))
	mac.Write([]byte(strconv.FormatInt(ts, 10) + "tok"))
	sig := hex.EncodeToString(mac.Sum(nil))
	body := fmt.Sprintf(`{"signature":{"timestamp":%d,"token":"tok","signature":"%s"},"event-data":{"event":"accepted","timestamp":1529006854}}`, ts, sig)
	res := receive(t, r, nil, body)
	if len(res.Events) != 0 || len(res.Malformed) != 1 || !strings.Contains(res.Malformed[0], "without id") {
		t.Errorf("%+v", res)
	}
}
