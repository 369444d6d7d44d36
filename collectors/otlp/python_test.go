package otlp

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twicehq/twice/internal/servicetest"
)

// python is Debian's Python, which has python3-celery.
const python = "/usr/bin/python3"

// otelPython returns the folder scripts/deps.d/otlp.sh installed the
// OpenTelemetry Python packages into; the test is skipped (or fails
// under TWICE_REQUIRE_SERVICES=1) when they or Celery are missing.
func otelPython(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TWICE_OTEL_PYTHON")
	if dir == "" {
		dir, _ = filepath.Abs(filepath.Join("..", "..", ".services", "python", "otel"))
	}
	cmd := exec.Command(python, "-c", "import celery, opentelemetry.sdk, opentelemetry.instrumentation.celery, opentelemetry.exporter.otlp.proto.http")
	cmd.Env = append(os.Environ(), "PYTHONPATH="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		msg := "the OpenTelemetry Python SDK or Celery is missing (" + strings.TrimSpace(string(out)) + "): run scripts/deps.d/celery.sh and scripts/deps.d/otlp.sh"
		if os.Getenv(servicetest.EnvRequire) == "1" {
			t.Fatal(msg)
		}
		t.Skip("skipped: " + msg)
	}
	return dir
}

// TestPythonCeleryInstrumentation: Celery tasks traced by OpenTelemetry's
// own Celery instrumentation and exported by the Python SDK's OTLP/HTTP
// exporter become job events with Celery's task ids and names, and the
// effect spans under them effects of those jobs; a failed charge is a
// failed job and no effect.
func TestPythonCeleryInstrumentation(t *testing.T) {
	dir := otelPython(t)
	s, sc := startStream(t, Config{Listen: "127.0.0.1:0", JobTypeAttr: "celery.task_name"})
	cmd := exec.Command(python, filepath.Join("testdata", "python", "celery_worker.py"), "http://"+s.Addr()+TracesPath)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "exported") {
		t.Fatalf("celery_worker.py: %v\n%s", err, out)
	}
	var got []string
	for _, r := range sc.records() {
		if r.Event == nil {
			t.Fatalf("malformed: %+v", r.Malformed)
		}
		e := r.Event
		got = append(got, strings.TrimSpace(e.Kind.String()+" "+e.JobType+" "+e.JobID+" "+e.Key+" "+e.EffectKey+" "+e.Error))
	}
	slices.Sort(got)
	want := []string{
		"effect  t-1  receipt/payment:1",
		"effect  t-2  receipt/payment:2",
		"effect  t-2  receipt/payment:2",
		"job.failed billing.charge t-4 payment:4  card declined",
		"job.started billing.charge t-4 payment:4",
		"job.started billing.send_receipt t-1 payment:1",
		"job.started billing.send_receipt t-2 payment:2",
		"job.started billing.send_receipt t-3 payment:3",
		"job.succeeded billing.send_receipt t-1 payment:1",
		"job.succeeded billing.send_receipt t-2 payment:2",
		"job.succeeded billing.send_receipt t-3 payment:3",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events:\n%s\nwant:\n%s\npython said:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), out)
	}
	if n := s.Spans()[OutcomeFailed]; n != 1 {
		t.Fatalf("failed effects %d, want the declined charge", n)
	}
}
