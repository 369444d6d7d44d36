package emailevents

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzProviderPayloads feeds any body to every provider's parser (as if
// its signature had been verified) and the mapping: nothing panics, and
// each provider event becomes an event with an id and an effect_key, a
// malformed reason, or nothing (ignored).
func FuzzProviderPayloads(f *testing.F) {
	for _, s := range []string{sendgridBatch, postmarkDelivery, postmarkBounce, postmarkSubscriptionChange, sesSend, sesBounce,
		sesDeliveryNotification, `{"event":"failed","severity":"permanent","reason":"suppress-x","id":"i","timestamp":1.5,"user-variables":{"idempotency_key":7}}`,
		`[{"event":"processed","sg_event_id":"x","timestamp":1e30}]`, `[]`, `{}`, `null`} {
		for p := range 4 {
			f.Add(uint8(p), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, p uint8, body []byte) {
		provider := []string{SendGrid, Postmark, SES, Mailgun}[p%4]
		cfg := &Config{Provider: provider, Listen: "127.0.0.1:0", JobArg: "job_id", PerRecipient: p&4 != 0,
			Events: []string{Delivered, Bounced, Dropped, Complained, Unsubscribed}}
		if provider != Postmark {
			cfg.Events = append(cfg.Events, Sent)
		}
		var obs []observation
		var mal []string
		switch provider {
		case SendGrid:
			obs, mal = parseSendGrid(body)
		case Postmark:
			o, m := parsePostmark(body)
			if m == "" {
				obs = append(obs, o)
			} else {
				mal = append(mal, m)
			}
		case SES:
			o, m := parseSESEvent(body)
			if m == "" {
				o.id = "ses:fuzz"
				obs = append(obs, o)
			} else {
				mal = append(mal, m)
			}
		case Mailgun:
			o, m := parseMailgunEvent(json.RawMessage(body))
			if m == "" {
				obs = append(obs, o)
			} else {
				mal = append(mal, m)
			}
		}
		for _, m := range mal {
			if m == "" {
				t.Fatal("an empty malformed reason")
			}
		}
		mp := newMapper("fuzz", cfg)
		for i := range obs {
			out := mp.event(&obs[i])
			switch {
			case out.malformed != "":
			case out.ignored:
			case out.event == nil:
				t.Fatalf("observation %+v became nothing", obs[i])
			default:
				ev := out.event
				if !strings.HasPrefix(ev.ID, provider+":") || ev.EffectKey == "" || !strings.HasPrefix(ev.Effect, "email.") {
					t.Fatalf("event %+v", ev)
				}
			}
		}
	})
}
