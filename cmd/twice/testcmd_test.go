package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestTestExampleScenariosPass(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/twice-test/*.test.yaml")
	if len(files) == 0 {
		t.Fatal("no example scenario files")
	}
	out, stderr, code := runCLI(t, append([]string{"test"}, files...)...)
	if code != 0 {
		t.Fatalf("exit %d:\n%s%s", code, out, stderr)
	}
	if !strings.Contains(out, "4 scenarios: 4 passed, 0 failed") || !strings.Contains(out, "  PASS  a crash after the send repeats the receipt") {
		t.Errorf("output:\n%s", out)
	}
}

const crashScenario = `scenarios:
  - name: crash
    events: |
      {"ts":"2026-11-24T10:00:00Z","kind":"job.enqueued","queue":"emails","job_type":"SendReceipt","job_id":"j-1","key":"payment:1"}
      {"ts":"2026-11-24T10:00:01Z","kind":"job.started","job_id":"j-1","attempt":1}
      {"ts":"2026-11-24T10:00:02Z","kind":"effect","effect":"email.sent","effect_key":"receipt/payment:1","job_id":"j-1"}
      {"ts":"2026-11-24T10:00:40Z","kind":"job.started","job_id":"j-1","attempt":2}
      {"ts":"2026-11-24T10:00:41Z","kind":"effect","effect":"email.sent","effect_key":"receipt/payment:1","job_id":"j-1"}
      {"ts":"2026-11-24T10:00:42Z","kind":"job.succeeded","job_id":"j-1","attempt":2}
    findings:
`

func TestTestFailingScenarioShowsTheDiff(t *testing.T) {
	p := writeFile(t, "crash.test.yaml", crashScenario+`      - {detector: duplicate-effect, subject: "receipt/payment:1", cause: duplicate-enqueue}
      - {detector: lost-job, subject: j-1}
    no_other_findings: true
`)
	out, _, code := runCLI(t, "test", p)
	if code != exitFindings {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	for _, want := range []string{
		"  FAIL  crash (line 2)",
		"- missing:    lost-job j-1",
		"~ different:  duplicate-effect receipt/payment:1 (cause duplicate-enqueue), got duplicate-effect receipt/payment:1 (severity high, cause redelivery, count 2)",
		"+ unexpected: effect-before-failure j-1",
		"1 scenarios: 0 passed, 1 failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// Without no_other_findings, an unlisted finding is no failure.
	p = writeFile(t, "crash.test.yaml", crashScenario+`      - {detector: duplicate-effect, subject: "receipt/payment:1", severity: high}
`)
	if out, _, code := runCLI(t, "test", p); code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
}

func TestTestBadScenarioFiles(t *testing.T) {
	for _, c := range []struct{ name, body, want string }{
		{"unknown key", "scenarios:\n  - name: x\n    event: |\n      {}\n", ":3: scenario 1: unknown key \"event\""},
		{"unknown detector", "scenarios:\n  - events: \"\"\n    findings:\n      - {detector: twice-run, subject: x}\n", ":4: finding: unknown detector \"twice-run\""},
		{"bad severity", "scenarios:\n  - events: \"\"\n    findings:\n      - {detector: lost-job, subject: x, severity: huge}\n", ":4: finding: severity \"huge\""},
		{"no events", "scenarios:\n  - name: empty\n    findings: []\n", ":2: empty: no events"},
		{"missing input", "scenarios:\n  - input: nowhere.jsonl\n", ":2: input:"},
		{"bad inline config", "scenarios:\n  - events: \"\"\n    config:\n      detectors:\n        lost-job: {lost_after: soon}\n", ":5"},
		{"not YAML", "scenarios: [\n", "bad.test.yaml"},
		{"no scenarios", "config: {}\n", "want a list of scenarios"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, "bad.test.yaml", c.body)
			out, stderr, code := runCLI(t, "test", p)
			if code != exitUsage {
				t.Fatalf("exit %d, want 2:\n%s%s", code, out, stderr)
			}
			if !strings.Contains(stderr, p) || !strings.Contains(stderr, c.want) {
				t.Errorf("stderr %q lacks the file and %q", stderr, c.want)
			}
		})
	}
}
