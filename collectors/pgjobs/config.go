package pgjobs

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/twicehq/twice/collectors/jobpath"
	"github.com/twicehq/twice/config"
)

// Defaults of the keys a job-table source may leave out.
const (
	DefaultSchema       = "public"
	DefaultPollInterval = time.Second
	// DefaultGapTimeout is how long an id missing between ids already
	// read may still come (an insert whose transaction has not committed
	// yet) before it counts as lost coverage.
	DefaultGapTimeout = time.Minute
)

// Config is one river or oban source of twice.yaml (spec §3.1).
type Config struct {
	// Postgres is the URL of the database that holds the job table:
	// postgres://user:password@host:port/db?sslmode=...
	Postgres string
	// Schema is the schema of the table (River's schema, Oban's prefix);
	// default public.
	Schema string
	// Key, Entity and Attrs are dot paths into the job as the table keeps
	// it: args.payment_id, meta.tenant (see the dialect's roots).
	Key    string
	Entity string
	Attrs  map[string]string
	// PollInterval is how often the table is read when no notification
	// comes sooner; default 1s.
	PollInterval time.Duration
	// GapTimeout is how long a missing id may still appear before it is
	// reported as lost; default 1m.
	GapTimeout time.Duration

	// schemaKey is the config key of Schema ("schema" or "prefix"), for
	// messages; roots are the payload's top-level members.
	schemaKey string
	roots     []string
}

// WithDefaults returns c with every unset key at its default.
func (c Config) WithDefaults() Config {
	if c.Schema == "" {
		c.Schema = DefaultSchema
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.GapTimeout == 0 {
		c.GapTimeout = DefaultGapTimeout
	}
	return c
}

// Validate reports every problem of c at once, each a *config.Error whose
// Path is the key, joined with errors.Join.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &config.Error{Path: key, Msg: fmt.Sprintf(format, args...)})
	}
	switch u, err := url.Parse(c.Postgres); {
	case strings.TrimSpace(c.Postgres) == "":
		bad("postgres", "required (a postgres:// URL)")
	case err != nil:
		bad("postgres", "%q is not a URL", RedactURL(c.Postgres))
	case u.Scheme != "postgres" && u.Scheme != "postgresql":
		bad("postgres", "want a URL like postgres://user@host:5432/db, got %q", RedactURL(c.Postgres))
	case u.Host == "":
		bad("postgres", "%q names no host", RedactURL(c.Postgres))
	}
	key := c.schemaKey
	if key == "" {
		key = "schema"
	}
	if c.Schema != "" && !validIdent(c.Schema) {
		bad(key, "%q: want a schema name (letters, digits, _ and $, not starting with a digit)", c.Schema)
	}
	jobpath.Check(c.Key, c.Entity, c.Attrs, c.rootCheck(), bad)
	if c.PollInterval < 0 || (c.PollInterval > 0 && c.PollInterval < 10*time.Millisecond) {
		bad("poll_interval", "%v, want at least 10ms", c.PollInterval)
	}
	if c.GapTimeout < 0 {
		bad("gap_timeout", "%v, want a positive duration", c.GapTimeout)
	}
	return errors.Join(errs...)
}

// rootCheck restricts paths to the payload's members, when known.
func (c Config) rootCheck() jobpath.RootCheck {
	if len(c.roots) == 0 {
		return nil
	}
	return func(p string, path jobpath.Path) error {
		for _, r := range c.roots {
			if path[0] == r {
				return nil
			}
		}
		return fmt.Errorf("path %q: starts with %q, want one of %s", p, path[0], strings.Join(c.roots, ", "))
	}
}

// validIdent reports whether s is an unquoted Postgres identifier; twice
// quotes it all the same.
func validIdent(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'):
		case i > 0 && (r == '$' || (r >= '0' && r <= '9')):
		default:
			return false
		}
	}
	return true
}

// RedactURL hides a URL's password, for messages.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// decode reads the keys of a job-table source into a *Config whose
// problems are recorded at their keys.
func decode(d *Dialect, m *config.SourceMapping) *Config {
	keys := []string{"postgres", d.SchemaKey, "key", "entity", "attrs", "poll_interval", "gap_timeout"}
	m.Known(keys...)
	c := &Config{schemaKey: d.SchemaKey, roots: d.Roots}
	decoded := map[string]bool{}
	ok := func(key string, good bool) {
		if good || !m.Has(key) {
			decoded[key] = true
		}
	}
	if m.Require("postgres") {
		ok("postgres", m.URL("postgres", &c.Postgres, "postgres", "postgresql"))
	}
	ok(d.SchemaKey, m.String(d.SchemaKey, &c.Schema))
	ok("key", m.String("key", &c.Key))
	ok("entity", m.String("entity", &c.Entity))
	ok("attrs", m.StringMap("attrs", &c.Attrs))
	ok("poll_interval", m.Duration("poll_interval", &c.PollInterval))
	ok("gap_timeout", m.Duration("gap_timeout", &c.GapTimeout))
	// What Validate checks beyond types, at the key it is about; a key
	// whose value did not decode has its error already.
	m.ReportInvalid(c.Validate(), decoded)
	return c
}
