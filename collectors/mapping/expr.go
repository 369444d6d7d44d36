// Package mapping is the expression mapping that turns a record of any
// shape — a Kafka message's JSON value, a Postgres row — into a normalized
// event (spec §1): one github.com/expr-lang/expr expression per event field,
// compiled once against the record's environment, run per record, and the
// object the expressions make checked by the same strict parser as a line
// of a file (collectors/jsonl). The kafka source's `map` (format: map) and
// the postgres source's `map` both use it; each tap defines only its
// environment (what an expression sees: `value`, `key`… or `row`).
//
// Why expr and not a language of our own: mappings need conditionals
// (`value.type == "sent" ? "effect" : "state"`), string concatenation
// (`"receipt/" + value.payment_id`), arithmetic and nil-safe navigation
// (`value.meta?.attempt`), and expr gives all of that with a documented
// syntax, a type checker that rejects unknown names when twice.yaml is
// loaded, programs compiled once and run without reflection on the hot
// path, and a memory budget per run, so a bad expression cannot take the
// sidecar down. now() is disabled: the same record always maps to the
// same event. Every environment gets the helper unix_ms(t), a time as
// integer Unix milliseconds.
package mapping

import (
	"errors"
	"fmt"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// Fields are the field names a map may set: those of spec §1, in the
// order of its table.
var Fields = []string{
	"id", "ts", "kind", "queue", "job_type", "job_id", "attempt", "key",
	"effect", "effect_key", "entity", "seq", "terminal", "retry", "error",
	"attrs",
}

// Required are the fields every map must set: every event needs them.
var Required = []string{"ts", "kind"}

// maxNodes bounds the size of one expression.
const maxNodes = 10000

// Program is one compiled expression.
type Program struct {
	src  string
	prog *vm.Program
}

// String returns the expression as written.
func (p *Program) String() string { return p.src }

// CompileError says why an expression does not compile.
type CompileError struct {
	// Column is the 1-based column in the expression, 0 when unknown.
	Column int
	Msg    string
}

func (e *CompileError) Error() string {
	if e.Column > 0 {
		return fmt.Sprintf("%s (column %d of the expression)", e.Msg, e.Column)
	}
	return e.Msg
}

func unixMs(params ...any) (any, error) {
	t, ok := params[0].(time.Time)
	if !ok {
		return nil, fmt.Errorf("unix_ms: want a time, got %T", params[0])
	}
	return t.UnixMilli(), nil
}

// Compiler compiles expressions against one environment type.
type Compiler struct {
	options []expr.Option
}

// NewCompiler returns a Compiler for expressions that see env, a struct
// value whose fields carry `expr:"name"` tags (the names expressions
// use); Run must then be given a value (or pointer) of the same type.
func NewCompiler(env any) *Compiler {
	return &Compiler{options: []expr.Option{
		expr.Env(env),
		expr.Function("unix_ms", unixMs, new(func(time.Time) int64)),
		expr.DisableBuiltin("now"),
		expr.MaxNodes(maxNodes),
	}}
}

// Compile compiles src. Its error is a *CompileError.
func (c *Compiler) Compile(src string) (p *Program, err error) {
	defer func() {
		// The compiler is not ours; no input may crash config loading.
		if r := recover(); r != nil {
			p, err = nil, &CompileError{Msg: fmt.Sprintf("expression does not compile: %v", r)}
		}
	}()
	prog, err := expr.Compile(src, c.options...)
	if err != nil {
		ce := &CompileError{Msg: err.Error()}
		var fe *file.Error
		if errors.As(err, &fe) {
			ce.Msg = fe.Message
			if fe.Snippet != "" {
				ce.Column = fe.Column + 1
			}
		}
		return nil, ce
	}
	return &Program{src: src, prog: prog}, nil
}

// Runner runs programs, reusing one virtual machine. A Runner must not be
// used by more than one goroutine at a time; the zero value is ready.
type Runner struct {
	vm vm.VM
}

// Run evaluates p against env, of the type p was compiled for. A runtime
// error (a fetch from nil, a division by zero, an exceeded memory budget)
// is returned as an error.
func (r *Runner) Run(p *Program, env any) (v any, err error) {
	defer func() {
		if rec := recover(); rec != nil {
			v, err = nil, fmt.Errorf("%v", rec)
		}
	}()
	v, err = r.vm.Run(p.prog, env)
	var fe *file.Error
	if errors.As(err, &fe) {
		// The message alone: the snippet spans lines.
		err = errors.New(fe.Message)
	}
	return v, err
}
