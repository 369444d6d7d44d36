package kafkasink

import (
	"context"
	"fmt"
	"testing"

	"github.com/twicehq/twice/internal/servicetest"
	"github.com/twicehq/twice/sidecar"
)

func revs(from, to uint64) []sidecar.Revision {
	var out []sidecar.Revision
	for seq := from; seq <= to; seq++ {
		fp := fmt.Sprintf("fp-%d", seq%7)
		out = append(out, sidecar.Revision{Seq: seq, Fingerprint: fp,
			Line: fmt.Appendf(nil, `{"seq":%d,"revision":1,"status":"firing","fingerprint":%q}`, seq, fp)})
	}
	return out
}

// TestSinkReadsBackWhatItPublished: after a crash between publishing and
// recording it, a new sink finds the revisions already in the topic, in
// every partition, and only those after the recorded seq.
func TestSinkReadsBackWhatItPublished(t *testing.T) {
	brokers := servicetest.KafkaBrokers(t)
	topic := servicetest.KafkaTopic(t, brokers, 3)
	ctx := context.Background()

	s := New(brokers, topic)
	held, err := s.Start(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 0 {
		t.Fatalf("empty topic holds %v", held)
	}
	if err := s.Publish(ctx, revs(1, 50)); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}

	for _, tc := range []struct {
		after uint64
		want  int
	}{{0, 50}, {20, 30}, {49, 1}, {50, 0}} {
		s2 := New(brokers, topic)
		held, err := s2.Start(ctx, tc.after)
		if err != nil {
			t.Fatal(err)
		}
		if len(held) != tc.want {
			t.Errorf("after %d: holds %d revisions, want %d", tc.after, len(held), tc.want)
		}
		for seq := tc.after + 1; seq <= 50; seq++ {
			if !held[seq] {
				t.Errorf("after %d: seq %d not found", tc.after, seq)
			}
		}
		s2.Shutdown(ctx)
	}
}
