package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/twicehq/twice/detectors"
	"github.com/twicehq/twice/internal/codec"
	"github.com/twicehq/twice/twicetype"
)

// A snapshot is the whole state of an engine, so that an audit can stop
// (even by SIGKILL, between checkpoints) and go on from the last one as if
// it had never stopped:
//
//	magic "TWICESNP", format version (uvarint)
//	Options.ConfigHash, lateness, reorder buffer cap
//	summary (every field, malformed lines included)
//	identity set, arrival counter, maxTime, watermark, released
//	reorder buffer: its FIFO run and its heap, each event in full
//	detector state (detectors.Set.Snapshot)
//	xxhash64 of everything before it (8 bytes)
//
// Options are not in it: Restore takes them again, and refuses a snapshot
// taken with another ConfigHash.

const (
	snapshotMagic   = "TWICESNP"
	snapshotVersion = 3
)

// ErrOtherConfig is wrapped by Restore's error when the snapshot was taken
// with another configuration (Options.ConfigHash, lateness, buffer cap,
// rules, detectors or horizon).
var ErrOtherConfig = codec.ErrOtherConfig

// ErrCorruptSnapshot is wrapped by Restore's error when the snapshot is
// truncated or damaged.
var ErrCorruptSnapshot = codec.ErrCorrupt

// Snapshot writes the engine's whole state to w. With a pipeline running
// (Run, startPipeline) it first waits until the detectors have taken every
// event sent, and starts the pipeline again afterwards. Snapshot must not
// run concurrently with Add, Malformed or Finish; after Finish there is
// nothing left to snapshot and it returns an error.
func (e *Engine) Snapshot(w io.Writer) error {
	if e.finished != nil {
		return errors.New("engine: snapshot after Finish")
	}
	if e.pipe != nil {
		e.stopPipeline()
		defer e.startPipeline()
	}
	cw := codec.NewWriter(w)
	cw.Raw([]byte(snapshotMagic))
	cw.Uvarint(snapshotVersion)
	cw.String(e.opts.ConfigHash)
	cw.Varint(int64(e.opts.Lateness))
	cw.Int(e.opts.ReorderBuffer)

	s := &e.sum
	for _, v := range [...]int64{s.Events, s.RepeatedIDs, s.Malformed, s.Late, s.Jobs, s.Effects,
		s.Pending, s.From, s.To, s.Evicted} {
		cw.Varint(v)
	}
	cw.Len0(len(s.Findings), s.Findings == nil)
	ids := make([]string, 0, len(s.Findings))
	for id := range s.Findings {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		cw.String(id)
		cw.Int(s.Findings[id])
	}
	cw.Len0(len(s.MalformedLines), s.MalformedLines == nil)
	for _, m := range s.MalformedLines {
		cw.String(m.Source)
		cw.Varint(m.Line)
		cw.String(m.Reason)
	}
	cw.Len0(len(s.EffectsByType), s.EffectsByType == nil)
	types := make([]string, 0, len(s.EffectsByType))
	for t := range s.EffectsByType {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		cw.String(t)
		cw.Varint(s.EffectsByType[t])
	}

	e.ids.Snapshot(cw)
	e.idsOld.Snapshot(cw)
	cw.Uvarint(e.arrivals)
	cw.Varint(e.maxTime)
	cw.Varint(e.watermark)
	cw.Bool(e.released)

	b := &e.buf
	item := func(it *bufItem) {
		cw.Varint(it.time - it.ev.Time) // 0: the item's time is its event's
		cw.Uvarint(it.seq)
		cw.Event(it.ev)
	}
	cw.Uvarint(uint64(len(b.run) - b.head))
	for i := b.head; i < len(b.run); i++ {
		item(&b.run[i])
	}
	cw.Uvarint(uint64(len(b.items)))
	for i := range b.items {
		item(&b.items[i])
	}

	e.det.Snapshot(cw)
	return cw.Close()
}

// Restore builds an engine from a snapshot written by Snapshot. opts must
// be the options the snapshotted engine had (its hooks, such as
// OnMalformed and Redact, are not in the snapshot); a snapshot taken with
// another configuration is an error wrapping ErrOtherConfig, a damaged
// one an error wrapping ErrCorruptSnapshot.
func Restore(opts Options, r io.Reader) (*Engine, error) {
	data, err := readAll(r)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if len(data) < len(snapshotMagic) || string(data[:len(snapshotMagic)]) != snapshotMagic {
		return nil, fmt.Errorf("snapshot: not a twice snapshot: %w", codec.ErrCorrupt)
	}
	cr := codec.NewReader("snapshot", data[len(snapshotMagic):])
	if v := cr.Uvarint(); cr.Err() == nil && v != snapshotVersion {
		return nil, fmt.Errorf("snapshot: format version %d, this build reads %d", v, snapshotVersion)
	}
	body, err := codec.Verify("snapshot", data)
	if err != nil {
		return nil, err
	}
	cr = codec.NewReader("snapshot", body[len(snapshotMagic):])
	cr.Uvarint() // version

	e := New(opts)
	hash, lateness, bufCap := cr.String(), cr.Varint(), cr.Int()
	if cr.Err() != nil {
		return nil, cr.Err()
	}
	if hash != e.opts.ConfigHash {
		return nil, fmt.Errorf("%w (config hash %q, now %q)", codec.ErrOtherConfig, hash, e.opts.ConfigHash)
	}
	if lateness != int64(e.opts.Lateness) || bufCap != e.opts.ReorderBuffer {
		return nil, fmt.Errorf("%w (lateness %d, reorder buffer %d; now %d, %d)",
			codec.ErrOtherConfig, lateness, bufCap, e.opts.Lateness, e.opts.ReorderBuffer)
	}

	s := &e.sum
	for _, p := range [...]*int64{&s.Events, &s.RepeatedIDs, &s.Malformed, &s.Late, &s.Jobs, &s.Effects,
		&s.Pending, &s.From, &s.To, &s.Evicted} {
		*p = cr.Varint()
	}
	if n, isNil := cr.Len0(2); !isNil {
		s.Findings = make(map[string]int, n)
		for range n {
			id := cr.String()
			s.Findings[id] = cr.Int()
		}
	}
	if n, isNil := cr.Len0(3); !isNil {
		s.MalformedLines = make([]twicetype.Malformed, n)
		for i := range s.MalformedLines {
			s.MalformedLines[i] = twicetype.Malformed{Source: cr.String(), Line: cr.Varint(), Reason: cr.String()}
		}
	}
	if n, isNil := cr.Len0(2); !isNil {
		s.EffectsByType = make(map[string]int64, n)
		for range n {
			t := cr.String()
			s.EffectsByType[t] = cr.Varint()
		}
	}

	e.ids.Restore(cr)
	e.idsOld.Restore(cr)
	e.arrivals = cr.Uvarint()
	e.maxTime = cr.Varint()
	e.watermark = cr.Varint()
	e.released = cr.Bool()

	nRun := cr.Count(3)
	run := make([]bufItem, nRun)
	nHeap := 0
	var evs []twicetype.Event
	items := func(dst []bufItem) {
		for i := range dst {
			ev := &evs[0]
			evs = evs[1:]
			dt := cr.Varint()
			dst[i].seq = cr.Uvarint()
			if err := codec.ReadEvent(cr, ev); err != nil {
				return
			}
			dst[i].time, dst[i].ev = ev.Time+dt, ev
		}
	}
	evs = make([]twicetype.Event, nRun)
	items(run)
	nHeap = cr.Count(3)
	heap := make([]bufItem, nHeap)
	evs = make([]twicetype.Event, nHeap)
	items(heap)
	if cr.Err() != nil {
		return nil, cr.Err()
	}
	if nRun > 0 {
		e.buf.run = run
	}
	if nHeap > 0 {
		e.buf.items = heap
	}

	det, err := detectors.RestoreSet(opts.Detectors, cr)
	if err != nil {
		return nil, err
	}
	e.det = det
	if err := cr.End(); err != nil {
		return nil, err
	}
	return e, nil
}

// readAll reads r to the end into a buffer sized once when r tells its
// size (a file, a bytes.Reader).
func readAll(r io.Reader) ([]byte, error) {
	size := -1
	switch r := r.(type) {
	case interface{ Len() int }:
		size = r.Len()
	case *os.File:
		if fi, err := r.Stat(); err == nil && fi.Mode().IsRegular() {
			if off, err := r.Seek(0, io.SeekCurrent); err == nil {
				size = int(fi.Size() - off)
			}
		}
	}
	if size < 0 {
		return io.ReadAll(r)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}
