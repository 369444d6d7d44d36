// Package redact keeps email addresses out of what twice writes. Every
// string of a finding or a report that holds something shaped like an
// email address (local@domain.tld) has it replaced by "<email:H>", H the
// first 8 hex digits of the SHA-256 of the address in lower case: the
// same address reads the same everywhere, so findings about one customer
// still group, and neither the address nor its domain is shown.
//
// The engine calls Report when an audit finishes and Finding on every
// live view it hands the sidecar, so every report format and every
// findings sink gets redacted findings by construction; twice.yaml
// redact_emails: false turns it off. Fingerprints are made from the raw
// subject before redaction (they are hashes and show nothing), so
// baselines and published revisions keep their fingerprints whether
// redaction is on or off.
package redact

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"sort"
	"strings"

	"github.com/twicehq/twice/twicetype"
)

// emailRE matches an email-shaped string: a local part of the characters
// addresses use, "@", and a domain of at least two labels whose last is
// letters only.
var emailRE = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}`)

// Prefix starts every replacement of an address.
const Prefix = "<email:"

// Email returns s with every email-shaped substring replaced by
// "<email:H>" (see the package comment). Strings without "@" are returned
// as they are, without allocating.
func Email(s string) string {
	if strings.IndexByte(s, '@') < 0 {
		return s
	}
	return emailRE.ReplaceAllStringFunc(s, Address)
}

// Address returns the replacement of one address: "<email:H>".
func Address(addr string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(addr)))
	return Prefix + hex.EncodeToString(sum[:4]) + ">"
}

// Finding redacts the email addresses in every string of f in place:
// subject, message, cause, job type, queue, jobs, events and details
// (keys and values, recursively). The fingerprint is left alone.
func Finding(f *twicetype.Finding) {
	if f == nil {
		return
	}
	f.Subject = Email(f.Subject)
	f.Message = Email(f.Message)
	f.Cause = Email(f.Cause)
	f.JobType = Email(f.JobType)
	f.Queue = Email(f.Queue)
	strs(f.Jobs)
	strs(f.Events)
	if f.Details != nil {
		f.Details = value(f.Details).(map[string]any)
	}
}

// Report redacts the email addresses in the findings of r (Finding), in
// the malformed lines and warnings of its summary and in its scorecard,
// and sorts the findings again, as reports list them, by the subjects
// they now show.
func Report(r *twicetype.Report) {
	if r == nil {
		return
	}
	for i := range r.Findings {
		Finding(&r.Findings[i])
	}
	sort.SliceStable(r.Findings, func(i, k int) bool {
		a, b := &r.Findings[i], &r.Findings[k]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if a.Detector != b.Detector {
			return a.Detector < b.Detector
		}
		return a.Subject < b.Subject
	})
	s := &r.Summary
	for i := range s.MalformedLines {
		m := &s.MalformedLines[i]
		m.Source, m.Reason = Email(m.Source), Email(m.Reason)
	}
	for i := range s.Warnings {
		w := &s.Warnings[i]
		w.Subject, w.Message = Email(w.Subject), Email(w.Message)
	}
	for i := range r.Scorecard {
		h := &r.Scorecard[i]
		h.JobType, h.Queue = Email(h.JobType), Email(h.Queue)
	}
}

func strs(l []string) {
	for i, s := range l {
		l[i] = Email(s)
	}
}

// value returns v with the addresses in its strings redacted: maps and
// slices are redacted in place (map keys are replaced), other values
// returned as they are.
func value(v any) any {
	switch v := v.(type) {
	case string:
		return Email(v)
	case []string:
		strs(v)
	case []any:
		for i, x := range v {
			v[i] = value(x)
		}
	case map[string]any:
		for k, x := range v {
			nk := Email(k)
			if nk != k {
				delete(v, k)
			}
			v[nk] = value(x)
		}
	}
	return v
}
