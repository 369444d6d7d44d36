package otlp

import (
	"encoding/binary"
	"fmt"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// batch512 is an export request of 512 spans, as an SDK's batch
// processor sends by default: 128 jobs, each a consumer span with an
// effect span and two plain spans under it.
func batch512() *coltracepb.ExportTraceServiceRequest {
	var spans []*tracepb.Span
	for j := 0; j < 128; j++ {
		trace := make([]byte, 16)
		binary.BigEndian.PutUint64(trace[8:], uint64(j+1))
		sid := func(k int) []byte {
			b := make([]byte, 8)
			binary.BigEndian.PutUint64(b, uint64(j*4+k+1))
			return b
		}
		job := &tracepb.Span{TraceId: trace, SpanId: sid(0), Name: "SendReceipt process", Kind: tracepb.Span_SPAN_KIND_CONSUMER,
			StartTimeUnixNano: ns(0), EndTimeUnixNano: ns(1e9), Attributes: []*commonpb.KeyValue{
				str("messaging.operation.type", "process"), str("messaging.message.id", fmt.Sprintf("j-%d", j)),
				str("messaging.destination.name", "emails"), str("twice.key", fmt.Sprintf("payment:%d", j))}}
		spans = append(spans, job)
		for k := 1; k <= 3; k++ {
			sp := &tracepb.Span{TraceId: trace, SpanId: sid(k), ParentSpanId: sid(0), Name: "SELECT", Kind: tracepb.Span_SPAN_KIND_CLIENT,
				StartTimeUnixNano: ns(0), EndTimeUnixNano: ns(5e8), Attributes: []*commonpb.KeyValue{str("db.system", "postgresql")}}
			if k == 1 {
				sp.Name = "smtp send"
				sp.Attributes = []*commonpb.KeyValue{str("twice.effect", "email.sent"), str("twice.effect_key", fmt.Sprintf("receipt/payment:%d", j))}
			}
			spans = append(spans, sp)
		}
	}
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}}}}}
}

// BenchmarkDecodeMap measures what a request of 512 spans costs the
// receiver before it waits for the checkpoint: decoding and mapping into
// 384 events (128 effects, 256 job events).
func BenchmarkDecodeMap(b *testing.B) {
	req := batch512()
	pb, _ := proto.Marshal(req)
	mp := testMapper()
	for _, enc := range []string{"protobuf", "json"} {
		body := pb
		decode := DecodeProtobuf
		if enc == "json" {
			body = hexJSON(b, req)
			decode = DecodeJSON
		}
		b.Run(enc, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				r, err := decode(body)
				if err != nil {
					b.Fatal(err)
				}
				if m := mp.Map(r); len(m.Records) != 384 {
					b.Fatalf("%d records", len(m.Records))
				}
			}
			b.ReportMetric(float64(512*b.N)/b.Elapsed().Seconds(), "spans/s")
		})
	}
}

// hexJSON writes req in OTLP/JSON (hex ids) by hand from protojson's
// output.
func hexJSON(b *testing.B, req *coltracepb.ExportTraceServiceRequest) []byte {
	var sb []byte
	sb = append(sb, `{"resourceSpans":[{"scopeSpans":[{"spans":[`...)
	for i, sp := range req.ResourceSpans[0].ScopeSpans[0].Spans {
		c := proto.Clone(sp).(*tracepb.Span)
		c.TraceId, c.SpanId, c.ParentSpanId = nil, nil, nil
		one, err := protojson.Marshal(c)
		if err != nil {
			b.Fatal(err)
		}
		if i > 0 {
			sb = append(sb, ',')
		}
		ids := fmt.Sprintf(`{"traceId":"%x","spanId":"%x",`, sp.TraceId, sp.SpanId)
		if len(sp.ParentSpanId) > 0 {
			ids += fmt.Sprintf(`"parentSpanId":"%x",`, sp.ParentSpanId)
		}
		sb = append(sb, ids...)
		sb = append(sb, one[1:]...)
	}
	return append(sb, `]}]}]}`...)
}
