package engine

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/twicehq/twice/twicetype"
)

// TestSnapshotCoversEngineFields fails when the engine's state gains,
// loses or renames a field: decide how Snapshot handles it (encode it in
// engine/snapshot.go) and update the list.
func TestSnapshotCoversEngineFields(t *testing.T) {
	for typ, want := range map[reflect.Type]map[string]string{
		reflect.TypeFor[Engine](): {
			"opts": "cfg (Lateness, ReorderBuffer and ConfigHash checked)", "det": "enc (detectors.Set.Snapshot)",
			"ids": "enc", "idsOld": "enc", "sum": "enc", "buf": "enc", "arrivals": "enc", "maxTime": "enc", "watermark": "enc",
			"released": "enc", "finished": "Snapshot refuses a finished engine", "pipe": "drained, not state",
		},
		reflect.TypeFor[reorderBuffer](): {"run": "enc (run[head:])", "head": "enc (0 after restore)", "items": "enc"},
		reflect.TypeFor[bufItem]():       {"time": "enc", "seq": "enc", "ev": "enc (codec.AppendEvent)"},
		reflect.TypeFor[twicetype.Summary](): {
			"Events": "enc", "RepeatedIDs": "enc", "Malformed": "enc", "Late": "enc", "Jobs": "enc",
			"Effects": "enc", "Pending": "enc", "From": "enc", "To": "enc", "Findings": "enc",
			"MalformedLines": "enc", "Evicted": "enc", "EffectsByType": "enc",
			"Rules":    "set by Finish from the detectors (their counts are in their snapshot)",
			"Warnings": "set after Finish, by the caller",
		},
		reflect.TypeFor[twicetype.Malformed](): {"Source": "enc", "Line": "enc", "Reason": "enc"},
	} {
		got := map[string]bool{}
		for i := range typ.NumField() {
			name := typ.Field(i).Name
			got[name] = true
			if _, ok := want[name]; !ok {
				t.Errorf("%s.%s is not in the snapshot: encode it in engine/snapshot.go and list it here", typ.Name(), name)
			}
		}
		for name := range want {
			if !got[name] {
				t.Errorf("%s.%s is listed but is no field any more", typ.Name(), name)
			}
		}
	}
}

// TestSnapshotDrainsThePipeline: a snapshot taken while the detectors run
// on their own goroutine holds every event sent to them, and the pipeline
// runs on afterwards.
func TestSnapshotDrainsThePipeline(t *testing.T) {
	evs := benchEvents(20_000)
	opts := benchOptions()
	opts.Lateness = 0
	want := New(opts)
	for i := range evs {
		want.Add(&evs[i])
	}
	wantRep := want.Finish()

	e := New(opts)
	e.startPipeline()
	var snaps [][]byte
	for i := range evs {
		e.Add(&evs[i])
		if i%4999 == 0 {
			var buf bytes.Buffer
			if err := e.Snapshot(&buf); err != nil {
				t.Fatal(err)
			}
			if e.pipe == nil {
				t.Fatal("Snapshot did not start the pipeline again")
			}
			snaps = append(snaps, buf.Bytes())
		}
	}
	if got := e.Finish(); !reflect.DeepEqual(got, wantRep) {
		t.Fatalf("report after snapshots differs:\n got %+v\nwant %+v", got.Summary, wantRep.Summary)
	}
	for k, snap := range snaps {
		r, err := Restore(opts, bytes.NewReader(snap))
		if err != nil {
			t.Fatal(err)
		}
		r.startPipeline()
		for i := k*4999 + 1; i < len(evs); i++ {
			r.Add(&evs[i])
		}
		if got := r.Finish(); !reflect.DeepEqual(got, wantRep) {
			t.Fatalf("restored from snapshot %d: report differs:\n got %+v\nwant %+v", k, got.Summary, wantRep.Summary)
		}
	}
}
