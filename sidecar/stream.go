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
// skipped. Positions are committed upstream only after the checkpoint
// that covers them.
//
// Sources. The sidecar reads any source of package sources: a Stream of
// lanes whose records carry opaque positions (lanes.go), reports the gaps
// in coverage streams know of (coverage.go), and shows each source's lag
// and health in /metrics and /readyz (readiness.go).
package sidecar

import (
	"github.com/twicehq/twice/sources"
)

// Record is one record of a stream: an event, a malformed message or a
// gap in coverage (sources.Record).
type Record = sources.Record

// Stream is a source without end (sources.Stream).
type Stream = sources.Stream

// Position is where a lane of a stream is (sources.Position).
type Position = sources.Position
