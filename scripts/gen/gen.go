package main

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// Options control the generator.
type Options struct {
	// Events is the number of lines to write, repeated copies and
	// malformed lines included.
	Events int64
	// Seed seeds math/rand/v2; the same options give the same bytes.
	Seed uint64
	// JobInterval is the mean event time between two job starts.
	JobInterval time.Duration
}

func defaultOptions() Options {
	return Options{Events: 1_000_000, Seed: 1, JobInterval: 1400 * time.Millisecond}
}

// startMs is 2026-11-01T00:00:00Z in Unix milliseconds: event time starts
// here, never at the wall clock.
var startMs = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// Fault categories. Each is counted in Stats when its defining line is
// written, so the counts describe the file, not the plan.
const (
	tagNone = iota
	// Job faults.
	tagCrashRetry          // effect, crash, retry repeats the effect: duplicate-effect (redelivery) + effect-before-failure
	tagDupEnqueue          // one key enqueued as two jobs: duplicate-effect (duplicate-enqueue)
	tagDeadReplay          // effect, job.dead, replayed: duplicate-effect (replay) + effect-before-failure
	tagMissingEffect       // succeeded without its effect: missing-effect
	tagDupExecution        // started again after success: duplicate-execution
	tagOutOfOrder          // lower seq after a higher one on an entity: out-of-order
	tagStaleStart          // first start > 15m after enqueue: stale-execution
	tagStaleSeq            // entity moved past the enqueued seq before start: stale-execution
	tagEffectAfterTerminal // receipt after the order was cancelled: effect-after-terminal
	tagLostNeverStarted    // enqueued, never started: lost-job (never-started)
	tagLostStuck           // started, never finished: lost-job (stuck)
	tagRetryStorm          // a burst of fast retries on webhooks: retry-storm
	tagDeadLetter          // dead and never replayed: dead-letter
	tagOrphanDup           // an effect twice with no job behind it: duplicate-effect (unknown)
	// Normal behaviour, counted for information.
	tagTransientRetry // failed before its effect, retried, succeeded: no finding
	tagDiscarded      // failed for good and discarded: no finding
	numTags
)

var tagNames = [numTags]string{
	tagCrashRetry:          "crash_retry",
	tagDupEnqueue:          "dup_enqueue",
	tagDeadReplay:          "dead_replay",
	tagMissingEffect:       "missing_effect",
	tagDupExecution:        "dup_execution",
	tagOutOfOrder:          "out_of_order",
	tagStaleStart:          "stale_start",
	tagStaleSeq:            "stale_seq",
	tagEffectAfterTerminal: "effect_after_terminal",
	tagLostNeverStarted:    "lost_never_started",
	tagLostStuck:           "lost_stuck",
	tagRetryStorm:          "retry_storm",
	tagDeadLetter:          "dead_letter",
	tagOrphanDup:           "orphan_dup",
	tagTransientRetry:      "transient_retry",
	tagDiscarded:           "discarded",
}

// Malformed line kinds.
const (
	malBadJSON = iota
	malMissingTS
	malAttemptZero
	malUnknownKind
	malNullField
	malWrongType
	numMal
)

var malNames = [numMal]string{"bad_json", "missing_ts", "attempt_0", "unknown_kind", "null_field", "wrong_type"}

// Stats describe what Generate wrote.
type Stats struct {
	Lines, Bytes int64
	// Events counts the distinct valid events (lines less repeated copies
	// and malformed lines).
	Events   int64
	Jobs     int64 // distinct job ids written
	FirstMs  int64
	LastMs   int64
	Faults   [numTags]int64
	Repeated int64
	Reorders int64
	Mal      [numMal]int64
}

// Malformed is the total of malformed lines.
func (s *Stats) Malformed() int64 {
	var n int64
	for _, v := range s.Mal {
		n += v
	}
	return n
}

// Fault returns the count of the named fault category, and whether the
// name is known.
func (s *Stats) Fault(name string) (int64, bool) {
	for i, n := range tagNames {
		if n == name && n != "" {
			return s.Faults[i], true
		}
	}
	return 0, false
}

// String is the one-line summary printed to stderr.
func (s *Stats) String() string {
	var b strings.Builder
	span := time.Duration(s.LastMs-s.FirstMs) * time.Millisecond
	fmt.Fprintf(&b, "gen: lines=%d bytes=%d (%.1f B/line) events=%d jobs=%d span=%s (%.2f days)",
		s.Lines, s.Bytes, float64(s.Bytes)/math.Max(1, float64(s.Lines)), s.Events, s.Jobs,
		span, span.Hours()/24)
	b.WriteString(" faults:")
	for i := 1; i < numTags; i++ {
		fmt.Fprintf(&b, " %s=%d", tagNames[i], s.Faults[i])
	}
	fmt.Fprintf(&b, " input: repeated_lines=%d reordered_swaps=%d malformed=%d", s.Repeated, s.Reorders, s.Malformed())
	for i, n := range malNames {
		fmt.Fprintf(&b, " malformed_%s=%d", n, s.Mal[i])
	}
	return b.String()
}

// Event kinds.
const (
	kEnqueued = iota
	kStarted
	kSucceeded
	kFailed
	kDead
	kDiscarded
	kEffect
	kState
)

var kindNames = [...]string{"job.enqueued", "job.started", "job.succeeded", "job.failed", "job.dead", "job.discarded", "effect", "state"}

// Job types, and for each its queue, key prefix and effect.
const (
	jtNone = iota
	jtSendReceipt
	jtChargeCard
	jtDeliverWebhook
	jtExportReport
	numJT
)

var (
	jobTypes  = [numJT]string{"", "SendReceipt", "ChargeCard", "DeliverWebhook", "ExportReport"}
	queues    = [numJT]string{"", "emails", "payments", "webhooks", "exports"}
	jtKeyKind = [numJT]uint8{0, kkPayment, kkPayment, kkEvt, kkReport}
	jtEffect  = [numJT]uint8{0, efEmail, efLedger, efWebhook, efFile}
)

// Key kinds: the prefix of a job key.
const (
	kkNone = iota
	kkPayment
	kkEvt
	kkReport
	kkManual
)

var keyPrefixes = [...]string{"", "payment:", "evt:", "report:", "manual:"}

// Effects: the effect type and the prefix of its effect_key.
const (
	efNone = iota
	efEmail
	efLedger
	efWebhook
	efFile
)

var (
	effectNames    = [...]string{"", "email.sent", "ledger.insert", "webhook.delivered", "file.stored"}
	effectPrefixes = [...]string{"", "receipt/", "ledger/", "webhook/", "export/"}
)

// Entity states (attrs.status); refunded and cancelled are terminal.
const (
	stPlaced = iota
	stPaid
	stUpdated
	stShipped
	stDelivered
	stRefunded
	stCancelled
)

var statusNames = [...]string{"placed", "paid", "updated", "shipped", "delivered", "refunded", "cancelled"}

// Error messages on job.failed.
const (
	errTimeout = iota
	errReset
	errKilled
	errDeclined
	err503
	err500
	errDeleted
	errDeadline
)

var errorNames = [...]string{"Net::ReadTimeout", "connection reset by peer", "worker killed (SIGKILL)", "card_declined", "HTTP 503", "HTTP 500", "report deleted", "context deadline exceeded"}

// Event flags: which optional fields an event carries.
const (
	fJobType = 1 << iota
	fQueue
	fJobID
	fAttempt
	fKey
	fEntity
	fSeq
	fTerminal
	fRetry
	fRetryTrue
	fError
	fStatus
	fReplay // not rendered: a job.enqueued of a job already counted
)

// event is one planned event; strings are rendered when it is written.
type event struct {
	t       int64 // Unix ms
	ord     uint64
	jobID   int64
	key     int64
	entity  int64
	attempt int32
	seq     int32
	flags   uint16
	kind    uint8
	jt      uint8
	keyKind uint8
	effect  uint8
	status  uint8 // state status, or error index on job.failed
	tag     uint8 // fault counted when this line is written
}

func (a *event) less(b *event) bool {
	return a.t < b.t || (a.t == b.t && a.ord < b.ord)
}

// evHeap is a binary min-heap of events by (t, ord).
type evHeap []event

func (h *evHeap) push(e event) {
	*h = append(*h, e)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !s[i].less(&s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *evHeap) pop() event {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && s[r].less(&s[l]) {
			m = r
		}
		if !s[m].less(&s[i]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// job is one job being planned.
type job struct {
	id      int64
	jt      uint8
	key     int64
	keyKind uint8
	ent     *entity // nil when the job is about no entity
	seq     int32   // entity seq the job was enqueued with
	effSeq  int32   // seq carried by its effect; -1 for none
	// replayed: enqueued again after job.dead (not a new job).
	replayed bool
}

// entity is an order whose state versions (seq) the flow advances.
type entity struct {
	id  int64
	seq int32
}

type gen struct {
	r          *rand.Rand
	h          evHeap
	ord        uint64
	out        *output
	meanFlowMs float64

	nextJob, nextOrder, nextPayment, nextEvt, nextReport, nextManual int64
	flows                                                            int64
	forced                                                           bool // this flow forces a fault
}

// Generate writes opts.Events lines to w.
func Generate(w *bufio.Writer, opts Options) (Stats, error) {
	r := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))
	g := &gen{
		r:           r,
		h:           make(evHeap, 0, 4096),
		nextJob:     100_000,
		nextOrder:   40_000,
		nextPayment: 700_000,
		nextEvt:     3_000_000,
		nextReport:  9_000,
		nextManual:  1,
		// A payment flow runs three jobs and an export flow one; 3 of 4
		// flows are payments, so a flow starts every 2.5 job intervals.
		meanFlowMs: 2.5 * float64(opts.JobInterval.Milliseconds()),
	}
	g.out = newOutput(w, r, opts.Events)
	t := startMs
	for g.out.st.Lines < opts.Events {
		for len(g.h) > 0 && g.h[0].t < t && g.out.st.Lines < opts.Events {
			e := g.h.pop()
			g.out.push(&e)
		}
		if g.out.st.Lines >= opts.Events {
			break
		}
		g.flow(t)
		t += 1 + int64(g.r.ExpFloat64()*g.meanFlowMs)
	}
	return g.out.st, g.out.err
}

// --- random helpers ---

// between returns a uniform int64 in [lo, hi].
func (g *gen) between(lo, hi int64) int64 { return lo + g.r.Int64N(hi-lo+1) }

// logn returns a log-normal duration in ms around median, clamped.
func (g *gen) logn(median, sigma float64, lo, hi int64) int64 {
	v := int64(median * math.Exp(sigma*g.r.NormFloat64()))
	return min(max(v, lo), hi)
}

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

func (g *gen) latency() int64 {
	if g.chance(0.01) { // a short backlog
		return g.between(2_000, 120_000)
	}
	return g.logn(40, 1.2, 2, 60_000)
}

func (g *gen) duration(jt uint8) int64 {
	switch jt {
	case jtSendReceipt:
		return g.logn(250, 0.8, 5, 30_000)
	case jtChargeCard:
		return g.logn(400, 0.7, 5, 30_000)
	case jtDeliverWebhook:
		return g.logn(150, 1.0, 3, 30_000)
	default:
		return g.logn(4000, 0.7, 200, 120_000)
	}
}

// --- event constructors ---

func (g *gen) emit(e event) {
	g.ord++
	e.ord = g.ord
	g.h.push(e)
}

func (g *gen) newJob(jt uint8, key int64, ent *entity) *job {
	g.nextJob++
	j := &job{id: g.nextJob, jt: jt, key: key, keyKind: jtKeyKind[jt], ent: ent, effSeq: -1}
	if ent != nil {
		j.seq = ent.seq
		j.effSeq = ent.seq
	}
	return j
}

func (g *gen) enqueued(j *job, t int64, tag uint8) {
	e := event{t: t, kind: kEnqueued, jt: j.jt, jobID: j.id, key: j.key, keyKind: j.keyKind, tag: tag,
		flags: fJobType | fQueue | fJobID | fKey}
	if j.ent != nil {
		e.entity, e.seq = j.ent.id, j.seq
		e.flags |= fEntity | fSeq
	}
	if j.replayed {
		e.flags |= fReplay
	}
	g.emit(e)
}

func (g *gen) started(j *job, t int64, attempt int32, tag uint8) {
	g.emit(event{t: t, kind: kStarted, jt: j.jt, jobID: j.id, attempt: attempt, tag: tag,
		flags: fQueue | fJobID | fAttempt})
}

func (g *gen) succeeded(j *job, t int64, attempt int32, tag uint8) {
	g.emit(event{t: t, kind: kSucceeded, jt: j.jt, jobID: j.id, attempt: attempt, tag: tag,
		flags: fJobID | fAttempt})
}

func (g *gen) failed(j *job, t int64, attempt int32, retry bool, errIdx uint8, tag uint8) {
	e := event{t: t, kind: kFailed, jt: j.jt, jobID: j.id, attempt: attempt, status: errIdx, tag: tag,
		flags: fJobID | fAttempt | fRetry | fError}
	if retry {
		e.flags |= fRetryTrue
	}
	g.emit(e)
}

func (g *gen) dead(j *job, t int64, tag uint8) {
	g.emit(event{t: t, kind: kDead, jt: j.jt, jobID: j.id, tag: tag, flags: fQueue | fJobID})
}

func (g *gen) discarded(j *job, t int64, tag uint8) {
	g.emit(event{t: t, kind: kDiscarded, jt: j.jt, jobID: j.id, tag: tag, flags: fJobID})
}

// effect emits the job's effect. Most carry job_id and attempt; some only
// the effect_key, linked by the expectation template (never for exports,
// which have no expectation).
func (g *gen) effect(j *job, t int64, attempt int32, tag uint8) {
	e := event{t: t, kind: kEffect, effect: jtEffect[j.jt], key: j.key, keyKind: j.keyKind, tag: tag}
	if j.jt == jtExportReport || g.chance(0.7) {
		e.jobID, e.attempt = j.id, attempt
		e.flags |= fJobID | fAttempt
	}
	if j.ent != nil {
		e.entity = j.ent.id
		e.flags |= fEntity
		// Taps often do not know the version an effect acted on.
		if j.effSeq >= 0 && (tag == tagOutOfOrder || g.chance(0.6)) {
			e.seq = j.effSeq
			e.flags |= fSeq
		}
	}
	g.emit(e)
}

func (g *gen) state(ent *entity, t int64, seq int32, status uint8, tag uint8) {
	e := event{t: t, kind: kState, entity: ent.id, seq: seq, status: status, tag: tag,
		flags: fEntity | fSeq | fStatus}
	if status == stRefunded || status == stCancelled {
		e.flags |= fTerminal
	}
	g.emit(e)
}

// --- flows ---

// Per payment flow probability of each job or flow fault. A payment flow
// runs three jobs, so per job these are about a third: 0.2–0.7 %.
var faultProb = [numTags]float64{
	tagCrashRetry:          0.020,
	tagDupEnqueue:          0.010,
	tagDeadReplay:          0.006,
	tagMissingEffect:       0.012,
	tagDupExecution:        0.010,
	tagOutOfOrder:          0.008,
	tagStaleStart:          0.008,
	tagStaleSeq:            0.006,
	tagEffectAfterTerminal: 0.006,
	tagLostNeverStarted:    0.005,
	tagLostStuck:           0.005,
	tagDeadLetter:          0.006,
	tagOrphanDup:           0.002,
}

// Which job of a payment flow each fault may hit (bit per job type).
var faultTargets = [numTags]uint8{
	tagCrashRetry:          1<<jtChargeCard | 1<<jtSendReceipt | 1<<jtDeliverWebhook,
	tagDupEnqueue:          1<<jtChargeCard | 1<<jtSendReceipt | 1<<jtDeliverWebhook,
	tagDeadReplay:          1<<jtChargeCard | 1<<jtSendReceipt | 1<<jtDeliverWebhook,
	tagMissingEffect:       1<<jtChargeCard | 1<<jtSendReceipt | 1<<jtDeliverWebhook,
	tagDupExecution:        1<<jtSendReceipt | 1<<jtDeliverWebhook, // after ChargeCard the order moves on: that would be stale too
	tagStaleStart:          1<<jtChargeCard | 1<<jtSendReceipt | 1<<jtDeliverWebhook,
	tagStaleSeq:            1 << jtChargeCard,
	tagEffectAfterTerminal: 1 << jtSendReceipt,
	tagLostNeverStarted:    1<<jtChargeCard | 1<<jtSendReceipt | 1<<jtDeliverWebhook,
	tagLostStuck:           1<<jtChargeCard | 1<<jtSendReceipt | 1<<jtDeliverWebhook,
	tagDeadLetter:          1<<jtChargeCard | 1<<jtSendReceipt | 1<<jtDeliverWebhook,
}

// Early flows that force each fault once, so that even a small file has
// every category: flow forcedBase+forcedStep*i gets fault i.
const (
	forcedBase = 20
	forcedStep = 9
	stormEvery = 15_000 // mean flows between two retry storms
)

func (g *gen) pickFault() (fault uint8, target uint8) {
	if n := g.flows - forcedBase; n >= 0 && n < forcedStep*tagOrphanDup {
		if n%forcedStep == 0 && 1+n/forcedStep != tagRetryStorm {
			fault = uint8(1 + n/forcedStep)
		}
	} else {
		u := g.r.Float64()
		for i := uint8(1); i < numTags; i++ {
			if u < faultProb[i] {
				fault = i
				break
			}
			u -= faultProb[i]
		}
	}
	if m := faultTargets[fault]; m != 0 {
		var cand [3]uint8
		n := 0
		for _, jt := range [...]uint8{jtChargeCard, jtSendReceipt, jtDeliverWebhook} {
			if m&(1<<jt) != 0 {
				cand[n] = jt
				n++
			}
		}
		target = cand[g.r.IntN(n)]
	}
	return fault, target
}

func (g *gen) flow(t int64) {
	g.flows++
	if g.flows == forcedBase+forcedStep*int64(tagRetryStorm) || (g.flows > forcedBase && g.r.IntN(stormEvery) == 0) {
		g.storm(t)
	}
	g.forced = g.flows >= forcedBase && g.flows < forcedBase+forcedStep*tagOrphanDup
	if g.flows == forcedBase-1 || (!g.forced && g.r.IntN(4) == 0) {
		g.exportFlow(t)
		return
	}
	g.paymentFlow(t)
}

func (g *gen) exportFlow(t int64) {
	g.nextReport++
	j := g.newJob(jtExportReport, g.nextReport, nil)
	g.enqueued(j, t, 0)
	t += g.latency()
	attempt := int32(1)
	if g.flows == forcedBase-1 || g.chance(0.005) {
		g.started(j, t, 1, 0)
		t += g.duration(j.jt) / 4
		g.failed(j, t, 1, false, errDeleted, 0)
		g.discarded(j, t+1, tagDiscarded)
		return
	}
	t = g.transient(j, t, &attempt)
	d := g.duration(j.jt)
	g.started(j, t, attempt, 0)
	g.effect(j, t+d*9/10, attempt, 0)
	g.succeeded(j, t+d, attempt, 0)
}

// transient maybe fails one attempt before its effect and returns when
// the retry starts; normal behaviour, not a fault.
func (g *gen) transient(j *job, t int64, attempt *int32) int64 {
	if !g.chance(0.02) {
		return t
	}
	g.started(j, t, *attempt, 0)
	t += g.duration(j.jt) / 2
	e := failError(j.jt)
	if g.r.IntN(2) == 0 {
		e = errReset
	}
	g.failed(j, t, *attempt, true, e, tagTransientRetry)
	*attempt++
	return t + g.between(15_000, 60_000)
}

// failError is the usual failure message of a job type.
func failError(jt uint8) uint8 {
	switch jt {
	case jtChargeCard:
		return errDeclined
	case jtDeliverWebhook:
		return err503
	case jtExportReport:
		return errDeadline
	}
	return errTimeout
}

// runJob plans one job enqueued at t with the given fault and returns
// when it ended and whether it succeeded (so the flow goes on).
func (g *gen) runJob(j *job, t int64, fault uint8) (end int64, ok bool) {
	if fault == tagLostNeverStarted {
		g.enqueued(j, t, tagLostNeverStarted)
		return t, false
	}
	g.enqueued(j, t, 0)
	switch fault {
	case tagStaleStart:
		t += g.between(16*60_000, 45*60_000)
	case tagStaleSeq:
		// The order is updated while the job waits: it starts on an old
		// version. Its effect carries no seq (that would be out-of-order).
		wait := g.between(1_000, 8_000)
		j.ent.seq++
		g.state(j.ent, t+wait/2, j.ent.seq, stUpdated, 0)
		j.effSeq = -1
		t += wait
	default:
		t += g.latency()
	}
	startTag := uint8(0)
	if fault == tagStaleStart || fault == tagStaleSeq {
		startTag = fault
	}
	attempt := int32(1)
	switch fault {
	case tagLostStuck:
		g.started(j, t, 1, tagLostStuck)
		return t, false
	case tagDeadLetter:
		n := int32(g.between(2, 4))
		for ; attempt <= n; attempt++ {
			g.started(j, t, attempt, startTag)
			t += g.duration(j.jt) / 2
			g.failed(j, t, attempt, attempt < n, failError(j.jt), 0)
			if attempt < n {
				t += g.between(15_000, 120_000)
			}
		}
		g.dead(j, t+1, tagDeadLetter)
		return t, false
	case tagCrashRetry:
		d := g.duration(j.jt)
		g.started(j, t, 1, startTag)
		g.effect(j, t+d/2, 1, 0)
		if g.r.IntN(2) == 0 {
			g.failed(j, t+d, 1, true, errKilled, 0)
			t += d + g.between(15_000, 60_000)
		} else { // no failure seen: redelivered after the visibility timeout
			t += g.between(30_000, 300_000)
		}
		attempt = 2
	case tagDeadReplay:
		d := g.duration(j.jt)
		g.started(j, t, 1, startTag)
		g.effect(j, t+d/2, 1, 0)
		g.failed(j, t+d, 1, false, errTimeout, 0)
		g.dead(j, t+d+1, 0)
		// An operator replays it (soon in the early forced flows, so that
		// a small file has one).
		if g.forced {
			t += d + g.between(10*60_000, 20*60_000)
		} else {
			t += d + g.between(10*60_000, 4*60*60_000)
		}
		j.replayed = true
		g.enqueued(j, t, 0)
		t += g.latency()
		attempt = 2
	case tagEffectAfterTerminal:
		d := g.duration(j.jt)
		g.started(j, t, 1, startTag)
		j.ent.seq++
		g.state(j.ent, t+d/3, j.ent.seq, stCancelled, 0)
		j.effSeq = -1
		g.effect(j, t+d*2/3, 1, tagEffectAfterTerminal)
		g.succeeded(j, t+d, 1, 0)
		return t + d, true
	case tagNone:
		t = g.transient(j, t, &attempt)
	}
	d := g.duration(j.jt)
	g.started(j, t, attempt, startTag)
	switch fault {
	case tagMissingEffect:
		g.succeeded(j, t+d, attempt, tagMissingEffect)
	case tagCrashRetry, tagDeadReplay:
		g.effect(j, t+d/2, attempt, fault)
		g.succeeded(j, t+d, attempt, 0)
	default:
		g.effect(j, t+d/2, attempt, 0)
		g.succeeded(j, t+d, attempt, 0)
	}
	end = t + d
	if fault == tagDupExecution { // lost ack: delivered again, the handler skips the effect
		t2 := end + g.between(30_000, 300_000)
		d2 := g.duration(j.jt) / 3
		g.started(j, t2, attempt+1, tagDupExecution)
		g.succeeded(j, t2+d2, attempt+1, 0)
		end = t2 + d2
	}
	return end, true
}

// runFor runs job j unless the flow's fault targets this job type, in
// which case the fault is applied (a duplicate enqueue runs a second job
// with the same key).
func (g *gen) runFor(j *job, t int64, fault, target uint8) (int64, bool) {
	if target != j.jt {
		return g.runJob(j, t, tagNone)
	}
	if fault == tagDupEnqueue {
		end, _ := g.runJob(j, t, tagNone)
		g.nextJob++
		j2 := *j
		j2.id = g.nextJob
		end2 := g.simpleJob(&j2, t+g.between(5, 2_000), tagDupEnqueue)
		return max(end, end2), true
	}
	return g.runJob(j, t, fault)
}

// simpleJob runs j once, successfully, with effTag on its effect (the
// defining line of a fault), and returns when it ended.
func (g *gen) simpleJob(j *job, t int64, effTag uint8) int64 {
	g.enqueued(j, t, 0)
	t += g.latency()
	d := g.duration(j.jt)
	g.started(j, t, 1, 0)
	g.effect(j, t+d/2, 1, effTag)
	g.succeeded(j, t+d, 1, 0)
	return t + d
}

func (g *gen) paymentFlow(t int64) {
	fault, target := g.pickFault()
	g.nextOrder++
	g.nextPayment++
	ent := &entity{id: g.nextOrder, seq: 1}
	payment := g.nextPayment
	g.state(ent, t, 1, stPlaced, 0)
	t += g.between(5, 300)

	cc := g.newJob(jtChargeCard, payment, ent)
	end, ok := g.runFor(cc, t, fault, target)
	if !ok {
		return
	}
	ent.seq++
	t = end + g.between(1, 50)
	g.state(ent, t, ent.seq, stPaid, 0)
	t += g.between(1, 30)

	sr := g.newJob(jtSendReceipt, payment, ent)
	end1, _ := g.runFor(sr, t, fault, target)
	if fault == tagEffectAfterTerminal {
		return // the order was cancelled: no webhook
	}
	g.nextEvt++
	wh := g.newJob(jtDeliverWebhook, g.nextEvt, ent)
	if fault == tagOutOfOrder && g.r.IntN(3) == 0 {
		// The webhook payload was built from a stale snapshot.
		wh.effSeq = ent.seq - 1
		g.simpleJob(wh, t+g.between(1, 30), tagOutOfOrder)
		return
	}
	end2, _ := g.runFor(wh, t+g.between(1, 30), fault, target)
	end = max(end1, end2)

	switch fault {
	case tagNone:
		// The order goes on; a few end refunded or cancelled.
		switch u := g.r.IntN(1000); {
		case u < 20:
			g.state(ent, end+g.between(60_000, 6*60*60_000), ent.seq+1, stRefunded, 0)
		case u < 30:
			g.state(ent, end+g.between(1_000, 600_000), ent.seq+1, stCancelled, 0)
		case u < 600:
			t := end + g.between(10*60_000, 12*60*60_000)
			g.state(ent, t, ent.seq+1, stShipped, 0)
			if u < 300 {
				g.state(ent, t+g.between(60*60_000, 48*60*60_000), ent.seq+2, stDelivered, 0)
			}
		}
	case tagOutOfOrder:
		// A late copy of an older state arrives after a newer one.
		t := end + g.between(1_000, 600_000)
		g.state(ent, t, ent.seq+1, stShipped, 0)
		g.state(ent, t+g.between(100, 3_000), ent.seq, stPaid, tagOutOfOrder)
		if g.r.IntN(2) == 0 { // later history catches up: not final_stale
			g.state(ent, t+g.between(60_000, 3_600_000), ent.seq+2, stDelivered, 0)
		}
	case tagOrphanDup:
		// An operator re-sends an email by hand, twice, with no job.
		g.nextManual++
		e := event{kind: kEffect, effect: efEmail, key: g.nextManual, keyKind: kkManual}
		e.t = end + g.between(60_000, 3_600_000)
		g.emit(e)
		e.t += g.between(1_000, 600_000)
		e.tag = tagOrphanDup
		g.emit(e)
	}
}

// storm plans a retry storm on the webhooks queue: the receiving endpoint
// is down for a minute, a dozen deliveries retry every few seconds, then
// all go through.
func (g *gen) storm(t int64) {
	ws := (t/60_000 + 1) * 60_000 // next window (aligned to the epoch)
	n := int(g.between(10, 14))
	attempts := int32(g.between(5, 6))
	for i := range n {
		g.nextEvt++
		j := g.newJob(jtDeliverWebhook, g.nextEvt, nil)
		ts := ws + 1_000 + int64(i)*300 + g.between(0, 200)
		g.enqueued(j, ts-g.between(20, 900), 0)
		for a := int32(1); a <= attempts; a++ {
			tag := uint8(0)
			if i == 0 && a == 1 {
				tag = tagRetryStorm
			}
			g.started(j, ts, a, tag)
			g.failed(j, ts+g.between(100, 400), a, true, err503, 0)
			ts += g.between(7_000, 9_000)
		}
		ts = ws + g.between(90_000, 150_000)
		d := g.duration(j.jt)
		g.started(j, ts, attempts+1, 0)
		g.effect(j, ts+d/2, attempts+1, 0)
		g.succeeded(j, ts+d, attempts+1, 0)
	}
}
