package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/internal/servicetest"
	"github.com/twicehq/twice/sources"
)

// testDB is a database of the test's own on the test server, with the
// superuser's connection.
type testDB struct {
	t    *testing.T
	url  string
	conn *pgx.Conn
}

func newDB(t *testing.T) *testDB {
	t.Helper()
	u := servicetest.Postgres(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return &testDB{t: t, url: u, conn: conn}
}

// exec runs statements as the superuser.
func (d *testDB) exec(sql string, args ...any) {
	d.t.Helper()
	if _, err := d.conn.Exec(context.Background(), sql, args...); err != nil {
		d.t.Fatalf("%s: %v", sql, err)
	}
}

// reader returns the URL of a new role that may only SELECT tables.
func (d *testDB) reader(tables ...string) string {
	d.t.Helper()
	u := servicetest.PostgresRole(d.t, d.url)
	role := strings.SplitN(strings.TrimPrefix(u, "postgres://"), ":", 2)[0]
	for _, tb := range tables {
		d.exec("GRANT SELECT ON " + tb + " TO " + pgx.Identifier{role}.Sanitize())
	}
	return u
}

// tx opens a transaction on a connection of its own, for late commits.
func (d *testDB) tx() pgx.Tx {
	d.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, d.url)
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { _ = conn.Close(context.Background()) })
	tx, err := conn.Begin(ctx)
	if err != nil {
		d.t.Fatal(err)
	}
	return tx
}

func txExec(t *testing.T, tx pgx.Tx, sql string, args ...any) {
	t.Helper()
	if _, err := tx.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func startStream(t *testing.T, cfg Config, now func() time.Time, resume sources.Position) *Stream {
	t.Helper()
	st, err := sources.NewRegistry(Factory{}).NewStream(config.Source{Name: "src", Type: Type, Settings: &cfg}, sources.StreamOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	s := st.(*Stream)
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	var rs map[string]sources.Position
	if resume != "" {
		rs = map[string]sources.Position{cfg.lane(): resume}
	}
	if err := s.Start(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	return s
}

// poll returns the records of one poll that is due now.
func poll(t *testing.T, s *Stream) []sources.Record {
	t.Helper()
	s.mu.Lock()
	s.next = time.Time{}
	s.mu.Unlock()
	recs, err := s.Poll(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// summary lists records as "effect_key" / "entity seq" / "malformed: reason".
func summary(recs []sources.Record) []string {
	var out []string
	for _, r := range recs {
		switch {
		case r.Malformed != nil:
			out = append(out, "malformed "+r.Malformed.Error())
		case r.Event != nil && r.Event.EffectKey != "":
			out = append(out, r.Event.EffectKey)
		case r.Event != nil:
			out = append(out, r.Event.Entity+" "+itoa(r.Event.Seq))
		}
	}
	return out
}
