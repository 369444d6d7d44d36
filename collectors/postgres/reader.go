package postgres

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/twicehq/twice/collectors/jsonl"
	"github.com/twicehq/twice/collectors/mapping"
	"github.com/twicehq/twice/twicetype"
)

// domainRow starts what is hashed into the identity of an event without
// id (jsonl uses 'i' and 'c', kafka 'o').
const domainRow = 'p'

// tableIdent parses a table name, optionally schema-qualified, into the
// identifier Postgres is asked for (each part quoted as written).
func tableIdent(s string) (pgx.Identifier, error) {
	parts := strings.Split(s, ".")
	if len(parts) > 2 {
		return nil, fmt.Errorf("%q: want table or schema.table", s)
	}
	for _, p := range parts {
		if p == "" || strings.TrimSpace(p) != p {
			return nil, fmt.Errorf("%q: want table or schema.table, names without surrounding spaces", s)
		}
	}
	return pgx.Identifier(parts), nil
}

// position is where a lane is, in the checkpoint as JSON:
//
//	{"after":["1234"]}                              an id cursor
//	{"after":["1234"],"holes":[[1230,1231,1733…]]}  with ids skipped, waited for
//	{"after":["2026-11-24 10:00:00.123+00","42"]}   a timestamp and its tie-breaker
//
// after holds the cursor columns of the last row read as Postgres writes
// them (session TimeZone UTC); holes the ids an integer cursor skipped
// that may still commit, as ranges [first, last, when skipped in Unix ms].
type position struct {
	After []string `json:"after,omitempty"`
	Holes []hole   `json:"holes,omitempty"`
}

// hole is a range of ids skipped together: first, last, and when they
// were skipped (Unix ms).
type hole [3]int64

// holeIDs lists the ids of holes.
func holeIDs(hs []hole) []int64 {
	var out []int64
	for _, h := range hs {
		for id := h[0]; id <= h[1]; id++ {
			out = append(out, id)
		}
	}
	return out
}

// holeCount is how many ids holes hold.
func holeCount(hs []hole) int64 {
	var n int64
	for _, h := range hs {
		n += h[1] - h[0] + 1
	}
	return n
}

func (p *position) encode() string {
	b, _ := json.Marshal(p)
	return string(b)
}

func parsePosition(s string, ncols int) (position, error) {
	var p position
	if s == "" {
		return p, nil
	}
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return p, fmt.Errorf("position %q is not a postgres cursor: %v", s, err)
	}
	if len(p.After) != 0 && len(p.After) != ncols {
		return p, fmt.Errorf("position %q has %d cursor values, the cursor has %d columns", s, len(p.After), ncols)
	}
	return p, nil
}

// reader reads the rows of one source and maps them; the stream and the
// audit's collector share it. It is used by one goroutine at a time.
type reader struct {
	name    string
	cfg     Config
	label   string // "SOURCE LANE": Source of events and malformed rows
	from    string // the FROM item: the quoted table, or (query) AS twice_rows
	builder *mapping.Builder

	pool *pgxpool.Pool
	cols *columns
	kind cursorKind

	conv converter
	env  Env
	row  map[string]any
	// queries counts the queries sent, the probe of connect included.
	queries int64
}

// newReader compiles cfg (which must be valid); it does no I/O.
func newReader(name string, cfg Config) (*reader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var bad []string
	fields := cfg.compileMap(func(key, format string, args ...any) {
		bad = append(bad, key+": "+fmt.Sprintf(format, args...))
	})
	if len(bad) > 0 {
		return nil, errors.New(strings.Join(bad, "; "))
	}
	b, err := mapping.NewBuilder(fields)
	if err != nil {
		return nil, err
	}
	r := &reader{name: name, cfg: cfg, builder: b, label: name + " " + cfg.lane(), row: map[string]any{}}
	if cfg.Table != "" {
		id, _ := tableIdent(cfg.Table)
		r.from = id.Sanitize()
	} else {
		q := strings.TrimRight(strings.TrimSpace(cfg.Query), "; \t\r\n")
		r.from = "(" + q + "\n) AS twice_rows"
	}
	return r, nil
}

// connect opens the pool and learns the columns of the rows; it closes
// a pool opened before.
func (r *reader) connect(ctx context.Context) error {
	r.close()
	pc, err := pgxpool.ParseConfig(r.cfg.Postgres)
	if err != nil {
		return fmt.Errorf("postgres URL: %w", errors.New(redactURL(err.Error())))
	}
	pc.MaxConns = 1
	rp := pc.ConnConfig.RuntimeParams
	// Timestamps are written, read back and compared in UTC, ISO style.
	rp["timezone"] = "UTC"
	rp["datestyle"] = "ISO, YMD"
	if rp["application_name"] == "" {
		rp["application_name"] = "twice " + r.name
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("connecting to postgres: %w", err)
	}
	r.queries++
	rows, err := pool.Query(ctx, "SELECT * FROM "+r.from+" LIMIT 0", textFormat)
	var fds []pgconn.FieldDescription
	if err == nil {
		fds = slices.Clone(rows.FieldDescriptions())
		rows.Close()
		err = rows.Err()
	}
	if err != nil {
		pool.Close()
		return r.queryError(err)
	}
	cols, err := describe(fds, r.cfg.Cursor)
	if err != nil {
		pool.Close()
		return fmt.Errorf("reading %s: %w", r.cfg.lane(), err)
	}
	r.pool, r.cols, r.kind = pool, cols, kindOf(cols.cursorOIDs())
	return nil
}

// queryError wraps an error of a query with what was read and, for a
// permission error, the GRANT it lacks.
func (r *reader) queryError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42501" {
		switch {
		case strings.Contains(pe.Message, "schema"):
			return fmt.Errorf("reading %s: %w (twice needs: GRANT USAGE ON SCHEMA … TO <twice's role>, and SELECT on what it reads)", r.cfg.lane(), err)
		case r.cfg.Table != "":
			return fmt.Errorf("reading %s: %w (twice needs: GRANT SELECT ON %s TO <twice's role>)", r.cfg.Table, err, r.from)
		default:
			return fmt.Errorf("reading query: %w (twice needs SELECT on every table the query reads)", err)
		}
	}
	return fmt.Errorf("reading %s: %w", r.cfg.lane(), err)
}

func (r *reader) close() {
	if r.pool != nil {
		r.pool.Close()
		r.pool = nil
	}
}

// bounds are the conditions of one query besides the cursor.
type bounds struct {
	settledBy time.Time // rows whose timestamp cursor is at or before it; zero: all
	since     time.Time // rows whose timestamp cursor is at or after it; zero: all
}

// query returns the SQL and arguments that read the rows after pos.
func (r *reader) query(pos *position, b bounds) (string, []any) {
	var where, order []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	cols := make([]string, len(r.cfg.Cursor))
	for i, c := range r.cfg.Cursor {
		cols[i] = pgx.Identifier{c}.Sanitize()
		where = append(where, cols[i]+" IS NOT NULL")
		order = append(order, cols[i])
	}
	if len(pos.After) > 0 {
		ps := make([]string, len(pos.After))
		for i, v := range pos.After {
			ps[i] = arg(v)
		}
		after := "(" + strings.Join(cols, ", ") + ") > (" + strings.Join(ps, ", ") + ")"
		if len(cols) == 1 {
			after = cols[0] + " > " + ps[0]
		}
		if len(pos.Holes) > 0 {
			after = "(" + after + " OR " + cols[0] + " = ANY(" + arg(holeIDs(pos.Holes)) + "::bigint[]))"
		}
		where = append(where, after)
	}
	if !b.settledBy.IsZero() {
		where = append(where, cols[0]+" <= "+arg(b.settledBy.UTC().Format(time.RFC3339Nano)))
	}
	if !b.since.IsZero() {
		where = append(where, cols[0]+" >= "+arg(b.since.UTC().Format(time.RFC3339Nano)))
	}
	sql := "SELECT * FROM " + r.from + " WHERE " + strings.Join(where, " AND ") +
		" ORDER BY " + strings.Join(order, ", ") + " LIMIT " + strconv.Itoa(r.cfg.batch())
	return sql, args
}

// rowResult is one row read: its event or why it is malformed, and the
// cursor values after it.
type rowResult struct {
	event     *twicetype.Event
	malformed *twicetype.Malformed
	after     []string
}

// read runs one query on q and maps the rows; full reports a whole batch
// (more may follow at once).
func (r *reader) read(ctx context.Context, q querier, pos *position, b bounds) (out []rowResult, full bool, err error) {
	sql, args := r.query(pos, b)
	if out, err = r.run(ctx, q, sql, args); err != nil {
		return nil, false, err
	}
	if len(out) < r.cfg.batch() {
		return out, false, nil
	}
	// A full batch may end inside a run of rows with one cursor value
	// (a cursor that is not unique): the rest of the run would be passed
	// over by the next query's "> cursor". Leave the run to the next
	// query; when the whole batch is one run, read all of it now.
	last := out[len(out)-1].after
	i := len(out) - 1
	for i >= 0 && slices.Equal(out[i].after, last) {
		i--
	}
	if i >= 0 {
		return out[:i+1], true, nil
	}
	if len(pos.After) > 0 && len(pos.Holes) > 0 && !r.afterPos(last, pos) {
		return out, true, nil // a run of one id in holes: read as is
	}
	sql, args = r.queryEqual(last)
	out, err = r.run(ctx, q, sql, args)
	return out, true, err
}

// afterPos reports whether the integer cursor value after[0] is above
// pos's highest.
func (r *reader) afterPos(after []string, pos *position) bool {
	x, err1 := strconv.ParseInt(after[0], 10, 64)
	y, err2 := strconv.ParseInt(pos.After[0], 10, 64)
	return err1 == nil && err2 == nil && x > y
}

// queryEqual returns the SQL and arguments that read every row whose
// cursor is vals.
func (r *reader) queryEqual(vals []string) (string, []any) {
	var where []string
	var args []any
	for i, c := range r.cfg.Cursor {
		args = append(args, vals[i])
		where = append(where, pgx.Identifier{c}.Sanitize()+" = $"+strconv.Itoa(len(args)))
	}
	return "SELECT * FROM " + r.from + " WHERE " + strings.Join(where, " AND "), args
}

// last returns the cursor of the last row, nil for an empty table.
func (r *reader) last(ctx context.Context) ([]string, error) {
	cols := make([]string, len(r.cfg.Cursor))
	for i, c := range r.cfg.Cursor {
		cols[i] = pgx.Identifier{c}.Sanitize() + " DESC NULLS LAST"
	}
	sql := "SELECT * FROM " + r.from + " ORDER BY " + strings.Join(cols, ", ") + " LIMIT 1"
	out, err := r.run(ctx, r.pool, sql, nil)
	if err != nil || len(out) == 0 {
		return nil, err
	}
	return out[0].after, nil
}

// querier is a pool or a transaction.
type querier interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}

// run runs one query and maps its rows.
func (r *reader) run(ctx context.Context, q querier, sql string, args []any) ([]rowResult, error) {
	r.queries++
	rows, err := q.Query(ctx, sql, append([]any{textFormat}, args...)...)
	if err != nil {
		return nil, r.queryError(err)
	}
	defer rows.Close()
	if !slices.Equal(fieldNames(rows.FieldDescriptions()), r.cols.names) {
		cols, err := describe(rows.FieldDescriptions(), r.cfg.Cursor)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", r.cfg.lane(), err)
		}
		r.cols = cols
	}
	var out []rowResult
	for rows.Next() {
		out = append(out, r.mapRow(rows.RawValues()))
	}
	if err := rows.Err(); err != nil {
		return nil, r.queryError(err)
	}
	return out, nil
}

func fieldNames(fds []pgconn.FieldDescription) []string {
	out := make([]string, len(fds))
	for i, fd := range fds {
		out[i] = fd.Name
	}
	return out
}

// mapRow maps one row, as text values.
func (r *reader) mapRow(raw [][]byte) rowResult {
	res := rowResult{after: make([]string, len(r.cols.cursor))}
	for i, j := range r.cols.cursor {
		res.after[i] = string(raw[j])
	}
	var line int64
	if n, err := strconv.ParseInt(res.after[len(res.after)-1], 10, 64); err == nil {
		line = n
	}
	clear(r.row)
	var convErr error
	for i, v := range raw {
		x, err := r.conv.value(r.cols.oids[i], v)
		if err != nil && convErr == nil {
			convErr = fmt.Errorf("column %s: %w", r.cols.names[i], err)
		}
		r.row[r.cols.names[i]] = x
	}
	ev := &twicetype.Event{}
	err := convErr
	if err == nil {
		r.env.Row = r.row
		err = r.builder.Build(&r.env, ev)
		r.env.Row = nil
	}
	if err != nil {
		reason := err.Error()
		var pe *jsonl.ParseError
		if errors.As(err, &pe) {
			reason = pe.Reason
		}
		res.malformed = &twicetype.Malformed{Source: r.label, Line: line,
			Reason: "row " + r.cursorText(res.after) + ": " + mapping.Shorten(reason)}
		return res
	}
	ev.Source, ev.Line = r.label, line
	if ev.ID == "" {
		ev.Identity = rowIdentity(r.name, r.cfg.lane(), res.after)
	}
	res.event = ev
	return res
}

// cursorText names a row by its cursor: `id=17`, `updated_at=…, id=3`.
func (r *reader) cursorText(after []string) string {
	parts := make([]string, len(after))
	for i, v := range after {
		parts[i] = r.cfg.Cursor[i] + "=" + v
	}
	return strings.Join(parts, ", ")
}

// rowIdentity is the identity of an event without id mapped by source
// from the row of lane whose cursor values are after: the row's key and
// version, so a row read again is the same observation and a new version
// a new one. The source is part of it: two sources may map one table
// (as effects and as state), and their events are not one observation.
func rowIdentity(source, lane string, after []string) uint64 {
	b := []byte{domainRow}
	b = append(b, source...)
	b = append(b, 0)
	b = append(b, lane...)
	for _, v := range after {
		b = append(b, 0)
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	h := xxhash.Sum64(b)
	if h == 0 {
		h = 1
	}
	return h
}

// advance moves pos past a row whose cursor values are after, read at
// now: for an integer cursor, an id in holes fills it, and ids skipped
// below a new highest become holes (at most maxHoles, the newest kept).
func (r *reader) advance(pos *position, after []string, now time.Time) {
	if r.kind != cursorInteger || len(pos.After) == 0 {
		pos.After = after // read in cursor order
		return
	}
	id, err1 := strconv.ParseInt(after[0], 10, 64)
	high, err2 := strconv.ParseInt(pos.After[0], 10, 64)
	if err1 != nil || err2 != nil {
		pos.After = after
		return
	}
	if id <= high {
		// A late commit fills its hole: the range around it is split.
		for i, h := range pos.Holes {
			if id < h[0] || id > h[1] {
				continue
			}
			var parts []hole
			if id > h[0] {
				parts = append(parts, hole{h[0], id - 1, h[2]})
			}
			if id < h[1] {
				parts = append(parts, hole{id + 1, h[1], h[2]})
			}
			pos.Holes = slices.Replace(pos.Holes, i, i+1, parts...)
			break
		}
		if len(pos.Holes) == 0 {
			pos.Holes = nil
		}
		return
	}
	if id > high+1 {
		pos.Holes = append(pos.Holes, hole{max(high+1, id-maxHoles), id - 1, now.UnixMilli()})
	}
	// The oldest ids go first when there are too many.
	for n := holeCount(pos.Holes) - maxHoles; n > 0; n = holeCount(pos.Holes) - maxHoles {
		h := &pos.Holes[0]
		if h[1]-h[0]+1 <= n {
			pos.Holes = pos.Holes[1:]
			continue
		}
		h[0] += n
	}
	pos.After = after
}

// expire drops the holes skipped more than settle before now.
func expire(pos *position, now time.Time, settle time.Duration) {
	limit := now.Add(-settle).UnixMilli()
	pos.Holes = slices.DeleteFunc(pos.Holes, func(h hole) bool { return h[2] < limit })
	if len(pos.Holes) == 0 {
		pos.Holes = nil
	}
}
