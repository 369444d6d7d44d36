package postgres

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/twicehq/twice/internal/watchtest"
)

const watchConfig = `sources:
  - name: ledger
    type: postgres
    postgres: %[1]s
    table: ledger
    cursor: id
    poll_interval: 100ms
    map:
      ts: row.created_at
      kind: '"effect"'
      effect: '"ledger.insert"'
      effect_key: '"charge/" + row.payment_id'
      entity: '"order:" + string(row.order_id)'
      job_id: string(row.job_id)
  - name: orders
    type: postgres
    postgres: %[1]s
    table: orders
    cursor: [updated_at, id]
    poll_interval: 100ms
    settle: 200ms
    map:
      ts: row.updated_at
      kind: '"state"'
      entity: '"order:" + string(row.id)'
      seq: row.version
      terminal: row.status == "refunded"
watch:
  state_dir: %[2]s
  listen: 127.0.0.1:0
  checkpoint_interval: 100ms
  idle_timeout: 300ms
`

// TestWatchThroughTheCLI: twice watch follows a ledger and an orders
// table updated in place, finds the duplicate charge and the charge after
// the refund, is SIGKILLed after a checkpoint, and after a restart finds
// the stale update made while it was down, without reading a row twice.
func TestWatchThroughTheCLI(t *testing.T) {
	db := newDB(t)
	db.exec(`CREATE TABLE ledger (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT clock_timestamp(), payment_id text, order_id int NOT NULL, job_id bigint)`)
	db.exec(`CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, version int NOT NULL, updated_at timestamptz NOT NULL DEFAULT clock_timestamp())`)
	db.exec(`INSERT INTO ledger (payment_id, order_id, job_id) VALUES ('p1', 2, 101)`)
	db.exec(`INSERT INTO orders (id, status, version) VALUES (1, 'paid', 1)`)
	url := db.reader("ledger", "orders")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "twice.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(watchConfig, url, filepath.Join(dir, "state"))), 0o644); err != nil {
		t.Fatal(err)
	}
	bin, logPath := watchtest.Build(t), filepath.Join(dir, "watch.log")
	w := watchtest.Start(t, bin, cfg, logPath, 2)
	events := func(p *watchtest.Proc, n int64) {
		t.Helper()
		p.WaitFor(t, fmt.Sprintf("%d events", n), func() bool { return p.Findings().Summary.Events >= n })
	}
	events(w, 2)
	db.exec(`UPDATE orders SET status = 'refunded', version = 2, updated_at = clock_timestamp() WHERE id = 1`)
	events(w, 3)
	db.exec(`INSERT INTO ledger (payment_id, order_id, job_id) VALUES ('p1', 2, 101), ('p9', 1, 109)`)
	events(w, 5)
	want := []string{
		"duplicate-effect charge/p1 cause=redelivery jobs=101",
		"effect-after-terminal charge/p9 cause= jobs=109",
	}
	var last []string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last findings: %q", last)
		}
	})
	w.WaitFor(t, "the duplicate charge and the charge after the refund", func() bool {
		last = w.Findings().Keys(nil)
		return slices.Equal(last, want)
	})
	// A checkpoint that covers the five events, then a crash.
	c0 := w.Metrics()["twice_checkpoints_total"]
	w.WaitFor(t, "two more checkpoints", func() bool { return w.Metrics()["twice_checkpoints_total"] >= c0+2 })
	w.Kill()

	// While twice is down: a stale worker writes version 1 back.
	db.exec(`UPDATE orders SET status = 'paid', version = 1, updated_at = clock_timestamp() WHERE id = 1`)
	db.exec(`INSERT INTO ledger (payment_id, order_id, job_id) VALUES ('p3', 3, 103)`)
	w = watchtest.Start(t, bin, cfg, logPath, 2)
	events(w, 7)
	want = append(want, "out-of-order order:1 cause= jobs=")
	slices.Sort(want)
	w.WaitFor(t, "the stale update", func() bool {
		last = w.Findings().Keys(nil)
		return slices.Equal(last, want)
	})
	page := w.Findings()
	if page.Summary.Events != 7 || page.Summary.RepeatedIDs != 0 || page.Summary.Malformed != 0 {
		t.Errorf("after the restart: %d events, %d repeated, %d malformed; want 7, 0, 0",
			page.Summary.Events, page.Summary.RepeatedIDs, page.Summary.Malformed)
	}
	w.Stop(t)
}
