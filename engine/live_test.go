package engine_test

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/twicehq/twice/audit"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/internal/eventstest"
	"github.com/twicehq/twice/twicetype"
)

// scenarioInput returns a scenario's events and engine options.
func scenarioInput(tb testing.TB, dir string) ([]twicetype.Event, engine.Options) {
	tb.Helper()
	cfg := config.Default()
	if _, err := os.Stat(filepath.Join(dir, "twice.yaml")); err == nil {
		c, err := config.Load(filepath.Join(dir, "twice.yaml"))
		if err != nil {
			tb.Fatal(err)
		}
		cfg = c
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "events*.jsonl*"))
	sort.Strings(paths)
	return eventstest.Events(tb, paths...), audit.EngineOptions(cfg)
}

// TestLiveViewsEndEqualToTheAudit feeds every scenario and the demo to an
// engine with live views, taking the changes every few events, and
// requires the last view of each finding, once the input is finished, to
// be the audit's finding field for field, and no other finding to stand.
func TestLiveViewsEndEqualToTheAudit(t *testing.T) {
	dirs, _ := filepath.Glob("../testdata/scenarios/*")
	dirs = append(dirs, "../testdata/demo")
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			events, opts := scenarioInput(t, dir)
			want := engine.New(opts)
			for i := range events {
				want.Add(&events[i])
			}
			wantRep := want.Finish()

			for _, every := range []int{1, 7} {
				live := opts
				live.Detectors.Live = true
				e := engine.New(live)
				views := map[string]*twicetype.Finding{}
				take := func() {
					for _, v := range e.Changes() {
						views[v.Fingerprint] = v.Finding
					}
				}
				for i := range events {
					e.Add(&events[i])
					if i%every == 0 {
						take()
					}
				}
				rep := e.Finish()
				take()
				if !reflect.DeepEqual(rep.Findings, wantRep.Findings) {
					t.Fatalf("every %d: live engine's report differs from the audit's", every)
				}
				var got []twicetype.Finding
				for _, f := range views {
					if f != nil {
						got = append(got, *f)
					}
				}
				if len(got) != len(wantRep.Findings) {
					t.Fatalf("every %d: %d findings stand, audit has %d", every, len(got), len(wantRep.Findings))
				}
				for _, w := range wantRep.Findings {
					g := views[w.Fingerprint]
					if g == nil {
						t.Fatalf("every %d: no view of %s %s", every, w.Detector, w.Subject)
					}
					if !reflect.DeepEqual(*g, w) {
						t.Fatalf("every %d: view of %s %s\n got %+v\nwant %+v", every, w.Detector, w.Subject, *g, w)
					}
				}
			}
		})
	}
}
