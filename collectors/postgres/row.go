package postgres

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/valyala/fastjson"

	"github.com/twicehq/twice/collectors/mapping"
)

// Env is what an expression of a postgres source's map sees: the row,
// column name → value (spec §3.1).
type Env struct {
	// Row holds the row's columns: text as a string, integers and
	// numerics as numbers (int when integral and in range, float64
	// otherwise), booleans, json and jsonb as what they hold (objects as
	// maps), timestamptz and timestamp as RFC 3339 strings in UTC, NULL
	// as nil; any other type as the text Postgres writes for it.
	Row map[string]any `expr:"row"`
}

var compiler = mapping.NewCompiler(Env{})

// Object identifiers of the types converted to something else than text
// (the other types' text is what Postgres writes).
const (
	oidBool        = pgtype.BoolOID
	oidInt2        = pgtype.Int2OID
	oidInt4        = pgtype.Int4OID
	oidInt8        = pgtype.Int8OID
	oidOID         = pgtype.OIDOID
	oidFloat4      = pgtype.Float4OID
	oidFloat8      = pgtype.Float8OID
	oidNumeric     = pgtype.NumericOID
	oidJSON        = pgtype.JSONOID
	oidJSONB       = pgtype.JSONBOID
	oidTimestamp   = pgtype.TimestampOID
	oidTimestamptz = pgtype.TimestamptzOID
)

// cursorKind is how a cursor's first column orders rows, which decides
// how late commits are caught (package comment).
type cursorKind int

const (
	cursorOther     cursorKind = iota
	cursorInteger              // one integer column: skipped ids are waited for
	cursorTimestamp            // a timestamp first: rows are read once settled
)

// kindOf returns the cursor kind of columns whose types are oids.
func kindOf(oids []uint32) cursorKind {
	switch oids[0] {
	case oidInt2, oidInt4, oidInt8:
		if len(oids) == 1 {
			return cursorInteger
		}
	case oidTimestamp, oidTimestamptz:
		return cursorTimestamp
	}
	return cursorOther
}

// converter turns the text values of a row into the values of Env.Row.
type converter struct {
	jp fastjson.Parser
}

// value converts the text form of a column of type oid (nil: NULL).
func (c *converter) value(oid uint32, raw []byte) (any, error) {
	if raw == nil {
		return nil, nil
	}
	s := string(raw)
	switch oid {
	case oidBool:
		return s == "t", nil
	case oidInt2, oidInt4, oidInt8, oidOID:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("integer %q: %w", s, err)
		}
		return int(n), nil
	case oidFloat4, oidFloat8, oidNumeric:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return int(n), nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			// NaN and infinities are numbers to Postgres only: JSON
			// cannot hold them, so they stay as written.
			return s, nil
		}
		if oid == oidNumeric && strings.Contains(s, ".") && f == float64(int64(f)) && !strings.ContainsAny(s, "eE") {
			// 12.00: integral, as JSON would hold it.
			return int(f), nil
		}
		return f, nil
	case oidJSON, oidJSONB:
		v, err := c.jp.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("json: %w", err)
		}
		return mapping.FromJSON(v), nil
	case oidTimestamptz, oidTimestamp:
		t, err := parseTimestamp(s)
		if err != nil {
			// infinity, -infinity
			return s, nil
		}
		return t.UTC().Format(time.RFC3339Nano), nil
	}
	return s, nil
}

// parseTimestamp parses the ISO text of a timestamp or timestamptz in a
// session whose TimeZone is UTC ("2026-11-24 10:00:00.123456+00"); a
// timestamp without zone is taken as UTC.
func parseTimestamp(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999Z07", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z07:00:00", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q", s)
}

// columns describes the columns of a result: names and types, and where
// the cursor's columns are.
type columns struct {
	names  []string
	oids   []uint32
	cursor []int // index of each cursor column
}

// describe reads fds, finding the cursor columns; an error names a
// cursor column the result lacks, or a column name given twice.
func describe(fds []pgconn.FieldDescription, cursor []string) (*columns, error) {
	c := &columns{}
	seen := map[string]bool{}
	for _, fd := range fds {
		if seen[fd.Name] {
			return nil, fmt.Errorf("the rows have two columns named %q; name them apart (AS …)", fd.Name)
		}
		seen[fd.Name] = true
		c.names = append(c.names, fd.Name)
		c.oids = append(c.oids, fd.DataTypeOID)
	}
	for _, col := range cursor {
		i := -1
		for j, n := range c.names {
			if n == col {
				i = j
			}
		}
		if i < 0 {
			return nil, fmt.Errorf("cursor column %q is not a column of the rows (they have: %s)", col, strings.Join(c.names, ", "))
		}
		c.cursor = append(c.cursor, i)
	}
	return c, nil
}

// cursorOIDs returns the types of the cursor's columns.
func (c *columns) cursorOIDs() []uint32 {
	out := make([]uint32, len(c.cursor))
	for i, j := range c.cursor {
		out[i] = c.oids[j]
	}
	return out
}

// textFormat asks for every column in text format, so a cursor value is
// read back exactly as Postgres wrote it and any type has a value.
var textFormat = pgx.QueryResultFormats{pgx.TextFormatCode}
