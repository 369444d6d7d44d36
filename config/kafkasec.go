package config

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// KafkaTLS is the `tls` of a kafka source or findings sink: connections
// to the brokers use TLS. `tls: true` is the zero value (the system's
// roots, no client certificate).
type KafkaTLS struct {
	// CAFile is a PEM file of the certificates that may sign the
	// brokers'; "" for the system's roots.
	CAFile string
	// CertFile and KeyFile are the client's certificate (PEM, with its
	// chain) and private key, for brokers that require one (mTLS); both
	// or neither.
	CertFile, KeyFile string
	// ServerName is the name the brokers' certificates are checked
	// against; "" for the host of each broker's address.
	ServerName string
	// InsecureSkipVerify accepts any broker certificate: for tests only.
	InsecureSkipVerify bool
}

// KafkaSASL is the `sasl` of a kafka source or findings sink.
type KafkaSASL struct {
	// Mechanism is SASLPlain, SASLScramSHA256 or SASLScramSHA512.
	Mechanism string
	// Username is the user to authenticate as.
	Username string
	// Password is the user's password: given in the file, or read from a
	// file or an environment variable at each connection.
	Password Secret
}

// String shows the mechanism, the user and where the password comes
// from, never the password.
func (s KafkaSASL) String() string {
	return fmt.Sprintf("{%s %s %v}", s.Mechanism, s.Username, s.Password)
}

// GoString hides the password from %#v.
func (s KafkaSASL) GoString() string { return "config.KafkaSASL" + s.String() }

// The SASL mechanisms a kafka source or sink supports.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// saslMechanisms are the mechanisms, as a `sasl.mechanism` is written.
var saslMechanisms = []string{SASLPlain, SASLScramSHA256, SASLScramSHA512}

// The keys of `tls` and `sasl`.
var (
	kafkaTLSKeys  = []string{"ca_file", "cert_file", "key_file", "server_name", "insecure_skip_verify"}
	kafkaSASLKeys = []string{"mechanism", "username", "password", "password_file", "password_env"}
)

// kafkaTLS parses `tls`: true (system roots), false (no TLS: nil) or a
// mapping of kafkaTLSKeys.
func (p *parser) kafkaTLS(n *yaml.Node, path string) (*KafkaTLS, bool) {
	v := resolve(n)
	if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!bool" {
		on, _ := p.boolean(v, path)
		if !on {
			return nil, true
		}
		return &KafkaTLS{}, true
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v, path, "want true, false or a mapping {ca_file, cert_file, key_file, server_name}, got %s", describe(v))
		return nil, false
	}
	es, ok := p.fields(v, path, kafkaTLSKeys)
	t := &KafkaTLS{}
	for _, e := range es {
		epath := join(path, e.name)
		good := true
		switch e.name {
		case "ca_file":
			t.CAFile, good = p.name(e.val, epath)
			t.CAFile = p.rel(t.CAFile)
		case "cert_file":
			t.CertFile, good = p.name(e.val, epath)
			t.CertFile = p.rel(t.CertFile)
		case "key_file":
			t.KeyFile, good = p.name(e.val, epath)
			t.KeyFile = p.rel(t.KeyFile)
		case "server_name":
			t.ServerName, good = p.name(e.val, epath)
		case "insecure_skip_verify":
			t.InsecureSkipVerify, good = p.boolean(e.val, epath)
		}
		ok = ok && good
	}
	if ok && (t.CertFile == "") != (t.KeyFile == "") {
		p.errorf(v, path, "%s", msgCertKey)
		ok = false
	}
	return t, ok
}

const msgCertKey = "give cert_file and key_file together (a client certificate and its key), or neither"

// kafkaSASL parses `sasl`: a mapping of kafkaSASLKeys. The password is
// never written in an error.
func (p *parser) kafkaSASL(n *yaml.Node, path string) (*KafkaSASL, bool) {
	v := resolve(n)
	if v.Kind != yaml.MappingNode {
		p.errorf(v, path, "want a mapping {mechanism, username, password | password_file | password_env}, got %s", describe(v))
		return nil, false
	}
	es, ok := p.fields(v, path, kafkaSASLKeys)
	s := &KafkaSASL{}
	given := ""
	for _, e := range es {
		epath := join(path, e.name)
		good := true
		switch e.name {
		case "mechanism":
			var m string
			if m, good = p.name(e.val, epath); good {
				if s.Mechanism, good = saslMechanism(m); !good {
					p.errorf(resolve(e.val), epath, "%s", unknownSASLMechanism(m))
				}
			}
		case "username":
			s.Username, good = p.name(e.val, epath)
		case "password", "password_file", "password_env":
			good = p.passwordEntry(e, epath, &given, &s.Password)
		}
		ok = ok && good
	}
	for _, k := range []string{"mechanism", "username"} {
		if !slices.ContainsFunc(es, func(e entry) bool { return e.name == k }) {
			p.errorf(v, path, "missing %s", k)
			ok = false
		}
	}
	if given == "" {
		p.errorf(v, path, "missing password, password_file or password_env")
		ok = false
	}
	return s, ok
}

// secretString reads a non-empty string; when secret, an error never
// shows the value (a password written without quotes that YAML reads as
// a number, say).
func (p *parser) secretString(n *yaml.Node, path string, secret bool) (string, bool) {
	if !secret {
		return p.name(n, path)
	}
	v := resolve(n)
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
		what := "a value that is not a string (put the password in quotes)"
		switch {
		case isNull(v):
			what = "nothing"
		case v.Kind == yaml.MappingNode, v.Kind == yaml.SequenceNode:
			what = describe(v)
		}
		p.errorf(v, path, "want a string, got %s", what)
		return "", false
	}
	if v.Value == "" {
		p.errorf(v, path, "must not be empty")
		return "", false
	}
	return v.Value, true
}

// saslMechanism returns the mechanism m names, in any case.
func saslMechanism(m string) (string, bool) {
	u := strings.ToUpper(strings.TrimSpace(m))
	if slices.Contains(saslMechanisms, u) {
		return u, true
	}
	return "", false
}

func unknownSASLMechanism(m string) string {
	switch strings.ToUpper(m) {
	case "OAUTHBEARER":
		return "OAUTHBEARER is not supported (the Kafka client twice uses has no OAUTHBEARER); use " + strings.Join(saslMechanisms, ", ")
	case "AWS_MSK_IAM":
		return "AWS_MSK_IAM is not supported; on Amazon MSK use SCRAM-SHA-512 (docs/sources/kafka.md)"
	case "GSSAPI":
		return "GSSAPI (Kerberos) is not supported; use " + strings.Join(saslMechanisms, ", ")
	}
	return fmt.Sprintf("unknown SASL mechanism %q (known: %s)", m, strings.Join(saslMechanisms, ", "))
}

// validate checks a tls built in code; Paths are relative to its key.
func (t *KafkaTLS) validate(path string) []*Error {
	if t == nil {
		return nil
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return []*Error{{Path: path, Msg: msgCertKey}}
	}
	return nil
}

// validate checks a sasl built in code; Paths are relative to its key.
func (s *KafkaSASL) validate(path string) []*Error {
	if s == nil {
		return nil
	}
	var errs []*Error
	if !slices.Contains(saslMechanisms, s.Mechanism) {
		errs = append(errs, &Error{Path: path + ".mechanism", Msg: unknownSASLMechanism(s.Mechanism)})
	}
	if s.Username == "" {
		errs = append(errs, &Error{Path: path + ".username", Msg: "empty"})
	}
	switch s.Password.given() {
	case 0:
		errs = append(errs, &Error{Path: path, Msg: "missing password, password_file or password_env"})
	case 1:
	default:
		errs = append(errs, &Error{Path: path, Msg: "give only one of password, password_file and password_env"})
	}
	return errs
}
