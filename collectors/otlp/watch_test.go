package otlp_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/twicehq/twice/internal/watchtest"
)

func TestMain(m *testing.M) { os.Exit(watchtest.Main(m)) }

// otlpAddr returns the address the otlp source of the watch started at
// log offset from listens on.
func otlpAddr(t *testing.T, w *watchtest.Proc, logPath string, from int) string {
	t.Helper()
	re := regexp.MustCompile(`source traces: listening on http://(\S+)`)
	var addr string
	w.WaitFor(t, "the otlp source to listen", func() bool {
		raw, _ := os.ReadFile(logPath)
		if m := re.FindSubmatch(raw[min(from, len(raw)):]); m != nil {
			addr = string(m[1])
		}
		return addr != ""
	})
	return addr
}

// worker is an instrumented worker: each job is a consumer span (the
// message id is the job id) and each receipt it sends a client span
// that names its effect, at the times given.
type worker struct {
	tr trace.Tracer
	t0 time.Time
}

func (wk worker) job(id, key string, start, end time.Duration, receipts ...time.Duration) {
	ctx, job := wk.tr.Start(context.Background(), "SendReceipt process", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithTimestamp(wk.t0.Add(start)),
		trace.WithAttributes(
			attribute.String("messaging.system", "rabbitmq"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.message.id", id),
			attribute.String("messaging.destination.name", "emails"),
			attribute.String("twice.job_type", "SendReceipt"),
			attribute.String("twice.key", key),
			attribute.Int("twice.attempt", 1)))
	for _, at := range receipts {
		_, send := wk.tr.Start(ctx, "smtp send", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(wk.t0.Add(at)),
			trace.WithAttributes(attribute.String("twice.effect", "email.sent"), attribute.String("twice.effect_key", "receipt/"+key)))
		send.End(trace.WithTimestamp(wk.t0.Add(at + 100*time.Millisecond)))
	}
	job.End(trace.WithTimestamp(wk.t0.Add(end)))
}

// TestWatchSDKExporterAcrossSIGKILL: a worker instrumented with the
// OpenTelemetry Go SDK exports its traces to `twice watch` with the
// SDK's OTLP/HTTP exporter. One job sends its receipt twice (a
// duplicate effect), one sends none (a missing effect). The watch is
// SIGKILLed after an export was acknowledged; after the restart the
// exporter sends that batch again (a retry: the same spans), which is
// counted once, never as a finding.
func TestWatchSDKExporterAcrossSIGKILL(t *testing.T) {
	bin := watchtest.Build(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "twice.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
sources:
  - {name: traces, type: otlp, listen: "127.0.0.1:0"}
expect:
  - {job_type: SendReceipt, effect: email.sent, effect_key: "receipt/{{key}}", within: 1m}
watch:
  state_dir: %s
  listen: "127.0.0.1:0"
  checkpoint_interval: 50ms
  idle_timeout: 300ms
`, filepath.Join(dir, "state"))), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "watch.log")
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Second).Add(-10 * time.Second)

	// Batch A, recorded so that it can be sent again as it was: j-1
	// sends its receipt, j-2's handler sends its receipt twice.
	rec := tracetest.NewSpanRecorder()
	wk := worker{tr: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("worker"), t0: t0}
	wk.job("j-1", "payment:1", 0, time.Second, 500*time.Millisecond)
	wk.job("j-2", "payment:2", time.Second, 3*time.Second, 1500*time.Millisecond, 2500*time.Millisecond)
	batchA := rec.Ended()

	w := watchtest.Start(t, bin, cfg, logPath, 1)
	addr := otlpAddr(t, w, logPath, 0)
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(addr), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.ExportSpans(ctx, batchA); err != nil {
		t.Fatalf("export of batch A: %v", err)
	}
	_ = exp.Shutdown(ctx)
	w.Kill()

	from := int(fileSize(logPath))
	w = watchtest.Start(t, bin, cfg, logPath, 1)
	addr = otlpAddr(t, w, logPath, from)
	// The acknowledged export was durable: 4 job events, 3 receipts.
	if got := w.Findings().Summary.Events; got != 7 {
		t.Fatalf("after the restart: %d events, want the 7 acknowledged before SIGKILL", got)
	}
	exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(addr), otlptracehttp.WithInsecure(),
		otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	// The exporter did not trust its answer and sends batch A again.
	began := time.Now()
	if err := exp.ExportSpans(ctx, batchA); err != nil {
		t.Fatalf("retry of batch A: %v", err)
	}
	t.Logf("an export of %d spans was answered, durable, in %v", len(batchA), time.Since(began).Round(time.Millisecond))
	// Batch B through the SDK's batch span processor, as an app runs it:
	// j-3 succeeds without a receipt; j-4, two minutes later, sends its
	// receipt (and moves event time past j-3's deadline); a span that
	// names an effect without its key is malformed.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	wk = worker{tr: tp.Tracer("worker"), t0: t0}
	wk.job("j-3", "payment:3", 4*time.Second, 5*time.Second)
	wk.job("j-4", "payment:4", 2*time.Minute, 2*time.Minute+time.Second, 2*time.Minute+500*time.Millisecond)
	_, bad := wk.tr.Start(ctx, "smtp send", trace.WithTimestamp(t0.Add(6*time.Second)), trace.WithAttributes(attribute.String("twice.effect", "email.sent")))
	bad.End(trace.WithTimestamp(t0.Add(6 * time.Second)))
	// The exporter is answered with a partial success naming the span,
	// which the SDK returns as an error; the rest of the batch is taken.
	if err := tp.ForceFlush(ctx); err == nil || !strings.Contains(err.Error(), "OTLP partial success") ||
		!strings.Contains(err.Error(), "no twice.effect_key attribute") || !strings.Contains(err.Error(), "1 spans rejected") {
		t.Fatalf("flush of batch B: %v, want the partial success of 1 rejected span", err)
	}
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	want := []string{
		"duplicate-effect receipt/payment:2 cause=redelivery jobs=j-2",
		"missing-effect j-3 cause= jobs=j-3",
	}
	w.WaitFor(t, "the findings", func() bool { return slices.Equal(w.Findings().Keys(nil), want) })
	page := w.Findings()
	// Batch A: 7 events, sent twice; batch B: j-3's 2 job events, j-4's
	// 2 and its receipt, and 1 malformed span.
	if page.Summary.Events != 12 || page.Summary.RepeatedIDs != 7 || page.Summary.Malformed != 1 {
		t.Fatalf("summary %+v, want 12 events, 7 repeated ids, 1 malformed", page.Summary)
	}
	m := w.Metrics()
	// This run answered two requests, batch A again and batch B, each
	// once durable.
	if m["twice_push_requests_total"] != 2 || m["twice_push_pending_records"] != 0 {
		t.Fatalf("push metrics: requests %v, pending %v", m["twice_push_requests_total"], m["twice_push_pending_records"])
	}
	// Spans this run: batch A's 2 jobs and 3 receipts, batch B's 2 jobs,
	// 1 receipt and 1 malformed span.
	if m["twice_otlp_spans_total"] != 9 {
		t.Fatalf("twice_otlp_spans_total %v, want 9", m["twice_otlp_spans_total"])
	}
	w.Stop(t)
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
