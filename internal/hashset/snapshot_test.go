package hashset

import (
	"bytes"
	"testing"

	"github.com/twicehq/twice/internal/codec"
)

func TestSnapshotRestoresTheSameLayout(t *testing.T) {
	for _, n := range []uint64{0, 1, 700, 10000} {
		var s Set
		for i := range n {
			s.Add(i*0x9e3779b97f4a7c15 + i)
		}
		w := codec.NewWriter(nil)
		s.Snapshot(w)
		var got Set
		r := codec.NewReader("snapshot", w.Bytes())
		got.Restore(r)
		if err := r.End(); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if got.Len() != s.Len() || len(got.slots) != len(s.slots) {
			t.Fatalf("n=%d: len %d/%d slots %d/%d", n, got.Len(), s.Len(), len(got.slots), len(s.slots))
		}
		w2 := codec.NewWriter(nil)
		got.Snapshot(w2)
		if !bytes.Equal(w.Bytes(), w2.Bytes()) {
			t.Fatalf("n=%d: second snapshot differs", n)
		}
		for i := range n {
			if got.Add(i*0x9e3779b97f4a7c15 + i) {
				t.Fatalf("n=%d: hash %d lost", n, i)
			}
		}
		// Truncations fail cleanly.
		for cut := 0; cut < len(w.Bytes()); cut += 1 + len(w.Bytes())/50 {
			var x Set
			r := codec.NewReader("snapshot", w.Bytes()[:cut])
			x.Restore(r)
			if r.End() == nil {
				t.Fatalf("n=%d cut=%d: no error", n, cut)
			}
		}
	}
}
