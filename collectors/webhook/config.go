package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"net/url"

	"github.com/twicehq/twice/collectors/jobpath"
	"github.com/twicehq/twice/collectors/push"
	"github.com/twicehq/twice/config"
)

// Type is the source type of twice.yaml: `type: webhook`.
const Type = "webhook"

// Defaults of Config.
const (
	DefaultListen    = "127.0.0.1:8082"
	DefaultKeyHeader = "Idempotency-Key"
	DefaultEffect    = "webhook.delivered"
	// DefaultMaxKeyBodyBytes is how much of a body key_path reads.
	DefaultMaxKeyBodyBytes = 1 << 20
	// TokenHeader carries the token when one is set; it is removed
	// before the request is forwarded.
	TokenHeader = "X-Twice-Token"
)

// configKeys are the keys a webhook source takes besides name and type.
var configKeys = []string{"listen", "upstream", "key_header", "key_path", "job_header", "id_header", "effect",
	"max_key_body_bytes", "max_pending", "max_rate", "token", "token_file", "token_env", "tls"}

// Config is one webhook source of twice.yaml (spec §3.1):
//
//   - name: partner-hooks
//     type: webhook
//     listen: 127.0.0.1:8082              # default; another interface needs a token
//     upstream: https://partner.example.com   # where requests go (its path is prefixed)
//     key_header: Idempotency-Key          # default, or:
//     key_path: data.payment_id            # a dot path into a JSON body
//     job_header: X-Job-Id                 # optional
//     id_header: Webhook-Id                # optional: the delivery's own id
//     effect: webhook.delivered            # default
type Config struct {
	// Listen is the address the proxy binds; "" means DefaultListen.
	Listen string
	// Upstream is the URL requests are forwarded to: scheme, host and an
	// optional path prefix.
	Upstream string
	// KeyHeader names the request header whose value is the effect_key;
	// KeyPath is instead a dot path into a JSON request body. At most one
	// is set; neither means DefaultKeyHeader.
	KeyHeader, KeyPath string
	// JobHeader, when set, names the header carrying the job_id.
	JobHeader string
	// IDHeader, when set, names a header whose value identifies the
	// delivery (sent again unchanged on a retry); without it the body's
	// digest does.
	IDHeader string
	// Effect is the effect type; "" means DefaultEffect.
	Effect string
	// MaxKeyBodyBytes caps what key_path reads of a body; 0 means
	// DefaultMaxKeyBodyBytes.
	MaxKeyBodyBytes int
	// MaxPending caps the deliveries waiting to be durable; 0 means
	// push.DefaultMaxPending.
	MaxPending int
	// MaxRate caps the requests per second the endpoint answers (429
	// beyond, counted as rate_limited); 0 means push.DefaultMaxRate.
	MaxRate int
	// Token, when set, must come in the X-Twice-Token header (required to
	// listen beyond loopback).
	Token config.Secret
	// TLS, when set, makes the proxy serve HTTPS.
	TLS *push.TLSFiles
}

func (c *Config) listen() string {
	if c.Listen == "" {
		return DefaultListen
	}
	return c.Listen
}

func (c *Config) keyHeader() string {
	if c.KeyHeader == "" && c.KeyPath == "" {
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

func (c *Config) maxKeyBody() int64 {
	if c.MaxKeyBodyBytes == 0 {
		return DefaultMaxKeyBodyBytes
	}
	return int64(c.MaxKeyBodyBytes)
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
	} else if !push.IsLoopback(c.listen()) && !c.Token.IsSet() {
		bad("listen", "%q is reachable beyond this machine: set token (or token_file, token_env; clients send it in %s), or listen on 127.0.0.1", c.listen(), TokenHeader)
	}
	if u, err := url.Parse(c.Upstream); c.Upstream == "" {
		bad("upstream", "required: the URL requests are forwarded to")
	} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		bad("upstream", "want http(s)://host[:port][/path], got %q", redactURL(c.Upstream))
	}
	if c.KeyHeader != "" && c.KeyPath != "" {
		bad("key_path", "give key_header or key_path, not both")
	}
	if _, err := jobpath.Parse(c.KeyPath); err != nil {
		bad("key_path", "%v", err)
	}
	for key, h := range map[string]string{"key_header": c.KeyHeader, "job_header": c.JobHeader, "id_header": c.IDHeader} {
		if h != "" && !validHeaderName(h) {
			bad(key, "%q is not a header name", h)
		}
	}
	if err := c.Token.Validate(); err != nil {
		bad("token", "%v", err)
	}
	if c.MaxKeyBodyBytes < 0 {
		bad("max_key_body_bytes", "must be at least 1, got %d", c.MaxKeyBodyBytes)
	}
	if c.MaxPending < 0 {
		bad("max_pending", "must be at least 1, got %d", c.MaxPending)
	}
	if c.MaxRate < 0 {
		bad("max_rate", "must be at least 1, got %d", c.MaxRate)
	}
	return errors.Join(errs...)
}

func validHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for _, r := range h {
		if r <= ' ' || r > '~' || r == ':' {
			return false
		}
	}
	return textproto.CanonicalMIMEHeaderKey(h) != ""
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// decode reads a source block; problems are recorded in m.
func decode(m *config.SourceMapping) *Config {
	m.Known(configKeys...)
	c := &Config{}
	good := m.Require("upstream")
	read := func(key string, ok bool) {
		if m.Has(key) && !ok {
			good = false
		}
	}
	read("listen", m.String("listen", &c.Listen))
	read("upstream", m.String("upstream", &c.Upstream))
	read("key_header", m.String("key_header", &c.KeyHeader))
	read("key_path", m.String("key_path", &c.KeyPath))
	read("job_header", m.String("job_header", &c.JobHeader))
	read("id_header", m.String("id_header", &c.IDHeader))
	read("effect", m.String("effect", &c.Effect))
	read("max_key_body_bytes", m.Int("max_key_body_bytes", &c.MaxKeyBodyBytes, 1))
	read("max_pending", m.Int("max_pending", &c.MaxPending, 1))
	read("max_rate", m.Int("max_rate", &c.MaxRate, 1))
	c.Token = m.Secret("token")
	c.TLS = push.DecodeTLS(m, "tls")
	if good {
		m.ReportInvalid(c.Validate(), nil)
	}
	return c
}
