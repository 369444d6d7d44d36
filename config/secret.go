package config

import (
	"fmt"
	"os"
	"strings"
)

// Secret is a password or token a configuration gives in one of three
// ways: the value itself (Value; twice.yaml's KEY), a file that holds it
// (File; KEY_file, relative to twice.yaml's folder; one trailing newline
// is dropped) or the name of an environment variable (Env; KEY_env). It
// is read when a source starts and never printed: String and GoString
// hide the value, and errors never hold it.
type Secret struct {
	Value, File, Env string
}

// IsSet reports whether the secret is given at all.
func (s Secret) IsSet() bool { return s.Value != "" || s.File != "" || s.Env != "" }

// given counts the ways the secret is given.
func (s Secret) given() int {
	n := 0
	for _, v := range []string{s.Value, s.File, s.Env} {
		if v != "" {
			n++
		}
	}
	return n
}

// Validate checks that at most one way is given.
func (s Secret) Validate() error {
	if s.given() > 1 {
		return fmt.Errorf("give only one of the value, a file and an environment variable")
	}
	return nil
}

// Resolve returns the secret's value, read from its file or environment
// variable when it names one. An empty value is an error.
func (s Secret) Resolve() (string, error) {
	switch {
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("reading the secret: %w", err)
		}
		v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if v == "" {
			return "", fmt.Errorf("secret file %s is empty", s.File)
		}
		return v, nil
	case s.Env != "":
		v := os.Getenv(s.Env)
		if v == "" {
			return "", fmt.Errorf("environment variable %s is empty or not set", s.Env)
		}
		return v, nil
	case s.Value != "":
		return s.Value, nil
	}
	return "", fmt.Errorf("no secret given")
}

// String says where the secret comes from, never its value.
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

// Secret reads key, key_file and key_env of m into a Secret; giving more
// than one is an error at the second. The caller lists the three keys in
// Known.
func (m *SourceMapping) Secret(key string) Secret {
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

// passwordEntry reads e, one of password, password_file and
// password_env of a mapping, into dst; given names the one read before
// it, so that a second is an error at its key.
func (p *parser) passwordEntry(e entry, epath string, given *string, dst *Secret) bool {
	if *given != "" {
		p.errorf(e.key, epath, "give only one of password, password_file and password_env (%s is given)", *given)
		return false
	}
	*given = e.name
	val, good := p.secretString(e.val, epath, e.name == "password")
	switch e.name {
	case "password":
		dst.Value = val
	case "password_file":
		dst.File = p.rel(val)
	case "password_env":
		dst.Env = val
	}
	return good
}
