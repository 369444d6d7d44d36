package sources

import (
	"sync"

	"github.com/twicehq/twice/collectors"
)

// PollHealth holds the error of a polling stream's last attempt. A stream
// embeds it to implement Stream.Health; it is safe for concurrent use,
// since Health is called from another goroutine than Poll's.
type PollHealth struct {
	mu  sync.Mutex
	err error
}

// Health returns the error of the last attempt, nil after one that
// worked.
func (h *PollHealth) Health() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// SetHealth records the outcome of an attempt.
func (h *PollHealth) SetHealth(err error) {
	h.mu.Lock()
	h.err = err
	h.mu.Unlock()
}

// BatchRecords turns one poll of lane into records: the coverage lost
// first, then the malformed lines, then the events, each at pos (where
// the lane resumes before the batch). The caller sets the last record's
// Position to where the lane resumes after the batch. Nil when the
// batch is empty.
func BatchRecords(lane string, pos Position, b *collectors.Batch) []Record {
	n := len(b.Events) + len(b.Malformed) + len(b.Lost)
	if n == 0 {
		return nil
	}
	recs := make([]Record, 0, n)
	for i := range b.Lost {
		recs = append(recs, Record{Lane: lane, Position: pos, Lost: &b.Lost[i]})
	}
	for i := range b.Malformed {
		recs = append(recs, Record{Lane: lane, Position: pos, Malformed: &b.Malformed[i]})
	}
	for i := range b.Events {
		recs = append(recs, Record{Lane: lane, Position: pos, Event: &b.Events[i]})
	}
	return recs
}
