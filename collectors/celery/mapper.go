package celery

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/twicehq/twice/collectors/jobpath"
	"github.com/twicehq/twice/collectors/jsonl"
	"github.com/twicehq/twice/twicetype"
)

// wireEvent is one event of the celeryev exchange as Celery 5.2 writes it
// (celery/events/dispatcher.py, celery/worker/request.py): every event has
// type, hostname, clock and timestamp; task events have uuid; only
// task-sent and task-received carry name, args, kwargs, retries and eta;
// only task-sent carries queue.
type wireEvent struct {
	Type      string       `json:"type"`
	UUID      string       `json:"uuid"`
	Hostname  string       `json:"hostname"`
	Clock     json.Number  `json:"clock"`
	Timestamp json.Number  `json:"timestamp"`
	Name      *string      `json:"name"`
	Args      *string      `json:"args"`
	Kwargs    *string      `json:"kwargs"`
	Retries   *json.Number `json:"retries"`
	ParentID  *string      `json:"parent_id"`
	Queue     *string      `json:"queue"`
	Exception *string      `json:"exception"`
	Requeue   *bool        `json:"requeue"`
	Expired   *bool        `json:"expired"`
	Signum    *json.Number `json:"signum"`
}

// taskState is what the mapper remembers of a task id.
type taskState struct {
	name, queue string
	f           jobpath.Fields
	learned     bool // f was taken from args/kwargs
	// starts counts the attempts started; minNext is the attempt the
	// next start is at least: retries+1 of the last task-received, so
	// that attempts stay right for a task whose earlier starts twice did
	// not see (it started reading later, or restarted).
	starts, minNext int64
	// open are the attempts started and not yet ended, oldest first.
	open []int64
}

// end closes an open attempt: the oldest for a task-retried (a retry's
// task-retried may come after the next attempt's events: it is sent by
// the worker's main process once the pool reports the failure), the
// newest otherwise (a redelivered task ends in its last attempt). It
// returns the attempt, or the last started when none is open.
func (st *taskState) end(oldest bool) int64 {
	if len(st.open) == 0 {
		return st.starts
	}
	i := len(st.open) - 1
	if oldest {
		i = 0
	}
	a := st.open[i]
	st.open = append(st.open[:i], st.open[i+1:]...)
	return a
}

// maxTasks caps the tasks the mapper remembers; past it the oldest seen
// are forgotten (their later events carry no attempt nor fields, and
// Stats.Unknown counts them).
const maxTasks = 200_000

// Stats counts what a source's mapper saw. Read it with Snapshot.
type Stats struct {
	// Messages is the messages read; Events the events they held (a
	// task.multi holds several); Mapped those that became spec events.
	Messages, Events, Mapped int64
	// Ignored counts Celery events that mean nothing to the detectors
	// (worker-heartbeat, task-received, a retry's task-sent, …), by type.
	Ignored map[string]int64
	// Malformed counts messages and events that could not be read.
	Malformed int64
	// ArgsErrors counts tasks whose args or kwargs were not a Python
	// literal the parser reads (a truncated repr, a Decimal): their
	// key, entity and attrs are left out.
	ArgsErrors int64
	// Unknown counts task events of task ids the mapper had not seen
	// (reading began later, twice restarted): they carry no attempt,
	// job_type, queue, key, entity nor attrs.
	Unknown int64
}

// mapper turns celeryev messages into spec events, remembering per task
// id its name, queue, fields and attempts started. Not safe for
// concurrent use but for Snapshot.
type mapper struct {
	source string // the Source of events and malformed records
	m      *mapping
	parser *jsonl.Parser
	tasks  map[string]*taskState
	order  []string // task ids in the order first seen, for eviction
	head   int

	mu    sync.Mutex
	stats Stats
}

func newMapper(source string, m *mapping) *mapper {
	return &mapper{source: source, m: m, parser: jsonl.NewParser(), tasks: map[string]*taskState{}, stats: Stats{Ignored: map[string]int64{}}}
}

// Snapshot returns a copy of the counts.
func (mp *mapper) Snapshot() Stats {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	out := mp.stats
	out.Ignored = make(map[string]int64, len(mp.stats.Ignored))
	for k, v := range mp.stats.Ignored {
		out.Ignored[k] = v
	}
	return out
}

func (mp *mapper) count(f func(*Stats)) {
	mp.mu.Lock()
	f(&mp.stats)
	mp.mu.Unlock()
}

// output is what one message became: events, and reasons it (or events
// in it) could not be read.
type output struct {
	events    []*twicetype.Event
	malformed []*twicetype.Malformed
	// lastTS is the largest event time in the message, Unix ms; 0 if none.
	lastTS int64
}

// mapMessage maps one message's body: a JSON object (one event) or, for
// routing key task.multi, a JSON array of events. line numbers the
// message in malformed records.
func (mp *mapper) mapMessage(body []byte, line int64) output {
	var out output
	mp.count(func(s *Stats) { s.Messages++ })
	bad := func(reason string) {
		mp.count(func(s *Stats) { s.Malformed++ })
		out.malformed = append(out.malformed, &twicetype.Malformed{Source: mp.source, Line: line, Reason: reason})
	}
	trimmed := bytes.TrimSpace(body)
	var raws []json.RawMessage
	switch {
	case len(trimmed) > 0 && trimmed[0] == '[':
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			bad("celery event batch is not a JSON array of objects: " + err.Error())
			return out
		}
	case len(trimmed) > 0 && trimmed[0] == '{':
		raws = []json.RawMessage{trimmed}
	default:
		bad("celery event message is not JSON (event_serializer must be json)")
		return out
	}
	for i, raw := range raws {
		mp.count(func(s *Stats) { s.Events++ })
		var w wireEvent
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&w); err != nil {
			bad(fmt.Sprintf("event %d of the message: %v", i+1, err))
			continue
		}
		ev, reason := mp.mapEvent(&w)
		switch {
		case reason != "":
			bad(fmt.Sprintf("event %d of the message (%s): %s", i+1, w.Type, reason))
		case ev != nil:
			mp.count(func(s *Stats) { s.Mapped++ })
			out.events = append(out.events, ev)
			if ev.Time > out.lastTS {
				out.lastTS = ev.Time
			}
		}
	}
	return out
}

// eventTime reads Celery's float seconds (time.time()) to the
// microsecond.
func eventTime(ts json.Number) (time.Time, bool) {
	f, err := strconv.ParseFloat(string(ts), 64)
	if err != nil || f <= 0 || f > 1e11 || math.IsNaN(f) {
		return time.Time{}, false
	}
	return time.UnixMicro(int64(math.Round(f * 1e6))).UTC(), true
}

// mapEvent maps one Celery event: a spec event, nil for an event that
// means nothing to the detectors, or a reason it is malformed.
func (mp *mapper) mapEvent(w *wireEvent) (*twicetype.Event, string) {
	ignore := func() (*twicetype.Event, string) {
		mp.count(func(s *Stats) { s.Ignored[w.Type]++ })
		return nil, ""
	}
	switch w.Type {
	case "task-sent", "task-received", "task-started", "task-succeeded", "task-failed",
		"task-retried", "task-rejected", "task-revoked":
	case "":
		return nil, "no type"
	default:
		return ignore() // worker-*, task-progress, custom events
	}
	if w.UUID == "" {
		return nil, "no uuid"
	}
	t, ok := eventTime(w.Timestamp)
	if !ok {
		return nil, fmt.Sprintf("timestamp %q is not Unix seconds", w.Timestamp)
	}
	st := mp.tasks[w.UUID]
	if st == nil && (w.Type == "task-sent" || w.Type == "task-received") {
		st = mp.remember(w.UUID)
	}
	if st != nil {
		mp.learn(st, w)
	}
	ev := jsonl.JobEvent{JobID: w.UUID}
	switch w.Type {
	case "task-sent":
		// A retry re-publishes the task with retries N+1 and parent_id its
		// own id: not a new enqueue (task-retried says the attempt failed).
		if retries(w) > 0 || (w.ParentID != nil && *w.ParentID == w.UUID) {
			return ignore()
		}
		ev.Kind = "job.enqueued"
	case "task-received":
		// Prefetched by a worker: neither enqueued nor started. A second
		// one with the same retries is a redelivery (an acks_late worker
		// died): the start that follows is one more attempt all the same.
		if st != nil {
			st.minNext = retries(w) + 1
		}
		return ignore()
	case "task-started":
		ev.Kind = "job.started"
		if st != nil {
			st.starts = max(st.starts+1, st.minNext)
			st.open = append(st.open, st.starts)
		}
	case "task-succeeded":
		ev.Kind = "job.succeeded"
	case "task-failed":
		// Celery emits task-failed only when it will not run the task
		// again (a retried attempt emits task-retried): the job is dead.
		ev.Kind = "job.dead"
		ev.Error = str(w.Exception)
	case "task-retried":
		ev.Kind = "job.failed"
		ev.Retry = ptr(true)
		ev.Error = str(w.Exception)
	case "task-rejected":
		if w.Requeue != nil && *w.Requeue {
			ev.Kind = "job.failed"
			ev.Retry = ptr(true)
			ev.Error = "rejected, requeued"
		} else {
			ev.Kind = "job.dead"
			ev.Error = "rejected"
		}
	case "task-revoked":
		ev.Kind = "job.discarded"
		switch {
		case w.Expired != nil && *w.Expired:
			ev.Error = "revoked: expired"
		case w.Signum != nil && w.Signum.String() != "":
			ev.Error = "revoked: terminated by signal " + w.Signum.String()
		default:
			ev.Error = "revoked"
		}
	}
	if st == nil {
		mp.count(func(s *Stats) { s.Unknown++ })
	} else {
		ev.Queue, ev.JobType = st.queue, st.name
		ev.Key, ev.Entity, ev.Attrs = st.f.Key, st.f.Entity, st.f.Attrs
		switch {
		case ev.Kind == "job.enqueued" || st.starts == 0:
		case ev.Kind == "job.started":
			ev.Attempt = st.starts
		default:
			ev.Attempt = st.end(w.Type == "task-retried")
		}
	}
	ev.ID = eventID(w)
	ev.TS = t.Format("2006-01-02T15:04:05.000000Z07:00")
	line, err := json.Marshal(&ev)
	if err != nil {
		return nil, err.Error()
	}
	out := &twicetype.Event{}
	if err := mp.parser.Parse(line, out); err != nil {
		return nil, err.Error()
	}
	out.Source = mp.source
	return out, ""
}

// eventID is the identity of one Celery event: the task id, the type, and
// the sender's hostname, Lamport clock and timestamp as written. A message
// delivered again (a redelivery after a restart of twice) gives the same
// ids; two events Celery sent never do.
func eventID(w *wireEvent) string {
	return "celery:" + w.UUID + ":" + w.Type + ":" + w.Hostname + ":" + w.Clock.String() + ":" + w.Timestamp.String()
}

// remember starts the state of a task id, forgetting the oldest when full.
func (mp *mapper) remember(id string) *taskState {
	if len(mp.tasks) >= maxTasks {
		for mp.head < len(mp.order) && len(mp.tasks) >= maxTasks {
			delete(mp.tasks, mp.order[mp.head])
			mp.order[mp.head] = ""
			mp.head++
		}
		if mp.head > len(mp.order)/2 {
			mp.order = append([]string(nil), mp.order[mp.head:]...)
			mp.head = 0
		}
	}
	st := &taskState{}
	mp.tasks[id] = st
	mp.order = append(mp.order, id)
	return st
}

// learn takes name, queue and fields from a task-sent or task-received;
// the first values seen stay (spec §1).
func (mp *mapper) learn(st *taskState, w *wireEvent) {
	if st.name == "" && w.Name != nil {
		st.name = *w.Name
	}
	if st.queue == "" && w.Queue != nil {
		st.queue = *w.Queue
	}
	if st.learned || (w.Args == nil && w.Kwargs == nil) {
		return
	}
	st.learned = true
	payload := map[string]any{"name": st.name}
	if mp.m.needsArgs() {
		ok := true
		for k, s := range map[string]*string{"args": w.Args, "kwargs": w.Kwargs} {
			if s == nil {
				continue
			}
			v, err := parsePyLiteral(*s)
			if err != nil {
				ok = false
				continue
			}
			payload[k] = v
		}
		if !ok {
			mp.count(func(s *Stats) { s.ArgsErrors++ })
		}
	}
	st.f = mp.m.Resolve(payload)
}

func retries(w *wireEvent) int64 {
	if w.Retries == nil {
		return 0
	}
	n, _ := w.Retries.Int64()
	return n
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func ptr[T any](v T) *T { return &v }
