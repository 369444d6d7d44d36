package smtp

import (
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strings"

	"github.com/twicehq/twice/collectors/push"
	"github.com/twicehq/twice/config"
)

// Type is the source type of twice.yaml: `type: smtp`.
const Type = "smtp"

// Defaults of Config.
const (
	DefaultListen          = "127.0.0.1:2525"
	DefaultKeyHeader       = "X-Idempotency-Key"
	DefaultEffect          = "email.sent"
	DefaultMaxMessageBytes = 25 << 20
	// DefaultMaxConnections caps the clients served at once (each may
	// hold a message of max_message_bytes in memory).
	DefaultMaxConnections = 100
)

// configKeys are the keys an smtp source takes besides name and type.
var configKeys = []string{"listen", "key_header", "key_template", "job_header", "effect", "relay", "redact_recipients",
	"max_message_bytes", "max_pending", "max_connections", "username", "password", "password_file", "password_env", "tls"}

// relayKeys are the keys of a relay mapping.
var relayKeys = []string{"address", "starttls", "ca_file", "username", "password", "password_file", "password_env"}

// Config is one smtp source of twice.yaml (spec §3.1):
//
//   - name: mail
//     type: smtp
//     listen: 127.0.0.1:2525             # default; another interface needs username/password
//     key_header: X-Idempotency-Key      # default: its value is the effect_key
//     # key_template: "receipt/{{X-Payment-Id}}"   # instead: a template over headers
//     job_header: X-Job-Id               # optional: its value is the job_id
//     effect: email.sent                 # default
//     redact_recipients: true            # default: recipients are recorded as hashes
//     max_message_bytes: 26214400        # default 25 MiB
//     max_connections: 100               # default: clients served at once
//     relay:                             # optional: forward every message upstream
//     address: smtp.example.com:587
//     starttls: true                   # default
//     ca_file: /etc/ssl/upstream.pem   # optional: trust this CA for STARTTLS
//     username: app
//     password_file: /run/secrets/smtp # or password: …, or password_env: NAME
//
// `relay: smtp.example.com:587` is short for a relay with that address
// and the defaults.
type Config struct {
	// Listen is the address the SMTP server binds; "" means
	// DefaultListen.
	Listen string
	// KeyHeader names the header whose value is the effect_key; ""
	// means DefaultKeyHeader. A message without it is keyed by its
	// Message-ID (and counted as "no_key").
	KeyHeader string
	// KeyTemplate, instead of KeyHeader, renders the effect_key from
	// headers: "receipt/{{X-Payment-Id}}". A message without one of its
	// headers is keyed as one without the key header.
	KeyTemplate string
	// JobHeader, when set, names the header whose value is the job_id.
	JobHeader string
	// Effect is the effect type; "" means DefaultEffect.
	Effect string
	// KeepRecipients records recipients as written; by default
	// (redact_recipients: true) they are recorded as hashes.
	KeepRecipients bool
	// MaxMessageBytes caps a message; 0 means DefaultMaxMessageBytes.
	MaxMessageBytes int
	// MaxPending caps the messages received and not yet durable; 0 means
	// push.DefaultMaxPending.
	MaxPending int
	// MaxConnections caps the clients served at once; more wait to be
	// accepted. 0 means DefaultMaxConnections.
	MaxConnections int
	// Username and Password, when set, are the credentials clients must
	// give with SMTP AUTH PLAIN (required to listen beyond loopback).
	Username string
	Password config.Secret
	// Relay, when set, is the upstream every message is forwarded to.
	Relay *Relay
	// TLS, when set, is the certificate the server offers with STARTTLS.
	TLS *push.TLSFiles
}

// Relay is an upstream SMTP server.
type Relay struct {
	// Address is host:port.
	Address string
	// NoStartTLS turns STARTTLS off (starttls: false); by default the
	// relay must offer it.
	NoStartTLS bool
	// CAFile, when set, is the PEM file of the CAs trusted for STARTTLS
	// (instead of the system's).
	CAFile string
	// Username and Password authenticate with AUTH PLAIN when set.
	Username string
	Password config.Secret
}

func (c *Config) listen() string {
	if c.Listen == "" {
		return DefaultListen
	}
	return c.Listen
}

func (c *Config) keyHeader() string {
	if c.KeyHeader == "" {
		return DefaultKeyHeader
	}
	return c.KeyHeader
}

func (c *Config) effect() string {
	if c.Effect == "" {
		return DefaultEffect
	}
	return c.Effect
}

// Validate checks c as the factory checks a file; each problem is a
// *config.Error whose Path is relative to the source.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &config.Error{Path: key, Msg: fmt.Sprintf(format, args...)})
	}
	if _, _, err := net.SplitHostPort(c.listen()); err != nil {
		bad("listen", "want host:port, got %q", c.Listen)
	} else if !push.IsLoopback(c.listen()) && (c.Username == "" || !c.Password.IsSet()) {
		bad("listen", "%q is reachable beyond this machine: set username and password (clients then log in with AUTH PLAIN), or listen on 127.0.0.1", c.listen())
	}
	if (c.Username == "") != !c.Password.IsSet() {
		bad("username", "username and password go together")
	}
	if err := c.Password.Validate(); err != nil {
		bad("password", "%v", err)
	}
	if c.KeyTemplate != "" {
		if c.KeyHeader != "" {
			bad("key_template", "give key_header or key_template, not both")
		}
		if _, err := parseKeyTemplate(c.KeyTemplate); err != nil {
			bad("key_template", "%v", err)
		}
	}
	for key, h := range map[string]string{"key_header": c.KeyHeader, "job_header": c.JobHeader} {
		if h != "" && !validHeaderName(h) {
			bad(key, "%q is not a header name", h)
		}
	}
	if c.MaxMessageBytes < 0 {
		bad("max_message_bytes", "must be at least 1, got %d", c.MaxMessageBytes)
	}
	if c.MaxPending < 0 {
		bad("max_pending", "must be at least 1, got %d", c.MaxPending)
	}
	if c.MaxConnections < 0 {
		bad("max_connections", "must be at least 1, got %d", c.MaxConnections)
	}
	if r := c.Relay; r != nil {
		if _, _, err := net.SplitHostPort(r.Address); err != nil {
			bad("relay.address", "want host:port, got %q", r.Address)
		}
		if (r.Username == "") != !r.Password.IsSet() {
			bad("relay.username", "username and password go together")
		}
		if err := r.Password.Validate(); err != nil {
			bad("relay.password", "%v", err)
		}
	}
	return errors.Join(errs...)
}

func validHeaderName(h string) bool {
	if strings.TrimSpace(h) != h || h == "" {
		return false
	}
	for _, r := range h {
		if r <= ' ' || r > '~' || r == ':' {
			return false
		}
	}
	return textproto.CanonicalMIMEHeaderKey(h) != ""
}

// decode reads a source block; problems are recorded in m.
func decode(m *config.SourceMapping) *Config {
	m.Known(configKeys...)
	c := &Config{}
	good := true
	read := func(key string, ok bool) {
		if m.Has(key) && !ok {
			good = false
		}
	}
	read("listen", m.String("listen", &c.Listen))
	read("key_header", m.String("key_header", &c.KeyHeader))
	read("key_template", m.String("key_template", &c.KeyTemplate))
	read("job_header", m.String("job_header", &c.JobHeader))
	read("effect", m.String("effect", &c.Effect))
	redact := true
	read("redact_recipients", m.Bool("redact_recipients", &redact))
	c.KeepRecipients = !redact
	read("max_message_bytes", m.Int("max_message_bytes", &c.MaxMessageBytes, 1))
	read("max_pending", m.Int("max_pending", &c.MaxPending, 1))
	read("max_connections", m.Int("max_connections", &c.MaxConnections, 1))
	read("username", m.String("username", &c.Username))
	c.Password = m.Secret("password")
	c.TLS = push.DecodeTLS(m, "tls")
	if m.Has("relay") {
		c.Relay = &Relay{}
		if m.IsMapping("relay") {
			r, ok := m.Mapping("relay")
			if ok {
				r.Known(relayKeys...)
				if r.Require("address") {
					read("relay", r.String("address", &c.Relay.Address))
				}
				starttls := true
				read("relay", r.Bool("starttls", &starttls))
				c.Relay.NoStartTLS = !starttls
				read("relay", r.File("ca_file", &c.Relay.CAFile))
				read("relay", r.String("username", &c.Relay.Username))
				c.Relay.Password = r.Secret("password")
			}
		} else {
			read("relay", m.String("relay", &c.Relay.Address))
		}
	}
	if good {
		m.ReportInvalid(c.Validate(), nil)
	}
	return c
}
