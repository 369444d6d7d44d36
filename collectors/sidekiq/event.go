package sidekiq

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/twicehq/twice/collectors/jsonl"
	"github.com/twicehq/twice/twicetype"
)

// spec is one event about to be built.
type spec struct {
	id      string
	ts      int64 // Unix ns
	kind    twicetype.Kind
	job     *job
	attempt int64 // 0: none
	retry   int8  // -1 false, 1 true, 0 absent
	err     string
}

// builder writes events as spec §1 JSON objects and parses them with the
// file parser, so a tapped event is valid exactly when the same line in a
// file would be, and its identity is that of its id.
type builder struct {
	source string
	parser *jsonl.Parser
	buf    []byte
	line   int64
}

func newBuilder(source string) *builder {
	return &builder{source: source, parser: jsonl.NewParser()}
}

// build returns the event of s; lane names where it was read (a queue, a
// stream) for Event.Source.
func (b *builder) build(s spec, lane string) (twicetype.Event, error) {
	o := jsonl.JobEvent{
		ID:      s.id,
		TS:      time.Unix(0, s.ts).UTC().Format(time.RFC3339Nano),
		Kind:    s.kind.String(),
		Queue:   s.job.Queue,
		JobType: s.job.jobType(),
		JobID:   s.job.JID,
		Attempt: s.attempt,
		Key:     s.job.Fields.Key,
		Entity:  s.job.Fields.Entity,
		Error:   s.err,
		Attrs:   s.job.Fields.Attrs,
	}
	if s.retry != 0 {
		r := s.retry > 0
		o.Retry = &r
	}
	var err error
	if b.buf, err = json.Marshal(o); err != nil {
		return twicetype.Event{}, fmt.Errorf("sidekiq: encode event %s: %w", s.id, err)
	}
	b.line++
	ev := twicetype.Event{Source: b.source + " " + lane, Line: b.line}
	if err := b.parser.Parse(b.buf, &ev); err != nil {
		return twicetype.Event{}, fmt.Errorf("sidekiq: event %s: %w", s.id, err)
	}
	return ev, nil
}

// The ids of events. They name what was observed, never when it was
// read, so reading the same Redis state again (after a restart of twice)
// yields the same ids: repeats the engine counts once.
//
// A run of a job is named by its payload's enqueued_at: every push to a
// queue list sets a new one, and the payload keeps it while it runs and
// when it fails. A failure is named by its retried_at (or failed_at).
func idEnqueued(j *job) string { return "sidekiq:" + j.JID + ":enqueued:" + j.EnqueuedAt }
func idStarted(j *job) string  { return "sidekiq:" + j.JID + ":started:" + j.EnqueuedAt }
func idSucceeded(j *job) string {
	return "sidekiq:" + j.JID + ":succeeded:" + j.EnqueuedAt
}
func idFailed(j *job) string { return "sidekiq:" + j.JID + ":failed:" + j.FailedAt }
func idDead(j *job) string   { return "sidekiq:" + j.JID + ":dead:" + j.FailedAt }
