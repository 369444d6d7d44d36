package schemaregistry

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/bufbuild/protocompile"
	"github.com/hamba/avro/v2"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The schema types, as the registry names them (none for Avro).
const (
	TypeAvro     = "AVRO"
	TypeProtobuf = "PROTOBUF"
	TypeJSON     = "JSON"
)

// magic is the first byte of a value in the wire format.
const magic = 0

// IsWireFormat reports whether value is in the wire format: a zero magic
// byte and a schema id. A JSON value never starts with a zero byte.
func IsWireFormat(value []byte) bool { return len(value) >= 5 && value[0] == magic }

// SchemaID returns the schema id of a value in the wire format.
func SchemaID(value []byte) (int, bool) {
	if !IsWireFormat(value) {
		return 0, false
	}
	return int(int32(binary.BigEndian.Uint32(value[1:5]))), true
}

// Decode returns the JSON of a value in the wire format, decoded by its
// schema. The error wraps ErrUnavailable when the registry could not be
// asked (try again later); otherwise the value cannot be decoded, and the
// error names the schema id.
func (c *Client) Decode(ctx context.Context, value []byte) ([]byte, error) {
	id, ok := SchemaID(value)
	if !ok {
		return nil, errors.New("not in the schema registry wire format (want a zero byte and a 4-byte schema id)")
	}
	s, err := c.schemaByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if s.err != nil {
		return nil, fmt.Errorf("schema id %d: %w", id, s.err)
	}
	out, err := s.decode(value[5:])
	if err != nil {
		return nil, fmt.Errorf("schema id %d (%s): %w", id, s.kind, err)
	}
	return out, nil
}

// schema is a compiled schema, or why it cannot be used (err).
type schema struct {
	kind  string
	err   error
	avro  avro.Schema
	proto protoreflect.FileDescriptor
}

// compile compiles a schema with its references (in dependency order).
func compile(id int, doc *document, refs []resolved) *schema {
	kind := doc.SchemaType
	if kind == "" {
		kind = TypeAvro
	}
	s := &schema{kind: kind}
	switch kind {
	case TypeAvro:
		cache := &avro.SchemaCache{}
		for _, r := range refs {
			if _, err := avro.ParseWithCache(r.doc.Schema, "", cache); err != nil {
				s.err = fmt.Errorf("avro reference %s: %w", r.name, err)
				return s
			}
		}
		s.avro, s.err = avro.ParseWithCache(doc.Schema, "", cache)
		if s.err != nil {
			s.err = fmt.Errorf("avro schema: %w", s.err)
		}
	case TypeProtobuf:
		s.proto, s.err = compileProto(id, doc, refs)
	case TypeJSON:
	default:
		s.err = fmt.Errorf("unknown schema type %q (known: AVRO, PROTOBUF, JSON)", kind)
	}
	return s
}

// compileProto compiles the .proto text of a schema, its references
// being the files it imports by their names.
func compileProto(id int, doc *document, refs []resolved) (protoreflect.FileDescriptor, error) {
	files := make(map[string]string, len(refs)+1)
	for _, r := range refs {
		files[r.name] = r.doc.Schema
	}
	main := "twice-schema-" + strconv.Itoa(id) + ".proto"
	files[main] = doc.Schema
	comp := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			Accessor: protocompile.SourceAccessorFromMap(files),
		}),
	}
	fds, err := comp.Compile(context.Background(), main)
	if err != nil {
		return nil, fmt.Errorf("protobuf schema: %s", strings.ReplaceAll(err.Error(), main+":", "line "))
	}
	return fds[0], nil
}

// decode decodes a payload (what follows the schema id).
func (s *schema) decode(payload []byte) ([]byte, error) {
	switch s.kind {
	case TypeAvro:
		var v any
		if err := avro.Unmarshal(s.avro, payload, &v); err != nil {
			return nil, fmt.Errorf("avro payload: %w", err)
		}
		return json.Marshal(avroValue(v, s.avro))
	case TypeProtobuf:
		return s.decodeProto(payload)
	default: // JSON Schema: the payload is the JSON.
		if !json.Valid(payload) {
			return nil, errors.New("json payload is not valid JSON")
		}
		return payload, nil
	}
}

// decodeProto reads the message indexes, then the message they name.
func (s *schema) decodeProto(payload []byte) ([]byte, error) {
	idx, rest, err := messageIndexes(payload)
	if err != nil {
		return nil, err
	}
	md, err := messageAt(s.proto, idx)
	if err != nil {
		return nil, err
	}
	msg := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(rest, msg); err != nil {
		return nil, fmt.Errorf("protobuf payload of %s: %w", md.FullName(), err)
	}
	out, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("protobuf payload of %s: %w", md.FullName(), err)
	}
	return out, nil
}

// messageIndexes reads the list of message indexes of a Protobuf value:
// a zigzag varint count, then that many zigzag varints; a count of 0 is
// the list [0] (the first message of the file).
func messageIndexes(b []byte) ([]int, []byte, error) {
	n, k := binary.Varint(b)
	if k <= 0 || n < 0 || n > 64 {
		return nil, nil, errors.New("protobuf message indexes are not readable")
	}
	b = b[k:]
	if n == 0 {
		return []int{0}, b, nil
	}
	idx := make([]int, n)
	for i := range idx {
		v, k := binary.Varint(b)
		if k <= 0 || v < 0 || v > math.MaxInt32 {
			return nil, nil, errors.New("protobuf message indexes are not readable")
		}
		idx[i], b = int(v), b[k:]
	}
	return idx, b, nil
}

// messageAt returns the message of a file at indexes: the index of a
// top-level message, then of a nested one in it, and so on.
func messageAt(fd protoreflect.FileDescriptor, idx []int) (protoreflect.MessageDescriptor, error) {
	msgs := fd.Messages()
	var md protoreflect.MessageDescriptor
	for _, i := range idx {
		if i >= msgs.Len() {
			return nil, fmt.Errorf("protobuf message indexes %v: no such message in the schema", idx)
		}
		md = msgs.Get(i)
		msgs = md.Messages()
	}
	return md, nil
}

// avroValue turns what hamba/avro decodes with schema s into a value of
// JSON, as avroJSON does, and unwraps unions of null and one named type:
// hamba gives a record in such a union as {"ns.Name": {...}}, the map sees
// the record (or null). A union of several named types keeps the
// {"ns.Name": value} that says which it is.
func avroValue(v any, s avro.Schema) any {
	switch s := s.(type) {
	case *avro.RefSchema:
		return avroValue(v, s.Schema())
	case *avro.RecordSchema:
		m, ok := v.(map[string]any)
		if !ok {
			break
		}
		for _, f := range s.Fields() {
			if e, ok := m[f.Name()]; ok {
				m[f.Name()] = avroValue(e, f.Type())
			}
		}
		return m
	case *avro.ArraySchema:
		a, ok := v.([]any)
		if !ok {
			break
		}
		for i, e := range a {
			a[i] = avroValue(e, s.Items())
		}
		return a
	case *avro.MapSchema:
		m, ok := v.(map[string]any)
		if !ok {
			break
		}
		for k, e := range m {
			m[k] = avroValue(e, s.Values())
		}
		return m
	case *avro.UnionSchema:
		var branches []avro.Schema
		for _, t := range s.Types() {
			if r, ok := t.(*avro.RefSchema); ok {
				t = r.Schema()
			}
			if t.Type() != avro.Null {
				branches = append(branches, t)
			}
		}
		m, ok := v.(map[string]any)
		if !ok || len(m) != 1 {
			break
		}
		for k, e := range m {
			for _, b := range branches {
				if named, ok := b.(avro.NamedSchema); ok && named.FullName() == k || string(b.Type()) == k {
					if len(branches) == 1 {
						return avroValue(e, b)
					}
					m[k] = avroValue(e, b)
					return m
				}
			}
		}
	}
	return avroJSON(v)
}

// avroJSON turns what hamba/avro decodes into a value of JSON: bytes and
// fixed as base64, timestamps and dates as RFC 3339, decimals as strings,
// time-of-day as milliseconds or microseconds.
func avroJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = avroJSON(e)
		}
		return v
	case []any:
		for i, e := range v {
			v[i] = avroJSON(e)
		}
		return v
	case []byte:
		return base64.StdEncoding.EncodeToString(v)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case time.Duration:
		return v.Milliseconds()
	case *big.Rat:
		return ratString(v)
	case big.Rat:
		return ratString(&v)
	case float32:
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil
		}
		return float64(v)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return v
	}
	if b, ok := fixedBytes(v); ok {
		return base64.StdEncoding.EncodeToString(b)
	}
	return v
}

// ratString prints a decimal exactly when it has a finite decimal form.
func ratString(r *big.Rat) string {
	s := r.FloatString(18)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// fixedBytes returns the bytes of an Avro fixed, decoded as a byte array.
func fixedBytes(v any) ([]byte, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Array || rv.Type().Elem().Kind() != reflect.Uint8 {
		return nil, false
	}
	b := make([]byte, rv.Len())
	reflect.Copy(reflect.ValueOf(b), rv)
	return b, true
}
