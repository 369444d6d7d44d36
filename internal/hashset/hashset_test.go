package hashset

import "testing"

func TestSetCountsEachHashOnce(t *testing.T) {
	var s Set
	for i := uint64(0); i < 10000; i++ {
		if !s.Add(i * 7919) {
			t.Fatalf("add(%d) = false on first add", i*7919)
		}
	}
	for i := uint64(0); i < 10000; i++ {
		if s.Add(i * 7919) {
			t.Fatalf("add(%d) = true on second add", i*7919)
		}
	}
	if s.Len() != 10000 {
		t.Fatalf("len = %d, want 10000", s.Len())
	}
}
