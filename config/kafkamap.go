package config

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/twicehq/twice/collectors/kafka/mapexpr"
)

// FormatDebezium is the format of a kafka source whose messages are
// Debezium change events, mapped by its debezium settings.
const FormatDebezium = "debezium"

// MapOutput is one mapping of a kafka source's map given as a list: each
// message makes one event per mapping whose When holds.
type MapOutput struct {
	// When, if set, is the condition for this mapping to make an event.
	When *mapexpr.Program
	// Fields are its field expressions, in file order.
	Fields []MapField
}

// KafkaDebezium says how a kafka source with format: debezium turns
// Debezium change events into events; its expressions see
// mapexpr.DebeziumEnv.
type KafkaDebezium struct {
	// Tables, if set, are the tables read ("ledger" or "public.ledger");
	// changes of other tables are skipped.
	Tables []string
	// When, if set, is a condition every change must meet; others are
	// skipped.
	When *mapexpr.Program
	// Fields are the expressions both the effect and the state take (ts,
	// queue, job_type, job_id, attempt, key, entity, attrs), in file order.
	Fields []MapField
	// Effect is the effect type of the changes that are effects; "" when
	// changes are no effects.
	Effect string
	// EffectKey is the effect's effect_key expression.
	EffectKey *mapexpr.Program
	// EffectOps are the ops that are effects; default DefaultEffectOps.
	EffectOps []string
	// EffectWhen, if set, is a further condition for a change to be an
	// effect.
	EffectWhen *mapexpr.Program
	// State, when set, makes changes states of their entity.
	State *KafkaDebeziumState
}

// KafkaDebeziumState says how changes become states.
type KafkaDebeziumState struct {
	// Ops are the ops that are states; default DefaultStateOps.
	Ops []string
	// When, if set, is a further condition.
	When *mapexpr.Program
	// Entity overrides the shared entity expression; Terminal is the
	// terminal expression (default: op == "d"); Seq the seq expression
	// (default: position, the LSN).
	Entity, Terminal, Seq *mapexpr.Program
}

// The ops of Debezium change events, and the defaults of which are
// effects and which states. A snapshot read (r) is a row that already
// was, read again whenever the connector snapshots: an effect for it
// would count every row once more at each snapshot.
var (
	DebeziumOps      = []string{"c", "u", "d", "r"}
	DefaultEffectOps = []string{"c"}
	DefaultStateOps  = []string{"c", "u", "d", "r"}
)

// debeziumShared are the event fields a debezium block sets for both
// the effect and the state.
var debeziumShared = []string{"ts", "queue", "job_type", "job_id", "attempt", "key", "entity", "attrs"}

var (
	debeziumKeys = append([]string{"table", "when", "effect", "effect_key", "effect_ops", "effect_when", "state"}, debeziumShared...)
	stateKeys    = []string{"ops", "when", "entity", "terminal", "seq"}
)

// expression parses and compiles one expression with compile.
func (p *parser) expression(n *yaml.Node, path string, compile func(string) (*mapexpr.Program, error)) (*mapexpr.Program, bool) {
	v := resolve(n)
	switch v.ShortTag() {
	case "!!str", "!!int", "!!float", "!!bool":
	default:
		p.errorf(v, path, "want an expression, got %s", describe(v))
		return nil, false
	}
	if v.Kind != yaml.ScalarNode || strings.TrimSpace(v.Value) == "" {
		p.errorf(v, path, "want an expression, got %s", describe(v))
		return nil, false
	}
	prog, err := compile(v.Value)
	if err != nil {
		p.errorf(v, path, "%v", err)
		return nil, false
	}
	return prog, true
}

// mapOutputs parses a map given as a list of mappings, each with an
// optional when.
func (p *parser) mapOutputs(n *yaml.Node, path string) ([]MapOutput, bool) {
	items, ok := p.sequence(n, path)
	if ok && len(items) == 0 {
		p.errorf(resolve(n), path, "no mappings")
		return nil, false
	}
	var out []MapOutput
	for i, it := range items {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		var o MapOutput
		es, good := p.mapping(it, ipath)
		var fields []entry
		for _, e := range es {
			if e.name == "when" {
				o.When, good = p.expression(e.val, join(ipath, "when"), mapexpr.Compile)
				ok = ok && good
				continue
			}
			fields = append(fields, e)
		}
		o.Fields, good = p.mapEntries(fields, ipath)
		ok = ok && good
		set := map[string]bool{}
		for _, f := range o.Fields {
			set[f.Field] = true
		}
		for _, f := range requiredMapFields {
			if good && !set[f] {
				p.errorf(it, ipath, "missing %s (every event needs it)", f)
				ok = false
			}
		}
		out = append(out, o)
	}
	return out, ok
}

// mapEntries compiles the entries of a map, each an event field.
func (p *parser) mapEntries(es []entry, path string) ([]MapField, bool) {
	ok := true
	var out []MapField
	for _, e := range es {
		if !slices.Contains(mapexpr.Fields, e.name) {
			p.errorf(e.key, path, "%s", unknownMapField(e.name))
			ok = false
			continue
		}
		prog, good := p.expression(e.val, join(path, e.name), mapexpr.Compile)
		if !good {
			ok = false
			continue
		}
		v := resolve(e.val)
		out = append(out, MapField{Field: e.name, Expr: prog, Line: v.Line, Column: v.Column})
	}
	return out, ok
}

// ops parses a list of Debezium ops.
func (p *parser) ops(n *yaml.Node, path string) ([]string, bool) {
	items, ok := p.sequence(n, path)
	if ok && len(items) == 0 {
		p.errorf(resolve(n), path, "no ops (known: %s)", strings.Join(DebeziumOps, ", "))
		return nil, false
	}
	var out []string
	for i, it := range items {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		v, good := p.str(it, ipath)
		if good && !slices.Contains(DebeziumOps, v) {
			p.errorf(resolve(it), ipath, "unknown op %q (known: %s: insert, update, delete, snapshot read)", v, strings.Join(DebeziumOps, ", "))
			good = false
		}
		ok = ok && good
		out = append(out, v)
	}
	return out, ok
}

// debezium parses a kafka source's debezium block.
func (p *parser) debezium(n *yaml.Node, path string) (*KafkaDebezium, bool) {
	es, ok := p.fields(n, path, debeziumKeys)
	if !ok {
		return nil, false
	}
	d := &KafkaDebezium{}
	compile := mapexpr.CompileDebezium
	var effectKey, entityNode *yaml.Node
	for _, e := range es {
		epath := join(path, e.name)
		good := true
		switch e.name {
		case "table":
			if resolve(e.val).Kind == yaml.SequenceNode {
				items, _ := p.sequence(e.val, epath)
				for i, it := range items {
					v, g := p.name(it, fmt.Sprintf("%s[%d]", epath, i))
					good = good && g
					d.Tables = append(d.Tables, v)
				}
			} else {
				var v string
				v, good = p.name(e.val, epath)
				d.Tables = []string{v}
			}
		case "when":
			d.When, good = p.expression(e.val, epath, compile)
		case "effect":
			d.Effect, good = p.name(e.val, epath)
			effectKey = e.key
		case "effect_key":
			d.EffectKey, good = p.expression(e.val, epath, compile)
		case "effect_ops":
			d.EffectOps, good = p.ops(e.val, epath)
		case "effect_when":
			d.EffectWhen, good = p.expression(e.val, epath, compile)
		case "state":
			d.State, good = p.debeziumState(e.val, epath)
		default: // a shared event field
			if e.name == "entity" {
				entityNode = e.key
			}
			var prog *mapexpr.Program
			if prog, good = p.expression(e.val, epath, compile); good {
				v := resolve(e.val)
				d.Fields = append(d.Fields, MapField{Field: e.name, Expr: prog, Line: v.Line, Column: v.Column})
			}
		}
		ok = ok && good
	}
	if !ok {
		return d, false
	}
	switch {
	case d.Effect == "" && d.State == nil:
		p.errorf(n, path, "neither effect nor state: say which changes are effects (effect, effect_key) or states of their entity (state)")
		ok = false
	case d.Effect != "" && d.EffectKey == nil:
		p.errorf(effectKey, path, "effect needs effect_key (what must happen at most once)")
		ok = false
	case d.Effect == "" && (d.EffectKey != nil || d.EffectOps != nil || d.EffectWhen != nil):
		p.errorf(n, path, "effect_key, effect_ops and effect_when need effect (the effect type)")
		ok = false
	case d.State != nil && d.State.Entity == nil && entityNode == nil:
		p.errorf(n, path, "state needs entity (here or in state)")
		ok = false
	}
	return d, ok
}

// debeziumState parses the state of a debezium block: true, or a
// mapping.
func (p *parser) debeziumState(n *yaml.Node, path string) (*KafkaDebeziumState, bool) {
	v := resolve(n)
	if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!bool" {
		b, ok := p.boolean(v, path)
		if !ok || !b {
			return nil, ok
		}
		return &KafkaDebeziumState{}, true
	}
	es, ok := p.fields(n, path, stateKeys)
	if !ok {
		return nil, false
	}
	s := &KafkaDebeziumState{}
	for _, e := range es {
		epath := join(path, e.name)
		good := true
		switch e.name {
		case "ops":
			s.Ops, good = p.ops(e.val, epath)
		case "when":
			s.When, good = p.expression(e.val, epath, mapexpr.CompileDebezium)
		case "entity":
			s.Entity, good = p.expression(e.val, epath, mapexpr.CompileDebezium)
		case "terminal":
			s.Terminal, good = p.expression(e.val, epath, mapexpr.CompileDebezium)
		case "seq":
			s.Seq, good = p.expression(e.val, epath, mapexpr.CompileDebezium)
		}
		ok = ok && good
	}
	return s, ok
}

// validate checks a debezium block built in code; each Error's Path is
// relative to the source.
func (d *KafkaDebezium) validate() []*Error {
	var errs []*Error
	add := func(path, format string, args ...any) {
		errs = append(errs, &Error{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if d == nil {
		add("debezium", "format debezium needs a debezium block")
		return errs
	}
	if d.Effect == "" && d.State == nil {
		add("debezium", "neither effect nor state")
	}
	if d.Effect != "" && d.EffectKey == nil {
		add("debezium.effect_key", "missing (effect needs it)")
	}
	for _, op := range d.EffectOps {
		if !slices.Contains(DebeziumOps, op) {
			add("debezium.effect_ops", "unknown op %q", op)
		}
	}
	for _, f := range d.Fields {
		if !slices.Contains(debeziumShared, f.Field) || f.Expr == nil {
			add("debezium."+f.Field, "not a field a debezium block sets (known: %s)", strings.Join(debeziumShared, ", "))
		}
	}
	if s := d.State; s != nil {
		for _, op := range s.Ops {
			if !slices.Contains(DebeziumOps, op) {
				add("debezium.state.ops", "unknown op %q", op)
			}
		}
		if s.Entity == nil && !slices.ContainsFunc(d.Fields, func(f MapField) bool { return f.Field == "entity" }) {
			add("debezium.state", "needs entity")
		}
	}
	return errs
}
