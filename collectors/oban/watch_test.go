package oban

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twicehq/twice/collectors/pgjobs/pgjobstest"
	"github.com/twicehq/twice/internal/watchtest"
)

// A mix of faults driven through Oban's transitions while twice watch
// reads oban_jobs and the ledger (as the role of the docs' GRANTs); the
// watch is SIGKILLed once and jobs run and end while it is down. It must
// end with exactly the faults.
func TestWatchFaultMix(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "twice.yaml")
	yaml := fmt.Sprintf(`sources:
  - {name: jobs, type: oban, postgres: %[1]q, key: args.payment_id, poll_interval: 100ms}
  - name: ledger
    type: postgres
    postgres: %[1]q
    table: public.ledger
    cursor: id
    poll_interval: 100ms
    settle: 0s
    map:
      id: '"ledger:" + string(row.id)'
      ts: row.created_at
      kind: '"effect"'
      effect: row.effect
      effect_key: row.effect_key
      job_id: string(row.job_id)
      attempt: row.attempt
expect:
  - {job_type: MyApp.Receipt, effect: receipt.sent, effect_key: "receipt/{{key}}", within: 3s}
  - {job_type: MyApp.Charge, effect: charge.created, effect_key: "charge/{{key}}", within: 3s}
detectors:
  lost-job: {lost_after: 4s}
engine: {lateness: 2s}
watch:
  state_dir: %[2]q
  listen: 127.0.0.1:0
  checkpoint_interval: 100ms
  idle_timeout: 1s
`, e.reader, filepath.Join(dir, "state"))
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := watchtest.Build(t)
	logPath := filepath.Join(dir, "watch.log")
	w := watchtest.Start(t, bin, cfg, logPath, 2)
	w.WaitFor(t, "ready", w.Ready)

	// The crash window: the charge is written, then the attempt raises.
	crash := e.insert("MyApp.Charge", "payments", `{"payment_id": "pay-crash"}`, 3)
	e.fetch(crash)
	e.effect("charge.created", "charge/pay-crash", crash)
	e.fail(crash, "** (DBConnection.ConnectionError) closed")
	e.stage()
	e.fetch(crash)
	e.effect("charge.created", "charge/pay-crash", crash)
	e.complete(crash)
	dupA := e.insert("MyApp.Receipt", "mailers", `{"payment_id": "p-dup"}`, 3)
	e.fetch(dupA)
	e.effect("receipt.sent", "receipt/p-dup", dupA)
	e.complete(dupA)
	w.WaitFor(t, "some events audited", func() bool { return w.Metrics()["twice_events_total"] >= 8 })
	w.Kill()

	// While twice is down.
	dupB := e.insert("MyApp.Receipt", "mailers", `{"payment_id": "p-dup"}`, 3)
	e.fetch(dupB)
	e.effect("receipt.sent", "receipt/p-dup", dupB)
	e.complete(dupB)
	missing := e.insert("MyApp.Receipt", "mailers", `{"payment_id": "p-missing"}`, 3)
	e.fetch(missing)
	e.complete(missing)
	dead := e.insert("MyApp.Sync", "inventory", `{"sku": 1}`, 2)
	e.fetch(dead)
	e.fail(dead, "unavailable")
	e.stage()
	e.fetch(dead)
	e.discard(dead, "unavailable")
	stuck := e.insert("MyApp.Export", "exports", `{}`, 3)
	e.fetch(stuck)
	w = watchtest.Start(t, bin, cfg, logPath, 2)

	pgjobstest.WaitFor(t, "lost_after and the lateness past the stuck job's start", 30*time.Second, func() (bool, error) {
		var past bool
		err := e.pool.QueryRow(context.Background(), "SELECT timezone('UTC', now()) > attempted_at + interval '7 seconds' FROM oban_jobs WHERE id = $1", stuck).Scan(&past)
		return past, err
	})
	last := e.insert("MyApp.Receipt", "mailers", `{"payment_id": "p-last"}`, 3)
	e.fetch(last)
	e.effect("receipt.sent", "receipt/p-last", last)
	e.complete(last)

	expected := []string{
		"dead-letter inventory",
		"duplicate-effect charge/pay-crash",
		"duplicate-effect receipt/p-dup",
		fmt.Sprintf("effect-before-failure %d", crash),
		fmt.Sprintf("lost-job %d", stuck),
		fmt.Sprintf("missing-effect %d", missing),
	}
	slices.Sort(expected)
	var page watchtest.Page
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last findings of the watch: %q\nsummary %+v", page.Keys(nil), page.Summary)
		}
	})
	w.WaitFor(t, "exactly the faults", func() bool {
		page = w.Findings()
		return slices.Equal(pgjobstest.Pairs(page.Findings), expected)
	})
	if page.Summary.Malformed != 0 || len(page.Summary.Warnings) != 0 {
		t.Errorf("watch summary %+v: want no malformed events and no warning", page.Summary)
	}
	w.Stop(t)
}
