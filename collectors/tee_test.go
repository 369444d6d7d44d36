package collectors

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/twicehq/twice/twicetype"
)

type sliceCollector struct{ batches []*Batch }

func (s *sliceCollector) Name() string                   { return "slice" }
func (s *sliceCollector) Start(context.Context) error    { return nil }
func (s *sliceCollector) Shutdown(context.Context) error { return nil }
func (s *sliceCollector) Next(context.Context) (*Batch, error) {
	if len(s.batches) == 0 {
		return nil, io.EOF
	}
	b := s.batches[0]
	s.batches = s.batches[1:]
	return b, nil
}

func TestTeeSeesEveryBatchAndStopsOnError(t *testing.T) {
	in := &sliceCollector{batches: []*Batch{
		{Events: []twicetype.Event{{ID: "a"}}},
		{Events: []twicetype.Event{{ID: "b"}}, Malformed: []twicetype.Malformed{{Line: 2}}},
	}}
	var seen []string
	c := Tee(in, func(_ context.Context, b *Batch) error {
		for _, e := range b.Events {
			seen = append(seen, e.ID)
		}
		return nil
	})
	ctx := context.Background()
	for {
		_, err := c.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 2 || seen[0] != "a" || seen[1] != "b" {
		t.Fatalf("tee saw %v", seen)
	}
	boom := errors.New("store down")
	c = Tee(&sliceCollector{batches: []*Batch{{}}}, func(context.Context, *Batch) error { return boom })
	if _, err := c.Next(ctx); !errors.Is(err, boom) {
		t.Fatalf("error %v, want the tee's", err)
	}
}
