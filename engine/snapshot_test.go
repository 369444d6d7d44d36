package engine_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"testing"

	"github.com/twicehq/twice/audit"
	"github.com/twicehq/twice/collectors/file"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/detectors"
	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/internal/codec"
	"github.com/twicehq/twice/twicetype"
)

// snapStep is one thing a collector hands the engine: an event or a
// malformed line.
type snapStep struct {
	ev  *twicetype.Event
	mal *twicetype.Malformed
}

func snapFeed(tb testing.TB, e *engine.Engine, steps []snapStep) {
	tb.Helper()
	for _, s := range steps {
		if s.mal != nil {
			_ = e.Malformed(*s.mal) // strict mode's error is not the point here
			continue
		}
		e.Add(s.ev)
	}
}

// readInputs reads files the way engine.Run does: each file in batches,
// a batch's malformed lines first, and the files merged by ts (ties to
// the file listed first).
func snapReadInputs(tb testing.TB, paths []string) []snapStep {
	tb.Helper()
	ctx := context.Background()
	per := make([][]snapStep, len(paths))
	for i, p := range paths {
		c := file.New(p, file.Options{Workers: 1})
		if err := c.Start(ctx); err != nil {
			tb.Fatal(err)
		}
		for {
			b, err := c.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				tb.Fatal(err)
			}
			for k := range b.Malformed {
				per[i] = append(per[i], snapStep{mal: &b.Malformed[k]})
			}
			for k := range b.Events {
				per[i] = append(per[i], snapStep{ev: &b.Events[k]})
			}
		}
		if err := c.Shutdown(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	var out []snapStep
	for {
		best := -1
		for i := range per {
			for len(per[i]) > 0 && per[i][0].mal != nil {
				out = append(out, per[i][0])
				per[i] = per[i][1:]
			}
			if len(per[i]) > 0 && (best < 0 || per[i][0].ev.Time < per[best][0].ev.Time) {
				best = i
			}
		}
		if best < 0 {
			return out
		}
		out = append(out, per[best][0])
		per[best] = per[best][1:]
	}
}

// loadDir loads a scenario directory: its events*.jsonl[.gz] and its
// twice.yaml (defaults without one).
func snapLoad(tb testing.TB, dir string) (engine.Options, []snapStep) {
	tb.Helper()
	cfg := config.Default()
	if _, err := os.Stat(filepath.Join(dir, "twice.yaml")); err == nil {
		if cfg, err = config.Load(filepath.Join(dir, "twice.yaml")); err != nil {
			tb.Fatal(err)
		}
	}
	opts := audit.EngineOptions(cfg)
	opts.ConfigHash = "test-config"
	inputs, _ := filepath.Glob(filepath.Join(dir, "events*.jsonl"))
	gz, _ := filepath.Glob(filepath.Join(dir, "events*.jsonl.gz"))
	inputs = append(inputs, gz...)
	sort.Strings(inputs)
	if len(inputs) == 0 {
		tb.Fatalf("%s: no events*.jsonl", dir)
	}
	return opts, snapReadInputs(tb, inputs)
}

func takeSnapshot(tb testing.TB, e *engine.Engine) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := e.Snapshot(&buf); err != nil {
		tb.Fatalf("Snapshot: %v", err)
	}
	return buf.Bytes()
}

func snapRestore(tb testing.TB, opts engine.Options, snap []byte) *engine.Engine {
	tb.Helper()
	e, err := engine.Restore(opts, bytes.NewReader(snap))
	if err != nil {
		tb.Fatalf("Restore: %v", err)
	}
	return e
}

func snapSameReport(tb testing.TB, what string, got, want *twicetype.Report) {
	tb.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	if !reflect.DeepEqual(got.Summary, want.Summary) {
		tb.Fatalf("%s: summary\n got %+v\nwant %+v", what, got.Summary, want.Summary)
	}
	if len(got.Findings) != len(want.Findings) {
		tb.Fatalf("%s: %d findings, want %d", what, len(got.Findings), len(want.Findings))
	}
	for i := range got.Findings {
		if !reflect.DeepEqual(got.Findings[i], want.Findings[i]) {
			tb.Fatalf("%s: finding %d\n got %+v\nwant %+v", what, i, got.Findings[i], want.Findings[i])
		}
	}
	tb.Fatalf("%s: reports differ", what)
}

// checkCuts audits steps without a break, then once per cut: up to the
// cut, snapshot, restore into a new engine, the rest. Every report must
// equal the uninterrupted one, the engine that was snapshotted must go
// on unchanged, and a snapshot of the restored engine must have the same
// bytes.
func snapCheckCuts(t *testing.T, opts engine.Options, steps []snapStep, every int) {
	e := engine.New(opts)
	snapFeed(t, e, steps)
	want := e.Finish()
	if len(steps) > 0 && want.Summary.Events+want.Summary.Malformed+want.Summary.RepeatedIDs == 0 {
		t.Fatal("nothing audited")
	}
	for cut := 0; cut <= len(steps); cut += every {
		orig := engine.New(opts)
		snapFeed(t, orig, steps[:cut])
		snap := takeSnapshot(t, orig)
		restored := snapRestore(t, opts, snap)
		if again := takeSnapshot(t, restored); !bytes.Equal(again, snap) {
			t.Fatalf("cut %d: the snapshot of the restored engine differs (%d vs %d bytes)", cut, len(again), len(snap))
		}
		snapFeed(t, restored, steps[cut:])
		snapSameReport(t, "restored at cut "+strconv.Itoa(cut), restored.Finish(), want)
		snapFeed(t, orig, steps[cut:])
		snapSameReport(t, "snapshotted at cut "+strconv.Itoa(cut), orig.Finish(), want)
	}
}

// TestSnapshotScenarios cuts every scenario of testdata/scenarios after
// every event.
func TestSnapshotScenarios(t *testing.T) {
	root := "../testdata/scenarios"
	dirs, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		ran++
		t.Run(d.Name(), func(t *testing.T) {
			t.Parallel()
			opts, steps := snapLoad(t, filepath.Join(root, d.Name()))
			every := 1
			if len(steps) > 200 {
				every = 13 // hundreds-of-attempts: still ~45 cuts
			}
			// As configured (the default holds every event in the reorder
			// buffer until Finish), then with each event audited as soon
			// as a later one arrives, so that the cuts fall in detector
			// state.
			snapCheckCuts(t, opts, steps, every)
			opts.Lateness = 0
			snapCheckCuts(t, opts, steps, every)
		})
	}
	if ran == 0 {
		t.Fatal("no scenarios")
	}
}

// TestSnapshotDemo cuts the 3,000 demo events (every fault of scripts/gen)
// every 97 events (293 with the default unbounded lateness, where events
// wait in the reorder buffer), and also restarts one audit at every 97th
// event in a chain.
func TestSnapshotDemo(t *testing.T) {
	opts, steps := snapLoad(t, "../testdata/demo")
	if len(steps) < 2000 {
		t.Fatalf("demo has %d steps", len(steps))
	}
	for _, lateness := range []bool{false, true} {
		opts := opts
		name := "default"
		if lateness {
			// A small buffer and lateness: events released early, late
			// events, a full heap at the cuts.
			opts.ReorderBuffer, opts.Lateness, name = 50, 2_000_000_000, "small-buffer"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			every := 97
			if !lateness {
				every = 293 // every event waits in the buffer: fewer cuts say as much
			}
			snapCheckCuts(t, opts, steps, every)

			e := engine.New(opts)
			snapFeed(t, e, steps)
			want := e.Finish()
			e = engine.New(opts)
			for i := 0; i < len(steps); i += 97 {
				snapFeed(t, e, steps[i:min(i+97, len(steps))])
				e = snapRestore(t, opts, takeSnapshot(t, e))
			}
			snapSameReport(t, "chained restarts", e.Finish(), want)
		})
	}
}

func TestRestoreRefusesAnotherConfig(t *testing.T) {
	opts, steps := snapLoad(t, "../testdata/demo")
	e := engine.New(opts)
	snapFeed(t, e, steps[:500])
	snap := takeSnapshot(t, e)

	other := opts
	other.ConfigHash = "another"
	_, err := engine.Restore(other, bytes.NewReader(snap))
	if !errors.Is(err, engine.ErrOtherConfig) {
		t.Fatalf("another ConfigHash: %v", err)
	}
	t.Log(err)
	other = opts
	other.Detectors.Rules = other.Detectors.Rules[:1]
	if _, err := engine.Restore(other, bytes.NewReader(snap)); !errors.Is(err, engine.ErrOtherConfig) {
		t.Fatalf("fewer rules: %v", err)
	}
	other = opts
	other.ReorderBuffer = 7
	if _, err := engine.Restore(other, bytes.NewReader(snap)); !errors.Is(err, engine.ErrOtherConfig) {
		t.Fatalf("another buffer: %v", err)
	}
}

func TestSnapshotAfterFinishIsAnError(t *testing.T) {
	e := engine.New(engine.Options{})
	e.Finish()
	if err := e.Snapshot(io.Discard); err == nil {
		t.Fatal("no error")
	}
}

// TestRestoreCorruptSnapshot: every truncation and a flipped bit at many
// offsets give an error, never a panic.
func TestRestoreCorruptSnapshot(t *testing.T) {
	opts, steps := snapLoad(t, "../testdata/demo")
	e := engine.New(opts)
	snapFeed(t, e, steps[:1500])
	snap := takeSnapshot(t, e)
	step := max(1, len(snap)/300)
	for n := 0; n < len(snap); n += step {
		if _, err := engine.Restore(opts, bytes.NewReader(snap[:n])); err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", n, len(snap))
		}
		bad := bytes.Clone(snap)
		bad[n] ^= 1 << (n % 8)
		if _, err := engine.Restore(opts, bytes.NewReader(bad)); err == nil {
			t.Fatalf("bit flipped at %d: no error", n)
		}
	}
	_, err := engine.Restore(opts, bytes.NewReader(snap[:len(snap)-1]))
	if !errors.Is(err, engine.ErrCorruptSnapshot) {
		t.Fatalf("truncated: %v", err)
	}
	t.Log(err)
}

// FuzzRestore: garbage, and snapshots with their checksum recomputed
// after a change, fail cleanly or restore an engine that can finish.
func FuzzRestore(f *testing.F) {
	opts, steps := snapLoad(f, "../testdata/scenarios/effect-before-failure")
	for _, cut := range []int{0, 5, 12, len(steps)} {
		e := engine.New(opts)
		snapFeed(f, e, steps[:cut])
		f.Add(takeSnapshot(f, e), false)
		f.Add(takeSnapshot(f, e), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, reseal bool) {
		if reseal && len(data) >= 8 {
			// Give the decoder the change, not just the checksum.
			w := codec.NewWriter(nil)
			w.Raw(data[:len(data)-8])
			if w.Close() == nil {
				data = bytes.Clone(w.Bytes())
			}
		}
		e, err := engine.Restore(opts, bytes.NewReader(data))
		if err != nil {
			return
		}
		_ = e.Snapshot(io.Discard)
		e.Finish()
	})
}

// BenchmarkSnapshot measures Snapshot and Restore of the state at the end
// of the demo input and, with -bench 'Snapshot/1M', of 1M events written
// by scripts/gen (generated once into a temporary directory).
func BenchmarkSnapshot(b *testing.B) {
	b.Run("demo", func(b *testing.B) {
		opts, steps := snapLoad(b, "../testdata/demo")
		benchSnapshot(b, opts, steps)
	})
	b.Run("1M", func(b *testing.B) {
		dir := b.TempDir()
		cmd := exec.Command("go", "run", "../scripts/gen", "-events", "1000000", "-seed", "1",
			"-o", filepath.Join(dir, "events.jsonl"), "-config", filepath.Join(dir, "twice.yaml"))
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			b.Fatalf("scripts/gen: %v", err)
		}
		opts, steps := snapLoad(b, dir)
		benchSnapshot(b, opts, steps)
	})
}

func benchSnapshot(b *testing.B, opts engine.Options, steps []snapStep) {
	e := engine.New(opts)
	snapFeed(b, e, steps)
	var buf bytes.Buffer
	if err := e.Snapshot(&buf); err != nil {
		b.Fatal(err)
	}
	snap := bytes.Clone(buf.Bytes())
	jobs, keys, ents := e.Open()
	b.Logf("state: %d jobs, %d effect keys, %d entities; snapshot %d bytes", jobs, keys, ents, len(snap))
	b.Run("snapshot", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			if err := e.Snapshot(&buf); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(snap)), "bytes")
	})
	b.Run("restore", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := engine.Restore(opts, bytes.NewReader(snap)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(snap)), "bytes")
	})
}

// snapLiveRun feeds steps[from:] to e and takes the live views after
// every third step (counted over all steps), so that some changes are
// still pending at a cut.
func snapLiveRun(tb testing.TB, e *engine.Engine, steps []snapStep, from int) [][]detectors.View {
	tb.Helper()
	var out [][]detectors.View
	for i := from; i < len(steps); i++ {
		snapFeed(tb, e, steps[i:i+1])
		if i%3 == 2 {
			out = append(out, e.Changes())
		}
	}
	return append(out, e.Changes())
}

// TestSnapshotLiveViews: with live views on, the changes a restored
// engine reports after the cut are the ones the uninterrupted engine
// reported, view for view, and so is the final report.
func TestSnapshotLiveViews(t *testing.T) {
	for _, dir := range []string{"../testdata/demo", "../testdata/scenarios/dead-letter",
		"../testdata/scenarios/duplicate-effect-replay", "../testdata/scenarios/out-of-order"} {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			opts, steps := snapLoad(t, dir)
			opts.Detectors.Live = true
			opts.Lateness = 0 // audit each event once a later one arrives
			every := 1
			if len(steps) > 200 {
				every = 97
			}
			e := engine.New(opts)
			want := snapLiveRun(t, e, steps, 0)
			wantRep := e.Finish()
			for cut := 0; cut <= len(steps); cut += every {
				// Changes pending at the cut are in the snapshot.
				e := engine.New(opts)
				var before [][]detectors.View
				for i := range cut {
					snapFeed(t, e, steps[i:i+1])
					if i%3 == 2 {
						before = append(before, e.Changes())
					}
				}
				snap := takeSnapshot(t, e)
				r := snapRestore(t, opts, snap)
				if again := takeSnapshot(t, r); !bytes.Equal(again, snap) {
					t.Fatalf("cut %d: the snapshot of the restored engine differs", cut)
				}
				got := append(before, snapLiveRun(t, r, steps, cut)...)
				if !reflect.DeepEqual(got, want) {
					for i := range min(len(got), len(want)) {
						if !reflect.DeepEqual(got[i], want[i]) {
							t.Fatalf("cut %d: views %d differ:\n got %+v\nwant %+v", cut, i, got[i], want[i])
						}
					}
					t.Fatalf("cut %d: %d view batches, want %d", cut, len(got), len(want))
				}
				snapSameReport(t, "live, cut "+strconv.Itoa(cut), r.Finish(), wantRep)
			}
		})
	}
}
