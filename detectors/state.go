package detectors

import (
	"slices"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/twicehq/twice/internal/hashset"
	"github.com/twicehq/twice/twicetype"
)

// Job is what the Set knows of one job_id. The identifying fields hold the
// first value seen (spec §1); each detector keeps its own state here too.
type Job struct {
	ID      string
	Type    string
	Queue   string
	Key     string
	Entity  string
	Attrs   []byte
	started int64 // time of the first event of the job
	life

	// rendered holds, per rule index, the effect key the rule renders for
	// this job ("" when it cannot be rendered or the rule does not apply).
	rendered []string

	// replays are the job.dead → job.enqueued pairs of the job, by order:
	// for each enqueue that followed a job.dead, the latest job.dead
	// before it (a success in between does not cancel a replay).
	replays []replay
	// replayDead is the latest job.dead since the job's last enqueue, 0
	// when there was none: the next enqueue makes it a replay.
	replayDead uint64
	// dead is set while the job's last job.dead was not followed by an
	// enqueue or a success.
	deadOrd  uint64
	deadTime int64
	deadRef  string

	// succeeded is set once any attempt of the job succeeded; succTime and
	// succRef are the first job.succeeded (it sets the expectations).
	succeeded bool
	succTime  int64
	succRef   string
	// open is set while the job's last job.* event was an enqueue, a
	// start or a failure.
	open bool
	// late holds what waits for a field of the job that has not arrived
	// yet; nil for almost every job.
	late *jobLate

	ebf   ebfState
	stale staleState
	lost  lostState
	miss  int // expectations not yet judged
	// score is what the scorecard keeps of the job (scorecard.go).
	score scoreMark
}

// jobLate is what a job keeps while a field it needs has not arrived:
// rare, so it lives behind a pointer, allocated on first use and dropped
// once empty.
type jobLate struct {
	// storm holds the starts that wait for the job's queue (retry-storm).
	storm []stormStart
	// held holds the starts whose findings wait for the job's entity
	// (stale-execution).
	held []heldStart
	// unlabelled names the findings whose first job this is and that were
	// made before its job_type or queue was known: when one becomes known
	// they are relabelled, so that they show the job's first value
	// whichever event carried it (spec §1).
	unlabelled []liveKey
}

// lateOf returns j.late, allocating it.
func (j *Job) lateOf() *jobLate {
	if j.late == nil {
		j.late = &jobLate{}
	}
	return j.late
}

// tidyLate drops j.late once nothing waits in it.
func (j *Job) tidyLate() {
	if l := j.late; l != nil && len(l.storm) == 0 && len(l.held) == 0 && len(l.unlabelled) == 0 {
		j.late = nil
	}
}

func (j *Job) stormStarts() []stormStart {
	if j.late == nil {
		return nil
	}
	return j.late.storm
}

func (j *Job) heldStarts() []heldStart {
	if j.late == nil {
		return nil
	}
	return j.late.held
}

func (j *Job) unlabelled() []liveKey {
	if j.late == nil {
		return nil
	}
	return j.late.unlabelled
}

type replay struct{ deadOrd, enqOrd uint64 }

// EffectKey is what the Set knows of one effect_key: every effect observed
// with it, in order.
type EffectKey struct {
	Key     string
	effects []effectObs
	// impact is set only when Options.Impact is (impact.go).
	impact *keyImpact
	life
}

type effectObs struct {
	ref    string
	effect string
	jobID  string
	// linked are the jobs that rendered the effect's key when it was
	// observed, for an effect without job_id.
	linked  []string
	time    int64
	ord     uint64
	attempt int64
}

// Entity is what the Set knows of one entity.
type Entity struct {
	Name    string
	hasSeq  bool
	maxSeq  int64
	lastSeq int64
	// hist holds the rises of maxSeq while stale-execution holds starts
	// that wait for their job's entity.
	hist []seqStep
	life

	// ooo is out-of-order's state, allocated at the entity's first
	// regression: most entities never have one, and it is most of an
	// entity's size.
	ooo      *oooState
	terminal bool
	termTime int64
	termRef  string
	termOrd  uint64
}

// refs are the records an event touches, resolved once per event.
type refs struct {
	job    *Job
	key    *EffectKey
	entity *Entity
	ord    uint64
}

// life is what every record has: when it was last seen, and whether the
// horizon (or the end of input) has released it.
type life struct {
	lastSeen int64
	released bool
}

func (l *life) touch(t int64) {
	if t > l.lastSeen {
		l.lastSeen = t
	}
}

func (l *life) seen() int64 { return l.lastSeen }

func (l *life) isReleased() bool { return l.released }

// record is what the horizon releases: a job, an effect key or an entity.
type record[T any] interface {
	*T
	seen() int64
}

type expiry[T any] struct {
	at  int64
	rec *T
}

// expire releases the records of q idle since before t - horizon. Each
// live record has one entry; one that was seen since it was queued goes
// back with its new expiry, so the queue stays in time order. release may
// keep a record (it returns false); it is looked at again a horizon later.
func expire[T any, P record[T]](q *fifo[expiry[T]], t, horizon int64, release func(*T) bool) {
	for q.len() > 0 && q.peek().at < t {
		x := q.pop()
		at := P(x.rec).seen() + horizon
		if at < t {
			if release(x.rec) {
				continue
			}
			at = t + horizon
		}
		q.push(expiry[T]{at: at, rec: x.rec})
	}
}

// Set runs the enabled detectors over one stream of events.
type Set struct {
	opts      Options
	settings  map[string]Settings
	rules     []Rule
	horizon   int64
	detectors []Detector
	observers []eventObserver
	advancers []advancer
	jobRel    []jobReleaser
	keyRel    []keyReleaser
	entityRel []entityReleaser
	finishers []finisher

	jobs     map[string]*Job
	jobIDs   hashset.Set // every job id seen, for the summary
	keys     map[string]*EffectKey
	entities map[string]*Entity
	// linked finds the jobs an effect without job_id links to.
	linked linkIndex
	// pins counts, per job id, the live effect keys with an effect that
	// names the job: a job is not released while one is, since the key is
	// judged at its release and its cause needs the job (a replay).
	// Derived from keys (rebuilt when a snapshot is restored).
	pins map[string]int32

	jobExp    fifo[expiry[Job]]
	keyExp    fifo[expiry[EffectKey]]
	entityExp fifo[expiry[Entity]]

	clock   int64
	started bool
	ord     uint64
	// evicted counts records released early by a cap.
	evicted int64

	findings *Findings
	// score counts jobs per job type and queue for the scorecard.
	score *scoreCounts

	// ruleJobs and ruleRendered count, per rule, the job records of its
	// job_type and those for which its effect_key template rendered.
	ruleJobs, ruleRendered []int64

	// The detectors live views judge ahead of release; nil when off.
	dup *duplicateEffect
	ooo *outOfOrder
	// The detectors that act when a job learns a field; nil when off
	// (dl also with live views only).
	dl *deadLetter
	me *missingEffect
	rs *retryStorm
	se *staleExecution
}

// New builds a Set from options. It does no I/O.
func New(opts Options) *Set {
	settings := DefaultSettings()
	for id, st := range opts.Detectors {
		settings[id] = st
	}
	s := &Set{
		opts:     opts,
		settings: settings,
		rules:    opts.Rules,
		jobs:     make(map[string]*Job),
		keys:     make(map[string]*EffectKey),
		entities: make(map[string]*Entity),
		linked:   newLinkIndex(opts.Rules),
		pins:     make(map[string]int32),
		findings: newFindings(),
		score:    newScoreCounts(),

		ruleJobs:     make([]int64, len(opts.Rules)),
		ruleRendered: make([]int64, len(opts.Rules)),
	}
	horizon := opts.Horizon
	if horizon <= 0 {
		horizon = DefaultHorizon
	}
	for _, st := range settings {
		horizon = max(horizon, st.LostAfter, st.MaxStartDelay, st.Window)
	}
	for _, r := range opts.Rules {
		horizon = max(horizon, r.Within)
	}
	s.horizon = int64(horizon)

	all := []Detector{
		newDuplicateEffect(settings[twicetype.DuplicateEffect]),
		newMissingEffect(settings[twicetype.MissingEffect], opts.Rules),
		newEffectBeforeFailure(settings[twicetype.EffectBeforeFailure]),
		newDuplicateExecution(settings[twicetype.DuplicateExecution]),
		newOutOfOrder(settings[twicetype.OutOfOrder]),
		newStaleExecution(settings[twicetype.StaleExecution]),
		newEffectAfterTerminal(settings[twicetype.EffectAfterTerminal]),
		newLostJob(settings[twicetype.LostJob]),
		newRetryStorm(settings[twicetype.RetryStorm]),
		newDeadLetter(settings[twicetype.DeadLetter]),
	}
	if opts.Live {
		s.findings.dirty = make(map[liveKey]struct{})
	}
	for _, d := range all {
		if !settings[d.ID()].Enabled {
			continue
		}
		switch d := d.(type) {
		case *duplicateEffect:
			if opts.Live {
				s.dup = d
			}
		case *outOfOrder:
			if opts.Live {
				s.ooo = d
			}
		case *deadLetter:
			if opts.Live {
				s.dl = d
			}
		case *missingEffect:
			s.me = d
		case *retryStorm:
			s.rs = d
		case *staleExecution:
			s.se = d
		}
		s.detectors = append(s.detectors, d)
		if o, ok := d.(eventObserver); ok {
			s.observers = append(s.observers, o)
		}
		if a, ok := d.(advancer); ok {
			s.advancers = append(s.advancers, a)
		}
		if r, ok := d.(jobReleaser); ok {
			s.jobRel = append(s.jobRel, r)
		}
		if r, ok := d.(keyReleaser); ok {
			s.keyRel = append(s.keyRel, r)
		}
		if r, ok := d.(entityReleaser); ok {
			s.entityRel = append(s.entityRel, r)
		}
		if f, ok := d.(finisher); ok {
			s.finishers = append(s.finishers, f)
		}
	}
	s.observers = append(s.observers, s.score)
	s.jobRel = append(s.jobRel, s.score)
	return s
}

// Enabled returns the ids of the enabled detectors, in spec order.
func (s *Set) Enabled() []string {
	ids := make([]string, len(s.detectors))
	for i, d := range s.detectors {
		ids[i] = d.ID()
	}
	return ids
}

// Jobs returns the number of distinct job ids seen.
func (s *Set) Jobs() int64 { return int64(s.jobIDs.Len()) }

// RuleCoverage returns, per expectation rule (in Options.Rules order), how
// many job records of its job_type the Set saw and for how many its
// effect_key template rendered. A job seen again after the horizon
// released it counts again.
func (s *Set) RuleCoverage() []twicetype.RuleCoverage {
	out := make([]twicetype.RuleCoverage, len(s.rules))
	for i := range out {
		out[i] = twicetype.RuleCoverage{Jobs: s.ruleJobs[i], Rendered: s.ruleRendered[i]}
	}
	return out
}

// Open counts the records held now: jobs, effect keys and entities.
func (s *Set) Open() (jobs, keys, entities int) {
	return len(s.jobs), len(s.keys), len(s.entities)
}

// Findings returns the findings collected so far.
func (s *Set) Findings() *Findings { return s.findings }

// Process applies one event. Events must come in event-time order; an
// event older than the clock (a late event) is applied where it arrives.
func (s *Set) Process(ev *twicetype.Event) {
	if !s.started || ev.Time > s.clock {
		if s.started {
			s.advance(ev.Time)
		}
		s.clock = ev.Time
		s.started = true
	}
	s.ord++
	r := refs{ord: s.ord}
	if ev.JobID != "" {
		r.job = s.job(ev)
	}
	if ev.Kind == twicetype.Effect {
		r.key = s.effectKey(ev.EffectKey, ev.Time)
	}
	if ev.Entity != "" && (ev.Kind == twicetype.Effect || ev.Kind == twicetype.State) {
		r.entity = s.entity(ev.Entity, ev.Time)
	}
	if s.findings.dirty != nil {
		s.markLive(ev, &r)
	}
	for _, o := range s.observers {
		o.observe(s, ev, &r)
	}
	var wasDead bool
	var wasQueue string
	if s.dl != nil && r.job != nil {
		wasDead, wasQueue = r.job.deadOrd != 0, deadQueueName(r.job)
	}
	s.afterObserve(ev, &r)
	if s.dl != nil && r.job != nil && (wasDead != (r.job.deadOrd != 0)) {
		s.dl.track(s, r.job, wasDead, wasQueue)
	}
}

// Advance moves the clock to t without an event: deadlines strictly
// before t fire and idle state is released. A t at or before the clock
// changes nothing.
func (s *Set) Advance(t int64) {
	if !s.started || t <= s.clock {
		return
	}
	s.advance(t)
	s.clock = t
}

// afterObserve updates the shared state the detectors read as "before
// this event".
func (s *Set) afterObserve(ev *twicetype.Event, r *refs) {
	if e := r.entity; e != nil && ev.HasSeq {
		if !e.hasSeq || ev.Seq > e.maxSeq {
			if s.se != nil && (s.se.pend.len() > 0 || e.hist != nil) {
				s.se.seqRises(e, r.ord)
			}
			e.maxSeq = ev.Seq
		}
		e.lastSeq = ev.Seq
		e.hasSeq = true
	}
	if j := r.job; j != nil {
		switch ev.Kind {
		case twicetype.JobEnqueued, twicetype.JobStarted, twicetype.JobFailed:
			j.open = true
		case twicetype.JobSucceeded, twicetype.JobDead, twicetype.JobDiscarded:
			j.open = false
		}
		switch ev.Kind {
		case twicetype.JobDead:
			j.replayDead = r.ord
			// A job dead twice without a replay has been dead since the
			// first time.
			if j.deadOrd == 0 {
				j.deadOrd, j.deadTime, j.deadRef = r.ord, ev.Time, s.ref(ev)
			}
		case twicetype.JobEnqueued:
			if j.replayDead != 0 {
				j.replays = append(j.replays, replay{deadOrd: j.replayDead, enqOrd: r.ord})
				j.replayDead = 0
			}
			j.deadOrd = 0
		case twicetype.JobSucceeded:
			j.deadOrd = 0
			if !j.succeeded {
				j.succeeded, j.succTime, j.succRef = true, ev.Time, s.ref(ev)
			}
		}
	}
	if ev.Kind == twicetype.Effect {
		var linked []string
		if ev.JobID == "" {
			var buf [4]*Job
			for _, j := range s.linked.jobs(ev.Effect, ev.EffectKey, buf[:0]) {
				linked = append(linked, j.ID)
			}
		}
		r.key.effects = append(r.key.effects, effectObs{
			ref: s.ref(ev), effect: ev.Effect, jobID: ev.JobID, linked: linked,
			time: ev.Time, ord: r.ord, attempt: attemptOf(ev),
		})
		s.pinLast(r.key)
		s.noteImpact(r.key, ev)
	}
}

func attemptOf(ev *twicetype.Event) int64 {
	if ev.HasAttempt {
		return ev.Attempt
	}
	return 0
}

// job returns the record of the event's job, creating it. From job.*
// events it takes the first value seen of the job's identifying fields; an
// effect's own fields describe the effect, not its job.
func (s *Set) job(ev *twicetype.Event) *Job {
	j := s.jobs[ev.JobID]
	if j == nil && s.opts.MaxJobs > 0 && len(s.jobs) >= s.opts.MaxJobs {
		evict(s, &s.jobExp, ev.Time, s.releaseJob)
	}
	if j == nil {
		j = &Job{ID: ev.JobID, started: ev.Time, life: life{lastSeen: ev.Time}}
		s.jobs[ev.JobID] = j
		if s.jobIDs.Add(xxhash.Sum64String(ev.JobID)) {
			j.score = scoreFirst
		}
		s.jobExp.push(expiry[Job]{at: ev.Time + s.horizon, rec: j})
	}
	j.touch(ev.Time)
	if !ev.Kind.IsJob() {
		return j
	}
	var learned fieldSet
	if j.Type == "" && ev.JobType != "" {
		j.Type, learned = ev.JobType, learned|learnedType
	}
	if j.Queue == "" && ev.Queue != "" {
		j.Queue, learned = ev.Queue, learned|learnedQueue
	}
	if j.Key == "" && ev.Key != "" {
		j.Key, learned = ev.Key, learned|learnedKey
	}
	if j.Entity == "" && ev.Entity != "" {
		j.Entity, learned = ev.Entity, learned|learnedEntity
	}
	if j.Attrs == nil && ev.Attrs != nil {
		j.Attrs, learned = ev.Attrs, learned|learnedAttrs
	}
	if learned != 0 {
		s.learned(j, learned)
	}
	return j
}

// fieldSet says which job fields an event gave their first value.
type fieldSet uint8

const (
	learnedType fieldSet = 1 << iota
	learnedQueue
	learnedKey
	learnedEntity
	learnedAttrs
)

// learned applies what depends on job fields that just got their first
// value. Spec §1 takes the first value of a job's fields whichever of its
// events carries it, so a field that arrives on a later event (BullMQ's
// "added" has no data, Celery's task-started no kwargs) must count as if
// known from the job's first event: expectations of a job that already
// succeeded are set now, with the deadline of its success; starts
// waiting for the queue (retry-storm) or the entity (stale-execution) are
// placed; a held dead job moves to its queue; findings that named the
// job without its type or queue are relabelled. Most jobs learn every
// field on their first event, where none of this has anything to do.
func (s *Set) learned(j *Job, f fieldSet) {
	if f&learnedType != 0 {
		for i := range s.rules {
			if s.rules[i].JobType == j.Type {
				s.ruleJobs[i]++
			}
		}
	}
	if len(s.rules) > 0 {
		s.render(j)
	}
	if f&learnedQueue != 0 {
		if n := len(j.stormStarts()); s.rs != nil && n > 0 {
			s.rs.place(s, j, n)
		}
		if s.dl != nil {
			s.dl.queueLearned(s, j)
		}
	}
	if f&learnedEntity != 0 && s.se != nil && len(j.heldStarts()) > 0 {
		s.se.entityLearned(s, j)
	}
	if len(j.unlabelled()) > 0 && f&(learnedType|learnedQueue) != 0 {
		s.relabel(j)
	}
}

// jobSubject are the detectors whose findings are about one job (subject:
// its job_id) and name it in their message.
var jobSubject = map[string]bool{
	twicetype.MissingEffect: true, twicetype.EffectBeforeFailure: true, twicetype.DuplicateExecution: true,
	twicetype.StaleExecution: true, twicetype.LostJob: true,
}

// label sets the job_type and queue of finding f (detector det, raw
// subject raw) from j, its first job (spec §5), and notes the finding on
// j when either is not known yet. Retry-storm and dead-letter findings
// are about a queue: their queue is that queue, not the job's.
func (s *Set) label(f *twicetype.Finding, j *Job, det, raw string) {
	if j == nil {
		return
	}
	f.JobType = s.show("job_type", j.Type)
	if det != twicetype.RetryStorm && det != twicetype.DeadLetter {
		f.Queue = s.show("queue", j.Queue)
	}
	if j.Type != "" && (j.Queue != "" || det == twicetype.RetryStorm || det == twicetype.DeadLetter) {
		return
	}
	k := liveKey{det, raw}
	if l := j.lateOf(); !slices.Contains(l.unlabelled, k) {
		l.unlabelled = append(l.unlabelled, k)
	}
}

// relabel fills in the findings noted on j the type and queue it just
// learned: their job_type and queue, the "job ID" of a message made
// without the type ("TYPE ID"), lost-job's details.queue.
func (s *Set) relabel(j *Job) {
	plain := "job " + s.show("job_id", j.ID)
	l := j.late
	keep := l.unlabelled[:0]
	for _, k := range l.unlabelled {
		if s.findings.dirty != nil {
			s.findings.dirty[k] = struct{}{}
		}
		f := s.findings.byFP[twicetype.Fingerprint(k.detector, k.raw)]
		if f == nil {
			continue // a live view, made again when it changes
		}
		if f.JobType == "" && j.Type != "" {
			f.JobType = s.show("job_type", j.Type)
			if jobSubject[k.detector] {
				f.Message = strings.Replace(f.Message, plain, s.jobLabel(j), 1)
			}
		}
		queued := k.detector == twicetype.RetryStorm || k.detector == twicetype.DeadLetter
		if !queued && f.Queue == "" && j.Queue != "" {
			f.Queue = s.show("queue", j.Queue)
			if q, ok := f.Details["queue"].(string); ok && q == "" && k.detector == twicetype.LostJob {
				f.Details["queue"] = f.Queue
			}
		}
		if f.JobType == "" || (!queued && f.Queue == "") {
			keep = append(keep, k)
		}
	}
	if len(keep) == 0 {
		keep = nil
	}
	l.unlabelled = keep
	j.tidyLate()
}

// render recomputes the effect keys the rules render for j and keeps the
// linking index in step. A key that renders for a job that has already
// succeeded sets its expectation now, from the first success.
func (s *Set) render(j *Job) {
	if j.rendered == nil {
		j.rendered = make([]string, len(s.rules))
	}
	for i, rule := range s.rules {
		key := ""
		if rule.JobType == j.Type {
			if k, ok := rule.Render(j); ok {
				key = k
			}
		}
		if key == j.rendered[i] {
			continue
		}
		if old := j.rendered[i]; old != "" {
			s.linked.remove(old, linkRef{j, i})
		} else {
			s.ruleRendered[i]++
		}
		j.rendered[i] = key
		if key != "" {
			s.linked.add(key, linkRef{j, i})
			if j.succeeded && s.me != nil {
				s.me.expect(s, j, i)
			}
		}
	}
}

// effectJob returns the job an effect event links to for per-attempt
// rules: its job_id, or by template when exactly one job renders its key.
func (s *Set) effectJob(ev *twicetype.Event, r *refs) *Job {
	if r.job != nil {
		return r.job
	}
	var buf [2]*Job
	if js := s.linked.jobs(ev.Effect, ev.EffectKey, buf[:0]); len(js) == 1 {
		return js[0]
	}
	return nil
}

func (s *Set) effectKey(key string, t int64) *EffectKey {
	if max := s.opts.MaxKeys; max > 0 && len(s.keys) >= max && s.keys[key] == nil {
		evict(s, &s.keyExp, t, func(k *EffectKey) { s.releaseKey(k) })
	}
	return lookup(s.keys, &s.keyExp, key, t, s.horizon, func() *EffectKey {
		return &EffectKey{Key: key, life: life{lastSeen: t}}
	})
}

func (s *Set) entity(name string, t int64) *Entity {
	if max := s.opts.MaxEntities; max > 0 && len(s.entities) >= max && s.entities[name] == nil {
		evict(s, &s.entityExp, t, func(e *Entity) { s.releaseEntity(e) })
	}
	return lookup(s.entities, &s.entityExp, name, t, s.horizon, func() *Entity {
		return &Entity{Name: name, life: life{lastSeen: t}}
	})
}

// evict releases the record of q idle the longest, to make room under a
// cap. Entries of records seen since they were queued go back with their
// new expiry first, so the one released is the least recently seen.
func evict[T any, P interface {
	record[T]
	isReleased() bool
}](s *Set, q *fifo[expiry[T]], t int64, release func(*T)) {
	for n := q.len(); n > 0; n-- {
		x := q.pop()
		if P(x.rec).isReleased() {
			continue
		}
		if at := P(x.rec).seen() + s.horizon; at > x.at {
			q.push(expiry[T]{at: at, rec: x.rec})
			continue
		}
		release(x.rec)
		s.evicted++
		return
	}
}

// Evicted returns how many records caps released early.
func (s *Set) Evicted() int64 { return s.evicted }

// lookup returns the record of key seen at t, creating it (and queueing
// its expiry) when there is none; create must set its lastSeen to t.
func lookup[T any, P interface {
	record[T]
	touch(int64)
}](m map[string]*T, q *fifo[expiry[T]], key string, t, horizon int64, create func() *T) *T {
	rec := m[key]
	if rec == nil {
		rec = create()
		m[key] = rec
		q.push(expiry[T]{at: t + horizon, rec: rec})
	}
	P(rec).touch(t)
	return rec
}

// advance fires deadlines strictly before t and releases idle state:
// effect keys and entities before jobs, so that a key judged now still
// sees the jobs its effects link to.
func (s *Set) advance(t int64) {
	for _, a := range s.advancers {
		a.advance(s, t)
	}
	expire(&s.keyExp, t, s.horizon, func(k *EffectKey) bool { s.releaseKey(k); return true })
	expire(&s.entityExp, t, s.horizon, func(e *Entity) bool { s.releaseEntity(e); return true })
	expire(&s.jobExp, t, s.horizon, s.releaseIdleJob)
}

// releaseIdleJob releases a job idle for longer than the horizon, unless
// its life is still open (its last job.* event was an enqueue, a start or
// a failure): such a job may still start, succeed or be judged stale, and
// it needs its type, key and enqueue time for that. Stalled jobs are what
// lost-job reports, so they stay few.
func (s *Set) releaseIdleJob(j *Job) bool {
	if j.open || s.pins[j.ID] > 0 {
		return false
	}
	s.releaseJob(j)
	return true
}

func (s *Set) releaseJob(j *Job) {
	if j.released {
		return
	}
	for _, r := range s.jobRel {
		r.releaseJob(s, j)
	}
	for i, key := range j.rendered {
		if key != "" {
			s.linked.remove(key, linkRef{j, i})
		}
	}
	j.released = true
	delete(s.jobs, j.ID)
}

func (s *Set) releaseKey(k *EffectKey) {
	if k.released {
		return
	}
	for _, r := range s.keyRel {
		r.releaseKey(s, k)
	}
	k.released = true
	delete(s.keys, k.Key)
	s.unpin(k)
}

// pinned lists the jobs effect i of k names (its job_id, or the jobs
// that rendered its key) that no earlier effect of k names.
func (k *EffectKey) pinned(i int, buf []string) []string {
	e := &k.effects[i]
	ids := e.linked
	if e.jobID != "" {
		ids = []string{e.jobID}
	}
	for _, id := range ids {
		if !slices.ContainsFunc(k.effects[:i], func(o effectObs) bool { return o.jobID == id || slices.Contains(o.linked, id) }) {
			buf = append(buf, id)
		}
	}
	return buf
}

// pinLast pins the jobs k's last effect names first.
func (s *Set) pinLast(k *EffectKey) {
	var buf [4]string
	for _, id := range k.pinned(len(k.effects)-1, buf[:0]) {
		s.pins[id]++
	}
}

// pin pins the jobs k's effects name (restoring a snapshot).
func (s *Set) pin(k *EffectKey) {
	var buf [4]string
	for i := range k.effects {
		for _, id := range k.pinned(i, buf[:0]) {
			s.pins[id]++
		}
	}
}

// unpin undoes pin when k is released.
func (s *Set) unpin(k *EffectKey) {
	var buf [4]string
	for i := range k.effects {
		for _, id := range k.pinned(i, buf[:0]) {
			if s.pins[id]--; s.pins[id] <= 0 {
				delete(s.pins, id)
			}
		}
	}
}

func (s *Set) releaseEntity(e *Entity) {
	if e.released {
		return
	}
	for _, r := range s.entityRel {
		r.releaseEntity(s, e)
	}
	e.released = true
	delete(s.entities, e.Name)
}

// Finish ends the audit at end, the largest event time of the input: it
// fires every deadline at or before end, releases all state and returns
// the number of distinct jobs whose deadlines lie after end.
func (s *Set) Finish(end int64) (pending int64) {
	pendingJobs := make(map[*Job]struct{})
	for _, a := range s.advancers {
		a.finish(s, end, func(j *Job) { pendingJobs[j] = struct{}{} })
	}
	// Effect keys first: duplicate-effect links their effects to jobs
	// that must still be known. The expiry queues hold every live record
	// in a deterministic order (by first event), so draining them releases
	// in that order.
	for s.keyExp.len() > 0 {
		s.releaseKey(s.keyExp.pop().rec)
	}
	for s.entityExp.len() > 0 {
		s.releaseEntity(s.entityExp.pop().rec)
	}
	for s.jobExp.len() > 0 {
		s.releaseJob(s.jobExp.pop().rec)
	}
	for _, f := range s.finishers {
		f.finishAll(s)
	}
	return int64(len(pendingJobs))
}

// show returns a value as reports may show it (redacted when configured).
func (s *Set) show(field, v string) string {
	if s.opts.Redact == nil || v == "" {
		return v
	}
	return s.opts.Redact(field, v)
}

// noQueue stands for the queue of jobs whose events name none.
const noQueue = "(none)"

// showQueue shows a queue name, redacted when configured; noQueue is not
// a value and is shown as it is.
func (s *Set) showQueue(q string) string {
	if q == noQueue {
		return q
	}
	return s.show("queue", q)
}

// jobLabel names a job in messages: its type and id, or just "job" and
// its id when no event gave the type yet (label notes the finding, to be
// relabelled if the type arrives later).
func (s *Set) jobLabel(j *Job) string {
	if j.Type == "" {
		return "job " + s.show("job_id", j.ID)
	}
	return s.show("job_type", j.Type) + " " + s.show("job_id", j.ID)
}

// ref names an event in findings: its id (redacted like the id field) or,
// without one, where it was read.
func (s *Set) ref(ev *twicetype.Event) string {
	if ev.ID != "" {
		return s.show("id", ev.ID)
	}
	return ev.Ref()
}

func fmtDur(ns int64) string { return time.Duration(ns).String() }
