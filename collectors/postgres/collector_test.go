package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/sources"
	"github.com/twicehq/twice/twicetype"
)

// collect reads every batch of the audit's collector of cfg.
func collect(t *testing.T, cfg Config, since time.Time) ([]twicetype.Event, []twicetype.Malformed) {
	t.Helper()
	ctx := context.Background()
	cols, err := sources.NewRegistry(Factory{}).NewCollectors(ctx, config.Source{Name: "src", Type: Type, Settings: &cfg}, sources.CollectOptions{Since: since})
	if err != nil || len(cols) != 1 {
		t.Fatalf("collectors: %v %v", cols, err)
	}
	c := cols[0]
	defer c.Shutdown(ctx)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var evs []twicetype.Event
	var mal []twicetype.Malformed
	for {
		b, err := c.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, b.Events...)
		mal = append(mal, b.Malformed...)
	}
	if err := c.Shutdown(ctx); err != nil {
		t.Error(err)
	}
	return evs, mal
}

// TestAuditCollectorSinceAndBatches: the audit reads batch after batch in
// one snapshot, from --since for a timestamp cursor; every column type
// reaches the map as the spec says.
func TestAuditCollectorSinceAndBatches(t *testing.T) {
	db := newDB(t)
	db.exec(`CREATE TABLE sent (
		id uuid PRIMARY KEY DEFAULT gen_random_uuid(), at timestamp NOT NULL, n int NOT NULL,
		day date NOT NULL DEFAULT '2026-11-24', ratio real NOT NULL DEFAULT 0.5, tags text[] NOT NULL DEFAULT '{a,b}')`)
	db.exec(`INSERT INTO sent (at, n) SELECT '2026-11-24 10:00:00'::timestamp + g * interval '1 second', g FROM generate_series(1, 25) g`)
	cfg := Config{
		Postgres: db.reader("sent"),
		Table:    "sent",
		Cursor:   []string{"at", "id"},
		Batch:    10,
		Map: map[string]string{
			"ts":         "row.at",
			"kind":       `"effect"`,
			"effect":     `"email.sent"`,
			"effect_key": `"mail/" + string(row.n)`,
			"attrs":      `{"day": row.day, "ratio": row.ratio, "tags": row.tags, "id": len(row.id)}`,
		},
	}
	evs, mal := collect(t, cfg, time.Time{})
	if len(evs) != 25 || len(mal) != 0 || evs[24].EffectKey != "mail/25" {
		t.Fatalf("%d events, %d malformed", len(evs), len(mal))
	}
	var attrs map[string]any
	_ = json.Unmarshal(evs[0].Attrs, &attrs)
	if b, _ := json.Marshal(attrs); string(b) != `{"day":"2026-11-24","id":36,"ratio":0.5,"tags":"{a,b}"}` {
		t.Errorf("attrs %s", b)
	}
	evs, _ = collect(t, cfg, time.Date(2026, 11, 24, 10, 0, 20, 0, time.UTC))
	if len(evs) != 6 || evs[0].EffectKey != "mail/20" {
		t.Errorf("since 10:00:20: %d events, first %q", len(evs), evs[0].EffectKey)
	}
}

// TestQueryErrors: a query without the cursor column, or with two
// columns of one name, fails Start with what to change.
func TestQueryErrors(t *testing.T) {
	db := newDB(t)
	db.exec(`CREATE TABLE t (id int, a int, b int)`)
	url := db.reader("t")
	for _, tc := range []struct{ query, want string }{
		{"SELECT a, b FROM t", `cursor column "id" is not a column of the rows (they have: a, b)`},
		{"SELECT id, a AS x, b AS x FROM t", `two columns named "x"`},
		{"SELECT id FROM nowhere", `relation "nowhere" does not exist`},
	} {
		s, err := NewStream("src", Config{Postgres: url, Query: tc.query, Cursor: []string{"id"},
			Map: map[string]string{"ts": "row.at", "kind": `"effect"`}}, StreamOptions{})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Start(context.Background(), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %s", tc.query, err, tc.want)
		}
		_ = s.Shutdown(context.Background())
	}

	// SELECT on a table of a schema the role may not use.
	db.exec(`CREATE SCHEMA app; CREATE TABLE app.x (id int)`)
	s, err := NewStream("src", Config{Postgres: db.reader("app.x"), Table: "app.x", Cursor: []string{"id"},
		Map: map[string]string{"ts": "row.at", "kind": `"effect"`}}, StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	if err := s.Start(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "GRANT USAGE ON SCHEMA") {
		t.Errorf("without USAGE on the schema: %v", err)
	}
	// A query over a table the role may not read.
	db.exec(`CREATE TABLE secret (id int)`)
	q, _ := NewStream("src", Config{Postgres: url, Query: "SELECT t.id FROM t JOIN secret USING (id)", Cursor: []string{"id"},
		Map: map[string]string{"ts": "row.at", "kind": `"effect"`}}, StreamOptions{})
	defer q.Shutdown(context.Background())
	if err := q.Start(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "twice needs SELECT on every table the query reads") {
		t.Errorf("a query over a table without SELECT: %v", err)
	}
}

// TestCursorTies: with a cursor that is not unique, a batch never ends
// inside a run of equal values, and a run longer than a batch is read
// whole, so no row is passed over.
func TestCursorTies(t *testing.T) {
	db := newDB(t)
	db.exec(`CREATE TABLE e (n int NOT NULL, at timestamptz NOT NULL)`)
	db.exec(`INSERT INTO e VALUES (1, '2026-11-24 10:00:01Z'), (2, '2026-11-24 10:00:01Z'),
		(3, '2026-11-24 10:00:02Z'), (4, '2026-11-24 10:00:02Z'), (5, '2026-11-24 10:00:02Z'),
		(6, '2026-11-24 10:00:03Z'), (7, '2026-11-24 10:00:03Z'), (8, '2026-11-24 10:00:03Z'),
		(9, '2026-11-24 10:00:03Z'), (10, '2026-11-24 10:00:03Z'), (11, '2026-11-24 10:00:04Z')`)
	cfg := Config{Postgres: db.reader("e"), Table: "e", Cursor: []string{"at"}, Batch: 4,
		Map: map[string]string{"ts": "row.at", "kind": `"effect"`, "effect": `"x"`, "effect_key": `string(row.n)`}}
	evs, _ := collect(t, cfg, time.Time{})
	var keys []string
	for _, e := range evs {
		keys = append(keys, e.EffectKey)
	}
	slices.Sort(keys)
	if len(keys) != 11 || len(slices.Compact(slices.Clone(keys))) != 11 {
		t.Errorf("read %q, want each of the 11 rows once", keys)
	}

	s := startStream(t, func() Config { c := cfg; c.Settle = -1; return c }(), time.Now, "")
	var got []string
	for i := 0; i < 10; i++ {
		for _, r := range poll(t, s) {
			got = append(got, r.Event.EffectKey)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, keys) {
		t.Errorf("watch read %q, want %q", got, keys)
	}
}
