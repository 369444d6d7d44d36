package ingest

import (
	"errors"
	"fmt"
	"net"

	"github.com/twicehq/twice/collectors/push"
	"github.com/twicehq/twice/config"
)

// Type is the source type of twice.yaml: `type: ingest`.
const Type = "ingest"

// Defaults of Config.
const (
	DefaultListen       = "127.0.0.1:8081"
	DefaultMaxBodyBytes = 10 << 20
	// DefaultMaxPending is larger than push's: a body of
	// DefaultMaxBodyBytes holds tens of thousands of events.
	DefaultMaxPending = 100_000
)

// configKeys are the keys an ingest source takes besides name and type.
var configKeys = []string{"listen", "token", "token_file", "token_env", "max_body_bytes", "max_pending", "max_rate", "tls"}

// Config is one ingest source of twice.yaml (spec §3.1):
//
//   - name: api
//     type: ingest
//     listen: 127.0.0.1:8081       # default; another interface needs a token
//     token_file: /run/secrets/twice-ingest   # or token: …, or token_env: NAME
//     max_body_bytes: 10485760     # default 10 MiB; a larger body is answered 413
//     max_pending: 10000           # events received and not yet durable; then 503
//     max_rate: 1000               # requests per second; then 429 (default 1000)
type Config struct {
	// Listen is the address the HTTP server binds; "" means
	// DefaultListen.
	Listen string
	// Token is the bearer token clients must send (Authorization: Bearer
	// TOKEN); none means no authentication, allowed on loopback only.
	Token config.Secret
	// MaxBodyBytes caps a request body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int
	// MaxPending caps the events received and not yet durable; 0 means
	// DefaultMaxPending.
	MaxPending int
	// MaxRate caps the requests per second the endpoint answers (429
	// beyond, counted as rate_limited); 0 means push.DefaultMaxRate.
	MaxRate int
	// TLS, when set, makes the server serve HTTPS.
	TLS *push.TLSFiles
}

func (c *Config) listen() string {
	if c.Listen == "" {
		return DefaultListen
	}
	return c.Listen
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
		bad("listen", "%q is reachable beyond this machine: set token (or token_file, token_env), or listen on 127.0.0.1", c.listen())
	}
	if err := c.Token.Validate(); err != nil {
		bad("token", "%v", err)
	}
	if c.MaxBodyBytes < 0 {
		bad("max_body_bytes", "must be at least 1, got %d", c.MaxBodyBytes)
	}
	if c.MaxPending < 0 {
		bad("max_pending", "must be at least 1, got %d", c.MaxPending)
	}
	if c.MaxRate < 0 {
		bad("max_rate", "must be at least 1, got %d", c.MaxRate)
	}
	return errors.Join(errs...)
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
	c.Token = m.Secret("token")
	read("max_body_bytes", m.Int("max_body_bytes", &c.MaxBodyBytes, 1))
	read("max_pending", m.Int("max_pending", &c.MaxPending, 1))
	read("max_rate", m.Int("max_rate", &c.MaxRate, 1))
	c.TLS = push.DecodeTLS(m, "tls")
	if good {
		m.ReportInvalid(c.Validate(), nil)
	}
	return c
}
