package emailevents

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

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

// Secret is a secret named in twice.yaml: its value, a file holding it,
// or an environment variable holding it (exactly one of the three).
type Secret struct {
	Value, File, Env string
}

// set reports whether one of the three is given.
func (s Secret) set() bool { return s.Value != "" || s.File != "" || s.Env != "" }

// load returns the secret's value, trimmed of surrounding white space.
// Errors name the file or variable, never the value.
func (s Secret) load(_ context.Context) (string, error) {
	switch {
	case s.Value != "":
		return strings.TrimSpace(s.Value), nil
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("read secret: %w", err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("secret file %s is empty", s.File)
		}
		return v, nil
	case s.Env != "":
		v := strings.TrimSpace(os.Getenv(s.Env))
		if v == "" {
			return "", fmt.Errorf("environment variable %s is empty or not set", s.Env)
		}
		return v, nil
	}
	return "", errors.New("no secret configured")
}

// Config is one email provider source of twice.yaml (spec §3.1):
//
//   - name: sendgrid
//     type: sendgrid                 # postmark, ses, mailgun
//     listen: 127.0.0.1:8025
//     verification_key_env: SENDGRID_WEBHOOK_KEY   # sendgrid
//     key_arg: idempotency_key       # the custom arg holding the effect_key
//     job_arg: job_id                # optional: the custom arg holding the job_id
//     events: [sent, delivered, bounced]
//     recipients: hash               # plain, omit
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

	// VerificationKey is SendGrid's signed event webhook verification
	// key (the base64 DER public key the dashboard shows, or PEM).
	VerificationKey Secret
	// SigningKey is Mailgun's HTTP webhook signing key.
	SigningKey Secret
	// MaxAge is how old a Mailgun signature may be, and how long its
	// token is remembered; DefaultMaxAge when 0.
	MaxAge time.Duration
	// Username and Password are the basic auth credentials Postmark's
	// webhook URL carries.
	Username string
	Password Secret
	// TopicARNs are the SNS topics an SES source accepts messages of.
	TopicARNs []string
}

// ConfigKeys returns the keys a source of the provider takes, besides
// name and type.
func ConfigKeys(provider string) []string {
	keys := []string{"listen", "key_arg", "job_arg", "events", "recipients", "per_recipient"}
	switch provider {
	case SendGrid:
		keys = append(keys, "verification_key", "verification_key_file", "verification_key_env")
	case Mailgun:
		keys = append(keys, "signing_key", "signing_key_file", "signing_key_env", "max_age")
	case Postmark:
		keys = append(keys, "username", "password", "password_file", "password_env")
	case SES:
		keys = append(keys, "topic_arns")
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
	oneSecret := func(key string, s Secret) {
		n := 0
		for _, v := range []string{s.Value, s.File, s.Env} {
			if v != "" {
				n++
			}
		}
		switch {
		case n == 0:
			bad(key, "required: set %s, %s_file or %s_env", key, key, key)
		case n > 1:
			bad(key, "set only one of %s, %s_file and %s_env", key, key, key)
		}
	}
	switch c.Provider {
	case SendGrid:
		oneSecret("verification_key", c.VerificationKey)
		if c.VerificationKey.Value != "" {
			if _, err := parseECDSAKey(c.VerificationKey.Value); err != nil {
				bad("verification_key", "%v", err)
			}
		}
	case Mailgun:
		oneSecret("signing_key", c.SigningKey)
		if c.MaxAge < 0 {
			bad("max_age", "must not be negative, got %s", c.MaxAge)
		}
	case Postmark:
		if c.Username == "" {
			bad("username", "required: the basic auth user name of the webhook URL")
		}
		oneSecret("password", c.Password)
	case SES:
		if len(c.TopicARNs) == 0 {
			bad("topic_arns", "required: the ARNs of the SNS topics SES publishes to")
		}
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
	decoded := map[string]bool{}
	ok := func(key string, good bool) {
		if good || !m.Has(key) {
			decoded[key] = true
		}
	}
	if m.Require("listen") {
		ok("listen", m.String("listen", &c.Listen))
	}
	ok("key_arg", m.String("key_arg", &c.KeyArg))
	ok("job_arg", m.String("job_arg", &c.JobArg))
	ok("events", m.Strings("events", &c.Events))
	ok("recipients", m.OneOf("recipients", &c.Recipients, RecipientsHash, RecipientsPlain, RecipientsOmit))
	ok("per_recipient", m.Bool("per_recipient", &c.PerRecipient))
	secret := func(key string, dst *Secret) {
		ok(key, m.String(key, &dst.Value))
		ok(key, m.File(key+"_file", &dst.File))
		ok(key, m.String(key+"_env", &dst.Env))
		if !m.Has(key) && !m.Has(key+"_file") && !m.Has(key+"_env") {
			m.Errorf("", "missing key %q (or %s_file, %s_env)", key, key, key)
			decoded[key] = false
		}
	}
	switch provider {
	case SendGrid:
		secret("verification_key", &c.VerificationKey)
	case Mailgun:
		secret("signing_key", &c.SigningKey)
		ok("max_age", m.Duration("max_age", &c.MaxAge))
	case Postmark:
		if m.Require("username") {
			ok("username", m.String("username", &c.Username))
		}
		secret("password", &c.Password)
	case SES:
		if m.Require("topic_arns") {
			ok("topic_arns", m.Strings("topic_arns", &c.TopicARNs))
		}
	}
	var errs []error
	if j, isJoin := c.Validate().(interface{ Unwrap() []error }); isJoin {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var ce *config.Error
		if !errors.As(e, &ce) {
			m.Errorf("", "%v", e)
			continue
		}
		key := ce.Path
		if i := strings.IndexAny(key, ".["); i >= 0 {
			key = key[:i]
		}
		if !decoded[key] {
			continue
		}
		at := key
		if !m.Has(at) {
			for _, k := range []string{key + "_file", key + "_env"} {
				if m.Has(k) {
					at = k
				}
			}
		}
		if m.Has(at) {
			m.Errorf(at, "%s", ce.Msg)
		}
	}
	return c
}
