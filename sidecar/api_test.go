package sidecar

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestHTTPAPI serves the demo's findings and filters them, and shows the
// metrics, health and readiness.
func TestHTTPAPI(t *testing.T) {
	evs, opts := demoInput(t)
	want := auditFindings(t, evs, opts)
	s := newMemStream("demo", "t/0", "t/1", "t/2")
	spread(s, evs)
	s.writeMalformed("t/0", "kind: unknown kind")
	reg := prometheus.NewRegistry()
	wo := watchOptions(filepath.Join(t.TempDir(), "state"), opts, s)
	wo.Registry = reg
	w := New(wo)
	srv := httptest.NewServer(w.Handler(reg))
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz before Start: %d, want 503", code)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitRead(t, w, int64(len(evs)+1))
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz: %d", code)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d", code)
	}
	type page struct {
		Findings []map[string]any `json:"findings"`
		Count    int              `json:"count"`
		Summary  map[string]any   `json:"summary"`
	}
	read := func(path string) page {
		t.Helper()
		code, body := get(path)
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		var p page
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if p.Count != len(p.Findings) {
			t.Fatalf("%s: count %d, %d findings", path, p.Count, len(p.Findings))
		}
		return p
	}
	all := read("/findings")
	if all.Count != len(want) {
		t.Fatalf("/findings: %d findings, the audit has %d", all.Count, len(want))
	}
	if all.Summary["malformed"] != float64(1) || all.Summary["coverage_reduced"] != false {
		t.Fatalf("summary %v", all.Summary)
	}
	dup := read("/findings?detector=duplicate-effect")
	for _, f := range dup.Findings {
		if f["detector"] != "duplicate-effect" {
			t.Fatalf("detector filter let %v through", f["detector"])
		}
	}
	if dup.Count == 0 || dup.Count == all.Count {
		t.Fatalf("detector filter: %d of %d", dup.Count, all.Count)
	}
	high := read("/findings?severity=high")
	for _, f := range high.Findings {
		if f["severity"] != "high" && f["severity"] != "critical" {
			t.Fatalf("severity filter let %v through", f["severity"])
		}
	}
	if later := read("/findings?since=2100-01-01T00:00:00Z"); later.Count != 0 {
		t.Fatalf("since in the future: %d findings", later.Count)
	}
	for _, bad := range []string{"/findings?detector=nope", "/findings?severity=urgent", "/findings?since=yesterday"} {
		if code, body := get(bad); code != http.StatusBadRequest || body == "" {
			t.Fatalf("%s: %d %q, want 400 with a reason", bad, code, body)
		}
	}
	_, metrics := get("/metrics")
	for _, m := range []string{`twice_events_total{kind="effect",source="demo"}`, `twice_malformed_total{reason="kind: unknown kind",source="demo"}`,
		"twice_findings{", "twice_state_records{", "twice_checkpoint_duration_seconds_bucket", "twice_watermark_delay_seconds"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	standing := 0.0
	for _, line := range strings.Split(metrics, "\n") {
		if rest, ok := strings.CutPrefix(line, "twice_findings{"); ok {
			var v float64
			fmt.Sscan(rest[strings.LastIndexByte(rest, ' ')+1:], &v)
			standing += v
		}
	}
	if int(standing) != all.Count {
		t.Errorf("twice_findings sums to %v, /findings has %d", standing, all.Count)
	}
	if err := w.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, _ := get("/healthz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/healthz after Shutdown: %d, want 503", code)
	}
}
