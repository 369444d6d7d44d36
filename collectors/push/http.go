package push

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// HTTPReceiver is the Receiver of an HTTP push tap: it serves the handler
// a tap builds for its Stream on an address.
type HTTPReceiver struct {
	addr    string
	handler func(*Stream) http.Handler
	tls     *tls.Config
	rate    float64
	now     func() time.Time

	mu  sync.Mutex
	srv *http.Server
	ln  net.Listener
}

// NewHTTPReceiver returns a receiver that serves handler(stream) on addr
// ("127.0.0.1:8081"; port 0 picks a free one, see Addr), answering at
// most DefaultMaxRate requests per second (SetMaxRate). It does no I/O.
func NewHTTPReceiver(addr string, handler func(*Stream) http.Handler) *HTTPReceiver {
	return &HTTPReceiver{addr: addr, handler: handler, rate: DefaultMaxRate}
}

// SetMaxRate caps the requests per second the receiver answers
// (RateLimited); 0 keeps DefaultMaxRate. now is the clock of the limit
// (nil: time.Now). Call it before Start.
func (r *HTTPReceiver) SetMaxRate(perSecond int, now func() time.Time) {
	if perSecond > 0 {
		r.rate = float64(perSecond)
	}
	r.now = now
}

// SetTLS makes the receiver serve HTTPS with c; call it before Start.
func (r *HTTPReceiver) SetTLS(c *tls.Config) { r.tls = c }

// Start listens on the address and serves in the background.
func (r *HTTPReceiver) Start(ctx context.Context, s *Stream) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", r.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	scheme := "http"
	if r.tls != nil {
		ln = tls.NewListener(ln, r.tls)
		scheme = "https"
	}
	srv := &http.Server{
		Handler:           RateLimited(s, r.handler(s), r.rate, r.now),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
	}
	r.mu.Lock()
	r.srv, r.ln = srv, ln
	r.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logf("source %s: serve: %v", s.Name(), err)
		}
	}()
	s.logf("source %s: listening on %s://%s", s.Name(), scheme, ln.Addr())
	return nil
}

// Shutdown stops listening and waits for the requests being served.
func (r *HTTPReceiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	srv := r.srv
	r.mu.Unlock()
	if srv == nil {
		return nil
	}
	if err := srv.Shutdown(ctx); err != nil {
		srv.Close()
		return err
	}
	return nil
}

// Addr returns the address listened on once started ("127.0.0.1:41234"),
// "" before.
func (r *HTTPReceiver) Addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln == nil {
		return ""
	}
	return r.ln.Addr().String()
}

// HTTPStatus returns the status that answers a failed Submit: 413 for
// ErrTooLarge, otherwise 503 (retry later).
func HTTPStatus(err error) int {
	if errors.Is(err, ErrTooLarge) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusServiceUnavailable
}

// ResultOf returns the word Count uses for a failed Submit: "full",
// "too_large", "closed", or "abandoned" (the client went away first).
func ResultOf(err error) string {
	switch {
	case errors.Is(err, ErrFull):
		return "full"
	case errors.Is(err, ErrTooLarge):
		return "too_large"
	case errors.Is(err, ErrClosed):
		return "closed"
	}
	return "abandoned"
}

// WriteSubmitError answers a request whose Submit failed: 503 with
// Retry-After: 1, or 413, and the reason as text. It counts the request
// (ResultOf) on s.
func WriteSubmitError(s *Stream, w http.ResponseWriter, err error) {
	s.Count(ResultOf(err))
	code := HTTPStatus(err)
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	msg := err.Error()
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		msg = "not recorded in time; retry"
	}
	http.Error(w, msg, code)
}

// BearerOK reports whether r carries "Authorization: Bearer TOKEN" with
// the given token, compared in constant time. An empty token accepts
// every request.
func BearerOK(r *http.Request, token string) bool {
	if token == "" {
		return true
	}
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(h[len(prefix):])), []byte(token)) == 1
}

// IsLoopback reports whether a listen address binds only the loopback
// interface ("127.0.0.1:8081", "[::1]:25", "localhost:2525"). An address
// without a host (":8081") binds every interface.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
