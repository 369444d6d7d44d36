package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// crashRetryScenario is the scenario receipt-crash-retry: findings about a job of
// type SendReceipt in queue mailers.
func crashRetryScenario(t *testing.T) (cfg, events string) {
	t.Helper()
	dir, err := filepath.Abs("../../testdata/scenarios/receipt-crash-retry")
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "twice.yaml"), filepath.Join(dir, "events.jsonl")
}

// TestAuditReportsJobTypeAndQueue: a finding about a job carries its job
// type and queue in every format (spec §5).
func TestAuditReportsJobTypeAndQueue(t *testing.T) {
	cfg, events := crashRetryScenario(t)
	out, _, _ := runCLI(t, "audit", "-c", cfg, "-f", "json", events)
	var rep struct {
		Findings []map[string]any `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Findings) == 0 {
		t.Fatalf("report: %v\n%s", err, out)
	}
	for _, f := range rep.Findings {
		if f["job_type"] != "SendReceipt" || f["queue"] != "mailers" {
			t.Errorf("json finding %v %v: job_type %v queue %v", f["detector"], f["subject"], f["job_type"], f["queue"])
		}
	}
	for format, wants := range map[string][]string{
		"text":     {"    job type  SendReceipt\n", "    queue     mailers\n"},
		"markdown": {" | SendReceipt | mailers | ", "  - job type: SendReceipt, queue: mailers\n"},
		"junit":    {"job_type: SendReceipt\n", "queue: mailers\n"},
	} {
		out, _, _ := runCLI(t, "audit", "-c", cfg, "--color", "never", "-f", format, events)
		for _, want := range wants {
			if n := strings.Count(out, want); n != len(rep.Findings) {
				t.Errorf("%s: %q %d times, want once per finding (%d):\n%s", format, want, n, len(rep.Findings), out)
			}
		}
	}
	out, _, _ = runCLI(t, "audit", "-c", cfg, "--color", "never", "--group-by", "job_type", events)
	if !strings.Contains(out, "\njob type SendReceipt (2)\n") {
		t.Errorf("--group-by job_type:\n%s", out)
	}
	out, _, _ = runCLI(t, "audit", "-c", cfg, "--color", "never", "--group-by", "QUEUE", events)
	if !strings.Contains(out, "\nqueue mailers (2)\n") {
		t.Errorf("--group-by QUEUE:\n%s", out)
	}
}

// TestAuditVerdictLine: the text report's last line and the markdown
// status line say FAIL exactly when the audit exits 1.
func TestAuditVerdictLine(t *testing.T) {
	cfg, events := crashRetryScenario(t)
	for _, failOn := range []string{"low", "medium", "high", "critical", "none"} {
		out, _, code := runCLI(t, "audit", "-c", cfg, "--color", "never", "--fail-on", failOn, events)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		last := lines[len(lines)-1]
		if fail := strings.HasPrefix(last, "FAIL: "); fail != (code == exitFindings) || !strings.Contains(last, "(--fail-on "+failOn+")") {
			t.Errorf("--fail-on %s: exit %d, last line %q", failOn, code, last)
		}
		md, _, _ := runCLI(t, "audit", "-c", cfg, "-f", "markdown", "--fail-on", failOn, events)
		word := "**PASS**"
		if code == exitFindings {
			word = "**FAIL**"
		}
		if status := strings.Split(md, "\n")[2]; !strings.Contains(status, word) {
			t.Errorf("--fail-on %s: exit %d, markdown status %q", failOn, code, status)
		}
	}
}

func TestAuditReportFlagsInvalid(t *testing.T) {
	_, events := crashRetryScenario(t)
	for _, args := range [][]string{
		{"--top", "-1"},
		{"--group-by", "severity"},
		{"--max-bytes", "100"},
	} {
		_, stderr, code := runCLI(t, append(append([]string{"audit"}, args...), events)...)
		if code != exitUsage || !strings.Contains(stderr, args[0]) {
			t.Errorf("%v: exit %d, want %d naming the flag; stderr %s", args, code, exitUsage, stderr)
		}
	}
}

// TestAuditAtScale: an audit with thousands of findings prints a text
// report of bounded length and a markdown report within --max-bytes; the
// JSON report has them all.
func TestAuditAtScale(t *testing.T) {
	const jobs = 3000
	var b strings.Builder
	for i := range jobs {
		for k, kind := range []string{"job.enqueued", "job.started", "effect", "effect", "job.succeeded"} {
			fmt.Fprintf(&b, `{"id":"e-%d-%d","ts":"2026-11-24T10:%02d:%02d.%03dZ","kind":%q,"queue":"q%d","job_type":"T%d","job_id":"j-%d","attempt":1,"effect":"email.sent","effect_key":"k-%d"}`+"\n",
				i, k, i/1000, (i/10)%60, (i%10)*100+k, kind, i%3, i%5, i, i)
		}
	}
	events := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(events, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runCLI(t, "audit", "-f", "json", events)
	var rep struct {
		Findings []any `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitFindings || len(rep.Findings) < jobs {
		t.Fatalf("json: exit %d, %d findings (%v); stderr %s", code, len(rep.Findings), err, stderr)
	}
	text, _, _ := runCLI(t, "audit", "--color", "never", events)
	if n := strings.Count(text, "\n"); n > 400 {
		t.Errorf("text report of %d findings has %d lines", len(rep.Findings), n)
	}
	if !strings.Contains(text, fmt.Sprintf("FAIL: %d findings at or above low", len(rep.Findings))) {
		t.Errorf("no verdict line:\n%s", text)
	}
	md, _, _ := runCLI(t, "audit", "-f", "markdown", events)
	if len(md) > 65536 || !strings.Contains(md, "more findings not shown") {
		t.Errorf("markdown: %d bytes", len(md))
	}
	md, _, _ = runCLI(t, "audit", "-f", "markdown", "--max-bytes", "8000", events)
	if len(md) > 8000 {
		t.Errorf("markdown --max-bytes 8000: %d bytes", len(md))
	}
}
