package file_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/twicehq/twice/collectors/file"
)

// benchData makes n realistic events (about 138 bytes each, gzip ratio
// about 8): each job is enqueued, started, produces an effect and
// succeeds; every other event has an id.
func benchData(n int) []byte {
	var b bytes.Buffer
	r := rand.New(rand.NewPCG(1, 2))
	ts := int64(1795514400000)
	queues := []string{"emails", "webhooks", "billing", "exports"}
	for i := range n {
		job := i / 4
		ts += int64(r.IntN(20))
		id := ""
		if i%2 == 0 {
			id = fmt.Sprintf(`"id":"%016x",`, r.Uint64())
		}
		q := queues[job%len(queues)]
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, `{%s"ts":%d,"kind":"job.enqueued","queue":"%s","job_type":"SendReceipt","job_id":"j-%d","key":"payment:%d"}`, id, ts, q, job, r.IntN(1e7))
		case 1:
			fmt.Fprintf(&b, `{%s"ts":"2026-11-24T10:%02d:%02d.%03dZ","kind":"job.started","queue":"%s","job_type":"SendReceipt","job_id":"j-%d","attempt":%d}`, id, job/60%60, job%60, r.IntN(1000), q, job, 1+r.IntN(3))
		case 2:
			fmt.Fprintf(&b, `{%s"ts":%d,"kind":"effect","effect":"email.sent","effect_key":"receipt/payment:%d","job_id":"j-%d","attempt":1}`, id, ts, r.IntN(1e7), job)
		case 3:
			fmt.Fprintf(&b, `{%s"ts":%d,"kind":"job.succeeded","queue":"%s","job_type":"SendReceipt","job_id":"j-%d","attempt":1}`, id, ts, q, job)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// benchCollector reads data (rawSize bytes once decompressed) to the end
// b.N times; MB/s are of JSON Lines read.
func benchCollector(b *testing.B, name string, data []byte, rawSize, events int) {
	path := filepath.Join(b.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(int64(rawSize))
	b.ReportAllocs()
	for b.Loop() {
		c := file.New(path, file.Options{})
		if err := c.Start(ctx); err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			batch, err := c.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if len(batch.Malformed) > 0 {
				b.Fatal(batch.Malformed[0])
			}
			n += len(batch.Events)
		}
		if n != events {
			b.Fatalf("%d events, want %d", n, events)
		}
		if err := c.Shutdown(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

const benchEvents = 400_000

func BenchmarkFileCollector(b *testing.B) {
	data := benchData(benchEvents)
	benchCollector(b, "events.jsonl", data, len(data), benchEvents)
}

func BenchmarkFileCollectorGzip(b *testing.B) {
	data := benchData(benchEvents)
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(data); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d bytes, %d gzipped", len(data), buf.Len())
	benchCollector(b, "events.jsonl.gz", buf.Bytes(), len(data), benchEvents)
}
