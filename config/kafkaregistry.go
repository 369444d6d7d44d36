package config

import (
	"net/url"
	"strings"

	"go.yaml.in/yaml/v3"
)

// KafkaSchemaRegistry is the `schema_registry` of a kafka source: values
// in the Confluent wire format (Avro, Protobuf, JSON Schema) are decoded
// by the schemas of this registry before the map applies. It is written
// as the registry's URL, or as a mapping of kafkaRegistryKeys.
type KafkaSchemaRegistry struct {
	// URL is the registry's base URL, http:// or https://.
	URL string
	// Username, when set, is sent with Password as HTTP basic auth.
	Username string
	// Password is the user's password (value, file or environment
	// variable); never printed.
	Password Secret
	// CAFile is a PEM file of the certificates that may sign the
	// registry's, for https; "" for the system's roots.
	CAFile string
	// CertFile and KeyFile are a client certificate and its key, for a
	// registry that requires one; both or neither.
	CertFile, KeyFile string
	// InsecureSkipVerify accepts any registry certificate: for tests only.
	InsecureSkipVerify bool
}

// String shows the URL, the user and where the password comes from,
// never the password.
func (r KafkaSchemaRegistry) String() string {
	return "{" + r.URL + " " + r.Username + " " + r.Password.String() + "}"
}

// GoString hides the password from %#v.
func (r KafkaSchemaRegistry) GoString() string { return "config.KafkaSchemaRegistry" + r.String() }

// kafkaRegistryKeys are the keys of `schema_registry` written as a
// mapping.
var kafkaRegistryKeys = []string{"url", "username", "password", "password_file", "password_env", "ca_file", "cert_file", "key_file", "insecure_skip_verify"}

// kafkaSchemaRegistry parses `schema_registry`: a URL, or a mapping of
// kafkaRegistryKeys. The password is never written in an error.
func (p *parser) kafkaSchemaRegistry(n *yaml.Node, path string) (*KafkaSchemaRegistry, bool) {
	v := resolve(n)
	r := &KafkaSchemaRegistry{}
	if v.Kind == yaml.ScalarNode {
		u, ok := p.name(v, path)
		if ok {
			if msg := checkRegistryURL(u); msg != "" {
				p.errorf(v, path, "%s", msg)
				return nil, false
			}
		}
		r.URL = u
		return r, ok
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v, path, "want a URL or a mapping {url, username, password | password_file | password_env, ca_file}, got %s", describe(v))
		return nil, false
	}
	es, ok := p.fields(v, path, kafkaRegistryKeys)
	given, hasURL := "", false
	for _, e := range es {
		epath := join(path, e.name)
		good := true
		switch e.name {
		case "url":
			hasURL = true
			if r.URL, good = p.name(e.val, epath); good {
				if msg := checkRegistryURL(r.URL); msg != "" {
					p.errorf(resolve(e.val), epath, "%s", msg)
					good = false
				}
			}
		case "username":
			r.Username, good = p.name(e.val, epath)
		case "password", "password_file", "password_env":
			good = p.passwordEntry(e, epath, &given, &r.Password)
		case "ca_file":
			r.CAFile, good = p.name(e.val, epath)
			r.CAFile = p.rel(r.CAFile)
		case "cert_file":
			r.CertFile, good = p.name(e.val, epath)
			r.CertFile = p.rel(r.CertFile)
		case "key_file":
			r.KeyFile, good = p.name(e.val, epath)
			r.KeyFile = p.rel(r.KeyFile)
		case "insecure_skip_verify":
			r.InsecureSkipVerify, good = p.boolean(e.val, epath)
		}
		ok = ok && good
	}
	switch {
	case !ok:
	case !hasURL:
		p.errorf(v, path, "missing url")
		ok = false
	case (r.Username == "") != (given == ""):
		p.errorf(v, path, "give username and a password (password, password_file or password_env) together, or neither")
		ok = false
	case (r.CertFile == "") != (r.KeyFile == ""):
		p.errorf(v, path, "%s", msgCertKey)
		ok = false
	}
	return r, ok
}

// checkRegistryURL returns what is wrong with a registry URL, "" when
// nothing; it never repeats a password written in the URL.
func checkRegistryURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		shown := s
		if i := strings.LastIndex(s, "@"); i >= 0 {
			shown = "…@" + s[i+1:]
		}
		return "want the registry's URL, http://host:port or https://host:port, got " + strconvQuote(shown)
	}
	if u.User != nil {
		return "put the user and password in username and password (or password_file), not in the URL"
	}
	return ""
}

func strconvQuote(s string) string { return `"` + s + `"` }

// validate checks a schema_registry built in code; Paths are relative to
// its key.
func (r *KafkaSchemaRegistry) validate(path string) []*Error {
	if r == nil {
		return nil
	}
	var errs []*Error
	if msg := checkRegistryURL(r.URL); msg != "" {
		errs = append(errs, &Error{Path: path + ".url", Msg: msg})
	}
	if (r.Username != "") != r.Password.IsSet() {
		errs = append(errs, &Error{Path: path, Msg: "give username and a password together, or neither"})
	}
	if r.Password.given() > 1 {
		errs = append(errs, &Error{Path: path, Msg: "give only one of password, password_file and password_env"})
	}
	if (r.CertFile == "") != (r.KeyFile == "") {
		errs = append(errs, &Error{Path: path, Msg: msgCertKey})
	}
	return errs
}

const msgRegistryNeedsMap = "schema_registry needs format: map (the decoded value is what the map's expressions read)"
