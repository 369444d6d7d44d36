package mapping

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/twicehq/twice/collectors/jsonl"
	"github.com/twicehq/twice/twicetype"
)

// maxExprErr bounds how much of an expression's error a reason carries.
const maxExprErr = 160

// Field is one entry of a map: the event field and its expression.
type Field struct {
	// Name is a field name of spec §1 (Fields).
	Name string
	Prog *Program
}

// Builder runs a map's expressions on a record and parses the object they
// make into an event. It must not be used by more than one goroutine at a
// time.
type Builder struct {
	fields []Field
	parser jsonl.Parser
	runner Runner
	buf    []byte
	errs   []error // per field of fields: the run-time error, if any
}

// NewBuilder returns a Builder of fields, which it runs in the order of
// Fields (spec order), whatever the order given. A field without a
// program, or not in Fields, is an error.
func NewBuilder(fields []Field) (*Builder, error) {
	b := &Builder{}
	for _, f := range fields {
		if !slices.Contains(Fields, f.Name) {
			return nil, fmt.Errorf("map.%s: not a field of an event", f.Name)
		}
		if f.Prog == nil {
			return nil, fmt.Errorf("map.%s has no expression", f.Name)
		}
	}
	for _, name := range Fields {
		if i := slices.IndexFunc(fields, func(f Field) bool { return f.Name == name }); i >= 0 {
			b.fields = append(b.fields, fields[i])
		}
	}
	b.errs = make([]error, len(b.fields))
	return b, nil
}

// Build runs the expressions on env and fills *ev from the object they
// make, checked as a line of a file. An expression that fails or yields
// nil leaves its field out; when the object is then not an event the
// error is a *jsonl.ParseError whose reason names the field and, when an
// expression failed, its error.
func (b *Builder) Build(env any, ev *twicetype.Event) error {
	buf := append(b.buf[:0], '{')
	for i, f := range b.fields {
		v, err := b.runner.Run(f.Prog, env)
		b.errs[i] = err
		if err != nil || v == nil {
			continue
		}
		mark := len(buf)
		if len(buf) > 1 {
			buf = append(buf, ',')
		}
		buf = append(buf, '"')
		buf = append(buf, f.Name...)
		buf = append(buf, '"', ':')
		var ok bool
		if buf, ok = AppendJSON(buf, v); !ok {
			b.buf = buf[:mark]
			return &jsonl.ParseError{Field: f.Name, Reason: `field "` + f.Name + `": expression yields ` + describeValue(v) + ", which JSON cannot hold"}
		}
	}
	buf = append(buf, '}')
	b.buf = buf
	if err := b.parser.Parse(buf, ev); err != nil {
		return b.exprError(err)
	}
	return nil
}

// exprError marks a mapped event's reason with the run-time error of the
// expression of the field at fault.
func (b *Builder) exprError(err error) error {
	var pe *jsonl.ParseError
	if !errors.As(err, &pe) || pe.Field == "" {
		return err
	}
	for i, f := range b.fields {
		if f.Name == pe.Field && b.errs[i] != nil {
			msg := b.errs[i].Error()
			if len(msg) > maxExprErr {
				cut := maxExprErr
				for cut > 0 && !utf8.RuneStart(msg[cut]) {
					cut--
				}
				msg = msg[:cut] + "…"
			}
			return &jsonl.ParseError{Field: pe.Field, Reason: pe.Reason + " (map." + f.Name + ": " + msg + ")"}
		}
	}
	return err
}

// maxJSONDepth bounds the nesting AppendJSON writes.
const maxJSONDepth = 64

// AppendJSON appends v — a value an expression yields — as JSON, maps
// with their keys sorted and times in RFC 3339 UTC; false when v (or
// something in it) has no JSON form (NaN, a duration, a function).
func AppendJSON(b []byte, v any) ([]byte, bool) { return appendJSON(b, v, 0) }

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

// Shorten cuts s to at most 200 bytes (on a rune boundary), marking the cut
// with "…": for reasons that quote what a record holds.
func Shorten(s string) string {
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
