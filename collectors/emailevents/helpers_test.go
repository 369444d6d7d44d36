package emailevents

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/twicetype"
)

// start builds and starts a receiver of cfg.
func start(t *testing.T, cfg Config, opts Options) *Receiver {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	r, err := NewReceiver("mail", cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

// receive posts body with header to r and wants it accepted.
func receive(t *testing.T, r *Receiver, h http.Header, body string) *Result {
	t.Helper()
	res, err := r.Receive(context.Background(), &Request{Header: h, Body: []byte(body)})
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	return res
}

// refused posts body with header to r and wants it refused with status.
func refused(t *testing.T, r *Receiver, h http.Header, body string, status int, kind string) {
	t.Helper()
	before := r.Stats()
	res, err := r.Receive(context.Background(), &Request{Header: h, Body: []byte(body)})
	if err == nil {
		t.Fatalf("Receive accepted the request: %d events", len(res.Events))
	}
	if res != nil {
		t.Errorf("a refused request returned a result: %+v", res)
	}
	if got := RejectStatus(err); got != status {
		t.Fatalf("status %d (%v), want %d", got, err, status)
	}
	after := r.Stats()
	if after.Rejected[kind] != before.Rejected[kind]+1 {
		t.Errorf("rejections counted %v, want one more %q than %v", after.Rejected, kind, before.Rejected)
	}
	if after.Events != before.Events {
		t.Errorf("a refused request counted events")
	}
}

// effect is what a test checks of an event.
type effect struct {
	ID, Effect, EffectKey, JobID, TS string
	Attrs                            map[string]any
}

// effects flattens the events of res.
func effects(t *testing.T, res *Result) []effect {
	t.Helper()
	var out []effect
	for _, e := range res.Events {
		if e.Kind != twicetype.Effect {
			t.Fatalf("event %s is a %s, want an effect", e.ID, e.Kind)
		}
		f := effect{ID: e.ID, Effect: e.Effect, EffectKey: e.EffectKey, JobID: e.JobID,
			TS: time.Unix(0, e.Time).UTC().Format(time.RFC3339Nano)}
		if err := json.Unmarshal(e.Attrs, &f.Attrs); err != nil {
			t.Fatalf("attrs of %s: %v", e.ID, err)
		}
		out = append(out, f)
	}
	return out
}

// noAddress fails when any event of res shows an address in clear.
func noAddress(t *testing.T, res *Result, addrs ...string) {
	t.Helper()
	for _, e := range res.Events {
		all := e.ID + e.EffectKey + e.JobID + string(e.Attrs)
		for _, a := range addrs {
			if strings.Contains(all, a) {
				t.Errorf("event %s shows %s: %s", e.ID, a, all)
			}
		}
	}
}

// fixedClock returns a clock standing at t, moved by the returned func.
func fixedClock(t time.Time) (func() time.Time, func(time.Duration)) {
	now := t
	return func() time.Time { return now }, func(d time.Duration) { now = now.Add(d) }
}
