// Package mapexpr is the environment of a kafka source's map: (twice.yaml):
// what its expressions see of a message, compiled and run by package
// collectors/mapping, which holds the expression language, its rules and
// why it is expr (the postgres source's map uses the same machinery over
// a row).
//
// An expression sees Env: the message's value (its JSON, parsed), key,
// headers, timestamp, topic, partition and offset, and the helper
// unix_ms(t), a time as integer Unix milliseconds. The expressions of a
// source with format: debezium see DebeziumEnv instead: the change event
// taken apart (row, before, after, op, source, transaction…).
package mapexpr

import (
	"time"

	"github.com/twicehq/twice/collectors/mapping"
)

// Fields are the field names a map: may set: those of spec §1, in the
// order of its table.
var Fields = mapping.Fields

// Env is what an expression sees. Value is the message value parsed as
// JSON: objects are map[string]any, arrays []any, numbers int when they are
// integers that fit int and float64 otherwise; nil when the value is empty.
type Env struct {
	Value     any               `expr:"value"`
	Key       string            `expr:"key"`
	Headers   map[string]string `expr:"headers"`
	Timestamp time.Time         `expr:"timestamp"`
	// TimestampMs is Timestamp as integer Unix milliseconds.
	TimestampMs int64  `expr:"timestamp_ms"`
	Topic       string `expr:"topic"`
	Partition   int    `expr:"partition"`
	Offset      int64  `expr:"offset"`
}

// Program is one compiled expression.
type Program = mapping.Program

// CompileError says why an expression does not compile.
type CompileError = mapping.CompileError

// Runner runs programs, reusing one virtual machine; the zero value is
// ready. Run takes a *Env.
type Runner = mapping.Runner

var compiler = mapping.NewCompiler(Env{})

// Compile compiles src against Env. Its error is a *CompileError.
func Compile(src string) (*Program, error) { return compiler.Compile(src) }

// MustCompile is Compile for expressions written in code; it panics on
// error.
func MustCompile(src string) *Program {
	p, err := Compile(src)
	if err != nil {
		panic(err)
	}
	return p
}
