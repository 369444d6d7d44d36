package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestWatchFollowsAFileSource: twice watch follows a file source as
// tail -F does: half a line waits for its newline, a stop and restart
// resumes at the byte after the last line taken (nothing read twice), and
// the file renamed away and replaced while twice was stopped is read out
// before the new one.
func TestWatchFollowsAFileSource(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "twice.yaml")
	if err := os.WriteFile(cfg, []byte(`sources:
  - name: app
    path: app.log
watch:
  state_dir: state
  listen: 127.0.0.1:0
  checkpoint_interval: 50ms
  idle_timeout: 100ms
  idle_advance: false
  findings: []
`), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "app.log")
	appendLog := func(s string) {
		f, err := os.OpenFile(logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	effect := func(i int) string {
		return fmt.Sprintf(`{"id":"fx-%d","ts":"2026-11-24T10:00:0%dZ","kind":"effect","effect":"email.sent","effect_key":"receipt/1"}`+"\n", i, i)
	}
	// count returns how many times the duplicate effect happened, by
	// /findings.
	count := func(w *cliWatch) float64 {
		_, body := w.get(t, "/findings")
		var page struct {
			Findings []map[string]any `json:"findings"`
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatalf("/findings: %v\n%s", err, body)
		}
		for _, f := range page.Findings {
			if f["detector"] == "duplicate-effect" {
				return f["count"].(float64)
			}
		}
		return 0
	}

	line2 := effect(2)
	appendLog(effect(1) + line2[:30])
	w := startCLIWatch(t, "-c", cfg)
	w.waitFor(t, "the first line", func() bool { return w.metric("twice_events_total") == 1 })
	appendLog(line2[30:])
	w.waitFor(t, "the completed line", func() bool { return count(w) == 2 })
	w.waitFor(t, "a checkpoint", func() bool { return w.metric("twice_checkpoints_total") >= 2 })
	if code := w.stop(t); code != 0 {
		t.Fatalf("watch exited %d:\n%s", code, w.stderr.String())
	}

	// While stopped: one more line, then the file rotated and replaced.
	appendLog(effect(3))
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	appendLog(effect(4))
	w = startCLIWatch(t, "-c", cfg)
	w.waitFor(t, "both new lines", func() bool { return count(w) == 4 })
	if got := w.metric("twice_events_total"); got != 2 {
		t.Errorf("the restarted watch took %v events, want 2 (lines 3 and 4 only)", got)
	}
	if got := w.metric("twice_coverage_lost_total"); got != 0 {
		t.Errorf("twice_coverage_lost_total = %v, want 0", got)
	}
}
