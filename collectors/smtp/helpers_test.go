package smtp

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/twicehq/twice/audit"
	"github.com/twicehq/twice/collectors/push/pushtest"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/sidecar"
	"github.com/twicehq/twice/sources"
)

// waitFor polls cond until it holds, failing after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fixedClock is the clock of the tests' streams.
func fixedClock() time.Time { return time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC) }

// sidecarless starts an smtp stream no watch reads: the test polls and
// commits itself.
func sidecarless(t *testing.T, cfg Config) *Stream {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	s, err := NewStream("mail", cfg, fixedClock, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

// pollN polls until n records came.
func pollN(t *testing.T, s *Stream, n int) []sources.Record {
	t.Helper()
	var out []sources.Record
	waitFor(t, "records to poll", func() bool {
		recs, _ := s.Poll(context.Background(), 10*time.Millisecond)
		out = append(out, recs...)
		return len(out) >= n
	})
	return out
}

// commitAll plays the sidecar until stop: it polls and commits at once,
// and sends what it polled on the channel.
func commitAll(t *testing.T, s *Stream) <-chan sources.Record {
	ch := make(chan sources.Record, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			recs, _ := s.Poll(ctx, 10*time.Millisecond)
			if len(recs) == 0 {
				continue
			}
			for _, r := range recs {
				ch <- r
			}
			_ = s.Commit(ctx, map[string]sources.Position{s.Lane(): recs[len(recs)-1].Position})
		}
	}()
	return ch
}

// watch is an smtp stream run by a real sidecar watcher, with rules.
type watch struct {
	s   *Stream
	w   *sidecar.Watcher
	reg *prometheus.Registry
}

func startWatch(t *testing.T, cfg Config, rulesYAML string) *watch {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	s, err := NewStream("mail", cfg, nil, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("twice.yaml", []byte(rulesYAML))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	w := sidecar.New(sidecar.Options{StateDir: t.TempDir(), Streams: []sidecar.Stream{s}, Registry: reg,
		Engine: audit.EngineOptions(c), CheckpointInterval: 20 * time.Millisecond, Logf: t.Logf})
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	waitFor(t, "the SMTP server to listen", func() bool { return s.Addr() != "" })
	return &watch{s: s, w: w, reg: reg}
}

// findings returns GET /findings of the watch.
func (w *watch) findings(t *testing.T) (summary map[string]any, findings []map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	w.w.Handler(w.reg).ServeHTTP(rec, httptest.NewRequest("GET", "/findings", nil))
	var page struct {
		Summary  map[string]any   `json:"summary"`
		Findings []map[string]any `json:"findings"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	return page.Summary, page.Findings
}

// upstream is a second SMTP server, the relay's destination, offering
// STARTTLS with a certificate of its own CA (caFile).
type upstream struct {
	addr   string
	caFile string
	mu     sync.Mutex
	msgs   []upstreamMsg
	// refuse, when set, is the answer to RCPT TO.
	refuse *gosmtp.SMTPError
	// user and pass, when set, are required with AUTH PLAIN.
	user, pass string
}

type upstreamMsg struct {
	authed bool
	from   string
	to     []string
	data   []byte
}

func (u *upstream) messages() []upstreamMsg {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upstreamMsg(nil), u.msgs...)
}

type upSession struct {
	u      *upstream
	msg    upstreamMsg
	authed bool
}

func (s *upSession) Reset()        { s.msg = upstreamMsg{authed: s.authed} }
func (s *upSession) Logout() error { return nil }
func (s *upSession) AuthMechanisms() []string {
	if s.u.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}
func (s *upSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.u.user || pass != s.u.pass {
			return gosmtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}
func (s *upSession) Mail(from string, _ *gosmtp.MailOptions) error {
	if s.u.user != "" && !s.authed {
		return gosmtp.ErrAuthRequired
	}
	s.msg.from, s.msg.authed = from, s.authed
	return nil
}
func (s *upSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if s.u.refuse != nil {
		return s.u.refuse
	}
	s.msg.to = append(s.msg.to, to)
	return nil
}
func (s *upSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.data = b
	s.u.mu.Lock()
	s.u.msgs = append(s.u.msgs, s.msg)
	s.u.mu.Unlock()
	return nil
}

func startUpstream(t *testing.T, configure func(*upstream)) *upstream {
	t.Helper()
	u := &upstream{}
	if configure != nil {
		configure(u)
	}
	cert := pushtest.SelfSigned(t)
	u.caFile = cert.CAFile
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) {
		return &upSession{u: u}, nil
	}))
	srv.Domain = "upstream.test"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = ln.Addr().String()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, gosmtp.ErrServerClosed) {
			t.Log(err)
		}
	}()
	t.Cleanup(func() { srv.Close() })
	return u
}
