package celery

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/twicehq/twice/collectors/jobpath"
	"github.com/twicehq/twice/config"
)

// Type is the source type of twice.yaml: `type: celery`.
const Type = "celery"

// DefaultPrefetch is how many events the RabbitMQ consumer holds
// unacknowledged (read, not yet covered by a checkpoint) by default.
const DefaultPrefetch = 10_000

// configKeys are the keys a celery source takes besides name and type.
var configKeys = []string{"broker", "queue", "prefetch", "key", "entity", "attrs"}

// Config is one celery source of twice.yaml (spec §3.1):
//
//   - name: tasks
//     type: celery
//     broker: amqp://twice:secret@rabbitmq.internal:5672/app   # or redis://…
//     queue: twice.celeryev.tasks   # RabbitMQ only: twice's own durable queue
//     prefetch: 10000               # RabbitMQ only: events held until a checkpoint
//     key: kwargs.payment           # or args.0
//     entity: kwargs.order
//     attrs: {amount: kwargs.amount}
type Config struct {
	// Broker is Celery's broker_url: amqp:// or amqps:// (RabbitMQ; the
	// path is the vhost) or redis:// or rediss:// (the path is the
	// database number).
	Broker string
	// Queue is the name of twice's own durable queue on RabbitMQ, bound
	// to the celeryev exchange; "" means "twice.celeryev." + the source's
	// name. Ignored on Redis.
	Queue string
	// Prefetch caps the events read from RabbitMQ and not yet
	// acknowledged (acks follow checkpoints); 0 means DefaultPrefetch.
	Prefetch int
	// Key, Entity and Attrs (name → path) are dot paths into the task as
	// its task-sent and task-received events carry it: args.0 (a
	// positional argument), kwargs.payment (a keyword argument),
	// kwargs.order.id; name. A path that does not resolve leaves the
	// field out.
	Key    string
	Entity string
	Attrs  map[string]string
}

// transport is what a broker URL names.
type transport int

const (
	transportAMQP transport = iota + 1
	transportRedis
)

// transport returns the broker's transport; 0 for a bad URL.
func (c *Config) transport() transport {
	u, err := url.Parse(c.Broker)
	if err != nil {
		return 0
	}
	switch u.Scheme {
	case "amqp", "amqps", "pyamqp":
		return transportAMQP
	case "redis", "rediss":
		return transportRedis
	}
	return 0
}

// Validate checks c as the factory checks a file; each problem is a
// *config.Error whose Path is relative to the source.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &config.Error{Path: key, Msg: fmt.Sprintf(format, args...)})
	}
	if msg := checkBrokerURL(c.Broker); msg != "" {
		bad("broker", "%s", msg)
	}
	if c.Queue != "" && (strings.TrimSpace(c.Queue) != c.Queue || len(c.Queue) > 255) {
		bad("queue", "%q: a RabbitMQ queue name of at most 255 bytes, without surrounding spaces", c.Queue)
	}
	if strings.HasPrefix(c.Queue, "amq.") {
		bad("queue", "%q: names starting with amq. are RabbitMQ's own", c.Queue)
	}
	if c.Prefetch < 0 || c.Prefetch > 65535 {
		bad("prefetch", "must be between 1 and 65535, got %d", c.Prefetch)
	}
	jobpath.Check(c.Key, c.Entity, c.Attrs, checkRoot, bad)
	return errors.Join(errs...)
}

// checkBrokerURL says what is wrong with a broker URL, "" when nothing.
func checkBrokerURL(s string) string {
	if strings.TrimSpace(s) == "" {
		return "required (amqp://… for RabbitMQ, redis://… for Redis)"
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Sprintf("%q is not a URL", redactURL(s))
	case u.Host == "":
		return fmt.Sprintf("%q names no host", redactURL(s))
	}
	switch u.Scheme {
	case "amqp", "amqps", "pyamqp":
	case "redis", "rediss":
		if db := strings.Trim(u.Path, "/"); db != "" {
			if n, err := strconv.Atoi(db); err != nil || n < 0 {
				return fmt.Sprintf("%q: the path of a redis URL is a database number", redactURL(s))
			}
		}
	default:
		return fmt.Sprintf("want amqp://host:port/vhost or redis://host:port/db, got %q", redactURL(s))
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

// decode reads a source block; problems are recorded in m.
func decode(m *config.SourceMapping) *Config {
	m.Known(configKeys...)
	c := &Config{}
	decoded := map[string]bool{}
	ok := func(key string, good bool) {
		if good || !m.Has(key) {
			decoded[key] = true
		}
	}
	if m.Require("broker") {
		ok("broker", m.String("broker", &c.Broker))
	}
	ok("queue", m.String("queue", &c.Queue))
	ok("prefetch", m.Int("prefetch", &c.Prefetch, 1))
	ok("key", m.String("key", &c.Key))
	ok("entity", m.String("entity", &c.Entity))
	ok("attrs", m.StringMap("attrs", &c.Attrs))
	// What Validate checks beyond types, at the key it is about; a key
	// whose value did not decode has its error already.
	m.ReportInvalid(c.Validate(), decoded)
	return c
}
