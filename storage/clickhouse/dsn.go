package clickhouse

import (
	"fmt"
	"net/url"
	"strings"

	ch "github.com/ClickHouse/clickhouse-go/v2"
)

// Protocol is how twice talks to ClickHouse.
type Protocol string

// The protocols a DSN can name.
const (
	Native Protocol = "native"
	HTTP   Protocol = "http"
)

// DSN is a parsed data source name.
//
//	clickhouse://[user[:password]@]host:port[,host:port...]/database[?setting=value...]
//	http://[user[:password]@]host:port/database[?...]       (HTTP protocol)
//	https://host:port/database                              (HTTP over TLS)
//
// tcp:// is accepted for clickhouse://. The database defaults to
// "default". Query parameters are clickhouse-go's (dial_timeout,
// compress, secure, ...) and ClickHouse settings.
type DSN struct {
	Protocol Protocol
	Addrs    []string
	Database string
	User     string
	// Raw is the DSN as given, normalized for clickhouse-go.
	Raw string

	opts *ch.Options
}

// ParseDSN parses a DSN; it does no I/O.
func ParseDSN(s string) (*DSN, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: DSN: %w", redact(err, s))
	}
	switch u.Scheme {
	case "clickhouse", "tcp", "http":
	case "https":
		q := u.Query()
		if q.Get("secure") == "" {
			q.Set("secure", "true")
			u.RawQuery = q.Encode()
		}
	default:
		return nil, fmt.Errorf("clickhouse: DSN %q: scheme must be clickhouse://, http:// or https://", redactDSN(s))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("clickhouse: DSN %q has no host", redactDSN(s))
	}
	db := strings.Trim(u.Path, "/")
	if db == "" {
		db = "default"
		u.Path = "/default"
	}
	if strings.Contains(db, "/") {
		return nil, fmt.Errorf("clickhouse: DSN %q: the path must be one database name", redactDSN(s))
	}
	raw := u.String()
	opts, err := ch.ParseDSN(raw)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: DSN %q: %w", redactDSN(s), err)
	}
	d := &DSN{Protocol: Native, Addrs: opts.Addr, Database: db, User: opts.Auth.Username, Raw: raw, opts: opts}
	if opts.Protocol == ch.HTTP {
		d.Protocol = HTTP
	}
	return d, nil
}

// IsDSN reports whether s looks like a ClickHouse DSN rather than a file
// name: it starts with clickhouse://, tcp://, http:// or https://.
func IsDSN(s string) bool {
	for _, p := range []string{"clickhouse://", "tcp://", "http://", "https://"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// String returns the DSN with its password hidden.
func (d *DSN) String() string { return redactDSN(d.Raw) }

func redactDSN(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

func redact(err error, s string) error {
	if ue, ok := err.(*url.Error); ok {
		ue.URL = redactDSN(s)
		return ue
	}
	return err
}
