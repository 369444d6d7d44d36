package smtp

import (
	"context"
	"fmt"
	"io"
	"net"
	stdsmtp "net/smtp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/twicehq/twice/sidecar"
)

type discardSession struct{}

func (discardSession) Reset()                                 {}
func (discardSession) Logout() error                          { return nil }
func (discardSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (discardSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (discardSession) Data(r io.Reader) error                 { _, err := io.Copy(io.Discard, r); return err }

// BenchmarkSMTP sends b.N messages from 16 concurrent clients, each on
// one connection, message after message:
//
//	bare:  a go-smtp server that reads each message and discards it;
//	watch: the smtp source in a real sidecar watch (parse, checkpoint
//	       every 100ms with fsync, 250 after it).
//
// go test -run '^$' -bench BenchmarkSMTP -benchtime 2000x ./collectors/smtp/
func BenchmarkSMTP(b *testing.B) {
	b.Run("bare", func(b *testing.B) {
		srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) { return discardSession{}, nil }))
		srv.Domain = "bare"
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go srv.Serve(ln)
		defer srv.Close()
		runSMTP(b, ln.Addr().String())
	})
	b.Run("watch", func(b *testing.B) {
		s, err := NewStream("mail", Config{Listen: "127.0.0.1:0", MaxPending: 100_000}, nil, nil)
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
		runSMTP(b, s.Addr())
	})
}

func runSMTP(b *testing.B, addr string) {
	const clients = 16
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := stdsmtp.Dial(addr)
			if err != nil {
				b.Error(err)
				return
			}
			defer cl.Close()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					cl.Quit()
					return
				}
				if err := cl.Mail("shop@shop.test"); err != nil {
					b.Error(err)
					return
				}
				if err := cl.Rcpt("ann@example.com"); err != nil {
					b.Error(err)
					return
				}
				w, err := cl.Data()
				if err != nil {
					b.Error(err)
					return
				}
				fmt.Fprintf(w, "From: shop@shop.test\r\nTo: ann@example.com\r\nSubject: Your receipt\r\nMessage-ID: <b-%d@shop.test>\r\nX-Idempotency-Key: receipt/payment:%d\r\n\r\nThanks for your payment.\r\n", i, i)
				if err := w.Close(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
