package reports

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/twicetype"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// base is the fixed event time every fixture counts from.
var base = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC).UnixNano()

func at(d time.Duration) int64 { return base + int64(d) }

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i+1)
	}
	return out
}

// emptyReport is an audit that read nothing and found nothing.
func emptyReport() *twicetype.Report {
	return &twicetype.Report{Summary: twicetype.Summary{
		Findings: map[string]int{
			twicetype.LostJob:         0,
			twicetype.DuplicateEffect: 0,
			twicetype.MissingEffect:   0,
		},
	}}
}

// warnedReport is an audit that found nothing but could not check
// everything: no all-clear.
func warnedReport() *twicetype.Report {
	r := emptyReport()
	r.Summary.Warnings = []twicetype.Warning{
		{Code: twicetype.WarnNoEvents, Message: "The input held no events: nothing was checked."},
		{Code: twicetype.WarnRuleNoJobs, Subject: "SendReceipt email.sent",
			Message: "expect rule SendReceipt → email.sent: no job of type SendReceipt | *was* seen."},
	}
	return r
}

// fullReport has findings across detectors and severities, with and
// without causes, long job and event lists, details of several types,
// Markdown metacharacters, and more malformed lines than any format lists.
func fullReport() *twicetype.Report {
	malformed := make([]twicetype.Malformed, 25)
	for i := range malformed {
		malformed[i] = twicetype.Malformed{Source: "events.jsonl", Line: int64(10 + i), Reason: "not valid JSON"}
	}
	malformed[1].Reason = "missing job_id on job.started"
	return &twicetype.Report{
		Summary: twicetype.Summary{
			Events:      1200,
			RepeatedIDs: 3,
			Malformed:   30,
			Late:        4,
			Jobs:        400,
			Effects:     380,
			Pending:     5,
			Evicted:     2,
			From:        base,
			To:          at(time.Hour + 1500*time.Millisecond),
			Findings: map[string]int{
				twicetype.DuplicateEffect:    1,
				twicetype.MissingEffect:      0,
				twicetype.DuplicateExecution: 1,
				twicetype.OutOfOrder:         1,
				twicetype.LostJob:            1,
				twicetype.RetryStorm:         1,
				twicetype.DeadLetter:         1,
			},
			MalformedLines: malformed,
		},
		Scorecard: scorecardFixture(),
		Impact:    &twicetype.Impact{DuplicatedAmount: map[string]float64{"USD": 12.5}, Customers: 1, StaleEntities: 1},
		Findings: []twicetype.Finding{
			{
				Detector: twicetype.DuplicateEffect, Severity: twicetype.Critical,
				Subject:     "receipt/payment:123",
				Fingerprint: twicetype.Fingerprint(twicetype.DuplicateEffect, "receipt/payment:123"),
				Count:       2, FirstTime: at(time.Minute), LastTime: at(3 * time.Minute),
				Jobs: []string{"j-1"}, Events: []string{"e-3", "e-9"},
				JobType: "SendReceipt", Queue: "emails",
				Cause:   "redelivery",
				Message: "email.sent receipt/payment:123 happened 2 times",
				Details: map[string]any{"max_per_key": 1, "effect": "email.sent"},
			},
			{
				Detector: twicetype.LostJob, Severity: twicetype.High,
				Subject:     "j-7",
				Fingerprint: twicetype.Fingerprint(twicetype.LostJob, "j-7"),
				Count:       1, FirstTime: at(2 * time.Minute), LastTime: at(2 * time.Minute),
				Jobs: []string{"j-7"}, Events: names("e-", 13),
				Cause:   "stuck",
				Message: "job j-7 started and never finished within 1h",
				Details: map[string]any{"lost_after": "1h", "last_kind": "job.started"},
			},
			{
				Detector: twicetype.OutOfOrder, Severity: twicetype.High,
				Subject:     "order:42",
				Fingerprint: twicetype.Fingerprint(twicetype.OutOfOrder, "order:42"),
				Count:       1, FirstTime: at(10 * time.Minute), LastTime: at(11 * time.Minute),
				Events:  []string{"e-20", "e-21"},
				Message: "order:42 went from seq 7 back to seq 5",
				Details: map[string]any{"final_stale": true, "max_seq": 7, "seq": 5},
			},
			{
				Detector: twicetype.DeadLetter, Severity: twicetype.Medium,
				Subject:     "webhooks",
				Fingerprint: twicetype.Fingerprint(twicetype.DeadLetter, "webhooks"),
				Count:       12, FirstTime: at(5 * time.Minute), LastTime: at(70 * time.Minute),
				Jobs:    names("j-", 12),
				Queue:   "webhooks",
				Message: "12 jobs of webhooks are dead",
				Details: map[string]any{
					"count":    12,
					"oldest":   "2026-11-24T10:05:00.000Z",
					"per_hour": map[string]int{"2026-11-24T10:00:00Z": 5, "2026-11-24T11:00:00Z": 7},
				},
			},
			{
				Detector: twicetype.RetryStorm, Severity: twicetype.Medium,
				Subject:     "webhooks@2026-11-24T10:05:00Z",
				Fingerprint: twicetype.Fingerprint(twicetype.RetryStorm, "webhooks@2026-11-24T10:05:00Z"),
				Count:       25, FirstTime: at(5 * time.Minute), LastTime: at(5*time.Minute + 59*time.Second),
				Jobs: []string{"j-30", "j-31"}, Events: []string{"e-40"},
				Message: "25 attempts of 10 jobs in 1m",
				Details: map[string]any{"amplification": 2.5, "attempts": 25, "jobs": 10},
			},
			{
				// No fingerprint: reports derive it.
				Detector: twicetype.DuplicateExecution, Severity: twicetype.Low,
				Subject: "a|b`c",
				Count:   1, FirstTime: at(20 * time.Minute), LastTime: at(20 * time.Minute),
				Jobs: []string{"a|b`c"}, Events: []string{"e-50", "e-51"},
				Message: "job a|b`c started again after *succeeded*",
			},
		},
	}
}

// render writes r in format and returns the output.
func render(tb testing.TB, format string, opts Options, r *twicetype.Report) string {
	tb.Helper()
	rep, err := New(format, opts)
	if err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rep.Write(&buf, r); err != nil {
		tb.Fatalf("%s: Write: %v", format, err)
	}
	return buf.String()
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(tb testing.TB, name, got string) {
	tb.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (run go test ./reports -update to create it)", err)
	}
	if got != string(want) {
		tb.Errorf("output differs from %s (run go test ./reports -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	for _, f := range Formats {
		rep, err := New(f, Options{})
		if err != nil || rep == nil {
			t.Errorf("New(%q) = %v, %v; want a reporter", f, rep, err)
		}
		if err := rep.Write(&bytes.Buffer{}, nil); err == nil {
			t.Errorf("%s: Write(nil report) succeeded", f)
		}
	}
	_, err := New("pdf", Options{})
	if err == nil {
		t.Fatal(`New("pdf") succeeded`)
	}
	for _, want := range append([]string{`"pdf"`}, Formats...) {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		format, ext string
	}{
		{"text", "txt"}, {"markdown", "md"}, {"junit", "junit.xml"}, {"json", "json"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			t.Parallel()
			opts := Options{Source: "events.jsonl"}
			golden(t, "full."+tc.ext, render(t, tc.format, opts, fullReport()))
			golden(t, "empty."+tc.ext, render(t, tc.format, opts, emptyReport()))
			golden(t, "warned."+tc.ext, render(t, tc.format, opts, warnedReport()))
		})
	}
}

// TestUntrustedText checks that event text cannot break any format's
// layout or reach the terminal as control sequences.
func TestUntrustedText(t *testing.T) {
	t.Parallel()
	r := fullReport()
	r.Findings[0].Subject = "evil\x1b[2J\nnext\tline\u202e"
	r.Findings[0].Details["note"] = "a\x1b]0;title\x07"
	for _, f := range Formats {
		if f == "json" {
			continue // encoding/json escapes control characters itself
		}
		out := render(t, f, Options{}, r)
		if strings.ContainsAny(out, "\x1b\t\u202e\x07") {
			t.Errorf("%s: raw control characters in output:\n%s", f, out)
		}
		if !strings.Contains(out, `\x1b[2J`) && !strings.Contains(out, `\\x1b\[2J`) {
			t.Errorf("%s: escaped subject missing:\n%s", f, out)
		}
	}
}

func TestClean(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain/key:1":     "plain/key:1",
		"é ü 日本":          "é ü 日本",
		"a\nb\tc":         `a\nb\tc`,
		"\x1b[31m":        `\x1b[31m`,
		"bad\xffutf8":     `bad\xffutf8`,
		"rtl\u202eevil":   `rtl\u202eevil`,
		"c1\u0085control": `c1\u0085control`,
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFormatValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   any
		want string
	}{
		{nil, "null"},
		{"x", "x"},
		{"", `""`},
		{"two words", `"two words"`},
		{"a=b", `"a=b"`},
		{true, "true"},
		{42, "42"},
		{int64(-7), "-7"},
		{2.5, "2.5"},
		{90 * time.Second, "1m30s"},
		{time.Unix(0, base).In(time.FixedZone("x", 3600)), "2026-11-24T10:00:00.000Z"},
		{twicetype.High, "high"},
		{map[string]int{"b": 2, "a": 1}, `{"a":1,"b":2}`},
		{[]string{"x", "y"}, `["x","y"]`},
	} {
		if got := formatValue(tc.in); got != tc.want {
			t.Errorf("formatValue(%#v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDetectorCounts(t *testing.T) {
	t.Parallel()
	r := fullReport()
	r.Summary.Findings["zz-custom"] = 0
	delete(r.Summary.Findings, twicetype.DeadLetter) // has a finding: still listed
	var got []string
	for _, row := range detectorCounts(r) {
		got = append(got, fmt.Sprintf("%s=%d/%s", row.ID, row.Count, row.Severity))
	}
	want := []string{
		"duplicate-effect=1/critical", "missing-effect=0/none", "duplicate-execution=1/low",
		"out-of-order=1/high", "lost-job=1/high", "retry-storm=1/medium", "dead-letter=1/medium",
		"zz-custom=0/none",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("detectorCounts:\n got %v\nwant %v", got, want)
	}
}

// TestWarningsInEveryFormat: a report with warnings is never an all-clear,
// in any format; one without says nothing of them.
func TestWarningsInEveryFormat(t *testing.T) {
	t.Parallel()
	for _, f := range Formats {
		out := render(t, f, Options{}, warnedReport())
		for _, want := range []string{"nothing was checked", "SendReceipt"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: warning %q not shown:\n%s", f, want, out)
			}
		}
		if f == "text" || f == "markdown" {
			if strings.Contains(out, "No findings.") {
				t.Errorf("%s: says a plain \"No findings.\" though not everything was checked:\n%s", f, out)
			}
		}
		if quiet := render(t, f, Options{}, emptyReport()); strings.Contains(strings.ToLower(quiet), "warning") {
			t.Errorf("%s: mentions warnings though there are none:\n%s", f, quiet)
		}
	}
}
