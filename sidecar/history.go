package sidecar

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/twicehq/twice/detectors"
	"github.com/twicehq/twice/engine"
)

// The history keeps what snapshots absorbed: when a snapshot lets the
// journal go, its chunks (and the chunk of the interval the snapshot
// closes) are written to a segment file of state_dir/history, in chunk
// order, and the checkpoint that drops them from the journal lists the
// segment in its meta. Two readers use it:
//
//   - the event store writer (storebuffer.go), which writes chunks to the
//     store after their checkpoint and catches up after an outage from
//     the journal and the history: the spill that survives restarts;
//   - re-judging (rejudge.go), which replays the history through the
//     detectors of a new configuration.
//
// Segments are dropped once their events are older than the detectors'
// horizon before the watermark and the store has them, or, oldest first,
// when the history outgrows Options.HistoryMaxBytes (the store's share
// counted in twice_store_dropped_total).

const (
	historyDirName = "history"
	segMagic       = "TWICEHST"
	segVersion     = 1
	// DefaultHistoryMaxBytes bounds the history when Options leave it 0.
	DefaultHistoryMaxBytes = 1 << 30
)

// historySeg is one segment file, as listed in the checkpoint meta.
type historySeg struct {
	Name string `json:"name"`
	// First and Last are the journal chunk numbers it holds.
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
	// MaxTime is the largest event time the engine had taken when the
	// segment was written: every event in it is at or before it.
	MaxTime int64 `json:"max_time"`
	Bytes   int64 `json:"bytes"`
	// Records counts its events and malformed records.
	Records int64 `json:"records"`
}

// journalChunk is one compressed journal chunk with its number and how
// many events and malformed records it holds.
type journalChunk struct {
	no      uint64
	records int
	data    []byte
}

// writeSegment writes chunks (in order) to a new segment file of dir,
// synced and renamed into place.
func writeSegment(dir string, chunks []journalChunk, maxTime int64) (historySeg, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return historySeg{}, fmt.Errorf("history: %w", err)
	}
	seg := historySeg{
		Name:    fmt.Sprintf("segment-%020d-%020d", chunks[0].no, chunks[len(chunks)-1].no),
		First:   chunks[0].no,
		Last:    chunks[len(chunks)-1].no,
		MaxTime: maxTime,
	}
	path := filepath.Join(dir, seg.Name)
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return historySeg{}, fmt.Errorf("history: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	hdr := binary.AppendUvarint([]byte(segMagic), segVersion)
	_, err = bw.Write(hdr)
	n := int64(len(hdr))
	for _, c := range chunks {
		if err != nil {
			break
		}
		b := binary.AppendUvarint(nil, c.no)
		b = binary.AppendUvarint(b, uint64(c.records))
		b = binary.AppendUvarint(b, uint64(len(c.data)))
		if _, err = bw.Write(b); err == nil {
			_, err = bw.Write(c.data)
		}
		n += int64(len(b) + len(c.data))
		seg.Records += int64(c.records)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(path+".tmp", path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(path + ".tmp")
		return historySeg{}, fmt.Errorf("history %s: %w", path, err)
	}
	seg.Bytes = n
	return seg, nil
}

// scanSegment calls fn for each chunk of a segment file, in order; data
// is nil unless withData (then only the headers are read).
func scanSegment(path string, withData bool, fn func(c journalChunk) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<16)
	magic := make([]byte, len(segMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != segMagic {
		return fmt.Errorf("history %s: not a history segment", path)
	}
	if v, err := binary.ReadUvarint(r); err != nil || v != segVersion {
		return fmt.Errorf("history %s: segment version %d, this build reads %d", path, v, segVersion)
	}
	for {
		no, err := binary.ReadUvarint(r)
		if errors.Is(err, io.EOF) {
			return nil
		}
		records, err2 := binary.ReadUvarint(r)
		size, err3 := binary.ReadUvarint(r)
		if err = errors.Join(err, err2, err3); err != nil {
			return fmt.Errorf("history %s: %w", path, err)
		}
		c := journalChunk{no: no, records: int(records)}
		if withData {
			c.data = make([]byte, size)
			_, err = io.ReadFull(r, c.data)
		} else {
			_, err = r.Discard(int(size))
		}
		if err != nil {
			return fmt.Errorf("history %s: chunk %d: %w", path, no, err)
		}
		if err := fn(c); err != nil {
			return err
		}
	}
}

// journalChunks calls fn with every chunk of the journal (the intervals
// since the last snapshot) and its number, in order.
func (s *store) journalChunks(fn func(no uint64, data []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketJournal).ForEach(func(k, v []byte) error {
			return fn(binary.BigEndian.Uint64(k), v)
		})
	})
}

// journalChunk returns a copy of chunk no of the journal; nil when the
// journal no longer (or never) held it.
func (s *store) journalChunk(no uint64) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketJournal).Get(u64key(no)); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	return out, err
}

// historyDir returns the directory of the segment files.
func (w *Watcher) historyDir() string { return filepath.Join(w.opts.StateDir, historyDirName) }

// removeStaleSegments deletes segment files the checkpoint does not
// list (written by a snapshot whose commit a crash prevented).
func (w *Watcher) removeStaleSegments() {
	listed := map[string]bool{}
	for _, s := range w.meta.History {
		listed[s.Name] = true
	}
	files, _ := filepath.Glob(filepath.Join(w.historyDir(), "segment-*"))
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			os.Remove(f)
		}
	}
}

// historyRetention is how far back in event time the history must reach
// for re-judging: the detectors' horizon, which they raise to the longest
// deadline a detector or rule needs (detectors.New).
func historyRetention(o engine.Options) time.Duration {
	h := o.Detectors.Horizon
	if h <= 0 {
		h = detectors.DefaultHorizon
	}
	settings := detectors.DefaultSettings()
	for id, st := range o.Detectors.Detectors {
		settings[id] = st
	}
	for _, st := range settings {
		h = max(h, st.LostAfter, st.MaxStartDelay, st.Window)
	}
	for _, r := range o.Detectors.Rules {
		h = max(h, r.Within)
	}
	return h
}

// pruneHistory takes from m.History the oldest segments that are no
// longer needed: older than the retention before the watermark and
// written to the store (when there is one); then, oldest first, as many
// as keep the history under its byte cap, telling the store writer which
// of their chunks it will never get. It returns the files to delete once
// the checkpoint has committed.
func (w *Watcher) pruneHistory(m *meta) []string {
	if len(m.History) == 0 {
		return nil
	}
	wm, ok := w.eng.Watermark()
	limit := w.opts.HistoryMaxBytes
	if limit <= 0 {
		limit = DefaultHistoryMaxBytes
	}
	var total int64
	for _, s := range m.History {
		total += s.Bytes
	}
	oldEnough := int64(historyRetention(w.opts.Engine))
	var drop []string
	for len(m.History) > 0 {
		s := m.History[0]
		expired := ok && s.MaxTime < wm-oldEnough
		stored := w.storeW == nil || w.storeW.storedThrough() >= s.Last
		if expired && stored {
			// Nothing lost.
		} else if total > limit && (w.storeW == nil || w.storeW.giveUp(s)) {
			if !w.historyCapped {
				w.historyCapped = true
				w.opts.Logf("history over %d bytes: the oldest is dropped (events up to %s can no longer be re-judged; twice_history_bytes)",
					limit, time.Unix(0, s.MaxTime).UTC().Format(time.RFC3339))
			}
		} else {
			break
		}
		total -= s.Bytes
		drop = append(drop, filepath.Join(w.historyDir(), s.Name))
		m.History = m.History[1:]
		// Everything taken up to the segment's end is at or before
		// its MaxTime.
		if m.HistoryFloor == nil || *m.HistoryFloor < s.MaxTime {
			floor := s.MaxTime
			m.HistoryFloor = &floor
		}
	}
	w.sm.historyBytes.Set(float64(total))
	return drop
}

// journalChunkOf puts the interval's journal (w.journal) in checkpoint c
// as a compressed chunk: in the journal, or, when c is a snapshot's, in
// a new history segment with the journal's chunks, which c drops. It
// returns the chunk (no 0 when the interval took nothing).
func (w *Watcher) journalChunkOf(c *checkpoint, snapshot bool) (journalChunk, error) {
	var chunk journalChunk
	if len(w.journal) > 0 {
		chunk = journalChunk{no: c.meta.NextJournal, records: w.journalRecords, data: compressChunk(w.journal)}
	}
	if !snapshot {
		if chunk.data != nil {
			c.journal = chunk.data // commit numbers it NextJournal
			w.m.journalBytes.Add(float64(len(chunk.data)))
		}
		return chunk, nil
	}
	var chunks []journalChunk
	err := w.st.journalChunks(func(no uint64, data []byte) error {
		chunks = append(chunks, journalChunk{no: no, records: w.chunkRecords[no], data: append([]byte(nil), data...)})
		return nil
	})
	if err != nil {
		return chunk, fmt.Errorf("history: %w", err)
	}
	if chunk.data != nil {
		chunks = append(chunks, chunk)
		c.meta.NextJournal++
	}
	if len(chunks) == 0 {
		return chunk, nil
	}
	seg, err := writeSegment(w.historyDir(), chunks, w.maxTaken)
	if err != nil {
		return chunk, err
	}
	c.meta.History = append(c.meta.History, seg)
	if w.storeW != nil {
		// Before the commit drops the chunks from the journal, and
		// before pruneHistory may give up the segment.
		w.storeW.setSegments(c.meta.History)
		if chunk.data != nil {
			w.storeW.committed(chunk.no, chunk.records)
		}
	}
	return chunk, nil
}

// journalCommitted follows a committed checkpoint: the store writer
// learns of its chunk, the journal's record counts follow it, and the
// segments the history let go are deleted.
func (w *Watcher) journalCommitted(chunk journalChunk, snapshot bool, drop []string) {
	if snapshot {
		clear(w.chunkRecords)
	} else if chunk.data != nil {
		if w.chunkRecords == nil {
			w.chunkRecords = map[uint64]int{}
		}
		w.chunkRecords[chunk.no] = chunk.records
	}
	if w.storeW != nil {
		if chunk.data != nil && !snapshot {
			w.storeW.committed(chunk.no, chunk.records)
		}
		w.storeW.setSegments(w.meta.History)
	}
	for _, f := range drop {
		os.Remove(f)
	}
	w.journalRecords = 0
}
