package reports

import (
	"regexp"
	"strings"
	"testing"

	"github.com/twicehq/twice/twicetype"
)

// hasLine reports whether out has a line whose whitespace-separated fields
// are exactly fields.
func hasLine(out string, fields ...string) bool {
	want := strings.Join(fields, " ")
	for line := range strings.Lines(out) {
		if strings.Join(strings.Fields(line), " ") == want {
			return true
		}
	}
	return false
}

var ansiRE = regexp.MustCompile("\x1b\\[[0-9;]*m")

func TestTextEmpty(t *testing.T) {
	t.Parallel()
	out := render(t, "text", Options{}, emptyReport())
	for _, fields := range [][]string{
		{"twice", "audit:", "no", "events"},
		{"events", "0"},
		{"repeated", "ids", "0"},
		{"malformed", "0"},
		{"late", "0"},
		{"jobs", "0"},
		{"effects", "0"},
		{"pending", "0"},
		{"time", "range", "none"},
		{"DETECTOR", "SEVERITY", "COUNT"},
		{"duplicate-effect", "-", "0"},
		{"missing-effect", "-", "0"},
		{"lost-job", "-", "0"},
		{"No", "findings."},
	} {
		if !hasLine(out, fields...) {
			t.Errorf("no line %q in:\n%s", strings.Join(fields, " "), out)
		}
	}
	for _, absent := range []string{"evicted", "Malformed lines", "["} {
		if strings.Contains(out, absent) {
			t.Errorf("empty report mentions %q:\n%s", absent, out)
		}
	}
	// Detectors in spec order.
	if i, j := strings.Index(out, "missing-effect"), strings.Index(out, "lost-job"); i > j {
		t.Errorf("detectors not in spec order:\n%s", out)
	}
}

func TestTextFull(t *testing.T) {
	t.Parallel()
	out := render(t, "text", Options{Source: "events.jsonl"}, fullReport())
	for _, fields := range [][]string{
		{"twice", "audit", "of", "events.jsonl:", "events", "from", "2026-11-24T10:00:00.000Z", "to", "2026-11-24T11:00:01.500Z"},
		{"events", "1200"},
		{"repeated", "ids", "3"},
		{"malformed", "30"},
		{"late", "4"},
		{"jobs", "400"},
		{"effects", "380"},
		{"pending", "5"},
		{"evicted", "2", "(dropped", "by", "the", "memory", "cap:", "coverage", "reduced)"},
		{"time", "range", "2026-11-24T10:00:00.000Z", "to", "2026-11-24T11:00:01.500Z", "(1h0m1.5s)"},
		// Per-detector table.
		{"duplicate-effect", "critical", "1"},
		{"missing-effect", "-", "0"},
		{"duplicate-execution", "low", "1"},
		{"lost-job", "high", "1"},
		{"dead-letter", "medium", "1"},
		// A finding with everything.
		{"duplicate-effect", "(1)"},
		{"[critical]", "receipt/payment:123"},
		{"email.sent", "receipt/payment:123", "happened", "2", "times"},
		{"cause", "redelivery"},
		{"count", "2"},
		{"first", "2026-11-24T10:01:00.000Z"},
		{"last", "2026-11-24T10:03:00.000Z"},
		{"jobs", "j-1"},
		{"events", "e-3,", "e-9"},
		{"details", "effect=email.sent", "max_per_key=1"},
		// Long lists are capped at 10.
		{"events", "e-1,", "e-2,", "e-3,", "e-4,", "e-5,", "e-6,", "e-7,", "e-8,", "e-9,", "e-10", "…", "and", "3", "more"},
		{"jobs", "j-1,", "j-2,", "j-3,", "j-4,", "j-5,", "j-6,", "j-7,", "j-8,", "j-9,", "j-10", "…", "and", "2", "more"},
		// Details of every kind, sorted by key.
		{"details", "final_stale=true", "max_seq=7", "seq=5"},
		{"details", `count=12`, `oldest=2026-11-24T10:05:00.000Z`, `per_hour={"2026-11-24T10:00:00Z":5,"2026-11-24T11:00:00Z":7}`},
		{"details", "amplification=2.5", "attempts=25", "jobs=10"},
		// Malformed lines: the first 20 of 30.
		{"Malformed", "lines", "(30)"},
		{"events.jsonl:10:", "not", "valid", "JSON"},
		{"events.jsonl:11:", "missing", "job_id", "on", "job.started"},
		{"events.jsonl:29:", "not", "valid", "JSON"},
		{"…", "and", "10", "more"},
	} {
		if !hasLine(out, fields...) {
			t.Errorf("no line %q in:\n%s", strings.Join(fields, " "), out)
		}
	}
	for _, absent := range []string{"e-11", "j-11", "events.jsonl:30:", "No findings.", "\x1b"} {
		if strings.Contains(out, absent) {
			t.Errorf("output contains %q:\n%s", absent, out)
		}
	}
	// No cause line for findings without one: exactly two causes.
	if n := strings.Count(out, "    cause "); n != 2 {
		t.Errorf("%d cause lines, want 2", n)
	}
	// Groups follow report order.
	last := -1
	for _, h := range []string{
		"\nduplicate-effect (1)\n", "\nlost-job (1)\n", "\nout-of-order (1)\n",
		"\ndead-letter (1)\n", "\nretry-storm (1)\n", "\nduplicate-execution (1)\n", "\nMalformed lines",
	} {
		i := strings.Index(out, h)
		if i <= last {
			t.Errorf("heading %q missing or out of order", strings.TrimSpace(h))
		}
		last = i
	}
}

func TestTextColor(t *testing.T) {
	t.Parallel()
	for name, report := range map[string]func() *twicetype.Report{"full": fullReport, "empty": emptyReport} {
		plain := render(t, "text", Options{}, report())
		if strings.Contains(plain, "\x1b") {
			t.Errorf("%s: ANSI codes with Color=false", name)
		}
		colored := render(t, "text", Options{Color: true}, report())
		// Colour adds codes and nothing else: columns stay aligned.
		if stripped := ansiRE.ReplaceAllString(colored, ""); stripped != plain {
			t.Errorf("%s: coloured output without codes differs from plain:\n%s\n---\n%s", name, stripped, plain)
		}
		if !strings.Contains(colored, ansiBold+"Summary"+ansiReset) {
			t.Errorf("%s: headings not bold", name)
		}
	}
	colored := render(t, "text", Options{Color: true}, fullReport())
	for _, want := range []string{
		ansiRed + "critical" + ansiReset,
		ansiRed + "high" + ansiReset,
		ansiYellow + "medium" + ansiReset,
		ansiCyan + "low" + ansiReset,
		"[" + ansiRed + "critical" + ansiReset + "] receipt/payment:123",
	} {
		if !strings.Contains(colored, want) {
			t.Errorf("coloured output lacks %q", want)
		}
	}
}

// TestTextAlignment checks that the detector table's columns line up.
func TestTextAlignment(t *testing.T) {
	t.Parallel()
	out := render(t, "text", Options{}, fullReport())
	col := -1
	for line := range strings.Lines(out) {
		if !strings.HasPrefix(line, "  ") || strings.HasPrefix(line, "   ") {
			continue
		}
		for _, sev := range []string{"SEVERITY", "critical", "high", "medium", "low"} {
			if f := strings.Fields(line); len(f) == 3 && f[1] == sev {
				i := strings.Index(line, " "+sev+" ") + 1
				if col >= 0 && i != col {
					t.Errorf("severity column at %d, want %d: %q", i, col, line)
				}
				col = i
			}
		}
	}
	if col < 0 {
		t.Fatal("no detector table")
	}
}
