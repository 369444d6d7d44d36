package kafka

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/valyala/fastjson"

	"github.com/twicehq/twice/collectors/jsonl"
	"github.com/twicehq/twice/collectors/kafka/mapexpr"
	"github.com/twicehq/twice/collectors/mapping"
	"github.com/twicehq/twice/config"
)

// format: debezium. A Debezium change event (the JSON converter's, with
// or without its schema wrapper {"schema":…,"payload":…}) is an envelope
//
//	{"before": {…}|null, "after": {…}|null, "op": "c"|"u"|"d"|"r",
//	 "source": {"name", "db", "schema", "table", "ts_ms", "lsn", "txId"…},
//	 "transaction": {"id", "total_order", "data_collection_order"}|null,
//	 "ts_ms": …}
//
// and it maps to up to two events: an effect (for the ops and condition
// of the source's debezium block) and a state of the entity. Messages that
// are no change — tombstones (a null value after a delete), transaction
// BEGIN/END markers, heartbeats, schema changes, truncates and logical
// decoding messages, changes of tables the block does not read — are
// skipped. A JSON value that is none of these is malformed.

// The parts of the effect and the state in the identities of events
// without id (a change without log position).
const (
	partEffect = 0
	partState  = 1
)

// debeziumMapper decodes change events for a Mapper.
type debeziumMapper struct {
	tables  []string
	outputs []output
	env     mapexpr.DebeziumEnv
	jp, kp  fastjson.Parser
	keyBuf  []byte
}

// newDebeziumMapper returns the decoder and outputs of a debezium block.
func newDebeziumMapper(d *config.KafkaDebezium) (*debeziumMapper, error) {
	if d == nil {
		return nil, errors.New("format debezium needs a debezium block")
	}
	dm := &debeziumMapper{tables: d.Tables}
	shared := func(skip string) []mapping.Field {
		var out []mapping.Field
		for _, f := range d.Fields {
			if f.Field != skip {
				out = append(out, mapping.Field{Name: f.Field, Prog: f.Expr})
			}
		}
		return out
	}
	has := func(fields []mapping.Field, name string) bool {
		return slices.ContainsFunc(fields, func(f mapping.Field) bool { return f.Name == name })
	}
	// def adds the field name with the expression src unless fields set it.
	def := func(fields []mapping.Field, name, src string) []mapping.Field {
		if has(fields, name) {
			return fields
		}
		return append(fields, mapping.Field{Name: name, Prog: mapexpr.MustCompileDebezium(src)})
	}
	var common []*mapexpr.Program
	if d.When != nil {
		common = append(common, d.When)
	}
	if d.Effect != "" {
		fields := shared("")
		fields = def(fields, "id", `change_id == "" ? nil : change_id + "#effect"`)
		fields = def(fields, "ts", `source.ts_ms`)
		fields = append(fields,
			mapping.Field{Name: "kind", Prog: mapexpr.MustCompileDebezium(`"effect"`)},
			mapping.Field{Name: "effect", Prog: mapexpr.MustCompileDebezium(strconv.Quote(d.Effect))},
			mapping.Field{Name: "effect_key", Prog: d.EffectKey})
		b, err := mapping.NewBuilder(fields)
		if err != nil {
			return nil, fmt.Errorf("debezium: %w", err)
		}
		ops := d.EffectOps
		if ops == nil {
			ops = config.DefaultEffectOps
		}
		conds := slices.Clone(common)
		if d.EffectWhen != nil {
			conds = append(conds, d.EffectWhen)
		}
		dm.outputs = append(dm.outputs, output{part: partEffect, ops: ops, conds: conds, builder: b})
	}
	if s := d.State; s != nil {
		var fields []mapping.Field
		if s.Entity != nil {
			fields = append(shared("entity"), mapping.Field{Name: "entity", Prog: s.Entity})
		} else {
			fields = shared("")
		}
		fields = def(fields, "id", `change_id == "" ? nil : change_id + "#state"`)
		fields = def(fields, "ts", `source.ts_ms`)
		fields = append(fields, mapping.Field{Name: "kind", Prog: mapexpr.MustCompileDebezium(`"state"`)})
		if s.Seq != nil {
			fields = append(fields, mapping.Field{Name: "seq", Prog: s.Seq})
		} else {
			fields = def(fields, "seq", `position`)
		}
		if s.Terminal != nil {
			fields = append(fields, mapping.Field{Name: "terminal", Prog: s.Terminal})
		} else {
			fields = def(fields, "terminal", `op == "d"`)
		}
		b, err := mapping.NewBuilder(fields)
		if err != nil {
			return nil, fmt.Errorf("debezium.state: %w", err)
		}
		ops := s.Ops
		if ops == nil {
			ops = config.DefaultStateOps
		}
		conds := slices.Clone(common)
		if s.When != nil {
			conds = append(conds, s.When)
		}
		dm.outputs = append(dm.outputs, output{part: partState, ops: ops, conds: conds, builder: b})
	}
	if len(dm.outputs) == 0 {
		return nil, errors.New("debezium: neither effect nor state")
	}
	return dm, nil
}

// fill decodes msg into env. skip says why a message that is no change
// is skipped ("" for a change); err why a message is malformed.
func (d *debeziumMapper) fill(msg *Message, headers map[string]string) (skip string, err error) {
	env := &d.env
	*env = mapexpr.DebeziumEnv{}
	if len(msg.Value) == 0 {
		return "tombstone", nil
	}
	v, err := d.jp.ParseBytes(msg.Value)
	if err != nil {
		return "", &jsonl.ParseError{Reason: "value is " + mapping.Shorten("not valid JSON: "+err.Error())}
	}
	v = unwrapSchema(v)
	if v.Type() == fastjson.TypeNull {
		return "tombstone", nil
	}
	if v.Type() != fastjson.TypeObject {
		return "", &jsonl.ParseError{Reason: "not a Debezium change event: the value is not an object"}
	}
	opv := v.Get("op")
	if opv == nil {
		switch {
		case v.Exists("status") && v.Exists("id") && v.Exists("event_count") || isTxStatus(v):
			return "transaction marker", nil
		case v.Exists("ddl") || v.Exists("tableChanges") || v.Exists("historyRecord"):
			return "schema change", nil
		case v.Exists("ts_ms") && onlyKeys(v, "ts_ms"):
			return "heartbeat", nil
		}
		return "", &jsonl.ParseError{Reason: "not a Debezium change event: no op (an envelope has before, after, op and source; for rows flattened by ExtractNewRecordState use format: map)"}
	}
	ob, err := opv.StringBytes()
	if err != nil {
		return "", &jsonl.ParseError{Reason: "not a Debezium change event: op is not a string"}
	}
	op := string(ob)
	switch op {
	case "c", "u", "d", "r":
	case "t", "m":
		return "truncate or message", nil
	default:
		return "", &jsonl.ParseError{Reason: "not a Debezium change event: unknown op " + strconv.Quote(mapping.Shorten(op))}
	}
	env.Op = op
	env.Value = mapping.FromJSON(v)
	payload, _ := env.Value.(map[string]any)
	env.Before, _ = payload["before"].(map[string]any)
	env.After, _ = payload["after"].(map[string]any)
	env.Source, _ = payload["source"].(map[string]any)
	env.Transaction, _ = payload["transaction"].(map[string]any)
	if op == "d" {
		env.Row = env.Before
	} else {
		env.Row = env.After
	}
	if env.Row == nil {
		what := "after"
		if op == "d" {
			what = "before"
		}
		return "", &jsonl.ParseError{Reason: "Debezium change event (op " + op + ") without " + what}
	}
	if env.Source == nil {
		return "", &jsonl.ParseError{Reason: "Debezium change event without source"}
	}
	table, _ := env.Source["table"].(string)
	ns, _ := env.Source["schema"].(string)
	if ns == "" {
		ns, _ = env.Source["db"].(string) // MySQL: the database
	}
	env.Table = table
	if ns != "" {
		env.Table = ns + "." + table
	}
	if d.tables != nil && !slices.Contains(d.tables, env.Table) && !slices.Contains(d.tables, table) {
		return "other table", nil
	}
	if len(msg.Key) > 0 {
		if k, err := d.kp.ParseBytes(msg.Key); err == nil {
			env.Key = mapping.FromJSON(unwrapSchema(k))
		} else {
			env.Key = string(msg.Key)
		}
	}
	env.Headers = headers
	env.Timestamp = msg.Time
	if !msg.Time.IsZero() {
		env.TimestampMs = msg.Time.UnixMilli()
	}
	env.Topic, env.Partition, env.Offset = msg.Topic, msg.Partition, msg.Offset
	pos, hasPos, posText := logPosition(env.Source)
	if hasPos {
		env.Position = pos
	}
	if posText != "" {
		id := make([]byte, 0, 96)
		if name, _ := env.Source["name"].(string); name != "" {
			id = append(id, name...)
			id = append(id, '/')
		}
		id = append(id, env.Table...)
		id = append(id, '@')
		id = append(id, posText...)
		id = append(id, '/')
		id = append(id, op...)
		if op == "r" {
			// A snapshot reads every row at one position: the key tells
			// them apart.
			id = append(id, '/')
			d.keyBuf, _ = mapping.AppendJSON(d.keyBuf[:0], env.Key)
			id = append(id, d.keyBuf...)
		}
		env.ChangeID = string(id)
	}
	return "", nil
}

// unwrapSchema returns the payload of a value the JSON converter wrote
// with schemas.enable: {"schema": …, "payload": …}; v otherwise.
func unwrapSchema(v *fastjson.Value) *fastjson.Value {
	if v.Type() != fastjson.TypeObject {
		return v
	}
	o, _ := v.Object()
	if o.Len() == 2 && v.Exists("schema") && v.Exists("payload") {
		return v.Get("payload")
	}
	return v
}

func isTxStatus(v *fastjson.Value) bool {
	s := string(v.GetStringBytes("status"))
	return (s == "BEGIN" || s == "END") && v.Exists("id")
}

// onlyKeys reports whether the object v has no keys but keys.
func onlyKeys(v *fastjson.Value, keys ...string) bool {
	o, _ := v.Object()
	only := true
	o.Visit(func(k []byte, _ *fastjson.Value) {
		if !slices.Contains(keys, string(k)) {
			only = false
		}
	})
	return only
}

// logPosition returns where a change is in its database's log: the LSN
// (Postgres), or the binlog file number × 2³² + position, with the row in
// the event for the text (MySQL). text is "" when source has neither,
// hasPos false when it has no number.
func logPosition(source map[string]any) (pos int64, hasPos bool, text string) {
	if lsn, ok := source["lsn"]; ok && lsn != nil {
		if n, ok := asInt(lsn); ok {
			return n, true, strconv.FormatInt(n, 10)
		}
	}
	file, _ := source["file"].(string)
	p, ok := asInt(source["pos"])
	if file == "" || !ok {
		return 0, false, ""
	}
	text = file + ":" + strconv.FormatInt(p, 10)
	if row, ok := asInt(source["row"]); ok {
		text += ":" + strconv.FormatInt(row, 10)
	}
	i := strings.LastIndexByte(file, '.')
	num, err := strconv.ParseInt(file[i+1:], 10, 32)
	if err != nil || p < 0 || p >= 1<<32 {
		return 0, false, text
	}
	return num<<32 | p, true, text
}

func asInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int:
		return int64(v), true
	case float64:
		if v == float64(int64(v)) {
			return int64(v), true
		}
	}
	return 0, false
}
