package emailevents

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/twicehq/twice/twicetype"
)

// Request is one HTTP request a provider posted, its body read whole.
type Request struct {
	Header http.Header
	Body   []byte
}

// Result is what one verified request holds.
type Result struct {
	// Events are the spec events to record, in payload order.
	Events []*twicetype.Event
	// Malformed are the reasons of the provider events that are not
	// events (no timestamp, no id...), counted like malformed lines.
	Malformed []string
	// Ignored counts provider events of types the source does not record
	// (opens, clicks, deferrals, or types left out of `events`).
	Ignored int
	// NoKey counts events without the key argument, whose effect_key
	// fell back to the provider's message id.
	NoKey int
	// Note, when not empty, says what the request was when it held no
	// events (an SNS subscription confirmed); for the log.
	Note string

	release func()
}

// Release tells the receiver that the result could not be recorded (the
// request is answered with an error and the provider will send it
// again): a Mailgun token it spent becomes usable again. Call it at most
// once, and never after the request was answered 2xx.
func (r *Result) Release() {
	if r != nil && r.release != nil {
		r.release()
		r.release = nil
	}
}

// RejectError is a request refused before anything was read from it: no
// credentials (401), a bad signature, a stale or replayed one (403), a
// body that cannot be verified (400). Reason never holds a secret.
type RejectError struct {
	// Status is the HTTP status to answer.
	Status int
	// Kind is the short reason the refusal is counted under: "auth",
	// "signature", "stale", "replay", "topic", "body".
	Kind string
	// Reason says what was wrong.
	Reason string
}

// Error returns the reason.
func (e *RejectError) Error() string { return e.Reason }

// reject returns a *RejectError.
func reject(status int, kind, format string, args ...any) error {
	return &RejectError{Status: status, Kind: kind, Reason: fmt.Sprintf(format, args...)}
}

// RejectStatus returns the HTTP status of a refused request (401, 403,
// 400), and 0 for an error that is not a refusal.
func RejectStatus(err error) int {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Status
	}
	return 0
}

// provider is one provider's verification and payload format.
type provider interface {
	// start loads secrets (files, environment).
	start(ctx context.Context) error
	// receive verifies req and reads its events.
	receive(ctx context.Context, req *Request) ([]observation, *Result, error)
}

// Stats counts what a receiver saw.
type Stats struct {
	// Requests is the requests received; Rejected those refused (by
	// reason: "signature", "auth", "stale", "replay", "body", "topic").
	Requests int64
	Rejected map[string]int64
	// Events, Ignored, Malformed and NoKey count provider events.
	Events, Ignored, Malformed, NoKey int64
}

// Receiver verifies and reads the requests one provider posts to one
// source. It is safe for concurrent use.
type Receiver struct {
	name string
	cfg  Config
	p    provider
	mp   *mapper

	mu    sync.Mutex
	stats Stats
}

// Options are what a Receiver needs from outside: a clock and, for SES,
// the fetchers of certificates and subscription URLs.
type Options struct {
	// Now is the wall clock; nil for time.Now.
	Now func() time.Time
	// Fetch GETs an https URL of SNS (a signing certificate, a
	// subscription's SubscribeURL) and returns its body; nil for an HTTP
	// client with a 10 s timeout. Tests inject their own.
	Fetch func(ctx context.Context, url string) ([]byte, error)
	// Logf logs diagnostics; nil for none.
	Logf func(format string, args ...any)
}

// NewReceiver returns the receiver of the source named name. It does no
// I/O: Start reads secret files.
func NewReceiver(name string, cfg Config, opts Options) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Fetch == nil {
		opts.Fetch = httpFetch
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	r := &Receiver{name: name, cfg: cfg, stats: Stats{Rejected: map[string]int64{}}}
	r.mp = newMapper(name, &r.cfg)
	switch cfg.Provider {
	case SendGrid:
		r.p = &sendgrid{cfg: &r.cfg}
	case Postmark:
		r.p = &postmark{cfg: &r.cfg}
	case Mailgun:
		r.p = newMailgun(&r.cfg, opts.Now)
	case SES:
		r.p = newSES(&r.cfg, opts)
	default:
		return nil, fmt.Errorf("unknown email provider %q", cfg.Provider)
	}
	return r, nil
}

// Start reads the secrets the configuration names (files, environment
// variables). It may be called again, to read them anew.
func (r *Receiver) Start(ctx context.Context) error {
	if err := r.p.start(ctx); err != nil {
		return fmt.Errorf("source %s: %w", r.name, err)
	}
	return nil
}

// Receive verifies one request and returns its events. An error is a
// *RejectError (answer with its status, record nothing) or a failure of
// twice (answer 5xx so the provider sends it again).
func (r *Receiver) Receive(ctx context.Context, req *Request) (*Result, error) {
	obs, res, err := r.p.receive(ctx, req)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Requests++
	if err != nil {
		var re *RejectError
		if errors.As(err, &re) {
			r.stats.Rejected[re.Kind]++
		}
		return nil, err
	}
	if res == nil {
		res = &Result{}
	}
	for i := range obs {
		o := r.mp.event(&obs[i])
		switch {
		case o.malformed != "":
			res.Malformed = append(res.Malformed, o.malformed)
		case o.ignored:
			res.Ignored++
		default:
			res.Events = append(res.Events, o.event)
			if o.noKey {
				res.NoKey++
			}
		}
	}
	r.stats.Events += int64(len(res.Events))
	r.stats.Ignored += int64(res.Ignored)
	r.stats.Malformed += int64(len(res.Malformed))
	r.stats.NoKey += int64(res.NoKey)
	return res, nil
}

// Stats returns a copy of the counts.
func (r *Receiver) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.Rejected = make(map[string]int64, len(r.stats.Rejected))
	for k, v := range r.stats.Rejected {
		s.Rejected[k] = v
	}
	return s
}
