package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twicehq/twice/sidecar"
)

// benchBody is n events as NDJSON, ids unique per batch b.
func benchBody(batch, n int) []byte {
	var buf bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&buf, `{"id":"b%d-%d","ts":"2026-11-24T10:00:%02d.%03dZ","kind":"effect","effect":"email.sent","effect_key":"receipt/payment:%d","job_id":"j-%d"}`+"\n",
			batch, i, (i/1000)%60, i%1000, batch*n+i, batch*n+i)
	}
	return buf.Bytes()
}

// BenchmarkIngest POSTs batches of lines from 8 concurrent clients:
//
//	bare:  a net/http handler that reads the body and discards it (the
//	       cost of HTTP alone);
//	watch: the ingest source in a real sidecar watch (parse, checkpoint
//	       every 100ms with fsync, answer after it).
//
// go test -run '^$' -bench BenchmarkIngest -benchtime 200000x ./collectors/ingest/
func BenchmarkIngest(b *testing.B) {
	for _, lines := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("bare/lines=%d", lines), func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusOK)
			}))
			defer srv.Close()
			run(b, srv.URL+Path, lines)
		})
		b.Run(fmt.Sprintf("watch/lines=%d", lines), func(b *testing.B) {
			s, err := NewStream("api", Config{Listen: "127.0.0.1:0", MaxPending: 100_000}, nil)
			if err != nil {
				b.Fatal(err)
			}
			w := sidecar.New(sidecar.Options{StateDir: b.TempDir(), Streams: []sidecar.Stream{s}, Registry: prometheus.NewRegistry(),
				CheckpointInterval: 100 * time.Millisecond, SnapshotInterval: time.Hour})
			if err := w.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer w.Shutdown(context.Background())
			for s.Addr() == "" {
				time.Sleep(time.Millisecond)
			}
			run(b, "http://"+s.Addr()+Path, lines)
		})
	}
}

// run POSTs b.N events in batches of lines from 8 clients and reports
// events/s.
func run(b *testing.B, url string, lines int) {
	const clients = 8
	batches := (b.N + lines - 1) / lines
	bodies := make([][]byte, batches)
	for i := range bodies {
		bodies[i] = benchBody(i, lines)
	}
	b.SetBytes(int64(len(bodies[0]) / lines))
	b.ResetTimer()
	start := time.Now()
	next := make(chan []byte)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range next {
				resp, err := http.Post(url, "application/x-ndjson", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d", resp.StatusCode)
				}
			}
		}()
	}
	for _, body := range bodies {
		next <- body
	}
	close(next)
	wg.Wait()
	b.ReportMetric(float64(batches*lines)/time.Since(start).Seconds(), "events/s")
}
