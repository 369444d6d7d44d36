package otlp

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/twicehq/twice/sources"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func ns(d time.Duration) uint64 { return uint64(t0.Add(d).UnixNano()) }

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func num(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

func strs(k string, vs ...string) *commonpb.KeyValue {
	arr := &commonpb.ArrayValue{}
	for _, v := range vs {
		arr.Values = append(arr.Values, &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}})
	}
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: arr}}}
}

func id(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	traceA = "5b8efff798038103d269b633813fc60c"
	traceB = "5b8efff798038103d269b633813fc60d"
)

// request is one export request: a worker's trace of a job that sends
// a receipt (an effect span under the consumer span), calls a partner
// through a span matched by name, fails to charge (status ERROR), and a
// second trace with an effect span missing its key, a consumer span
// without a message id and a plain span.
func request(t testing.TB) *coltracepb.ExportTraceServiceRequest {
	span := func(trace, sid, parent, name string, kind tracepb.Span_SpanKind, start, end time.Duration, attrs ...*commonpb.KeyValue) *tracepb.Span {
		sp := &tracepb.Span{TraceId: id(t, trace), SpanId: id(t, sid), Name: name, Kind: kind,
			StartTimeUnixNano: ns(start), EndTimeUnixNano: ns(end), Attributes: attrs}
		if parent != "" {
			sp.ParentSpanId = id(t, parent)
		}
		return sp
	}
	job := span(traceA, "0000000000000001", "", "SendReceipt process", tracepb.Span_SPAN_KIND_CONSUMER, 0, 5*time.Second,
		str("messaging.system", "rabbitmq"), str("messaging.operation.type", "process"), str("messaging.message.id", "j-1"),
		str("messaging.destination.name", "emails"), str("twice.job_type", "SendReceipt"), num("twice.attempt", 2), str("twice.key", "payment:1"))
	inner := span(traceA, "0000000000000002", "0000000000000001", "render", tracepb.Span_SPAN_KIND_INTERNAL, time.Second, 2*time.Second)
	email := span(traceA, "0000000000000003", "0000000000000002", "send receipt", tracepb.Span_SPAN_KIND_CLIENT, 2*time.Second, 3*time.Second,
		str("twice.effect", "email.sent"), str("twice.effect_key", "receipt/payment:1"), str("messaging.destination.name", "smtp"))
	notify := span(traceA, "0000000000000004", "0000000000000001", "POST /notify", tracepb.Span_SPAN_KIND_CLIENT, 3*time.Second, 4*time.Second,
		num("partner.request_id", 42))
	charge := span(traceA, "0000000000000005", "0000000000000001", "charge", tracepb.Span_SPAN_KIND_CLIENT, 4*time.Second, 4500*time.Millisecond,
		str("twice.effect", "payment.charged"), str("twice.effect_key", "charge/payment:1"))
	charge.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "card declined"}
	nokey := span(traceB, "0000000000000006", "", "send", tracepb.Span_SPAN_KIND_CLIENT, 0, time.Second, str("twice.effect", "email.sent"))
	consumer := span(traceB, "0000000000000007", "", "orders receive", tracepb.Span_SPAN_KIND_CONSUMER, 0, time.Second)
	receive := span(traceB, "0000000000000008", "", "orders receive", tracepb.Span_SPAN_KIND_CONSUMER, 0, time.Second, str("messaging.operation", "receive"))
	plain := span(traceB, "0000000000000009", "", "SELECT", tracepb.Span_SPAN_KIND_CLIENT, 0, time.Second)
	// A failed job, with its own id by twice.job_id, the effect it made
	// before it failed linked to it by an explicit twice.job_id.
	failed := span(traceB, "000000000000000a", "", "process", tracepb.Span_SPAN_KIND_SERVER, 0, 2*time.Second,
		str("messaging.operation.type", "process"), str("twice.job_id", "j-2"), str("messaging.message.id", "m-2"))
	failed.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "timeout"}
	early := span(traceB, "000000000000000b", "", "send", tracepb.Span_SPAN_KIND_CLIENT, 0, time.Second,
		str("twice.effect", "email.sent"), str("twice.effect_key", "receipt/payment:2"), str("twice.job_id", "j-2"), num("twice.attempt", 1))
	res := &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "billing-worker")}}
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		{Resource: res, ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{email, inner, notify, charge, job}}}},
		{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{nokey, consumer, receive, plain, failed, early}}}},
	}}
}

func testMapper() *mapper {
	cfg := &Config{
		Match: []Rule{{Span: "POST /*", Effect: "webhook.delivered", KeyAttr: "partner.request_id"}},
		Attrs: map[string]string{"service": "service.name", "to": "messaging.destination.name"},
	}
	return &mapper{source: "traces", cfg: cfg}
}

// describe renders the records of a mapping, one line each.
func describe(recs []sources.Record) []string {
	var out []string
	for _, r := range recs {
		switch {
		case r.Malformed != nil:
			out = append(out, "malformed: "+r.Malformed.Reason)
		case r.Event != nil:
			e := r.Event
			line := fmt.Sprintf("%s %s %s", e.ID, e.Kind, time.Unix(0, e.Time).UTC().Format("15:04:05.000"))
			for _, f := range [][2]string{{"queue", e.Queue}, {"job_type", e.JobType}, {"job", e.JobID}, {"key", e.Key},
				{"effect", e.Effect}, {"effect_key", e.EffectKey}, {"error", e.Error}} {
				if f[1] != "" {
					line += " " + f[0] + "=" + f[1]
				}
			}
			if e.HasAttempt {
				line += fmt.Sprintf(" attempt=%d", e.Attempt)
			}
			if e.Attrs != nil {
				line += " attrs=" + string(e.Attrs)
			}
			out = append(out, line)
		}
	}
	return out
}

var wantRecords = []string{
	`otlp:5b8efff798038103d269b633813fc60c:0000000000000001:started job.started 10:00:00.000 queue=emails job_type=SendReceipt job=j-1 key=payment:1 attempt=2`,
	`otlp:5b8efff798038103d269b633813fc60d:000000000000000a:started job.started 10:00:00.000 job_type=process job=j-2`,
	`otlp:5b8efff798038103d269b633813fc60d:000000000000000b effect 10:00:01.000 job=j-2 effect=email.sent effect_key=receipt/payment:2 attempt=1 attrs={"span_id":"000000000000000b","trace_id":"5b8efff798038103d269b633813fc60d"}`,
	`otlp:5b8efff798038103d269b633813fc60d:000000000000000a:failed job.failed 10:00:02.000 job_type=process job=j-2 error=timeout`,
	`otlp:5b8efff798038103d269b633813fc60c:0000000000000003 effect 10:00:03.000 job=j-1 effect=email.sent effect_key=receipt/payment:1 attempt=2 attrs={"service":"billing-worker","span_id":"0000000000000003","to":"smtp","trace_id":"5b8efff798038103d269b633813fc60c"}`,
	`otlp:5b8efff798038103d269b633813fc60c:0000000000000004 effect 10:00:04.000 job=j-1 effect=webhook.delivered effect_key=42 attempt=2 attrs={"service":"billing-worker","span_id":"0000000000000004","trace_id":"5b8efff798038103d269b633813fc60c"}`,
	`otlp:5b8efff798038103d269b633813fc60c:0000000000000001:succeeded job.succeeded 10:00:05.000 queue=emails job_type=SendReceipt job=j-1 key=payment:1 attempt=2`,
	`malformed: span "send": effect email.sent: no twice.effect_key attribute (a string or number, or an array of one) for its effect_key`,
	`malformed: span "orders receive": job span: no twice.job_id or messaging.message.id attribute for its job_id`,
}

func checkMapped(t *testing.T, m Mapped) {
	t.Helper()
	got := describe(m.Records)
	if !slices.Equal(got, wantRecords) {
		t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantRecords, "\n"))
	}
	wantSpans := map[string]int{OutcomeEffect: 3, OutcomeJob: 2, OutcomeFailed: 1, OutcomeIgnored: 3, OutcomeMalformed: 2}
	if fmt.Sprint(m.Spans) != fmt.Sprint(wantSpans) {
		t.Errorf("spans %v, want %v", m.Spans, wantSpans)
	}
	if m.Rejected != 2 || m.FirstError != `span "send" (trace 5b8efff798038103d269b633813fc60d, span 0000000000000006): effect email.sent: no twice.effect_key attribute (a string or number, or an array of one) for its effect_key` {
		t.Errorf("rejected %d (%q), want 2", m.Rejected, m.FirstError)
	}
}

func TestMapProtobuf(t *testing.T) {
	b, err := proto.Marshal(request(t))
	if err != nil {
		t.Fatal(err)
	}
	req, err := DecodeProtobuf(b)
	if err != nil {
		t.Fatal(err)
	}
	checkMapped(t, testMapper().Map(req))
	if _, err := DecodeProtobuf([]byte("not protobuf at all")); err == nil {
		t.Error("garbage decoded")
	}
}

// TestMapJSON reads the same request written in OTLP/JSON by hand, as
// exporters write it: hex ids, int64 times as strings, enums as numbers.
func TestMapJSON(t *testing.T) {
	var b strings.Builder
	sp := func(trace, sid, parent, name string, kind int, start, end time.Duration, status string, attrs ...string) string {
		s := fmt.Sprintf(`{"traceId":%q,"spanId":%q,"name":%q,"kind":%d,"startTimeUnixNano":"%d","endTimeUnixNano":"%d","attributes":[%s]`,
			trace, sid, name, kind, ns(start), ns(end), strings.Join(attrs, ","))
		if parent != "" {
			s += fmt.Sprintf(`,"parentSpanId":%q`, parent)
		}
		if status != "" {
			s += `,"status":` + status
		}
		return s + "}"
	}
	s := func(k, v string) string { return fmt.Sprintf(`{"key":%q,"value":{"stringValue":%q}}`, k, v) }
	n := func(k string, v int64) string { return fmt.Sprintf(`{"key":%q,"value":{"intValue":"%d"}}`, k, v) }
	const consumer, client, internal, server = 5, 3, 1, 2
	fmt.Fprintf(&b, `{"resourceSpans":[{"resource":{"attributes":[%s]},"scopeSpans":[{"scope":{"name":"test"},"spans":[%s,%s,%s,%s,%s]}]},`,
		s("service.name", "billing-worker"),
		sp(traceA, "0000000000000003", "0000000000000002", "send receipt", client, 2*time.Second, 3*time.Second, "",
			s("twice.effect", "email.sent"), s("twice.effect_key", "receipt/payment:1"), s("messaging.destination.name", "smtp")),
		sp(traceA, "0000000000000002", "0000000000000001", "render", internal, time.Second, 2*time.Second, ""),
		sp(traceA, "0000000000000004", "0000000000000001", "POST /notify", client, 3*time.Second, 4*time.Second, "", n("partner.request_id", 42)),
		sp(traceA, "0000000000000005", "0000000000000001", "charge", client, 4*time.Second, 4500*time.Millisecond, `{"code":2,"message":"card declined"}`,
			s("twice.effect", "payment.charged"), s("twice.effect_key", "charge/payment:1")),
		sp(traceA, "0000000000000001", "", "SendReceipt process", consumer, 0, 5*time.Second, "",
			s("messaging.system", "rabbitmq"), s("messaging.operation.type", "process"), s("messaging.message.id", "j-1"),
			s("messaging.destination.name", "emails"), s("twice.job_type", "SendReceipt"), n("twice.attempt", 2), s("twice.key", "payment:1")))
	fmt.Fprintf(&b, `{"scopeSpans":[{"spans":[%s,%s,%s,%s,%s,%s]}],"unknownField":true}]}`,
		sp(traceB, "0000000000000006", "", "send", client, 0, time.Second, "", s("twice.effect", "email.sent")),
		sp(traceB, "0000000000000007", "", "orders receive", consumer, 0, time.Second, ""),
		sp(traceB, "0000000000000008", "", "orders receive", consumer, 0, time.Second, "", s("messaging.operation", "receive")),
		sp(traceB, "0000000000000009", "", "SELECT", client, 0, time.Second, ""),
		sp(traceB, "000000000000000a", "", "process", server, 0, 2*time.Second, `{"code":"STATUS_CODE_ERROR","message":"timeout"}`,
			s("messaging.operation.type", "process"), s("twice.job_id", "j-2"), s("messaging.message.id", "m-2")),
		sp(traceB, "000000000000000b", "", "send", client, 0, time.Second, "",
			s("twice.effect", "email.sent"), s("twice.effect_key", "receipt/payment:2"), s("twice.job_id", "j-2"), n("twice.attempt", 1)))
	req, err := DecodeJSON([]byte(b.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	checkMapped(t, testMapper().Map(req))

	for body, want := range map[string]string{
		`[]`: "want a JSON object",
		`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}`: `traceId: "zz" is not hex`,
		`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":7}]}]}]}`:    "traceId: want a hex string",
		`{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":7}]}]}]}`:       "not an OTLP ExportTraceServiceRequest in JSON",
		`{"resourceSpans":`: "not JSON",
		`{"resourceSpans":[{"scopeSpans":[{"spans":[{"links":[{"spanId":"0g"}],"name":"x"}]}]}]}`: `spanId: "0g" is not hex`,
	} {
		if _, err := DecodeJSON([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("DecodeJSON(%s): %v, want %q", body, err, want)
		}
	}
}

// TestMapOptions: jobs off, a rule's own key, effect_attr set to
// another attribute, spans with bad ids or no end time.
func TestMapOptions(t *testing.T) {
	no := false
	mp := &mapper{source: "traces", cfg: &Config{Jobs: &no, EffectAttr: "app.effect", KeyAttr: "app.key",
		Match: []Rule{{Span: "smtp.*", Effect: "email.sent"}, {Span: "POST /v1/*", Effect: "payment.charged", KeyAttr: "http.request.header.idempotency-key"}}}}
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
		{TraceId: id(t, traceA), SpanId: id(t, "0000000000000001"), Name: "process", Kind: tracepb.Span_SPAN_KIND_CONSUMER,
			StartTimeUnixNano: ns(0), EndTimeUnixNano: ns(time.Second), Attributes: []*commonpb.KeyValue{str("messaging.message.id", "j-1")}},
		{TraceId: id(t, traceA), SpanId: id(t, "0000000000000002"), ParentSpanId: id(t, "0000000000000001"), Name: "smtp.send",
			EndTimeUnixNano: ns(time.Second), Attributes: []*commonpb.KeyValue{str("app.key", "k-1"), str("twice.effect", "ignored.now")}},
		{TraceId: id(t, traceA), SpanId: id(t, "0000000000000003"), Name: "x",
			EndTimeUnixNano: ns(time.Second), Attributes: []*commonpb.KeyValue{str("app.effect", "ledger.insert"), num("app.key", 7)}},
		{TraceId: make([]byte, 16), SpanId: id(t, "0000000000000004"), Name: "zero", Attributes: []*commonpb.KeyValue{str("app.effect", "e")}},
		// An HTTP header attribute is an array; one value is the key, two
		// are none.
		{TraceId: id(t, traceA), SpanId: id(t, "0000000000000006"), Name: "POST /v1/charges", EndTimeUnixNano: ns(2 * time.Second),
			Attributes: []*commonpb.KeyValue{strs("http.request.header.idempotency-key", "idem-1")}},
		{TraceId: id(t, traceA), SpanId: id(t, "0000000000000007"), Name: "POST /v1/charges", EndTimeUnixNano: ns(2 * time.Second),
			Attributes: []*commonpb.KeyValue{strs("http.request.header.idempotency-key", "idem-1", "idem-2")}},
		{TraceId: id(t, traceA), SpanId: id(t, "0000000000000005"), Name: "open", Attributes: []*commonpb.KeyValue{str("app.effect", "e"), str("app.key", "k")}},
	}}}}}}
	m := mp.Map(req)
	want := []string{
		`otlp:5b8efff798038103d269b633813fc60c:0000000000000002 effect 10:00:01.000 job=j-1 effect=email.sent effect_key=k-1 attrs={"span_id":"0000000000000002","trace_id":"5b8efff798038103d269b633813fc60c"}`,
		`otlp:5b8efff798038103d269b633813fc60c:0000000000000003 effect 10:00:01.000 effect=ledger.insert effect_key=7 attrs={"span_id":"0000000000000003","trace_id":"5b8efff798038103d269b633813fc60c"}`,
		`otlp:5b8efff798038103d269b633813fc60c:0000000000000006 effect 10:00:02.000 effect=payment.charged effect_key=idem-1 attrs={"span_id":"0000000000000006","trace_id":"5b8efff798038103d269b633813fc60c"}`,
		`malformed: span "zero": trace_id must be 16 bytes and span_id 8, not all zero`,
		`malformed: span "POST /v1/charges": effect payment.charged: no http.request.header.idempotency-key attribute (a string or number, or an array of one) for its effect_key`,
		`malformed: span "open": effect e: no end time`,
	}
	if got := describe(m.Records); !slices.Equal(got, want) {
		t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// With jobs off the consumer span makes no job events (the jobs
	// come from a queue tap), but its message id still links the
	// effect under it to its job; twice.effect is not the effect
	// attribute any more.
	if m.Spans[OutcomeIgnored] != 1 || m.Spans[OutcomeEffect] != 3 || m.Spans[OutcomeMalformed] != 3 {
		t.Errorf("spans %v", m.Spans)
	}
}
