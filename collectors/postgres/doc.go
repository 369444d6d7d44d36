// Package postgres is the tap of a Postgres table or query (source type
// postgres, spec §3.1): rows mapped to effect and state events — a ledger,
// an outbox, a sent-emails table, an orders table whose status changes —
// with the same expression map as a kafka source (package
// collectors/mapping), over `row`. It reads with SELECT only
// (github.com/jackc/pgx/v5, one connection), never locks or writes.
//
// Lane: one per source, named after the table as written ("public.ledger")
// or "query". Rows are read in the order of the cursor columns, a batch
// (`batch`, default 1000) per query: `SELECT * FROM t WHERE (cursor) >
// (position) ORDER BY cursor LIMIT batch`; a `query` is wrapped as a
// subquery in the same statement. Every column is read in text format and
// converted as the spec says (row.go), so a cursor value is kept exactly
// as Postgres wrote it.
//
// Position: JSON, {"after":["1234"]} — the cursor values of the last row
// read (text, session TimeZone UTC) — plus, for an integer cursor, the
// ids it skipped and still waits for: {"after":["1234"],"holes":[[1230,
// 1733000000000]]} (id, first skipped in Unix ms). Start resumes after
// it: the rows after the cursor, and the holes.
//
// Late commits. A bigserial id is taken when a row is inserted, not when
// its transaction commits, so id 7 can become visible after id 8 was
// read; a timestamp written by now() is the transaction's start. Integer
// cursor (one column): an id skipped below the highest read is a hole,
// queried again (`OR id = ANY(holes)`) on every poll until its row
// appears or `settle` (default 5s) has passed since it was skipped (a
// rolled-back insert leaves a hole forever); at most 1000 holes are kept,
// the newest. Rows are read at once. Timestamp cursor (first column
// timestamp or timestamptz, then tie-breakers): a row is read only once
// its timestamp is `settle` old by twice's clock, so a transaction that
// commits within settle of its timestamp is never missed (as Kafka
// Connect's JDBC source, timestamp.delay.interval.ms). Any other cursor is
// read in order without either guard.
//
// Rows updated in place: with cursor [updated_at, id] a row is read again
// each time its updated_at moves past the position, one state event per
// version seen; an event without a mapped id has the identity of its
// source and cursor values (row key + version), so reading a version again never
// counts twice. Several updates between two polls are seen as the last;
// a delete is not seen at all. Exact history needs Debezium (kafka
// source, format: debezium).
//
// A full batch never ends inside a run of rows with one cursor value: the
// run is left to the next query, or, when the whole batch is one run,
// read whole by `WHERE cursor = value`, so a cursor that is not unique
// passes no row over.
//
// Commit does nothing: twice resumes from its checkpoint. The stream is
// replayable. `twice audit` reads the rows in one REPEATABLE READ, READ
// ONLY transaction up to what they hold when it starts, from the first
// row, or from --since when the cursor is a timestamp.
//
// A row the map cannot make an event of is malformed, counted and
// reported as `SOURCE LANE:LINE: row id=17: REASON`, LINE being the last
// cursor column when it is an integer.
package postgres
