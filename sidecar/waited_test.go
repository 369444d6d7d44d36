package sidecar

import (
	"context"
	"testing"
	"time"
)

// waitedStream is a memStream whose clients wait for their records to be
// committed, as a pushed source's do (sources.Waited).
type waitedStream struct{ *memStream }

func (s waitedStream) Pending() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for l, recs := range s.lanes {
		n += int64(len(recs)) - s.committed[l]
	}
	return n
}

// TestWaitingClientsCheckpointAtFlush: with a checkpoint interval of an
// hour, records of a stream with waiting clients are still committed at
// the next flush, not an hour later.
func TestWaitingClientsCheckpointAtFlush(t *testing.T) {
	evs, opts := demoInput(t)
	s := waitedStream{newMemStream("push", "push")}
	o := watchOptions(t.TempDir(), opts, s)
	o.CheckpointInterval = time.Hour
	o.SnapshotInterval = time.Hour
	w := New(o)
	ctx := context.Background()
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown(ctx)
	committed := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			s.mu.Lock()
			c := s.committed["push"]
			s.mu.Unlock()
			if c >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("committed %d of %d records in 30s with an hour's checkpoint interval", c, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// The first record may ride on the watch's first checkpoint; the
	// next ones can only be committed by checkpoints the waiting
	// clients ask for.
	s.write("push", evs[0])
	committed(1)
	s.write("push", evs[1:3]...)
	committed(3)
	s.write("push", evs[3])
	committed(4)
}
