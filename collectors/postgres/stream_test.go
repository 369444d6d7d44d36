package postgres

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

const ledgerDDL = `CREATE TABLE ledger (
	id bigserial PRIMARY KEY,
	created_at timestamptz NOT NULL,
	payment_id text,
	job_id bigint,
	amount numeric(12,2) NOT NULL,
	meta jsonb,
	settled boolean NOT NULL DEFAULT false,
	booked timestamp
)`

func ledgerConfig(url string) Config {
	return Config{
		Postgres: url,
		Table:    "public.ledger",
		Cursor:   []string{"id"},
		Map: map[string]string{
			"ts":         "row.created_at",
			"kind":       `"effect"`,
			"effect":     `"ledger.insert"`,
			"effect_key": `"charge/" + row.payment_id`,
			"job_id":     "string(row.job_id)",
			"attrs":      `{"amount": row.amount, "meta": row.meta, "settled": row.settled, "booked": row.booked, "nothing": row.job_id == nil}`,
		},
	}
}

// TestLedgerRowsAsEffects: a ledger table read by a role that may only
// SELECT it; values converted as the spec says, a duplicate key kept as
// two effects, a row the map fails on malformed with its cursor, and a
// restart from a record's position re-emitting nothing.
func TestLedgerRowsAsEffects(t *testing.T) {
	db := newDB(t)
	db.exec(ledgerDDL)
	db.exec(`INSERT INTO ledger (created_at, payment_id, job_id, amount, meta, settled, booked) VALUES
		('2026-11-24 11:00:00.5+01', 'p1', 42, 12.50, '{"card": "visa", "n": 3}', true, '2026-11-24 10:00:01'),
		('2026-11-24 10:00:02Z', 'p1', 43, 12, NULL, false, NULL),
		('2026-11-24 10:00:03Z', NULL, 44, 1, NULL, false, NULL)`)
	url := db.reader("ledger")

	// Without the grant, the error says which.
	noGrant := ledgerConfig(db.reader())
	s0, _ := NewStream("ledger", noGrant, StreamOptions{})
	err := s0.Start(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "GRANT SELECT ON \"public\".\"ledger\"") {
		t.Errorf("a role without SELECT: %v, want the GRANT it needs", err)
	}

	s := startStream(t, ledgerConfig(url), time.Now, "")
	recs := poll(t, s)
	got := summary(recs)
	want := []string{"charge/p1", "charge/p1",
		`malformed src public.ledger:3: row id=3: missing field "effect_key" (needed by effect) (map.effect_key: invalid operation: string + <nil>)`}
	if !slices.Equal(got, want) {
		t.Fatalf("records:\n%q\nwant\n%q", got, want)
	}
	ev := recs[0].Event
	if ev.JobID != "42" || time.Unix(0, ev.Time).UTC().Format(time.RFC3339Nano) != "2026-11-24T10:00:00.5Z" || ev.Source != "src public.ledger" || ev.Line != 1 {
		t.Errorf("first event: job %q time %v source %q line %d", ev.JobID, time.Unix(0, ev.Time).UTC(), ev.Source, ev.Line)
	}
	var attrs map[string]any
	if err := json.Unmarshal(ev.Attrs, &attrs); err != nil {
		t.Fatal(err)
	}
	if a, _ := json.Marshal(attrs); string(a) != `{"amount":12.5,"booked":"2026-11-24T10:00:01Z","meta":{"card":"visa","n":3},"nothing":false,"settled":true}` {
		t.Errorf("attrs %s", a)
	}
	if a := string(recs[1].Event.Attrs); a != `{"amount":12,"booked":null,"meta":null,"nothing":false,"settled":false}` {
		t.Errorf("attrs of the second row %s", a)
	}
	if recs[0].Event.Identity == recs[1].Event.Identity {
		t.Error("two rows, one identity")
	}
	if more := poll(t, s); len(more) != 0 {
		t.Errorf("a second poll: %q", summary(more))
	}

	// Restart after the second row: the third comes again, then a new one.
	db.exec(`INSERT INTO ledger (created_at, payment_id, job_id, amount) VALUES ('2026-11-24 10:00:04Z', 'p2', 45, 3)`)
	_ = s.Shutdown(context.Background())
	again := startStream(t, ledgerConfig(url), time.Now, recs[1].Position)
	got = summary(poll(t, again))
	if len(got) != 2 || !strings.HasPrefix(got[0], "malformed src public.ledger:3:") || got[1] != "charge/p2" {
		t.Errorf("after a restart at the second row: %q", got)
	}
	if more := poll(t, again); len(more) != 0 {
		t.Errorf("then: %q", summary(more))
	}
}

// TestIntegerCursorWaitsForLateCommits: two transactions take ids 2 and
// 3; 3 commits first and is read; 2 commits later and is read then, once.
func TestIntegerCursorWaitsForLateCommits(t *testing.T) {
	db := newDB(t)
	db.exec(ledgerDDL)
	db.exec(`INSERT INTO ledger (created_at, payment_id, job_id, amount) VALUES ('2026-11-24 10:00:00Z', 'p1', 1, 1)`)
	clk := &clock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	cfg := ledgerConfig(db.reader("ledger"))
	cfg.Settle = time.Minute
	s := startStream(t, cfg, clk.now, "")
	if got := summary(poll(t, s)); !slices.Equal(got, []string{"charge/p1"}) {
		t.Fatalf("first poll %q", got)
	}
	early, late := db.tx(), db.tx()
	txExec(t, early, `INSERT INTO ledger (created_at, payment_id, job_id, amount) VALUES ('2026-11-24 10:00:02Z', 'p2', 2, 1)`)
	txExec(t, late, `INSERT INTO ledger (created_at, payment_id, job_id, amount) VALUES ('2026-11-24 10:00:03Z', 'p3', 3, 1)`)
	if err := late.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs := poll(t, s)
	if got := summary(recs); !slices.Equal(got, []string{"charge/p3"}) {
		t.Fatalf("with id 2 in flight: %q", got)
	}
	if p := string(recs[0].Position); !strings.Contains(p, `"holes":[[2,`) {
		t.Errorf("position %s does not wait for id 2", p)
	}
	if err := early.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(30 * time.Second)
	recs = poll(t, s)
	if got := summary(recs); !slices.Equal(got, []string{"charge/p2"}) {
		t.Fatalf("after id 2 committed: %q", got)
	}
	if p := string(recs[0].Position); p != `{"after":["3"]}` {
		t.Errorf("position %s, want id 3 and no hole", p)
	}
	if more := poll(t, s); len(more) != 0 {
		t.Errorf("then: %q", summary(more))
	}

	// A hole nobody fills (a rollback) is given up after settle, and a
	// restart at a position with holes queries them.
	rb := db.tx()
	txExec(t, rb, `INSERT INTO ledger (created_at, payment_id, job_id, amount) VALUES ('2026-11-24 10:00:04Z', 'p4', 4, 1)`)
	_ = rb.Rollback(context.Background())
	db.exec(`INSERT INTO ledger (created_at, payment_id, job_id, amount) VALUES ('2026-11-24 10:00:05Z', 'p5', 5, 1)`)
	recs = poll(t, s)
	if got := summary(recs); !slices.Equal(got, []string{"charge/p5"}) || !strings.Contains(string(recs[0].Position), `"holes":[[4,`) {
		t.Fatalf("after a rollback: %q at %s", got, recs[0].Position)
	}
	_ = s.Shutdown(context.Background())
	restarted := startStream(t, cfg, clk.now, recs[0].Position)
	db.exec(`INSERT INTO ledger (id, created_at, payment_id, job_id, amount) VALUES (4, '2026-11-24 10:00:04Z', 'p4', 4, 1)`)
	if got := summary(poll(t, restarted)); !slices.Equal(got, []string{"charge/p4"}) {
		t.Fatalf("a hole filled after a restart: %q", got)
	}
	// A hole older than settle is given up: a row committed that late is
	// not read (the limit the docs state).
	rb = db.tx()
	txExec(t, rb, `INSERT INTO ledger (id, created_at, payment_id, job_id, amount) VALUES (6, '2026-11-24 10:00:06Z', 'p6', 6, 1)`)
	db.exec(`INSERT INTO ledger (id, created_at, payment_id, job_id, amount) VALUES (7, '2026-11-24 10:00:07Z', 'p7', 7, 1)`)
	recs = poll(t, restarted)
	if got := summary(recs); !slices.Equal(got, []string{"charge/p7"}) || !strings.Contains(string(recs[0].Position), `"holes":[[6,`) {
		t.Fatalf("id 6 in flight: %q at %s", got, recs[0].Position)
	}
	clk.t = clk.t.Add(2 * time.Minute)
	if err := rb.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := summary(poll(t, restarted)); len(got) != 0 {
		t.Errorf("a commit later than settle: %q", got)
	}
	if p := restarted.pos.encode(); p != `{"after":["7"]}` {
		t.Errorf("position %s, want the hole given up", p)
	}
}

const ordersDDL = `CREATE TABLE orders (
	id int PRIMARY KEY,
	status text NOT NULL,
	version int NOT NULL,
	updated_at timestamptz NOT NULL
)`

func ordersConfig(url string) Config {
	return Config{
		Postgres: url,
		Query:    "SELECT id, status, version, updated_at FROM orders WHERE status <> 'draft';",
		Cursor:   []string{"updated_at", "id"},
		Settle:   5 * time.Second,
		Map: map[string]string{
			"ts":       "row.updated_at",
			"kind":     `"state"`,
			"entity":   `"order:" + string(row.id)`,
			"seq":      "row.version",
			"terminal": `row.status in ["refunded", "cancelled"]`,
		},
	}
}

// TestUpdatedAtVersions: an orders table whose rows change in place, read
// by a query on [updated_at, id]: one state event per version seen, a
// version read again is the same observation, rows are read only once
// settled, so a transaction still open with an earlier updated_at is not
// passed over.
func TestUpdatedAtVersions(t *testing.T) {
	db := newDB(t)
	db.exec(ordersDDL)
	db.exec(`INSERT INTO orders VALUES (1, 'paid', 1, '2026-11-24 10:00:00Z'), (2, 'paid', 1, '2026-11-24 10:00:00Z'), (3, 'draft', 1, '2026-11-24 10:00:00Z')`)
	clk := &clock{t: time.Date(2026, 11, 24, 10, 0, 4, 0, time.UTC)}
	cfg := ordersConfig(db.reader("orders"))
	s := startStream(t, cfg, clk.now, "")
	if got := poll(t, s); len(got) != 0 {
		t.Fatalf("rows of 4s ago with settle 5s: %q", summary(got))
	}
	clk.t = clk.t.Add(time.Second)
	recs := poll(t, s)
	if got := summary(recs); !slices.Equal(got, []string{"order:1 1", "order:2 1"}) {
		t.Fatalf("settled rows: %q", got)
	}
	first := recs[0].Event.Identity

	// An update in flight with updated_at 10:00:06 while another commits
	// at 10:00:07: nothing is read before both are settled.
	open := db.tx()
	txExec(t, open, `UPDATE orders SET status = 'shipped', version = 2, updated_at = '2026-11-24 10:00:06Z' WHERE id = 1`)
	db.exec(`UPDATE orders SET status = 'refunded', version = 2, updated_at = '2026-11-24 10:00:07Z' WHERE id = 2`)
	clk.t = time.Date(2026, 11, 24, 10, 0, 11, 0, time.UTC)
	if got := summary(poll(t, s)); len(got) != 0 {
		t.Fatalf("within settle of the open update: %q", got)
	}
	if err := open.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A late, stale write: version 1 again, after the terminal refund.
	db.exec(`UPDATE orders SET status = 'paid', version = 1, updated_at = '2026-11-24 10:00:08Z' WHERE id = 2`)
	clk.t = time.Date(2026, 11, 24, 10, 0, 13, 0, time.UTC)
	recs2 := poll(t, s)
	if got := summary(recs2); !slices.Equal(got, []string{"order:1 2", "order:2 1"}) {
		// order 2's refund at :07 was overwritten by :08 before this poll:
		// several updates between two polls collapse to the last.
		t.Fatalf("after the updates: %q", got)
	}
	if recs2[0].Event.Identity == first {
		t.Error("a new version has the identity of the old")
	}

	// Read again from the first position: the same versions, the same
	// identities.
	_ = s.Shutdown(context.Background())
	again := startStream(t, cfg, clk.now, recs[0].Position)
	re := poll(t, again)
	if got := summary(re); !slices.Equal(got, []string{"order:1 2", "order:2 1"}) {
		t.Fatalf("read again: %q", got)
	}
	if re[0].Event.Identity != recs2[0].Event.Identity || re[1].Event.Identity != recs2[1].Event.Identity {
		t.Error("a version read again has another identity")
	}
	var p position
	if err := json.Unmarshal([]byte(re[1].Position), &p); err != nil || !slices.Equal(p.After, []string{"2026-11-24 10:00:08+00", "2"}) {
		t.Errorf("position %s", re[2].Position)
	}
}

// TestStartLatest: a watch without a checkpoint and start: latest reads
// only the rows that come after it started; with a checkpoint, the
// checkpoint wins.
func TestStartLatest(t *testing.T) {
	db := newDB(t)
	db.exec(ledgerDDL)
	db.exec(`INSERT INTO ledger (created_at, payment_id, job_id, amount) VALUES ('2026-11-24 10:00:00Z', 'p1', 1, 1), ('2026-11-24 10:00:01Z', 'p2', 2, 1)`)
	cfg := ledgerConfig(db.reader("ledger"))
	cfg.Start = StartLatest
	s := startStream(t, cfg, time.Now, "")
	if got := poll(t, s); len(got) != 0 {
		t.Fatalf("start latest: %q", summary(got))
	}
	db.exec(`INSERT INTO ledger (created_at, payment_id, job_id, amount) VALUES ('2026-11-24 10:00:02Z', 'p3', 3, 1)`)
	if got := summary(poll(t, s)); !slices.Equal(got, []string{"charge/p3"}) {
		t.Fatalf("then: %q", got)
	}
	resumed := startStream(t, cfg, time.Now, `{"after":["1"]}`)
	if got := summary(poll(t, resumed)); !slices.Equal(got, []string{"charge/p2", "charge/p3"}) {
		t.Errorf("from a checkpoint: %q", got)
	}
}
