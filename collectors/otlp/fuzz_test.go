package otlp

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// FuzzDecodeMap feeds bodies to both decoders and maps what decodes:
// nothing panics, and every record is an event with a span id, or a
// malformed record with a reason.
func FuzzDecodeMap(f *testing.F) {
	req := request(f)
	pb, err := proto.Marshal(req)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pb, false)
	js, err := protojson.Marshal(req)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(js, true)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"0000000000000001","parentSpanId":"0000000000000001","kind":5,"endTimeUnixNano":"1","attributes":[{"key":"twice.effect","value":{"stringValue":"e"}},{"key":"twice.effect_key","value":{"intValue":"7"}}]}]}]}]}`), true)
	mp := testMapper()
	f.Fuzz(func(t *testing.T, body []byte, json bool) {
		decode := DecodeProtobuf
		if json {
			decode = DecodeJSON
		}
		r, err := decode(body)
		if err != nil {
			return
		}
		m := mp.Map(r)
		var malformed int64
		for _, rec := range m.Records {
			switch {
			case rec.Event != nil:
				if !strings.HasPrefix(rec.Event.ID, "otlp:") {
					t.Fatalf("event id %q", rec.Event.ID)
				}
			case rec.Malformed != nil:
				malformed++
				if rec.Malformed.Reason == "" {
					t.Fatal("malformed record without a reason")
				}
			default:
				t.Fatal("a record with neither event nor malformed")
			}
		}
		if malformed != m.Rejected {
			t.Fatalf("%d malformed records, %d rejected", malformed, m.Rejected)
		}
	})
}
