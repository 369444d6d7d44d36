package bullmq

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/twicehq/twice/collectors/jobpath"
	"github.com/twicehq/twice/collectors/jsonl"
	"github.com/twicehq/twice/twicetype"
)

// entry is one entry of a queue's events stream: BullMQ's field/value
// pairs ("event", "jobId", "prev", ...).
type entry struct {
	id     streamID
	fields map[string]string
}

func (e *entry) event() string { return e.fields["event"] }
func (e *entry) jobID() string { return e.fields["jobId"] }
func (e *entry) prev() string  { return e.fields["prev"] }

// jobInfo is what a lookup read of a job's hash, at one instant.
type jobInfo struct {
	// exists is false when the hash was gone (removed, removeOnComplete).
	exists bool
	name   string
	// payload is the job as BullMQ stores it, data and opts parsed: what
	// the configured paths read. nil when the hash was gone.
	payload map[string]any
	// payloadErr says why data or opts could not be read as JSON.
	payloadErr string
	// ats is the hash's attempts started ("ats"), 0 when absent.
	ats int64
}

// lookupResult is one consistent read of the jobs a batch needs: their
// hashes, and the stream's entries after the batch, as of one instant.
type lookupResult struct {
	jobs map[string]jobInfo
	// after are the entries added after the batch's last one until the
	// read, when attempts had to be resolved.
	after []entry
}

// lookupFunc reads the hashes of jobs, and when withAfter the entries of
// the stream after last, in one transaction.
type lookupFunc func(jobs []string, withAfter bool, last streamID) (*lookupResult, error)

// jobState is what a queue remembers of a job that has not ended.
type jobState struct {
	// started counts the attempts started (BullMQ's ats), when known.
	started      int64
	knowsStarted bool
	// active: the job's last lifecycle entry was "active", so a "delayed"
	// that follows is a failed attempt waiting for its backoff.
	active bool
	name   string
	f      jobpath.Fields
}

// output is what one stream entry became: an event, a malformed entry,
// or neither (an entry that means nothing to the detectors, which only
// moves the position).
type output struct {
	id        streamID
	event     *twicetype.Event
	malformed *twicetype.Malformed
}

// maxJobs caps the jobs a queue remembers; past it, jobs are forgotten
// and read again from Redis when they show up (exact, at one more read).
const maxJobs = 100_000

// Stats counts what a queue's reader saw. Safe for concurrent use.
type Stats struct {
	mu sync.Mutex
	s  QueueStats
}

// QueueStats are the counts of one queue (or the sum of several).
type QueueStats struct {
	// Entries is the stream entries read; Events those that became
	// events.
	Entries, Events int64
	// Ignored counts entries that mean nothing to the detectors, by
	// BullMQ event name (drained, progress, retries-exhausted, the
	// "waiting" that follows "added", duplicated, ...).
	Ignored map[string]int64
	// Malformed counts entries that could not be mapped (no jobId, no
	// event name).
	Malformed int64
	// HashMissing counts jobs whose hash was gone when twice read it
	// (removeOnComplete, removeOnFail, a removed job): their events carry
	// no job_type (unless "added" named it), key, entity or attrs.
	HashMissing int64
	// PayloadErrors counts jobs whose data or opts were not JSON.
	PayloadErrors int64
	// AttemptsUnknown counts job events sent without attempt, because
	// the job's attempts started could not be read.
	AttemptsUnknown int64
	// Lookups counts the reads of job hashes (one transaction each).
	Lookups int64
	// Lost counts entries trimmed from the stream before twice read them.
	Lost int64
}

// Snapshot returns a copy of the counts.
func (s *Stats) Snapshot() QueueStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.s
	out.Ignored = make(map[string]int64, len(s.s.Ignored))
	for k, v := range s.s.Ignored {
		out.Ignored[k] = v
	}
	return out
}

func (s *Stats) add(f func(*QueueStats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.s.Ignored == nil {
		s.s.Ignored = map[string]int64{}
	}
	f(&s.s)
}

// queue maps the entries of one queue's events stream to events. It is
// not safe for concurrent use.
type queue struct {
	source string // the source's name
	name   string
	// keyPrefix is "PREFIX:QUEUE:", the start of every key of the queue.
	keyPrefix string
	label     string // "SOURCE QUEUE", the Source of events and malformed
	m         *jobpath.Mapping
	jobs      map[string]*jobState
	stats     *Stats
	parser    *jsonl.Parser
	// warn logs a problem with one job (a payload that is not JSON); it
	// is called for the first few only.
	warn     func(format string, args ...any)
	warnings int
}

func newQueue(source, prefix, name string, m *jobpath.Mapping, warn func(string, ...any)) *queue {
	if warn == nil {
		warn = func(string, ...any) {}
	}
	return &queue{
		source:    source,
		name:      name,
		keyPrefix: prefix + ":" + name + ":",
		label:     source + " " + name,
		m:         m,
		jobs:      map[string]*jobState{},
		stats:     &Stats{},
		parser:    jsonl.NewParser(),
		warn:      warn,
	}
}

// streamKey is the queue's events stream.
func (q *queue) streamKey() string { return q.keyPrefix + "events" }

// isReplay: an ended job sent back to wait (job.retry('failed') or
// 'completed', Queue.retryJobs): a new enqueue of the same job id.
func isReplay(e *entry) bool {
	return e.event() == "waiting" && (e.prev() == "failed" || e.prev() == "completed")
}

// jobEvent lists the entries that concern one job's lifecycle.
func jobEvent(name string) bool {
	switch name {
	case "added", "waiting", "active", "completed", "failed", "delayed", "stalled", "removed":
		return true
	}
	return false
}

// needs says which jobs of a batch must be read from Redis and where
// their attempt count must be resolved: at the first entry of a job the
// queue does not know (its earlier entries were before the position read
// from, or trimmed), and at each replay (job.retry may reset ats).
type needs struct {
	order   []string          // jobs to read, in first-seen order
	resolve map[string][]int  // job → batch indexes where its count restarts
	data    map[string]bool   // job → must be read
	fresh   map[string]string // job → name, for jobs "added" in the batch
}

func (q *queue) plan(batch []entry) *needs {
	n := &needs{resolve: map[string][]int{}, data: map[string]bool{}, fresh: map[string]string{}}
	seen := map[string]bool{} // known from here on: remembered or resolved
	want := func(j string) {
		if !n.data[j] {
			n.data[j] = true
			n.order = append(n.order, j)
		}
	}
	for i := range batch {
		e := &batch[i]
		j := e.jobID()
		if j == "" || !jobEvent(e.event()) {
			continue
		}
		switch {
		case e.event() == "added":
			seen[j] = true
			if q.m.Empty() {
				continue // the name is in the entry; nothing else to read
			}
			want(j)
		case isReplay(e):
			seen[j] = true
			want(j)
			n.resolve[j] = append(n.resolve[j], i)
		case e.event() == "removed":
			// Its hash is gone already; what is remembered is all there is.
		case !seen[j]:
			seen[j] = true
			if _, ok := q.jobs[j]; ok {
				continue
			}
			want(j)
			n.resolve[j] = append(n.resolve[j], i)
		}
	}
	return n
}

// mapBatch maps a batch of entries read in order. full says the read
// returned as many entries as it asked for, so more may follow: a
// "waiting" from "active" at the end is then left for the next batch,
// because the "stalled" that would make it a stall comes right after it
// (one script writes both). It returns the outputs of the entries it
// consumed, in order; the first entry not consumed is the next to read.
// It reads Redis only through lookup, and changes nothing when lookup
// fails.
func (q *queue) mapBatch(batch []entry, full bool, lookup lookupFunc) ([]output, error) {
	if full && len(batch) > 1 {
		if last := &batch[len(batch)-1]; last.event() == "waiting" && last.prev() == "active" {
			batch = batch[:len(batch)-1]
		}
	}
	if len(batch) == 0 {
		return nil, nil
	}
	n := q.plan(batch)
	var res *lookupResult
	if len(n.order) > 0 {
		var err error
		res, err = lookup(n.order, len(n.resolve) > 0, batch[len(batch)-1].id)
		if err != nil {
			return nil, err
		}
		q.stats.add(func(s *QueueStats) { s.Lookups++ })
	}
	// The attempts started before each resolve point: the count read at
	// the lookup, less the starts ("active") after the point.
	startsAt := map[string]map[int]int64{}
	for j, points := range n.resolve {
		info := res.jobs[j]
		if !info.exists {
			continue
		}
		after := int64(0)
		for k := range res.after {
			if e := &res.after[k]; e.event() == "active" && e.jobID() == j {
				after++
			}
		}
		startsAt[j] = map[int]int64{}
		for _, p := range points {
			c := after
			for k := p; k < len(batch); k++ {
				if e := &batch[k]; e.event() == "active" && e.jobID() == j {
					c++
				}
			}
			startsAt[j][p] = max(info.ats-c, 0)
		}
	}

	var st QueueStats
	st.Ignored = map[string]int64{}
	out := make([]output, 0, len(batch))
	ended := map[string]bool{}
	for i := range batch {
		e := &batch[i]
		st.Entries++
		o := output{id: e.id}
		ev, mal, ignored := q.mapEntry(batch, i, n, res, startsAt, ended, &st)
		switch {
		case mal != "":
			st.Malformed++
			o.malformed = &twicetype.Malformed{Source: q.label, Line: int64(e.id.ms), Reason: "entry " + e.id.String() + ": " + mal}
		case ev != nil:
			st.Events++
			o.event = ev
		default:
			st.Ignored[ignored]++
		}
		out = append(out, o)
	}
	for j := range ended {
		delete(q.jobs, j)
	}
	if len(q.jobs) > maxJobs {
		for j := range q.jobs { // forget some; they are read again if they come back
			delete(q.jobs, j)
			if len(q.jobs) <= maxJobs*9/10 {
				break
			}
		}
	}
	q.stats.add(func(s *QueueStats) {
		s.Entries += st.Entries
		s.Events += st.Events
		s.Malformed += st.Malformed
		s.HashMissing += st.HashMissing
		s.PayloadErrors += st.PayloadErrors
		s.AttemptsUnknown += st.AttemptsUnknown
		for k, v := range st.Ignored {
			s.Ignored[k] += v
		}
	})
	return out, nil
}

// mapEntry maps batch[i]. It returns the event, or the reason the entry
// is malformed, or the name under which an ignored entry is counted.
func (q *queue) mapEntry(batch []entry, i int, n *needs, res *lookupResult,
	startsAt map[string]map[int]int64, ended map[string]bool, st *QueueStats) (*twicetype.Event, string, string) {
	e := &batch[i]
	name := e.event()
	if name == "" {
		return nil, "no event name", ""
	}
	if !jobEvent(name) {
		return nil, "", name
	}
	j := e.jobID()
	if j == "" {
		return nil, fmt.Sprintf("%q without jobId", name), ""
	}

	// The job's state just before this entry.
	s := q.jobs[j]
	resolved := false // its count was read at this entry
	if name == "added" {
		s = &jobState{knowsStarted: true, name: e.fields["name"]}
		q.jobs[j] = s
		q.fill(s, j, n, res, st)
		delete(ended, j)
	} else if points, ok := startsAt[j]; ok {
		if c, ok := points[i]; ok {
			if s == nil {
				s = &jobState{}
				q.jobs[j] = s
			}
			s.started, s.knowsStarted, s.active = c, true, false
			resolved = true
			q.fill(s, j, n, res, st)
			delete(ended, j)
		}
	}
	if s == nil {
		if name == "removed" {
			// A job twice never saw: discarded all the same.
			s = &jobState{}
		} else {
			// Resolved, but its hash was gone: no attempts, no fields.
			s = &jobState{}
			q.jobs[j] = s
			q.fill(s, j, n, res, st)
		}
	}

	ev := jsonl.JobEvent{JobID: j}
	switch name {
	case "added":
		ev.Kind = "job.enqueued"
	case "waiting":
		switch prev := e.prev(); {
		case prev == "failed" || prev == "completed":
			// An operator's replay (job.retry): enqueued again.
			ev.Kind = "job.enqueued"
			s.active = false
		case prev == "active":
			if i+1 < len(batch) && batch[i+1].event() == "stalled" && batch[i+1].jobID() == j {
				return nil, "", "waiting (stalled)" // the next entry says it
			}
			// A failure retried at once (no backoff), or a worker that
			// gave the job back (rate limit, moveToWait).
			ev.Kind, ev.Retry = "job.failed", ptrue()
			ev.Attempt = q.attempt(s, st)
			s.active = false
		default:
			// After "added", or from delayed, prioritized, waiting-children.
			return nil, "", "waiting"
		}
	case "active":
		ev.Kind = "job.started"
		if s.knowsStarted {
			s.started++
		}
		ev.Attempt = q.attempt(s, st)
		s.active = true
	case "completed":
		ev.Kind = "job.succeeded"
		ev.Attempt = q.attempt(s, st)
		ended[j] = true
	case "failed":
		// Only the last failure of a job is "failed": it stays in the
		// failed set, BullMQ's dead letters (retries-exhausted follows).
		ev.Kind = "job.dead"
		ev.Attempt = q.attempt(s, st)
		ev.Error = e.fields["failedReason"]
		ended[j] = true
	case "delayed":
		// A failed attempt waiting for its backoff follows "active"; a job
		// added with a delay (or whose delay changed) does not.
		// A job first seen here (its earlier entries unread) that has
		// started before is taken to be such a failure.
		if !s.active && !(resolved && s.knowsStarted && s.started > 0) {
			return nil, "", "delayed"
		}
		ev.Kind, ev.Retry = "job.failed", ptrue()
		ev.Attempt = q.attempt(s, st)
		s.active = false
	case "stalled":
		// The worker stopped renewing the job's lock (it died): BullMQ put
		// the job back in wait, and another attempt will start.
		ev.Kind, ev.Retry = "job.failed", ptrue()
		ev.Attempt = q.attempt(s, st)
		ev.Error = "stalled: its worker stopped renewing the lock; BullMQ moved it back to wait"
		s.active = false
	case "removed":
		switch e.prev() {
		case "completed", "failed":
			return nil, "", "removed (ended)" // clean-up of an ended job
		}
		ev.Kind = "job.discarded"
		ended[j] = true
	}
	ev.JobType = s.name
	if ev.JobType == "" && name == "added" {
		ev.JobType = e.fields["name"]
	}
	ev.Key, ev.Entity, ev.Attrs = s.f.Key, s.f.Entity, s.f.Attrs
	event, err := q.build(e, &ev)
	if err != nil {
		return nil, err.Error(), ""
	}
	return event, "", ""
}

// fill copies what the lookup read of job j into s.
func (q *queue) fill(s *jobState, j string, n *needs, res *lookupResult, st *QueueStats) {
	if res == nil || !n.data[j] {
		return
	}
	info, ok := res.jobs[j]
	if !ok {
		return
	}
	if !info.exists {
		st.HashMissing++
		return
	}
	if info.name != "" {
		s.name = info.name
	}
	if info.payloadErr != "" {
		st.PayloadErrors++
		if q.warnings < 20 {
			q.warnings++
			q.warn("source %s queue %s job %s: %s", q.source, q.name, j, info.payloadErr)
		}
	}
	s.f = q.m.Resolve(info.payload)
}

// attempt is the attempt number of the job's current run: its attempts
// started, 0 (left out) when unknown.
func (q *queue) attempt(s *jobState, st *QueueStats) int64 {
	if !s.knowsStarted || s.started < 1 {
		st.AttemptsUnknown++
		return 0
	}
	return s.started
}

func ptrue() *bool { t := true; return &t }

// build writes ev as the entry's event and parses it as any event is
// parsed: the identity of its id, strings checked. The id is the stream
// key's queue part and the entry id, so an entry read again (after a
// crash, a restart) is the same observation.
func (q *queue) build(e *entry, ev *jsonl.JobEvent) (*twicetype.Event, error) {
	ev.ID = q.keyPrefix + e.id.String()
	ev.TS = time.UnixMilli(int64(e.id.ms)).UTC().Format("2006-01-02T15:04:05.000Z07:00")
	ev.Queue = q.name
	line, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	out := &twicetype.Event{}
	if err := q.parser.Parse(line, out); err != nil {
		return nil, err
	}
	out.Source, out.Line = q.label, int64(e.id.ms)
	return out, nil
}
