package sidekiq

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/twicehq/twice/collectors/jobpath"
	"github.com/twicehq/twice/config"
)

// The modes of a sidekiq source.
const (
	// ModePoll reads Sidekiq's own Redis structures every PollInterval
	// and turns what changed into events. Nothing changes in the workers.
	ModePoll = "poll"
	// ModeMiddleware reads the Redis stream that twice's Sidekiq
	// middleware (integrations/sidekiq/twice_middleware.rb) writes: exact
	// lifecycle events.
	ModeMiddleware = "middleware"
)

// Defaults of the keys a sidekiq source may leave out.
const (
	DefaultMode         = ModePoll
	DefaultPollInterval = time.Second
	// DefaultStream is the stream the middleware writes, before the
	// namespace: the middleware's default too.
	DefaultStream = "twice:sidekiq:events"
	// DefaultMaxList caps how many jobs of one queue list, and of the
	// retry set, one poll reads: the newest DefaultMaxList.
	DefaultMaxList = 10000
)

// Config is one sidekiq source of twice.yaml (spec §3.1): where Sidekiq's
// Redis is and how its job payloads become event fields.
type Config struct {
	// Redis is the URL of Sidekiq's Redis: redis://[user:password@]host:port[/db],
	// or rediss:// for TLS.
	Redis string `yaml:"redis"`
	// Queues are the queue names (or path.Match globs) read; empty reads
	// every queue.
	Queues []string `yaml:"queues"`
	// Namespace is the redis-namespace prefix of Sidekiq's keys, without
	// the colon; "" for none.
	Namespace string `yaml:"namespace"`
	// Mode is ModePoll (default) or ModeMiddleware.
	Mode string `yaml:"mode"`

	// Key, Entity and Attrs are dot paths into the job payload as Sidekiq
	// stores it (args.0, args.0.payment, tags.0): the event fields the
	// queue cannot know. A path that does not resolve leaves the field
	// out.
	Key    string            `yaml:"key"`
	Entity string            `yaml:"entity"`
	Attrs  map[string]string `yaml:"attrs"`

	// PollInterval is how often poll mode reads Redis; default 1s.
	PollInterval time.Duration `yaml:"poll_interval"`
	// MaxList caps the jobs read per queue list and from the retry set in
	// one poll; default DefaultMaxList.
	MaxList int `yaml:"max_list"`
	// Stream is the middleware's stream key, before the namespace;
	// default DefaultStream.
	Stream string `yaml:"stream"`
}

// WithDefaults returns c with every unset key of its mode at its default.
func (c Config) WithDefaults() Config {
	if c.Mode == "" {
		c.Mode = DefaultMode
	}
	switch c.Mode {
	case ModePoll:
		if c.PollInterval == 0 {
			c.PollInterval = DefaultPollInterval
		}
		if c.MaxList == 0 {
			c.MaxList = DefaultMaxList
		}
	case ModeMiddleware:
		if c.Stream == "" {
			c.Stream = DefaultStream
		}
	}
	return c
}

// Validate reports every problem of c at once, each a *config.Error
// whose Path is the key, joined with errors.Join.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &config.Error{Path: key, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case strings.TrimSpace(c.Redis) == "":
		bad("redis", "required (a redis:// or rediss:// URL)")
	default:
		u, err := url.Parse(c.Redis)
		switch {
		case err != nil:
			bad("redis", "%q is not a URL", redactURL(c.Redis))
		case u.Scheme != "redis" && u.Scheme != "rediss":
			bad("redis", "want a URL like redis://host:port or rediss://host:port, got %q", redactURL(c.Redis))
		case u.Host == "":
			bad("redis", "%q names no host", redactURL(c.Redis))
		}
	}
	seen := map[string]bool{}
	for i, q := range c.Queues {
		key := fmt.Sprintf("queues[%d]", i)
		switch {
		case strings.TrimSpace(q) == "":
			bad(key, "empty")
		case seen[q]:
			bad(key, "%q listed twice", q)
		default:
			if _, err := path.Match(q, ""); err != nil {
				bad(key, "%q is not a valid glob: %v", q, err)
			}
		}
		seen[q] = true
	}
	if strings.HasSuffix(c.Namespace, ":") {
		bad("namespace", "%q: write it without the trailing colon", c.Namespace)
	}
	switch c.Mode {
	case "", ModePoll, ModeMiddleware:
	default:
		bad("mode", "want one of %s, %s, got %q", ModePoll, ModeMiddleware, c.Mode)
	}
	jobpath.Check(c.Key, c.Entity, c.Attrs, nil, bad)
	if c.PollInterval < 0 || (c.PollInterval > 0 && c.PollInterval < 10*time.Millisecond) {
		bad("poll_interval", "%v, want at least 10ms", c.PollInterval)
	}
	if c.PollInterval != 0 && c.Mode == ModeMiddleware {
		bad("poll_interval", "only for mode %s", ModePoll)
	}
	if c.MaxList < 0 {
		bad("max_list", "%d, want a positive number", c.MaxList)
	}
	if c.MaxList != 0 && c.Mode == ModeMiddleware {
		bad("max_list", "only for mode %s", ModePoll)
	}
	if c.Stream != "" && c.Mode != ModeMiddleware {
		bad("stream", "only for mode %s", ModeMiddleware)
	}
	return errors.Join(errs...)
}

// matchQueue reports whether the queue is read: every queue when the list
// is empty.
func (c Config) matchQueue(q string) bool {
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

// redactURL hides a URL's password, for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}
