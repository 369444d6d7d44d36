package kafka

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"sync"
	"time"
)

// maxReasons bounds the distinct reasons Stats counts apart; the others
// are counted under OtherReasons.
const maxReasons = 256

// OtherReasons counts the malformed messages whose reason came after
// maxReasons distinct ones.
const OtherReasons = "(other reasons)"

// Stats counts the malformed messages of one source. It is safe for
// concurrent use.
type Stats struct {
	mu sync.Mutex
	c  Counts
}

// Counts is a snapshot of Stats.
type Counts struct {
	// Malformed counts malformed messages; ByReason splits it by reason.
	Malformed int64
	ByReason  map[string]int64
	// DeadLettered counts malformed messages written to the dead-letter
	// file; DeadLetterDropped those not written (the file was full or
	// could not be written).
	DeadLettered      int64
	DeadLetterDropped int64
	// DeadLetterError is the last error writing the dead-letter file.
	DeadLetterError string
	// Skipped counts messages that map to no event (skip, when; for
	// format debezium tombstones, transaction markers, heartbeats).
	Skipped int64
}

// NewStats returns zeroed counters.
func NewStats() *Stats { return &Stats{c: Counts{ByReason: map[string]int64{}}} }

// Counts returns a copy of the counters.
func (s *Stats) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.c
	c.ByReason = maps.Clone(s.c.ByReason)
	return c
}

func (s *Stats) addMalformed(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.c.Malformed++
	if _, ok := s.c.ByReason[reason]; !ok && len(s.c.ByReason) >= maxReasons {
		reason = OtherReasons
	}
	s.c.ByReason[reason]++
}

func (s *Stats) addSkipped() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.c.Skipped++
}

func (s *Stats) addDeadLetter(written bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if written {
		s.c.DeadLettered++
	} else {
		s.c.DeadLetterDropped++
	}
	if err != nil {
		s.c.DeadLetterError = err.Error()
	}
}

// DeadLetter appends malformed messages to a file as JSON lines, up to a
// size: a line that would take the file past it is not written. It opens
// the file on the first write and is safe for concurrent use.
type DeadLetter struct {
	path string
	max  int64

	mu     sync.Mutex
	f      *os.File
	size   int64
	closed bool
}

// ErrDeadLetterFull is returned by Write for a line dropped because the file
// is at its size limit.
var ErrDeadLetterFull = errors.New("dead-letter file is full")

// NewDeadLetter returns a DeadLetter writing to path, at most maxBytes
// bytes (the file's size counts, with what it held before).
func NewDeadLetter(path string, maxBytes int64) *DeadLetter {
	return &DeadLetter{path: path, max: maxBytes}
}

// Path returns the file's path.
func (d *DeadLetter) Path() string { return d.path }

// deadLetterLine is one line of a dead-letter file.
type deadLetterLine struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key"`
	Value     string `json:"value"`
	Reason    string `json:"reason"`
	Time      string `json:"time"`
}

// Write appends msg and why it is malformed. written is false when the
// line was dropped: the file is full (err is ErrDeadLetterFull) or could
// not be written.
func (d *DeadLetter) Write(msg *Message, reason string) (written bool, err error) {
	line, err := json.Marshal(deadLetterLine{
		Topic: msg.Topic, Partition: msg.Partition, Offset: msg.Offset,
		Key: string(msg.Key), Value: string(msg.Value), Reason: reason,
		Time: msg.Time.UTC().Format(time.RFC3339Nano),
	})
	if err != nil {
		return false, err
	}
	line = append(line, '\n')
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false, errors.New("dead-letter file is closed")
	}
	if d.f == nil {
		f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return false, fmt.Errorf("dead-letter file: %w", err)
		}
		d.f = f
		if d.size, err = d.currentSize(); err != nil {
			return false, err
		}
	}
	if d.size+int64(len(line)) > d.max {
		// Someone may have truncated or moved the file since.
		if d.size, err = d.currentSize(); err != nil {
			return false, err
		}
		if d.size+int64(len(line)) > d.max {
			return false, ErrDeadLetterFull
		}
	}
	n, err := d.f.Write(line)
	d.size += int64(n)
	if err != nil {
		return false, fmt.Errorf("dead-letter file: %w", err)
	}
	return true, nil
}

// currentSize is the size of the file at the path now: 0 when it was moved
// away, in which case a new one is opened.
func (d *DeadLetter) currentSize() (int64, error) {
	st, err := os.Stat(d.path)
	if errors.Is(err, os.ErrNotExist) {
		d.f.Close()
		d.f, err = os.OpenFile(d.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			d.f = nil
			return 0, fmt.Errorf("dead-letter file: %w", err)
		}
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("dead-letter file: %w", err)
	}
	return st.Size(), nil
}

// Close closes the file. It is safe to call more than once; Write fails
// after it.
func (d *DeadLetter) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}
