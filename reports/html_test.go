package reports

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/story"
	"github.com/twicehq/twice/twicetype"
)

// htmlFixture is the full report with a scorecard, an impact and the
// story of its duplicate-effect finding (a redelivery: the effect, a
// crash, the retry, the effect again), and a timeline of its events.
func htmlFixture() (*twicetype.Report, Options) {
	r := fullReport()
	dup := &r.Findings[0]
	r.Scorecard = []twicetype.HandlerScore{
		{JobType: "SendReceipt", Queue: "emails", Jobs: 120, Conditions: []twicetype.ConditionScore{
			{Condition: twicetype.CondRunTwice, Verdict: twicetype.VerdictUnsafe, Exercised: 4, Harmed: 1, Findings: []string{dup.Fingerprint}},
			{Condition: twicetype.CondRunLate, Verdict: twicetype.VerdictSafe, Exercised: 3},
			{Condition: twicetype.CondPartial, Verdict: twicetype.VerdictNotExercised},
			{Condition: twicetype.CondOutOfOrder, Verdict: twicetype.VerdictNotExercised},
		}},
		{JobType: "ChargeCard", Queue: "payments", Jobs: 80, Conditions: []twicetype.ConditionScore{
			{Condition: twicetype.CondRunTwice, Verdict: twicetype.VerdictNotExercised},
			{Condition: twicetype.CondRunLate, Verdict: twicetype.VerdictNotExercised},
			{Condition: twicetype.CondPartial, Verdict: twicetype.VerdictNotExercised},
			{Condition: twicetype.CondOutOfOrder, Verdict: twicetype.VerdictNotExercised},
		}},
	}
	r.Impact = &twicetype.Impact{DuplicatedAmount: map[string]float64{"USD": 12.5}, Customers: 3, StaleEntities: 1}
	ev := func(id string, d time.Duration, k twicetype.Kind, attempt int64) twicetype.Event {
		e := twicetype.Event{ID: id, Time: at(d), Kind: k, JobID: "j-1", JobType: "SendReceipt", Queue: "emails",
			Key: "payment:123", Attempt: attempt, HasAttempt: attempt > 0}
		if k == twicetype.Effect {
			e.Effect, e.EffectKey = "email.sent", "receipt/payment:123"
		}
		return e
	}
	evs := []twicetype.Event{
		ev("e-1", 50*time.Second, twicetype.JobEnqueued, 0),
		ev("e-2", 55*time.Second, twicetype.JobStarted, 1),
		ev("e-3", time.Minute, twicetype.Effect, 1),
		ev("e-4", time.Minute+2*time.Second, twicetype.JobFailed, 1),
		ev("e-5", 2*time.Minute, twicetype.JobStarted, 2),
		ev("e-9", 3*time.Minute, twicetype.Effect, 2),
		ev("e-10", 3*time.Minute+100*time.Millisecond, twicetype.JobSucceeded, 2),
	}
	evs[3].Error, evs[3].Retry, evs[3].HasRetry = "SMTP timeout", true, true
	st := &story.Story{Finding: *dup, Events: evs, Named: []bool{false, false, true, false, false, true, false}}
	tl := NewTimeline()
	for i := range 1200 {
		e := twicetype.Event{Identity: uint64(i + 1), Time: at(time.Duration(i) * 3 * time.Second)}
		tl.Add(&e)
	}
	return r, Options{Source: "events.jsonl", Stories: map[string]*story.Story{dup.Fingerprint: st}, Timeline: tl}
}

func TestHTMLShowsTheReport(t *testing.T) {
	t.Parallel()
	r, opts := htmlFixture()
	out := render(t, "html", opts, r)
	for _, want := range []string{
		"FAIL: 6 findings at or above low",
		`<tr data-job-type="SendReceipt"><td>SendReceipt</td><td>emails</td><td class="num">120</td>`,
		`<td class="verdict-unsafe" data-condition="run-twice">unsafe 1/4 <a href="#f-1">#1</a></td>`,
		`<td class="verdict-safe" data-condition="run-late">safe ×3</td>`,
		`<td class="verdict-not-exercised" data-condition="partial">not exercised</td>`,
		`<dt>duplicated USD</dt><dd>12.5</dd>`, `<dd>3</dd>`,
		`id="f-1" data-fingerprint="` + r.Findings[0].Fingerprint + `"`,
		"Story: 7 events",
		`<span class="gap">&#43;1m</span>`, `<span class="gap">&#43;100ms</span>`,
		"j-1 failed attempt 1, will retry: SMTP timeout",
		`step-again named`,
		"6 of 6 findings shown",
		"events.jsonl:11: missing job_id on job.started",
		"… and 10 more",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("html lacks %q", want)
		}
	}
	// The story in order: enqueued, started, effect, crash, retry, effect again.
	order := []string{"j-1 enqueued", "j-1 started attempt 1", "effect email.sent receipt/payment:123 by j-1 attempt 1",
		"j-1 failed attempt 1", "j-1 started attempt 2", "effect email.sent receipt/payment:123 by j-1 attempt 2", "j-1 succeeded attempt 2"}
	last := -1
	for _, s := range order {
		i := strings.Index(out, s)
		if i <= last {
			t.Fatalf("story step %q at %d, not after the step before (%d)", s, i, last)
		}
		last = i
	}
}

// TestHTMLSelfContained checks that the page loads nothing and runs only
// its own script: no URL but the SVG namespace, and a
// Content-Security-Policy whose hashes are those of the script and the
// stylesheet as the page holds them (html/template would drop a comment
// from them and break the hash).
func TestHTMLSelfContained(t *testing.T) {
	t.Parallel()
	r, opts := htmlFixture()
	out := render(t, "html", opts, r)
	for _, m := range regexp.MustCompile(`https?://[^"'\s<]*`).FindAllString(out, -1) {
		if m != "http://www.w3.org/2000/svg" {
			t.Errorf("page names a URL: %s", m)
		}
	}
	for _, bad := range []string{"<link", " src=", "@import", "url("} {
		if strings.Contains(out, bad) {
			t.Errorf("page has %q: it must load nothing", bad)
		}
	}
	csp := regexp.MustCompile(`http-equiv="Content-Security-Policy" content="([^"]*)"`).FindStringSubmatch(out)
	if csp == nil {
		t.Fatal("no Content-Security-Policy")
	}
	policy := html.UnescapeString(csp[1])
	if !strings.HasPrefix(policy, "default-src 'none';") {
		t.Errorf("policy %q does not start with default-src 'none'", policy)
	}
	for _, tag := range []string{"style", "script"} {
		m := regexp.MustCompile(`(?s)<` + tag + `>(.*?)</` + tag + `>`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no inline <%s>", tag)
		}
		sum := sha256.Sum256([]byte(m[1]))
		hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		if !strings.Contains(policy, tag+"-src "+hash) {
			t.Errorf("policy %q does not allow the page's <%s> (%s)", policy, tag, hash)
		}
		if asset := mustAsset("html/report." + map[string]string{"style": "css", "script": "js"}[tag]); m[1] != asset {
			t.Errorf("<%s> differs from its asset: html/template changed it (a comment?)", tag)
		}
	}
}

// TestHTMLEscapes checks that event text can neither close the data
// script nor add markup.
func TestHTMLEscapes(t *testing.T) {
	t.Parallel()
	r, opts := htmlFixture()
	evil := `</script><script>alert(1)</script><img src=x onerror=alert(2)>`
	r.Findings[1].Subject = evil
	r.Findings[1].Message = evil
	opts.Stories[r.Findings[0].Fingerprint].Events[0].JobID = evil
	out := render(t, "html", opts, r)
	if n := strings.Count(out, "<script"); n != 2 {
		t.Errorf("%d <script elements, want 2 (the data and the page's)", n)
	}
	if strings.Contains(out, "<img") || strings.Contains(out, "alert(1)</script>") {
		t.Errorf("event text reached the page as markup")
	}
	if !strings.Contains(out, "&lt;/script&gt;&lt;script&gt;alert(1)") {
		t.Errorf("escaped subject missing")
	}
}

// TestHTMLCapped checks that a large audit gives a small page: the first
// Top findings of each detector, with their stories, and the rest
// counted.
func TestHTMLCapped(t *testing.T) {
	t.Parallel()
	r := &twicetype.Report{Summary: twicetype.Summary{Events: 1_000_000, From: base, To: at(24 * time.Hour),
		Findings: map[string]int{twicetype.DuplicateEffect: 3000, twicetype.LostJob: 2000}}}
	stories := map[string]*story.Story{}
	for i := range 5000 {
		det := twicetype.DuplicateEffect
		if i >= 3000 {
			det = twicetype.LostJob
		}
		subj := fmt.Sprintf("key-%06d", i)
		f := twicetype.Finding{Detector: det, Severity: twicetype.High, Subject: subj,
			Fingerprint: twicetype.Fingerprint(det, subj), Count: 2, FirstTime: at(time.Duration(i) * time.Second),
			LastTime: at(time.Duration(i)*time.Second + time.Second), Jobs: []string{"j-" + subj},
			Message: "happened twice"}
		r.Findings = append(r.Findings, f)
		evs := make([]twicetype.Event, htmlStoryCap+20)
		for k := range evs {
			evs[k] = twicetype.Event{ID: fmt.Sprintf("e-%d-%d", i, k), Time: f.FirstTime + int64(k)*1e6, Kind: twicetype.JobStarted, JobID: "j-" + subj}
		}
		stories[f.Fingerprint] = &story.Story{Finding: f, Events: evs, Omitted: 5}
	}
	out := render(t, "html", Options{Top: 10, Stories: stories}, r)
	if got := strings.Count(out, `<article class="finding"`); got != 20 {
		t.Errorf("%d findings shown, want 10 per detector", got)
	}
	for _, want := range []string{"20 of 5000 findings shown", "… and 2990 more duplicate-effect findings not shown",
		"… and 1990 more lost-job findings not shown", "(and 25 more)"} {
		if !strings.Contains(out, want) {
			t.Errorf("html lacks %q", want)
		}
	}
	shown := HTMLFindings(r.Findings, 10)
	if len(shown) != 20 {
		t.Fatalf("HTMLFindings gives %d findings, want 20", len(shown))
	}
	for _, f := range shown {
		if !strings.Contains(out, `data-fingerprint="`+f.Fingerprint+`"`) {
			t.Errorf("HTMLFindings gives %s, which the page does not show", f.Subject)
		}
	}
	if len(out) > 400<<10 {
		t.Errorf("page is %d bytes for 20 findings shown; want under 400 KB", len(out))
	}
}

func TestHTMLEmpty(t *testing.T) {
	t.Parallel()
	out := render(t, "html", Options{}, emptyReport())
	for _, want := range []string{"PASS", "No findings.", "nothing to score", `"events":null`} {
		if !strings.Contains(out, want) {
			t.Errorf("html lacks %q", want)
		}
	}
}

func TestTimeline(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		times []time.Duration
	}{
		{"one", []time.Duration{0}},
		{"second apart", []time.Duration{0, time.Second, 2 * time.Second}},
		{"a day, shuffled", []time.Duration{12 * time.Hour, 0, 24 * time.Hour, time.Hour, -time.Hour, 23 * time.Hour}},
		{"before the epoch", []time.Duration{-time.Duration(base) - time.Hour, -time.Duration(base) - 3*time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := NewTimeline()
			for i, d := range tc.times {
				ev := twicetype.Event{Identity: uint64(i + 1), Time: at(d)}
				tl.Add(&ev)
				tl.Add(&ev) // a repeated observation counts once
			}
			c := tl.Counts()
			if len(c) == 0 || len(c) > TimelineBuckets {
				t.Fatalf("%d buckets, want 1 to %d", len(c), TimelineBuckets)
			}
			var sum int64
			for _, n := range c {
				sum += n
			}
			if sum != int64(len(tc.times)) {
				t.Errorf("buckets add up to %d, want %d", sum, len(tc.times))
			}
			for _, d := range tc.times {
				if ts := at(d); ts < tl.Start() || ts >= tl.Start()+int64(len(c))*tl.Width() {
					t.Errorf("event at %d outside [%d, +%d×%d)", ts, tl.Start(), len(c), tl.Width())
				}
			}
			if tl.Start()%tl.Width() != 0 {
				t.Errorf("start %d not aligned to width %d", tl.Start(), tl.Width())
			}
		})
	}
}
