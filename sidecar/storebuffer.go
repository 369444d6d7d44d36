package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/twicehq/twice/internal/backoff"
	"github.com/twicehq/twice/twicetype"
)

// An event store that is down never stops the audit. The store is
// written from the journal, after the fact, by a goroutine of its own:
// each checkpoint commits its chunk of the journal as always, then
// hands the chunk's number to the writer, which reads chunks in order
// (from the journal, or from the history once a snapshot has absorbed
// them), writes their events and malformed records to the store, and
// records in the state how far it got. While the store is unreachable
// the chunks wait where they are — on disk in state_dir, so a restart
// loses none — and the writer retries with backoff, preparing the store
// (its migrations) first; when it answers, the writer catches up in
// batches. Writes are at least once (a chunk written before a crash
// could record it is written again), which the store absorbs: audits of
// the store count the first copy of an identity.
//
// The backlog is bounded by the history's byte cap: past it the oldest
// segments are dropped and their records that the store never got are
// counted in twice_store_dropped_total.

// storeBatchRecords is about how many records one write to the store
// carries while catching up.
const storeBatchRecords = 100_000

// storeWriteTimeout bounds one attempt to write a batch (or prepare the
// store), so that a store that does not answer is retried.
const storeWriteTimeout = time.Minute

var keyStore = []byte("store")

// storePos is what the state records of the store: which store, and the
// last journal chunk it holds.
type storePos struct {
	Name    string `json:"name"`
	Through uint64 `json:"through"`
}

// stateMetrics are the metrics of the history and the store writer.
type stateMetrics struct {
	historyBytes prometheus.Gauge
	backlog      prometheus.Gauge
	storeUp      prometheus.Gauge
}

func newStateMetrics(reg prometheus.Registerer) *stateMetrics {
	m := &stateMetrics{
		historyBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "twice_history_bytes", Help: "Bytes of journal history kept in state_dir (for re-judging and the event store's backlog).",
		}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "twice_store_backlog_records", Help: "Events and malformed records audited and not yet written to the event store (kept in state_dir).",
		}),
		storeUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "twice_store_up", Help: "1 while the last write to the event store succeeded, else 0.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.historyBytes, m.backlog, m.storeUp)
	}
	return m
}

// storeWriter writes journal chunks to the event store.
type storeWriter struct {
	w     *Watcher
	store EventStore
	name  string

	mu      sync.Mutex
	through uint64 // last chunk written (or given up)
	end     uint64 // last chunk committed
	counts  map[uint64]int
	segs    []historySeg
	// inFirst..inLast is the batch being written; inLast 0 when none.
	inFirst, inLast uint64
	dirty           bool // through not yet recorded in the state
	lastErr         error
	caughtUp        chan struct{} // closed and replaced when through reaches end

	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// loadStorePos returns the store position recorded in the state, nil
// when there is none.
func (s *store) loadStorePos() (*storePos, error) {
	var p *storePos
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketMeta).Get(keyStore)
		if raw == nil {
			return nil
		}
		p = new(storePos)
		return json.Unmarshal(raw, p)
	})
	if err != nil {
		return nil, fmt.Errorf("state: store position: %w", err)
	}
	return p, nil
}

func (s *store) saveStorePos(p *storePos) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		if p == nil {
			return b.Delete(keyStore)
		}
		raw, err := json.Marshal(p)
		if err != nil {
			return err
		}
		return b.Put(keyStore, raw)
	})
}

// openStoreWriter sets up the writer of a restored state: from the
// position recorded for this store, with the backlog's record counts
// read from the history and the journal (journalCounts). A state
// without a position for this store (new, or written by an older twice
// that wrote the store before each checkpoint committed) owes it
// nothing before now.
func (w *Watcher) openStoreWriter(journalCounts map[uint64]int) error {
	if w.opts.Store == nil {
		return w.st.saveStorePos(nil)
	}
	pos, err := w.st.loadStorePos()
	if err != nil {
		return err
	}
	end := w.meta.NextJournal - 1
	if pos == nil || pos.Name != w.opts.StoreName {
		pos = &storePos{Name: w.opts.StoreName, Through: end}
		if err := w.st.saveStorePos(pos); err != nil {
			return fmt.Errorf("state: store position: %w", err)
		}
	}
	// A snapshot's chunk may be written to the store before its
	// checkpoint commits; after a crash in between, that chunk number
	// is taken again by the events read again, which the store must get.
	pos.Through = min(pos.Through, end)
	sw := &storeWriter{w: w, store: w.opts.Store, name: w.opts.StoreName, through: pos.Through, end: end,
		counts: map[uint64]int{}, segs: append([]historySeg(nil), w.meta.History...),
		caughtUp: make(chan struct{}), wake: make(chan struct{}, 1), done: make(chan struct{})}
	backlog := 0
	for _, s := range w.meta.History {
		if s.Last <= pos.Through {
			continue
		}
		err := scanSegment(filepath.Join(w.historyDir(), s.Name), false, func(c journalChunk) error {
			if c.no > pos.Through {
				sw.counts[c.no] = c.records
				backlog += c.records
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for no, n := range journalCounts {
		if no > pos.Through {
			sw.counts[no] = n
			backlog += n
		}
	}
	if sw.through >= sw.end {
		close(sw.caughtUp)
	}
	w.sm.backlog.Set(float64(backlog))
	if backlog > 0 {
		w.opts.Logf("store %s: %d records audited before the restart still to write", sw.name, backlog)
	}
	w.storeW = sw
	return nil
}

// start runs the writer until close.
func (sw *storeWriter) start() {
	ctx, cancel := context.WithCancel(context.Background())
	sw.cancel = cancel
	go sw.run(ctx)
	sw.poke()
}

func (sw *storeWriter) poke() {
	select {
	case sw.wake <- struct{}{}:
	default:
	}
}

// committed tells the writer that chunk no, of records events and
// malformed records, is committed.
func (sw *storeWriter) committed(no uint64, records int) {
	sw.mu.Lock()
	if no > sw.end {
		sw.end = no
	}
	if no > sw.through {
		sw.counts[no] = records
		sw.w.sm.backlog.Add(float64(records))
	}
	if sw.through < sw.end {
		select {
		case <-sw.caughtUp:
			sw.caughtUp = make(chan struct{})
		default:
		}
	}
	sw.mu.Unlock()
	sw.poke()
}

// setSegments gives the writer the history's segments, before the
// checkpoint that lists them drops their chunks from the journal.
func (sw *storeWriter) setSegments(segs []historySeg) {
	sw.mu.Lock()
	sw.segs = append(sw.segs[:0], segs...)
	sw.mu.Unlock()
}

func (sw *storeWriter) storedThrough() uint64 {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.through
}

// giveUp lets the history drop segment s although the store does not
// have all of it: its records the store never got are counted dropped.
// It refuses (false) while the writer is writing part of s.
func (sw *storeWriter) giveUp(s historySeg) bool {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.inLast != 0 && sw.inFirst <= s.Last && sw.inLast >= s.First {
		return false
	}
	if s.Last <= sw.through {
		return true
	}
	lost := 0
	for no := max(s.First, sw.through+1); no <= s.Last; no++ {
		lost += sw.counts[no]
		delete(sw.counts, no)
	}
	sw.through, sw.dirty = s.Last, true
	sw.w.m.storeDropped.Add(float64(lost))
	sw.w.sm.backlog.Sub(float64(lost))
	sw.w.opts.Logf("store %s: history over its cap: %d records audited up to %s will not be written to the store",
		sw.name, lost, time.Unix(0, s.MaxTime).UTC().Format(time.RFC3339))
	return true
}

// problem returns why the store is behind, "" when it is not failing.
func (sw *storeWriter) problem() string {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.lastErr == nil {
		return ""
	}
	return fmt.Sprintf("store %s: %v (retrying; %d chunks waiting in the state)", sw.name, sw.lastErr, sw.end-sw.through)
}

// drain waits until the store has every committed chunk, or ctx ends;
// at once when the last write failed (the store is down: the backlog
// stays in the state).
func (sw *storeWriter) drain(ctx context.Context) error {
	sw.mu.Lock()
	ch, failing := sw.caughtUp, sw.lastErr
	sw.mu.Unlock()
	if failing != nil {
		select {
		case <-ch:
			return nil
		default:
			return failing
		}
	}
	sw.poke()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops the writer and records its position.
func (sw *storeWriter) close() error {
	if sw.cancel != nil {
		sw.cancel()
		<-sw.done
	}
	return sw.persist()
}

func (sw *storeWriter) persist() error {
	sw.mu.Lock()
	pos := &storePos{Name: sw.name, Through: sw.through}
	dirty := sw.dirty
	sw.dirty = false
	sw.mu.Unlock()
	if !dirty {
		return nil
	}
	return sw.w.st.saveStorePos(pos)
}

func (sw *storeWriter) run(ctx context.Context) {
	defer close(sw.done)
	retry := backoff.New(retryMin, retryMax)
	prepared := false
	var timer <-chan time.Time
	for {
		if timer == nil {
			select {
			case <-ctx.Done():
				return
			case <-sw.wake:
			}
		} else {
			// After a failure, new chunks wait for the backoff.
			select {
			case <-ctx.Done():
				return
			case <-timer:
			}
		}
		timer = nil
		for ctx.Err() == nil {
			var err error
			if !prepared {
				pctx, cancel := context.WithTimeout(ctx, storeWriteTimeout)
				err = sw.store.Prepare(pctx)
				cancel()
				if err == nil {
					prepared = true
				} else {
					err = fmt.Errorf("preparing: %w", err)
				}
			}
			more := false
			if err == nil {
				more, err = sw.writeBatch(ctx)
			}
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				sw.failed(err)
				timer = time.After(retry.Next())
				break
			}
			retry.Reset()
			if !more {
				break
			}
		}
	}
}

func (sw *storeWriter) failed(err error) {
	sw.mu.Lock()
	first := sw.lastErr == nil
	sw.lastErr = err
	sw.mu.Unlock()
	sw.w.m.storeErrors.Inc()
	sw.w.sm.storeUp.Set(0)
	if first {
		sw.w.opts.Logf("store %s: %v (the audit goes on; events wait in the state and are written when it answers)", sw.name, err)
	}
}

// writeBatch writes the next chunks, up to about storeBatchRecords; more
// says whether chunks remain.
func (sw *storeWriter) writeBatch(ctx context.Context) (more bool, err error) {
	sw.mu.Lock()
	first, end := sw.through+1, sw.end
	sw.mu.Unlock()
	if first > end {
		if err := sw.persist(); err != nil {
			return false, fmt.Errorf("recording its position: %w", err)
		}
		return false, nil
	}
	var evs []twicetype.Event
	var mals []twicetype.Malformed
	records, last, lost := 0, first-1, 0
	add := func(c journalChunk) error {
		ne, nm := len(evs), len(mals)
		err := walkChunk(c.data, func(ev *twicetype.Event) { evs = append(evs, *ev) },
			func(m twicetype.Malformed) { mals = append(mals, m) }, nil)
		if err != nil {
			// Damaged on disk: retrying would not mend it.
			evs, mals = evs[:ne], mals[:nm]
			lost += sw.skip(c.no, c.no)
			sw.w.opts.Logf("store %s: journal chunk %d: %v", sw.name, c.no, err)
		}
		records += c.records
		last = c.no
		return nil
	}
	sw.mu.Lock()
	sw.inFirst, sw.inLast = first, end
	sw.mu.Unlock()
	defer func() {
		sw.mu.Lock()
		sw.inFirst, sw.inLast = 0, 0
		sw.mu.Unlock()
	}()
	for no := first; no <= end && records < storeBatchRecords; {
		if seg, ok := sw.segmentOf(no); ok {
			stop := errors.New("batch full")
			err := scanSegment(filepath.Join(sw.w.historyDir(), seg.Name), true, func(c journalChunk) error {
				if c.no < no || c.no > end {
					return nil
				}
				if records >= storeBatchRecords {
					return stop
				}
				return add(c)
			})
			if err != nil && !errors.Is(err, stop) || err == nil && last < no {
				// Gone (given up by the history's cap) or damaged: the
				// rest of the segment cannot be had.
				if err != nil && !os.IsNotExist(err) {
					sw.w.opts.Logf("store %s: %v", sw.name, err)
				}
				lost += sw.skip(max(no, last+1), seg.Last)
				last = seg.Last
			}
			no = max(no, last+1)
			continue
		}
		data, err := sw.w.st.journalChunk(no)
		if err != nil {
			return true, err
		}
		if data == nil {
			if _, ok := sw.segmentOf(no); ok {
				continue // absorbed by a snapshot meanwhile
			}
			lost += sw.skip(no, no)
			last = no
			no++
			continue
		}
		sw.mu.Lock()
		n := sw.counts[no]
		sw.mu.Unlock()
		if err := add(journalChunk{no: no, records: n, data: data}); err != nil {
			return true, err
		}
		no++
	}
	if lost > 0 {
		sw.w.m.storeDropped.Add(float64(lost))
		sw.w.opts.Logf("store %s: %d records were no longer in the state and will not be written", sw.name, lost)
	}
	if len(evs)+len(mals) > 0 {
		wctx, cancel := context.WithTimeout(ctx, storeWriteTimeout)
		err := sw.store.Write(wctx, evs)
		if err == nil {
			err = sw.store.WriteMalformed(wctx, mals)
		}
		if err == nil {
			err = sw.store.Flush(wctx)
		}
		cancel()
		if err != nil {
			sw.store.Discard()
			return true, err
		}
	}
	sw.mu.Lock()
	written := 0
	for no := first; no <= last; no++ {
		written += sw.counts[no]
		delete(sw.counts, no)
	}
	if last > sw.through {
		sw.through, sw.dirty = last, true
	}
	recovered := sw.lastErr != nil
	sw.lastErr = nil
	more = sw.through < sw.end
	if !more {
		select {
		case <-sw.caughtUp:
		default:
			close(sw.caughtUp)
		}
	}
	sw.mu.Unlock()
	sw.w.m.stored.Add(float64(len(evs)))
	sw.w.sm.backlog.Sub(float64(written))
	sw.w.sm.storeUp.Set(1)
	if recovered {
		sw.w.opts.Logf("store %s: writing again", sw.name)
	}
	if err := sw.persist(); err != nil {
		return more, fmt.Errorf("recording its position: %w", err)
	}
	return more, nil
}

// segmentOf returns the history segment holding chunk no.
func (sw *storeWriter) segmentOf(no uint64) (historySeg, bool) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	for _, s := range sw.segs {
		if s.First <= no && no <= s.Last {
			return s, true
		}
	}
	return historySeg{}, false
}

// skip gives up chunks first..last, gone from the state; it returns
// their records.
func (sw *storeWriter) skip(first, last uint64) int {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	lost := 0
	for no := first; no <= last; no++ {
		lost += sw.counts[no]
		delete(sw.counts, no)
	}
	sw.w.sm.backlog.Sub(float64(lost))
	return lost
}

// stopStoreWriter gives the writer until ctx ends to write what the last
// checkpoint committed, then stops it; what it did not write stays in
// the state for the next start. After abort (a crash, for tests) it just
// stops.
func (w *Watcher) stopStoreWriter(ctx context.Context) {
	sw := w.storeW
	if sw == nil {
		return
	}
	w.mu.Lock()
	aborted := w.aborted
	w.mu.Unlock()
	if aborted {
		if sw.cancel != nil {
			sw.cancel()
			<-sw.done
		}
		return
	}
	if err := sw.drain(ctx); err != nil {
		sw.mu.Lock()
		left := 0
		for _, n := range sw.counts {
			left += n
		}
		sw.mu.Unlock()
		w.opts.Logf("store %s: %d records not yet written stay in the state for the next start", sw.name, left)
	}
	if err := sw.close(); err != nil {
		w.opts.Logf("store %s: %v", sw.name, err)
	}
}
