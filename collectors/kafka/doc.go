// Package kafka reads normalized events from Kafka topics: the collector
// behind a twice.yaml source of type kafka. With the findings sink and
// internal/kafkasec it is the only code of twice that imports a Kafka
// client (segmentio/kafka-go); everything it exports speaks in its own types (Message, TopicPartition, Record) or in
// twicetype's.
//
// # Mapping
//
// A Mapper turns one message into one event. With format twice the value
// is one event as in spec §1, parsed by collectors/jsonl exactly like a
// line of a file: same types, same needed fields, same malformed reasons.
// With format map the value is any JSON, and twice.yaml's map: gives one
// expression per event field. The expressions are expr-lang/expr, run by
// package collectors/mapping, which a postgres source's map shares (see
// it for why a real expression language rather than a
// home-made one: conditionals such as `value.type == "sent" ? "effect" :
// "state"`, string concatenation, nil-safe navigation, type-checked and
// compiled once when twice.yaml is loaded). The mapped fields are written
// as one canonical JSON object and that object goes through the same
// jsonl parser, so a mapped event is valid exactly when the same object in
// a file would be. An expression that fails at run time (a fetch from a
// missing object, say) or yields nil leaves its field out; when that makes
// the event malformed, the reason carries the expression's error. A value
// JSON cannot hold (a function, a duration, NaN) is malformed, naming the
// field.
//
// A map may also skip messages (skip:) and, written as a list of mappings
// each with an optional when:, make several events of one message
// (fan-out, fanout.go). With format debezium (debezium.go) the value is a
// Debezium change event, taken apart into the names its expressions see
// (row, before, after, op, source…), and makes an effect, a state, both or
// nothing. A message that makes no event is skipped: counted in
// Stats.Skipped (twice_skipped_total), never malformed. The events of one
// message have their own identities (the output's part, or their ids)
// and their own record positions, so a restart between them loses none.
//
// In every format an event without an id gets its identity from where it
// was read, topic, partition and offset, not from its content: two
// messages with equal content at different offsets are two events (a
// producer that sends the same payload twice has sent it twice; a consumer
// that reads one offset twice has not). An event with an id keeps the id's
// identity, so a message re-produced under the same id still counts once.
//
// Events and malformed messages name where they were read as
// "SOURCE TOPIC[PARTITION]" with Line the offset, so twicetype.Malformed
// prints "jobs orders[3]:1234: missing field \"ts\"".
//
// # Schema Registry
//
// A format map source with schema_registry decodes values in the
// Confluent wire format (a zero byte, a schema id, the payload) to JSON
// with internal/schemaregistry before the map reads them; other values
// are read as JSON. The source's Mappers share one registry client, so
// each schema is fetched once. When the registry cannot be asked,
// MapAllContext returns an error for which IsRetryable holds and counts
// nothing: the Consumer hands on what it mapped, reports the partition
// failing (Health) and maps the same message again with backoff; a range
// collector keeps the message and those after it for its next Next, and
// fails after five tries. An id the registry answers 404 for is malformed.
//
// # Malformed messages and the dead-letter file
//
// A message that does not map never stops its partition: it comes back as
// a twicetype.Malformed, is counted per source and reason (Stats), and,
// when the source names a dead_letter file, is appended to it as one JSON
// line {topic, partition, offset, key, value, reason, time}. The file is
// bounded: once writing a line would take it past watch.dead_letter_max_bytes
// nothing more is written (messages are still counted, as dropped); twice
// neither rotates nor truncates it. Before dropping, the file's size is
// read again, so an operator who truncates or moves it (logrotate's
// copytruncate) lets writing resume.
//
// # Reading
//
// PartitionReader fetches one partition with no consumer-group membership.
// Consumer, for `twice watch`, reads every partition of every topic of a
// source itself, one reader goroutine per partition, and returns mapped
// records in per-partition order. It does not join the consumer group:
// the detectors correlate events across partitions (a job's effect may be
// on another topic or key than its job.* events), so one twice process must
// see all partitions, and a group rebalance would split them across
// processes. twice keeps its own positions in its checkpoint; it commits
// them to the group only so lag dashboards show it, and as a fallback
// start for a consumer without a checkpoint.
//
// NewRangeCollectors, for `twice audit`, reads each partition from a start
// up to its end offset as of Start, as one collectors.Collector per
// partition; the engine merges them by ts.
//
// # Security
//
// A source's tls and sasl are loaded by internal/kafkasec (shared with the
// kafka findings sink) when the factory builds the stream or the
// collectors, so that a certificate or password that cannot be read is a
// configuration error at start. Every connection — metadata, offsets and
// commits through a kafka-go Client, and each partition's fetch
// connection through a Dialer — uses them. A refused login is an error
// like a broker that is down: the watch retries it with backoff and
// /readyz names it.
package kafka
