package sidecar

import (
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/s2"

	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/internal/codec"
	"github.com/twicehq/twice/twicetype"
)

// The journal records, in order, everything the engine took since the
// last snapshot. Replaying it into the snapshot's engine rebuilds the
// state exactly, because the engine is deterministic in its input.
const (
	entryEvent     byte = 'e'
	entryMalformed byte = 'm'
	entryAdvance   byte = 'a'
)

func appendEventEntry(b []byte, ev *twicetype.Event) []byte {
	return codec.AppendEvent(append(b, entryEvent), ev)
}

func appendMalformedEntry(b []byte, m *twicetype.Malformed) []byte {
	b = append(b, entryMalformed)
	b = codec.AppendString(b, m.Source)
	b = binary.AppendVarint(b, m.Line)
	return codec.AppendString(b, m.Reason)
}

func appendAdvanceEntry(b []byte, t int64) []byte {
	return binary.AppendVarint(append(b, entryAdvance), t)
}

// compressChunk and replayChunk use S2 (klauspost/compress, already used
// for gzip input): journal chunks are JSON-like text and shrink 3-4×
// at several hundred MB/s.
func compressChunk(b []byte) []byte { return s2.Encode(nil, b) }

// replayChunk applies a compressed journal chunk to e.
func replayChunk(e *engine.Engine, chunk []byte) (events int, err error) {
	events, _, err = replayChunkCounted(e, chunk)
	return events, err
}

// replayChunkCounted applies a compressed journal chunk to e and counts
// its events and its records (events and malformed records).
func replayChunkCounted(e *engine.Engine, chunk []byte) (events, records int, err error) {
	err = walkChunk(chunk,
		func(ev *twicetype.Event) { e.Add(ev); events++ },
		func(m twicetype.Malformed) { _ = e.Malformed(m); records++ },
		e.Advance)
	return events, events + records, err
}

// walkChunk decodes a compressed journal chunk, calling onEvent (with a
// new event each time), onMalformed and onAdvance (when not nil) for its
// entries in order.
func walkChunk(chunk []byte, onEvent func(*twicetype.Event), onMalformed func(twicetype.Malformed), onAdvance func(int64)) error {
	raw, err := s2.Decode(nil, chunk)
	if err != nil {
		return fmt.Errorf("journal chunk: %w", err)
	}
	r := codec.NewReader("journal", raw)
	for r.Remaining() > 0 {
		switch tag := r.Byte(); tag {
		case entryEvent:
			ev := new(twicetype.Event)
			if err := codec.ReadEvent(r, ev); err != nil {
				return err
			}
			onEvent(ev)
		case entryMalformed:
			var m twicetype.Malformed
			m.Source = r.String()
			m.Line = r.Varint()
			m.Reason = r.String()
			if r.Err() == nil {
				onMalformed(m)
			}
		case entryAdvance:
			if t := r.Varint(); r.Err() == nil && onAdvance != nil {
				onAdvance(t)
			}
		default:
			if r.Err() == nil {
				r.Failf("unknown journal entry %q", tag)
			}
		}
		if err := r.Err(); err != nil {
			return err
		}
	}
	return nil
}
