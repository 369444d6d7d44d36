package emailevents

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/twicehq/twice/collectors/push"
	"github.com/twicehq/twice/config"
)

// The providers, which are also the source types of twice.yaml.
const (
	SendGrid = "sendgrid"
	Postmark = "postmark"
	SES      = "ses"
	Mailgun  = "mailgun"
)

// How recipients appear in attrs.recipients.
const (
	RecipientsHash  = "hash"
	RecipientsPlain = "plain"
	RecipientsOmit  = "omit"
)

// DefaultKeyArg is the custom argument (SendGrid custom_args, Postmark
// Metadata, SES message tag or header, Mailgun user variable) whose value
// is the effect_key when key_arg is not set.
const DefaultKeyArg = "idempotency_key"

// DefaultMaxAge is how old a Mailgun signature may be by default, and so
// how long its token is remembered.
const DefaultMaxAge = time.Hour

// loadSecret resolves a secret, trimmed of surrounding white space.
// Errors name the file or variable, never the value.
func loadSecret(s config.Secret) (string, error) {
	v, err := s.Resolve()
	if err != nil {
		return "", err
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return "", errors.New("the secret is empty")
	}
	return v, nil
}

// Defaults of Config.
const (
	DefaultMaxBodyBytes = 10 << 20
)

// Config is one email provider source of twice.yaml (spec §3.1):
//
//   - name: sendgrid
//     type: sendgrid                 # postmark, ses, mailgun
//     listen: 0.0.0.0:8025           # where the provider posts (behind TLS)
//     verification_key_env: SENDGRID_WEBHOOK_KEY   # sendgrid; or verification_key, verification_key_file
//     key_arg: idempotency_key       # the custom arg holding the effect_key
//     job_arg: job_id                # optional: the custom arg holding the job_id
//     events: [sent, delivered, bounced]
//     recipients: hash               # plain, omit
//     per_recipient: false
//     max_body_bytes: 10485760
//     max_pending: 10000
//     max_rate: 1000         # requests per second; then 429
//
// Mailgun takes signing_key (_file, _env) and max_age; Postmark username
// and password (_file, _env); SES topic_arns (or topic_arn).
type Config struct {
	// Provider is the source type: sendgrid, postmark, ses or mailgun.
	Provider string
	// Listen is the address the receiver listens on (host:port).
	Listen string
	// KeyArg names the custom argument holding the effect_key;
	// DefaultKeyArg when "".
	KeyArg string
	// JobArg, when set, names the custom argument holding the job_id.
	JobArg string
	// Events lists the normalized types recorded; nil for the provider's
	// primary type only (sent; delivered for Postmark).
	Events []string
	// Recipients says how attrs.recipients carries addresses: hash (the
	// default), plain or omit.
	Recipients string
	// PerRecipient makes each recipient its own effect: the hash of the
	// recipients is appended to the effect_key ("KEY/sha256:…").
	PerRecipient bool
	// MaxBodyBytes caps a request body (413 beyond); 0 means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int
	// MaxPending caps the events received and not yet durable (503
	// beyond); 0 means push.DefaultMaxPending.
	MaxPending int
	// MaxRate caps the requests per second the endpoint answers (429
	// beyond, counted as rate_limited); 0 means push.DefaultMaxRate.
	MaxRate int

	// VerificationKey is SendGrid's signed event webhook verification
	// key (the base64 DER public key the dashboard shows, or PEM).
	VerificationKey config.Secret
	// SigningKey is Mailgun's HTTP webhook signing key.
	SigningKey config.Secret
	// MaxAge is how old a Mailgun signature may be, and how long its
	// token is remembered; DefaultMaxAge when 0.
	MaxAge time.Duration
	// Username and Password are the basic auth credentials Postmark's
	// webhook URL carries.
	Username string
	Password config.Secret
	// TopicARNs are the SNS topics an SES source accepts messages of.
	TopicARNs []string
}

// ConfigKeys returns the keys a source of the provider takes, besides
// name and type.
func ConfigKeys(provider string) []string {
	keys := []string{"listen", "key_arg", "job_arg", "events", "recipients", "per_recipient", "max_body_bytes", "max_pending", "max_rate"}
	switch provider {
	case SendGrid:
		keys = append(keys, "verification_key", "verification_key_file", "verification_key_env")
	case Mailgun:
		keys = append(keys, "signing_key", "signing_key_file", "signing_key_env", "max_age")
	case Postmark:
		keys = append(keys, "username", "password", "password_file", "password_env")
	case SES:
		keys = append(keys, "topic_arns", "topic_arn")
	}
	return keys
}

// events returns the recorded types.
func (c *Config) events() []string {
	if len(c.Events) == 0 {
		return []string{primaryType(c.Provider)}
	}
	return c.Events
}

// maxAge returns the Mailgun signature age limit.
func (c *Config) maxAge() time.Duration {
	if c.MaxAge <= 0 {
		return DefaultMaxAge
	}
	return c.MaxAge
}

// keyArg returns the key argument's name.
func (c *Config) keyArg() string {
	if c.KeyArg == "" {
		return DefaultKeyArg
	}
	return c.KeyArg
}

// maxBody returns the body size limit.
func (c *Config) maxBody() int64 {
	if c.MaxBodyBytes <= 0 {
		return DefaultMaxBodyBytes
	}
	return int64(c.MaxBodyBytes)
}

// credentialKey is the key of the provider's credentials in twice.yaml.
func credentialKey(provider string) string {
	switch provider {
	case SendGrid:
		return "verification_key"
	case Mailgun:
		return "signing_key"
	case Postmark:
		return "password"
	}
	return "topic_arns"
}

// Verified reports whether the source checks who posts to it: the
// provider's credentials are configured (SES: topic_arns; SNS signatures
// are checked in any case). Without them a source may only listen on
// loopback, for local tests.
func (c *Config) Verified() bool {
	switch c.Provider {
	case SendGrid:
		return c.VerificationKey.IsSet()
	case Mailgun:
		return c.SigningKey.IsSet()
	case Postmark:
		return c.Password.IsSet() || c.Username != ""
	}
	return len(c.TopicARNs) > 0
}

// topicARN is an SNS topic ARN: arn:PARTITION:sns:REGION:ACCOUNT:NAME.
var topicARN = regexp.MustCompile(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]{1,256}$`)

// Validate checks c; each problem is a *config.Error whose Path is
// relative to the source.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &config.Error{Path: key, Msg: fmt.Sprintf(format, args...)})
	}
	if !slices.Contains([]string{SendGrid, Postmark, SES, Mailgun}, c.Provider) {
		bad("type", "unknown email provider %q", c.Provider)
		return errors.Join(errs...)
	}
	if strings.TrimSpace(c.Listen) == "" {
		bad("listen", "required: the address to listen on, such as 127.0.0.1:8025")
	} else if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "want host:port, got %q", c.Listen)
	} else if !c.Verified() && !push.IsLoopback(c.Listen) {
		k := credentialKey(c.Provider)
		bad("listen", "%q is reachable beyond this machine: set %s to check that %s sent the requests, or listen on 127.0.0.1", c.Listen, k, c.Provider)
	}
	for i, t := range c.Events {
		if !slices.Contains(Types, t) {
			bad(fmt.Sprintf("events[%d]", i), "unknown event type %q (known: %s)", t, strings.Join(Types, ", "))
		} else if slices.Index(c.Events, t) != i {
			bad(fmt.Sprintf("events[%d]", i), "%q is listed twice", t)
		}
	}
	if c.Provider == Postmark && slices.Contains(c.Events, Sent) {
		bad("events", "postmark posts no event when it sends a message: its first event is delivered")
	}
	switch c.Recipients {
	case "", RecipientsHash, RecipientsPlain, RecipientsOmit:
	default:
		bad("recipients", "want hash, plain or omit, got %q", c.Recipients)
	}
	if c.JobArg != "" && c.JobArg == c.keyArg() {
		bad("job_arg", "is the same argument as key_arg (%q)", c.JobArg)
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
	for key, s := range map[string]config.Secret{"verification_key": c.VerificationKey, "signing_key": c.SigningKey, "password": c.Password} {
		if err := s.Validate(); err != nil {
			bad(key, "%v", err)
		}
	}
	switch c.Provider {
	case SendGrid:
		if c.VerificationKey.Value != "" {
			if _, err := parseECDSAKey(c.VerificationKey.Value); err != nil {
				bad("verification_key", "%v", err)
			}
		}
	case Mailgun:
		if c.MaxAge < 0 {
			bad("max_age", "must not be negative, got %s", c.MaxAge)
		}
	case Postmark:
		if c.Username == "" && c.Password.IsSet() {
			bad("password", "set username too: Postmark sends both in the webhook URL")
		}
		if c.Username != "" && !c.Password.IsSet() {
			bad("username", "set password (or password_file, password_env) too")
		}
	case SES:
		for i, a := range c.TopicARNs {
			if !topicARN.MatchString(a) {
				bad(fmt.Sprintf("topic_arns[%d]", i), "%q is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)", a)
			}
		}
	}
	return errors.Join(errs...)
}

// decode reads a source block of the provider; problems are recorded in m.
func decode(provider string, m *config.SourceMapping) *Config {
	m.Known(ConfigKeys(provider)...)
	c := &Config{Provider: provider}
	good := true
	read := func(key string, ok bool) {
		if m.Has(key) && !ok {
			good = false
		}
	}
	if m.Require("listen") {
		read("listen", m.String("listen", &c.Listen))
	} else {
		good = false
	}
	read("key_arg", m.String("key_arg", &c.KeyArg))
	read("job_arg", m.String("job_arg", &c.JobArg))
	read("events", m.Strings("events", &c.Events))
	read("recipients", m.OneOf("recipients", &c.Recipients, RecipientsHash, RecipientsPlain, RecipientsOmit))
	read("per_recipient", m.Bool("per_recipient", &c.PerRecipient))
	read("max_body_bytes", m.Int("max_body_bytes", &c.MaxBodyBytes, 1))
	read("max_pending", m.Int("max_pending", &c.MaxPending, 1))
	read("max_rate", m.Int("max_rate", &c.MaxRate, 1))
	switch provider {
	case SendGrid:
		c.VerificationKey = m.Secret("verification_key")
	case Mailgun:
		c.SigningKey = m.Secret("signing_key")
		read("max_age", m.Duration("max_age", &c.MaxAge))
	case Postmark:
		read("username", m.String("username", &c.Username))
		c.Password = m.Secret("password")
	case SES:
		read("topic_arns", m.Strings("topic_arns", &c.TopicARNs))
		if m.Has("topic_arn") {
			var one string
			if m.Has("topic_arns") {
				m.Errorf("topic_arn", "give topic_arn or topic_arns, not both")
				good = false
			} else if m.String("topic_arn", &one) {
				c.TopicARNs = []string{one}
			} else {
				good = false
			}
		}
	}
	if good {
		err := c.Validate()
		if m.Has("topic_arn") {
			// The single form's problem is at the key that is written.
			err = renameKey(err, "topic_arns[0]", "topic_arn")
		}
		m.ReportInvalid(err, nil)
	}
	return c
}

// renameKey returns err with the problems at key moved to to.
func renameKey(err error, key, to string) error {
	var out []error
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var ce *config.Error
		if errors.As(e, &ce) && ce.Path == key {
			e = &config.Error{Path: to, Msg: ce.Msg}
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}
