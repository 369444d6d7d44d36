// Package clickhouse stores normalized events and findings in ClickHouse
// and audits them there: the ten detectors of spec §2 run as SQL inside
// ClickHouse and only findings and summary counts come back.
//
// It is the only package of twice that imports clickhouse-go; the rest of
// twice sees Store, Sink and Audit, which take and return twicetype values.
//
//	st, err := clickhouse.Open("clickhouse://127.0.0.1:9000/default")
//	err = st.Migrate(ctx)                       // create or upgrade the tables
//	sink := st.Sink(clickhouse.SinkOptions{})   // batched, idempotent inserts
//	err = sink.Write(ctx, events)
//	err = sink.Flush(ctx)
//	rep, err := st.Audit(ctx, clickhouse.AuditOptions{Config: cfg, Since: t0, Until: t1})
//
// Idempotence: an event's identity (twicetype.Event.Identity) and its input
// position (assigned by the sink, increasing) are stored with it. Every
// audit deduplicates on read: of the rows with one identity only the one
// with the lowest position counts, which is spec §1's "the first copy in
// input order counts", and the others are summary.repeated_ids. The table
// is a plain MergeTree, not a ReplacingMergeTree: merges that dropped
// copies at unpredictable times would change repeated_ids, and the first
// copy must win even when two copies differ in content.
package clickhouse
