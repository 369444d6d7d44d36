package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/twicehq/twice/internal/servicetest"
)

// TestAuditToAndFromClickHouse stores the demo in ClickHouse while
// auditing it (--to), audits it again where it lives (--from, the
// detectors as SQL), over the native and the HTTP protocol, and requires
// the same report; a second --to of the same events changes no finding.
func TestAuditToAndFromClickHouse(t *testing.T) {
	for _, proto := range []string{"native", "http"} {
		t.Run(proto, func(t *testing.T) {
			dsn := servicetest.ClickHouseDatabase(t, servicetest.ClickHouseDSN(t, proto))
			dir := t.TempDir()
			cfg, _ := filepath.Abs("../../testdata/demo/twice.yaml")
			events, _ := filepath.Abs("../../testdata/demo/events.jsonl")
			read := func(name string) map[string]any {
				raw, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				var m map[string]any
				if err := json.Unmarshal(raw, &m); err != nil {
					t.Fatal(err)
				}
				return m
			}
			_, stderr, code := runCLI(t, "audit", "-q", "-c", cfg, "--to", dsn, "-f", "json", "-o", filepath.Join(dir, "file.json"), events)
			if code != exitFindings {
				t.Fatalf("audit --to: exit %d, stderr %s", code, stderr)
			}
			_, stderr, code = runCLI(t, "audit", "-c", cfg, "--from", dsn, "-f", "json", "-o", filepath.Join(dir, "store.json"))
			if code != exitFindings {
				t.Fatalf("audit --from: exit %d, stderr %s", code, stderr)
			}
			file, store := read("file.json"), read("store.json")
			if !reflect.DeepEqual(file, store) {
				t.Fatalf("--from report differs from the audit of the file:\nfile  %v\nstore %v", file["summary"], store["summary"])
			}
			// The same events written again: repeats, not findings.
			if _, stderr, code = runCLI(t, "audit", "-q", "-c", cfg, "--to", dsn, "-o", os.DevNull, events); code != exitFindings {
				t.Fatalf("second audit --to: exit %d, stderr %s", code, stderr)
			}
			runCLI(t, "audit", "-c", cfg, "--from", dsn, "-f", "json", "-o", filepath.Join(dir, "again.json"))
			again := read("again.json")
			if !reflect.DeepEqual(again["findings"], file["findings"]) {
				t.Fatal("writing the events twice changed the findings")
			}
			// The findings are stored beside the events (ReplacingMergeTree:
			// the latest row per finding).
			if n := countRows(t, dsn, "twice_findings FINAL"); n != len(file["findings"].([]any)) {
				t.Fatalf("twice_findings holds %d rows, the report %d findings", n, len(file["findings"].([]any)))
			}
			// A range: nothing before the demo starts.
			_, _, code = runCLI(t, "audit", "-c", cfg, "--from", dsn, "--until", "2026-11-01T00:00:00Z", "-f", "json", "-o", filepath.Join(dir, "none.json"))
			if code != exitOK {
				t.Fatalf("audit --until before the events: exit %d, want 0", code)
			}
			if n := read("none.json")["summary"].(map[string]any)["events"]; n != float64(0) {
				t.Fatalf("--until before the events: %v events", n)
			}
		})
	}
}

// countRows counts the rows of a table of dsn's database over HTTP.
func countRows(t *testing.T, dsn, table string) int {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	httpDSN, err := url.Parse(servicetest.ClickHouseDSN(t, "http"))
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"database": {strings.TrimPrefix(u.Path, "/")}, "query": {"SELECT count() FROM " + table}}
	resp, err := http.Get("http://" + httpDSN.Host + "/?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	n, err := strconv.Atoi(strings.TrimSpace(string(body)))
	if err != nil {
		t.Fatalf("count of %s: %q", table, body)
	}
	return n
}

// TestStoreFlagsAreChecked: bad combinations are usage errors.
func TestStoreFlagsAreChecked(t *testing.T) {
	for _, args := range [][]string{
		{"audit", "--from", "clickhouse://127.0.0.1:1/x", "events.jsonl"},
		{"audit", "--from", "clickhouse://127.0.0.1:1/x", "--to", "clickhouse://127.0.0.1:1/y"},
		{"audit", "--from", "nope://x"},
		{"audit", "--until", "2026-11-01T00:00:00Z", "events.jsonl"},
		{"audit", "--from", "clickhouse://127.0.0.1:1/x", "--since", "2026-11-02T00:00:00Z", "--until", "2026-11-01T00:00:00Z"},
	} {
		if _, _, code := runCLI(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}
