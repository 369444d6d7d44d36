package mapexpr

import (
	"time"

	"github.com/twicehq/twice/collectors/mapping"
)

// DebeziumEnv is what the expressions of a kafka source with format:
// debezium see: one Debezium change event, its envelope taken apart (the
// schema wrapper, when the converter writes one, already removed).
type DebeziumEnv struct {
	// Row is the row the change is about: After, or Before for a delete.
	Row map[string]any `expr:"row"`
	// Before and After are the row's images; nil when the change has
	// none (Before of an insert, After of a delete).
	Before map[string]any `expr:"before"`
	After  map[string]any `expr:"after"`
	// Op is the change: "c" (insert), "u" (update), "d" (delete) or "r"
	// (a snapshot read).
	Op string `expr:"op"`
	// Source is the envelope's source block (connector, db, schema,
	// table, ts_ms, lsn, txId, file, pos…).
	Source map[string]any `expr:"source"`
	// Transaction is the envelope's transaction block (id, total_order,
	// data_collection_order) when the connector writes transaction
	// metadata; nil otherwise.
	Transaction map[string]any `expr:"transaction"`
	// Table is the table the change is in: "schema.table" (Postgres) or
	// "db.table" (MySQL).
	Table string `expr:"table"`
	// Position is the change's place in the database's log: the LSN for
	// Postgres, binlog file number × 2³² + position for MySQL; nil when
	// the source block has neither.
	Position any `expr:"position"`
	// ChangeID identifies the change whichever Kafka offset it is read at
	// (so that a change the connector sends again counts once): table,
	// log position, op and, for snapshot reads, the row's key; "" when
	// the source block gives no log position.
	ChangeID string `expr:"change_id"`
	// Value is the whole change event (the payload); Key the message key
	// parsed as JSON (its payload).
	Value any `expr:"value"`
	Key   any `expr:"key"`
	// The message's headers, time and place.
	Headers     map[string]string `expr:"headers"`
	Timestamp   time.Time         `expr:"timestamp"`
	TimestampMs int64             `expr:"timestamp_ms"`
	Topic       string            `expr:"topic"`
	Partition   int               `expr:"partition"`
	Offset      int64             `expr:"offset"`
}

var debeziumCompiler = mapping.NewCompiler(DebeziumEnv{})

// CompileDebezium compiles src against DebeziumEnv. Its error is a
// *CompileError.
func CompileDebezium(src string) (*Program, error) { return debeziumCompiler.Compile(src) }

// MustCompileDebezium is CompileDebezium for expressions written in code;
// it panics on error.
func MustCompileDebezium(src string) *Program {
	p, err := CompileDebezium(src)
	if err != nil {
		panic(err)
	}
	return p
}
