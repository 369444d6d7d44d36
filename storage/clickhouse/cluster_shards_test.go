package clickhouse_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/internal/servicetest"
	"github.com/twicehq/twice/storage/clickhouse"
	"github.com/twicehq/twice/storage/clickhouse/cluster"
)

// clusterTables are the Distributed tables of cluster/cluster.sql.
var clusterTables = clickhouse.Tables{Events: "twice_events_all", Malformed: "twice_malformed_all", Findings: "twice_findings_all"}

var replicatedRE = regexp.MustCompile(`ENGINE = Replicated(\w*)MergeTree\('[^']*', '\{replica\}'(, )?`)

// shardDDL is cluster/cluster.sql as each shard of the test cluster runs
// it: the test cluster has no Keeper, so no ON CLUSTER (each shard is sent
// every statement) and no replication (ReplicatedMergeTree becomes
// MergeTree, one replica per shard); the Distributed tables are those of
// the file, over the cluster named.
func shardDDL(clusterName string) []string {
	var out []string
	for _, s := range clickhouse.SplitStatements(cluster.DDL) {
		s = strings.Replace(s, " ON CLUSTER '{cluster}'", "", 1)
		s = replicatedRE.ReplaceAllString(s, "ENGINE = ${1}MergeTree(")
		s = strings.ReplaceAll(s, "'{cluster}'", "'"+clusterName+"'")
		out = append(out, s)
	}
	return out
}

// testCluster is the two-shard cluster of scripts/services.d/clickhouse_cluster.sh
// with cluster.sql's tables in a database of the test's own: shards[0] is
// the initiator, whose Store reads and writes the Distributed tables.
type testCluster struct {
	st     *clickhouse.Store
	shards []*clickhouse.Store
}

func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	// The test talks to each shard over HTTP: a native connection the
	// client drops (as clickhouse-go does after QueryRow) was seen to stop
	// a chDB shard (TCPHandler: "Connection reset by peer", uncaught).
	name, dsns, httpDSNs := servicetest.ClickHouseCluster(t)
	if len(dsns) < 2 {
		t.Fatalf("%d shards; the cluster test wants two or more", len(dsns))
	}
	ctx := context.Background()
	c := &testCluster{}
	for i, dsn := range httpDSNs {
		sh, err := clickhouse.Open(dsn, clickhouse.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sh.Close() })
		for _, s := range shardDDL(name) {
			if err := sh.Exec(ctx, s); err != nil {
				t.Fatalf("shard %d: %v\n%s", i+1, err, s)
			}
		}
		c.shards = append(c.shards, sh)
	}
	// distributed_foreground_insert: an INSERT into a Distributed table
	// returns once every shard has its rows, so the audit that follows
	// sees them all.
	st, err := clickhouse.Open(dsns[0], clickhouse.Options{Tables: clusterTables,
		Settings: map[string]any{"distributed_foreground_insert": 1, "use_hedged_requests": 0}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c.st = st
	return c
}

// load writes in, copies times, through the Distributed tables, and checks that every shard got
// a part of the events (the sharding key spreads them) and none was lost.
func (c *testCluster) load(t *testing.T, in *input, copies int) {
	t.Helper()
	ctx := context.Background()
	sink := c.st.Sink(clickhouse.SinkOptions{BatchSize: 50_000, StartPos: 1})
	for i := 0; i < copies; i++ {
		if err := sink.WriteMalformed(ctx, in.malformed); err != nil {
			t.Fatal(err)
		}
		if err := sink.Write(ctx, in.events); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var total uint64
	var per []uint64
	for i, sh := range c.shards {
		var n uint64
		if err := sh.QueryRow(ctx, "SELECT count() FROM twice_events_local").Scan(&n); err != nil {
			t.Fatalf("shard %d: %v", i+1, err)
		}
		per = append(per, n)
		total += n
	}
	if want := uint64(copies * len(in.events)); total != want {
		t.Fatalf("shards hold %v events, %d in all; wrote %d", per, total, want)
	}
	jobs := map[string]bool{}
	for _, ev := range in.events {
		if ev.JobID != "" {
			jobs[ev.JobID] = true
		}
	}
	if len(jobs) >= 8 {
		for i, n := range per {
			if n == 0 {
				t.Fatalf("shard %d holds no events of %d jobs (%v): the sharding key does not spread them", i+1, len(jobs), per)
			}
		}
	}
}

// TestClusterMatchesEngine runs the SQL audit over the Distributed tables
// of a real two-shard cluster (cluster/cluster.sql, events sharded by job)
// and wants the engine's report field for field, on every testdata
// scenario and a generated input with every fault, each written twice.
// The findings then go to the Distributed findings table. Each input gets
// tables of its own (emptying them with TRUNCATE between inputs was seen
// to stop the second shard with a fatal error in this chDB build).
func TestClusterMatchesEngine(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join("..", "..", "testdata", "scenarios")
	dirs, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		dir := filepath.Join(root, d.Name())
		t.Run(d.Name(), func(t *testing.T) {
			paths, _ := filepath.Glob(filepath.Join(dir, "events*.jsonl"))
			gz, _ := filepath.Glob(filepath.Join(dir, "events*.jsonl.gz"))
			paths = append(paths, gz...)
			sort.Strings(paths)
			if len(paths) == 0 {
				t.Fatal("no events*.jsonl")
			}
			cfg := loadConfig(t, dir)
			in := readInput(t, paths...)
			c := newTestCluster(t)
			c.load(t, in, 2)
			got, err := c.st.Audit(ctx, clickhouse.AuditOptions{Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			compareReports(t, engineReport(cfg, in, 2), got)
		})
	}
	t.Run("generated", func(t *testing.T) {
		events := 100_000
		if testing.Short() {
			events = 20_000
		}
		dir := t.TempDir()
		gen := exec.Command("go", "run", "./scripts/gen", "-events", fmt.Sprint(events), "-seed", "7",
			"-o", filepath.Join(dir, "events.jsonl"), "-config", filepath.Join(dir, "twice.yaml"))
		gen.Dir = filepath.Join("..", "..")
		if out, err := gen.CombinedOutput(); err != nil {
			t.Fatalf("scripts/gen: %v\n%s", err, out)
		}
		cfg := loadConfig(t, dir)
		in := readInput(t, filepath.Join(dir, "events.jsonl"))
		c := newTestCluster(t)
		c.load(t, in, 2)
		got, err := c.st.Audit(ctx, clickhouse.AuditOptions{Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		compareReports(t, engineReport(cfg, in, 2), got)
		if len(got.Findings) == 0 {
			t.Fatal("no findings: the generated input should have some of every detector")
		}
		if err := c.st.WriteFindings(ctx, got, time.Unix(1, 0), time.Time{}, time.Time{}); err != nil {
			t.Fatal(err)
		}
		var n uint64
		if err := c.st.QueryRow(ctx, "SELECT count() FROM twice_findings_all").Scan(&n); err != nil || int(n) != len(got.Findings) {
			t.Fatalf("findings stored across the shards: %d, %v; want %d", n, err, len(got.Findings))
		}
	})
}
