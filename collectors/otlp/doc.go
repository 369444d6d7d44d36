// Package otlp receives OpenTelemetry traces — OTLP/HTTP (POST
// /v1/traces, protobuf or JSON, optionally gzipped) and, when
// grpc_listen is set, OTLP/gRPC (TraceService/Export) — and turns spans
// into events: a span that says it is an effect (the attribute
// twice.effect, or a `match` rule on its name) becomes an effect; a
// message processing span (kind CONSUMER, or messaging.operation.type
// "process") becomes job.started and job.succeeded or job.failed.
// docs/sources/otlp.md is the user's page.
//
// # Mapping
//
// An effect's effect_key is the span attribute key_attr
// (twice.effect_key), its time the span's end (the effect happened when
// the call returned), its job_id the attribute job_attr (twice.job_id)
// or else the job id of its nearest ancestor job span in the same
// export request. A span with status ERROR is no effect (the call
// failed). A span that needs a key, a job id or a time it lacks is
// recorded as malformed with the reason, and rejected in the answer's
// partial_success.
//
// # Identity
//
// Event ids come from the span: "otlp:TRACEID:SPANID" for an effect,
// with ":started", ":succeeded" or ":failed" for job events. An exporter
// that sends a batch again (it got no answer, or 503) sends the same
// spans: repeated ids, never a finding.
//
// # Stream: lane, positions, acknowledgement
//
// In twice watch a source is a collectors/push Stream with one lane,
// "traces"; positions are push's record sequence. Commit is the answer:
// an export is answered 200 (gRPC OK) only once the checkpoint covers
// its records, 503 with Retry-After (gRPC Unavailable) when twice is
// full or shutting down, so the exporter retries. The stream is not
// replayable: what an exporter dropped while twice was down is lost.
package otlp
