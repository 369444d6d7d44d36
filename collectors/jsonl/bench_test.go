package jsonl_test

import (
	"encoding/json"
	"testing"

	"github.com/twicehq/twice/collectors/jsonl"
	"github.com/twicehq/twice/twicetype"
)

// benchLines are typical events: a job's life and its effect, ~130 bytes.
var benchLines = [][]byte{
	[]byte(`{"id":"e-100231","ts":"2026-11-24T10:00:00.123Z","kind":"job.enqueued","queue":"emails","job_type":"SendReceipt","job_id":"j-48213","key":"payment:123"}`),
	[]byte(`{"id":"e-100232","ts":"2026-11-24T10:00:01.456Z","kind":"job.started","queue":"emails","job_type":"SendReceipt","job_id":"j-48213","attempt":1}`),
	[]byte(`{"id":"e-100233","ts":"2026-11-24T10:00:02.789Z","kind":"effect","effect":"email.sent","effect_key":"receipt/payment:123","job_id":"j-48213"}`),
	[]byte(`{"ts":1795514403000,"kind":"job.succeeded","queue":"emails","job_type":"SendReceipt","job_id":"j-48213","attempt":1}`),
}

func BenchmarkParse(b *testing.B) {
	var p jsonl.Parser
	var ev twicetype.Event
	n := 0
	for _, l := range benchLines {
		n += len(l)
	}
	b.SetBytes(int64(n / len(benchLines)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := p.Parse(benchLines[i%len(benchLines)], &ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseBaselineEncodingJSON decodes the same lines with
// encoding/json into a struct of the event's fields, without any of the
// parser's checks, identity hash or error reasons: the baseline that
// BenchmarkParse is read against (ratio = Parse ns/op ÷ this ns/op).
func BenchmarkParseBaselineEncodingJSON(b *testing.B) {
	type plain struct {
		ID        string          `json:"id"`
		TS        json.RawMessage `json:"ts"`
		Kind      string          `json:"kind"`
		Queue     string          `json:"queue"`
		JobType   string          `json:"job_type"`
		JobID     string          `json:"job_id"`
		Attempt   *int64          `json:"attempt"`
		Key       string          `json:"key"`
		Effect    string          `json:"effect"`
		EffectKey string          `json:"effect_key"`
		Entity    string          `json:"entity"`
		Seq       *int64          `json:"seq"`
	}
	n := 0
	for _, l := range benchLines {
		n += len(l)
	}
	b.SetBytes(int64(n / len(benchLines)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		var v plain
		if err := json.Unmarshal(benchLines[i%len(benchLines)], &v); err != nil {
			b.Fatal(err)
		}
	}
}
