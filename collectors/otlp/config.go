package otlp

import (
	"errors"
	"fmt"
	"net"
	"path"

	"github.com/twicehq/twice/collectors/push"
	"github.com/twicehq/twice/config"
)

// Type is the source type of twice.yaml: `type: otlp`.
const Type = "otlp"

// Defaults of Config.
const (
	// DefaultListen is OTLP/HTTP's registered port, on loopback.
	DefaultListen = "127.0.0.1:4318"
	// DefaultEffectAttr is the span attribute naming the effect a span
	// is.
	DefaultEffectAttr = "twice.effect"
	// DefaultKeyAttr is the span attribute holding the effect_key.
	DefaultKeyAttr = "twice.effect_key"
	// DefaultJobAttr is the span attribute holding the job_id on an
	// effect span (and on a job span, before messaging.message.id).
	DefaultJobAttr = "twice.job_id"
	// DefaultAttemptAttr is the span attribute holding the attempt.
	DefaultAttemptAttr = "twice.attempt"
	// DefaultJobTypeAttr is the attribute holding a job span's job_type
	// (the span name when absent).
	DefaultJobTypeAttr = "twice.job_type"
	// DefaultMaxBodyBytes caps a request body, decompressed.
	DefaultMaxBodyBytes = 16 << 20
)

// configKeys are the keys an otlp source takes besides name and type.
var configKeys = []string{
	"listen", "grpc_listen", "token", "token_file", "token_env",
	"effect_attr", "key_attr", "job_attr", "attempt_attr", "job_type_attr", "queue_attr", "failed_events", "match", "attrs", "jobs",
	"max_body_bytes", "max_pending", "max_rate", "tls",
}

// Rule makes the spans of a name effects: `match: {NAME: EFFECT}` or
// `match: {NAME: {effect: EFFECT, key_attr: ATTR}}`.
type Rule struct {
	// Span is the span name, or a glob of it (path.Match: `*`, `?`,
	// `[…]`).
	Span string
	// Effect is the effect type the matching spans are.
	Effect string
	// KeyAttr, when set, is the attribute holding the effect_key of the
	// matching spans instead of Config.KeyAttr.
	KeyAttr string
}

// Config is one otlp source of twice.yaml:
//
//   - name: traces
//     type: otlp
//     listen: 127.0.0.1:4318        # OTLP/HTTP (POST /v1/traces); default
//     grpc_listen: 127.0.0.1:4317   # optional OTLP/gRPC
//     token_env: TWICE_OTLP_TOKEN   # or token, token_file; needed beyond loopback
//     effect_attr: twice.effect     # the attribute naming a span's effect
//     key_attr: twice.effect_key    # the attribute holding its effect_key
//     job_attr: twice.job_id        # the attribute holding its job_id
//     attempt_attr: twice.attempt   # the attribute holding its attempt
//     job_type_attr: twice.job_type # a job span's job_type (else its name)
//     queue_attr: messaging.destination.name   # a job span's queue
//     failed_events: ["job failed"]  # span events that mean the attempt failed
//     match:                        # spans that are effects by name
//     smtp.send: email.sent
//     "POST /v1/charges": {effect: payment.charged, key_attr: http.request.header.idempotency-key}
//     attrs: {service: service.name}   # event attrs from span (or resource) attributes
//     jobs: true                    # consumer spans become job events
//     max_body_bytes: 16777216
//     max_pending: 10000
//     max_rate: 1000             # HTTP requests per second; then 429
//     tls: {cert_file: server.pem, key_file: server-key.pem}   # both listeners
type Config struct {
	// Listen is the OTLP/HTTP address; "" means DefaultListen.
	Listen string
	// GRPCListen, when set, is the OTLP/gRPC address.
	GRPCListen string
	// Token is the bearer token exporters must send; needed when a
	// listener is reachable beyond loopback.
	Token config.Secret
	// TLS, when set, makes both listeners serve TLS with its certificate
	// (OTLP/HTTPS and gRPC over TLS).
	TLS *push.TLSFiles
	// EffectAttr, KeyAttr, JobAttr and AttemptAttr name span attributes;
	// "" means their defaults.
	EffectAttr, KeyAttr, JobAttr, AttemptAttr string
	// JobTypeAttr names the attribute holding a job span's job_type;
	// "" means DefaultJobTypeAttr. Without it the span name is the
	// job_type.
	JobTypeAttr string
	// QueueAttr names the attribute holding a job span's queue; ""
	// means messaging.destination.name.
	QueueAttr string
	// FailedEvents names span events that mean a job span's attempt
	// failed even though the span's status is not ERROR (BullMQ records
	// "job failed" and leaves the status unset).
	FailedEvents []string
	// Match lists the rules by span name, in file order; the first that
	// matches a span without EffectAttr applies.
	Match []Rule
	// Attrs maps event attrs names to span attribute names (looked up on
	// the span, then its resource).
	Attrs map[string]string
	// Jobs makes consumer (message processing) spans job events; nil
	// means true.
	Jobs *bool
	// MaxBodyBytes caps a request body after decompression; 0 means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int
	// MaxPending caps the records received and not yet durable; 0 means
	// push.DefaultMaxPending.
	MaxPending int
	// MaxRate caps the requests per second the endpoint answers (429
	// beyond, counted as rate_limited); 0 means push.DefaultMaxRate.
	MaxRate int
}

func (c *Config) listen() string     { return or(c.Listen, DefaultListen) }
func (c *Config) effectAttr() string { return or(c.EffectAttr, DefaultEffectAttr) }
func (c *Config) keyAttr() string    { return or(c.KeyAttr, DefaultKeyAttr) }
func (c *Config) jobAttr() string    { return or(c.JobAttr, DefaultJobAttr) }
func (c *Config) attemptAttr() string {
	return or(c.AttemptAttr, DefaultAttemptAttr)
}
func (c *Config) jobTypeAttr() string {
	return or(c.JobTypeAttr, DefaultJobTypeAttr)
}
func (c *Config) queueAttr() string { return or(c.QueueAttr, attrDestination) }
func (c *Config) jobs() bool        { return c.Jobs == nil || *c.Jobs }
func (c *Config) maxBody() int64 {
	if c.MaxBodyBytes <= 0 {
		return DefaultMaxBodyBytes
	}
	return int64(c.MaxBodyBytes)
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Validate checks c; each problem is a *config.Error whose Path is
// relative to the source.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &config.Error{Path: key, Msg: fmt.Sprintf(format, args...)})
	}
	addrs := map[string]string{"listen": c.listen()}
	if c.GRPCListen != "" {
		addrs["grpc_listen"] = c.GRPCListen
	}
	for _, key := range []string{"listen", "grpc_listen"} {
		a, ok := addrs[key]
		if !ok {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad(key, "want host:port, got %q", a)
		} else if !push.IsLoopback(a) && !c.Token.IsSet() {
			bad(key, "%q is reachable beyond this machine: set token (or token_file, token_env), or listen on 127.0.0.1", a)
		}
	}
	if _, port, _ := net.SplitHostPort(c.GRPCListen); c.GRPCListen == c.listen() && port != "0" {
		bad("grpc_listen", "is the same address as listen (%q)", c.GRPCListen)
	}
	if err := c.Token.Validate(); err != nil {
		bad("token", "%v", err)
	}
	if c.effectAttr() == c.keyAttr() {
		bad("key_attr", "is the same attribute as effect_attr (%q)", c.keyAttr())
	}
	for i, r := range c.Match {
		where := fmt.Sprintf("match.%s", r.Span)
		if r.Span == "" {
			bad(fmt.Sprintf("match[%d]", i), "a rule needs a span name")
			continue
		}
		if _, err := path.Match(r.Span, ""); err != nil {
			bad(where, "%q is not a valid glob: %v", r.Span, err)
		}
		if r.Effect == "" {
			bad(where, "a rule needs an effect")
		}
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
	read("grpc_listen", m.String("grpc_listen", &c.GRPCListen))
	c.Token = m.Secret("token")
	read("effect_attr", m.String("effect_attr", &c.EffectAttr))
	read("key_attr", m.String("key_attr", &c.KeyAttr))
	read("job_attr", m.String("job_attr", &c.JobAttr))
	read("attempt_attr", m.String("attempt_attr", &c.AttemptAttr))
	read("job_type_attr", m.String("job_type_attr", &c.JobTypeAttr))
	read("queue_attr", m.String("queue_attr", &c.QueueAttr))
	read("failed_events", m.Strings("failed_events", &c.FailedEvents))
	read("attrs", m.StringMap("attrs", &c.Attrs))
	if m.Has("jobs") {
		var b bool
		if m.Bool("jobs", &b) {
			c.Jobs = &b
		} else {
			good = false
		}
	}
	read("max_body_bytes", m.Int("max_body_bytes", &c.MaxBodyBytes, 1))
	read("max_pending", m.Int("max_pending", &c.MaxPending, 1))
	read("max_rate", m.Int("max_rate", &c.MaxRate, 1))
	c.TLS = push.DecodeTLS(m, "tls")
	if m.Has("match") {
		rules, ok := decodeMatch(m)
		c.Match = rules
		good = good && ok
	}
	if good {
		m.ReportInvalid(c.Validate(), nil)
	}
	return c
}

// decodeMatch reads `match`: a mapping of span names (or globs) to an
// effect type, or to {effect, key_attr}.
func decodeMatch(m *config.SourceMapping) ([]Rule, bool) {
	mm, ok := m.Mapping("match")
	if !ok {
		return nil, false
	}
	var rules []Rule
	good := true
	for _, name := range mm.Keys() {
		r := Rule{Span: name}
		if mm.IsMapping(name) {
			rm, ok := mm.Mapping(name)
			if !ok {
				good = false
				continue
			}
			rm.Known("effect", "key_attr")
			if !rm.Has("effect") {
				rm.Errorf("", "missing effect: the effect type of the spans named %q", name)
				good = false
			} else if !rm.String("effect", &r.Effect) {
				good = false
			}
			if rm.Has("key_attr") && !rm.String("key_attr", &r.KeyAttr) {
				good = false
			}
		} else if !mm.String(name, &r.Effect) {
			good = false
		}
		if _, err := path.Match(name, ""); err != nil {
			mm.Errorf(name, "%q is not a valid glob: %v", name, err)
			good = false
		}
		rules = append(rules, r)
	}
	return rules, good
}
