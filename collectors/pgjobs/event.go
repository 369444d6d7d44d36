package pgjobs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/twicehq/twice/collectors/jsonl"
	"github.com/twicehq/twice/twicetype"
)

// builder writes events as spec §1 JSON objects and parses them with the
// file parser, so a tapped event is valid exactly when the same line in a
// file would be, and its identity is that of its id.
type builder struct {
	source string
	parser *jsonl.Parser
	line   int64
}

func newBuilder(source string) *builder {
	return &builder{source: source, parser: jsonl.NewParser()}
}

// build returns the event of s, read from lane.
func (b *builder) build(s spec, lane string) (twicetype.Event, error) {
	o := jsonl.JobEvent{
		ID:      s.id,
		TS:      time.Unix(0, s.ts).UTC().Format(time.RFC3339Nano),
		Kind:    s.kind.String(),
		Queue:   s.row.Queue,
		JobType: s.row.JobType,
		JobID:   strconv.FormatInt(s.row.ID, 10),
		Attempt: s.attempt,
		Key:     s.fields.Key,
		Entity:  s.fields.Entity,
		Error:   s.err,
		Attrs:   s.fields.Attrs,
	}
	if s.retry != 0 {
		r := s.retry > 0
		o.Retry = &r
	}
	buf, err := json.Marshal(o)
	if err != nil {
		return twicetype.Event{}, fmt.Errorf("encode event %s: %w", s.id, err)
	}
	b.line++
	ev := twicetype.Event{Source: b.source + " " + lane, Line: b.line}
	if err := b.parser.Parse(buf, &ev); err != nil {
		return twicetype.Event{}, fmt.Errorf("event %s: %w", s.id, err)
	}
	return ev, nil
}

// decodeJSON decodes a JSON value with numbers as json.Number, as paths
// want them.
func decodeJSON(raw []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}
