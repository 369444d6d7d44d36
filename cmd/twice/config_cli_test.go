package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mkfile writes content to dir/name, creating folders.
func mkfile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAuditUsesTwiceYAMLOfTheWorkingDirectory: without --config, audit
// reads ./twice.yaml when it exists, as watch does.
func TestAuditUsesTwiceYAMLOfTheWorkingDirectory(t *testing.T) {
	dir := t.TempDir()
	mkfile(t, dir, "events.jsonl", crashRetry+`{"id":"e-7","ts":"2026-11-24T10:05:00Z","kind":"state","entity":"x"}`+"\n")
	// A rule the events break: missing-effect of a webhook, seen only
	// with the config.
	mkfile(t, dir, "twice.yaml", `sources: [{name: captured, path: events.jsonl}]
expect: [{job_type: SendReceipt, effect: webhook.delivered, effect_key: "hook/{{key}}", within: 1s}]
`)
	t.Chdir(dir)
	out, stderr, code := runCLI(t, "audit", "--format", "json")
	if code != exitFindings {
		t.Fatalf("exit %d; stderr %s", code, stderr)
	}
	if got := strings.Join(findingIDs(decodeReport(t, out)), ", "); !strings.Contains(got, "missing-effect j-1") {
		t.Fatalf("findings %s: ./twice.yaml was not used", got)
	}
	// An explicit --config still wins.
	other := mkfile(t, t.TempDir(), "other.yaml", "expect: []\n")
	out, _, _ = runCLI(t, "audit", "--config", other, "--format", "json", "events.jsonl")
	if got := strings.Join(findingIDs(decodeReport(t, out)), ", "); strings.Contains(got, "missing-effect") {
		t.Fatal("--config did not replace ./twice.yaml")
	}
}

// TestAuditConfigPathsAreRelativeToTheConfig: a config in another folder
// reads its sources from there, and a file source's paths may be globs.
func TestAuditConfigPathsAreRelativeToTheConfig(t *testing.T) {
	dir := t.TempDir()
	lines := strings.SplitAfter(crashRetry, "\n")
	mkfile(t, dir, "conf/logs/a.jsonl", strings.Join(lines[:3], ""))
	mkfile(t, dir, "conf/logs/b.jsonl", strings.Join(lines[3:], ""))
	cfg := mkfile(t, dir, "conf/twice.yaml", "sources: [{name: logs, paths: [\"logs/*.jsonl\"]}]\n")
	t.Chdir(t.TempDir()) // anywhere else
	out, stderr, code := runCLI(t, "audit", "-c", cfg, "--format", "json")
	if code != exitFindings {
		t.Fatalf("exit %d; stderr %s", code, stderr)
	}
	m := decodeReport(t, out)
	if n := m["summary"].(map[string]any)["events"]; n != float64(6) || len(findingIDs(m)) != 2 {
		t.Fatalf("events %v, findings %v: want both files of the glob read", n, findingIDs(m))
	}
	// A glob that matches nothing is input that cannot be read.
	cfg2 := mkfile(t, dir, "conf/empty.yaml", "sources: [{name: logs, paths: [\"none/*.jsonl\"]}]\n")
	if _, stderr, code := runCLI(t, "audit", "-c", cfg2); code != exitInput || !strings.Contains(stderr, "no file matches") {
		t.Fatalf("glob without a match: exit %d, stderr %s", code, stderr)
	}
}

// TestAuditSuggestsASourceName: an argument that is neither a file nor a
// source, but close to a source's name, names the source.
func TestAuditSuggestsASourceName(t *testing.T) {
	events := writeFile(t, "events.jsonl", crashRetry)
	cfg := writeFile(t, "twice.yaml", "sources:\n  - name: captured\n    type: file\n    paths: ["+events+"]\n")
	_, stderr, code := runCLI(t, "audit", "-c", cfg, "captrued")
	if code != exitUsage || !strings.Contains(stderr, "did you mean source captured?") {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	// Far from every name: a missing file, as before.
	_, stderr, code = runCLI(t, "audit", "-c", cfg, "/nonexistent/other.jsonl")
	if code != exitInput || strings.Contains(stderr, "did you mean") {
		t.Fatalf("unrelated missing file: exit %d, stderr %s", code, stderr)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"captured", "captured", 0}, {"captrued", "captured", 2}, {"jobs", "job", 1}, {"", "abc", 3}, {"kitten", "sitting", 3}, {"é", "e", 1}} {
		if got := editDistance(tc.a, tc.b); got != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}

// TestAuditFlagValuesAreCaseInsensitive: --format JSON, --fail-on HIGH.
func TestAuditFlagValuesAreCaseInsensitive(t *testing.T) {
	events := writeFile(t, "events.jsonl", crashRetry)
	out, stderr, code := runCLI(t, "audit", "--format", "JSON", "--fail-on", "High", "--color", "NEVER", events)
	if code != exitFindings {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	decodeReport(t, out)
	if _, _, code := runCLI(t, "audit", "--fail-on", "CRITICAL", events); code != exitOK {
		t.Fatalf("--fail-on CRITICAL: exit %d, want 0", code)
	}
	if out, _, _ := runCLI(t, "audit", "--format", "Markdown", events); !strings.HasPrefix(out, "## twice audit") {
		t.Fatalf("--format Markdown:\n%s", out)
	}
}

// TestAuditYAMLErrorNamesTheLine: the line at fault, not the line where
// its block starts.
func TestAuditYAMLErrorNamesTheLine(t *testing.T) {
	cfg := writeFile(t, "twice.yaml", "expect:\n  - job_type: SendReceipt\n    effect: email.sent\n   effect_key: \"receipt/{{key}}\"\n    within: 5m\n")
	events := writeFile(t, "events.jsonl", crashRetry)
	_, stderr, code := runCLI(t, "audit", "-c", cfg, events)
	if code != exitUsage || !strings.Contains(stderr, "twice.yaml:4:") {
		t.Fatalf("exit %d, stderr %s; want the error on line 4", code, stderr)
	}
}
