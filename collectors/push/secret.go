package push

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/twicehq/twice/config"
)

// Secret is a token or password a source's config names in one of three
// ways: KEY (the value in twice.yaml), KEY_file (a file holding it,
// relative to twice.yaml's folder; one trailing newline is dropped) or
// KEY_env (the name of an environment variable holding it). It is read at
// Start, never printed: String and GoString hide it.
type Secret struct {
	Value, File, Env string
}

// DecodeSecret reads key, key_file and key_env of m into a Secret; giving
// more than one is an error at the second. The caller lists the three
// keys in m.Known.
func DecodeSecret(m *config.SourceMapping, key string) Secret {
	var s Secret
	given := ""
	one := func(k string, read func() bool) {
		if !m.Has(k) {
			return
		}
		if given != "" {
			m.Errorf(k, "give only one of %s, %s_file and %s_env (%s is given)", key, key, key, given)
			return
		}
		if read() {
			given = k
		}
	}
	one(key, func() bool { return m.String(key, &s.Value) })
	one(key+"_file", func() bool { return m.File(key+"_file", &s.File) })
	one(key+"_env", func() bool { return m.String(key+"_env", &s.Env) })
	return s
}

// IsSet reports whether the secret is given at all.
func (s Secret) IsSet() bool { return s.Value != "" || s.File != "" || s.Env != "" }

// Validate checks that at most one way is given.
func (s Secret) Validate() error {
	n := 0
	for _, v := range []string{s.Value, s.File, s.Env} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("give only one of the value, a file and an environment variable")
	}
	return nil
}

// Resolve returns the secret's value: read from its file or environment
// variable when it names one. An empty result is an error.
func (s Secret) Resolve() (string, error) {
	var v string
	switch {
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("read secret: %w", err)
		}
		v = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if v == "" {
			return "", fmt.Errorf("secret file %s is empty", s.File)
		}
	case s.Env != "":
		v = os.Getenv(s.Env)
		if v == "" {
			return "", fmt.Errorf("environment variable %s is empty or not set", s.Env)
		}
	default:
		v = s.Value
	}
	return v, nil
}

// String hides the value.
func (s Secret) String() string {
	switch {
	case s.File != "":
		return "(secret from file " + s.File + ")"
	case s.Env != "":
		return "(secret from $" + s.Env + ")"
	case s.Value != "":
		return "(secret)"
	}
	return "(none)"
}

// GoString hides the value from %#v.
func (s Secret) GoString() string { return s.String() }

// ReportConfigErrors records the problems a settings' Validate found
// (each a *config.Error whose Path starts with the key it is about, as
// joined by errors.Join) in m, at their keys' lines.
func ReportConfigErrors(m *config.SourceMapping, err error) {
	if err == nil {
		return
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
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
		if m.Has(key) {
			m.Errorf(key, "%s", ce.Msg)
		} else {
			m.Errorf("", "%s: %s", ce.Path, ce.Msg)
		}
	}
}
