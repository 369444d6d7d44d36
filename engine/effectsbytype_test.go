package engine

import (
	"bytes"
	"maps"
	"testing"

	"github.com/twicehq/twice/twicetype"
)

func effect(sec int64, id, typ string) *twicetype.Event {
	ev := at(sec, id)
	ev.Kind, ev.Effect, ev.EffectKey = twicetype.Effect, typ, "k/"+id
	return ev
}

// A detector budget's max_ratio is judged against the effects of one
// type: they are counted once each, repeats not, and survive a snapshot.
func TestEngineCountsEffectsByType(t *testing.T) {
	e := New(Options{Lateness: -1, ReorderBuffer: 100})
	e.Add(effect(1, "a", "email.sent"))
	e.Add(effect(1, "a", "email.sent")) // the same observation again
	e.Add(effect(2, "b", "email.sent"))
	e.Add(at(3, "c")) // a state: no effect
	var snap bytes.Buffer
	if err := e.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	r, err := Restore(Options{Lateness: -1, ReorderBuffer: 100}, bytes.NewReader(snap.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	r.Add(effect(4, "d", "ledger.insert"))
	want := map[string]int64{"email.sent": 2, "ledger.insert": 1}
	if got := r.Finish().Summary.EffectsByType; !maps.Equal(got, want) {
		t.Fatalf("effects by type = %v, want %v", got, want)
	}
}
