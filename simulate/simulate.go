// Package simulate writes the event stream of a realistic job system —
// job types on their queues, entities with versions, benign retries with
// backoff, effects linked by job id or only by template — with faults
// injected at configurable rates, and the exact findings an audit of that
// stream must report (the truth), so twice can be scored against it.
//
// The truth is exact by construction: every unit of work (a job, or the few
// jobs of one fault) has its own keys, entities and job ids; benign timing
// stays well inside every threshold; each retry of a job starts in a later
// retry-storm window than its previous attempt; and the queue-wide findings
// (retry-storm, dead-letter) and the deadlines (missing-effect, lost-job,
// pending after the end of input) are judged from the stream as written,
// by the rules of the contract.
package simulate

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/twicehq/twice/twicetype"
)

// The thresholds of the generated twice.yaml. Benign behaviour stays far
// inside them; faults step far outside.
const (
	Within        = 5 * time.Minute
	MaxStartDelay = 15 * time.Minute
	LostAfter     = time.Hour
	StormWindow   = time.Minute
	Amplification = 2.0
	MinAttempts   = 20
)

// Fault names, as flags (--crash-after-effect) and in the truth file.
const (
	FaultCrashAfterEffect    = "crash-after-effect"
	FaultDuplicateEnqueue    = "duplicate-enqueue"
	FaultLostAck             = "lost-ack"
	FaultSilentFailure       = "silent-failure"
	FaultLateStart           = "late-start"
	FaultOutOfOrder          = "out-of-order"
	FaultEffectAfterTerminal = "effect-after-terminal"
	FaultLostJob             = "lost-job"
	FaultStuckJob            = "stuck-job"
	FaultRetryStorm          = "retry-storm"
	FaultDeadLetter          = "dead-letter"
	FaultDeadReplay          = "dead-replay"
)

// Faults lists the fault names in the order they are drawn.
var Faults = []string{
	FaultCrashAfterEffect, FaultDuplicateEnqueue, FaultLostAck, FaultSilentFailure,
	FaultLateStart, FaultOutOfOrder, FaultEffectAfterTerminal, FaultLostJob,
	FaultStuckJob, FaultRetryStorm, FaultDeadLetter, FaultDeadReplay,
}

// FaultHelp says what each fault does, for flag help and docs.
var FaultHelp = map[string]string{
	FaultCrashAfterEffect:    "a worker crashes after the effect, before the ack; the retry repeats it",
	FaultDuplicateEnqueue:    "one key is enqueued as two jobs, both produce the effect",
	FaultLostAck:             "the ack of a successful run is lost; the job runs (and acts) again",
	FaultSilentFailure:       "a job succeeds without producing its effect",
	FaultLateStart:           "a job starts 16-40m after it was enqueued",
	FaultOutOfOrder:          "an entity's versions are delivered out of order",
	FaultEffectAfterTerminal: "an effect on an entity after it was cancelled",
	FaultLostJob:             "a job is enqueued and never starts",
	FaultStuckJob:            "a job starts and never finishes",
	FaultRetryStorm:          "a burst of fast retries of a few webhook jobs within one minute",
	FaultDeadLetter:          "a job exhausts its retries and goes dead; nobody replays it",
	FaultDeadReplay:          "a job acts, crashes, goes dead, and is replayed: the effect repeats",
}

// Noise makes the stream look like the at-least-once input twice reads;
// none of it may change a finding.
type Noise struct {
	// Reorder is the chance that a line swaps places with another of its
	// block of Window lines.
	Reorder float64
	// Repeat is the chance that a line is written twice (the same id).
	Repeat float64
	// Malformed is the chance that a malformed line follows a line.
	Malformed float64
	// Window is the block size of reordering, in lines (default 32): no
	// line moves further, far inside the engine's reorder buffer.
	Window int
}

// DefaultNoise is what --noise turns on.
var DefaultNoise = Noise{Reorder: 0.2, Repeat: 0.01, Malformed: 0.002, Window: 32}

// Options control Generate. The same options give the same bytes.
type Options struct {
	Seed uint64
	// Events stops the stream at the first unit boundary at or past this
	// many events (valid, distinct); Jobs at this many units of work.
	// One of them must be set.
	Events int64
	Jobs   int64
	// Rates per unit of work, by fault name (Faults); the rest of the
	// units are benign. Their sum must not exceed 1.
	Rates map[string]float64
	Noise Noise
	// Start is the event time of the first event (default
	// 2026-11-01T00:00:00Z).
	Start time.Time
	// Interval is the mean event time between two units (default 2s).
	Interval time.Duration
	// Tail, when positive, ends the stream with one quiet state event
	// this long after the last event, so every deadline is due; without
	// it, deadlines after the end are pending and not in the truth.
	Tail time.Duration
}

// DefaultRates are the fault rates of `twice simulate` without flags.
func DefaultRates() map[string]float64 {
	return map[string]float64{
		FaultCrashAfterEffect: 0.01, FaultDuplicateEnqueue: 0.005, FaultLostAck: 0.005,
		FaultSilentFailure: 0.005, FaultLateStart: 0.005, FaultOutOfOrder: 0.005,
		FaultEffectAfterTerminal: 0.003, FaultLostJob: 0.002, FaultStuckJob: 0.002,
		FaultRetryStorm: 0.0005, FaultDeadLetter: 0.003, FaultDeadReplay: 0.002,
	}
}

// Validate says what is wrong with the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Events <= 0 && o.Jobs <= 0 {
		errs = append(errs, errors.New("set the number of events or of jobs (above 0)"))
	}
	sum := 0.0
	for name, r := range o.Rates {
		if _, ok := FaultHelp[name]; !ok {
			errs = append(errs, fmt.Errorf("unknown fault %q", name))
		}
		if r < 0 || r > 1 {
			errs = append(errs, fmt.Errorf("rate of %s: want 0 to 1, got %g", name, r))
		}
		sum += r
	}
	if sum > 1 {
		errs = append(errs, fmt.Errorf("fault rates add up to %g, more than 1", sum))
	}
	for name, p := range map[string]float64{"reorder": o.Noise.Reorder, "repeat": o.Noise.Repeat, "malformed": o.Noise.Malformed} {
		if p < 0 || p > 1 {
			errs = append(errs, fmt.Errorf("noise %s: want 0 to 1, got %g", name, p))
		}
	}
	if o.Noise.Window < 0 {
		errs = append(errs, fmt.Errorf("noise window: want 0 or more lines, got %d", o.Noise.Window))
	}
	if o.Interval < 0 || o.Tail < 0 {
		errs = append(errs, errors.New("interval and tail must not be negative"))
	}
	return errors.Join(errs...)
}

// Stats describe a generated stream.
type Stats struct {
	// Lines written, Events among them valid and distinct, Repeated
	// copies and Malformed lines.
	Lines, Events, Repeated, Malformed int64
	// Units of work and Jobs (distinct job ids).
	Units, Jobs int64
	// Faults injected, by name.
	Faults map[string]int64
	// From and To are the first and last event times.
	From, To time.Time
}

// jobType is one handler: its queue, its key and its effect.
type jobType struct {
	name, queue, keyPrefix, effect, effectPrefix string
	// byID: the tap that observes the effect knows the job id (a
	// ledger row written with it, a webhook proxy header); otherwise the
	// effect links to its job only through the effect_key template.
	byID bool
	// entity: the job acts on a versioned entity (order:N, seq).
	entity bool
}

var jobTypes = []jobType{
	{name: "SendReceipt", queue: "emails", keyPrefix: "payment:", effect: "email.sent", effectPrefix: "receipt/"},
	{name: "ChargeCard", queue: "payments", keyPrefix: "charge:", effect: "ledger.insert", effectPrefix: "ledger/", byID: true},
	{name: "DeliverWebhook", queue: "webhooks", keyPrefix: "evt:", effect: "webhook.delivered", effectPrefix: "webhook/", byID: true},
	{name: "SyncOrder", queue: "orders", keyPrefix: "order:", effect: "crm.upsert", effectPrefix: "crm/", byID: true, entity: true},
}

// Indexes into jobTypes.
const (
	jtReceipt = iota
	jtCharge
	jtWebhook
	jtSync
)

// ConfigYAML is the twice.yaml that matches the generated events.
func ConfigYAML() string {
	s := "# twice.yaml written by `twice simulate`: the expectations and thresholds\n" +
		"# the simulated job system is judged by.\nexpect:\n"
	for _, jt := range jobTypes {
		s += fmt.Sprintf("  - job_type: %s\n    effect: %s\n    effect_key: \"%s{{key}}\"\n    within: %s\n",
			jt.name, jt.effect, jt.effectPrefix, fmtDur(Within))
	}
	s += fmt.Sprintf("detectors:\n  stale-execution: {max_start_delay: %s}\n  lost-job: {lost_after: %s}\n"+
		"  retry-storm: {window: %s, amplification: %.1f, min_attempts: %d}\n  duplicate-effect: {max_per_key: 1}\n",
		fmtDur(MaxStartDelay), fmtDur(LostAfter), fmtDur(StormWindow), Amplification, MinAttempts)
	return s
}

func fmtDur(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	case d%time.Minute == 0:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
	return d.String()
}

// event is one generated event; ts in Unix milliseconds.
type event struct {
	ts                        int64
	order                     int64 // generation order: ties keep it
	kind                      string
	queue, jobType, jobID     string
	attempt                   int
	key, effect, effectKey    string
	entity                    string
	seq                       int
	terminal, retry, hasRetry bool
	errMsg, status            string
}

type eventHeap []*event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].ts != h[j].ts {
		return h[i].ts < h[j].ts
	}
	return h[i].order < h[j].order
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// deadline is a missing-effect or lost-job finding that is due only when
// the input reaches its deadline.
type deadline struct {
	at int64
	f  Expected
}

// gen is one run of Generate.
type gen struct {
	opts  Options
	rng   *rand.Rand
	out   *noiseWriter
	pend  eventHeap
	order int64
	jobs  int64
	ids   int64
	stats Stats
	truth []Expected
	due   []deadline
	// dead jobs not (yet) replayed, by job id → queue.
	dead map[string]string
	// storm windows: starts per queue and window, judged as written.
	win     map[winKey]*winCount
	lastTs  int64
	started bool
	buf     []byte
}

type winKey struct {
	queue string
	start int64
}

type winCount struct {
	attempts int
	jobs     map[string]struct{}
}

// Generate writes the stream to w, one line per call, and returns the
// truth: the findings an audit with ConfigYAML must report, exactly.
func Generate(w func(line []byte) error, opts Options) (*Truth, *Stats, error) {
	if err := opts.Validate(); err != nil {
		return nil, nil, err
	}
	if opts.Start.IsZero() {
		opts.Start = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	}
	if opts.Interval == 0 {
		opts.Interval = 2 * time.Second
	}
	if opts.Noise.Window == 0 {
		opts.Noise.Window = DefaultNoise.Window
	}
	g := &gen{
		opts: opts,
		rng:  rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		dead: map[string]string{},
		win:  map[winKey]*winCount{},
	}
	g.stats.Faults = map[string]int64{}
	g.out = &noiseWriter{w: w, noise: opts.Noise, rng: rand.New(rand.NewPCG(opts.Seed^0x5bd1e995, opts.Seed)), stats: &g.stats}
	t := opts.Start.UnixMilli()
	for {
		if opts.Jobs > 0 && g.stats.Units >= opts.Jobs {
			break
		}
		if opts.Events > 0 && g.order >= opts.Events {
			break
		}
		if err := g.flush(t); err != nil {
			return nil, nil, err
		}
		g.unit(t)
		gap := int64(g.rng.ExpFloat64()*float64(opts.Interval.Milliseconds())) + 1
		t += gap
	}
	if err := g.flush(1<<62 - 1); err != nil {
		return nil, nil, err
	}
	if opts.Tail > 0 && g.started {
		end := &event{ts: g.lastTs + opts.Tail.Milliseconds(), kind: "state", entity: "simulation:clock", status: "end"}
		if err := g.write(end); err != nil {
			return nil, nil, err
		}
	}
	g.closeWindows(1<<62 - 1)
	if err := g.out.close(); err != nil {
		return nil, nil, err
	}
	tr := g.finishTruth()
	g.stats.Jobs = g.jobs
	return tr, &g.stats, nil
}

func (g *gen) finishTruth() *Truth {
	for _, d := range g.due {
		if d.at <= g.lastTs {
			g.truth = append(g.truth, d.f)
		}
	}
	queues := map[string]bool{}
	for _, q := range g.dead {
		queues[q] = true
	}
	for q := range queues {
		g.truth = append(g.truth, Expected{Detector: twicetype.DeadLetter, Subject: q})
	}
	sort.Slice(g.truth, func(i, j int) bool {
		a, b := g.truth[i], g.truth[j]
		if a.Detector != b.Detector {
			return a.Detector < b.Detector
		}
		return a.Subject < b.Subject
	})
	for i := range g.truth {
		g.truth[i].Fingerprint = twicetype.Fingerprint(g.truth[i].Detector, g.truth[i].Subject)
	}
	return &Truth{
		Version: 1, Seed: g.opts.Seed, Events: g.stats.Events, Jobs: g.jobs,
		End: twicetype.FormatTime(g.lastTs * int64(time.Millisecond)), Faults: g.stats.Faults,
		Findings: g.truth,
	}
}

// flush writes every pending event before t, in time order.
func (g *gen) flush(t int64) error {
	for len(g.pend) > 0 && g.pend[0].ts < t {
		if err := g.write(heap.Pop(&g.pend).(*event)); err != nil {
			return err
		}
	}
	return nil
}

func (g *gen) write(e *event) error {
	g.ids++
	if !g.started {
		g.stats.From = time.UnixMilli(e.ts).UTC()
		g.started = true
	}
	g.lastTs = e.ts
	g.stats.To = time.UnixMilli(e.ts).UTC()
	g.stats.Events++
	g.closeWindows(e.ts)
	if e.kind == "job.started" {
		k := winKey{e.queue, e.ts - e.ts%StormWindow.Milliseconds()}
		c := g.win[k]
		if c == nil {
			c = &winCount{jobs: map[string]struct{}{}}
			g.win[k] = c
		}
		c.attempts++
		c.jobs[e.jobID] = struct{}{}
	}
	g.buf = appendEvent(g.buf[:0], "e-"+strconv.FormatInt(g.ids, 10), e)
	return g.out.line(g.buf, e.ts)
}

// closeWindows judges the retry-storm windows that ended at or before ts.
func (g *gen) closeWindows(ts int64) {
	for k, c := range g.win {
		if k.start+StormWindow.Milliseconds() > ts {
			continue
		}
		if c.attempts >= MinAttempts && float64(c.attempts) >= Amplification*float64(len(c.jobs)) {
			subject := k.queue + "@" + time.UnixMilli(k.start).UTC().Format(time.RFC3339)
			g.truth = append(g.truth, Expected{Detector: twicetype.RetryStorm, Subject: subject})
		}
		delete(g.win, k)
	}
}

// unit generates one unit of work starting at t: benign, or one fault.
func (g *gen) unit(t int64) {
	g.stats.Units++
	r := g.rng.Float64()
	for _, name := range Faults {
		rate := g.opts.Rates[name]
		if r < rate {
			g.stats.Faults[name]++
			g.fault(name, t)
			return
		}
		r -= rate
	}
	g.benign(t)
}
