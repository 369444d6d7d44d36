// Package bullmq taps BullMQ (npm bullmq) queues on Redis, with no change
// to their workers: it reads each queue's events stream
// (PREFIX:QUEUE:events, with XRANGE after a position, resumable by entry
// id) and the job hashes (PREFIX:QUEUE:ID: name, data, opts, ats) for
// what the stream does not say.
//
// # Mapping (verified against bullmq 6.7.6)
//
// Read from its Lua scripts (dist/cjs/commands/*.lua) and a real run of
// the fault mix of the integration test:
//
//	added                        job.enqueued; the entry names the job but
//	                             carries no data: data comes from the hash
//	waiting (no prev)            nothing: it follows added
//	waiting prev=delayed         nothing: a delay (or a retry's backoff) ended
//	waiting prev=failed          job.enqueued: an operator's replay,
//	waiting prev=completed         job.retry('failed' | 'completed')
//	active                       job.started; attempt = attempts started (ats)
//	completed                    job.succeeded
//	delayed after active         job.failed retry=true: a failure retried
//	                             after a backoff (moveToDelayed)
//	delayed otherwise            nothing: a job added with a delay
//	waiting prev=active          job.failed retry=true: a failure retried at
//	                             once, without backoff (retryJob)
//	waiting prev=active, stalled job.failed retry=true, error "stalled…",
//	                             at the stalled entry: the worker stopped
//	                             renewing the lock (it died)
//	failed                       job.dead: the last failure; the job stays in
//	                             the failed set, BullMQ's dead letters
//	removed (not ended)          job.discarded
//	retries-exhausted, duplicated, deduplicated, removed (ended), drained,
//	progress, paused, ...        nothing (counted by name in Stats)
//
// Where bullmq 6.7.6 differs from what issue 9 expected:
//
//   - A failure that will be retried emits "delayed" only when the job has
//     a backoff. Without one (the default), retryJob emits "waiting"
//     prev=active — the same entry as the first half of a stall, and as a
//     worker that gives a job back (RateLimitError, job.moveToWait), which
//     the tap cannot tell from a failed attempt. A stall is told apart by
//     its "stalled" entry, written right after in the same script (a read
//     that ends on such a "waiting" leaves it for the next read).
//   - "failed" is not always with "retries-exhausted": an
//     UnrecoverableError, maxStartedAttempts, a backoff strategy returning
//     -1, or a job stalled more than maxStalledCount (failed after one
//     more "active") end a job with attempts left. Every "failed" is
//     final, so every one is job.dead.
//   - "active" always says prev=waiting, whatever the job came from.
//   - "removed" is written after the hash is deleted, with prev the state
//     it left; a deduplication with replace removes the delayed job it
//     replaces ("removed" prev=delayed, then "deduplicated").
//   - "delayed" also follows changeDelay, and a parent job moving out of
//     waiting-children: it means a failed attempt only right after
//     "active".
//   - job.retry can reset ats (resetAttemptsStarted); the tap reads ats
//     again at every replay.
//
// # Attempts
//
// A stall does not raise atm (attempts made), so attempt numbers follow
// ats, as job.attemptsStarted does in the worker: handlers that write
// effects with an attempt should write job.attemptsStarted. The stream
// says when a job starts, not how many times it started before; the tap
// counts starts from the job's "added" on, and when it meets a job whose
// start it did not read (reading began later, the stream was trimmed,
// twice restarted), it reads the hash's ats in the same transaction as
// the stream's entries after the batch: the attempt at that entry is ats
// less the starts that followed. A job whose hash is gone (removeOnComplete)
// before twice read it gets its events without attempt, job_type (unless
// "added" named it), key, entity or attrs; Stats counts them.
//
// # Positions and lost coverage
//
// A lane is a queue; a position is the last entry id read and the count
// of entries the stream ever held up to it ("1700000000000-3/1234").
// BullMQ trims the stream (maxLenEvents, about 10,000 entries); Redis 7's
// XINFO STREAM, read in the same transaction as the entries, counts
// every entry ever added and the stream's length, and BullMQ only trims
// from the start (the entries gone are those before the first one left),
// so the entries trimmed before twice read them are counted exactly and
// reported as a
// twicetype.Gap (twice_coverage_lost_total, a report warning), never as
// findings. Before Redis 7.0 trimming is not detected.
//
// Event ids are "PREFIX:QUEUE:ENTRY-ID" and event time is the entry id's
// milliseconds (Redis's clock): an entry read again is the same
// observation.
package bullmq
