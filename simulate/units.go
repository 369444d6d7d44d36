package simulate

import (
	"container/heap"
	"strconv"

	"github.com/twicehq/twice/twicetype"
)

// job is one job of a unit.
type job struct {
	id, key, entity string
	seq             int
	jt              *jobType
	lastStart       int64
}

// run is the clock of one unit of work: every event of a unit comes after
// the previous one (at least 1ms later), so the unit's causal order is its
// time order whatever the other units do.
type run struct {
	g *gen
	t int64
	n int64 // the unit's number: its keys and entities are its own
}

const (
	ms     = int64(1)
	sec    = 1000 * ms
	minute = 60 * sec
)

// pause advances the clock by lo..hi milliseconds (at least 1).
func (r *run) pause(lo, hi int64) int64 {
	r.t += max(1, lo+r.g.rng.Int64N(hi-lo+1))
	return r.t
}

func (r *run) emit(e *event) {
	e.ts = r.t
	e.order = r.g.order
	r.g.order++
	heap.Push(&r.g.pend, e)
}

func (r *run) newJob(jt int, version int) *job {
	r.g.jobs++
	t := &jobTypes[jt]
	j := &job{id: "j" + strconv.FormatInt(r.g.jobs, 10), jt: t, key: t.keyPrefix + strconv.FormatInt(r.n, 10)}
	if t.entity {
		j.entity = j.key
		j.seq = version
		j.key += "@" + strconv.Itoa(version)
	}
	return j
}

func (j *job) effectKey() string { return j.jt.effectPrefix + j.key }

func (r *run) jobEvent(kind string, j *job, attempt int) *event {
	return &event{kind: kind, queue: j.jt.queue, jobType: j.jt.name, jobID: j.id, attempt: attempt}
}

func (r *run) enqueue(j *job) {
	e := r.jobEvent("job.enqueued", j, 0)
	e.key, e.entity, e.seq = j.key, j.entity, j.seq
	r.emit(e)
}

func (r *run) start(j *job, attempt int) {
	j.lastStart = r.t
	r.emit(r.jobEvent("job.started", j, attempt))
}

func (r *run) effect(j *job, attempt int) {
	e := &event{kind: "effect", effect: j.jt.effect, effectKey: j.effectKey()}
	if j.jt.byID {
		e.jobID, e.attempt = j.id, attempt
	}
	if j.entity != "" {
		e.entity, e.seq = j.entity, j.seq
	}
	r.emit(e)
}

func (r *run) succeed(j *job, attempt int) { r.emit(r.jobEvent("job.succeeded", j, attempt)) }

func (r *run) fail(j *job, attempt int, retry bool, msg string) {
	e := r.jobEvent("job.failed", j, attempt)
	e.hasRetry, e.retry, e.errMsg = true, retry, msg
	r.emit(e)
}

func (r *run) state(entity string, seq int, status string, terminal bool) {
	r.emit(&event{kind: "state", entity: entity, seq: seq, status: status, terminal: terminal})
}

// backoff moves the clock to the next attempt: an exponential backoff, and
// never in the retry-storm window of the previous start, so a job's
// benign retries add one attempt per window at most.
func (r *run) backoff(j *job, attempt int) {
	r.pause(sec<<min(attempt, 5), 2*sec<<min(attempt, 5))
	w := StormWindow.Milliseconds()
	if next := j.lastStart - j.lastStart%w + w; r.t < next {
		r.t = next
		r.pause(100*ms, 10*sec)
	}
}

// runJob runs a job to success from its first attempt: a short queue
// wait, sometimes a transient failure before the effect (when transient),
// the effect, the ack; receipts' delivery webhooks may land after the ack.
func (r *run) runJob(j *job, attempt int, transient bool) {
	r.pause(50*ms, 3*sec)
	r.start(j, attempt)
	if transient && r.g.rng.Float64() < 0.05 {
		r.pause(100*ms, 5*sec)
		r.fail(j, attempt, true, "timeout talking to upstream")
		r.backoff(j, attempt)
		attempt++
		r.start(j, attempt)
	}
	late := !j.jt.byID && r.g.rng.Float64() < 0.2
	if !late {
		r.pause(20*ms, 800*ms)
		r.effect(j, attempt)
	}
	r.pause(10*ms, 300*ms)
	r.succeed(j, attempt)
	if late {
		r.pause(1*sec, 60*sec)
		r.effect(j, attempt)
	}
}

// pickType draws a job type: receipts and charges most, orders least.
func (g *gen) pickType(choices ...int) int {
	if len(choices) > 0 {
		return choices[g.rng.IntN(len(choices))]
	}
	switch x := g.rng.IntN(100); {
	case x < 30:
		return jtReceipt
	case x < 60:
		return jtCharge
	case x < 85:
		return jtWebhook
	}
	return jtSync
}

// benign is a unit with no fault: one job, or an order's two versions
// synced. 1% of the plain jobs fail for good and are discarded; 30% of the
// orders end cancelled, with nothing after it.
func (g *gen) benign(t int64) {
	r := &run{g: g, t: t, n: g.stats.Units}
	jt := g.pickType()
	if jt != jtSync {
		j := r.newJob(jt, 0)
		r.enqueue(j)
		if g.rng.Float64() < 0.01 {
			r.pause(50*ms, 3*sec)
			r.start(j, 1)
			r.pause(100*ms, 2*sec)
			r.fail(j, 1, false, "invalid payload")
			r.pause(1*ms, 100*ms)
			r.emit(r.jobEvent("job.discarded", j, 1))
			return
		}
		r.runJob(j, 1, true)
		return
	}
	r.order(func(j *job) { r.runJob(j, 1, true) }, g.rng.Float64() < 0.3)
}

// order is an order's life: placed (seq 1) and synced by body, then paid
// and synced again — or cancelled (terminal) and left alone.
func (r *run) order(body func(j *job), cancelled bool) {
	j := r.newJob(jtSync, 1)
	r.state(j.entity, 1, "placed", false)
	r.pause(10*ms, 500*ms)
	r.enqueue(j)
	body(j)
	r.pause(5*sec, 2*minute)
	if cancelled {
		r.state(j.entity, 2, "cancelled", true)
		return
	}
	r.state(j.entity, 2, "paid", false)
	r.pause(10*ms, 500*ms)
	j2 := r.newJob(jtSync, 2)
	r.enqueue(j2)
	r.runJob(j2, 1, true)
}

func (g *gen) want(detector, subject, cause string) {
	g.truth = append(g.truth, Expected{Detector: detector, Subject: subject, Cause: cause})
}

func (g *gen) wantBy(at int64, detector, subject, cause string) {
	g.due = append(g.due, deadline{at: at, f: Expected{Detector: detector, Subject: subject, Cause: cause}})
}

// plain runs body on one job of a type drawn from choices; an order's
// job is wrapped in the order's life (placed, body, paid, synced again).
func (r *run) plain(body func(j *job), choices ...int) {
	jt := r.g.pickType(choices...)
	if jt == jtSync {
		r.order(body, false)
		return
	}
	j := r.newJob(jt, 0)
	r.enqueue(j)
	body(j)
}

// fault generates one unit with the named fault, and its findings.
func (g *gen) fault(name string, t int64) {
	r := &run{g: g, t: t, n: g.stats.Units}
	switch name {
	case FaultCrashAfterEffect:
		r.plain(func(j *job) {
			r.pause(50*ms, 3*sec)
			r.start(j, 1)
			r.pause(20*ms, 800*ms)
			r.effect(j, 1)
			if g.rng.IntN(2) == 0 {
				r.pause(10*ms, 2*sec)
				r.fail(j, 1, true, "worker lost: SIGKILL")
			}
			r.backoff(j, 1)
			r.start(j, 2)
			r.pause(20*ms, 800*ms)
			r.effect(j, 2)
			r.pause(10*ms, 300*ms)
			r.succeed(j, 2)
			g.want(twicetype.EffectBeforeFailure, j.id, "")
			g.want(twicetype.DuplicateEffect, j.effectKey(), "redelivery")
		})
	case FaultDuplicateEnqueue:
		jt := g.pickType()
		if jt == jtSync {
			r.order(func(j *job) { r.dupEnqueue(j) }, false)
		} else {
			j := r.newJob(jt, 0)
			r.enqueue(j)
			r.dupEnqueue(j)
		}
	case FaultLostAck:
		r.plain(func(j *job) {
			r.runJob(j, 1, false)
			r.backoff(j, 1) // the visibility timeout, past the window
			r.pause(30*sec, 3*minute)
			r.start(j, 2)
			r.pause(20*ms, 800*ms)
			r.effect(j, 2)
			r.pause(10*ms, 300*ms)
			r.succeed(j, 2)
			g.want(twicetype.DuplicateExecution, j.id, "")
			g.want(twicetype.DuplicateEffect, j.effectKey(), "redelivery")
		})
	case FaultSilentFailure:
		r.plain(func(j *job) {
			r.pause(50*ms, 3*sec)
			r.start(j, 1)
			r.pause(20*ms, 1*sec)
			r.succeed(j, 1)
			g.wantBy(r.t+Within.Milliseconds(), twicetype.MissingEffect, j.id, "")
		})
	case FaultLateStart:
		r.plain(func(j *job) {
			r.pause(16*minute, 40*minute)
			r.runJob(j, 1, false)
			g.want(twicetype.StaleExecution, j.id, "")
		})
	case FaultOutOfOrder:
		j := r.newJob(jtSync, 1)
		r.state(j.entity, 1, "placed", false)
		r.pause(10*ms, 500*ms)
		r.enqueue(j)
		r.runJob(j, 1, true)
		r.pause(5*sec, 2*minute)
		r.state(j.entity, 3, "shipped", false)
		r.pause(100*ms, 5*sec)
		r.state(j.entity, 2, "paid", false) // delivered late
		r.pause(10*ms, 500*ms)
		j2 := r.newJob(jtSync, 3)
		r.enqueue(j2)
		r.runJob(j2, 1, true)
		g.want(twicetype.OutOfOrder, j.entity, "")
	case FaultEffectAfterTerminal:
		j := r.newJob(jtSync, 1)
		r.state(j.entity, 1, "placed", false)
		r.pause(10*ms, 500*ms)
		r.enqueue(j)
		r.runJob(j, 1, true)
		r.pause(5*sec, 2*minute)
		r.state(j.entity, 2, "cancelled", true)
		r.pause(10*ms, 500*ms)
		j2 := r.newJob(jtSync, 2)
		r.enqueue(j2)
		r.runJob(j2, 1, true)
		g.want(twicetype.EffectAfterTerminal, j2.effectKey(), "")
	case FaultLostJob:
		j := r.newJob(g.pickType(jtReceipt, jtCharge, jtWebhook), 0)
		r.enqueue(j)
		g.wantBy(r.t+LostAfter.Milliseconds(), twicetype.LostJob, j.id, "never-started")
	case FaultStuckJob:
		j := r.newJob(g.pickType(jtReceipt, jtCharge, jtWebhook), 0)
		r.enqueue(j)
		r.pause(50*ms, 3*sec)
		r.start(j, 1)
		g.wantBy(r.t+LostAfter.Milliseconds(), twicetype.LostJob, j.id, "stuck")
	case FaultRetryStorm:
		r.storm()
	case FaultDeadLetter:
		j := r.newJob(g.pickType(jtReceipt, jtCharge, jtWebhook), 0)
		r.enqueue(j)
		r.pause(50*ms, 3*sec)
		const attempts = 3
		for a := 1; a <= attempts; a++ {
			if a > 1 {
				r.backoff(j, a-1)
			}
			r.start(j, a)
			r.pause(100*ms, 5*sec)
			r.fail(j, a, a < attempts, "card declined")
		}
		r.pause(1*ms, 100*ms)
		r.emit(r.jobEvent("job.dead", j, attempts))
		g.dead[j.id] = j.jt.queue
	case FaultDeadReplay:
		j := r.newJob(g.pickType(jtCharge, jtWebhook), 0)
		r.enqueue(j)
		r.pause(50*ms, 3*sec)
		r.start(j, 1)
		r.pause(20*ms, 800*ms)
		r.effect(j, 1)
		r.pause(10*ms, 2*sec)
		r.fail(j, 1, true, "connection reset after commit")
		r.backoff(j, 1)
		r.start(j, 2)
		r.pause(100*ms, 5*sec)
		r.fail(j, 2, false, "connection reset")
		r.pause(1*ms, 100*ms)
		r.emit(r.jobEvent("job.dead", j, 2))
		r.pause(2*minute, 10*minute) // an operator replays it
		r.enqueue(j)
		r.pause(50*ms, 3*sec)
		r.start(j, 3)
		r.pause(20*ms, 800*ms)
		r.effect(j, 3)
		r.pause(10*ms, 300*ms)
		r.succeed(j, 3)
		g.want(twicetype.EffectBeforeFailure, j.id, "")
		g.want(twicetype.DuplicateEffect, j.effectKey(), "replay")
	}
}

// dupEnqueue enqueues a second job with j's key; both run and act.
func (r *run) dupEnqueue(j *job) {
	r.pause(10*ms, 2*sec)
	r.g.jobs++
	j2 := *j
	j2.id = "j" + strconv.FormatInt(r.g.jobs, 10)
	r.enqueue(&j2)
	r.runJob(j, 1, false)
	r.runJob(&j2, 1, false)
	r.g.want(twicetype.DuplicateEffect, j.effectKey(), "duplicate-enqueue")
}

// storm is a burst of fast retries: six webhook jobs fail five times
// each within one window, then succeed in later windows. Whether the
// window is a storm is judged from all its starts (closeWindows).
func (r *run) storm() {
	w := StormWindow.Milliseconds()
	r.t = r.t - r.t%w + w
	r.pause(100*ms, 1*sec)
	jobs := make([]*job, 6)
	for i := range jobs {
		jobs[i] = r.newJob(jtWebhook, 0)
		jobs[i].key += "." + strconv.Itoa(i+1)
		r.enqueue(jobs[i])
		r.pause(10*ms, 100*ms)
	}
	end := r.t - r.t%w + w - 2*sec
	attempts := make([]int, len(jobs))
	for a := 1; a <= 5; a++ {
		for i, j := range jobs {
			if r.t+300*ms >= end {
				break
			}
			r.pause(10*ms, 150*ms)
			attempts[i] = a
			r.start(j, a)
			r.pause(50*ms, 150*ms)
			r.fail(j, a, true, "upstream returned 503")
		}
	}
	for i, j := range jobs {
		if attempts[i] == 0 {
			r.pause(1*sec, 5*sec)
			r.runJob(j, 1, false)
			continue
		}
		r.backoff(j, attempts[i])
		r.start(j, attempts[i]+1)
		r.pause(20*ms, 800*ms)
		r.effect(j, attempts[i]+1)
		r.pause(10*ms, 300*ms)
		r.succeed(j, attempts[i]+1)
	}
}
