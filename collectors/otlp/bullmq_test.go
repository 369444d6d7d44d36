package otlp_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twicehq/twice/internal/servicetest"
	"github.com/twicehq/twice/internal/watchtest"
)

// otelNode returns the folder scripts/deps.d/otlp.sh installed bullmq,
// bullmq-otel and the OpenTelemetry Node SDK into; the test is skipped
// (or fails under TWICE_REQUIRE_SERVICES=1) when they or node are
// missing.
func otelNode(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TWICE_OTEL_NODE")
	if dir == "" {
		dir, _ = filepath.Abs(filepath.Join("..", "..", ".services", "node", "otlp-bullmq"))
	}
	_, errPkg := os.Stat(filepath.Join(dir, "node_modules", "bullmq-otel", "package.json"))
	_, errNode := exec.LookPath("node")
	if errPkg != nil || errNode != nil {
		msg := "bullmq-otel is not installed in " + dir + " (or node is missing): run scripts/deps.d/bullmq.sh and scripts/deps.d/otlp.sh"
		if os.Getenv(servicetest.EnvRequire) == "1" {
			t.Fatal(msg)
		}
		t.Skip("skipped: " + msg)
	}
	return dir
}

// TestWatchBullMQTracedByItsOwnOpenTelemetry runs a real BullMQ worker on
// a real Redis, traced by BullMQ's own OpenTelemetry support
// (bullmq-otel) and exported by the OpenTelemetry Node SDK to twice
// watch's otlp source — no queue tap. One job's handler sends its
// receipt and then fails (the crash window); BullMQ retries it and the
// retry sends the receipt again. From the traces alone twice reports the
// duplicate receipt, caused by the redelivery of that job, and the crash
// window — and nothing about the job that ran once.
func TestWatchBullMQTracedByItsOwnOpenTelemetry(t *testing.T) {
	modules := otelNode(t)
	space := servicetest.Redis(t)
	bin := watchtest.Build(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "twice.yaml")
	// BullMQ's spans name the job bullmq.job.id and bullmq.job.name, the
	// queue bullmq.queue.name, the attempts made at the end of the
	// attempt bullmq.job.attempts.made, and a failed attempt by the
	// span event "job failed" (the status stays unset).
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
sources:
  - name: traces
    type: otlp
    listen: "127.0.0.1:0"
    job_attr: bullmq.job.id
    job_type_attr: bullmq.job.name
    queue_attr: bullmq.queue.name
    attempt_attr: bullmq.job.attempts.made
    failed_events: ["job failed"]
watch:
  state_dir: %s
  listen: "127.0.0.1:0"
  checkpoint_interval: 50ms
  idle_timeout: 300ms
`, filepath.Join(dir, "state"))), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "watch.log")
	w := watchtest.Start(t, bin, cfg, logPath, 1)
	addr := otlpAddr(t, w, logPath, 0)

	jobs, _ := json.Marshal([]map[string]any{
		{"id": "r-1", "name": "SendReceipt", "payment": "payment:1"},
		{"id": "r-2", "name": "SendReceipt", "payment": "payment:2", "crash": true},
	})
	cmd := exec.Command("node", filepath.Join("testdata", "bullmq", "worker.mjs"))
	cmd.Env = append(os.Environ(), "REDIS_URL="+space.URL, "BULLMQ_PREFIX="+space.Prefix, "BULLMQ_QUEUE=receipts",
		"OTLP_URL=http://"+addr+"/v1/traces", "JOBS="+string(jobs), "MODULES="+modules)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `{"exported":`) {
		t.Fatalf("worker.mjs: %v\n%s", err, out)
	}
	var page watchtest.Page
	want := []string{
		"duplicate-effect receipt/payment:2 cause=redelivery jobs=r-2",
		"effect-before-failure r-2 cause= jobs=r-2",
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("worker: %s\nlast findings %q, summary %+v", out, page.Keys(nil), page.Summary)
		}
	})
	w.WaitFor(t, "the findings", func() bool {
		page = w.Findings()
		return slices.Equal(page.Keys(nil), want)
	})
	// Job events: r-1 started and succeeded; r-2 started, failed,
	// started again and succeeded; and 3 receipts. BullMQ's other spans
	// (add, retry, complete, close…) are neither jobs nor effects.
	if page.Summary.Events != 9 || page.Summary.Malformed != 0 {
		t.Fatalf("summary %+v, want 9 events, nothing malformed", page.Summary)
	}
	for _, f := range page.Findings {
		if f.JobType != "SendReceipt" || f.Queue != "receipts" {
			t.Errorf("finding %s %s: job_type %q queue %q, want SendReceipt on receipts", f.Detector, f.Subject, f.JobType, f.Queue)
		}
	}
	w.Stop(t)
}
