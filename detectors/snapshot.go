package detectors

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/twicehq/twice/internal/codec"
	"github.com/twicehq/twice/twicetype"
)

// Snapshot format of a Set (all integers varints unless said otherwise):
//
//	shape      horizon, number of rules, enabled detector ids
//	counters   clock, started, ord, evicted; the jobIDs hash set; per
//	           rule, the jobs of its type and those it rendered for; the
//	           scorecard's counters by job type and queue
//	jobs       every *Job reachable from the Set, once each: the records
//	           of the expiry FIFO, then any the jobs map or link index
//	           holds beyond it, then released jobs that timers still
//	           point at. Everything else names a job by its index in this
//	           table, so a shared *Job comes back as one object.
//	jobExp     (at, job index) in FIFO order
//	keys       effect-key records in keyExp order, then keyExp
//	entities   entity records in entityExp order, then entityExp
//	links      the link index, entry by entry, refs in their order
//	detectors  per enabled detector, its id and its own state: lost-job
//	           timers, missing-effect timers per rule (FIFO run, last,
//	           heap array as laid out, so firing order is kept exactly),
//	           retry-storm windows by (queue, start), released
//	           dead-letter queues
//	findings   in order, every field; details as tagged values
//	live       the findings changed since the last Changes
//
// Each record carries a flag for whether its map holds it. Derived state
// is rebuilt, not written: with live views the dead jobs held by queue
// (deadLetter.dead) from the jobs; retry-storm's starts waiting for
// their queue (waiting, pend) from the jobs' storm lists and its nextEnd
// from the windows; stale-execution's held starts (pend) from the jobs.
// Maps are written in a deterministic order (record tables follow the
// expiry FIFOs, link entries their first ref, small maps are sorted), so
// snapshot → restore → snapshot gives the same bytes. Times are written
// relative to the clock. Options are not written: RestoreSet takes the
// same Options.

const snapTag = 'E'

// Snapshot writes the Set's whole state. The Set must not be processing
// an event concurrently. Errors (a finding detail of a type it cannot
// encode) are kept in w.
func (s *Set) Snapshot(w *codec.Writer) {
	e := &setEncoder{w: w, s: s, base: s.clock}
	e.encode()
}

// RestoreSet rebuilds a Set written by Snapshot. opts must be the options
// the snapshotted Set was built with; a different shape (rules, enabled
// detectors, horizon) is an error.
func RestoreSet(opts Options, r *codec.Reader) (*Set, error) {
	d := &setDecoder{r: r, s: New(opts)}
	d.decode()
	if err := r.Err(); err != nil {
		return nil, err
	}
	return d.s, nil
}

type setEncoder struct {
	w      *codec.Writer
	s      *Set
	base   int64
	jobIdx map[*Job]uint64
	jobs   []*Job
}

// time writes t relative to the clock; 0 stays 0.
func (e *setEncoder) time(t int64) {
	if t == 0 {
		e.w.Byte(0)
		return
	}
	d := uint64(t - e.base)
	e.w.Uvarint((d<<1 ^ uint64(int64(d)>>63)) + 1)
}

func (e *setEncoder) job(j *Job) { e.w.Uvarint(e.jobIdx[j]) }

func (e *setEncoder) addJob(j *Job) {
	if _, ok := e.jobIdx[j]; !ok {
		e.jobIdx[j] = uint64(len(e.jobs))
		e.jobs = append(e.jobs, j)
	}
}

func (e *setEncoder) encode() {
	w, s := e.w, e.s
	w.Byte(snapTag)
	w.Varint(s.horizon)
	w.Uvarint(uint64(len(s.rules)))
	w.Uvarint(uint64(len(s.detectors)))
	for _, d := range s.detectors {
		w.String(d.ID())
	}
	w.Varint(s.clock)
	w.Bool(s.started)
	w.Uvarint(s.ord)
	w.Varint(s.evicted)
	s.jobIDs.Snapshot(w)
	for i := range s.rules {
		w.Varint(s.ruleJobs[i])
		w.Varint(s.ruleRendered[i])
	}
	s.score.snapshot(w)

	e.collectJobs()
	// Which records the map holds, found without hashing their ids.
	jobIn := make([]bool, len(e.jobs))
	for id, j := range s.jobs {
		if i, ok := e.jobIdx[j]; ok && id == j.ID {
			jobIn[i] = true
		}
	}
	w.Uvarint(uint64(len(e.jobs)))
	for i, j := range e.jobs {
		e.jobRecord(j, jobIn[i])
	}
	w.Uvarint(uint64(s.jobExp.len()))
	for i := range s.jobExp.len() {
		x := s.jobExp.snapAt(i)
		e.time(x.at)
		e.job(x.rec)
	}

	keys, keyIdx, keyIn := snapRecords(&s.keyExp, s.keys)
	w.Uvarint(uint64(len(keys)))
	for i, k := range keys {
		e.keyRecord(k, keyIn[i])
	}
	snapWriteExpiry(e, &s.keyExp, keyIdx)

	ents, entIdx, entIn := snapRecords(&s.entityExp, s.entities)
	w.Uvarint(uint64(len(ents)))
	for i, x := range ents {
		e.entityRecord(x, entIn[i])
	}
	snapWriteExpiry(e, &s.entityExp, entIdx)

	e.links()

	for _, d := range s.detectors {
		w.String(d.ID())
		switch d := d.(type) {
		case *lostJob:
			snapWriteTimers(e, &d.due, func(x lostTimer) {
				e.job(x.job)
				w.Uvarint(uint64(x.gen))
			})
		case *missingEffect:
			w.Uvarint(uint64(len(d.due)))
			for i := range d.due {
				snapWriteTimers(e, &d.due[i], func(x expectation) {
					e.job(x.job)
					w.String(x.key)
					w.String(x.ref)
					e.time(x.succeeded)
				})
			}
		case *retryStorm:
			ks := make([]stormKey, 0, len(d.windows))
			for k := range d.windows {
				ks = append(ks, k)
			}
			sortStormKeys(ks)
			w.Uvarint(uint64(len(ks)))
			for _, k := range ks {
				sw := d.windows[k]
				w.String(k.queue)
				e.time(k.start)
				w.Varint(sw.attempts)
				e.job(sw.first)
				w.Uvarint(uint64(len(sw.jobs)))
				for _, id := range sw.jobList() {
					w.String(id)
					w.Uvarint(sw.jobs[id])
				}
				w.Uvarint(uint64(len(sw.refs)))
				for _, r := range sw.refs {
					w.Uvarint(r.ord)
					w.String(r.ref)
				}
			}
		case *deadLetter:
			qs := sortedKeys(d.queues)
			w.Uvarint(uint64(len(qs)))
			for _, q := range qs {
				dq := d.queues[q]
				w.String(q)
				w.Sym(dq.jobType)
				w.Varint(dq.count)
				e.time(dq.oldest)
				e.time(dq.newest)
				w.Strings(dq.jobs)
				w.Strings(dq.refs)
				hs := sortedKeys(dq.perHour)
				w.Uvarint(uint64(len(hs)))
				for _, h := range hs {
					w.String(h)
					w.Varint(dq.perHour[h])
				}
			}
		}
	}

	f := s.findings
	w.Uvarint(uint64(len(f.order)))
	for _, fp := range f.order {
		w.String(fp)
		e.finding(f.byFP[fp])
	}
	// Live views: the findings changed since the last Changes. (The dead
	// jobs by queue of dead-letter are derived from the jobs.)
	dirty := make([]liveKey, 0, len(f.dirty))
	for k := range f.dirty {
		dirty = append(dirty, k)
	}
	sort.Slice(dirty, func(i, k int) bool {
		a, b := dirty[i], dirty[k]
		return a.detector < b.detector || (a.detector == b.detector && a.raw < b.raw)
	})
	w.Uvarint(uint64(len(dirty)))
	for _, k := range dirty {
		w.Sym(k.detector)
		w.String(k.raw)
	}
}

// collectJobs numbers every reachable job: the expiry FIFO (every live
// job, in a deterministic order), then any job of the map or the link
// index it lacks, then released jobs that timers still hold.
func (e *setEncoder) collectJobs() {
	s := e.s
	e.jobIdx = make(map[*Job]uint64, len(s.jobs)+64)
	e.jobs = make([]*Job, 0, len(s.jobs)+64)
	for i := range s.jobExp.len() {
		e.addJob(s.jobExp.snapAt(i).rec)
	}
	missing := false
	for _, j := range s.jobs {
		if _, ok := e.jobIdx[j]; !ok {
			missing = true
			break
		}
	}
	for _, le := range s.linked.m {
		if _, ok := e.jobIdx[le.first.job]; !ok {
			missing = true
		}
		for _, r := range le.more {
			if _, ok := e.jobIdx[r.job]; !ok {
				missing = true
			}
		}
	}
	if missing {
		for _, id := range sortedKeys(s.jobs) {
			e.addJob(s.jobs[id])
		}
		for _, k := range sortedKeys(s.linked.m) {
			le := s.linked.m[k]
			e.addJob(le.first.job)
			for _, r := range le.more {
				e.addJob(r.job)
			}
		}
	}
	for _, d := range s.detectors {
		switch d := d.(type) {
		case *lostJob:
			snapEachTimer(&d.due, func(x lostTimer) { e.addJob(x.job) })
		case *missingEffect:
			for i := range d.due {
				snapEachTimer(&d.due[i], func(x expectation) { e.addJob(x.job) })
			}
		case *retryStorm:
			// A window's first job may be released already.
			ks := make([]stormKey, 0, len(d.windows))
			for k := range d.windows {
				ks = append(ks, k)
			}
			sortStormKeys(ks)
			for _, k := range ks {
				e.addJob(d.windows[k].first)
			}
		}
	}
}

// Bits of a job record's flags.
const (
	jReleased = 1 << iota
	jSucceeded
	jOpen
	jEbfRunning
	_ // was jEbfEnded (version 1)
	jStaleWaiting
	jStaleHasEnqSeq
	jLostSeen
	jLostArmed
	jLostStarted
	jInMap
	jHasAttrs
)

func snapFlag(on bool, bit uint64) uint64 {
	if on {
		return bit
	}
	return 0
}

func (e *setEncoder) jobRecord(j *Job, inMap bool) {
	w := e.w
	w.Uvarint(snapFlag(j.released, jReleased) | snapFlag(j.succeeded, jSucceeded) | snapFlag(j.open, jOpen) |
		snapFlag(j.ebf.running, jEbfRunning) |
		snapFlag(j.stale.waiting, jStaleWaiting) | snapFlag(j.stale.hasEnqSeq, jStaleHasEnqSeq) |
		snapFlag(j.lost.seen, jLostSeen) | snapFlag(j.lost.armed, jLostArmed) | snapFlag(j.lost.started, jLostStarted) |
		snapFlag(inMap, jInMap) | snapFlag(j.Attrs != nil, jHasAttrs))
	w.String(j.ID)
	w.Sym(j.Type)
	w.Sym(j.Queue)
	w.String(j.Key)
	w.String(j.Entity)
	if j.Attrs != nil {
		w.Bytes0(j.Attrs)
	}
	e.time(j.started)
	e.time(j.lastSeen)
	w.Strings(j.rendered)
	w.Uvarint(uint64(len(j.replays)))
	for _, r := range j.replays {
		w.Uvarint(r.deadOrd)
		w.Uvarint(r.enqOrd)
	}
	w.Uvarint(j.replayDead)
	w.Uvarint(j.deadOrd)
	e.time(j.deadTime)
	w.String(j.deadRef)
	e.time(j.succTime)
	w.String(j.succRef)
	w.Byte(byte(j.score))
	var late jobLate
	if j.late != nil {
		late = *j.late
	}
	w.Len0(len(late.unlabelled), late.unlabelled == nil)
	for _, k := range late.unlabelled {
		w.Sym(k.detector)
		w.String(k.raw)
	}
	// effect-before-failure
	w.Varint(j.ebf.cur)
	w.Len0(len(j.ebf.ended), j.ebf.ended == nil)
	for _, r := range j.ebf.ended {
		w.Varint(r.lo)
		w.Varint(r.hi)
	}
	w.Len0(len(j.ebf.open), j.ebf.open == nil)
	for _, a := range j.ebf.open {
		w.Varint(a.attempt)
		w.Strings(a.refs)
		e.time(a.first)
	}
	// stale-execution
	e.time(j.stale.enqTime)
	w.String(j.stale.enqRef)
	w.Varint(j.stale.enqSeq)
	w.Len0(len(late.held), late.held == nil)
	for _, h := range late.held {
		w.Uvarint(h.ord)
		e.time(h.time)
		w.String(h.ref)
		w.Varint(h.attempt)
		w.Byte(byte(snapFlag(h.hasAttempt, 1) | snapFlag(h.check, 2) | snapFlag(h.hasDelay, 4)))
		w.Varint(h.enqSeq)
		w.Varint(h.delay)
		e.time(h.enqTime)
		w.String(h.enqRef)
	}
	// retry-storm
	w.Len0(len(late.storm), late.storm == nil)
	for _, x := range late.storm {
		e.time(x.time)
		w.Uvarint(x.ord)
		w.String(x.ref)
	}
	// lost-job
	w.Uvarint(uint64(j.lost.gen))
	e.time(j.lost.last)
	w.Byte(byte(j.lost.lastKind))
	w.String(j.lost.lastRef)
	// missing-effect
	w.Int(j.miss)
}

func (e *setEncoder) keyRecord(k *EffectKey, inMap bool) {
	w := e.w
	w.Byte(byte(snapFlag(k.released, 1) | snapFlag(inMap, 2) | snapFlag(k.impact != nil, 4)))
	w.String(k.Key)
	if m := k.impact; m != nil {
		w.String(m.amount)
		w.String(m.currency)
		w.String(m.customer)
	}
	e.time(k.lastSeen)
	w.Len0(len(k.effects), k.effects == nil)
	for i := range k.effects {
		o := &k.effects[i]
		w.String(o.ref)
		w.Sym(o.effect)
		w.String(o.jobID)
		w.Strings(o.linked)
		e.time(o.time)
		w.Uvarint(o.ord)
		w.Varint(o.attempt)
	}
}

func (e *setEncoder) entityRecord(x *Entity, inMap bool) {
	w := e.w
	w.Byte(byte(snapFlag(x.released, 1) | snapFlag(inMap, 2) |
		snapFlag(x.hasSeq, 4) | snapFlag(x.terminal, 8)))
	w.String(x.Name)
	e.time(x.lastSeen)
	w.Varint(x.maxSeq)
	w.Varint(x.lastSeq)
	w.Len0(len(x.hist), x.hist == nil)
	for _, h := range x.hist {
		w.Uvarint(h.ord)
		w.Varint(h.prevMax)
		w.Bool(h.prevHas)
	}
	ooo := x.ooo
	if ooo == nil {
		ooo = &oooState{}
	}
	w.Varint(ooo.count)
	w.Strings(ooo.refs)
	w.Strings(ooo.jobs)
	w.String(ooo.firstJob)
	e.time(ooo.first)
	e.time(ooo.last)
	e.anys(ooo.pairs)
	e.time(x.termTime)
	w.String(x.termRef)
	w.Uvarint(x.termOrd)
}

// links writes the link index entry by entry, in the order of their
// first refs (job index, rule): deterministic, and no key is hashed.
func (e *setEncoder) links() {
	w, x := e.w, &e.s.linked
	type entry struct {
		job  uint64
		rule int
		key  string
		le   linkEntry
	}
	order := make([]entry, 0, len(x.m))
	for key, le := range x.m {
		order = append(order, entry{e.jobIdx[le.first.job], le.first.rule, key, le})
	}
	slices.SortFunc(order, func(a, b entry) int {
		if c := cmp.Compare(a.job, b.job); c != 0 {
			return c
		}
		if c := cmp.Compare(a.rule, b.rule); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	w.Uvarint(uint64(len(order)))
	ref := func(r linkRef) {
		e.job(r.job)
		w.Uvarint(uint64(r.rule))
	}
	for _, o := range order {
		le := o.le
		w.String(o.key)
		ref(le.first)
		w.Len0(len(le.more), le.more == nil)
		for _, r := range le.more {
			ref(r)
		}
	}
}

func (e *setEncoder) finding(f *twicetype.Finding) {
	w := e.w
	w.Sym(f.Detector)
	w.Byte(byte(f.Severity))
	w.String(f.Subject)
	w.String(f.Fingerprint)
	w.Varint(f.Count)
	w.Varint(f.FirstTime)
	w.Varint(f.LastTime)
	w.Strings(f.Jobs)
	w.Strings(f.Events)
	w.Sym(f.Cause)
	w.String(f.Message)
	w.Sym(f.JobType)
	w.Sym(f.Queue)
	e.anyMap(f.Details)
}

// Tags of values in finding details.
const (
	vNil = iota
	vFalse
	vTrue
	vInt64
	vString
	vFloat64
	vList
	vMap
	vInt
	vStrings
	vUint64
)

func (e *setEncoder) anys(l []any) {
	e.w.Len0(len(l), l == nil)
	for _, v := range l {
		e.value(v)
	}
}

func (e *setEncoder) anyMap(m map[string]any) {
	e.w.Len0(len(m), m == nil)
	var buf [16]string
	ks := buf[:0]
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	for _, k := range ks {
		e.w.String(k)
		e.value(m[k])
	}
}

func (e *setEncoder) value(v any) {
	w := e.w
	switch v := v.(type) {
	case nil:
		w.Byte(vNil)
	case bool:
		w.Byte(byte(snapFlag(v, 1)) + vFalse)
	case int64:
		w.Byte(vInt64)
		w.Varint(v)
	case string:
		w.Byte(vString)
		w.String(v)
	case float64:
		w.Byte(vFloat64)
		w.Float64(v)
	case []any:
		w.Byte(vList)
		e.anys(v)
	case map[string]any:
		w.Byte(vMap)
		e.anyMap(v)
	case int:
		w.Byte(vInt)
		w.Int(v)
	case []string:
		w.Byte(vStrings)
		w.Strings(v)
	case uint64:
		w.Byte(vUint64)
		w.Uvarint(v)
	default:
		w.Fail(fmt.Errorf("snapshot: cannot encode a finding detail of type %T", v))
	}
}

// snapRecords lists the records of an expiry FIFO in its order, then any
// record of the map the FIFO lacks (sorted by key; none in practice). It
// also returns their indexes and which of them the map holds.
func snapRecords[T any](q *fifo[expiry[T]], m map[string]*T) ([]*T, map[*T]uint64, []bool) {
	out := make([]*T, 0, q.len())
	idx := make(map[*T]uint64, q.len())
	add := func(r *T) {
		if _, ok := idx[r]; !ok {
			idx[r] = uint64(len(out))
			out = append(out, r)
		}
	}
	for i := range q.len() {
		add(q.snapAt(i).rec)
	}
	in := make([]bool, len(out), len(out)+1)
	n := 0
	for _, r := range m {
		if i, ok := idx[r]; ok {
			in[i] = true
			n++
		}
	}
	if n < len(m) {
		for _, k := range sortedKeys(m) {
			if _, ok := idx[m[k]]; !ok {
				add(m[k])
				in = append(in, true)
			}
		}
	}
	return out, idx, in
}

func snapWriteExpiry[T any](e *setEncoder, q *fifo[expiry[T]], idx map[*T]uint64) {
	e.w.Uvarint(uint64(q.len()))
	for i := range q.len() {
		x := q.snapAt(i)
		e.time(x.at)
		e.w.Uvarint(idx[x.rec])
	}
}

func snapWriteTimers[T any](e *setEncoder, q *timers[T], payload func(T)) {
	e.w.Uvarint(uint64(q.inOrder.len()))
	for i := range q.inOrder.len() {
		x := q.inOrder.snapAt(i)
		e.time(x.at)
		payload(x.v)
	}
	e.time(q.last)
	e.w.Uvarint(uint64(len(q.heap)))
	for _, x := range q.heap {
		e.time(x.at)
		payload(x.v)
	}
}

func snapEachTimer[T any](q *timers[T], fn func(T)) {
	for i := range q.inOrder.len() {
		fn(q.inOrder.snapAt(i).v)
	}
	for _, x := range q.heap {
		fn(x.v)
	}
}

// at returns the i-th element from the head.
func (q *fifo[T]) snapAt(i int) *T { return &q.buf[(q.head+i)%len(q.buf)] }

// snapFIFO builds a FIFO holding vs in order.
func snapFIFO[T any](vs []T) fifo[T] {
	if len(vs) == 0 {
		return fifo[T]{}
	}
	buf := make([]T, max(16, len(vs)))
	copy(buf, vs)
	return fifo[T]{buf: buf, size: len(vs)}
}

type setDecoder struct {
	r    *codec.Reader
	s    *Set
	base int64
	jobs []*Job
}

func (d *setDecoder) time() int64 {
	v := d.r.Uvarint()
	if v == 0 {
		return 0
	}
	v--
	return d.base + int64(v>>1^-(v&1))
}

func (d *setDecoder) job() *Job {
	i := d.r.Uvarint()
	if d.r.Err() != nil {
		return nil
	}
	if i >= uint64(len(d.jobs)) {
		d.r.Failf("bad job index %d", i)
		return nil
	}
	return d.jobs[i]
}

func (d *setDecoder) decode() {
	r, s := d.r, d.s
	r.Expect(snapTag, "detector state")
	horizon := r.Varint()
	nRules := r.Uvarint()
	n := r.Count(1)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = r.String()
	}
	if r.Err() != nil {
		return
	}
	if horizon != s.horizon || nRules != uint64(len(s.rules)) || !snapEqual(ids, s.Enabled()) {
		r.Fail(fmt.Errorf("%w (horizon %v, %d rules, detectors %v; now %v, %d rules, detectors %v)",
			codec.ErrOtherConfig, fmtDur(horizon), nRules, ids, fmtDur(s.horizon), len(s.rules), s.Enabled()))
		return
	}
	s.clock = r.Varint()
	s.started = r.Bool()
	s.ord = r.Uvarint()
	s.evicted = r.Varint()
	d.base = s.clock
	s.jobIDs.Restore(r)
	for i := range s.rules {
		s.ruleJobs[i] = r.Varint()
		s.ruleRendered[i] = r.Varint()
	}
	s.score.restore(r)

	// Jobs.
	n = r.Count(20)
	d.jobs = make([]*Job, n)
	// New made the maps empty; size them for what comes.
	s.jobs = make(map[string]*Job, n)
	for i := range d.jobs {
		d.jobs[i] = &Job{}
	}
	for _, j := range d.jobs {
		d.jobRecord(j)
		if r.Err() != nil {
			return
		}
	}
	s.jobExp = snapReadExpiry(d, d.jobs)

	// Effect keys.
	keys := make([]*EffectKey, r.Count(4))
	s.keys = make(map[string]*EffectKey, len(keys))
	for i := range keys {
		keys[i] = d.keyRecord()
		if r.Err() != nil {
			return
		}
	}
	s.keyExp = snapReadExpiry(d, keys)
	s.pins = make(map[string]int32)
	for _, k := range keys {
		s.pin(k)
	}

	ents := make([]*Entity, r.Count(14))
	s.entities = make(map[string]*Entity, len(ents))
	for i := range ents {
		ents[i] = d.entityRecord()
		if r.Err() != nil {
			return
		}
	}
	s.entityExp = snapReadExpiry(d, ents)

	d.links()

	for _, det := range s.detectors {
		if id := r.String(); id != det.ID() && r.Err() == nil {
			r.Failf("bad tag: detector %q, want %q", id, det.ID())
		}
		if r.Err() != nil {
			return
		}
		switch det := det.(type) {
		case *lostJob:
			det.due = snapReadTimers(d, func() lostTimer {
				return lostTimer{job: d.job(), gen: r.Uint32()}
			})
		case *missingEffect:
			if n := r.Uvarint(); n != uint64(len(det.due)) && r.Err() == nil {
				r.Failf("%d rule timers, want %d", n, len(det.due))
				return
			}
			for i := range det.due {
				det.due[i] = snapReadTimers(d, func() expectation {
					return expectation{job: d.job(), key: r.String(), ref: r.String(), succeeded: d.time()}
				})
			}
		case *retryStorm:
			n := r.Count(4)
			for range n {
				k := stormKey{queue: r.String(), start: d.time()}
				sw := &stormWindow{attempts: r.Varint(), first: d.job()}
				nj := r.Count(2)
				sw.jobs = make(map[string]uint64, nj)
				for range nj {
					id := r.String()
					sw.jobs[id] = r.Uvarint()
				}
				if nr := r.Count(2); nr > 0 {
					if nr > MaxListed && r.Err() == nil {
						r.Failf("retry-storm window lists %d starts", nr)
						return
					}
					sw.refs = make([]ordRef, nr)
					for i := range sw.refs {
						sw.refs[i] = ordRef{ord: r.Uvarint(), ref: r.String()}
					}
				}
				if r.Err() != nil {
					return
				}
				if det.windows[k] != nil {
					r.Failf("retry-storm window %q@%d twice", k.queue, k.start)
					return
				}
				det.windows[k] = sw
			}
		case *deadLetter:
			n := r.Count(6)
			for range n {
				q := r.String()
				dq := &deadQueue{jobType: r.Sym(), count: r.Varint(), oldest: d.time(), newest: d.time(),
					jobs: r.Strings(), refs: r.Strings()}
				nh := r.Count(2)
				dq.perHour = make(map[string]int64, nh)
				for range nh {
					h := r.String()
					dq.perHour[h] = r.Varint()
				}
				if r.Err() != nil {
					return
				}
				det.queues[q] = dq
			}
		}
	}

	f := s.findings
	n = r.Count(12)
	f.order = make([]string, 0, n)
	for range n {
		fp := r.String()
		fd := d.finding()
		if r.Err() != nil {
			return
		}
		// Findings.add never leaves these nil, and merging relies on it.
		if fd.Jobs == nil || fd.Events == nil || fd.Details == nil {
			r.Failf("finding %s lacks jobs, events or details", fp)
			return
		}
		if _, dup := f.byFP[fp]; dup {
			r.Failf("finding %s twice", fp)
			return
		}
		f.order = append(f.order, fp)
		f.byFP[fp] = fd
		f.made.Add(1)
	}
	n = r.Count(2)
	for range n {
		k := liveKey{detector: r.Sym(), raw: r.String()}
		if f.dirty != nil {
			f.dirty[k] = struct{}{}
		}
	}
	d.derive()
	// With live views, dead-letter holds the held jobs that are dead now.
	if dl := s.dl; dl != nil && r.Err() == nil {
		for _, j := range d.jobs {
			if j.deadOrd != 0 && !j.released && s.jobs[j.ID] == j {
				q := deadQueueName(j)
				if dl.dead[q] == nil {
					dl.dead[q] = make(map[*Job]struct{})
				}
				dl.dead[q][j] = struct{}{}
			}
		}
	}
}

// derive rebuilds the detectors' state that the jobs and windows imply:
// retry-storm's waiting starts by window and its next window end, and
// the FIFOs of starts waiting for a queue or an entity, in order.
func (d *setDecoder) derive() {
	s := d.s
	if s.rs == nil && s.se == nil {
		return
	}
	var storm, stale []stormPend
	for _, j := range d.jobs {
		if j.released {
			continue
		}
		if s.rs != nil {
			for _, x := range j.stormStarts() {
				storm = append(storm, stormPend{job: j, ord: x.ord, time: x.time})
				s.rs.waiting[s.rs.windowStart(x.time)]++
			}
		}
		if s.se != nil {
			for _, h := range j.heldStarts() {
				if h.check {
					stale = append(stale, stormPend{job: j, ord: h.ord, time: h.time})
				}
			}
		}
	}
	byOrd := func(a, b stormPend) int { return cmp.Compare(a.ord, b.ord) }
	if rs := s.rs; rs != nil {
		slices.SortFunc(storm, byOrd)
		rs.pend = snapFIFO(storm)
		for k := range rs.windows {
			if rs.waiting[k.start] == 0 {
				rs.nextEnd = min(rs.nextEnd, k.start+int64(rs.st.Window))
			}
		}
	}
	if se := s.se; se != nil {
		slices.SortFunc(stale, byOrd)
		ps := make([]stalePend, len(stale))
		for i, x := range stale {
			ps[i] = stalePend(x)
		}
		se.pend = snapFIFO(ps)
	}
}

func snapEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (d *setDecoder) jobRecord(j *Job) {
	r, s := d.r, d.s
	fl := r.Uvarint()
	j.ID = r.String()
	j.Type = r.Sym()
	j.Queue = r.Sym()
	j.Key = r.String()
	j.Entity = r.String()
	if fl&jHasAttrs != 0 {
		j.Attrs = r.Bytes0()
		if j.Attrs == nil {
			j.Attrs = []byte{}
		}
	}
	j.started = d.time()
	j.lastSeen = d.time()
	j.rendered = r.Strings()
	if j.rendered != nil && len(j.rendered) != len(s.rules) && r.Err() == nil {
		r.Failf("job renders %d keys for %d rules", len(j.rendered), len(s.rules))
		return
	}
	if n := r.Count(2); n > 0 {
		j.replays = make([]replay, n)
		for i := range j.replays {
			j.replays[i] = replay{deadOrd: r.Uvarint(), enqOrd: r.Uvarint()}
		}
	}
	j.replayDead = r.Uvarint()
	j.deadOrd = r.Uvarint()
	j.deadTime = d.time()
	j.deadRef = r.String()
	j.succTime = d.time()
	j.succRef = r.String()
	j.score = scoreMark(r.Byte())
	if n, isNil := r.Len0(2); !isNil {
		l := j.lateOf()
		l.unlabelled = make([]liveKey, n)
		for i := range l.unlabelled {
			l.unlabelled[i] = liveKey{detector: r.Sym(), raw: r.String()}
		}
	}
	j.ebf.cur = r.Varint()
	if n, isNil := r.Len0(2); !isNil {
		j.ebf.ended = make(attemptSet, n)
		for i := range j.ebf.ended {
			j.ebf.ended[i] = attemptRange{lo: r.Varint(), hi: r.Varint()}
		}
	}
	if n, isNil := r.Len0(3); !isNil {
		j.ebf.open = make([]attemptEffects, n)
		for i := range j.ebf.open {
			j.ebf.open[i] = attemptEffects{attempt: r.Varint(), refs: r.Strings(), first: d.time()}
		}
	}
	j.stale.enqTime = d.time()
	j.stale.enqRef = r.String()
	j.stale.enqSeq = r.Varint()
	if n, isNil := r.Len0(8); !isNil {
		l := j.lateOf()
		l.held = make([]heldStart, n)
		for i := range l.held {
			h := heldStart{ord: r.Uvarint(), time: d.time(), ref: r.String(), attempt: r.Varint()}
			fl := r.Byte()
			h.hasAttempt, h.check, h.hasDelay = fl&1 != 0, fl&2 != 0, fl&4 != 0
			h.enqSeq, h.delay, h.enqTime, h.enqRef = r.Varint(), r.Varint(), d.time(), r.String()
			l.held[i] = h
		}
	}
	if n, isNil := r.Len0(3); !isNil {
		l := j.lateOf()
		l.storm = make([]stormStart, n)
		for i := range l.storm {
			l.storm[i] = stormStart{time: d.time(), ord: r.Uvarint(), ref: r.String()}
		}
	}
	j.lost.gen = r.Uint32()
	j.lost.last = d.time()
	j.lost.lastKind = twicetype.Kind(r.Byte())
	j.lost.lastRef = r.String()
	j.miss = r.Int()

	j.released = fl&jReleased != 0
	j.succeeded = fl&jSucceeded != 0
	j.open = fl&jOpen != 0
	j.ebf.running = fl&jEbfRunning != 0
	j.stale.waiting = fl&jStaleWaiting != 0
	j.stale.hasEnqSeq = fl&jStaleHasEnqSeq != 0
	j.lost.seen = fl&jLostSeen != 0
	j.lost.armed = fl&jLostArmed != 0
	j.lost.started = fl&jLostStarted != 0
	if fl&jInMap != 0 && r.Err() == nil {
		if s.jobs[j.ID] != nil {
			r.Failf("job %q twice", j.ID)
			return
		}
		s.jobs[j.ID] = j
	}
}

func (d *setDecoder) keyRecord() *EffectKey {
	r := d.r
	fl := r.Byte()
	k := &EffectKey{Key: r.String()}
	if fl&4 != 0 {
		k.impact = &keyImpact{amount: r.String(), currency: r.String(), customer: r.String()}
	}
	k.lastSeen = d.time()
	k.released = fl&1 != 0
	if n, isNil := r.Len0(7); !isNil {
		k.effects = make([]effectObs, n)
		for i := range k.effects {
			k.effects[i] = effectObs{ref: r.String(), effect: r.Sym(), jobID: r.String(), linked: r.Strings(),
				time: d.time(), ord: r.Uvarint(), attempt: r.Varint()}
		}
	}
	if fl&2 != 0 && r.Err() == nil {
		if d.s.keys[k.Key] != nil {
			r.Failf("effect key %q twice", k.Key)
		}
		d.s.keys[k.Key] = k
	}
	return k
}

func (d *setDecoder) entityRecord() *Entity {
	r := d.r
	fl := r.Byte()
	x := &Entity{Name: r.String()}
	x.lastSeen = d.time()
	x.maxSeq = r.Varint()
	x.lastSeq = r.Varint()
	if n, isNil := r.Len0(3); !isNil {
		x.hist = make([]seqStep, n)
		for i := range x.hist {
			x.hist[i] = seqStep{ord: r.Uvarint(), prevMax: r.Varint(), prevHas: r.Bool()}
		}
	}
	var ooo oooState
	ooo.count = r.Varint()
	ooo.refs = r.Strings()
	ooo.jobs = r.Strings()
	ooo.firstJob = r.String()
	ooo.first = d.time()
	ooo.last = d.time()
	ooo.pairs = d.anys(0)
	if ooo.count != 0 {
		x.ooo = &ooo
	}
	x.termTime = d.time()
	x.termRef = r.String()
	x.termOrd = r.Uvarint()
	x.released = fl&1 != 0
	x.hasSeq = fl&4 != 0
	x.terminal = fl&8 != 0
	if fl&2 != 0 && r.Err() == nil {
		if d.s.entities[x.Name] != nil {
			r.Failf("entity %q twice", x.Name)
		}
		d.s.entities[x.Name] = x
	}
	return x
}

func (d *setDecoder) links() {
	r, x := d.r, &d.s.linked
	ref := func() linkRef {
		j := d.job()
		rule := r.Uvarint()
		if r.Err() == nil && rule >= uint64(len(d.s.rules)) {
			r.Failf("bad rule index %d", rule)
		}
		return linkRef{job: j, rule: int(min(rule, math.MaxInt32))}
	}
	n := r.Count(3)
	x.m = make(map[string]linkEntry, n)
	for range n {
		key := r.String()
		le := linkEntry{first: ref()}
		if m, isNil := r.Len0(2); !isNil {
			le.more = make([]linkRef, m)
			for i := range le.more {
				le.more[i] = ref()
			}
		}
		if r.Err() != nil {
			return
		}
		x.m[key] = le
	}
}

func (d *setDecoder) finding() *twicetype.Finding {
	r := d.r
	return &twicetype.Finding{
		Detector: r.Sym(), Severity: twicetype.Severity(r.Byte()), Subject: r.String(),
		Fingerprint: r.String(), Count: r.Varint(), FirstTime: r.Varint(), LastTime: r.Varint(),
		Jobs: r.Strings(), Events: r.Strings(), Cause: r.Sym(), Message: r.String(),
		JobType: r.Sym(), Queue: r.Sym(), Details: d.anyMap(0),
	}
}

// snapMaxDepth bounds the nesting of detail values.
const snapMaxDepth = 16

func (d *setDecoder) anys(depth int) []any {
	n, isNil := d.r.Len0(1)
	if isNil {
		return nil
	}
	l := make([]any, n)
	for i := range l {
		l[i] = d.value(depth)
	}
	return l
}

func (d *setDecoder) anyMap(depth int) map[string]any {
	n, isNil := d.r.Len0(2)
	if isNil {
		return nil
	}
	m := make(map[string]any, n)
	for range n {
		k := d.r.String()
		m[k] = d.value(depth)
	}
	return m
}

func (d *setDecoder) value(depth int) any {
	r := d.r
	if depth > snapMaxDepth {
		r.Failf("finding details nested too deep")
		return nil
	}
	switch tag := r.Byte(); tag {
	case vNil:
		return nil
	case vFalse:
		return false
	case vTrue:
		return true
	case vInt64:
		return r.Varint()
	case vString:
		return r.String()
	case vFloat64:
		return r.Float64()
	case vList:
		return d.anys(depth + 1)
	case vMap:
		return d.anyMap(depth + 1)
	case vInt:
		return r.Int()
	case vStrings:
		return r.Strings()
	case vUint64:
		return r.Uvarint()
	default:
		r.Failf("bad tag %#x for a detail value", tag)
		return nil
	}
}

func snapReadExpiry[T any](d *setDecoder, recs []*T) fifo[expiry[T]] {
	r := d.r
	n := r.Count(2)
	xs := make([]expiry[T], n)
	for i := range xs {
		xs[i].at = d.time()
		k := r.Uvarint()
		if r.Err() != nil {
			return fifo[expiry[T]]{}
		}
		if k >= uint64(len(recs)) {
			r.Failf("bad record index %d", k)
			return fifo[expiry[T]]{}
		}
		xs[i].rec = recs[k]
	}
	return snapFIFO(xs)
}

func snapReadTimers[T any](d *setDecoder, payload func() T) timers[T] {
	r := d.r
	var q timers[T]
	n := r.Count(2)
	in := make([]timer[T], n)
	for i := range in {
		in[i].at = d.time()
		in[i].v = payload()
		if r.Err() != nil {
			return timers[T]{}
		}
	}
	q.inOrder = snapFIFO(in)
	q.last = d.time()
	if n := r.Count(2); n > 0 {
		q.heap = make([]timer[T], n)
		for i := range q.heap {
			q.heap[i].at = d.time()
			q.heap[i].v = payload()
		}
	}
	if r.Err() != nil {
		return timers[T]{}
	}
	return q
}
