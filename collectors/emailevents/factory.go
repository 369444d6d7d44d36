package emailevents

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/twicehq/twice/collectors/push"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/sources"
	"github.com/twicehq/twice/twicetype"
)

// Factory is the source factory of one provider: Factory{Provider:
// SendGrid} is type sendgrid. Provider events are kept nowhere twice
// could read them again, so it has no collectors for `twice audit`: only
// `twice watch` reads these sources.
type Factory struct {
	// Provider is SendGrid, Postmark, SES or Mailgun.
	Provider string
}

var _ sources.Factory = Factory{}

// Type returns the provider's name, the source type.
func (f Factory) Type() string { return f.Provider }

// DecodeConfig reads the keys of the source into a *Config, recording
// each problem at its key's file:line.
func (f Factory) DecodeConfig(m *config.SourceMapping) config.SourceSettings {
	return decode(f.Provider, m)
}

// NewStream returns the Stream of src.
func (f Factory) NewStream(src config.Source, opts sources.StreamOptions) (sources.Stream, error) {
	c, ok := src.Settings.(*Config)
	if !ok || c == nil {
		return nil, fmt.Errorf("source %s: no %s settings", src.Name, f.Provider)
	}
	cfg := *c
	cfg.Provider = f.Provider
	return NewStream(src.Name, cfg, Options{Now: opts.Now, Logf: opts.Logf})
}

// Stream is an email provider source in `twice watch`: a push.Stream
// served by the provider's HTTP handler. Its one lane is the provider's
// name; see collectors/push for positions and acknowledgement.
type Stream struct {
	*push.Stream
	rcv  *Receiver
	srv  *server
	logf func(string, ...any)
}

// NewStream returns the stream of the source named name. It does no I/O:
// secrets are read and the server listens at Start.
func NewStream(name string, cfg Config, opts Options) (*Stream, error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	rcv, err := NewReceiver(name, cfg, opts)
	if err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	srv := &server{rcv: rcv, cfg: cfg, logf: opts.Logf, now: opts.Now}
	s := &Stream{rcv: rcv, srv: srv, logf: opts.Logf}
	s.Stream = push.NewStream(name, srv, push.Options{Lane: cfg.Provider, MaxPending: cfg.MaxPending, Logf: opts.Logf})
	return s, nil
}

// Addr returns the address the server listens on once started.
func (s *Stream) Addr() string { return s.srv.addr() }

// Receiver returns the stream's receiver (its counts).
func (s *Stream) Receiver() *Receiver { return s.rcv }

// server is the push.Receiver: it reads the secrets and serves the
// handler.
type server struct {
	rcv  *Receiver
	cfg  Config
	logf func(string, ...any)
	now  func() time.Time

	mu   sync.Mutex
	http *push.HTTPReceiver
}

func (v *server) Start(ctx context.Context, s *push.Stream) error {
	if err := v.rcv.Start(ctx); err != nil {
		return err
	}
	if !v.cfg.Verified() {
		v.logf("source %s: no %s configured: requests are NOT verified (allowed on loopback only, for tests)", s.Name(), credentialKey(v.cfg.Provider))
	}
	h := push.NewHTTPReceiver(v.cfg.Listen, func(s *push.Stream) http.Handler {
		return &handler{s: s, rcv: v.rcv, maxBody: v.cfg.maxBody(), logf: v.logf, now: v.now, logged: map[string]time.Time{}}
	})
	h.SetMaxRate(v.cfg.MaxRate, nil)
	if err := h.Start(ctx, s); err != nil {
		return err
	}
	v.mu.Lock()
	v.http = h
	v.mu.Unlock()
	return nil
}

func (v *server) Shutdown(ctx context.Context) error {
	v.mu.Lock()
	h := v.http
	v.http = nil
	v.mu.Unlock()
	if h == nil {
		return nil
	}
	return h.Shutdown(ctx)
}

func (v *server) addr() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.http == nil {
		return ""
	}
	return v.http.Addr()
}

// handler serves the provider's POSTs, on any path.
type handler struct {
	s       *push.Stream
	rcv     *Receiver
	maxBody int64
	logf    func(string, ...any)
	now     func() time.Time

	mu     sync.Mutex
	logged map[string]time.Time // when a refusal of each kind was last logged
}

// refusalLogEvery is how often a kind of refusal is logged; all are
// counted.
const refusalLogEvery = time.Minute

// logRefusal logs a refused request, at most once a minute per kind, so
// that a wrong key shows in the log without a flood. The reason never
// holds a secret nor a recipient.
func (h *handler) logRefusal(re *RejectError) {
	now := h.now()
	h.mu.Lock()
	last, seen := h.logged[re.Kind]
	if seen && now.Sub(last) < refusalLogEvery {
		h.mu.Unlock()
		return
	}
	h.logged[re.Kind] = now
	h.mu.Unlock()
	reason := re.Reason
	if len(reason) > 300 {
		reason = reason[:300] + "…"
	}
	h.logf("source %s: refused a request (%d %s): %s; refusals are counted in twice_push_requests_total, logged once a minute", h.s.Name(), re.Status, re.Kind, reason)
}

// countOf is the word a refusal is counted under in
// twice_push_requests_total{result}.
var countOf = map[string]string{
	"auth":      "unauthorized",
	"signature": "bad_signature",
	"topic":     "wrong_topic",
	"stale":     "stale",
	"replay":    "replayed",
	"body":      "invalid",
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		h.s.Count("invalid")
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST the provider's events here", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.s.Count("too_large")
			http.Error(w, fmt.Sprintf("body larger than max_body_bytes (%d)", h.maxBody), http.StatusRequestEntityTooLarge)
			return
		}
		h.s.Count("abandoned")
		http.Error(w, "body not read: "+err.Error(), http.StatusBadRequest)
		return
	}
	res, err := h.rcv.Receive(r.Context(), &Request{Header: r.Header, Body: body})
	if err != nil {
		var re *RejectError
		if errors.As(err, &re) {
			c := countOf[re.Kind]
			if c == "" {
				c = "invalid"
			}
			h.s.Count(c)
			h.logRefusal(re)
			http.Error(w, re.Reason, re.Status)
			return
		}
		h.s.Count("error")
		h.logf("source %s: %v", h.s.Name(), err)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "not recorded; retry", http.StatusServiceUnavailable)
		return
	}
	recs := make([]sources.Record, 0, len(res.Events)+len(res.Malformed))
	for _, ev := range res.Events {
		recs = append(recs, push.EventRecord(*ev))
	}
	for _, m := range res.Malformed {
		recs = append(recs, sources.Record{Malformed: &twicetype.Malformed{Source: h.s.Name(), Reason: m}})
	}
	if err := h.s.Submit(r.Context(), recs); err != nil {
		res.Release()
		push.WriteSubmitError(h.s, w, err)
		return
	}
	if res.Note != "" {
		h.s.Count("confirmed")
	} else {
		h.s.Count("accepted")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "ok: %d events recorded\n", len(res.Events))
}
