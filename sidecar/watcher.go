package sidecar

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twicehq/twice/detectors"
	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/internal/backoff"
	"github.com/twicehq/twice/sources"
	"github.com/twicehq/twice/twicetype"
)

// Defaults of Options.
const (
	DefaultCheckpointInterval = time.Second
	DefaultSnapshotInterval   = time.Minute
	DefaultIdleTimeout        = 5 * time.Second
	DefaultFlushInterval      = 100 * time.Millisecond
	pollWait                  = 100 * time.Millisecond
)

// Options configure a Watcher.
type Options struct {
	// Engine configures the audit. Engine.ConfigHash names the
	// configuration: state written under another one is not restored.
	Engine engine.Options
	// StateDir holds the checkpoint store and snapshots.
	StateDir string
	// CheckpointInterval is how often the state is committed and
	// findings published; SnapshotInterval how often the whole state is
	// written so the journal can be dropped; IdleTimeout how long a lane
	// may deliver nothing before it stops holding the others back;
	// FlushInterval how often findings are looked at (and shown on the
	// API) between checkpoints.
	CheckpointInterval, SnapshotInterval, IdleTimeout, FlushInterval time.Duration
	Streams                                                          []Stream
	Sinks                                                            []Sink
	// IdleAdvance lets event time follow the wall clock while every lane is
	// idle: deadlines then fire although nothing arrives (a job lost at
	// night is reported at night). For streams whose event time follows
	// the wall clock; off when replaying history.
	IdleAdvance bool
	// Store, if set, receives every event the engine takes and every
	// malformed record, from the journal after each checkpoint commits,
	// by a writer of its own: a store that is down holds nothing up, its
	// backlog waits in StateDir (storebuffer.go). At least once: a crash
	// between a write and its record writes it again, which a store that
	// keeps the first copy of an identity absorbs.
	Store EventStore
	// StoreName names the store in the state (a DSN without password):
	// another name starts a new store position.
	StoreName string
	// HistoryMaxBytes caps the journal history kept in StateDir for
	// re-judging and for the store's backlog; 0 means
	// DefaultHistoryMaxBytes.
	HistoryMaxBytes int64
	// ConfigText describes what Engine.ConfigHash covers, a line each
	// (audit.ConfigText), to say what changed when a state is re-judged.
	ConfigText string
	// ResetState rebuilds the detector state from the history when the
	// snapshot cannot be restored (written by another twice version)
	// instead of refusing the state (rejudge.go).
	ResetState bool
	// Registry receives the metrics; nil keeps them unregistered.
	Registry prometheus.Registerer
	// Now is the wall clock; nil means time.Now.
	Now func() time.Time
	// Logf logs diagnostics; nil discards them.
	Logf func(format string, args ...any)
}

// EventStore keeps the events audited, for audits where they live
// (storage/clickhouse).
type EventStore interface {
	// Prepare readies the store (creates or migrates its tables); it is
	// called, until it succeeds, before the first write.
	Prepare(ctx context.Context) error
	Write(ctx context.Context, evs []twicetype.Event) error
	WriteMalformed(ctx context.Context, ms []twicetype.Malformed) error
	// Flush returns once what was written is in the store.
	Flush(ctx context.Context) error
	// Discard drops what a failed Write, WriteMalformed or Flush left
	// buffered: all of it is written again.
	Discard()
}

// Watcher runs streams through the engine until shut down.
type Watcher struct {
	opts Options
	m    *metrics

	mu      sync.Mutex // guards the fields below up to the blank line
	started bool
	stopped bool
	ready   bool
	stop    chan struct{}
	done    chan struct{}
	err     error

	st      *store
	meta    *meta
	eng     *engine.Engine
	lanes   map[string]*lane
	merge   merger
	journal []byte
	outbox  []outboxEntry
	saved   map[string]*savedFinding
	changed map[string]*savedFinding
	snapAt  time.Time
	ckptAt  time.Time
	// journalRecords counts the events and malformed records in
	// journal; chunkRecords those of each chunk in the store's journal
	// bucket (since the last snapshot).
	journalRecords int
	chunkRecords   map[uint64]int
	storeW         *storeWriter
	sm             *stateMetrics
	// rejudging is set when the state is rebuilt under another
	// configuration (rejudge.go); historyCapped once the history's cap
	// has dropped a segment (logged once).
	rejudging, historyCapped bool
	// reasons are the malformed reasons labelled so far, by source.
	reasons map[string]map[string]bool
	// maxTaken is the largest event time the engine has taken.
	maxTaken int64
	reported twicetype.Summary
	batches  chan polled
	pollWG   sync.WaitGroup
	pollStop context.CancelFunc

	view *findingView
	// health is what /readyz says of each source; resume the positions
	// each stream starts at, by its own lane names.
	health *sourceHealth
	resume []map[string]Position
	// cov counts the coverage streams report lost (coverage.go).
	cov   *coverage
	sinks []sinkState
	// aborted makes the loop stop without a last checkpoint, as a crash
	// would; for tests.
	aborted bool
}

type polled struct {
	stream int
	recs   []Record
	err    error
	// started says the stream has started and reads lanes.
	started bool
	lanes   []string
}

// New builds a Watcher. It does no I/O.
func New(opts Options) *Watcher {
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = DefaultCheckpointInterval
	}
	if opts.SnapshotInterval <= 0 {
		opts.SnapshotInterval = DefaultSnapshotInterval
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	opts.Engine.Detectors.Live = true
	if opts.Engine.Lateness < 0 {
		// Unbounded lateness would hold events until the reorder buffer
		// fills. Lanes are merged by time already; what remains is
		// disorder within a lane, which the configuration may allow for.
		opts.Engine.Lateness = 0
	}
	return &Watcher{
		opts:   opts,
		m:      newMetrics(opts.Registry),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		view:   newFindingView(),
		health: newSourceHealth(opts.Registry, opts.Streams, opts.Sinks),
		cov:    newCoverage(opts.Registry),
		sm:     newStateMetrics(opts.Registry),
	}
}

// Start restores the last checkpoint, starts the sinks and streams, and
// runs the watch on its own goroutine. It is safe to call twice.
func (w *Watcher) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return nil
	}
	w.started = true
	if err := w.restore(ctx); err != nil {
		// Undo what restore opened, so a caller may retry in-process.
		sctx := context.WithoutCancel(ctx)
		for _, st := range w.opts.Streams {
			_ = st.Shutdown(sctx)
		}
		for _, sk := range w.opts.Sinks {
			_ = sk.Shutdown(sctx)
		}
		if w.st != nil {
			_ = w.st.close()
		}
		close(w.done)
		w.err = err
		return err
	}
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.pollStop = cancel
	w.batches = make(chan polled, 2*len(w.opts.Streams)+1)
	for i, s := range w.opts.Streams {
		w.pollWG.Add(1)
		go w.poll(pctx, i, s)
	}
	w.ready = true
	go w.run()
	return nil
}

// Done is closed when the watch has stopped; Err then says why.
func (w *Watcher) Done() <-chan struct{} { return w.done }

// Err returns the error that stopped the watch, nil after a clean
// shutdown.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Ready reports whether the state is restored and every stream started
// and read without error (see Readiness).
func (w *Watcher) Ready() bool {
	ready, _ := w.Readiness()
	return ready
}

// Shutdown stops taking records, commits a last checkpoint, publishes
// its findings and closes everything, within ctx. It is safe to call
// twice, and before Start.
func (w *Watcher) Shutdown(ctx context.Context) error {
	w.mu.Lock()
	if !w.started {
		w.started, w.stopped = true, true
		if w.st != nil { // opened by Open
			_ = w.st.close()
		}
		close(w.done)
		w.mu.Unlock()
		return nil
	}
	if !w.stopped {
		w.stopped = true
		close(w.stop)
	}
	w.mu.Unlock()
	select {
	case <-w.done:
	case <-ctx.Done():
		return fmt.Errorf("shutdown: %w", ctx.Err())
	}
	return w.Err()
}

// restore opens the store and rebuilds the engine of the last
// checkpoint: its snapshot, then its journal replayed.
func (w *Watcher) restore(ctx context.Context) error {
	if err := w.open(); err != nil {
		return err
	}
	st, m := w.st, w.meta
	var err error
	if m.Lanes == nil {
		m.Lanes = map[string]lanePos{}
	}
	if m.Published == nil {
		m.Published = map[string]uint64{}
	}
	// Outbox entries are dropped once every configured sink holds them: a
	// sink no longer configured no longer counts, and a new one starts
	// with what the outbox still holds.
	sinks := map[string]bool{}
	for _, s := range w.opts.Sinks {
		sinks[s.Name()] = true
		if _, ok := m.Published[s.Name()]; !ok {
			m.Published[s.Name()] = m.NextSeq - 1
		}
	}
	for name := range m.Published {
		if !sinks[name] {
			delete(m.Published, name)
		}
	}
	w.meta = m
	if w.rejudging {
		// Another configuration: rebuilt from the history (rejudge.go).
		if err := w.rebuild(); err != nil {
			return err
		}
	} else if m.Snapshot != "" {
		f, err := os.Open(filepath.Join(w.opts.StateDir, m.Snapshot))
		if err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		w.eng, err = engine.Restore(w.opts.Engine, bufio.NewReaderSize(f, 1<<20))
		f.Close()
		if err != nil {
			return fmt.Errorf("snapshot %s: %w", m.Snapshot, err)
		}
	} else {
		w.eng = engine.New(w.opts.Engine)
	}
	w.removeStaleSnapshots()
	replayed, chunks := 0, 0
	w.chunkRecords = map[uint64]int{}
	err = st.journalChunks(func(no uint64, chunk []byte) error {
		n, records, err := replayChunkCounted(w.eng, chunk)
		replayed += n
		w.chunkRecords[no] = records
		chunks++
		w.m.journalBytes.Add(float64(len(chunk)))
		return err
	})
	if err != nil {
		return fmt.Errorf("journal replay: %w", err)
	}
	if w.rejudging {
		w.rejudgeBase()
	}
	w.reported = w.summary()
	if wm, ok := w.eng.Watermark(); ok {
		// Event time when the last checkpoint was taken: idle advance
		// counts from there.
		w.maxTaken = wm
	}
	w.opts.Logf("restored: snapshot %q, %d journal events, %d checkpoints so far", m.Snapshot, replayed, m.Checkpoints)
	w.m.restored(m, chunks)
	if w.saved, err = st.findings(); err != nil {
		return err
	}
	w.changed = map[string]*savedFinding{}
	for fp, sf := range w.saved {
		w.view.set(fp, sf)
		w.standing(sf, +1)
	}
	if w.rejudging {
		w.rejudgeFindings()
	}
	w.flushViews()
	now := w.opts.Now()
	w.snapAt, w.ckptAt = now, now
	// A sink that does not start is retried at later checkpoints
	// (sinkstart.go).
	for i := range w.opts.Sinks {
		w.startSink(ctx, i)
	}
	// Streams start on their poll goroutines, retried until they do
	// (readiness.go); their lanes join when they have.
	w.resume = resumePositions(m, w.opts.Streams)
	w.cov.restored(m.Lost)
	w.lanes = map[string]*lane{}
	w.merge.idle = w.opts.IdleTimeout
	// The event store's writer, from where it got to (storebuffer.go).
	w.removeStaleSegments()
	if err := w.openStoreWriter(w.chunkRecords); err != nil {
		return err
	}
	if w.storeW != nil {
		w.storeW.start()
	}
	return nil
}

// removeStaleSnapshots deletes snapshot files the checkpoint does not
// name (left by a crash between writing one and committing it).
func (w *Watcher) removeStaleSnapshots() {
	files, _ := filepath.Glob(filepath.Join(w.opts.StateDir, "snapshot-*"))
	for _, f := range files {
		if filepath.Base(f) != w.meta.Snapshot {
			os.Remove(f)
		}
	}
}

func (w *Watcher) poll(ctx context.Context, i int, s Stream) {
	defer w.pollWG.Done()
	if !w.startStream(ctx, i, s) {
		return
	}
	select {
	case w.batches <- polled{stream: i, started: true, lanes: s.Lanes()}:
	case <-ctx.Done():
		return
	}
	b := backoff.New(retryMin, retryMax)
	// quiet is set once a batch without records has told the loop that
	// the stream's lanes had nothing to give (lanes.go: idle lanes).
	quiet := false
	tellQuiet := func() bool {
		if quiet {
			return true
		}
		quiet = true
		select {
		case w.batches <- polled{stream: i}:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for ctx.Err() == nil {
		recs, err := s.Poll(ctx, pollWait)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// A source that fails is read again, never the end of
			// the watch.
			w.health.failed(i, s.Name(), err, w.opts.Now())
			w.opts.Logf("source %s: %v (retrying)", s.Name(), err)
			if !tellQuiet() || b.Wait(ctx) != nil {
				return
			}
			continue
		}
		w.health.ok(i, s.Name())
		b.Reset()
		if len(recs) == 0 {
			if !tellQuiet() {
				return
			}
			continue
		}
		quiet = false
		select {
		case w.batches <- polled{stream: i, recs: recs}:
		case <-ctx.Done():
			return
		}
	}
}

// run is the watch loop: the only goroutine that touches the engine.
func (w *Watcher) run() {
	err := w.loop()
	w.pollStop()
	w.pollWG.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range w.opts.Streams {
		if serr := s.Shutdown(ctx); serr != nil && err == nil {
			err = fmt.Errorf("source %s: %w", s.Name(), serr)
		}
	}
	for _, s := range w.opts.Sinks {
		if serr := s.Shutdown(ctx); serr != nil && err == nil {
			err = fmt.Errorf("findings sink %s: %w", s.Name(), serr)
		}
	}
	w.stopStoreWriter(ctx)
	if cerr := w.st.close(); cerr != nil && err == nil {
		err = cerr
	}
	w.mu.Lock()
	w.err = err
	w.ready = false
	w.mu.Unlock()
	close(w.done)
}

func (w *Watcher) loop() error {
	flush := time.NewTicker(w.opts.FlushInterval)
	defer flush.Stop()
	for {
		select {
		case <-w.stop:
			if w.aborted {
				return nil
			}
			w.release()
			return w.checkpoint(context.Background(), false)
		case b := <-w.batches:
			if b.err != nil {
				return fmt.Errorf("source %s: %w", w.opts.Streams[b.stream].Name(), b.err)
			}
			if b.started {
				w.addLanes(b.stream, b.lanes)
			}
			w.ingest(b)
			w.release()
		case <-flush.C:
			w.release()
			w.idleAdvance()
			w.flushViews()
			if since := w.opts.Now().Sub(w.ckptAt); since >= w.opts.CheckpointInterval || w.clientsWaiting() {
				// A re-judged state is the new configuration's from its
				// first snapshot on.
				snap := w.opts.Now().Sub(w.snapAt) >= w.opts.SnapshotInterval || w.rejudging
				if err := w.checkpoint(context.Background(), snap); err != nil {
					return err
				}
			}
		}
	}
}

// clientsWaiting reports whether a pushed source has clients waiting for
// their records to be durable (sources.Waited): the loop then checkpoints
// at this flush rather than at the next checkpoint interval.
func (w *Watcher) clientsWaiting() bool {
	for _, s := range w.opts.Streams {
		if ws, ok := s.(sources.Waited); ok && ws.Pending() > 0 {
			return true
		}
	}
	return false
}

// maxReasons bounds the reason labels of twice_malformed_total a source.
const maxReasons = 100

// reasonLabel returns the metric label of a malformed reason.
func (w *Watcher) reasonLabel(src, reason string) string {
	if w.reasons == nil {
		w.reasons = map[string]map[string]bool{}
	}
	seen := w.reasons[src]
	if seen == nil {
		seen = map[string]bool{}
		w.reasons[src] = seen
	}
	if !seen[reason] {
		if len(seen) >= maxReasons {
			return "(other)"
		}
		seen[reason] = true
	}
	return reason
}

// release hands the records the lanes let go to the engine: events, and
// malformed records and gaps as their lanes pass them (lanes.go).
func (w *Watcher) release() {
	w.merge.release(w.opts.Now(), func(l *lane, r Record) {
		switch {
		case r.Malformed != nil:
			if w.takeMalformed(l, r) {
				w.journalRecords++
			}
			return
		case r.Lost != nil:
			w.takeLost(l, r)
			return
		case r.Event == nil:
			return
		}
		ev := r.Event
		w.maxTaken = max(w.maxTaken, ev.Time)
		w.eng.Add(ev)
		w.journalRecords++
		w.journal = appendEventEntry(w.journal, ev)
		w.m.events.WithLabelValues(w.opts.Streams[l.stream].Name(), ev.Kind.String()).Inc()
	})
}

// idleAdvance moves event time on by the wall time since the last record
// arrived, once every lane has been idle for the idle timeout, in steps of
// at least a second; each step goes to the journal like an event.
func (w *Watcher) idleAdvance() {
	if !w.opts.IdleAdvance || len(w.merge.lanes) == 0 {
		return
	}
	now := w.opts.Now()
	var last time.Time
	for _, l := range w.merge.lanes {
		if l.pending() > 0 || !w.merge.isIdle(l, now) {
			return
		}
		if l.lastArrival.After(last) {
			last = l.lastArrival
		}
	}
	wm, ok := w.eng.Watermark()
	if !ok {
		return
	}
	t := w.maxTaken + int64(now.Sub(last))
	if t-wm < int64(time.Second) {
		return
	}
	t -= t % int64(time.Second)
	w.eng.Advance(t)
	w.journal = appendAdvanceEntry(w.journal, t)
}

// flushViews turns the findings that changed into revisions: in the
// outbox for the next checkpoint, and on the API at once.
func (w *Watcher) flushViews() { w.applyViews(w.eng.Changes()) }

// applyViews turns views of findings into revisions (flushViews).
func (w *Watcher) applyViews(views []detectors.View) {
	now := w.opts.Now()
	for _, v := range views {
		old := w.saved[v.Fingerprint]
		rev := uint64(1)
		if old != nil {
			rev = old.Revision + 1
		}
		var line []byte
		var hash string
		if v.Finding == nil {
			if old == nil || old.Resolved {
				continue
			}
			line, hash = resolvedLine(w.meta.NextSeq, rev, now, old.Line)
		} else {
			var err error
			line, hash, err = findingLine(w.meta.NextSeq, rev, StatusFiring, now, v.Finding)
			if err != nil {
				w.opts.Logf("finding %s: %v", v.Fingerprint, err)
				continue
			}
			if old != nil && old.Hash == hash {
				continue
			}
		}
		status := StatusFiring
		if v.Finding == nil {
			status = StatusResolved
		}
		sf := &savedFinding{Revision: rev, Hash: hash, Resolved: v.Finding == nil, Line: line,
			detector: v.Detector, updated: now}
		if v.Finding != nil {
			sf.severity = v.Finding.Severity.String()
		} else {
			sf.severity = old.severity
		}
		w.outbox = append(w.outbox, outboxEntry{seq: w.meta.NextSeq, line: line})
		w.meta.NextSeq++
		w.saved[v.Fingerprint] = sf
		w.changed[v.Fingerprint] = sf
		w.view.set(v.Fingerprint, sf)
		w.standing(old, -1)
		w.standing(sf, +1)
		w.m.revisions.WithLabelValues(v.Detector, status).Inc()
	}
	w.updateGauges()
}

// updateGauges refreshes the metrics read off the engine.
func (w *Watcher) updateGauges() {
	s := w.summary()
	w.m.repeated.Add(float64(s.RepeatedIDs - w.reported.RepeatedIDs))
	w.m.late.Add(float64(s.Late - w.reported.Late))
	w.reported = s
	jobs, keys, entities := w.eng.Open()
	w.m.stateRecords.WithLabelValues("jobs").Set(float64(jobs))
	w.m.stateRecords.WithLabelValues("effect_keys").Set(float64(keys))
	w.m.stateRecords.WithLabelValues("entities").Set(float64(entities))
	w.m.evicted.Set(float64(s.Evicted))
	if t, ok := w.eng.Watermark(); ok {
		w.m.watermarkLag.Set(w.opts.Now().Sub(time.Unix(0, t)).Seconds())
	}
	w.view.setSummary(s)
}

// standing counts a finding's revision in twice_findings: -1 for the
// revision it replaces, +1 for the new one, when they stand.
func (w *Watcher) standing(sf *savedFinding, delta float64) {
	if sf != nil && !sf.Resolved {
		w.m.findings.WithLabelValues(sf.detector, sf.severity).Add(delta)
	}
}

// checkpoint commits the journal, positions and outbox; then publishes
// the outbox and commits positions upstream.
func (w *Watcher) checkpoint(ctx context.Context, snapshot bool) error {
	w.flushViews()
	start := w.opts.Now()
	m := w.meta
	w.saveLanes(m)
	m.Time = start
	totals := countsOf(w.summary())
	m.Totals = &totals
	c := &checkpoint{meta: m, outbox: w.outbox, findings: w.changed}
	oldSnap := m.Snapshot
	if snapshot {
		name, err := w.writeSnapshot()
		if err != nil {
			return err
		}
		m.Snapshot = name
		m.ConfigHash, m.ConfigText = w.opts.Engine.ConfigHash, w.opts.ConfigText
		w.rejudging = false
		c.dropJournal = true
		w.snapAt = start
		w.m.snapshotDur.Observe(w.opts.Now().Sub(start).Seconds())
		w.m.journalBytes.Set(0)
	}
	// The interval's chunk goes to the journal, or with the journal to
	// the history when a snapshot absorbs it (history.go).
	chunk, err := w.journalChunkOf(c, snapshot)
	if err != nil {
		return err
	}
	drop := w.pruneHistory(m)
	if err := w.st.commit(c); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	w.m.committed(snapshot, c.journal != nil)
	if snapshot && oldSnap != "" && oldSnap != m.Snapshot {
		os.Remove(filepath.Join(w.opts.StateDir, oldSnap))
	}
	w.journalCommitted(chunk, snapshot, drop)
	w.journal = w.journal[:0]
	w.outbox = nil
	w.changed = map[string]*savedFinding{}
	w.ckptAt = w.opts.Now()
	w.m.checkpointDur.Observe(w.ckptAt.Sub(start).Seconds())
	w.m.checkpoints.Inc()
	for i, s := range w.opts.Sinks {
		if !w.startSink(ctx, i) {
			continue
		}
		if err := w.publishTo(ctx, s, nil); err != nil {
			w.m.publishErrors.WithLabelValues(s.Name()).Inc()
			w.opts.Logf("%v (retried at the next checkpoint)", err)
		}
	}
	w.commitUpstream(ctx)
	return nil
}

// publishTo publishes the outbox entries the sink does not hold yet.
func (w *Watcher) publishTo(ctx context.Context, s Sink, held map[uint64]bool) error {
	after := w.meta.Published[s.Name()]
	entries, err := w.st.outboxAfter(after)
	if err != nil {
		return err
	}
	var revs []Revision
	last := after
	for _, e := range entries {
		last = e.seq
		if held[e.seq] {
			continue
		}
		revs = append(revs, Revision{Seq: e.seq, Line: e.line, Fingerprint: fingerprintOf(e.line)})
	}
	if len(revs) > 0 {
		if err := s.Publish(ctx, revs); err != nil {
			return fmt.Errorf("findings sink %s: %w", s.Name(), err)
		}
	}
	if last == after {
		return nil
	}
	w.meta.Published[s.Name()] = last
	return w.st.markPublished(w.meta)
}

// writeSnapshot writes the engine's state to a new file, synced.
func (w *Watcher) writeSnapshot() (string, error) {
	name := fmt.Sprintf("snapshot-%020d", w.meta.Checkpoints+1)
	path := filepath.Join(w.opts.StateDir, name)
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	err = w.eng.Snapshot(bw)
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
		err = syncDir(w.opts.StateDir)
	}
	if err != nil {
		os.Remove(path + ".tmp")
		return "", fmt.Errorf("snapshot: %w", err)
	}
	return name, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// fingerprintOf reads the fingerprint out of a revision line.
func fingerprintOf(line []byte) string {
	const key = `"fingerprint":"`
	s := string(line)
	i := strings.Index(s, key)
	if i < 0 {
		return ""
	}
	s = s[i+len(key):]
	if j := strings.IndexByte(s, '"'); j >= 0 {
		return s[:j]
	}
	return ""
}

// abort stops the watch as a crash would: no last checkpoint, nothing
// more published. For tests.
func (w *Watcher) abort() {
	w.mu.Lock()
	w.aborted = true
	w.mu.Unlock()
	_ = w.Shutdown(context.Background())
}
