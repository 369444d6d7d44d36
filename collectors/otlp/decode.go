package otlp

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// DecodeProtobuf reads an ExportTraceServiceRequest in the protobuf
// encoding (Content-Type application/x-protobuf).
func DecodeProtobuf(b []byte) (*coltracepb.ExportTraceServiceRequest, error) {
	req := &coltracepb.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(b, req); err != nil {
		return nil, fmt.Errorf("not an OTLP ExportTraceServiceRequest in protobuf: %w", err)
	}
	return req, nil
}

// DecodeJSON reads an ExportTraceServiceRequest in OTLP's JSON encoding
// (Content-Type application/json): protobuf's JSON mapping, except that
// trace and span ids are hex strings, not base64. Unknown fields are
// ignored, as OTLP requires.
func DecodeJSON(b []byte) (*coltracepb.ExportTraceServiceRequest, error) {
	var doc any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if err := hexIDsToBase64(doc); err != nil {
		return nil, err
	}
	fixed, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("re-encode: %w", err)
	}
	req := &coltracepb.ExportTraceServiceRequest{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(fixed, req); err != nil {
		return nil, fmt.Errorf("not an OTLP ExportTraceServiceRequest in JSON: %w", err)
	}
	return req, nil
}

// idFields are the span and link fields OTLP/JSON writes as hex, by
// their JSON names (lowerCamelCase, and the proto names protojson also
// accepts).
var idFields = map[string]bool{
	"traceId": true, "spanId": true, "parentSpanId": true,
	"trace_id": true, "span_id": true, "parent_span_id": true,
}

// hexIDsToBase64 rewrites, in place, every id field of the spans (and
// their links) from hex to the base64 protojson reads.
func hexIDsToBase64(doc any) error {
	root, ok := doc.(map[string]any)
	if !ok {
		return fmt.Errorf("want a JSON object (an ExportTraceServiceRequest)")
	}
	for _, rs := range list(root, "resourceSpans", "resource_spans") {
		for _, ss := range list(rs, "scopeSpans", "scope_spans") {
			for _, sp := range list(ss, "spans") {
				if err := fixIDs(sp); err != nil {
					return err
				}
				for _, l := range list(sp, "links") {
					if err := fixIDs(l); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// list returns the objects of the first of names that is an array in v.
func list(v any, names ...string) []map[string]any {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	for _, n := range names {
		arr, ok := m[n].([]any)
		if !ok {
			continue
		}
		out := make([]map[string]any, 0, len(arr))
		for _, e := range arr {
			if o, ok := e.(map[string]any); ok {
				out = append(out, o)
			}
		}
		return out
	}
	return nil
}

func fixIDs(obj map[string]any) error {
	for k, v := range obj {
		if !idFields[k] {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: want a hex string, got %v", k, v)
		}
		b, err := hex.DecodeString(s)
		if err != nil {
			return fmt.Errorf("%s: %q is not hex (OTLP/JSON writes ids as hex)", k, s)
		}
		obj[k] = base64.StdEncoding.EncodeToString(b)
	}
	return nil
}
