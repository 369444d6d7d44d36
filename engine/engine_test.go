package engine

import (
	"testing"
	"time"

	"github.com/twicehq/twice/twicetype"
)

func at(sec int64, id string) *twicetype.Event {
	return &twicetype.Event{
		ID: id, Identity: uint64(len(id))<<32 | uint64(sec)<<8 | uint64(id[len(id)-1]),
		Time: sec * int64(time.Second), Kind: twicetype.State, Entity: "order:1",
	}
}

func TestReorderBufferReleasesInTimeThenArrivalOrder(t *testing.T) {
	var b reorderBuffer
	in := []bufItem{{time: 5, seq: 1}, {time: 1, seq: 2}, {time: 5, seq: 3}, {time: 3, seq: 4}, {time: 1, seq: 5}}
	for _, it := range in {
		b.push(it)
	}
	var got [][2]int64
	for b.len() > 0 {
		it := b.pop()
		got = append(got, [2]int64{it.time, int64(it.seq)})
	}
	want := [][2]int64{{1, 2}, {1, 5}, {3, 4}, {5, 1}, {5, 3}}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order = %v, want %v", got, want)
		}
	}
}

func TestEngineCountsRepeatsAndLateEvents(t *testing.T) {
	e := New(Options{Lateness: 10 * time.Second, ReorderBuffer: 100})
	e.Add(at(100, "a"))
	e.Add(at(95, "b"))  // within lateness: reordered, not late
	e.Add(at(100, "a")) // a repeat
	e.Add(at(200, "c")) // releases a and b (watermark 190)
	e.Add(at(150, "d")) // behind the released watermark: late
	rep := e.Finish()
	s := rep.Summary
	if s.Events != 4 || s.RepeatedIDs != 1 || s.Late != 1 {
		t.Fatalf("events=%d repeated=%d late=%d, want 4 1 1", s.Events, s.RepeatedIDs, s.Late)
	}
	if s.From != 95*int64(time.Second) || s.To != 200*int64(time.Second) {
		t.Fatalf("from/to = %d/%d", s.From, s.To)
	}
}

func TestEngineBufferCapBoundsUnorderedInput(t *testing.T) {
	e := New(Options{Lateness: -1, ReorderBuffer: 2})
	for i, sec := range []int64{10, 9, 8, 7} {
		e.Add(at(sec, string(rune('a'+i))))
	}
	// Buffer of 2: 10,9,8 arrive, 8 is released once the cap is passed;
	// then 7 arrives behind the watermark (8): late.
	if got := e.Finish().Summary.Late; got != 1 {
		t.Fatalf("late = %d, want 1", got)
	}
}

func TestStrictMalformedIsAnError(t *testing.T) {
	e := New(Options{Strict: true})
	err := e.Malformed(twicetype.Malformed{Source: "x.jsonl", Line: 3, Reason: "missing field \"ts\""})
	if err == nil || err.Error() == "" {
		t.Fatal("strict Malformed returned no error")
	}
	if got := e.Finish().Summary.Malformed; got != 1 {
		t.Fatalf("malformed = %d, want 1", got)
	}
}

func TestReorderBufferMatchesSortOnMixedInput(t *testing.T) {
	var b reorderBuffer
	var want []bufItem
	r := int64(7)
	tm := int64(0)
	for seq := uint64(1); seq <= 20000; seq++ {
		r = (r*1103515245 + 12345) % 2147483648
		tm += r % 5
		it := bufItem{time: tm, seq: seq}
		if r%7 == 0 {
			it.time -= r % 50 // out of order
		}
		b.push(it)
		want = append(want, it)
		// Pop now and then, as the engine does.
		if r%3 == 0 && b.len() > 100 {
			m := minItem(want)
			if got := b.pop(); got != m {
				t.Fatalf("pop = %v, want %v", got, m)
			}
			for i, w := range want {
				if w == m {
					want = append(want[:i], want[i+1:]...)
					break
				}
			}
		}
	}
	prev := bufItem{time: -1 << 62}
	for b.len() > 0 {
		it := b.pop()
		if before(&it, &prev) {
			t.Fatalf("popped %v after %v", it, prev)
		}
		prev = it
	}
}

func minItem(xs []bufItem) bufItem {
	m := xs[0]
	for _, x := range xs[1:] {
		if before(&x, &m) {
			m = x
		}
	}
	return m
}

// TestEngineBoundsIdentities: with MaxIdentities, repeats are recognised
// among the last identities seen, and memory holds two generations.
func TestEngineBoundsIdentities(t *testing.T) {
	e := New(Options{Lateness: 0, MaxIdentities: 100})
	ev := func(i int) *twicetype.Event {
		return &twicetype.Event{Identity: uint64(i + 1), Time: int64(i), Kind: twicetype.State, Entity: "e"}
	}
	for i := 0; i < 1000; i++ {
		e.Add(ev(i))
	}
	if n := e.ids.Len() + e.idsOld.Len(); n > 200 {
		t.Fatalf("%d identities held, want at most 2×100", n)
	}
	e.Add(ev(999)) // a recent repeat: recognised
	e.Add(ev(0))   // 1000 identities ago: forgotten, counted again
	if s := e.Summary(); s.RepeatedIDs != 1 || s.Events != 1001 {
		t.Fatalf("repeated=%d events=%d, want 1 and 1001", s.RepeatedIDs, s.Events)
	}
}
