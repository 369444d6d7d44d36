package emailevents

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/twicehq/twice/collectors/push"
	"github.com/twicehq/twice/twicetype"
)

// The normalized event types: what a provider's event means for the
// message, whatever the provider calls it. Each becomes the effect
// "email." + type.
const (
	// Sent is the provider's own record that it took the message to send
	// (SendGrid processed, Mailgun accepted, SES Send).
	Sent = "sent"
	// Delivered is the receiving server's acceptance of the message.
	Delivered = "delivered"
	// Bounced is a permanent (or provider-reported) delivery failure.
	Bounced = "bounced"
	// Dropped is a message the provider refused to send (suppressed,
	// rejected, failed to render).
	Dropped = "dropped"
	// Complained is a spam complaint by the recipient.
	Complained = "complained"
	// Unsubscribed is the recipient unsubscribing through the provider.
	Unsubscribed = "unsubscribed"
)

// Types lists the normalized types, in the order docs list them.
var Types = []string{Sent, Delivered, Bounced, Dropped, Complained, Unsubscribed}

// observation is one provider event, read from its payload, before it
// becomes a spec event.
type observation struct {
	// id is the event's identity, prefixed with the provider's name: the
	// same for every delivery of the same provider event.
	id string
	// ts is when the provider says the event happened.
	ts time.Time
	// typ is the normalized type, "" for an event twice does not record
	// (opens, clicks, deferrals).
	typ string
	// raw is the provider's own name of the event.
	raw string
	// messageID is the provider's id of the message.
	messageID string
	// recipients are the addresses the event is about, as written.
	recipients []string
	// bounce is the provider's classification of a bounce or drop.
	bounce string
	// arg looks a custom argument (metadata, tag, user variable) up by
	// name; nil when the event carries none.
	arg func(name string) (string, bool)
}

// mapper turns observations into spec events of one source.
type mapper struct {
	source   string
	provider string
	primary  string
	cfg      *Config
	record   map[string]bool
}

// newMapper returns the mapper of a source; cfg is valid.
func newMapper(source string, cfg *Config) *mapper {
	rec := map[string]bool{}
	for _, t := range cfg.events() {
		rec[t] = true
	}
	return &mapper{source: source, provider: cfg.Provider, primary: primaryType(cfg.Provider), cfg: cfg, record: rec}
}

// outcome is what one observation became: an event, nothing (ignored), or
// a malformed reason.
type outcome struct {
	event     *twicetype.Event
	ignored   bool
	noKey     bool
	malformed string
}

// event maps one observation.
func (mp *mapper) event(o *observation) outcome {
	if o.typ == "" || !mp.record[o.typ] {
		return outcome{ignored: true}
	}
	if o.ts.IsZero() {
		return outcome{malformed: fmt.Sprintf("%s event %q: no timestamp", mp.provider, o.raw)}
	}
	var out outcome
	key, ok := "", false
	if o.arg != nil {
		key, ok = o.arg(mp.cfg.keyArg())
	}
	if !ok || key == "" {
		if o.messageID == "" {
			return outcome{malformed: fmt.Sprintf("%s event %q: neither %q nor a message id", mp.provider, o.raw, mp.cfg.keyArg())}
		}
		key = mp.provider + ":" + o.messageID
		out.noKey = true
	}
	if mp.cfg.PerRecipient && len(o.recipients) > 0 {
		hs := make([]string, len(o.recipients))
		for i, r := range o.recipients {
			hs[i] = hashAddress(r)
		}
		key += "/" + strings.Join(hs, ",")
	}
	if o.typ != mp.primary {
		key += "#" + o.typ
	}
	e := push.Effect{
		ID:        o.id,
		Time:      o.ts,
		Effect:    "email." + o.typ,
		EffectKey: key,
		Attrs:     map[string]any{"provider": mp.provider, "event": o.raw},
	}
	if mp.cfg.JobArg != "" && o.arg != nil {
		if j, ok := o.arg(mp.cfg.JobArg); ok && j != "" {
			e.JobID = j
		}
	}
	if o.messageID != "" {
		e.Attrs["message_id"] = o.messageID
	}
	if o.bounce != "" {
		e.Attrs["bounce_type"] = o.bounce
	}
	if rs := mp.recipients(o.recipients); rs != nil {
		e.Attrs["recipients"] = rs
	}
	ev, err := e.Event(mp.source, 0)
	if err != nil {
		return outcome{malformed: fmt.Sprintf("%s event %q: %v", mp.provider, o.raw, err)}
	}
	out.event = &ev
	return out
}

// recipients returns the recipients as attrs carry them: hashed (the
// default), as written, or none.
func (mp *mapper) recipients(rs []string) []string {
	if len(rs) == 0 || mp.cfg.Recipients == RecipientsOmit {
		return nil
	}
	out := make([]string, len(rs))
	for i, r := range rs {
		if mp.cfg.Recipients == RecipientsPlain {
			out[i] = r
		} else {
			out[i] = hashAddress(r)
		}
	}
	return out
}

// hashAddress is the redacted form of an email address: "sha256:" and
// the first 16 hex digits of the SHA-256 of the address, trimmed and
// lower-cased, so one address always gives the same value.
func hashAddress(addr string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(addr))))
	return "sha256:" + hex.EncodeToString(sum[:8])
}

// primaryType is the type whose effect_key is the key as written: the
// event the provider sends once per message it sends.
func primaryType(provider string) string {
	if provider == Postmark {
		return Delivered
	}
	return Sent
}

// argString renders a custom argument's JSON value as a key: strings as
// they are, numbers and booleans as written; objects, arrays and null
// are not keys.
func argString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	case '{', '[', 'n':
		return "", false
	}
	return string(raw), true
}

// unixTime reads a JSON number of Unix seconds, possibly with a fraction.
func unixTime(n json.Number) (time.Time, bool) {
	f, err := n.Float64()
	if err != nil || f <= 0 || f >= 1e11 { // 1e11 s is the year 5138
		return time.Time{}, false
	}
	sec := int64(f)
	nsec := int64((f - float64(sec)) * 1e9)
	// Microseconds are what providers write; round away float noise.
	nsec = (nsec + 500) / 1000 * 1000
	return time.Unix(sec, nsec).UTC(), true
}

// rfc3339Time reads a provider's RFC 3339 timestamp (fractions of any
// length, as .NET and AWS write them).
func rfc3339Time(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}
