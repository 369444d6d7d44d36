package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Tables names the tables twice reads and writes. The audit takes them as
// parameters, so that it runs unchanged over the Distributed tables of a
// cluster (see cluster/).
type Tables struct {
	Events    string
	Malformed string
	Findings  string
}

// DefaultTables are the tables Migrate creates.
var DefaultTables = Tables{Events: "twice_events", Malformed: "twice_malformed", Findings: "twice_findings"}

func (t Tables) withDefaults() Tables {
	if t.Events == "" {
		t.Events = DefaultTables.Events
	}
	if t.Malformed == "" {
		t.Malformed = DefaultTables.Malformed
	}
	if t.Findings == "" {
		t.Findings = DefaultTables.Findings
	}
	return t
}

// Options configure a Store.
type Options struct {
	// Tables to use; empty names are the defaults.
	Tables Tables
	// Retention, when positive, is how long events and findings are kept
	// (event time, a TTL that Migrate sets). Zero leaves the tables' TTL as
	// it is; see SetRetention to remove it.
	Retention time.Duration
	// Settings are ClickHouse settings sent with every query (for example
	// max_threads, max_memory_usage).
	Settings map[string]any
}

// Store is a ClickHouse database holding twice's tables. Open does no I/O;
// the connection is made by the first call that needs it.
type Store struct {
	dsn    *DSN
	opts   Options
	tables Tables
	conn   driver.Conn
}

// Open parses dsn and prepares a Store; it does not connect.
func Open(dsn string, opts Options) (*Store, error) {
	d, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{opts.Tables.Events, opts.Tables.Malformed, opts.Tables.Findings} {
		if name != "" && !validName(name) {
			return nil, fmt.Errorf("clickhouse: table name %q: want [A-Za-z0-9_] with an optional database. prefix", name)
		}
	}
	o := *d.opts
	o.Settings = ch.Settings{}
	for k, v := range d.opts.Settings {
		o.Settings[k] = v
	}
	for k, v := range opts.Settings {
		o.Settings[k] = v
	}
	if o.MaxOpenConns == 0 {
		o.MaxOpenConns = 4
	}
	conn, err := ch.Open(&o)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %s: %w", d, err)
	}
	return &Store{dsn: d, opts: opts, tables: opts.Tables.withDefaults(), conn: conn}, nil
}

// DSN returns the parsed DSN.
func (s *Store) DSN() *DSN { return s.dsn }

// Tables returns the tables the store uses.
func (s *Store) Tables() Tables { return s.tables }

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("clickhouse: %s: %w", s.dsn, err)
	}
	return nil
}

// Close closes the connections. It is safe to call twice.
func (s *Store) Close() error {
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

func (s *Store) exec(ctx context.Context, query string) error {
	if err := s.conn.Exec(ctx, query); err != nil {
		return fmt.Errorf("clickhouse: %w\nquery: %s", err, firstLine(query))
	}
	return nil
}

// SetRetention sets how long events (by ts), malformed lines and findings
// (by last_ts) are kept: a TTL on the tables. Zero or less removes it.
func (s *Store) SetRetention(ctx context.Context, d time.Duration) error {
	secs := int64(d / time.Second)
	for _, t := range []struct{ table, col string }{
		{s.tables.Events, "ts"}, {s.tables.Findings, "last_ts"},
	} {
		q := fmt.Sprintf("ALTER TABLE %s MODIFY TTL toDateTime(%s) + toIntervalSecond(%d)", t.table, t.col, secs)
		if d <= 0 {
			q = fmt.Sprintf("ALTER TABLE %s REMOVE TTL", t.table)
		}
		if err := s.exec(ctx, q); err != nil {
			if d <= 0 && strings.Contains(err.Error(), "TTL") {
				continue // there was none
			}
			return err
		}
	}
	return nil
}

func validName(s string) bool {
	if s == "" || strings.Count(s, ".") > 1 || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func firstLine(q string) string {
	q = strings.TrimSpace(q)
	if i := strings.IndexByte(q, '\n'); i >= 0 {
		return q[:i] + " ..."
	}
	return q
}

var errClosed = errors.New("clickhouse: store closed")

// Exec runs one statement (DDL such as cluster/cluster.sql).
func (s *Store) Exec(ctx context.Context, query string) error {
	if s.conn == nil {
		return errClosed
	}
	return s.exec(ctx, query)
}

// Row is one result row.
type Row interface{ Scan(dest ...any) error }

// QueryRow runs a query expected to return one row (for tools and tests).
func (s *Store) QueryRow(ctx context.Context, query string, args ...any) Row {
	return s.conn.QueryRow(ctx, query, args...)
}
