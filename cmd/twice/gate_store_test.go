package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/twicehq/twice/internal/servicetest"
)

// The CI gate and explain over the events stored in ClickHouse (--from):
// the baseline of a file audit gates the store's audit the same way, and
// explain finds a finding there (its story still comes from the files).
func TestGateAndExplainFromClickHouse(t *testing.T) {
	dsn := servicetest.ClickHouseDatabase(t, servicetest.ClickHouseDSN(t, "native"))
	old := writeFile(t, "old.jsonl", crashRetry)
	both := writeFile(t, "both.jsonl", secondReceipt)
	baseline := writeBaseline(t, old)
	for _, f := range []string{old, both} {
		if _, stderr, code := runCLI(t, "audit", "-q", "--to", dsn, "-o", filepath.Join(t.TempDir(), "r.txt"), f); code != exitFindings {
			t.Fatalf("audit --to %s: exit %d, %s", f, code, stderr)
		}
	}
	out, stderr, code := runCLI(t, "audit", "--from", dsn, "--baseline", baseline)
	if code != exitFindings || !strings.Contains(out, "[high] receipt/payment:456  (new)") ||
		!strings.Contains(out, "[high] receipt/payment:123  (in the baseline)") ||
		!strings.Contains(out, "FAIL: 1 finding at or above low (--fail-on low), 2 excused (2 in the baseline); baseline: 1 new, 2 accepted, 0 fixed") {
		t.Errorf("--from --baseline: exit %d, %s\n%s", code, stderr, out)
	}
	cfg := writeFile(t, "twice.yaml", "detectors:\n  duplicate-effect: {budget: {max: 2}}\n")
	out, _, code = runCLI(t, "audit", "--from", dsn, "-c", cfg, "--fail-on", "high")
	if code != exitOK || !strings.Contains(out, "duplicate-effect: within budget (2 of 2)") {
		t.Errorf("--from with a budget: exit %d\n%s", code, out)
	}

	out, stderr, code = runCLI(t, "explain", fpNew[:10], "--from", dsn)
	if code != exitOK || !strings.Contains(out, "duplicate-effect: receipt/payment:456 (high)") ||
		!strings.Contains(out, "  jobs         j-2, j-3\n") || !strings.Contains(out, "give the audit's input with --events FILE") {
		t.Errorf("explain --from: exit %d, %s\n%s", code, stderr, out)
	}
	if _, stderr, code := runCLI(t, "explain", "0123456789", "--from", dsn); code != exitUsage || !strings.Contains(stderr, "is not in the audit of") {
		t.Errorf("explain --from of no finding: exit %d, %s", code, stderr)
	}
}
