package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"github.com/twicehq/twice/collectors/push"
	"github.com/twicehq/twice/collectors/push/pushtest"
	"github.com/twicehq/twice/config"
	"google.golang.org/grpc/credentials"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/twicehq/twice/sources"
)

// sidecar plays twice watch for a stream: it polls, and commits what it
// polled while commit is set.
type sidecar struct {
	s      *Stream
	commit atomic.Bool
	mu     sync.Mutex
	recs   []sources.Record
	stop   chan struct{}
	done   chan struct{}
}

func startStream(t *testing.T, cfg Config) (*Stream, *sidecar) {
	t.Helper()
	s, err := NewStream("traces", cfg, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	sc := &sidecar{s: s, stop: make(chan struct{}), done: make(chan struct{})}
	sc.commit.Store(true)
	go func() {
		defer close(sc.done)
		var last sources.Position
		for {
			select {
			case <-sc.stop:
				return
			default:
			}
			recs, _ := s.Poll(ctx, 20*time.Millisecond)
			sc.mu.Lock()
			sc.recs = append(sc.recs, recs...)
			sc.mu.Unlock()
			if len(recs) > 0 {
				last = recs[len(recs)-1].Position
			}
			if last != "" && sc.commit.Load() {
				_ = s.Commit(ctx, map[string]sources.Position{"traces": last})
			}
		}
	}()
	t.Cleanup(func() {
		close(sc.stop)
		<-sc.done
		_ = s.Shutdown(context.Background())
	})
	return s, sc
}

func (sc *sidecar) records() []sources.Record {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return slices.Clone(sc.recs)
}

// emit runs a job through the OpenTelemetry SDK: a consumer span for
// message j-7, with a child span that sends a receipt (an effect) and
// one that fails to (status ERROR). It returns the ended spans.
func emit(t *testing.T) []sdktrace.ReadOnlySpan {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tr := tp.Tracer("worker")
	ctx, job := tr.Start(context.Background(), "SendReceipt process", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("messaging.operation.type", "process"), attribute.String("messaging.message.id", "j-7"),
			attribute.String("twice.job_type", "SendReceipt"), attribute.Int("twice.attempt", 1)))
	_, send := tr.Start(ctx, "smtp send", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("twice.effect", "email.sent"), attribute.String("twice.effect_key", "receipt/payment:7")))
	send.End()
	_, bad := tr.Start(ctx, "charge", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("twice.effect", "payment.charged"), attribute.String("twice.effect_key", "charge/payment:7")))
	bad.SetStatus(codes.Error, "declined")
	bad.End()
	job.End()
	return rec.Ended()
}

// kinds lists "KIND JOB EFFECT_KEY" of the event records.
func kinds(recs []sources.Record) []string {
	var out []string
	for _, r := range recs {
		if r.Event != nil {
			out = append(out, r.Event.Kind.String()+" "+r.Event.JobID+" "+r.Event.EffectKey)
		}
	}
	return out
}

var wantJob7 = []string{"job.started j-7 ", "effect j-7 receipt/payment:7", "job.succeeded j-7 "}

// TestSDKExporters sends the same job with the OpenTelemetry Go SDK's
// OTLP exporters: HTTP protobuf gzipped, HTTP JSON, and gRPC. Each
// export returns only once its records are committed, and each gives
// the same events with the same ids.
func TestSDKExporters(t *testing.T) {
	s, sc := startStream(t, Config{Listen: "127.0.0.1:0", GRPCListen: "127.0.0.1:0"})
	spans := emit(t)
	ctx := context.Background()
	httpProto, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(s.Addr()), otlptracehttp.WithInsecure(),
		otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	httpJSON, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(s.Addr()), otlptracehttp.WithInsecure(),
		otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
	if err != nil {
		t.Fatal(err)
	}
	grpcExp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.GRPCAddr()), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithCompressor("gzip"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i, exp := range []sdktrace.SpanExporter{httpProto, httpJSON, grpcExp} {
		before := len(sc.records())
		if err := exp.ExportSpans(ctx, spans); err != nil {
			t.Fatalf("exporter %d: %v", i, err)
		}
		if st := s.Stats(); st.Pending != 0 {
			t.Fatalf("exporter %d returned with %d records not durable", i, st.Pending)
		}
		got := sc.records()[before:]
		if k := kinds(got); !slices.Equal(k, wantJob7) {
			t.Fatalf("exporter %d: %q, want %q", i, k, wantJob7)
		}
		var these []string
		for _, r := range got {
			these = append(these, r.Event.ID)
		}
		if ids == nil {
			ids = these
		} else if !slices.Equal(these, ids) {
			t.Fatalf("exporter %d ids %q, want the same as the first: %q", i, these, ids)
		}
		_ = exp.Shutdown(ctx)
	}
	if !strings.HasPrefix(ids[0], "otlp:") {
		t.Fatalf("id %q", ids[0])
	}
	if got := s.Spans(); got[OutcomeEffect] != 3 || got[OutcomeJob] != 3 || got[OutcomeFailed] != 3 {
		t.Fatalf("spans %v", got)
	}
	if got := s.Stats().Requests; got["accepted"] != 3 {
		t.Fatalf("requests %v", got)
	}
}

func post(t *testing.T, url, ct, enc string, body []byte, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if enc != "" {
		req.Header.Set("Content-Encoding", enc)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

// TestHTTPAnswers: partial success for malformed spans (JSON in, JSON
// out), 503 with Retry-After while records wait and max_pending is
// reached, and the refusals, each with a google.rpc.Status body.
func TestHTTPAnswers(t *testing.T) {
	s, sc := startStream(t, Config{Listen: "127.0.0.1:0", Token: tokenOf("s3cret"), MaxPending: 3})
	url := "http://" + s.Addr() + TracesPath
	auth := []string{"Authorization", "Bearer s3cret"}

	body := `{"resourceSpans":[{"scopeSpans":[{"spans":[
	  {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"0000000000000001","name":"send","endTimeUnixNano":"1764583200000000000",
	   "attributes":[{"key":"twice.effect","value":{"stringValue":"email.sent"}},{"key":"twice.effect_key","value":{"stringValue":"k-1"}}]},
	  {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"0000000000000002","name":"send","endTimeUnixNano":"1764583200000000000",
	   "attributes":[{"key":"twice.effect","value":{"stringValue":"email.sent"}}]}]}]}]}`
	resp, b := post(t, url, "application/json", "", []byte(body), auth...)
	var er coltracepb.ExportTraceServiceResponse
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || protojson.Unmarshal(b, &er) != nil {
		t.Fatalf("%d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	if ps := er.GetPartialSuccess(); ps.GetRejectedSpans() != 1 || !strings.Contains(ps.GetErrorMessage(), "no twice.effect_key attribute") {
		t.Fatalf("partial success %v", ps)
	}
	if recs := sc.records(); len(recs) != 2 || recs[0].Event == nil || recs[1].Malformed == nil {
		t.Fatalf("records %+v", recs)
	}

	// Full: the sidecar stops committing; 2 records wait, 2 more do not
	// fit in 3.
	sc.commit.Store(false)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(strings.ReplaceAll(body, "0000000000000002", "0000000000000003")))
	zw.Close()
	waiting := make(chan int, 1)
	go func() {
		resp, _ := post(t, url, "application/json", "gzip", gz.Bytes(), auth...)
		waiting <- resp.StatusCode
	}()
	deadline := time.Now().Add(5 * time.Second)
	for s.Pending() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("pending %d, want 2", s.Pending())
		}
		time.Sleep(5 * time.Millisecond) // polling a condition the stream reports
	}
	resp, b = post(t, url, "application/json", "", []byte(body), auth...)
	var st status.Status
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || protojson.Unmarshal(b, &st) != nil || !strings.Contains(st.GetMessage(), "retry later") {
		t.Fatalf("full: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	sc.commit.Store(true)
	if code := <-waiting; code != 200 {
		t.Fatalf("the waiting export got %d once committed", code)
	}

	for _, tc := range []struct {
		name, path, ct, enc string
		body                []byte
		hdr                 []string
		code                int
	}{
		{"no token", TracesPath, "application/x-protobuf", "", nil, nil, 401},
		{"wrong token", TracesPath, "application/x-protobuf", "", nil, []string{"Authorization", "Bearer nope"}, 401},
		{"metrics path", "/v1/metrics", "application/x-protobuf", "", nil, auth, 404},
		{"text", TracesPath, "text/plain", "", []byte("hi"), auth, 415},
		{"brotli", TracesPath, "application/x-protobuf", "br", []byte("hi"), auth, 415},
		{"bad gzip", TracesPath, "application/x-protobuf", "gzip", []byte("not gzip"), auth, 400},
		{"bad protobuf", TracesPath, "application/x-protobuf", "", []byte("\xff\xff\xff"), auth, 400},
		{"bad json", TracesPath, "application/json", "", []byte("{"), auth, 400},
	} {
		resp, b := post(t, "http://"+s.Addr()+tc.path, tc.ct, tc.enc, tc.body, tc.hdr...)
		var st status.Status
		if resp.StatusCode != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, resp.StatusCode, b, tc.code)
		} else if tc.ct != "application/json" && (proto.Unmarshal(b, &st) != nil || st.GetMessage() == "") {
			t.Errorf("%s: body %q is not a google.rpc.Status", tc.name, b)
		}
	}
	// Larger than max_body_bytes once decompressed.
	small, sc2 := startStream(t, Config{Listen: "127.0.0.1:0", MaxBodyBytes: 100})
	gz.Reset()
	zw = gzip.NewWriter(&gz)
	_, _ = zw.Write(bytes.Repeat([]byte(" "), 1000))
	zw.Close()
	if resp, b := post(t, "http://"+small.Addr()+TracesPath, "application/json", "gzip", gz.Bytes()); resp.StatusCode != 413 {
		t.Fatalf("a gzip bomb: %d %s", resp.StatusCode, b)
	}
	_ = sc2
	got := s.Stats().Requests
	want := map[string]int64{"partly_rejected": 2, "full": 1, "unauthorized": 2, "not_found": 1, "unsupported": 2, "bad_body": 1, "invalid": 2}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("requests %v, want %v", got, want)
			break
		}
	}
}

func tokenOf(v string) config.Secret { return config.Secret{Value: v} }

// TestGRPCToken: over gRPC the token travels as authorization metadata;
// without it the export is refused with Unauthenticated and nothing is
// recorded.
func TestGRPCToken(t *testing.T) {
	s, sc := startStream(t, Config{Listen: "127.0.0.1:0", GRPCListen: "127.0.0.1:0", Token: tokenOf("s3cret")})
	ctx := context.Background()
	spans := emit(t)
	noToken, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.GRPCAddr()), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	defer noToken.Shutdown(ctx)
	if err := noToken.ExportSpans(ctx, spans); err == nil || !strings.Contains(err.Error(), "Unauthenticated") {
		t.Fatalf("export without the token: %v, want Unauthenticated", err)
	}
	withToken, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.GRPCAddr()), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithHeaders(map[string]string{"Authorization": "Bearer s3cret"}))
	if err != nil {
		t.Fatal(err)
	}
	defer withToken.Shutdown(ctx)
	if err := withToken.ExportSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}
	if k := kinds(sc.records()); !slices.Equal(k, wantJob7) {
		t.Fatalf("records %q, want only the export with the token: %q", k, wantJob7)
	}
	if got := s.Stats().Requests; got["unauthorized"] != 1 || got["accepted"] != 1 {
		t.Fatalf("requests %v", got)
	}
}

// TestGRPCFull: while max_pending records wait, a gRPC export is refused
// with Unavailable, which exporters retry.
func TestGRPCFull(t *testing.T) {
	s, sc := startStream(t, Config{Listen: "127.0.0.1:0", GRPCListen: "127.0.0.1:0", MaxPending: 4})
	sc.commit.Store(false)
	ctx := context.Background()
	spans := emit(t)
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.GRPCAddr()), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Shutdown(ctx)
	first := make(chan error, 1)
	go func() { first <- exp.ExportSpans(ctx, spans) }()
	deadline := time.Now().Add(5 * time.Second)
	for s.Pending() != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("pending %d, want 3", s.Pending())
		}
		time.Sleep(5 * time.Millisecond) // polling a condition the stream reports
	}
	if err := exp.ExportSpans(ctx, spans); err == nil || !strings.Contains(err.Error(), "Unavailable") {
		t.Fatalf("export while full: %v, want Unavailable", err)
	}
	sc.commit.Store(true)
	if err := <-first; err != nil {
		t.Fatalf("the waiting export, once committed: %v", err)
	}
	if got := s.Stats().Requests; got["full"] != 1 || got["accepted"] != 1 {
		t.Fatalf("requests %v", got)
	}
}

// With tls both listeners serve TLS: the SDK's HTTP and gRPC exporters,
// trusting the source's certificate, deliver the job; a plain-text
// exporter gets nothing through.
func TestSDKExportersOverTLS(t *testing.T) {
	cert := pushtest.SelfSigned(t)
	s, sc := startStream(t, Config{Listen: "127.0.0.1:0", GRPCListen: "127.0.0.1:0",
		TLS: &push.TLSFiles{CertFile: cert.CertFile, KeyFile: cert.KeyFile}})
	spans := emit(t)
	ctx := context.Background()
	tlsConf := &tls.Config{RootCAs: cert.Pool}
	httpExp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(s.Addr()), otlptracehttp.WithTLSClientConfig(tlsConf))
	if err != nil {
		t.Fatal(err)
	}
	grpcExp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.GRPCAddr()),
		otlptracegrpc.WithTLSCredentials(credentials.NewTLS(tlsConf)))
	if err != nil {
		t.Fatal(err)
	}
	for i, exp := range []sdktrace.SpanExporter{httpExp, grpcExp} {
		before := len(sc.records())
		if err := exp.ExportSpans(ctx, spans); err != nil {
			t.Fatalf("TLS exporter %d: %v", i, err)
		}
		if k := kinds(sc.records()[before:]); !slices.Equal(k, wantJob7) {
			t.Fatalf("TLS exporter %d: %q, want %q", i, k, wantJob7)
		}
		_ = exp.Shutdown(ctx)
	}
	plain, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(s.Addr()), otlptracehttp.WithInsecure(),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	before := len(sc.records())
	if err := plain.ExportSpans(ctx, spans); err == nil {
		t.Error("a plain-text export to the TLS listener succeeded")
	}
	if n := len(sc.records()) - before; n != 0 {
		t.Errorf("a plain-text export gave %d records", n)
	}
}
