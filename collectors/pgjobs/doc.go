// Package pgjobs taps job queues that keep their jobs in a Postgres
// table — River's river_job, Oban's oban_jobs — for the river and oban
// sources (spec §3.1). A Dialect says how one queue's table looks (its
// columns, states, NOTIFY channels, what an error's time means); the rest
// is shared:
//
//   - Reading: only SELECT, never a lock or a write. One poll is one
//     round trip of four statements (the DB's time, the rows new above
//     an id cursor, a light signature of the unfinished rows below the
//     cursor and of the other rows followed) and, when some changed, a
//     fifth that reads those rows whole; while catching up with more new
//     rows than a batch, only new rows. LISTEN on the queue's insert
//     channel brings a poll forward, at most every 100 ms.
//   - Attempts: a poller misses transitions between polls, so every
//     attempt is rebuilt from what the row keeps — attempt, the errors
//     array ({attempt, at, error}), attempted_at, the final time — and an
//     event is emitted for each step not emitted yet. Ids name the step
//     (PREFIX:ID:started:N), never the poll, so the same row read again
//     yields the same ids.
//   - Lost coverage: ids missing between ids read (a bigserial leaves a
//     hole where a row was deleted before it was read) once gap_timeout
//     has passed, and followed rows deleted before their end.
//
// # Lanes, positions, Commit
//
// A stream has one lane, "SCHEMA.TABLE". Its position is the tracker's
// state after a poll (gzip'd JSON in base64): the cursor, the ids read
// above it, and per followed job (not finished, or ended dead or
// cancelled, which an operator may retry) its row signature and what was
// emitted. Start loads it and the next poll emits exactly what it had not
// emitted; the records of a poll carry the position before it and the
// last one the position after it, so a crash inside a poll's records
// yields repeated ids, counted once. Commit does nothing: reading takes
// nothing from the queue. An audit reads the whole table, page by page,
// then io.EOF.
package pgjobs
