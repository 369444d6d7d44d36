package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fastjson"

	"github.com/twicehq/twice/collectors/jsonl"
	"github.com/twicehq/twice/collectors/kafka/mapexpr"
	"github.com/twicehq/twice/collectors/mapping"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/internal/schemaregistry"
	"github.com/twicehq/twice/twicetype"
)

// domainOffset starts what is hashed into the identity of an event
// without id; jsonl uses 'i' (ids) and 'c' (content).
const domainOffset = 'o'

// MapperOptions are what several Mappers of one source share.
type MapperOptions struct {
	// Stats counts malformed messages; nil for a Stats of the Mapper's own.
	Stats *Stats
	// DeadLetter receives malformed messages; nil for none.
	DeadLetter *DeadLetter
	// Registry decodes values in the schema registry wire format, for a
	// source with schema_registry; nil for a client of the Mapper's own.
	Registry *schemaregistry.Client
}

// Mapper turns messages of one source into events. It must not be used by
// more than one goroutine at a time; give each reader its own, sharing
// MapperOptions.
type Mapper struct {
	name    string
	format  string
	builder *mapping.Builder // format map
	stats   *Stats
	dl      *DeadLetter

	// outputs, for a map written as a list and for format debezium,
	// make the events of one message (fan-out); skip, for format map,
	// skips a message.
	outputs []output
	skip    *mapexpr.Program
	dbz     *debeziumMapper
	evs     []twicetype.Event
	runner  mapping.Runner

	parser  jsonl.Parser
	jp      fastjson.Parser
	env     mapexpr.Env
	headers map[string]string

	// registry, for a source with schema_registry, decodes wire-format
	// values; decoded is the JSON of the message at hand, nil when its
	// value is read as it is.
	registry *schemaregistry.Client
	decoded  []byte

	// The source label of the last topic-partition.
	lastTP    TopicPartition
	lastLabel string
}

// NewMapper returns the Mapper of a kafka source.
func NewMapper(src config.Source, opts MapperOptions) (*Mapper, error) {
	if src.Type != config.SourceKafka || src.Kafka == nil {
		return nil, fmt.Errorf("source %q is not a kafka source", src.Name)
	}
	m := &Mapper{name: src.Name, format: src.Kafka.Format, stats: opts.Stats, dl: opts.DeadLetter}
	if m.stats == nil {
		m.stats = NewStats()
	}
	if r := src.Kafka.SchemaRegistry; r != nil {
		m.registry = opts.Registry
		if m.registry == nil {
			c, err := schemaregistry.Load(r)
			if err != nil {
				return nil, fmt.Errorf("source %q: %w", src.Name, err)
			}
			m.registry = c
		}
	}
	switch m.format {
	case config.FormatTwice:
	case config.FormatMap:
		fields := make([]mapping.Field, 0, len(src.Kafka.Map))
		for _, f := range src.Kafka.Map {
			fields = append(fields, mapping.Field{Name: f.Field, Prog: f.Expr})
		}
		m.skip = src.Kafka.Skip
		if len(src.Kafka.Outputs) > 0 {
			outs, err := listOutputs(src.Kafka.Outputs)
			if err != nil {
				return nil, fmt.Errorf("source %q: %w", src.Name, err)
			}
			m.outputs = outs
			break
		}
		b, err := mapping.NewBuilder(fields)
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", src.Name, err)
		}
		m.builder = b
	case config.FormatDebezium:
		d, err := newDebeziumMapper(src.Kafka.Debezium)
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", src.Name, err)
		}
		m.dbz, m.outputs = d, d.outputs
	default:
		return nil, fmt.Errorf("source %q: unknown format %q", src.Name, m.format)
	}
	return m, nil
}

// Stats returns the counters the Mapper adds to.
func (m *Mapper) Stats() *Stats { return m.stats }

// Label returns how events and malformed messages of tp name their
// source: "SOURCE TOPIC[PARTITION]".
func (m *Mapper) Label(tp TopicPartition) string {
	if tp != m.lastTP || m.lastLabel == "" {
		m.lastTP, m.lastLabel = tp, m.name+" "+tp.String()
	}
	return m.lastLabel
}

// Map fills *ev from msg: the first event msg maps to. When msg does not
// map, it returns a twicetype.Malformed (as the error) after counting it
// and writing it to the dead-letter file; when it is skipped, ErrSkipped;
// *ev is then unspecified. MapAll returns every event of a message.
func (m *Mapper) Map(msg *Message, ev *twicetype.Event) error {
	if m.outputs != nil || m.skip != nil || m.registry != nil {
		evs, err := m.MapAll(msg, m.evs[:0])
		m.evs = evs[:0]
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return ErrSkipped
		}
		*ev = evs[0]
		return nil
	}
	return m.mapOne(msg, ev)
}

// mapOne maps msg to its one event (format twice, or one map).
func (m *Mapper) mapOne(msg *Message, ev *twicetype.Event) error {
	ev.Source, ev.Line = m.Label(msg.TP()), msg.Offset
	var err error
	if m.format == config.FormatTwice {
		err = m.parser.Parse(msg.Value, ev)
	} else {
		err = m.mapValue(msg, ev)
	}
	if err != nil {
		return m.malformed(msg, ev.Source, err.Error())
	}
	if ev.ID == "" {
		ev.Identity = OffsetIdentity(msg.Topic, msg.Partition, msg.Offset)
	}
	return nil
}

// OffsetIdentity is the identity of an event without id read at offset of
// topic[partition].
func OffsetIdentity(topic string, partition int, offset int64) uint64 {
	var buf [64]byte
	b := append(buf[:0], domainOffset)
	b = append(b, topic...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(partition))
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	h := xxhash.Sum64(b)
	if h == 0 {
		h = 1
	}
	return h
}

func (m *Mapper) malformed(msg *Message, source, reason string) error {
	mal := twicetype.Malformed{Source: source, Line: msg.Offset, Reason: reason}
	m.stats.addMalformed(reason)
	if m.dl != nil {
		written, err := m.dl.Write(msg, reason)
		m.stats.addDeadLetter(written, err)
	}
	return mal
}

// mapValue runs the map's expressions on msg and parses the object they
// make.
func (m *Mapper) mapValue(msg *Message, ev *twicetype.Event) error {
	if err := m.fillEnv(msg); err != nil {
		return err
	}
	err := m.builder.Build(&m.env, ev)
	m.env.Value, m.env.Headers = nil, nil
	return err
}

// fillEnv sets what the map's expressions see of msg.
func (m *Mapper) fillEnv(msg *Message) error {
	env := &m.env
	env.Value = nil
	value := msg.Value
	if m.decoded != nil {
		value = m.decoded
	}
	if len(value) > 0 {
		v, err := m.jp.ParseBytes(value)
		if err != nil {
			return &jsonl.ParseError{Reason: "value is " + mapping.Shorten("not valid JSON: "+err.Error())}
		}
		env.Value = mapping.FromJSON(v)
	}
	env.Key = string(msg.Key)
	if m.headers == nil {
		m.headers = make(map[string]string)
	}
	clear(m.headers)
	for _, h := range msg.Headers {
		m.headers[h.Key] = string(h.Value)
	}
	env.Headers = m.headers
	env.Timestamp = msg.Time
	env.TimestampMs = 0
	if !msg.Time.IsZero() {
		env.TimestampMs = msg.Time.UnixMilli()
	}
	env.Topic, env.Partition, env.Offset = msg.Topic, msg.Partition, msg.Offset
	return nil
}

// IsRetryable reports whether err, from MapAllContext, says the message
// could not be mapped for now (the schema registry is unavailable): it is
// neither an event nor malformed, and is to be mapped again later.
func IsRetryable(err error) bool { return errors.Is(err, schemaregistry.ErrUnavailable) }

// MapAllContext is MapAll for a source whose values may need the schema
// registry: a value in the wire format is decoded by its schema first
// (ctx bounds asking the registry for it). When the registry cannot be
// asked, it returns out as given and an error for which IsRetryable
// holds, without counting the message. A schema id the registry does not
// know (404), or a value its schema does not decode, makes the message
// malformed, naming the schema id.
func (m *Mapper) MapAllContext(ctx context.Context, msg *Message, out []twicetype.Event) ([]twicetype.Event, error) {
	if m.registry == nil || !schemaregistry.IsWireFormat(msg.Value) {
		return m.MapAll(msg, out)
	}
	decoded, err := m.registry.Decode(ctx, msg.Value)
	if IsRetryable(err) {
		return out, fmt.Errorf("%s offset %d: %w", msg.TP(), msg.Offset, err)
	}
	if err != nil {
		return out, m.malformed(msg, m.Label(msg.TP()), "value: "+err.Error())
	}
	m.decoded = decoded
	defer func() { m.decoded = nil }()
	return m.MapAll(msg, out)
}
