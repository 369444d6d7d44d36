package jsonl_test

import (
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
