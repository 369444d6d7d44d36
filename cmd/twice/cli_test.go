package main

import (
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// crashRetry is the classic: the receipt is sent, the worker dies before
// the ack, and the retry sends it again.
const crashRetry = `{"id":"e-1","ts":"2026-11-24T10:00:00Z","kind":"job.enqueued","queue":"emails","job_type":"SendReceipt","job_id":"j-1","key":"payment:123"}
{"id":"e-2","ts":"2026-11-24T10:00:01Z","kind":"job.started","job_id":"j-1","attempt":1}
{"id":"e-3","ts":"2026-11-24T10:00:02Z","kind":"effect","effect":"email.sent","effect_key":"receipt/payment:123","job_id":"j-1","attempt":1}
{"id":"e-4","ts":"2026-11-24T10:00:40Z","kind":"job.started","job_id":"j-1","attempt":2}
{"id":"e-5","ts":"2026-11-24T10:00:41Z","kind":"effect","effect":"email.sent","effect_key":"receipt/payment:123","job_id":"j-1","attempt":2}
{"id":"e-6","ts":"2026-11-24T10:00:42Z","kind":"job.succeeded","job_id":"j-1","attempt":2}
`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func decodeReport(t *testing.T, out string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	return m
}

func findingIDs(m map[string]any) []string {
	var ids []string
	for _, f := range m["findings"].([]any) {
		f := f.(map[string]any)
		ids = append(ids, f["detector"].(string)+" "+f["subject"].(string))
	}
	return ids
}

func TestAuditExitCodes(t *testing.T) {
	events := writeFile(t, "events.jsonl", crashRetry)
	clean := writeFile(t, "clean.jsonl", strings.SplitAfter(crashRetry, "\n")[0])
	badCfg := writeFile(t, "twice.yaml", "detectors:\n  lost-job: {lost_afte: 1h}\n")
	for _, tc := range []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"findings", []string{"audit", events}, exitFindings, ""},
		{"no findings", []string{"audit", "--lateness", "0s", clean}, exitOK, ""},
		{"fail-on above the findings", []string{"audit", "--fail-on", "critical", events}, exitOK, ""},
		{"fail-on none", []string{"audit", "--fail-on", "none", events}, exitOK, ""},
		{"fail-on at the findings", []string{"audit", "--fail-on", "high", events}, exitFindings, ""},
		{"bad fail-on", []string{"audit", "--fail-on", "urgent", events}, exitUsage, "--fail-on"},
		{"unknown flag", []string{"audit", "--frobnicate", events}, exitUsage, "frobnicate"},
		{"unknown format", []string{"audit", "--format", "pdf", events}, exitUsage, "pdf"},
		{"bad config", []string{"audit", "--config", badCfg, events}, exitUsage, `lost_afte`},
		{"missing config", []string{"audit", "--config", "/nonexistent/twice.yaml", events}, exitUsage, "twice.yaml"},
		{"missing input", []string{"audit", "/nonexistent/events.jsonl"}, exitInput, "/nonexistent/events.jsonl"},
		{"no input", []string{"audit"}, exitUsage, "no input"},
		{"unwritable output", []string{"audit", "-o", "/nonexistent/dir/report.json", events}, exitUsage, "/nonexistent/dir"},
		{"horizon past the cap", []string{"audit", "--horizon", "2500000h", events}, exitUsage, "--horizon"},
		{"watch without a config", []string{"watch"}, exitUsage, "twice.yaml with sources"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, stderr)
			}
			if !strings.Contains(stderr, tc.err) {
				t.Fatalf("stderr %q does not mention %q", stderr, tc.err)
			}
		})
	}
}

func TestAuditClassicCrashRetry(t *testing.T) {
	events := writeFile(t, "events.jsonl", crashRetry)
	out, _, code := runCLI(t, "audit", "--format", "json", events)
	if code != exitFindings {
		t.Fatalf("exit %d", code)
	}
	m := decodeReport(t, out)
	got := strings.Join(findingIDs(m), ", ")
	want := "duplicate-effect receipt/payment:123, effect-before-failure j-1"
	if got != want {
		t.Fatalf("findings = %s, want %s", got, want)
	}
	f := m["findings"].([]any)[0].(map[string]any)
	if f["cause"] != "redelivery" || f["count"] != float64(2) {
		t.Fatalf("duplicate-effect cause=%v count=%v, want redelivery 2", f["cause"], f["count"])
	}
}

func TestAuditReadsStdinGzipAndWritesOutputFile(t *testing.T) {
	dir := t.TempDir()
	gz := filepath.Join(dir, "events.jsonl.gz")
	fh, err := os.Create(gz)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(fh)
	lines := strings.SplitAfter(crashRetry, "\n")
	zw.Write([]byte(strings.Join(lines[:3], "")))
	zw.Close()
	fh.Close()
	out := filepath.Join(dir, "report.json")
	stdout, stderr, code := runCLIWithInput(t, strings.NewReader(strings.Join(lines[3:], "")),
		"audit", "--format", "json", "-o", out, gz, "-")
	if code != exitFindings || stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %s", code, stdout, stderr)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	m := decodeReport(t, string(raw))
	if n := m["summary"].(map[string]any)["events"]; n != float64(6) {
		t.Fatalf("events = %v, want 6 (3 from gzip, 3 from stdin)", n)
	}
	if len(findingIDs(m)) != 2 {
		t.Fatalf("findings = %v", findingIDs(m))
	}
}

func TestAuditMalformedLinesGoToStderrAndReport(t *testing.T) {
	events := writeFile(t, "events.jsonl", crashRetry+"{not json\n"+`{"ts":"2026-11-24T10:01:00Z","kind":"job.started"}`+"\n")
	out, stderr, code := runCLI(t, "audit", "--format", "json", events)
	if code != exitFindings {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(stderr, "events.jsonl:7:") || !strings.Contains(stderr, "events.jsonl:8:") ||
		!strings.Contains(stderr, "job_id") {
		t.Fatalf("stderr does not name both lines and the missing field:\n%s", stderr)
	}
	s := decodeReport(t, out)["summary"].(map[string]any)
	if s["malformed"] != float64(2) || len(s["malformed_lines"].([]any)) != 2 {
		t.Fatalf("summary malformed = %v / %v", s["malformed"], s["malformed_lines"])
	}
	_, stderr, code = runCLI(t, "audit", "--strict", events)
	if code != exitInput || strings.Count(stderr, "events.jsonl:7") != 1 || strings.Contains(stderr, "events.jsonl:8") {
		t.Fatalf("--strict: exit %d, want 3 and line 7 named once (and nothing after it); stderr %s", code, stderr)
	}
}

func TestAuditSourcesFromConfig(t *testing.T) {
	events := writeFile(t, "events.jsonl", crashRetry)
	cfg := writeFile(t, "twice.yaml", "sources:\n  - name: captured\n    type: file\n    paths: ["+events+"]\n")
	out, _, code := runCLI(t, "audit", "--config", cfg, "--format", "json")
	if code != exitFindings || len(findingIDs(decodeReport(t, out))) != 2 {
		t.Fatalf("exit %d, report %s", code, out)
	}
	// A source named on the command line stands for its paths.
	out, _, code = runCLI(t, "audit", "--config", cfg, "--format", "json", "captured")
	if code != exitFindings || len(findingIDs(decodeReport(t, out))) != 2 {
		t.Fatalf("by name: exit %d, report %s", code, out)
	}
}

func TestAuditTextReportHasNoColourOffTerminal(t *testing.T) {
	events := writeFile(t, "events.jsonl", crashRetry)
	out, _, _ := runCLI(t, "audit", events)
	if strings.Contains(out, "\x1b[") {
		t.Fatal("text report has ANSI codes though stdout is not a terminal")
	}
	if !strings.Contains(out, "receipt/payment:123") || !strings.Contains(out, "duplicate-effect") {
		t.Fatalf("text report misses the finding:\n%s", out)
	}
	out, _, _ = runCLI(t, "audit", "--color", "always", events)
	if !strings.Contains(out, "\x1b[") {
		t.Fatal("--color always gave no ANSI codes")
	}
}

func TestAuditRejectsBadColour(t *testing.T) {
	events := writeFile(t, "events.jsonl", crashRetry)
	if _, stderr, code := runCLI(t, "audit", "--color", "sometimes", events); code != exitUsage || !strings.Contains(stderr, "--color") {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
}

// TestAuditLateEventsAreCountedNotDropped audits shuffled lines with no
// allowed lateness and a tiny reorder buffer: events behind the watermark
// are late, counted, and still audited.
func TestAuditLateEventsAreCountedNotDropped(t *testing.T) {
	lines := strings.SplitAfter(crashRetry, "\n") // six lines, each with its newline
	shuffled := strings.Join([]string{lines[3], lines[0], lines[5], lines[1], lines[4], lines[2]}, "")
	events := writeFile(t, "events.jsonl", shuffled)
	out, _, _ := runCLI(t, "audit", "--format", "json", "--lateness", "0s", "--reorder-buffer", "1", events)
	s := decodeReport(t, out)["summary"].(map[string]any)
	if s["events"] != float64(6) {
		t.Fatalf("events = %v, want 6: late events must not be dropped", s["events"])
	}
	if s["late"].(float64) < 1 {
		t.Fatalf("late = %v, want at least 1", s["late"])
	}
	// With the default (unbounded lateness) the same lines are put back
	// in order: nothing is late and the classic findings come out.
	out, _, _ = runCLI(t, "audit", "--format", "json", events)
	m := decodeReport(t, out)
	if late := m["summary"].(map[string]any)["late"]; late != float64(0) {
		t.Fatalf("late = %v with the default buffer, want 0", late)
	}
	if got := strings.Join(findingIDs(m), ", "); got != "duplicate-effect receipt/payment:123, effect-before-failure j-1" {
		t.Fatalf("findings of the reordered input = %s", got)
	}
}
