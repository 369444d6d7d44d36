// Package jsonl parses one line of the normalized event format (spec §1)
// into a twicetype.Event.
//
// The parser is a strict, single-pass JSON scanner written for this one
// job: it validates the whole line against RFC 8259 (no NaN, no bare
// control characters, no invalid escapes), records a flat tape of the
// values it saw, and reads the event's fields from that tape without
// building a tree. When an event has no "id", the tape is also used to
// write the event's canonical form (see Canonicalize), whose hash is the
// event's identity.
//
// Decisions the spec leaves open, as implemented here:
//
//   - Duplicate keys: the first occurrence of a key wins, for the event's
//     fields and in the canonical form alike (later copies are dropped, at
//     every nesting level).
//   - Integer fields (attempt, seq, and ts in milliseconds) must be written
//     as JSON integers: 1.0 and 1e3 are not integers.
//   - An empty string counts as missing for ts, kind and every field a kind
//     needs.
//   - ts strings follow RFC 3339 §5.6: "T" and "Z" may be lowercase,
//     fractional seconds may have any number of digits (truncated to
//     nanoseconds), second 60 (a leap second) is rejected, as Go's time
//     package does. Times must fit int64 Unix nanoseconds (years 1678–2262).
//   - Nesting deeper than MaxDepth is malformed.
package jsonl
