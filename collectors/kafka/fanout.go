package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/twicehq/twice/collectors/kafka/mapexpr"
	"github.com/twicehq/twice/collectors/mapping"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/internal/schemaregistry"
	"github.com/twicehq/twice/sources"
	"github.com/twicehq/twice/twicetype"
)

// ErrSkipped is Map's error for a message the source's skip (or every
// mapping's when) left out: counted as skipped, never malformed.
var ErrSkipped = errors.New("message skipped")

// output is one mapping of a message to an event: made when the
// message's op is in ops (format debezium; nil for any) and every cond
// holds.
type output struct {
	// part names the output in the identity of an event without id, so
	// each output of a message has its own, stable one.
	part    int
	ops     []string
	conds   []*mapexpr.Program
	builder *mapping.Builder
}

// listOutputs returns the outputs of a map written as a list.
func listOutputs(list []config.MapOutput) ([]output, error) {
	outs := make([]output, 0, len(list))
	for i, o := range list {
		fields := make([]mapping.Field, 0, len(o.Fields))
		for _, f := range o.Fields {
			fields = append(fields, mapping.Field{Name: f.Field, Prog: f.Expr})
		}
		b, err := mapping.NewBuilder(fields)
		if err != nil {
			return nil, fmt.Errorf("map[%d]: %w", i, err)
		}
		out := output{part: i, builder: b}
		if o.When != nil {
			out.conds = []*mapexpr.Program{o.When}
		}
		outs = append(outs, out)
	}
	return outs, nil
}

// MapAll appends to out the events msg maps to: none when it is skipped
// (counted in Stats), one, or one per mapping whose condition holds. When
// msg does not map, it returns out as given and a twicetype.Malformed (as
// the error), after counting it and writing it to the dead-letter file.
func (m *Mapper) MapAll(msg *Message, out []twicetype.Event) ([]twicetype.Event, error) {
	if m.registry != nil && m.decoded == nil && schemaregistry.IsWireFormat(msg.Value) {
		return m.MapAllContext(context.Background(), msg, out)
	}
	if m.outputs == nil && m.skip == nil {
		out = append(out, twicetype.Event{})
		if err := m.mapOne(msg, &out[len(out)-1]); err != nil {
			return out[:len(out)-1], err
		}
		return out, nil
	}
	source := m.Label(msg.TP())
	var env any
	op := ""
	if m.dbz != nil {
		skip, err := m.dbz.fill(msg, m.headerMap(msg))
		if err != nil {
			return out, m.malformed(msg, source, err.Error())
		}
		if skip != "" {
			m.stats.addSkipped()
			return out, nil
		}
		env, op = &m.dbz.env, m.dbz.env.Op
	} else {
		if err := m.fillEnv(msg); err != nil {
			return out, m.malformed(msg, source, err.Error())
		}
		env = &m.env
		defer func() { m.env.Value, m.env.Headers = nil, nil }()
		if m.skip != nil {
			holds, err := m.holds(m.skip, env)
			if err != nil {
				return out, m.malformed(msg, source, "skip: "+err.Error())
			}
			if holds {
				m.stats.addSkipped()
				return out, nil
			}
		}
		if m.outputs == nil {
			out = append(out, twicetype.Event{})
			ev := &out[len(out)-1]
			if err := m.builder.Build(env, ev); err != nil {
				return out[:len(out)-1], m.malformed(msg, source, err.Error())
			}
			m.finish(msg, ev, source, 0, false)
			return out, nil
		}
	}
	start := len(out)
	for i := range m.outputs {
		o := &m.outputs[i]
		if o.ops != nil && !slices.Contains(o.ops, op) {
			continue
		}
		made := true
		for _, c := range o.conds {
			holds, err := m.holds(c, env)
			if err != nil {
				return out[:start], m.malformed(msg, source, "when: "+err.Error())
			}
			if !holds {
				made = false
				break
			}
		}
		if !made {
			continue
		}
		out = append(out, twicetype.Event{})
		ev := &out[len(out)-1]
		if err := o.builder.Build(env, ev); err != nil {
			reason := err.Error()
			if len(m.outputs) > 1 && m.dbz == nil {
				reason = "map[" + strconv.Itoa(o.part) + "]: " + reason
			}
			return out[:start], m.malformed(msg, source, reason)
		}
		m.finish(msg, ev, source, o.part, true)
	}
	if len(out) == start {
		m.stats.addSkipped()
	}
	return out, nil
}

// finish sets where ev comes from and, when it has no id, its identity:
// the offset's, with the output's part when a message has several.
func (m *Mapper) finish(msg *Message, ev *twicetype.Event, source string, part int, parts bool) {
	ev.Source, ev.Line = source, msg.Offset
	if ev.ID != "" {
		return
	}
	if parts {
		ev.Identity = PartIdentity(msg.Topic, msg.Partition, msg.Offset, part)
	} else {
		ev.Identity = OffsetIdentity(msg.Topic, msg.Partition, msg.Offset)
	}
}

// holds runs a condition: a bool, or nil (false); anything else is an
// error.
func (m *Mapper) holds(p *mapexpr.Program, env any) (bool, error) {
	v, err := m.runner.Run(p, env)
	if err != nil {
		return false, errors.New(mapping.Shorten(err.Error()))
	}
	switch v := v.(type) {
	case bool:
		return v, nil
	case nil:
		return false, nil
	}
	return false, fmt.Errorf("want true or false, got %s", mapping.Shorten(fmt.Sprintf("%v (%T)", v, v)))
}

// headerMap returns msg's headers as the map expressions see.
func (m *Mapper) headerMap(msg *Message) map[string]string {
	if m.headers == nil {
		m.headers = make(map[string]string)
	}
	clear(m.headers)
	for _, h := range msg.Headers {
		m.headers[h.Key] = string(h.Value)
	}
	return m.headers
}

// PartIdentity is the identity of output part of the message at offset
// of topic[partition], for an event without id of a message that maps to
// several.
func PartIdentity(topic string, partition int, offset int64, part int) uint64 {
	var buf [72]byte
	b := append(buf[:0], domainOffset, 'p')
	b = append(b, topic...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(partition))
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	b = binary.BigEndian.AppendUint32(b, uint32(part))
	h := xxhash.Sum64(b)
	if h == 0 {
		h = 1
	}
	return h
}

// Positions. A message that maps to one event (or none, or is malformed)
// has one record, whose position is the offset after it ("1235" after
// offset 1234). A message that maps to n events has n records: the last
// has that position, the k-th before it "1234.k" — resume at offset 1234,
// past its first k events — so the positions of a lane keep increasing
// and a restart between two events of one message reads it again, the
// sidecar passing over the events it took (twice_redelivered_total).

// recordPosition is the position of a record: part > 0 for the part-th
// of several events of a message, before its last.
func recordPosition(offset int64, part int) sources.Position {
	if part == 0 {
		return sources.IntPosition(offset + 1)
	}
	return sources.Position(strconv.FormatInt(offset, 10) + "." + strconv.Itoa(part))
}

// parsePosition reads a position back: where the partition resumes (the
// offset) and the events of that message already taken.
func parsePosition(p sources.Position) (offset int64, part int, err error) {
	s := string(p)
	if i := strings.IndexByte(s, '.'); i >= 0 {
		offset, err = strconv.ParseInt(s[:i], 10, 64)
		if err == nil {
			part, err = strconv.Atoi(s[i+1:])
		}
		if err != nil || part < 1 || offset < 0 {
			return 0, 0, fmt.Errorf("position %q is not OFFSET.PART", s)
		}
		return offset, part, nil
	}
	offset, err = p.Int()
	return offset, 0, err
}
