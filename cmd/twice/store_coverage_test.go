package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twicehq/twice/internal/servicetest"
)

// TestAuditFromClickHouseWarns: the SQL audit (--from) carries the
// warnings an audit of files gives, where it can: a range with no events,
// times that look like seconds (judged by the earliest stored event), and
// expect rules that checked nothing; --strict-coverage exits 4 on them.
func TestAuditFromClickHouseWarns(t *testing.T) {
	dsn := servicetest.ClickHouseDatabase(t, servicetest.ClickHouseDSN(t, "native"))
	dir := t.TempDir()
	// crashRetry with its times in 1970 (integer seconds read as
	// milliseconds), and a rule for a job type that never occurs.
	seconds := strings.NewReplacer(
		`"2026-11-24T10:00:00Z"`, `1795514400`, `"2026-11-24T10:00:01Z"`, `1795514401`,
		`"2026-11-24T10:00:02Z"`, `1795514402`, `"2026-11-24T10:00:40Z"`, `1795514440`,
		`"2026-11-24T10:00:41Z"`, `1795514441`, `"2026-11-24T10:00:42Z"`, `1795514442`,
	).Replace(crashRetry)
	events := writeFile(t, "events.jsonl", seconds)
	cfg := writeFile(t, "twice.yaml", "expect: [{job_type: SendReciept, effect: email.sent, effect_key: \"receipt/{{key}}\"}]\n")

	fileOut, stderr, code := runCLI(t, "audit", "-q", "-c", cfg, "--to", dsn, "--format", "json", events)
	if code != exitFindings {
		t.Fatalf("audit --to: exit %d, stderr %s", code, stderr)
	}
	fileWarnings := warningsOf(t, fileOut)
	if len(fileWarnings) != 2 {
		t.Fatalf("audit of the file: warnings %q, want seconds and the rule", fileWarnings)
	}

	out, stderr, code := runCLI(t, "audit", "-c", cfg, "--from", dsn, "--format", "json")
	if code != exitFindings {
		t.Fatalf("audit --from: exit %d, stderr %s", code, stderr)
	}
	ws := warningsOf(t, out)
	joined := strings.Join(ws, "\n")
	for _, want := range []string{"before 2001", "multiply seconds by 1000", `no job of type "SendReciept"`} {
		if !strings.Contains(joined, want) {
			t.Errorf("audit --from warnings do not say %q:\n%s", want, joined)
		}
	}

	// A range that holds nothing.
	empty := filepath.Join(dir, "empty.json")
	_, stderr, code = runCLI(t, "audit", "--from", dsn, "--since", "2026-11-01T00:00:00Z", "--format", "json", "-o", empty)
	if code != exitOK {
		t.Fatalf("audit --from an empty range: exit %d, stderr %s", code, stderr)
	}
	raw, err := os.ReadFile(empty)
	if err != nil {
		t.Fatal(err)
	}
	if ws := warningsOf(t, string(raw)); len(ws) != 1 || !strings.Contains(ws[0], "no events") {
		t.Errorf("empty range: warnings %q, want one saying no events", ws)
	}
	if _, _, code := runCLI(t, "audit", "--from", dsn, "--since", "2026-11-01T00:00:00Z", "--strict-coverage"); code != exitCoverage {
		t.Errorf("empty range under --strict-coverage: exit %d, want %d", code, exitCoverage)
	}
}
