// Package sidekiq taps Sidekiq through its Redis: the collector behind a
// twice.yaml source of type sidekiq (spec §3.1). It is one of the two
// packages of twice that speak Redis (go-redis); what it exports speaks
// in its own types or twicetype's.
//
// # Modes
//
// Poll mode (Poller) reads Sidekiq's structures in one MULTI/EXEC per
// poll — queue lists, the retry set, new dead-set entries, each process's
// heartbeat and work hash, stat:processed and stat:failed — and a tracker
// (a pure state machine over the snapshots, time taken from Redis's
// TIME) turns what changed into events: a payload in a queue is
// job.enqueued; in a work hash, or gone from its queue, job.started; a new
// retry_count in the retry set is job.failed with retry; a dead-set entry
// is job.failed and job.dead. A success is inferred, never seen: a run
// gone from a newer heartbeat's work hash, or gone from its queue once
// every process that could run it has beaten since, and in no retry or
// dead set. A run on a process that stops beating is lost with it. What
// no poll saw (runs between two polls and two heartbeats) is counted
// against stat:processed and reported as lost coverage.
//
// Middleware mode (StreamReader) reads the Redis stream that
// integrations/sidekiq/twice_middleware.rb writes: one numbered entry
// per lifecycle step, mapped one to one; a hole in the numbers is lost
// coverage (the stream was trimmed before twice read it).
//
// # Ids and positions
//
// Event ids name what was observed, never when it was read: a run is named
// by the enqueued_at of the push before it, a failure by its retried_at,
// a middleware entry by its stream id. Reading the same state again, after
// a restart, yields repeated ids that twice counts once. A middleware
// stream's position is "ENTRY-ID/N"; poll mode's is the tracker's state
// (gzip'd JSON in base64), so a restarted watch judges the jobs it was
// following.
//
// docs/sources/sidekiq.md is the user documentation: config, what each
// mode sees and cannot see (measured by scripts/bench-sidekiq), cost.
package sidekiq
