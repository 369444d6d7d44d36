package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fastjson"

	"github.com/twicehq/twice/collectors/jsonl"
	"github.com/twicehq/twice/collectors/kafka/mapexpr"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/twicetype"
)

// domainOffset starts what is hashed into the identity of an event
// without id; jsonl uses 'i' (ids) and 'c' (content).
const domainOffset = 'o'

// maxExprErr bounds how much of an expression's error a reason carries.
const maxExprErr = 160

// MapperOptions are what several Mappers of one source share.
type MapperOptions struct {
	// Stats counts malformed messages; nil for a Stats of the Mapper's own.
	Stats *Stats
	// DeadLetter receives malformed messages; nil for none.
	DeadLetter *DeadLetter
}

// Mapper turns messages of one source into events. It must not be used by
// more than one goroutine at a time; give each reader its own, sharing
// MapperOptions.
type Mapper struct {
	name   string
	format string
	fields []mapField
	stats  *Stats
	dl     *DeadLetter

	parser  jsonl.Parser
	jp      fastjson.Parser
	runner  mapexpr.Runner
	env     mapexpr.Env
	headers map[string]string
	buf     []byte
	errs    []error // per field of fields: the run-time error, if any

	// The source label of the last topic-partition.
	lastTP    TopicPartition
	lastLabel string
}

type mapField struct {
	name string
	prog *mapexpr.Program
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
	switch m.format {
	case config.FormatTwice:
	case config.FormatMap:
		// Spec order, whatever the file's.
		for _, name := range mapexpr.Fields {
			i := slices.IndexFunc(src.Kafka.Map, func(f config.MapField) bool { return f.Field == name })
			if i < 0 {
				continue
			}
			if src.Kafka.Map[i].Expr == nil {
				return nil, fmt.Errorf("source %q: map.%s has no expression", src.Name, name)
			}
			m.fields = append(m.fields, mapField{name: name, prog: src.Kafka.Map[i].Expr})
		}
		m.errs = make([]error, len(m.fields))
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

// Map fills *ev from msg. When msg does not map, it returns a
// twicetype.Malformed (as the error) after counting it and writing it to
// the dead-letter file; *ev is then unspecified.
func (m *Mapper) Map(msg *Message, ev *twicetype.Event) error {
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

// exprError marks a mapped event's reason with the run-time error of the
// expression of the field at fault.
func (m *Mapper) exprError(err error) error {
	var pe *jsonl.ParseError
	if !errors.As(err, &pe) || pe.Field == "" {
		return err
	}
	for i, f := range m.fields {
		if f.name == pe.Field && m.errs[i] != nil {
			msg := m.errs[i].Error()
			if len(msg) > maxExprErr {
				cut := maxExprErr
				for cut > 0 && !utf8.RuneStart(msg[cut]) {
					cut--
				}
				msg = msg[:cut] + "…"
			}
			return &jsonl.ParseError{Field: pe.Field, Reason: pe.Reason + " (map." + f.name + ": " + msg + ")"}
		}
	}
	return err
}

// mapValue runs the map's expressions on msg and parses the object they
// make.
func (m *Mapper) mapValue(msg *Message, ev *twicetype.Event) error {
	env := &m.env
	env.Value = nil
	if len(msg.Value) > 0 {
		v, err := m.jp.ParseBytes(msg.Value)
		if err != nil {
			return &jsonl.ParseError{Reason: "value is " + shorten("not valid JSON: "+err.Error())}
		}
		env.Value = toAny(v)
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

	b := append(m.buf[:0], '{')
	for i, f := range m.fields {
		v, err := m.runner.Run(f.prog, env)
		m.errs[i] = err
		if err != nil || v == nil {
			continue
		}
		mark := len(b)
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, f.name...)
		b = append(b, '"', ':')
		var ok bool
		if b, ok = appendJSON(b, v, 0); !ok {
			m.buf = b[:mark]
			return &jsonl.ParseError{Field: f.name, Reason: `field "` + f.name + `": expression yields ` + describeValue(v) + ", which JSON cannot hold"}
		}
	}
	b = append(b, '}')
	m.buf = b
	env.Value, env.Headers = nil, nil
	if err := m.parser.Parse(b, ev); err != nil {
		return m.exprError(err)
	}
	return nil
}

func shorten(s string) string {
	const max = 200
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// toAny converts a parsed JSON value into what expressions see: integers
// that fit int as int, other numbers as float64.
func toAny(v *fastjson.Value) any {
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		out := make(map[string]any, o.Len())
		o.Visit(func(k []byte, v *fastjson.Value) {
			if _, dup := out[string(k)]; !dup { // first of duplicate keys wins, as in jsonl
				out[string(k)] = toAny(v)
			}
		})
		return out
	case fastjson.TypeArray:
		a, _ := v.Array()
		out := make([]any, len(a))
		for i, e := range a {
			out[i] = toAny(e)
		}
		return out
	case fastjson.TypeString:
		s, _ := v.StringBytes()
		return string(s)
	case fastjson.TypeNumber:
		raw := v.MarshalTo(nil)
		if n, err := strconv.ParseInt(string(raw), 10, 0); err == nil {
			return int(n)
		}
		f, _ := v.Float64()
		return f
	case fastjson.TypeTrue:
		return true
	case fastjson.TypeFalse:
		return false
	}
	return nil
}

// maxJSONDepth bounds the nesting appendJSON writes.
const maxJSONDepth = 64

// appendJSON appends v as JSON, maps with their keys sorted; false when v
// (or something in it) has no JSON form.
func appendJSON(b []byte, v any, depth int) ([]byte, bool) {
	if depth > maxJSONDepth {
		return b, false
	}
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), true
	case string:
		return appendString(b, v), true
	case bool:
		return strconv.AppendBool(b, v), true
	case int:
		return strconv.AppendInt(b, int64(v), 10), true
	case int64:
		return strconv.AppendInt(b, v, 10), true
	case int32:
		return strconv.AppendInt(b, int64(v), 10), true
	case uint64:
		return strconv.AppendUint(b, v, 10), true
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return b, false
		}
		// An integral float is written as an integer: JSON numbers have no
		// type, and 3.0 from arithmetic is the attempt 3.
		if v == math.Trunc(v) && math.Abs(v) < 1<<63 {
			return strconv.AppendInt(b, int64(v), 10), true
		}
		return strconv.AppendFloat(b, v, 'g', -1, 64), true
	case time.Time:
		return appendString(b, v.UTC().Format(time.RFC3339Nano)), true
	case time.Duration:
		return b, false
	case map[string]any:
		return appendObject(b, v, func(b []byte, x any) ([]byte, bool) { return appendJSON(b, x, depth+1) })
	case map[string]string:
		return appendObject(b, v, func(b []byte, x string) ([]byte, bool) { return appendString(b, x), true })
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendJSON(b, e, depth+1); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	}
	// Other numbers and slices expr may produce.
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(b, rv.Int(), 10), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.AppendUint(b, rv.Uint(), 10), true
	case reflect.Float32:
		return appendJSON(b, rv.Float(), depth)
	case reflect.Slice, reflect.Array:
		b = append(b, '[')
		for i := range rv.Len() {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendJSON(b, rv.Index(i).Interface(), depth+1); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	}
	return b, false
}

// appendObject appends m as a JSON object with its keys sorted, each
// value appended by val; false when a value cannot be.
func appendObject[V any](b []byte, m map[string]V, val func([]byte, V) ([]byte, bool)) ([]byte, bool) {
	b = append(b, '{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var ok bool
		if b, ok = val(b, m[k]); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

func describeValue(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return fmt.Sprintf("a %T", v)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 is kept as it
// is, so that the parser reports it.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
