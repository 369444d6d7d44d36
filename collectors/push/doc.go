// Package push is the shared core of the sources that are pushed to
// rather than read: a server inside `twice watch` (HTTP, SMTP) whose
// clients send it records. The taps ingest, smtp, webhook and the email
// providers' receivers are built on it.
//
// The contract with the client is at least once, carried by the
// client's own retries:
//
//   - A client gets its success answer (HTTP 2xx, SMTP 250) only once the
//     records it sent are durable in twice: Submit returns nil only after
//     the sidecar's checkpoint covers their positions (Stream.Commit). A
//     crash of twice after the answer loses nothing: the records are in
//     the checkpoint's journal.
//   - A client that got no success answer (a crash, HTTP 503, SMTP 4xx)
//     sends again. What it sent may have been recorded already; every
//     record therefore carries a stable event id (the tap derives it from
//     what the client sent, never from when it arrived), and the engine
//     counts a repeated id once — a retry is never a finding.
//
// Lanes and positions. A Stream has one lane (Options.Lane, default
// "push"). Its positions are a sequence, 1, 2, 3…, one per record in the
// order Submit received them ("17" is the 17th record). The sidecar hands
// the last checkpointed position back at Start and the sequence goes on
// after it, so positions never go back across restarts. Records received
// and not committed before a crash get new positions when their client
// sends them again: a push source cannot be read again (Replayable is
// false), and nothing is lost because nothing unanswered was promised.
//
// Backpressure. At most Options.MaxPending records may be received and
// not yet durable; a Submit that would pass it fails at once with ErrFull
// (HTTP 503 with Retry-After, SMTP 421), so a watch that is behind makes
// its clients slow down instead of growing without bound.
//
// Shutdown answers every client still waiting with ErrClosed (a
// retryable failure: 503, 421), then stops the Receiver. The sidecar
// commits a last checkpoint before it shuts its streams down, so clients
// whose records that checkpoint covers get their success answer first.
//
// A tap supplies a Receiver (the server; HTTPReceiver serves an
// http.Handler) and builds records with jsonl.ParseLine or Effect.Event, which
// go through the same strict parser as a line of a file.
package push
