package clickhouse_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/internal/servicetest"
	"github.com/twicehq/twice/storage/clickhouse"
	"github.com/twicehq/twice/storage/clickhouse/cluster"
)

var (
	createRE      = regexp.MustCompile(`(?s)^CREATE TABLE IF NOT EXISTS (\w+) ON CLUSTER '\{cluster\}'`)
	distributedRE = regexp.MustCompile(`(?s)ENGINE = Distributed\('\{cluster\}', currentDatabase\(\), (\w+),\s*(.+)\)$`)
	columnRE      = regexp.MustCompile(`(?m)^\s+(\w+)\s+(?:UInt|Int|DateTime|Enum|String|LowCardinality|Nullable|Map|Array|Bool)`)
)

// TestClusterDDL parses cluster/cluster.sql: every table is created on the
// cluster, each Distributed table fronts a replicated local table of the
// file with a sharding key, events are sharded by job, and the local
// tables have the columns of the single-server schema.
func TestClusterDDL(t *testing.T) {
	stmts := clickhouse.SplitStatements(cluster.DDL)
	if len(stmts) != 6 {
		t.Fatalf("%d statements, want 6 (3 local + 3 distributed)", len(stmts))
	}
	local := map[string]string{}
	dist := map[string][2]string{}
	for _, s := range stmts {
		m := createRE.FindStringSubmatch(s)
		if m == nil {
			t.Fatalf("not CREATE TABLE IF NOT EXISTS ... ON CLUSTER: %.80s", s)
		}
		name := m[1]
		if d := distributedRE.FindStringSubmatch(s); d != nil {
			if !strings.Contains(s, " AS "+d[1]+"\n") {
				t.Errorf("%s: should take its columns AS %s", name, d[1])
			}
			dist[name] = [2]string{d[1], d[2]}
			continue
		}
		if !strings.Contains(s, "ENGINE = Replicated") {
			t.Errorf("%s: local table is not replicated", name)
		}
		local[name] = s
	}
	for name, d := range dist {
		if _, ok := local[d[0]]; !ok {
			t.Errorf("%s: Distributed over %s, which the file does not create", name, d[0])
		}
		if strings.TrimSpace(d[1]) == "" {
			t.Errorf("%s: no sharding key", name)
		}
	}
	ev, ok := dist["twice_events_all"]
	if !ok || ev[0] != "twice_events_local" {
		t.Fatalf("twice_events_all must be Distributed over twice_events_local, got %v", ev)
	}
	if !strings.Contains(ev[1], "cityHash64(coalesce(nullIf(job_id, ''), nullIf(entity, ''), effect_key))") {
		t.Errorf("events must be sharded by job: %s", ev[1])
	}
	ms, err := clickhouse.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	single := map[string]string{}
	for _, m := range ms {
		for _, s := range m.Statements {
			if m := regexp.MustCompile(`CREATE TABLE IF NOT EXISTS (\w+)`).FindStringSubmatch(s); m != nil {
				single[m[1]] = s
			}
		}
	}
	for _, base := range []string{"twice_events", "twice_malformed", "twice_findings"} {
		got, want := columns(local[base+"_local"]), columns(single[base])
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s_local columns %v, want those of %s: %v", base, got, base, want)
		}
	}
}

func columns(stmt string) []string {
	var out []string
	for _, m := range columnRE.FindAllStringSubmatch(stmt, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestAuditOverOtherTables creates the cluster's local tables on one
// server (MergeTree for ReplicatedMergeTree, no ON CLUSTER) and audits
// them through Options.Tables: the audit SQL takes table names as
// parameters, which is how it runs over the Distributed tables.
func TestAuditOverOtherTables(t *testing.T) {
	dsn := servicetest.ClickHouseDatabase(t, servicetest.ClickHouseDSN(t, "native"))
	ctx := context.Background()
	tables := clickhouse.Tables{Events: "twice_events_local", Malformed: "twice_malformed_local", Findings: "twice_findings_local"}
	st, err := clickhouse.Open(dsn, clickhouse.Options{Tables: tables})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	repl := regexp.MustCompile(`ENGINE = Replicated(\w*)MergeTree\('[^']*', '\{replica\}'(, )?`)
	for _, s := range clickhouse.SplitStatements(cluster.DDL) {
		if strings.Contains(s, "Distributed(") {
			continue
		}
		s = strings.Replace(s, " ON CLUSTER '{cluster}'", "", 1)
		s = repl.ReplaceAllString(s, "ENGINE = ${1}MergeTree(")
		if err := st.Exec(ctx, s); err != nil {
			t.Fatalf("%v\n%s", err, s)
		}
	}
	in := readInput(t, "../../testdata/scenarios/receipt-crash-retry/events.jsonl")
	cfg := loadConfig(t, "../../testdata/scenarios/receipt-crash-retry")
	sink := st.Sink(clickhouse.SinkOptions{StartPos: 1})
	if err := sink.Write(ctx, in.events); err != nil {
		t.Fatal(err)
	}
	if err := sink.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := st.Audit(ctx, clickhouse.AuditOptions{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	compareReports(t, engineReport(cfg, in, 1), got)
	if err := st.WriteFindings(ctx, got, time.Unix(1, 0), time.Time{}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	var n uint64
	if err := st.QueryRow(ctx, "SELECT count() FROM twice_findings_local").Scan(&n); err != nil || int(n) != len(got.Findings) {
		t.Fatalf("findings stored: %d, %v; want %d", n, err, len(got.Findings))
	}
}
