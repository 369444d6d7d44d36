package sidecar

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twicehq/twice/sources"
	"github.com/twicehq/twice/twicetype"
)

// memStream is a Stream over records held in memory, for tests of the
// watch loop: lanes are slices that tests append to while it runs. A
// record's position is its index plus one.
type memStream struct {
	name string
	mu   sync.Mutex
	// lanes hold every record ever written; pos is where reading is.
	lanes     map[string][]Record
	pos       map[string]int64
	committed map[string]int64
	started   bool
	// resumed is what the last Start got.
	resumed map[string]Position
}

func newMemStream(name string, lanes ...string) *memStream {
	s := &memStream{name: name, lanes: map[string][]Record{}, pos: map[string]int64{}, committed: map[string]int64{}}
	for _, l := range lanes {
		s.lanes[l] = nil
	}
	return s
}

func (s *memStream) Name() string { return s.name }

// write appends events to a lane, with offsets following on.
func (s *memStream) write(lane string, evs ...twicetype.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range evs {
		off := int64(len(s.lanes[lane]))
		ev := evs[i]
		s.lanes[lane] = append(s.lanes[lane], Record{Lane: lane, Position: sources.IntPosition(off + 1), Event: &ev})
	}
}

func (s *memStream) writeMalformed(lane, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	off := int64(len(s.lanes[lane]))
	s.lanes[lane] = append(s.lanes[lane], Record{Lane: lane, Position: sources.IntPosition(off + 1),
		Malformed: &twicetype.Malformed{Source: lane, Line: off, Reason: reason}})
}

// writeLost appends a gap to a lane.
func (s *memStream) writeLost(lane string, g twicetype.Gap) {
	s.mu.Lock()
	defer s.mu.Unlock()
	off := int64(len(s.lanes[lane]))
	s.lanes[lane] = append(s.lanes[lane], Record{Lane: lane, Position: sources.IntPosition(off + 1), Lost: &g})
}

func (s *memStream) Replayable() bool { return true }

func (s *memStream) Start(_ context.Context, resume map[string]Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started = true
	s.resumed = resume
	for l := range s.lanes {
		s.pos[l] = 0
		if p, ok := resume[l]; ok {
			n, err := p.Int()
			if err != nil {
				return err
			}
			s.pos[l] = n
		}
	}
	return nil
}

func (s *memStream) Lanes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for l := range s.lanes {
		out = append(out, l)
	}
	return out
}

func (s *memStream) Poll(ctx context.Context, wait time.Duration) ([]Record, error) {
	s.mu.Lock()
	var out []Record
	for l, recs := range s.lanes {
		p := s.pos[l]
		end := min(int64(len(recs)), p+50)
		for ; p < end; p++ {
			r := recs[p]
			if r.Event != nil {
				ev := *r.Event // each read is a fresh copy, like a consumer's
				r.Event = &ev
			}
			out = append(out, r)
		}
		s.pos[l] = p
	}
	s.mu.Unlock()
	if len(out) == 0 {
		select {
		case <-time.After(min(wait, 5*time.Millisecond)):
		case <-ctx.Done():
		}
	}
	return out, nil
}

func (s *memStream) Lag(context.Context) (map[string]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lag := map[string]int64{}
	for l, recs := range s.lanes {
		lag[l] = int64(len(recs)) - s.pos[l]
	}
	return lag, nil
}

func (s *memStream) Commit(_ context.Context, done map[string]Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for l, p := range done {
		n, err := p.Int()
		if err != nil {
			return err
		}
		if n < s.committed[l] {
			return fmt.Errorf("lane %s: commit went back from %d to %d", l, s.committed[l], n)
		}
		s.committed[l] = n
	}
	return nil
}

func (s *memStream) Shutdown(context.Context) error { return nil }

// total returns how many records the stream holds.
func (s *memStream) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, recs := range s.lanes {
		n += len(recs)
	}
	return n
}
