// Package gate is twice's CI gate: a baseline of accepted findings
// (twice baseline writes it, twice audit --baseline reads it) and
// per-detector budgets for noisy systems. Apply decides, for a report,
// which findings are new, which are accepted, which detectors stay within
// budget and which findings of the baseline were fixed; the reports say
// so and the exit code follows it (twicetype.Gate).
package gate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/twicehq/twice/twicetype"
)

// BaselineVersion is the version of the baseline file format.
const BaselineVersion = 1

// Baseline is the set of accepted findings.
type Baseline struct {
	// Findings are the accepted findings, each fingerprint once.
	Findings []twicetype.BaselineEntry
}

// baselineKind is the kind field of a baseline file, which tells it from
// a JSON report.
const baselineKind = "twice-baseline"

type baselineFile struct {
	Kind     string          `json:"kind"`
	Version  int             `json:"version"`
	Comment  string          `json:"comment,omitempty"`
	Findings []baselineEntry `json:"findings"`
}

type baselineEntry struct {
	Fingerprint string             `json:"fingerprint"`
	Detector    string             `json:"detector,omitempty"`
	Severity    twicetype.Severity `json:"severity,omitempty"`
	Subject     string             `json:"subject,omitempty"`
}

// FromFindings is the baseline that accepts fs, in their order, each
// fingerprint once.
func FromFindings(fs []twicetype.Finding) *Baseline {
	b := &Baseline{Findings: []twicetype.BaselineEntry{}}
	seen := map[string]bool{}
	for i := range fs {
		f := &fs[i]
		fp := fingerprint(f)
		if seen[fp] {
			continue
		}
		seen[fp] = true
		b.Findings = append(b.Findings, twicetype.BaselineEntry{Fingerprint: fp, Detector: f.Detector, Subject: f.Subject, Severity: f.Severity})
	}
	return b
}

// Write writes the baseline as indented JSON.
func (b *Baseline) Write(w io.Writer) error {
	doc := baselineFile{Kind: baselineKind, Version: BaselineVersion,
		Comment:  "Findings accepted by twice audit --baseline: they are reported but do not fail the audit. Written by twice baseline; delete an entry to make its finding fail again.",
		Findings: make([]baselineEntry, len(b.Findings))}
	for i, e := range b.Findings {
		doc.Findings[i] = baselineEntry{Fingerprint: e.Fingerprint, Detector: e.Detector, Severity: e.Severity, Subject: e.Subject}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// ErrFormat is wrapped by the errors of a file that is not what it
// should be (a baseline, a JSON report); other errors are I/O errors.
var ErrFormat = errors.New("not a valid file")

// ReadBaseline reads a baseline file written by Write.
func ReadBaseline(path string) (*Baseline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	var doc baselineFile
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("baseline %s: %w: %v", path, ErrFormat, err)
	}
	if doc.Kind != baselineKind {
		return nil, fmt.Errorf("baseline %s: %w: no \"kind\": %q (a JSON report? write the baseline of a report with twice baseline -o FILE REPORT.json)", path, ErrFormat, baselineKind)
	}
	if doc.Version != BaselineVersion {
		return nil, fmt.Errorf("baseline %s: %w: version %d, this twice reads version %d (write it with twice baseline)", path, ErrFormat, doc.Version, BaselineVersion)
	}
	if doc.Findings == nil {
		return nil, fmt.Errorf("baseline %s: %w: no findings list (write it with twice baseline)", path, ErrFormat)
	}
	b := &Baseline{}
	for i, e := range doc.Findings {
		if e.Fingerprint == "" {
			return nil, fmt.Errorf("baseline %s: %w: findings[%d] has no fingerprint", path, ErrFormat, i)
		}
		b.Findings = append(b.Findings, twicetype.BaselineEntry{Fingerprint: e.Fingerprint, Detector: e.Detector, Subject: e.Subject, Severity: e.Severity})
	}
	return b, nil
}

// Apply sets rep.Gate from the baseline (nil for none; name is its file)
// and the budgets (per detector id; nil entries ignored). It leaves
// rep.Gate nil when there is neither.
func Apply(rep *twicetype.Report, base *Baseline, name string, budgets map[string]*twicetype.Budget) {
	var uses []twicetype.BudgetUse
	for _, id := range twicetype.DetectorIDs {
		if b := budgets[id]; b != nil {
			uses = append(uses, Use(rep, id, *b))
		}
	}
	if base == nil && len(uses) == 0 {
		rep.Gate = nil
		return
	}
	g := &twicetype.Gate{Budgets: uses}
	if base != nil {
		g.Baseline = name
		g.Accepted = map[string]bool{}
		accepted := make(map[string]bool, len(base.Findings))
		for _, e := range base.Findings {
			accepted[e.Fingerprint] = true
		}
		found := map[string]bool{}
		for i := range rep.Findings {
			fp := fingerprint(&rep.Findings[i])
			found[fp] = true
			if accepted[fp] {
				g.Accepted[fp] = true
			}
		}
		for _, e := range base.Findings {
			if !found[e.Fingerprint] {
				g.Fixed = append(g.Fixed, e)
			}
		}
	}
	rep.Gate = g
}

// effectKeyed are the detectors whose subject is an effect_key: a ratio
// budget without an effect is per effect for them, per job for others.
var effectKeyed = []string{twicetype.DuplicateEffect, twicetype.EffectAfterTerminal}

// Use is how far the report's findings of detector id use budget b.
func Use(rep *twicetype.Report, id string, b twicetype.Budget) twicetype.BudgetUse {
	u := twicetype.BudgetUse{Detector: id, Budget: b}
	for i := range rep.Findings {
		f := &rep.Findings[i]
		if f.Detector == id && b.Counts(f) {
			u.Findings++
		}
	}
	switch {
	case b.Effect != "":
		u.Of, u.Unit = rep.Summary.EffectsByType[b.Effect], b.Effect+" effects"
	case slices.Contains(effectKeyed, id):
		u.Of, u.Unit = rep.Summary.Effects, "effects"
	default:
		u.Of, u.Unit = rep.Summary.Jobs, "jobs"
	}
	u.Within = true
	if b.HasMax && u.Findings > b.Max {
		u.Within = false
	}
	if b.HasMaxRatio {
		switch {
		case u.Of == 0 && u.Findings > 0:
			u.Within, u.Unjudged = false, true
		case u.Of > 0 && float64(u.Findings) > b.MaxRatio*float64(u.Of):
			u.Within = false
		}
	}
	if !b.HasMax && !b.HasMaxRatio {
		u.Within = u.Findings == 0
	}
	return u
}

// Exempted counts the findings at or above threshold that the gate keeps
// from failing: accepted by the baseline, and within budget.
func Exempted(rep *twicetype.Report, threshold twicetype.Severity) (accepted, withinBudget int) {
	for i := range rep.Findings {
		f := &rep.Findings[i]
		if threshold == twicetype.SeverityNone || f.Severity < threshold {
			continue
		}
		switch rep.Gate.Exempt(f) {
		case "baseline":
			accepted++
		case "budget":
			withinBudget++
		}
	}
	return accepted, withinBudget
}

func fingerprint(f *twicetype.Finding) string {
	if f.Fingerprint != "" {
		return f.Fingerprint
	}
	return twicetype.Fingerprint(f.Detector, f.Subject)
}

// ReadReport reads a JSON report of twice audit (spec §5): its summary
// counts and its findings, as twice baseline and twice explain need them.
func ReadReport(r io.Reader, name string) (*twicetype.Report, error) {
	var doc struct {
		Version *int `json:"version"`
		Summary struct {
			Events  int64 `json:"events"`
			Jobs    int64 `json:"jobs"`
			Effects int64 `json:"effects"`
		} `json:"summary"`
		Findings *[]struct {
			Detector    string             `json:"detector"`
			Severity    twicetype.Severity `json:"severity"`
			Subject     string             `json:"subject"`
			Fingerprint string             `json:"fingerprint"`
			Count       int64              `json:"count"`
			FirstTS     string             `json:"first_ts"`
			LastTS      string             `json:"last_ts"`
			Jobs        []string           `json:"jobs"`
			Events      []string           `json:"events"`
			JobType     string             `json:"job_type"`
			Queue       string             `json:"queue"`
			Cause       string             `json:"cause"`
			Message     string             `json:"message"`
			Details     map[string]any     `json:"details"`
		} `json:"findings"`
	}
	dec := json.NewDecoder(r)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w: want a JSON report of twice audit --format json: %v", name, ErrFormat, err)
	}
	if doc.Version == nil || doc.Findings == nil {
		return nil, fmt.Errorf("%s: %w: want a JSON report of twice audit --format json (with version and findings)", name, ErrFormat)
	}
	if *doc.Version != twicetype.ReportVersion {
		return nil, fmt.Errorf("%s: %w: report version %d, this twice reads version %d", name, ErrFormat, *doc.Version, twicetype.ReportVersion)
	}
	rep := &twicetype.Report{Summary: twicetype.Summary{Events: doc.Summary.Events, Jobs: doc.Summary.Jobs, Effects: doc.Summary.Effects}}
	for i, f := range *doc.Findings {
		if f.Detector == "" || f.Subject == "" && f.Fingerprint == "" {
			return nil, fmt.Errorf("%s: %w: findings[%d] has no detector or subject", name, ErrFormat, i)
		}
		first, err := parseTS(f.FirstTS)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: findings[%d].first_ts: %v", name, ErrFormat, i, err)
		}
		last, err := parseTS(f.LastTS)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: findings[%d].last_ts: %v", name, ErrFormat, i, err)
		}
		fd := twicetype.Finding{Detector: f.Detector, Severity: f.Severity, Subject: f.Subject, Fingerprint: f.Fingerprint,
			Count: f.Count, FirstTime: first, LastTime: last, Jobs: f.Jobs, Events: f.Events, JobType: f.JobType,
			Queue: f.Queue, Cause: f.Cause, Message: f.Message, Details: f.Details}
		if fd.Fingerprint == "" {
			fd.Fingerprint = twicetype.Fingerprint(fd.Detector, fd.Subject)
		}
		rep.Findings = append(rep.Findings, fd)
	}
	return rep, nil
}

func parseTS(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, err
	}
	return t.UnixNano(), nil
}
