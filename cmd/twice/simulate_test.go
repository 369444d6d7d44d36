package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/internal/servicetest"
)

// TestSimulateAuditScore is the loop a user runs: simulate, audit the
// events with the written config, score the report against the truth.
func TestSimulateAuditScore(t *testing.T) {
	for _, c := range []struct{ name, file string }{
		{"plain", "sim.jsonl"},
		{"gzip-noisy", "sim.jsonl.gz"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			events := filepath.Join(dir, c.file)
			args := []string{"simulate", "--jobs", "600", "--seed", "3", "-o", events,
				"--crash-after-effect", "0.03", "--lost-job", "0.02", "--retry-storm", "0.01", "--dead-letter", "0.02"}
			if c.name == "gzip-noisy" {
				args = append(args, "--noise")
			}
			_, stderr, code := runCLI(t, args...)
			if code != 0 {
				t.Fatalf("simulate exit %d: %s", code, stderr)
			}
			truthPath := filepath.Join(dir, "sim.truth.json")
			cfgPath := filepath.Join(dir, "sim.twice.yaml")
			for _, p := range []string{truthPath, cfgPath} {
				if _, err := os.Stat(p); err != nil {
					t.Fatalf("simulate did not write %s: %v (stderr: %s)", p, err, stderr)
				}
			}
			report := filepath.Join(dir, "report.json")
			if _, stderr, code := runCLI(t, "audit", "--quiet", "--config", cfgPath, "--format", "json", "-o", report, events); code != exitFindings {
				t.Fatalf("audit exit %d, want 1 (findings): %s", code, stderr)
			}
			out, stderr, code := runCLI(t, "simulate", "--score", report, truthPath)
			if code != 0 {
				t.Fatalf("score exit %d:\n%s%s", code, out, stderr)
			}
			if !strings.Contains(out, "nothing else") || !strings.Contains(out, "lost-job") {
				t.Errorf("score output:\n%s", out)
			}

			// A report that lost a finding scores below 1.0: exit 1, and
			// the missing finding is named.
			var rep map[string]any
			data, _ := os.ReadFile(report)
			if err := json.Unmarshal(data, &rep); err != nil {
				t.Fatal(err)
			}
			fs := rep["findings"].([]any)
			dropped := fs[0].(map[string]any)
			rep["findings"] = fs[1:]
			data, _ = json.Marshal(rep)
			wrong := writeFile(t, "wrong.json", string(data))
			out, _, code = runCLI(t, "simulate", "--score", wrong, truthPath)
			if code != exitFindings {
				t.Fatalf("score of a wrong report: exit %d, want 1:\n%s", code, out)
			}
			if !strings.Contains(out, "- missing:    "+dropped["detector"].(string)+" "+dropped["subject"].(string)) {
				t.Errorf("the dropped finding is not named:\n%s", out)
			}
			// --min lowers the bar.
			if out, _, code := runCLI(t, "simulate", "--score", wrong, truthPath, "--min", "0.5"); code != 0 {
				t.Errorf("--min 0.5: exit %d:\n%s", code, out)
			}
		})
	}
}

func TestSimulateSameSeedSameBytesOnStdout(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	a, _, code := runCLI(t, "simulate", "--jobs", "50", "--seed", "9")
	if code != 0 || a == "" {
		t.Fatalf("exit %d, %d bytes", code, len(a))
	}
	b, _, _ := runCLI(t, "simulate", "--jobs", "50", "--seed", "9")
	if a != b {
		t.Fatal("the same seed wrote different streams")
	}
	if _, err := os.Stat(filepath.Join(dir, "simulate.truth.json")); err != nil {
		t.Fatalf("no truth beside: %v", err)
	}
}

func TestSimulateUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"simulate", "--crash-after-effect", "1.5"},
		{"simulate", "--lost-job", "0.6", "--stuck-job", "0.6"},
		{"simulate", "--brokers", "127.0.0.1:9"},
		{"simulate", "--score", "r.json"},
		{"simulate", "--start", "yesterday"},
		{"simulate", "stray"},
	} {
		if _, stderr, code := runCLI(t, args...); code != exitUsage || stderr == "" {
			t.Errorf("%v: exit %d (%q), want 2 with a reason", args, code, stderr)
		}
	}
	truth := writeFile(t, "t.json", `{"version":1,"findings":[]}`)
	if _, stderr, code := runCLI(t, "simulate", "--score", filepath.Join(t.TempDir(), "none.json"), truth); code != exitInput {
		t.Errorf("missing report: exit %d (%s), want 3", code, stderr)
	}
}

// TestSimulateToKafka writes to a real topic; the config simulate writes
// names it as a source, and the audit of the topic scores exactly.
func TestSimulateToKafka(t *testing.T) {
	brokers := servicetest.KafkaBrokers(t)
	topic := servicetest.KafkaTopic(t, brokers, 3)
	dir := t.TempDir()
	t.Chdir(dir)
	_, stderr, code := runCLI(t, "simulate", "--jobs", "300", "--seed", "5", "--noise", "--brokers", strings.Join(brokers, ","), "--topic", topic,
		"--lost-job", "0.03", "--crash-after-effect", "0.03", "--rate", "20000")
	if code != 0 {
		t.Fatalf("simulate exit %d: %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, "audit", "--quiet", "--config", "simulate.twice.yaml", "--format", "json", "-o", "report.json"); code != exitFindings {
		t.Fatalf("audit of the topic: exit %d: %s", code, stderr)
	}
	if out, _, code := runCLI(t, "simulate", "--score", "report.json", "simulate.truth.json"); code != 0 {
		t.Fatalf("score exit %d:\n%s", code, out)
	}
}

// TestPacerHoldsTheRate checks the lower bound the pacer guarantees: n
// lines at r a second take at least (n-1)/r.
func TestPacerHoldsTheRate(t *testing.T) {
	p := newPacer(context.Background(), 500)
	flushes := 0
	flush := func() error { flushes++; return nil }
	start := time.Now()
	for range 51 {
		if err := p.wait(flush); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("51 lines at 500/s took %v, want at least 100ms", el)
	}
	if flushes == 0 {
		t.Error("the pacer waited without flushing the sink first")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := newPacer(ctx, 1).wait(flush); err == nil {
		t.Fatal("a cancelled pacer did not stop")
	}
}
