package pgjobs

import (
	"slices"
	"strconv"
	"time"

	"github.com/twicehq/twice/collectors/jobpath"
	"github.com/twicehq/twice/twicetype"
)

// The reasons of the coverage a job table tap reports lost.
const (
	// ReasonIDsSkipped: ids missing between rows read, still missing
	// after gap_timeout: rows the queue deleted before twice read them
	// (retention while twice was stopped), or inserts rolled back.
	ReasonIDsSkipped = "rows deleted before read"
	// ReasonDeletedRunning: a row twice followed was deleted before its
	// end was read.
	ReasonDeletedRunning = "job deleted before its end was read"
)

// jobState is what the tracker keeps of a job it follows: enough to emit
// each of its events once, whatever it reads of the row later.
type jobState struct {
	// Sig is the row's signature when last judged.
	Sig string `json:"s"`
	// Gen counts the job's enqueues after the first (operator retries of
	// a finished job).
	Gen int `json:"g,omitempty"`
	// Started and Failed are the highest attempts whose start and whose
	// failure were emitted.
	Started int64 `json:"st,omitempty"`
	Failed  int64 `json:"f,omitempty"`
	// Final names the final event emitted in this generation ("ok3",
	// "dead3", "cancelled3"), "" before it.
	Final string `json:"fin,omitempty"`
	// FinalAt is its time, Unix ns.
	FinalAt int64 `json:"fin_at,omitempty"`
	// Pending is set while the first job.enqueued is not emitted: the job
	// was inserted for later. Due is when it is due, Unix ns.
	Pending bool  `json:"p,omitempty"`
	Due     int64 `json:"due,omitempty"`
}

// spec is one event about to be built.
type spec struct {
	id      string
	ts      int64 // Unix ns
	kind    twicetype.Kind
	row     *Row
	fields  jobpath.Fields
	attempt int64 // 0: none
	retry   int8  // -1 false, 1 true, 0 absent
	err     string
}

// tracker turns rows into events: a pure state machine, no I/O. Jobs
// not final (and those that ended dead or cancelled, which an operator
// may retry) are followed by id; a cursor over ids finds new rows.
type tracker struct {
	d     *Dialect
	m     *jobpath.Mapping
	grace int64 // gap_timeout, ns

	// cursor: every id at or below it was read or given up as lost;
	// started is set once a first row fixed where the table begins.
	cursor   int64
	cursorAt int64 // created_at of the row at the cursor, Unix ns
	started  bool
	// ahead are ids above the cursor already read, with the time from
	// which a missing id below them counts as overdue.
	ahead map[int64]int64
	jobs  map[int64]*jobState

	stats Stats
}

// Stats are a tracker's counters.
type Stats struct {
	// Polls read; Rows judged (new or changed); Events emitted.
	Polls, Rows, Events int64
	// Lost counts rows given up: ids skipped, followed rows deleted.
	LostIDs, LostRunning int64
	// Following is how many jobs are followed now.
	Following int
	// ReadTime is the time spent in the database's queries (Poller).
	ReadTime time.Duration
}

func newTracker(d *Dialect, m *jobpath.Mapping, grace int64) *tracker {
	return &tracker{d: d, m: m, grace: grace, ahead: map[int64]int64{}, jobs: map[int64]*jobState{}}
}

// aheadIDs are the ids above the cursor already read, sorted.
func (t *tracker) aheadIDs() []int64 {
	out := make([]int64, 0, len(t.ahead))
	for id := range t.ahead {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// followed are the ids of the jobs followed, sorted.
func (t *tracker) followed() []int64 {
	out := make([]int64, 0, len(t.jobs))
	for id := range t.jobs {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// changed returns, of the light rows read of followed jobs and of
// unfinished rows below the cursor, the ids that need reading whole, and
// the followed ids that were not among them (deleted).
func (t *tracker) changed(light []Row) (read, gone []int64) {
	seen := make(map[int64]bool, len(light))
	for i := range light {
		r := &light[i]
		seen[r.ID] = true
		js := t.jobs[r.ID]
		if js == nil || js.Sig != r.sig() {
			read = append(read, r.ID)
		}
	}
	for id := range t.jobs {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	slices.Sort(read)
	slices.Sort(gone)
	return read, gone
}

// observe judges the rows of one poll at DB time now: rows new above the
// cursor (sorted by id), rows read again, and followed ids gone from the
// table. It returns the events, sorted by time, and the coverage lost.
func (t *tracker) observe(now int64, fresh, again []Row, gone []int64) ([]spec, []twicetype.Gap) {
	t.stats.Polls++
	var out []spec
	var gaps []twicetype.Gap
	for _, id := range gone {
		js := t.jobs[id]
		delete(t.jobs, id)
		if js != nil && js.Final == "" {
			t.stats.LostRunning++
			gaps = append(gaps, twicetype.Gap{Reason: ReasonDeletedRunning, Count: 1, To: now})
		}
	}
	for i := range again {
		out = append(out, t.judge(&again[i], now)...)
	}
	if !t.started && len(fresh) > 0 {
		// The table's history before its first row is its retention
		// before twice looked, not coverage lost.
		t.cursor, t.started = fresh[0].ID-1, true
	}
	for i := range fresh {
		r := &fresh[i]
		if r.ID <= t.cursor {
			continue
		}
		if _, dup := t.ahead[r.ID]; dup {
			continue
		}
		at := min(r.CreatedAt.UnixNano(), now)
		t.ahead[r.ID] = at
		out = append(out, t.judge(r, now)...)
	}
	gaps = append(gaps, t.advance(now)...)
	slices.SortStableFunc(out, func(a, b spec) int {
		switch {
		case a.ts < b.ts:
			return -1
		case a.ts > b.ts:
			return 1
		}
		return 0
	})
	t.stats.Rows += int64(len(fresh) + len(again))
	t.stats.Events += int64(len(out))
	t.stats.Following = len(t.jobs)
	return out, gaps
}

// advance moves the cursor over the ids read, and over missing ids
// overdue: those below an id read gap_timeout ago or more.
func (t *tracker) advance(now int64) []twicetype.Gap {
	var gaps []twicetype.Gap
	ids := t.aheadIDs()
	for _, id := range ids {
		at := t.ahead[id]
		if id > t.cursor+1 {
			if now-at < t.grace {
				break
			}
			n := id - t.cursor - 1
			t.stats.LostIDs += n
			gaps = append(gaps, twicetype.Gap{Reason: ReasonIDsSkipped, Count: n, From: t.cursorAt, To: at})
		}
		t.cursor, t.cursorAt = id, at
		delete(t.ahead, id)
	}
	return gaps
}

// judge returns the events row r implies that were not emitted yet, and
// updates what the tracker keeps of its job; now is the DB's time of the
// poll.
func (t *tracker) judge(r *Row, now int64) []spec {
	js := t.jobs[r.ID]
	var out []spec
	fields := t.m.Resolve(payload(r, t.d.Roots))
	last := r.CreatedAt.UnixNano()
	add := func(s spec) {
		s.row, s.fields = r, fields
		if s.ts < last {
			s.ts = last
		}
		last = s.ts
		out = append(out, s)
	}
	id := func(what string, n int64, gen int) string {
		s := t.d.IDPrefix + ":" + strconv.FormatInt(r.ID, 10) + ":" + what
		if n >= 0 {
			s += ":" + strconv.FormatInt(n, 10)
		}
		if gen > 0 {
			s += ":" + strconv.Itoa(gen)
		}
		return s
	}
	switch {
	case js == nil && r.ID <= t.cursor && !final(r.State):
		// A job not followed below the cursor: it had completed and an
		// operator retried it. The attempts up to its success are old.
		js = &jobState{Gen: 1}
		a0 := lastClean(r)
		js.Started, js.Failed = a0, a0
		add(spec{id: id("enqueued", -1, js.Gen), ts: r.ScheduledAt.UnixNano(), kind: twicetype.JobEnqueued})
	case js == nil && r.ID <= t.cursor:
		return nil // a finished job read again: nothing new
	case js == nil:
		js = &jobState{}
		if r.Attempt == 0 {
			// Enqueued when it is due: a job inserted for later is
			// scheduled, not waiting, until then (as a push to Sidekiq's
			// schedule set is not an enqueue).
			js.Due = max(r.CreatedAt.UnixNano(), r.ScheduledAt.UnixNano())
		} else {
			js.Due = r.CreatedAt.UnixNano()
		}
		js.Pending = true
	}
	if js.Pending {
		if r.State == StateScheduled && r.Attempt == 0 && js.Due > now {
			// Not due yet: followed, nothing to say.
			js.Sig = r.sig()
			t.jobs[r.ID] = js
			return out
		}
		add(spec{id: id("enqueued", -1, 0), ts: min(js.Due, now), kind: twicetype.JobEnqueued})
		js.Pending, js.Due = false, 0
	}
	final := finalTag(r)
	if js.Final != "" && final != js.Final {
		// Retried by an operator after it ended: enqueued again.
		js.Gen++
		at := max(r.ScheduledAt.UnixNano(), js.FinalAt)
		last = at
		add(spec{id: id("enqueued", -1, js.Gen), ts: at, kind: twicetype.JobEnqueued})
		js.Final, js.FinalAt = "", 0
	}
	errs := map[int64]AttemptError{}
	for _, e := range r.Errors {
		errs[e.Attempt] = e
	}
	ended := r.State == StateDiscarded || r.State == StateCancelled
	// startOf is when attempt k began, when the row says.
	startOf := func(k int64) (int64, bool) {
		if k == r.Attempt && !r.AttemptedAt.IsZero() {
			return r.AttemptedAt.UnixNano(), true
		}
		if e, ok := errs[k]; ok && t.d.ErrorAtStart {
			return e.At.UnixNano(), true
		}
		return 0, false
	}
	// failedAt is when attempt k failed: the error's time, or where the
	// error keeps the attempt's start (River), the next attempt's start,
	// the row's end, or the retry it was given (no later than now).
	failedAt := func(k int64, e AttemptError) int64 {
		if !t.d.ErrorAtStart {
			return e.At.UnixNano()
		}
		at := e.At.UnixNano()
		switch {
		case k < r.Attempt:
			if s, ok := startOf(k + 1); ok {
				return max(at, s)
			}
		case ended && !r.FinalizedAt.IsZero():
			return max(at, r.FinalizedAt.UnixNano())
		default:
			return max(at, min(r.ScheduledAt.UnixNano(), now))
		}
		return at
	}
	for k := int64(1); k <= r.Attempt; k++ {
		e, failed := errs[k]
		if k > js.Started {
			at, ok := startOf(k)
			if !ok {
				at = last
				if prev, ok := errs[k-1]; ok {
					at = max(at, failedAt(k-1, prev))
				}
				if failed {
					at = min(at, e.At.UnixNano())
				}
			}
			add(spec{id: id("started", k, 0), ts: at, kind: twicetype.JobStarted, attempt: k})
			js.Started = k
		}
		if failed && k > js.Failed {
			retry := int8(1)
			if k == r.Attempt && ended {
				retry = -1
			}
			add(spec{id: id("failed", k, 0), ts: failedAt(k, e), kind: twicetype.JobFailed, attempt: k, retry: retry, err: e.Error})
			js.Failed = k
		}
	}
	if final != "" && js.Final == "" {
		s := spec{ts: r.FinalizedAt.UnixNano()}
		switch r.State {
		case StateCompleted:
			s.id, s.kind, s.attempt = id("succeeded", r.Attempt, js.Gen), twicetype.JobSucceeded, r.Attempt
		case StateDiscarded:
			s.id, s.kind, s.attempt = id("dead", r.Attempt, js.Gen), twicetype.JobDead, r.Attempt
		case StateCancelled:
			s.id, s.kind = id("cancelled", r.Attempt, js.Gen), twicetype.JobDiscarded
		}
		add(s)
		js.Final, js.FinalAt = final, last
	}
	js.Sig = r.sig()
	if r.State == StateCompleted {
		// Completed jobs are not followed: a retry of one is found below
		// the cursor among the unfinished rows.
		delete(t.jobs, r.ID)
	} else {
		t.jobs[r.ID] = js
	}
	return out
}

// finalTag names the final state of r at its attempt, "" when r is not
// final.
func finalTag(r *Row) string {
	if !final(r.State) {
		return ""
	}
	return r.State + strconv.FormatInt(r.Attempt, 10)
}

// lastClean is, for a job retried after it completed, the attempt that
// succeeded: the last attempt without an error (not the one running).
func lastClean(r *Row) int64 {
	failed := map[int64]bool{}
	for _, e := range r.Errors {
		failed[e.Attempt] = true
	}
	k := r.Attempt
	if r.State == StateRunning {
		k--
	}
	for ; k > 0; k-- {
		if !failed[k] {
			return k
		}
	}
	return 0
}

// payload is what paths read: of the job's args, metadata and tags, the
// roots the dialect names.
func payload(r *Row, roots []string) map[string]any {
	p := map[string]any{}
	put := func(name string, raw []byte) {
		if len(raw) == 0 {
			return
		}
		if v, err := decodeJSON(raw); err == nil {
			p[name] = v
		}
	}
	for _, root := range roots {
		switch root {
		case "args":
			put(root, r.Args)
		case "tags":
			put(root, r.Tags)
		default:
			put(root, r.Meta)
		}
	}
	return p
}
