package postgres

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/twicehq/twice/collectors/mapping"
	"github.com/twicehq/twice/config"
)

// Type is the source type of twice.yaml: `type: postgres`.
const Type = "postgres"

// Defaults of the keys a source may leave out.
const (
	DefaultPollInterval = time.Second
	DefaultBatch        = 1000
	DefaultSettle       = 5 * time.Second
)

// maxHoles bounds how many skipped ids of an integer cursor a lane waits
// for (see the package comment).
const maxHoles = 1000

// configKeys are the keys a postgres source takes besides name and type.
var configKeys = []string{"postgres", "table", "query", "cursor", "map", "poll_interval", "batch", "settle", "start"}

// Where a watch without a checkpoint starts.
const (
	StartEarliest = "earliest" // the first row (the default)
	StartLatest   = "latest"   // after the last row when it starts
)

// Config is one postgres source of twice.yaml (spec §3.1):
//
//   - name: ledger
//     type: postgres
//     postgres: postgres://twice@db:5432/app
//     table: public.ledger            # or query: SELECT …
//     cursor: id                      # or [updated_at, id]
//     map:
//     ts: row.created_at
//     kind: '"effect"'
//     effect: '"ledger.insert"'
//     effect_key: '"charge/" + row.payment_id'
//     job_id: string(row.job_id)
//     poll_interval: 1s
//     batch: 1000
//     settle: 5s
//     start: earliest                 # or latest: a watch without a checkpoint
type Config struct {
	// Postgres is the connection URL (postgres:// or postgresql://).
	Postgres string
	// Table is the table (or view) read, optionally schema-qualified
	// (public.ledger), as Postgres stores the names; Query is a SELECT
	// read instead. Exactly one is set.
	Table string
	Query string
	// Cursor lists the columns rows are read in the order of: an
	// increasing id, or a timestamp and a tie-breaker (updated_at, id).
	Cursor []string
	// Map is field → expression over row, as a kafka source's map.
	Map map[string]string
	// PollInterval is the wait between two polls that found less than a
	// batch; 0 means DefaultPollInterval.
	PollInterval time.Duration
	// Batch is how many rows one query reads at most; 0 means
	// DefaultBatch.
	Batch int
	// Settle is how long a transaction may take between writing a row
	// and committing it: a timestamp cursor reads a row only once its
	// timestamp is that old, an integer cursor waits that long for ids it
	// skipped. 0 means DefaultSettle; negative means none.
	Settle time.Duration
	// Start is where `twice watch` starts without a checkpoint:
	// StartEarliest ("" too) or StartLatest.
	Start string
}

// lane is the name of the source's one lane: the table, or "query".
func (c *Config) lane() string {
	if c.Table != "" {
		return c.Table
	}
	return "query"
}

func (c *Config) pollInterval() time.Duration {
	if c.PollInterval <= 0 {
		return DefaultPollInterval
	}
	return c.PollInterval
}

func (c *Config) batch() int {
	if c.Batch <= 0 {
		return DefaultBatch
	}
	return c.Batch
}

func (c *Config) settle() time.Duration {
	switch {
	case c.Settle == 0:
		return DefaultSettle
	case c.Settle < 0:
		return 0
	}
	return c.Settle
}

// compileMap compiles the map, reporting each problem to bad.
func (c *Config) compileMap(bad func(key, format string, args ...any)) []mapping.Field {
	var out []mapping.Field
	for _, name := range mapping.Fields {
		src, ok := c.Map[name]
		if !ok {
			continue
		}
		p, err := compiler.Compile(src)
		if err != nil {
			bad("map."+name, "%v", err)
			continue
		}
		out = append(out, mapping.Field{Name: name, Prog: p})
	}
	return out
}

// Validate checks c as the factory checks a file; each problem is a
// *config.Error whose Path is relative to the source.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &config.Error{Path: key, Msg: fmt.Sprintf(format, args...)})
	}
	if msg := checkURL(c.Postgres); msg != "" {
		bad("postgres", "%s", msg)
	}
	switch {
	case c.Table == "" && c.Query == "":
		bad("", "missing table or query (a postgres source reads one)")
	case c.Table != "" && c.Query != "":
		bad("query", "give table or query, not both")
	case c.Table != "":
		if _, err := tableIdent(c.Table); err != nil {
			bad("table", "%v", err)
		}
	default:
		if strings.TrimSpace(strings.TrimRight(strings.TrimSpace(c.Query), ";")) == "" {
			bad("query", "must not be empty")
		} else if strings.Contains(strings.TrimRight(strings.TrimSpace(c.Query), ";"), ";") {
			bad("query", "one SELECT statement, without ';' inside")
		}
	}
	switch {
	case len(c.Cursor) == 0:
		bad("cursor", "required: the column rows are read in the order of (an id), or a list [timestamp, tie-breaker]")
	case len(c.Cursor) > 4:
		bad("cursor", "at most 4 columns, got %d", len(c.Cursor))
	}
	for i, col := range c.Cursor {
		if strings.TrimSpace(col) == "" {
			bad(fmt.Sprintf("cursor[%d]", i), "must not be empty")
		} else if slices.Index(c.Cursor, col) < i {
			bad(fmt.Sprintf("cursor[%d]", i), "column %q given twice", col)
		}
	}
	for name := range c.Map {
		if !slices.Contains(mapping.Fields, name) {
			bad("map", "unknown field %q (known: %s)", name, strings.Join(mapping.Fields, ", "))
		}
	}
	for _, f := range mapping.Required {
		if _, ok := c.Map[f]; !ok {
			bad("map", "missing %s (every event needs it)", f)
		}
	}
	c.compileMap(bad)
	if c.Start != "" && c.Start != StartEarliest && c.Start != StartLatest {
		bad("start", "want one of %s, %s, got %q", StartEarliest, StartLatest, c.Start)
	}
	if c.Batch < 0 {
		bad("batch", "must be at least 1, got %d", c.Batch)
	}
	if c.PollInterval < 0 {
		bad("poll_interval", "must be greater than 0, got %v", c.PollInterval)
	}
	return errors.Join(errs...)
}

// checkURL says what is wrong with a connection URL, "" when nothing.
func checkURL(s string) string {
	if strings.TrimSpace(s) == "" {
		return "required (postgres://user:password@host:5432/database)"
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Sprintf("%q is not a URL", redactURL(s))
	case u.Scheme != "postgres" && u.Scheme != "postgresql":
		return fmt.Sprintf("want a URL like postgres://user:password@host:5432/database, got %q", redactURL(s))
	case u.Host == "":
		return fmt.Sprintf("%q names no host", redactURL(s))
	}
	return ""
}

// redactURL hides the password of a URL written in an error.
func redactURL(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return v
	}
	return u.Redacted()
}

// decode reads a source's mapping into a *Config, recording each problem
// at its key's file:line.
func decode(m *config.SourceMapping) *Config {
	m.Known(configKeys...)
	c := &Config{}
	decoded := map[string]bool{}
	ok := func(key string, good bool) {
		if good || !m.Has(key) {
			decoded[key] = true
		}
	}
	if m.Require("postgres") {
		ok("postgres", m.String("postgres", &c.Postgres))
	}
	ok("table", m.String("table", &c.Table))
	ok("query", m.String("query", &c.Query))
	if m.Require("cursor") {
		if m.IsSequence("cursor") {
			ok("cursor", m.Strings("cursor", &c.Cursor))
		} else {
			var col string
			good := m.String("cursor", &col)
			if good {
				c.Cursor = []string{col}
			}
			ok("cursor", good)
		}
	}
	if m.Require("map") {
		mm, good := m.Mapping("map")
		if good {
			mm.Known(mapping.Fields...)
			c.Map = map[string]string{}
			for _, k := range mm.Keys() {
				if !slices.Contains(mapping.Fields, k) {
					continue
				}
				var src string
				if !mm.Scalar(k, &src) {
					good = false
					continue
				}
				c.Map[k] = src
				if _, err := compiler.Compile(src); err != nil {
					mm.Errorf(k, "%v", err)
					good = false
					delete(c.Map, k)
				}
			}
			for _, f := range mapping.Required {
				if !mm.Has(f) {
					m.Errorf("map", "missing %s (every event needs it)", f)
					good = false
				}
			}
		}
		// Problems of the map are recorded here, at their own keys.
		_ = good
	}
	ok("poll_interval", m.Duration("poll_interval", &c.PollInterval))
	ok("batch", m.Int("batch", &c.Batch, 1))
	ok("start", m.OneOf("start", &c.Start, StartEarliest, StartLatest))
	if m.Has("settle") {
		// 0 turns it off; Duration takes only durations above 0.
		var v string
		if !m.IsSequence("settle") && !m.IsMapping("settle") && m.Scalar("settle", &v) && (v == "0" || v == "0s") {
			c.Settle = -1
			ok("settle", true)
		} else {
			ok("settle", m.Duration("settle", &c.Settle))
		}
	}
	// What Validate checks beyond types, at the key it is about; a key
	// whose value did not decode has its error already. The map's
	// problems are recorded above, and one about no key only when
	// neither table nor query is given.
	decoded["map"] = false
	decoded[""] = !m.Has("table") && !m.Has("query")
	m.ReportInvalid(c.Validate(), decoded)
	return c
}
