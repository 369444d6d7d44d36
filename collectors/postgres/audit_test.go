package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twicehq/twice/internal/watchtest"
)

func TestMain(m *testing.M) { os.Exit(watchtest.Main(m)) }

// auditConfig is a twice.yaml of a ledger (effects, with the order each
// is about) and an outbox of order state changes, read by role url.
const auditConfig = `sources:
  - name: ledger
    type: postgres
    postgres: %[1]s
    table: ledger
    cursor: id
    map:
      ts: row.created_at
      kind: '"effect"'
      effect: '"ledger.insert"'
      effect_key: '"charge/" + row.payment_id'
      entity: '"order:" + string(row.order_id)'
      job_id: string(row.job_id)
  - name: outbox
    type: postgres
    postgres: %[1]s
    query: SELECT id, created_at, payload FROM outbox WHERE topic = 'order'
    cursor: id
    map:
      id: '"outbox-" + string(row.id)'
      ts: row.created_at
      kind: '"state"'
      entity: '"order:" + string(row.payload.order)'
      seq: row.payload.version
      terminal: row.payload.status == "refunded"
`

type auditReport struct {
	Summary struct {
		Events    int `json:"events"`
		Malformed int `json:"malformed"`
	} `json:"summary"`
	Findings []struct {
		Detector string         `json:"detector"`
		Subject  string         `json:"subject"`
		Cause    string         `json:"cause"`
		Details  map[string]any `json:"details"`
	} `json:"findings"`
}

// TestAuditThroughTheCLI: twice audit reads both tables of a twice.yaml
// and reports exactly their findings: the charge booked twice, the order
// whose state went back, the charge after the refund; and the malformed
// row with its source, table and cursor.
func TestAuditThroughTheCLI(t *testing.T) {
	db := newDB(t)
	db.exec(`CREATE TABLE ledger (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, payment_id text, order_id int NOT NULL, job_id bigint)`)
	db.exec(`CREATE TABLE outbox (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, topic text NOT NULL, payload jsonb NOT NULL)`)
	db.exec(`INSERT INTO ledger (created_at, payment_id, order_id, job_id) VALUES
		('2026-11-24 10:00:01Z', 'p1', 1, 101),
		('2026-11-24 10:00:31Z', 'p1', 1, 101),
		('2026-11-24 10:00:40Z', 'p2', 2, 102),
		('2026-11-24 10:00:41Z', NULL, 2, 102),
		('2026-11-24 10:02:00Z', 'p3', 3, 103)`)
	db.exec(`INSERT INTO outbox (created_at, topic, payload) VALUES
		('2026-11-24 10:00:00Z', 'order', '{"order": 2, "version": 1, "status": "paid"}'),
		('2026-11-24 10:00:50Z', 'order', '{"order": 2, "version": 3, "status": "shipped"}'),
		('2026-11-24 10:00:55Z', 'order', '{"order": 2, "version": 2, "status": "packed"}'),
		('2026-11-24 10:01:00Z', 'email', '{"order": 3}'),
		('2026-11-24 10:01:30Z', 'order', '{"order": 3, "version": 1, "status": "refunded"}')`)
	url := db.reader("ledger", "outbox")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "twice.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(auditConfig, url)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(watchtest.Build(t), "audit", "--config", cfg, "--format", "json")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("twice audit: %v, want exit 1 (findings)\n%s", err, stderr.String())
	}
	var rep auditReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var got []string
	for _, f := range rep.Findings {
		got = append(got, f.Detector+" "+f.Subject+" "+f.Cause)
	}
	slices.Sort(got)
	want := []string{
		"duplicate-effect charge/p1 redelivery",
		"effect-after-terminal charge/p3 ",
		"out-of-order order:2 ",
	}
	if !slices.Equal(got, want) {
		t.Errorf("findings:\n%q\nwant\n%q\n%s", got, want, out)
	}
	if rep.Summary.Events != 8 || rep.Summary.Malformed != 1 {
		t.Errorf("summary: %d events, %d malformed; want 8 and 1", rep.Summary.Events, rep.Summary.Malformed)
	}
	if !strings.Contains(string(out), `row id=4: missing field \"effect_key\"`) {
		t.Errorf("the malformed row is not named by its cursor:\n%s", out)
	}
}
