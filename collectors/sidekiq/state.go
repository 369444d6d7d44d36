package sidekiq

import (
	"encoding/json"
	"fmt"
	"github.com/twicehq/twice/sources"
	"sort"

	"github.com/twicehq/twice/collectors/jobpath"
)

// stateVersion is the version of the saved tracker state; a state of
// another version is not read (the tracker starts afresh, which costs
// only repeated ids).
const stateVersion = 1

// savedState is what poll mode keeps in twice's checkpoint: what the
// tracker knew after the last snapshot the checkpoint covers, so that
// after a restart the jobs it was following are judged on, not lost.
type savedState struct {
	V             int                  `json:"v"`
	Seq           uint64               `json:"seq"`
	Cursor        float64              `json:"cursor"`
	AtCursor      []string             `json:"at_cursor,omitempty"`
	BaseProcessed int64                `json:"base_processed"`
	BaseFailed    int64                `json:"base_failed"`
	HasBase       bool                 `json:"has_base"`
	FailuresSeen  int64                `json:"failures_seen"`
	RunsSeen      int64                `json:"runs_seen"`
	Unknown       int64                `json:"unknown"`
	Missed        int64                `json:"missed"`
	Procs         map[string]savedProc `json:"procs,omitempty"`
	Jobs          []savedJob           `json:"jobs,omitempty"`
}

type savedProc struct {
	Beat     string   `json:"beat"`
	FirstSeq uint64   `json:"first"`
	BeatSeq  uint64   `json:"beat_seq"`
	BeatAt   int64    `json:"beat_at"`
	Queues   []string `json:"queues,omitempty"`
	Dead     bool     `json:"dead,omitempty"`
	DeadSeq  uint64   `json:"dead_seq,omitempty"`
	Gone     bool     `json:"gone,omitempty"`
	GoneSeq  uint64   `json:"gone_seq,omitempty"`
}

type savedJob struct {
	JID        string          `json:"jid"`
	Class      string          `json:"class"`
	Wrapped    string          `json:"wrapped,omitempty"`
	Queue      string          `json:"queue,omitempty"`
	Enqueued   string          `json:"e,omitempty"`
	EnqueuedNS int64           `json:"e_ns,omitempty"`
	Failed     string          `json:"f,omitempty"`
	FailedNS   int64           `json:"f_ns,omitempty"`
	RetryCount *int64          `json:"rc,omitempty"`
	RetryFalse bool            `json:"no_retry,omitempty"`
	Error      string          `json:"error,omitempty"`
	Key        string          `json:"key,omitempty"`
	Entity     string          `json:"entity,omitempty"`
	Attrs      json.RawMessage `json:"attrs,omitempty"`

	At            where   `json:"at"`
	Proc          string  `json:"proc,omitempty"`
	Beat          string  `json:"beat,omitempty"`
	QueuedAt      int64   `json:"queued_at,omitempty"`
	SeenAt        int64   `json:"seen_at,omitempty"`
	AfterRetry    bool    `json:"after_retry,omitempty"`
	LeftSeq       uint64  `json:"left_seq,omitempty"`
	UnexplainedAt int64   `json:"unexplained_at"`
	RetryScore    float64 `json:"retry_score,omitempty"`
	CountedF      string  `json:"counted_f,omitempty"`
}

// save writes the tracker's state as printable text: gzip'd JSON in
// base64 (a state of 10,000 followed jobs is about 300 kB).
func (t *tracker) save() (string, error) {
	st := savedState{
		V: stateVersion, Seq: t.seq, Cursor: t.cursor,
		BaseProcessed: t.baseProcessed, BaseFailed: t.baseFailed, HasBase: t.hasBase,
		FailuresSeen: t.stats.FailuresSeen, RunsSeen: t.stats.RunsSeenEnding,
		Unknown: t.stats.Unknown, Missed: t.missedReported,
		Procs: make(map[string]savedProc, len(t.procs)),
	}
	for h := range t.atCur {
		st.AtCursor = append(st.AtCursor, h)
	}
	sort.Strings(st.AtCursor)
	for id, p := range t.procs {
		st.Procs[id] = savedProc{Beat: p.beat, FirstSeq: p.firstSeq, BeatSeq: p.beatSeq, BeatAt: p.beatAt, Queues: p.queues,
			Dead: p.dead, DeadSeq: p.deadSeq, Gone: p.gone, GoneSeq: p.goneSeq}
	}
	for _, jid := range sortedKeys(t.jobs) {
		tj := t.jobs[jid]
		j := tj.j
		sj := savedJob{
			JID: j.JID, Class: j.Class, Wrapped: j.Wrapped, Queue: j.Queue,
			Enqueued: j.EnqueuedAt, EnqueuedNS: j.enqueued, Failed: j.FailedAt, FailedNS: j.failed,
			RetryFalse: j.RetryFalse, Error: j.Error,
			Key: j.Fields.Key, Entity: j.Fields.Entity, Attrs: j.Fields.Attrs,
			At: tj.at, Proc: tj.proc, Beat: tj.beat, QueuedAt: tj.queuedAt, SeenAt: tj.seenAt, AfterRetry: tj.afterRetry,
			LeftSeq: tj.leftSeq, UnexplainedAt: tj.unexplainedAt, RetryScore: tj.retryScore, CountedF: tj.countedF,
		}
		if j.HasRetryCount {
			rc := j.RetryCount
			sj.RetryCount = &rc
		}
		st.Jobs = append(st.Jobs, sj)
	}
	text, err := sources.PackJSON(st)
	if err != nil {
		return "", fmt.Errorf("sidekiq: save the poll state: %w", err)
	}
	return text, nil
}

// load restores a state written by save. The tracker must be new.
func (t *tracker) load(text string) error {
	var st savedState
	if err := sources.UnpackJSON(text, &st); err != nil {
		return fmt.Errorf("sidekiq: poll state: %w", err)
	}
	if st.V != stateVersion {
		return fmt.Errorf("sidekiq: poll state of version %d, want %d", st.V, stateVersion)
	}
	t.seq, t.cursor = st.Seq, st.Cursor
	t.baseProcessed, t.baseFailed, t.hasBase = st.BaseProcessed, st.BaseFailed, st.HasBase
	t.stats.FailuresSeen, t.stats.RunsSeenEnding = st.FailuresSeen, st.RunsSeen
	t.stats.Unknown, t.missedReported = st.Unknown, st.Missed
	t.atCur = map[string]bool{}
	for _, h := range st.AtCursor {
		t.atCur[h] = true
	}
	for id, p := range st.Procs {
		t.procs[id] = &procState{beat: p.Beat, firstSeq: p.FirstSeq, beatSeq: p.BeatSeq, beatAt: p.BeatAt, queues: p.Queues,
			dead: p.Dead, deadSeq: p.DeadSeq, gone: p.Gone, goneSeq: p.GoneSeq}
	}
	for _, sj := range st.Jobs {
		j := &job{
			JID: sj.JID, Class: sj.Class, Wrapped: sj.Wrapped, Queue: sj.Queue,
			EnqueuedAt: sj.Enqueued, enqueued: sj.EnqueuedNS, FailedAt: sj.Failed, failed: sj.FailedNS,
			RetryFalse: sj.RetryFalse, Error: sj.Error,
			Fields: jobpath.Fields{Key: sj.Key, Entity: sj.Entity, Attrs: sj.Attrs},
		}
		if sj.RetryCount != nil {
			j.RetryCount, j.HasRetryCount = *sj.RetryCount, true
		}
		t.jobs[sj.JID] = &tracked{
			j: j, at: sj.At, proc: sj.Proc, beat: sj.Beat, queuedAt: sj.QueuedAt, seenAt: sj.SeenAt, afterRetry: sj.AfterRetry,
			leftSeq: sj.LeftSeq, unexplainedAt: sj.UnexplainedAt, retryScore: sj.RetryScore, countedF: sj.CountedF,
			emitted: map[string]bool{},
		}
	}
	return nil
}
