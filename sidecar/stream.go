// Package sidecar runs twice as a sidecar (twice watch): it consumes
// streams of events without end, audits them with the same engine as
// twice audit, shows findings as they change, and survives being killed
// at any moment.
//
// Crash safety. Everything the engine takes is written to a journal, and
// the journal, the stream positions and the findings about to leave are
// committed together in one transaction of an embedded store (bbolt)
// every checkpoint interval; now and then the whole engine state is
// snapshotted and the journal before it dropped. After a restart the
// state is the snapshot plus the journal replayed: exactly the state of
// the last checkpoint. Streams resume at the positions of that
// checkpoint, so events after it are read again and audited once.
// Findings leave through an outbox: a revision is written to the store
// in the checkpoint that covers the events behind it, and published to
// the sinks only after that commit; a sink that may have published part
// of the outbox before a crash says what it already holds, and that is
// skipped. Offsets are committed upstream only after the checkpoint that
// covers them.
package sidecar

import (
	"context"
	"time"

	"github.com/twicehq/twice/twicetype"
)

// Record is one message of a stream: an event or a malformed message.
type Record struct {
	// Lane is the ordered part of the stream the record came from, such
	// as one partition of a topic: "jobs orders/3".
	Lane string
	// Offset is the record's position in its lane; the next record has a
	// larger one.
	Offset int64
	// Event is the normalized event; nil when Malformed is set.
	Event *twicetype.Event
	// Malformed says why the message is not an event.
	Malformed *twicetype.Malformed
}

// Stream is a source without end, made of lanes read in order (a Kafka
// topic's partitions).
type Stream interface {
	// Name names the source in metrics and reports.
	Name() string
	// Start connects and resumes each lane at the given next offset;
	// lanes not in resume start where the source's configuration says.
	Start(ctx context.Context, resume map[string]int64) error
	// Lanes returns the lanes read, after Start.
	Lanes() []string
	// Poll returns the records that arrived within wait, in lane order;
	// none when the lanes are idle.
	Poll(ctx context.Context, wait time.Duration) ([]Record, error)
	// Lag returns, per lane, how many records are behind the last one
	// read.
	Lag(ctx context.Context) (map[string]int64, error)
	// Commit tells the source that every lane is done before the given
	// next offsets.
	Commit(ctx context.Context, next map[string]int64) error
	// Shutdown stops reading. It is safe to call twice.
	Shutdown(ctx context.Context) error
}
