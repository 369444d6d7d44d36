package sidekiq

import (
	"strings"
	"testing"

	"github.com/twicehq/twice/twicetype"
)

func entry(n, e string, kv ...string) map[string]any {
	m := map[string]any{"v": "1", "n": n, "e": e, "ts": "1796304809524123",
		"job": `{"jid":"j1","class":"SendReceipt","queue":"mailers","args":[{"payment":"p-1"}]}`}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func newTestReader(t *testing.T, cfg Config) *StreamReader {
	t.Helper()
	cfg.Redis, cfg.Mode = "redis://localhost:1", ModeMiddleware
	r, err := NewStreamReader("jobs", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestStreamEntries(t *testing.T) {
	r := newTestReader(t, Config{Key: "args.0.payment"})
	recs := []StreamRecord{
		r.take("1796304809528-0", entry("1", "enqueued")),
		r.take("1796304809533-1", entry("2", "started", "attempt", "1")),
		r.take("1796304809540-1", entry("3", "failed", "attempt", "1", "retry", "1", "error", "RuntimeError: boom")),
		r.take("1796304818853-0", entry("4", "dead", "attempt", "2")),
		r.take("1796304818853-1", entry("5", "succeeded", "attempt", "3")),
		r.take("1796304818853-2", entry("6", "discarded", "attempt", "3")),
	}
	wantKinds := []twicetype.Kind{twicetype.JobEnqueued, twicetype.JobStarted, twicetype.JobFailed, twicetype.JobDead, twicetype.JobSucceeded, twicetype.JobDiscarded}
	for i, rec := range recs {
		if rec.Event == nil {
			t.Fatalf("entry %d: no event (%+v)", i, rec.Malformed)
		}
		ev := rec.Event
		if ev.Kind != wantKinds[i] || ev.JobID != "j1" || ev.JobType != "SendReceipt" || ev.Queue != "mailers" || ev.Key != "p-1" {
			t.Errorf("entry %d: %+v", i, ev)
		}
		if ev.Time != 1796304809524123000 {
			t.Errorf("entry %d: time %d, want the entry's ts", i, ev.Time)
		}
	}
	if e := recs[2].Event; !e.HasRetry || !e.Retry || e.Attempt != 1 || e.Error != "RuntimeError: boom" {
		t.Errorf("failed: %+v", e)
	}
	if recs[0].Event.HasAttempt {
		t.Error("enqueued carries an attempt")
	}
	if recs[0].Event.ID != "sidekiq:j1:1796304809528-0" {
		t.Errorf("id %q: want the job and the entry", recs[0].Event.ID)
	}
	if p := recs[5].Pos; p.ID != "1796304818853-2" || p.N != 6 {
		t.Errorf("position %+v", p)
	}
	if s := r.Stats(); s.Entries != 6 || s.Events != 6 || s.Lost != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestStreamGapsAndMalformed(t *testing.T) {
	r := newTestReader(t, Config{Queues: []string{"mailers"}})
	r.take("100-0", entry("1", "enqueued"))
	// A trim took 2..9 before twice read them.
	rec := r.take("200-0", entry("10", "started", "attempt", "1"))
	if rec.Lost == nil || rec.Lost.Count != 8 || rec.Lost.Reason != "stream trimmed" || rec.Lost.From != 100e6 || rec.Lost.To != 200e6 {
		t.Fatalf("gap %+v, want 8 entries lost between 100 ms and 200 ms", rec.Lost)
	}
	if rec.Event == nil {
		t.Error("the entry after a gap is still read")
	}
	for _, tc := range []struct {
		values map[string]any
		want   string
	}{
		{entry("11", "exploded"), `unknown event "exploded"`},
		{entry("12", "failed", "attempt", "1"), "failed without retry"},
		{entry("13", "started", "attempt", "0"), `attempt "0"`},
		{entry("14", "started", "job", "{"), "invalid JSON"},
		{entry("15", "started", "ts", "soon"), `ts "soon"`},
		{entry("16", "started", "v", "2"), `version "2"`},
		{map[string]any{"v": "1", "n": "17", "e": "started"}, `no "job"`},
	} {
		rec := r.take("300-0", tc.values)
		if rec.Malformed == nil || !strings.Contains(rec.Malformed.Reason, tc.want) {
			t.Errorf("%v: malformed %+v, want %q", tc.values, rec.Malformed, tc.want)
		}
	}
	skipped := r.take("400-0", entry("18", "enqueued", "job", `{"jid":"j2","class":"C","queue":"low"}`))
	if skipped.Event != nil || skipped.Malformed != nil || skipped.Pos.N != 18 {
		t.Errorf("an entry of another queue: %+v", skipped)
	}
	// The middleware's counter was deleted: numbering starts again.
	r.take("500-0", entry("1", "enqueued"))
	s := r.Stats()
	if s.Lost != 8 || s.Malformed != 7 || s.Skipped != 1 || s.Resets != 1 {
		t.Errorf("stats %+v", s)
	}
	if g := r.Gaps(); len(g) != 1 || g[0].Count != 8 {
		t.Errorf("gaps %+v", g)
	}
}

func TestPositions(t *testing.T) {
	for _, s := range []string{"", "1796304809528-0/1", "1-2/30"} {
		p, err := ParsePosition(s)
		if err != nil || p.String() != s {
			t.Errorf("ParsePosition(%q) = %+v, %v", s, p, err)
		}
	}
	for _, s := range []string{"1796304809528-0", "x-1/2", "1-2/-3", "1/2"} {
		if _, err := ParsePosition(s); err == nil {
			t.Errorf("ParsePosition(%q): no error", s)
		}
	}
	for _, c := range []struct {
		a, b string
		want int
	}{{"1-0", "1-1", -1}, {"2-0", "10-0", -1}, {"10-5", "10-5", 0}, {"11-0", "10-9", 1}} {
		if got := compareIDs(c.a, c.b); got != c.want {
			t.Errorf("compareIDs(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
