// Package pgjobstest holds what the job-table taps' integration tests
// (river, oban) share beyond internal/watchtest: waiting for a condition
// of the database, findings as "detector subject" pairs, and twice audit
// run as a process.
package pgjobstest

import (
	"encoding/json"
	"os/exec"
	"sort"
	"testing"
	"time"

	"github.com/twicehq/twice/internal/watchtest"
)

// WaitFor calls cond every 20 ms until it holds, failing tb after
// timeout with cond's last error.
func WaitFor(tb testing.TB, what string, timeout time.Duration, cond func() (bool, error)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			tb.Fatalf("waited %v for %s (last: %v)", timeout, what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Pairs lists findings as sorted "detector subject" lines.
func Pairs(fs []watchtest.Finding) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, f.Detector+" "+f.Subject)
	}
	sort.Strings(out)
	return out
}

// Summary is what tests read of a JSON report's summary.
type Summary struct {
	Events    int64    `json:"events"`
	Repeated  int64    `json:"repeated_ids"`
	Malformed int64    `json:"malformed"`
	Warnings  []string `json:"warnings"`
}

// Audit runs `twice audit -c cfg --format json` and returns its findings
// and summary.
func Audit(tb testing.TB, cfg string) ([]watchtest.Finding, Summary) {
	tb.Helper()
	cmd := exec.Command(watchtest.Build(tb), "audit", "-c", cfg, "--format", "json", "--fail-on", "none")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		tb.Fatalf("twice audit: %v\n%s\n%s", err, out, stderr)
	}
	var rep struct {
		Findings []watchtest.Finding `json:"findings"`
		Summary  Summary             `json:"summary"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		tb.Fatalf("twice audit: %v\n%s", err, out)
	}
	return rep.Findings, rep.Summary
}
