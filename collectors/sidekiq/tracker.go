package sidekiq

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/twicehq/twice/collectors/jobpath"
	"github.com/twicehq/twice/twicetype"
)

// snapshot is Sidekiq's Redis state as one poll read it, in one MULTI
// transaction: every structure as of one instant.
type snapshot struct {
	// Now is the Redis server's TIME, Unix ns.
	Now int64
	// Queues maps each queue read to its oldest payloads (the next to
	// run), oldest last, at most MaxList; Truncated says which queues were
	// longer.
	Queues    map[string][]string
	Truncated map[string]bool
	// Retry holds the retry set's first entries by score (the next to be
	// retried); RetryTruncated says the set was longer.
	Retry          []zentry
	RetryTruncated bool
	// Dead holds the dead set's entries with a score at or above the
	// tracker's cursor.
	Dead []zentry
	// Processes are the members of the processes set.
	Processes []process
	// Processed and Failed are stat:processed and stat:failed.
	Processed, Failed int64
}

type zentry struct {
	Raw   string
	Score float64
}

// process is one Sidekiq process as its heartbeat left it.
type process struct {
	Identity string
	// Exists says whether the process's hash still exists: it expires
	// 60 s after the last heartbeat.
	Exists bool
	// Beat is the hash's beat field as written.
	Beat string
	// Queues are the queues it fetches from (its info), nil when unknown:
	// a job of another queue cannot have run on it.
	Queues []string
	// Work holds the payloads its work hash showed as running.
	Work []work
}

type work struct {
	Raw   string // the job payload
	Queue string
	RunAt int64 // Unix ns, from run_at (seconds; floored)
}

// where a tracked job was last seen.
type where uint8

const (
	atQueue    where = iota + 1 // in a queue list
	atRunning                   // in a process's work hash
	atRetry                     // in the retry set
	atUnplaced                  // gone from a queue or the retry set, not seen since
)

// tracked is one job the tracker follows.
type tracked struct {
	j  *job // the latest payload seen
	at where
	// proc and beat: the process whose work hash showed it, and that
	// process's beat then.
	proc, beat string
	// queuedAt is the last snapshot time it was seen in a queue: its run
	// started after. seenAt is the last snapshot time it was seen at all.
	queuedAt, seenAt int64
	// afterRetry: unplaced after leaving the retry set, so the run that
	// follows has an enqueued_at twice never saw.
	afterRetry bool
	// leftSeq is the snapshot that first missed it.
	leftSeq uint64
	// unexplainedAt is unexplained() when it was last seen: no failure
	// went unexplained since when it is still the same.
	unexplainedAt int64
	retryScore    float64
	// countedF is the failure (its failed_at) last counted in
	// FailuresSeen, so a failure seen in many polls counts once.
	countedF string
	emitted  map[string]bool
}

// procState is what the tracker remembers of a process.
type procState struct {
	beat       string
	firstSeq   uint64 // first snapshot it was in
	beatSeq    uint64 // last snapshot its beat changed at
	beatAt     int64  // snapshot time of that change
	queues     []string
	dead, gone bool
	deadSeq    uint64 // the snapshot that found it dead
	goneSeq    uint64 // the snapshot it was first missing from
}

// outcome counts, for metrics and coverage.
type trackerStats struct {
	Snapshots int64
	// Events emitted, by kind name.
	Events map[string]int64
	// SucceededCertain: inferred successes while no failure went
	// unexplained; SucceededLikely: the others.
	SucceededCertain, SucceededLikely int64
	// Unknown: runs that ended without a trace while a process died or a
	// failure went unexplained (retry: false jobs).
	Unknown int64
	// LostWithProcess: runs in the work hash of a process that died.
	LostWithProcess int64
	// RunsSeenEnding: runs whose end twice emitted (success, failure or
	// death) plus runs lost with their process.
	RunsSeenEnding int64
	// FailuresSeen: failures seen in the retry and dead sets.
	FailuresSeen int64
	// ProcessedDelta, FailedDelta: stat:processed and stat:failed since
	// the first snapshot.
	ProcessedDelta, FailedDelta int64
	Malformed                   int64
}

// emission is one event the tracker wants written, and where it was seen.
type emission struct {
	spec
	lane string
}

// badPayload is a payload that is not a Sidekiq job.
type badPayload struct {
	lane, reason string
	// at is its place in the structure as read: 1 for the next job to
	// run (or retry), counting back.
	at int64
}

// tracker turns successive snapshots into events. It does no I/O and
// reads no clock: time is the snapshot's.
type tracker struct {
	m         *jobpath.Mapping
	deadAfter int64 // ns a process may go without a beat before it counts as dead

	seq    uint64
	jobs   map[string]*tracked
	procs  map[string]*procState
	cache  map[string]*job // raw payload → job, for the payloads of the last snapshot
	bad    map[string]bool // hashes of payloads already reported malformed
	cursor float64         // dead set: scores below were read
	atCur  map[string]bool // hashes of the dead payloads read at exactly cursor
	// historyOnly emits only what Sidekiq keeps as history, the failures
	// of the retry and dead sets, for audits.
	historyOnly bool
	// match says whether a queue is read; nil reads every queue. Queue
	// lists are chosen by it before they are read; payloads of the retry
	// and dead sets and work hashes by their queue.
	match func(queue string) bool

	baseProcessed, baseFailed int64
	hasBase                   bool
	stats                     trackerStats

	// hist holds stat:processed (since the base) of recent snapshots;
	// missedReported is how many runs were reported missed so far, and
	// missedNow how many more the last snapshot found.
	hist           []histPoint
	missedReported int64
	missedNow      int64
}

type histPoint struct{ at, processed int64 }

// settle is how long after stat:processed counted a run poll mode waits
// before it calls the run missed: heartbeats come every 5 s, and a run
// that left a queue is judged after every process beat again.
const settle = int64(20 * time.Second)

func newTracker(m *jobpath.Mapping, deadAfter int64) *tracker {
	return &tracker{
		m: m, deadAfter: deadAfter,
		jobs: map[string]*tracked{}, procs: map[string]*procState{},
		cache: map[string]*job{}, bad: map[string]bool{}, atCur: map[string]bool{},
		stats: trackerStats{Events: map[string]int64{}},
	}
}

// unexplained is how many failures stat:failed counted that the retry and
// dead sets did not show: failures of retry: false jobs, and failures
// whose retry left the retry set between two polls.
func (t *tracker) unexplained() int64 { return t.stats.FailedDelta - t.stats.FailuresSeen }

// observe takes one snapshot and returns the events it implies, sorted by
// time, and the payloads newly found malformed.
func (t *tracker) observe(s *snapshot) ([]emission, []badPayload) {
	t.seq++
	t.stats.Snapshots++
	var out []emission
	var bad []badPayload
	cache := make(map[string]*job, len(t.cache))
	parse := func(raw, lane string, at int) *job {
		j, ok := cache[raw]
		if !ok {
			if j, ok = t.cache[raw]; !ok {
				var err error
				if j, err = parseJob([]byte(raw), t.m); err != nil {
					h := payloadHash(raw)
					if !t.bad[h] {
						t.bad[h] = true
						t.stats.Malformed++
						bad = append(bad, badPayload{lane: lane, at: int64(at), reason: err.Error() + ": " + strconv.Quote(shorten(raw))})
					}
					return nil
				}
			}
			cache[raw] = j
		}
		if t.match != nil && !t.match(j.Queue) {
			return nil
		}
		return j
	}
	emit := func(tj *tracked, sp spec, lane string) {
		if tj.emitted[sp.id] {
			return
		}
		tj.emitted[sp.id] = true
		t.stats.Events[sp.kind.String()]++
		out = append(out, emission{sp, lane})
	}
	get := func(j *job) *tracked {
		tj := t.jobs[j.JID]
		if tj == nil {
			tj = &tracked{emitted: map[string]bool{}}
			t.jobs[j.JID] = tj
		}
		return tj
	}
	// startBound is the earliest its run can have started.
	startBound := func(tj *tracked, j *job) int64 {
		ts := j.enqueued
		if tj.queuedAt > ts && tj.j != nil && tj.j.EnqueuedAt == j.EnqueuedAt {
			ts = tj.queuedAt
		}
		return ts
	}
	enqueued := func(tj *tracked, j *job, lane string) {
		if j.EnqueuedAt != "" && !t.historyOnly {
			emit(tj, spec{id: idEnqueued(j), ts: j.enqueued, kind: twicetype.JobEnqueued, job: j}, lane)
		}
	}
	// started emits the start of the run a payload names; attempt is
	// attemptOfRun for a payload about to run or running, attemptFailed
	// for one that failed.
	started := func(tj *tracked, j *job, attempt, ts int64, lane string) {
		if j.EnqueuedAt != "" && !t.historyOnly {
			emit(tj, spec{id: idStarted(j), ts: ts, kind: twicetype.JobStarted, job: j, attempt: attempt}, lane)
		}
	}

	// Stats first: unexplained failures are judged with them.
	if !t.hasBase {
		t.baseProcessed, t.baseFailed, t.hasBase = s.Processed, s.Failed, true
	}
	t.stats.ProcessedDelta = s.Processed - t.baseProcessed
	t.stats.FailedDelta = s.Failed - t.baseFailed

	// Processes: beats, deaths, clean exits.
	present := map[string]*process{}
	for i := range s.Processes {
		p := &s.Processes[i]
		present[p.Identity] = p
		ps := t.procs[p.Identity]
		if ps == nil {
			ps = &procState{firstSeq: t.seq, beatSeq: t.seq, beatAt: s.Now, beat: p.Beat}
			t.procs[p.Identity] = ps
		}
		if p.Beat != ps.beat {
			ps.beat, ps.beatSeq, ps.beatAt = p.Beat, t.seq, s.Now
		}
		if p.Queues != nil {
			ps.queues = p.Queues
		}
		if !ps.dead && (!p.Exists || s.Now-ps.beatAt > t.deadAfter) {
			ps.dead, ps.deadSeq = true, t.seq
		}
	}
	for id, ps := range t.procs {
		if present[id] == nil && !ps.gone {
			ps.gone, ps.goneSeq = true, t.seq
			if !ps.dead && s.Now-ps.beatAt > t.deadAfter/2 {
				// It had stopped beating before it left the set: Sidekiq
				// pruned a process that died, not one that shut down.
				ps.dead, ps.deadSeq = true, t.seq
			}
		}
	}

	seenNow := map[string]bool{}
	mark := func(tj *tracked, j *job) {
		tj.j = j
		tj.seenAt = s.Now
		tj.unexplainedAt = t.unexplained()
		seenNow[j.JID] = true
	}

	// The dead set: new entries only.
	maxScore := t.cursor
	atMax := map[string]bool{}
	for i, z := range s.Dead {
		h := payloadHash(z.Raw)
		if z.Score < t.cursor || (z.Score == t.cursor && t.atCur[h]) {
			continue
		}
		switch {
		case z.Score > maxScore:
			maxScore, atMax = z.Score, map[string]bool{h: true}
		case z.Score == maxScore:
			atMax[h] = true
		}
		j := parse(z.Raw, "dead", i+1)
		if j == nil {
			continue
		}
		tj := get(j)
		enqueued(tj, j, "dead")
		if j.FailedAt != "" {
			started(tj, j, j.attemptFailed(), startBound(tj, j), "dead")
			emit(tj, spec{id: idFailed(j), ts: j.failed, kind: twicetype.JobFailed, job: j, attempt: j.attemptFailed(), retry: -1, err: j.Error}, "dead")
			if tj.countedF != j.FailedAt {
				tj.countedF = j.FailedAt
				t.stats.FailuresSeen++
				t.stats.RunsSeenEnding++
			}
		}
		score := strconv.FormatFloat(z.Score, 'f', -1, 64)
		deadTS := int64(z.Score * 1e9)
		emit(tj, spec{id: "sidekiq:" + j.JID + ":dead:" + score, ts: deadTS, kind: twicetype.JobDead, job: j, attempt: j.attemptFailed(), err: j.Error}, "dead")
		delete(t.jobs, j.JID) // dead is an end; a replay is a new push
		seenNow[j.JID] = true
	}
	if maxScore > t.cursor {
		t.cursor, t.atCur = maxScore, atMax
	} else {
		for raw := range atMax {
			t.atCur[raw] = true
		}
	}

	// The retry set: every failure that will be retried.
	var retryMax float64
	for i, z := range s.Retry {
		retryMax = max(retryMax, z.Score)
		j := parse(z.Raw, "retry", i+1)
		if j == nil || seenNow[j.JID] {
			continue
		}
		tj := get(j)
		enqueued(tj, j, "retry")
		if j.FailedAt != "" {
			started(tj, j, j.attemptFailed(), startBound(tj, j), "retry")
			if tj.countedF != j.FailedAt {
				tj.countedF = j.FailedAt
				t.stats.FailuresSeen++
				t.stats.RunsSeenEnding++
			}
			emit(tj, spec{id: idFailed(j), ts: j.failed, kind: twicetype.JobFailed, job: j, attempt: j.attemptFailed(), retry: 1, err: j.Error}, "retry")
		}
		tj.at, tj.retryScore, tj.afterRetry = atRetry, z.Score, false
		mark(tj, j)
	}

	// Queue lists: jobs waiting.
	for _, q := range sortedKeys(s.Queues) {
		lane := "queue:" + q
		for i, raw := range s.Queues[q] {
			j := parse(raw, lane, len(s.Queues[q])-i)
			if j == nil || seenNow[j.JID] {
				continue
			}
			tj := get(j)
			enqueued(tj, j, lane)
			tj.at, tj.queuedAt, tj.afterRetry = atQueue, s.Now, false
			mark(tj, j)
		}
	}

	// Work hashes of processes: jobs running.
	for i := range s.Processes {
		p := &s.Processes[i]
		if t.procs[p.Identity].dead {
			continue
		}
		for i, w := range p.Work {
			lane := "queue:" + w.Queue
			j := parse(w.Raw, p.Identity+":work", i+1)
			if j == nil || seenNow[j.JID] {
				continue
			}
			tj := get(j)
			enqueued(tj, j, lane)
			started(tj, j, j.attemptOfRun(), max(startBound(tj, j), w.RunAt), lane)
			tj.at, tj.proc, tj.beat, tj.afterRetry = atRunning, p.Identity, p.Beat, false
			mark(tj, j)
		}
	}

	// Jobs not seen in this snapshot: where did they go?
	for jid, tj := range t.jobs {
		if seenNow[jid] {
			continue
		}
		j := tj.j
		lane := "queue:" + j.Queue
		switch tj.at {
		case atQueue:
			// Fetched by a worker (or deleted by an operator: polling
			// cannot tell).
			started(tj, j, j.attemptOfRun(), startBound(tj, j), lane)
			t.unplace(tj, false)
		case atRetry:
			if s.RetryTruncated && tj.retryScore >= retryMax {
				continue // out of the part of the set that was read
			}
			// Pushed back to its queue and not seen there.
			t.unplace(tj, true)
		case atRunning:
			ps := t.procs[tj.proc]
			switch {
			case ps == nil || ps.dead:
				t.stats.LostWithProcess++
				t.stats.RunsSeenEnding++
				delete(t.jobs, jid)
			case ps.beat == tj.beat && !ps.gone:
				// Same heartbeat, and the job is not in its hash: the hash
				// expired; wait for the process's fate.
			case j.RetryFalse && t.unexplained() != tj.unexplainedAt:
				// A retry: false job leaves no trace when it fails, and
				// some failure went unexplained meanwhile.
				t.stats.Unknown++
				delete(t.jobs, jid)
			default:
				// A newer heartbeat no longer shows it: the run ended, and
				// its failure would be in the retry or dead set by now.
				t.succeed(tj, s.Now, emit)
				delete(t.jobs, jid)
			}
		case atUnplaced:
			switch t.judgeUnplaced(tj) {
			case verdictWait:
			case verdictSucceeded:
				t.succeed(tj, s.Now, emit)
				delete(t.jobs, jid)
			case verdictUnknown:
				t.stats.Unknown++
				delete(t.jobs, jid)
			}
		}
	}

	// Forget processes no job can refer to any more.
	for id, ps := range t.procs {
		if ps.gone && t.seq-ps.goneSeq > 1000 {
			delete(t.procs, id)
		}
	}
	t.cache = cache
	t.missedNow = t.missed(s.Now)
	sort.SliceStable(out, func(a, b int) bool { return out[a].ts < out[b].ts })
	return out, bad
}

// missed returns how many more runs than reported so far stat:processed
// counted, by settle ago, without any poll seeing them end. Runs that
// ended since count as seen, so the figure errs low, never high.
func (t *tracker) missed(now int64) int64 {
	if t.match != nil {
		// stat:processed counts the runs of every queue: against the
		// runs of some queues it would call the others missed.
		return 0
	}
	t.hist = append(t.hist, histPoint{now, t.stats.ProcessedDelta})
	var settled *histPoint
	i := 0
	for ; i < len(t.hist) && t.hist[i].at <= now-settle; i++ {
		settled = &t.hist[i]
	}
	if settled == nil {
		return 0
	}
	base := *settled
	t.hist = append([]histPoint{base}, t.hist[i:]...)
	total := base.processed - t.stats.RunsSeenEnding - t.stats.Unknown
	if total <= t.missedReported {
		return 0
	}
	n := total - t.missedReported
	t.missedReported = total
	return n
}

// unplace records that a job left where it was and has not been seen since.
func (t *tracker) unplace(tj *tracked, afterRetry bool) {
	tj.at, tj.afterRetry, tj.leftSeq = atUnplaced, afterRetry, t.seq
}

type verdict uint8

const (
	verdictWait verdict = iota
	verdictSucceeded
	verdictUnknown
)

// judgeUnplaced decides about a run that left a queue (or the retry set)
// and was never seen in a work hash: once every process alive then has
// sent a heartbeat since, a run still going would be in a work hash, so
// it ended; a failure would be in the retry or dead set. When a process
// alive then died before beating again, the run may have died with it.
func (t *tracker) judgeUnplaced(tj *tracked) verdict {
	for _, ps := range t.procs {
		switch {
		case ps.queues != nil && !slices.Contains(ps.queues, tj.j.Queue):
			continue // it does not fetch from the job's queue
		case ps.firstSeq > tj.leftSeq:
			continue // it started after the job left
		case ps.gone && !ps.dead && ps.goneSeq < tj.leftSeq:
			continue // it had shut down before
		case ps.dead && (ps.deadSeq < tj.leftSeq-1 || tj.seenAt-ps.beatAt > silentAfter):
			continue // it was dead, silent for long, before the job left
		case ps.beatSeq > tj.leftSeq:
			// It beat after the job left: a run still going would have
			// been in that heartbeat's work hash.
			continue
		case ps.dead:
			return verdictUnknown // it may have died running the job
		case ps.gone:
			continue // shut down cleanly: unfinished jobs went back to their queue
		default:
			return verdictWait
		}
	}
	if tj.j.RetryFalse && t.unexplained() != tj.unexplainedAt {
		// A retry: false job leaves no trace when it fails, and some
		// failure went unexplained meanwhile.
		return verdictUnknown
	}
	return verdictSucceeded
}

// silentAfter: a process that later turns out dead, and had not beaten
// for this long (two heartbeats) when a job was last seen waiting, was
// already dead when the job left.
const silentAfter = int64(10 * time.Second)

// succeed emits the inferred success of a job's current run.
func (t *tracker) succeed(tj *tracked, now int64, emit func(*tracked, spec, string)) {
	j := tj.j
	if tj.unexplainedAt == t.unexplained() {
		t.stats.SucceededCertain++
	} else {
		t.stats.SucceededLikely++
	}
	t.stats.RunsSeenEnding++
	lane := "queue:" + j.Queue
	if tj.afterRetry {
		// The run after a retry: its push was never seen, so its events
		// are named after the failure that preceded it.
		// Sidekiq pushed it back no earlier than its retry time and the
		// last poll that saw it in the retry set: the earliest it can
		// have been enqueued and started, as for every inferred start.
		base := "sidekiq:" + j.JID + ":after:" + j.FailedAt
		pushed := max(int64(tj.retryScore*1e9), tj.seenAt)
		emit(tj, spec{id: base + ":enqueued", ts: pushed, kind: twicetype.JobEnqueued, job: j}, lane)
		emit(tj, spec{id: base + ":started", ts: pushed, kind: twicetype.JobStarted, job: j, attempt: j.attemptOfRun()}, lane)
		emit(tj, spec{id: base + ":succeeded", ts: now, kind: twicetype.JobSucceeded, job: j, attempt: j.attemptOfRun()}, lane)
		return
	}
	emit(tj, spec{id: idSucceeded(j), ts: now, kind: twicetype.JobSucceeded, job: j, attempt: j.attemptOfRun()}, lane)
}

func payloadHash(raw string) string {
	h := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(h[:12])
}
