package pgjobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/collectors/jobpath"
	"github.com/twicehq/twice/twicetype"
)

// DefaultBatch is how many new rows one poll reads at most.
const DefaultBatch = 1000

// Poller reads a job table: one poll reads the rows new since the
// cursor, and of the rows it follows (and unfinished rows below the
// cursor) a light signature, then whole rows only for those that changed.
// It only ever SELECTs: no lock, no write. Construct it with NewPoller;
// it is not safe for concurrent use, except Stats.
type Poller struct {
	name  string
	cfg   Config
	d     *Dialect
	lane  string
	batch int

	tracker *tracker
	builder *builder

	qNew, qOpen, qLight, qFull string
	openStates                 []string
	more                       bool // the last poll read a full batch of new rows

	mu      sync.Mutex
	pool    *pgxpool.Pool
	stats   Stats
	queries int64
}

// NewPoller returns the poller of a source named name over the table of
// dialect d. It does no I/O; cfg must be valid.
func NewPoller(name string, d *Dialect, cfg Config) (*Poller, error) {
	cfg.schemaKey, cfg.roots = d.SchemaKey, d.Roots
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s %s: %w", d.Type, name, err)
	}
	cfg = cfg.WithDefaults()
	m, err := jobpath.NewMapping(cfg.Key, cfg.Entity, cfg.Attrs, cfg.rootCheck())
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", d.Type, name, err)
	}
	table := d.table(cfg.Schema)
	stateType := pgx.Identifier{cfg.Schema, d.StateType}.Sanitize()
	p := &Poller{
		name: name, cfg: cfg, d: d, lane: cfg.Schema + "." + d.Table, batch: DefaultBatch,
		tracker: newTracker(d, m, int64(cfg.GapTimeout)),
		builder: newBuilder(name),
		qNew: "SELECT " + d.fullColumns() + " FROM " + table +
			" WHERE id > $1 AND id <> ALL($2::bigint[]) ORDER BY id LIMIT $3",
		// Two statements, each on one index: an OR of the two made
		// Postgres scan the table and search the array for every row.
		qOpen: "SELECT " + d.lightColumns() + " FROM " + table +
			" WHERE state = ANY($2::text[]::" + stateType + "[]) AND id <= $1",
		qLight: "SELECT " + d.lightColumns() + " FROM " + table +
			" WHERE id = ANY($1::bigint[]) AND (id > $3 OR NOT (state = ANY($2::text[]::" + stateType + "[])))",
		qFull:      "SELECT " + d.fullColumns() + " FROM " + table + " WHERE id = ANY($1::bigint[]) ORDER BY id",
		openStates: d.rawStates(StateAvailable, StateScheduled, StateWaiting, StateRunning, StateRetryable),
	}
	return p, nil
}

// Name names the source.
func (p *Poller) Name() string { return p.name }

// Lane is the one lane: schema.table.
func (p *Poller) Lane() string { return p.lane }

// Start connects and checks that the table can be read.
func (p *Poller) Start(ctx context.Context) error {
	pool, err := p.connect(ctx)
	if err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, "SELECT 1 FROM "+p.d.table(p.cfg.Schema)+" LIMIT 0"); err != nil {
		return fmt.Errorf("%s %s: read %s: %w (the role needs USAGE on the schema and SELECT on the table: see docs/sources/%s.md)",
			p.d.Type, p.name, p.lane, err, p.d.Type)
	}
	return nil
}

// connect makes the pool once.
func (p *Poller) connect(ctx context.Context) (*pgxpool.Pool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pool != nil {
		return p.pool, nil
	}
	pc, err := pgxpool.ParseConfig(p.cfg.Postgres)
	if err != nil {
		return nil, fmt.Errorf("%s %s: postgres %s: %w", p.d.Type, p.name, RedactURL(p.cfg.Postgres), err)
	}
	pc.MaxConns = 1
	pc.ConnConfig.RuntimeParams["application_name"] = "twice " + p.d.Type + " " + p.name
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("%s %s: connect to %s: %w", p.d.Type, p.name, RedactURL(p.cfg.Postgres), err)
	}
	p.pool = pool
	return pool, nil
}

func (p *Poller) conn() *pgxpool.Pool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pool
}

// Poll reads the table once and returns the events of what changed,
// sorted by time, the rows found malformed and the coverage lost; more is
// set when the poll read a full batch of new rows (read again at once).
func (p *Poller) Poll(ctx context.Context) (b *collectors.Batch, more bool, err error) {
	pool := p.conn()
	if pool == nil {
		return nil, false, fmt.Errorf("%s %s: Poll before Start", p.d.Type, p.name)
	}
	began := time.Now()
	t := p.tracker
	var now time.Time
	var fresh, light []Row
	var bad []twicetype.Malformed
	batch := &pgx.Batch{}
	batch.Queue("SELECT statement_timestamp()").QueryRow(func(row pgx.Row) error { return row.Scan(&now) })
	batch.Queue(p.qNew, t.cursor, t.aheadIDs(), p.batch).Query(func(rows pgx.Rows) error {
		var err error
		fresh, bad, err = p.scanFull(rows, bad)
		return err
	})
	// While it catches up with a table that has more new rows than a
	// batch, a poll reads new rows only: the rows it follows are read
	// again once it has caught up (else each page would read them all).
	catchingUp := p.more
	nq := int64(2)
	if !catchingUp {
		scan := func(rows pgx.Rows) error {
			l, err := scanLight(rows)
			light = append(light, l...)
			return err
		}
		batch.Queue(p.qOpen, t.cursor, p.openStates).Query(scan)
		batch.Queue(p.qLight, t.followed(), p.openStates, t.cursor).Query(scan)
		nq += 2
	}
	if err := pool.SendBatch(ctx, batch).Close(); err != nil {
		return nil, false, fmt.Errorf("%s %s: read %s: %w", p.d.Type, p.name, p.lane, err)
	}
	var changed, gone []int64
	if !catchingUp {
		changed, gone = t.changed(light)
	}
	var again []Row
	if len(changed) > 0 {
		rows, err := pool.Query(ctx, p.qFull, changed)
		if err != nil {
			return nil, false, fmt.Errorf("%s %s: read %s: %w", p.d.Type, p.name, p.lane, err)
		}
		again, bad, err = p.scanFull(rows, bad)
		if err != nil {
			return nil, false, fmt.Errorf("%s %s: read %s: %w", p.d.Type, p.name, p.lane, err)
		}
		nq++
		got := make(map[int64]bool, len(again))
		for _, r := range again {
			got[r.ID] = true
		}
		for _, id := range changed {
			if !got[id] && t.jobs[id] != nil {
				gone = append(gone, id)
			}
		}
	}
	read := time.Since(began)
	specs, gaps := t.observe(now.UnixNano(), fresh, again, gone)
	b = &collectors.Batch{Events: make([]twicetype.Event, 0, len(specs)), Malformed: bad}
	for _, s := range specs {
		ev, err := p.builder.build(s, p.lane)
		if err != nil {
			b.Malformed = append(b.Malformed, twicetype.Malformed{Source: p.name + " " + p.lane, Line: s.row.ID, Reason: err.Error()})
			continue
		}
		b.Events = append(b.Events, ev)
	}
	for _, g := range gaps {
		g.Source, g.Lane = p.name, p.lane
		b.Lost = append(b.Lost, g)
	}
	p.mu.Lock()
	readTime := p.stats.ReadTime + read
	p.stats = t.stats
	p.stats.ReadTime = readTime
	p.queries += nq
	p.mu.Unlock()
	p.more = len(fresh) == p.batch
	return b, p.more, nil
}

// scanLight reads the light columns.
func scanLight(rows pgx.Rows) ([]Row, error) {
	defer rows.Close()
	var out []Row
	for rows.Next() {
		var r Row
		var attempted, finalized *time.Time
		if err := rows.Scan(&r.ID, &r.RawState, &r.Attempt, &r.NErrors, &attempted, &finalized); err != nil {
			return nil, err
		}
		setTimes(&r, attempted, finalized)
		out = append(out, r)
	}
	return out, rows.Err()
}

// scanFull reads whole rows; a row whose errors cannot be read is
// malformed, and judged without them.
func (p *Poller) scanFull(rows pgx.Rows, bad []twicetype.Malformed) ([]Row, []twicetype.Malformed, error) {
	defer rows.Close()
	var out []Row
	for rows.Next() {
		var r Row
		var attempted, finalized *time.Time
		var args *string
		var meta, tags, errs string
		if err := rows.Scan(&r.ID, &r.RawState, &r.Attempt, &r.NErrors, &attempted, &finalized,
			&r.Queue, &r.JobType, &args, &meta, &tags, &r.CreatedAt, &r.ScheduledAt, &errs); err != nil {
			return nil, bad, err
		}
		setTimes(&r, attempted, finalized)
		if args != nil {
			r.Args = []byte(*args)
		}
		r.Meta, r.Tags = []byte(meta), []byte(tags)
		state, ok := p.d.States[r.RawState]
		if !ok {
			bad = append(bad, twicetype.Malformed{Source: p.name + " " + p.lane, Line: r.ID,
				Reason: fmt.Sprintf("job %d: unknown state %q", r.ID, r.RawState)})
			continue
		}
		r.State = state
		var err error
		if r.Errors, err = parseErrors(errs); err != nil {
			bad = append(bad, twicetype.Malformed{Source: p.name + " " + p.lane, Line: r.ID,
				Reason: fmt.Sprintf("job %d: %v", r.ID, err)})
		}
		out = append(out, r)
	}
	return out, bad, rows.Err()
}

func setTimes(r *Row, attempted, finalized *time.Time) {
	if attempted != nil {
		r.AttemptedAt = *attempted
	}
	if finalized != nil {
		r.FinalizedAt = *finalized
	}
}

// Stats returns the tracker's counters and the statements run since
// Start. It is safe to call at any time.
func (p *Poller) Stats() (Stats, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats, p.queries
}

// Shutdown closes the pool. It is safe to call twice.
func (p *Poller) Shutdown(context.Context) error {
	p.mu.Lock()
	pool := p.pool
	p.pool = nil
	p.mu.Unlock()
	if pool != nil {
		pool.Close()
	}
	return nil
}

// listener wakes a stream early: it LISTENs on the channels the queue's
// clients notify on insert, on a connection of its own.
type listener struct {
	url      string
	channels []string
	wake     chan struct{}
	logf     func(string, ...any)

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	failed time.Time
}

// start connects and listens, unless it already does. A failure is
// logged and retried at most every 10 s; polling goes on meanwhile.
func (l *listener) start(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done != nil || len(l.channels) == 0 || (!l.failed.IsZero() && time.Since(l.failed) < 10*time.Second) {
		return
	}
	conn, err := pgx.Connect(ctx, l.url)
	if err == nil {
		for _, ch := range l.channels {
			if _, err = conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
				break
			}
		}
		if err != nil {
			_ = conn.Close(ctx)
		}
	}
	if err != nil {
		l.failed = time.Now()
		l.logf("LISTEN %v: %v; polling only", l.channels, err)
		return
	}
	lctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	l.cancel, l.done, l.failed = cancel, done, time.Time{}
	go func() {
		defer close(done)
		defer func() { _ = conn.Close(context.Background()) }()
		for {
			if _, err := conn.WaitForNotification(lctx); err != nil {
				if !errors.Is(err, context.Canceled) {
					l.logf("LISTEN %v: %v; polling only until it reconnects", l.channels, err)
				}
				l.mu.Lock()
				if l.done == done {
					l.done, l.cancel, l.failed = nil, nil, time.Now()
				}
				l.mu.Unlock()
				return
			}
			select {
			case l.wake <- struct{}{}:
			default:
			}
		}
	}()
}

// stop ends listening; safe twice.
func (l *listener) stop() {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.cancel, l.done = nil, nil
	l.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
