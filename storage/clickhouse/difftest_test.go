package clickhouse_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/audit"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/internal/eventstest"
	"github.com/twicehq/twice/internal/servicetest"
	"github.com/twicehq/twice/reports"
	"github.com/twicehq/twice/storage/clickhouse"
	"github.com/twicehq/twice/twicetype"
)

// longHorizon is the engine horizon of the differential tests: SQL sees the
// whole range at once, the engine only what its horizon keeps.
const longHorizon = 100 * 365 * 24 * time.Hour

// input is what a set of files delivers, in the order the engine takes
// it: events merged by ts across files (ties to the file named first),
// malformed lines in the order their batches were read.
type input struct {
	events    []twicetype.Event
	malformed []twicetype.Malformed
}

func readInput(tb testing.TB, paths ...string) *input {
	tb.Helper()
	per := make([][]twicetype.Event, len(paths))
	in := &input{}
	for i, p := range paths {
		evs, mal := eventstest.File(tb, p)
		per[i] = evs
		in.malformed = append(in.malformed, mal...)
	}
	// engine.Run's merge: the earliest head wins, ties to the first file.
	idx := make([]int, len(paths))
	for {
		best := -1
		for i := range per {
			if idx[i] < len(per[i]) && (best < 0 || per[i][idx[i]].Time < per[best][idx[best]].Time) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		in.events = append(in.events, per[best][idx[best]])
		idx[best]++
	}
	return in
}

// engineReport audits in with the in-process engine, sorted exactly and
// with a horizon longer than the input, copies times over.
func engineReport(cfg *config.Config, in *input, copies int) *twicetype.Report {
	opts := audit.EngineOptions(cfg)
	opts.Lateness = -1
	opts.ReorderBuffer = copies*len(in.events) + 1
	opts.Detectors.Horizon = longHorizon
	e := engine.New(opts)
	for c := 0; c < copies; c++ {
		for _, m := range in.malformed {
			_ = e.Malformed(m)
		}
		for i := range in.events {
			ev := in.events[i]
			e.Add(&ev)
		}
	}
	return e.Finish()
}

func clickhouseReport(tb testing.TB, dsn string, cfg *config.Config, in *input, copies int) *twicetype.Report {
	tb.Helper()
	ctx := context.Background()
	st, err := clickhouse.Open(servicetest.ClickHouseDatabase(tb, dsn), clickhouse.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	sink := st.Sink(clickhouse.SinkOptions{BatchSize: 50_000, StartPos: 1})
	for c := 0; c < copies; c++ {
		if err := sink.WriteMalformed(ctx, in.malformed); err != nil {
			tb.Fatal(err)
		}
		if err := sink.Write(ctx, in.events); err != nil {
			tb.Fatal(err)
		}
	}
	if err := sink.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
	rep, err := st.Audit(ctx, clickhouse.AuditOptions{Config: cfg})
	if err != nil {
		tb.Fatal(err)
	}
	return rep
}

func jsonReport(tb testing.TB, r *twicetype.Report) string {
	tb.Helper()
	rp, err := reports.New("json", reports.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	var b bytes.Buffer
	if err := rp.Write(&b, r); err != nil {
		tb.Fatal(err)
	}
	return b.String()
}

func compareReports(tb testing.TB, want, got *twicetype.Report) {
	tb.Helper()
	// Summary.Rules is not in the JSON report: compare it on its own.
	if !reflect.DeepEqual(want.Summary.Rules, got.Summary.Rules) {
		tb.Fatalf("rule coverage: engine %+v, clickhouse %+v", want.Summary.Rules, got.Summary.Rules)
	}
	w, g := jsonReport(tb, want), jsonReport(tb, got)
	if w == g {
		return
	}
	if dir := os.Getenv("TWICE_DIFF_DUMP"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "engine.json"), []byte(w), 0o644)
		_ = os.WriteFile(filepath.Join(dir, "clickhouse.json"), []byte(g), 0o644)
	}
	wl, gl := strings.Split(w, "\n"), strings.Split(g, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var a, b string
		if i < len(wl) {
			a = wl[i]
		}
		if i < len(gl) {
			b = gl[i]
		}
		if a != b {
			tb.Fatalf("ClickHouse audit differs from the engine at line %d:\nengine:     %.2000s\nclickhouse: %.2000s", i+1, a, b)
		}
	}
}

func loadConfig(tb testing.TB, dir string) *config.Config {
	tb.Helper()
	p := filepath.Join(dir, "twice.yaml")
	if _, err := os.Stat(p); err != nil {
		return config.Default()
	}
	cfg, err := config.Load(p)
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

var protocols = []string{"native", "http"}

// TestScenariosMatchEngine audits every testdata scenario in ClickHouse and
// with the engine, over both protocols, and wants the same report, field
// for field. Scenarios run without --strict (the SQL audit has no strict
// mode: malformed lines are counted, as the engine counts them).
func TestScenariosMatchEngine(t *testing.T) {
	root := filepath.Join("..", "..", "testdata", "scenarios")
	dirs, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, proto := range protocols {
		t.Run(proto, func(t *testing.T) {
			dsn := servicetest.ClickHouseDSN(t, proto)
			n := 0
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
					for copies := 1; copies <= 2; copies++ {
						compareReports(t, engineReport(cfg, in, copies), clickhouseReport(t, dsn, cfg, in, copies))
					}
				})
				n++
			}
			if n == 0 {
				t.Fatal("no scenarios")
			}
		})
	}
}

// TestGeneratedMatchesEngine audits a generated input with every fault
// (repeated ids, reordering, malformed lines), written to ClickHouse twice,
// against the engine over the same input delivered twice.
func TestGeneratedMatchesEngine(t *testing.T) {
	events := 200_000
	if testing.Short() {
		events = 20_000
	}
	dir := t.TempDir()
	gen := exec.Command("go", "run", "./scripts/gen", "-events", itoa(events), "-seed", "7",
		"-o", filepath.Join(dir, "events.jsonl"), "-config", filepath.Join(dir, "twice.yaml"))
	gen.Dir = filepath.Join("..", "..")
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("scripts/gen: %v\n%s", err, out)
	}
	cfg := loadConfig(t, dir)
	in := readInput(t, filepath.Join(dir, "events.jsonl"))
	want := engineReport(cfg, in, 2)
	// The comparison covers the scorecard only if there is one, with
	// every verdict: make sure the input gives one.
	verdicts := map[string]bool{}
	for _, h := range want.Scorecard {
		for _, c := range h.Conditions {
			verdicts[c.Verdict] = true
		}
	}
	if len(verdicts) != 3 {
		t.Fatalf("the generated input gives the verdicts %v, want all three to compare", verdicts)
	}
	for _, proto := range protocols {
		t.Run(proto, func(t *testing.T) {
			got := clickhouseReport(t, servicetest.ClickHouseDSN(t, proto), cfg, in, 2)
			compareReports(t, want, got)
			if got.Summary.RepeatedIDs < int64(len(in.events)) {
				t.Fatalf("repeated_ids %d after writing %d events twice", got.Summary.RepeatedIDs, len(in.events))
			}
		})
	}
}

func itoa(n int) string {
	return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(n))
}

func fmtInt(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return string(b[i:])
}
