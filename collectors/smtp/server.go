package smtp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/mail"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/twicehq/twice/collectors/push"
	"github.com/twicehq/twice/sources"
)

// submitTimeout bounds how long a message waits to be durable before
// its client is told to try again (RFC 5321 gives a client 10 minutes
// for the answer to the end of DATA).
const submitTimeout = 5 * time.Minute

// receiver is the SMTP server of a source.
type receiver struct {
	cfg  Config
	now  func() time.Time
	logf func(string, ...any)

	password string
	tmpl     *keyTemplate
	relay    *relayer
	lines    atomic.Int64

	mu  sync.Mutex
	srv *gosmtp.Server
	ln  net.Listener
}

func (r *receiver) Start(ctx context.Context, s *push.Stream) error {
	if r.cfg.KeyTemplate != "" {
		t, err := parseKeyTemplate(r.cfg.KeyTemplate)
		if err != nil {
			return fmt.Errorf("key_template: %w", err)
		}
		r.tmpl = t
	}
	if r.cfg.Password.IsSet() {
		p, err := r.cfg.Password.Resolve()
		if err != nil {
			return fmt.Errorf("password: %w", err)
		}
		r.password = p
	}
	if rc := r.cfg.Relay; rc != nil {
		rl := &relayer{addr: rc.Address, starttls: !rc.NoStartTLS, username: rc.Username}
		if rc.Password.IsSet() {
			p, err := rc.Password.Resolve()
			if err != nil {
				return fmt.Errorf("relay password: %w", err)
			}
			rl.password = p
		}
		host, _, _ := net.SplitHostPort(rc.Address)
		rl.tls = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if rc.CAFile != "" {
			pem, err := os.ReadFile(rc.CAFile)
			if err != nil {
				return fmt.Errorf("relay ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return fmt.Errorf("relay ca_file %s: no PEM certificate in it", rc.CAFile)
			}
			rl.tls.RootCAs = pool
		}
		r.relay = rl
	}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &session{r: r, s: s}, nil
	}))
	srv.Domain = "twice"
	srv.MaxMessageBytes = int64(r.maxMessageBytes())
	srv.MaxRecipients = 1000
	srv.ReadTimeout = 10 * time.Minute
	srv.WriteTimeout = time.Minute
	if r.cfg.TLS != nil {
		c, err := r.cfg.TLS.Load()
		if err != nil {
			return err
		}
		srv.TLSConfig = c // offered with STARTTLS; AUTH only after it
	} else {
		// Without a certificate AUTH is offered in the clear.
		srv.AllowInsecureAuth = r.password != ""
	}
	srv.ErrorLog = logger{r.logf}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", r.cfg.listen())
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	conns := r.cfg.MaxConnections
	if conns == 0 {
		conns = DefaultMaxConnections
	}
	ln = push.LimitListener(ln, conns)
	r.mu.Lock()
	r.srv, r.ln = srv, ln
	r.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, gosmtp.ErrServerClosed) {
			r.logf("source %s: serve: %v", s.Name(), err)
		}
	}()
	r.logf("source %s: SMTP on %s", s.Name(), ln.Addr())
	return nil
}

func (r *receiver) maxMessageBytes() int {
	if r.cfg.MaxMessageBytes == 0 {
		return DefaultMaxMessageBytes
	}
	return r.cfg.MaxMessageBytes
}

// Shutdown stops listening, lets the sessions write their last answers
// (a second at most: the stream has answered every waiting message), then
// closes the connections still open.
func (r *receiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	srv := r.srv
	r.mu.Unlock()
	if srv == nil {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		if cerr := srv.Close(); cerr != nil && !errors.Is(cerr, gosmtp.ErrServerClosed) {
			return cerr
		}
	}
	return nil
}

func (r *receiver) addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln == nil {
		return ""
	}
	return r.ln.Addr().String()
}

type logger struct{ logf func(string, ...any) }

func (l logger) Printf(format string, v ...any) { l.logf("smtp: "+format, v...) }
func (l logger) Println(v ...any)               { l.logf("smtp: %s", fmt.Sprint(v...)) }

// session is one SMTP connection's transaction.
type session struct {
	r      *receiver
	s      *push.Stream
	authed bool
	from   string
	rcpts  []string
}

var errAuthRequired = &gosmtp.SMTPError{Code: 530, EnhancedCode: gosmtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}

func (ss *session) AuthMechanisms() []string {
	if ss.r.password == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.r.password == "" || mech != sasl.Plain {
		return nil, gosmtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		okUser := subtle.ConstantTimeCompare([]byte(username), []byte(ss.r.cfg.Username)) == 1
		okPass := subtle.ConstantTimeCompare([]byte(password), []byte(ss.r.password)) == 1
		if !okUser || !okPass || (identity != "" && identity != username) {
			ss.s.Count("unauthorized")
			return gosmtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *gosmtp.MailOptions) error {
	if ss.r.password != "" && !ss.authed {
		ss.s.Count("unauthorized")
		return errAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	ss.rcpts = append(ss.rcpts, to)
	return nil
}

func (ss *session) Reset() { ss.from, ss.rcpts = "", nil }

func (ss *session) Logout() error { return nil }

// The answers of a message that is not recorded: try again later.
var (
	errFull = &gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 3, 2},
		Message: "twice is busy recording earlier messages; try again later"}
	errClosed = &gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 3, 2},
		Message: "twice is not accepting messages now; try again later"}
	errNotRecorded = &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0},
		Message: "the message could not be recorded in time; try again"}
)

func smtpErrorOf(err error) error {
	switch {
	case errors.Is(err, push.ErrFull):
		return errFull
	case errors.Is(err, push.ErrClosed):
		return errClosed
	}
	return errNotRecorded
}

// Data records the message (after relaying it, in relay mode) and
// answers 250 only once the record is durable.
func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		if errors.Is(err, gosmtp.ErrDataTooLarge) {
			ss.s.Count("too_large")
		}
		return err
	}
	if err := ss.s.Check(1); err != nil {
		// Refused before anything is relayed: the client tries again.
		ss.s.Count(push.ResultOf(err))
		return smtpErrorOf(err)
	}
	m := parseMessage(raw, ss.from, ss.rcpts, ss.r.cfg, ss.r.tmpl)
	relayed := ""
	if rl := ss.r.relay; rl != nil {
		ctx, cancel := context.WithTimeout(context.Background(), submitTimeout)
		err := rl.send(ctx, ss.from, ss.rcpts, raw)
		cancel()
		if err != nil {
			// Not delivered, so not an effect: the client gets the
			// upstream's answer (or 451) and decides.
			ss.s.Count("relay_failed")
			ss.r.logf("source %s: relay to %s: %v", ss.s.Name(), rl.addr, err)
			var se *gosmtp.SMTPError
			if errors.As(err, &se) {
				return se
			}
			return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 4, 1}, Message: "relay: upstream not reachable; try again later"}
		}
		relayed = rl.addr
	}
	if m.key == "" {
		ss.s.Count("no_key")
	}
	ev, err := m.effect(ss.r.cfg, relayed, ss.r.now()).Event(ss.s.Name(), ss.r.lines.Add(1))
	if err != nil {
		// Cannot happen for a message that was read: the fields are
		// strings the event format takes.
		ss.s.Count("invalid")
		return &gosmtp.SMTPError{Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 6, 0}, Message: "message cannot be recorded"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), submitTimeout)
	err = ss.s.Submit(ctx, []sources.Record{push.EventRecord(ev)})
	cancel()
	if err != nil {
		if relayed != "" {
			// Delivered upstream: a retry by the client would send the
			// email again, which twice must never cause. The client is
			// told it went; twice's record of it may be lost.
			ss.s.Count("relayed_unrecorded")
			ss.r.logf("source %s: message %s relayed but not recorded: %v", ss.s.Name(), m.messageID, err)
			return nil
		}
		ss.s.Count(push.ResultOf(err))
		return smtpErrorOf(err)
	}
	ss.s.Count("accepted")
	return nil
}

// message is what twice reads from a message.
type message struct {
	key, jobID, messageID, subject string
	from                           string
	rcpts                          []string
	size                           int
	digest                         string // of the raw message, for one without Message-ID
}

func parseMessage(raw []byte, from string, rcpts []string, cfg Config, tmpl *keyTemplate) message {
	m := message{from: from, rcpts: slices.Clone(rcpts), size: len(raw)}
	sum := sha256.Sum256(raw)
	m.digest = hex.EncodeToString(sum[:16])
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return m
	}
	h := msg.Header
	if tmpl != nil {
		m.key, _ = tmpl.render(h)
	} else {
		m.key = strings.TrimSpace(h.Get(cfg.keyHeader()))
	}
	if cfg.JobHeader != "" {
		m.jobID = strings.TrimSpace(h.Get(cfg.JobHeader))
	}
	m.messageID = strings.TrimSpace(h.Get("Message-Id"))
	m.subject = h.Get("Subject")
	if dec, err := new(mime.WordDecoder).DecodeHeader(m.subject); err == nil {
		m.subject = dec
	}
	return m
}

// id is the event's id: the same message sent again (same Message-ID,
// same recipients) is the same observation.
func (m message) id() string {
	rcpts := make([]string, len(m.rcpts))
	for i, r := range m.rcpts {
		rcpts[i] = strings.ToLower(r)
	}
	slices.Sort(rcpts)
	h := sha256.New()
	if m.messageID != "" {
		fmt.Fprintf(h, "message-id\x00%s", m.messageID)
	} else {
		fmt.Fprintf(h, "content\x00%s", m.digest)
	}
	for _, r := range rcpts {
		fmt.Fprintf(h, "\x00%s", r)
	}
	return "smtp:" + hex.EncodeToString(h.Sum(nil)[:16])
}

// effectKey is the key header's value; else the Message-ID; else the
// digest of the message.
func (m message) effectKey() string {
	switch {
	case m.key != "":
		return m.key
	case m.messageID != "":
		return m.messageID
	}
	return "sha256:" + m.digest
}

// hashRecipient is how a redacted recipient is recorded.
func hashRecipient(r string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(r)))
	return "sha256:" + hex.EncodeToString(sum[:8])
}

func (m message) effect(cfg Config, relayed string, now time.Time) push.Effect {
	to := make([]any, len(m.rcpts))
	for i, r := range m.rcpts {
		if cfg.KeepRecipients {
			to[i] = r
		} else {
			to[i] = hashRecipient(r)
		}
	}
	attrs := map[string]any{"to": to, "from": m.from, "size": m.size}
	if m.messageID != "" {
		attrs["message_id"] = m.messageID
	}
	if m.subject != "" {
		attrs["subject"] = m.subject
	}
	if m.key == "" {
		attrs["key_header_missing"] = true
	}
	if relayed != "" {
		attrs["relay"] = relayed
	}
	return push.Effect{ID: m.id(), Time: now, Effect: cfg.effect(), EffectKey: m.effectKey(), JobID: m.jobID, Attrs: attrs}
}
