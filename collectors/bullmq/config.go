package bullmq

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/twicehq/twice/collectors/jobpath"
	"github.com/twicehq/twice/config"
)

// Type is the source type of twice.yaml: `type: bullmq`.
const Type = "bullmq"

// DefaultPrefix is BullMQ's own default key prefix.
const DefaultPrefix = "bull"

// configKeys are the keys a bullmq source takes besides name and type.
var configKeys = []string{"redis", "prefix", "queues", "key", "entity", "attrs"}

// Config is one bullmq source of twice.yaml (spec §3.1):
//
//   - name: jobs
//     type: bullmq
//     redis: rediss://twice:secret@redis.internal:6380/0
//     prefix: bull              # BullMQ's prefix option (default bull)
//     queues: [payments, "mail-*"]
//     key: data.payment
//     entity: data.order
//     attrs: {amount: data.amount}
type Config struct {
	// Redis is the URL of BullMQ's Redis: redis://[user:password@]host:port[/db],
	// or rediss:// for TLS. The user and password are an ACL user's.
	Redis string
	// Prefix is the queues' key prefix, without the colon; "" means
	// DefaultPrefix.
	Prefix string
	// Queues are queue names or path.Match globs (`mail-*`); empty reads
	// every queue under the prefix. Queues that match a glob are found by
	// SCAN, at Start and every minute after.
	Queues []string
	// Key, Entity and Attrs (name → path) are dot paths into the job's
	// payload as BullMQ stores it: data.payment (the job's data), opts.*,
	// name. A path that does not resolve leaves the field out.
	Key    string
	Entity string
	Attrs  map[string]string
}

// WithDefaults returns c with the prefix set.
func (c Config) WithDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	return c
}

// Validate checks c as the factory checks a file; each problem is a
// *config.Error whose Path is relative to the source.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &config.Error{Path: key, Msg: fmt.Sprintf(format, args...)})
	}
	if msg := checkRedisURL(c.Redis); msg != "" {
		bad("redis", "%s", msg)
	}
	if strings.HasSuffix(c.Prefix, ":") {
		bad("prefix", "%q: write it without the trailing colon", c.Prefix)
	}
	if strings.ContainsAny(c.Prefix, "*?[]") {
		bad("prefix", "%q: a prefix is a literal, not a glob", c.Prefix)
	}
	seen := map[string]bool{}
	for i, q := range c.Queues {
		key := fmt.Sprintf("queues[%d]", i)
		switch {
		case strings.TrimSpace(q) == "":
			bad(key, "empty")
		case strings.Contains(q, ":"):
			bad(key, "%q: BullMQ queue names cannot hold ':'", q)
		case seen[q]:
			bad(key, "%q listed twice", q)
		default:
			if _, err := path.Match(q, ""); err != nil {
				bad(key, "%q is not a valid glob: %v", q, err)
			}
		}
		seen[q] = true
	}
	jobpath.Check(c.Key, c.Entity, c.Attrs, nil, bad)
	return errors.Join(errs...)
}

// checkRedisURL says what is wrong with a redis URL, "" when nothing.
func checkRedisURL(s string) string {
	if strings.TrimSpace(s) == "" {
		return "required (a redis:// or rediss:// URL)"
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Sprintf("%q is not a URL", redactURL(s))
	case u.Scheme != "redis" && u.Scheme != "rediss":
		return fmt.Sprintf("want a URL like redis://host:port or rediss://host:port, got %q", redactURL(s))
	case u.Host == "":
		return fmt.Sprintf("%q names no host", redactURL(s))
	}
	return ""
}

// redactURL hides the password of a URL shown in an error or a log.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// matchQueue reports whether the queue name q is one c reads.
func (c *Config) matchQueue(q string) bool {
	if strings.Contains(q, ":") || q == "" {
		return false
	}
	if len(c.Queues) == 0 {
		return true
	}
	for _, pat := range c.Queues {
		if ok, _ := path.Match(pat, q); ok {
			return true
		}
	}
	return false
}

// literalQueues returns the queues when every entry of c.Queues is a
// plain name (no SCAN needed), nil otherwise.
func (c *Config) literalQueues() []string {
	if len(c.Queues) == 0 {
		return nil
	}
	for _, q := range c.Queues {
		if strings.ContainsAny(q, `*?[\`) {
			return nil
		}
	}
	return slices.Clone(c.Queues)
}
