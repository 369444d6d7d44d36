package twicetype

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// The detector ids of spec §2.
const (
	DuplicateEffect     = "duplicate-effect"
	MissingEffect       = "missing-effect"
	EffectBeforeFailure = "effect-before-failure"
	DuplicateExecution  = "duplicate-execution"
	OutOfOrder          = "out-of-order"
	StaleExecution      = "stale-execution"
	EffectAfterTerminal = "effect-after-terminal"
	LostJob             = "lost-job"
	RetryStorm          = "retry-storm"
	DeadLetter          = "dead-letter"
)

// DetectorIDs lists every detector id in the order of spec §2.
var DetectorIDs = []string{
	DuplicateEffect, MissingEffect, EffectBeforeFailure, DuplicateExecution,
	OutOfOrder, StaleExecution, EffectAfterTerminal, LostJob, RetryStorm,
	DeadLetter,
}

// Finding is one problem a detector found (spec §5). Times are Unix
// nanoseconds; reports format them.
type Finding struct {
	Detector    string
	Severity    Severity
	Subject     string
	Fingerprint string
	Count       int64
	FirstTime   int64
	LastTime    int64
	Jobs        []string
	Events      []string
	Cause       string
	Message     string
	// JobType and Queue are those of the finding's job, the first one
	// listed when there are several; "" when it has none or they are
	// not known.
	JobType string
	Queue   string
	// Details holds detector-specific values; it is encoded as a JSON object.
	Details map[string]any
}

// Fingerprint derives the stable fingerprint of a finding from its detector
// and subject: the first 16 bytes of SHA-256 over both, in hex.
func Fingerprint(detector, subject string) string {
	h := sha256.New()
	h.Write([]byte(detector))
	h.Write([]byte{0})
	h.Write([]byte(subject))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// TimeLayout is how reports write times: RFC 3339, UTC, milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// FormatTime writes Unix nanoseconds in TimeLayout.
func FormatTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format(TimeLayout)
}
