package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/twicehq/twice/twicetype"
)

// jsonReporter writes the JSON report of spec §5.
type jsonReporter struct{}

// The structs below fix the key order of spec §5; fields after the spec's
// ones are extensions.
type jsonReport struct {
	Version int         `json:"version"`
	Summary jsonSummary `json:"summary"`
	// Scorecard and Impact head the report after the summary
	// (extensions): the scorecard is [] when no job had a job_type,
	// impact absent unless configured.
	Scorecard []jsonHandlerScore `json:"scorecard"`
	Impact    *jsonImpact        `json:"impact,omitempty"`
	Findings  []jsonFinding      `json:"findings"`
	// Baseline and Budgets are the CI gate (extensions, absent without
	// twice audit --baseline or a detector budget): the fingerprints of
	// the new findings and the baseline's fixed ones; each budget's use.
	Baseline *jsonBaseline `json:"baseline,omitempty"`
	Budgets  []jsonBudget  `json:"budgets,omitempty"`
}

type jsonSummary struct {
	Events      int64   `json:"events"`
	RepeatedIDs int64   `json:"repeated_ids"`
	Malformed   int64   `json:"malformed"`
	Jobs        int64   `json:"jobs"`
	Effects     int64   `json:"effects"`
	Pending     int64   `json:"pending"`
	From        *string `json:"from"`
	To          *string `json:"to"`
	// Findings is a map: encoding/json writes its keys sorted.
	Findings map[string]int `json:"findings"`

	Late           int64           `json:"late"`
	Evicted        int64           `json:"evicted"`
	MalformedLines []jsonMalformed `json:"malformed_lines"`
	// Warnings are sentences about what the audit could not check; absent
	// when there is nothing to say.
	Warnings []string `json:"warnings,omitempty"`
}

type jsonMalformed struct {
	Source string `json:"source"`
	Line   int64  `json:"line"`
	Reason string `json:"reason"`
}

type jsonFinding struct {
	Detector    string             `json:"detector"`
	Severity    twicetype.Severity `json:"severity"`
	Subject     string             `json:"subject"`
	Fingerprint string             `json:"fingerprint"`
	Count       int64              `json:"count"`
	FirstTS     string             `json:"first_ts"`
	LastTS      string             `json:"last_ts"`
	Jobs        []string           `json:"jobs"`
	Events      []string           `json:"events"`
	JobType     string             `json:"job_type,omitempty"`
	Queue       string             `json:"queue,omitempty"`
	Cause       string             `json:"cause,omitempty"`
	Message     string             `json:"message"`
	Details     json.RawMessage    `json:"details"`
	// New is set under a baseline for a finding not in it; Exempt says
	// why a finding does not fail the audit whatever its severity:
	// "baseline" or "budget" (extensions).
	New    bool   `json:"new,omitempty"`
	Exempt string `json:"exempt,omitempty"`
}

func (*jsonReporter) Write(w io.Writer, r *twicetype.Report) error {
	if r == nil {
		return errNilReport
	}
	doc, err := toJSON(r)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("reports: json: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

func toJSON(r *twicetype.Report) (*jsonReport, error) {
	s := &r.Summary
	doc := &jsonReport{
		Version: twicetype.ReportVersion,
		Summary: jsonSummary{
			Events:         s.Events,
			RepeatedIDs:    s.RepeatedIDs,
			Malformed:      s.Malformed,
			Jobs:           s.Jobs,
			Effects:        s.Effects,
			Pending:        s.Pending,
			Findings:       s.Findings,
			Late:           s.Late,
			Evicted:        s.Evicted,
			MalformedLines: make([]jsonMalformed, len(s.MalformedLines)),
		},
		Scorecard: toJSONScorecard(r.Scorecard),
		Impact:    toJSONImpact(r.Impact),
		Findings:  make([]jsonFinding, len(r.Findings)),
	}
	if s.Events > 0 {
		from, to := twicetype.FormatTime(s.From), twicetype.FormatTime(s.To)
		doc.Summary.From, doc.Summary.To = &from, &to
	}
	if doc.Summary.Findings == nil {
		doc.Summary.Findings = map[string]int{}
	}
	for i, m := range s.MalformedLines {
		doc.Summary.MalformedLines[i] = jsonMalformed{Source: m.Source, Line: m.Line, Reason: m.Reason}
	}
	for _, w := range s.Warnings {
		doc.Summary.Warnings = append(doc.Summary.Warnings, w.Message)
	}
	for i := range r.Findings {
		f := &r.Findings[i]
		details := []byte("{}")
		if len(f.Details) > 0 {
			b, err := marshalDetails(f.Details)
			if err != nil {
				return nil, fmt.Errorf("reports: json: details of %s finding %q: %w", f.Detector, f.Subject, err)
			}
			details = b
		}
		doc.Findings[i] = jsonFinding{
			Detector:    f.Detector,
			Severity:    f.Severity,
			Subject:     f.Subject,
			Fingerprint: fingerprint(f),
			Count:       f.Count,
			FirstTS:     twicetype.FormatTime(f.FirstTime),
			LastTS:      twicetype.FormatTime(f.LastTime),
			Jobs:        nonNil(f.Jobs),
			Events:      nonNil(f.Events),
			JobType:     f.JobType,
			Queue:       f.Queue,
			Cause:       f.Cause,
			Message:     f.Message,
			Details:     details,
			New:         r.Gate.IsNew(f),
			Exempt:      r.Gate.Exempt(f),
		}
	}
	if g := toJSONGate(r); g != nil {
		doc.Baseline, doc.Budgets = g.Baseline, g.Budgets
	}
	return doc, nil
}

// marshalDetails encodes details compactly, without HTML escaping, like
// the rest of the report.
func marshalDetails(d map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// nonNil returns list, or an empty slice for nil, so it encodes as [].
func nonNil(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

// FindingJSON encodes one finding compactly as an object of spec §5's
// findings list, for streams of findings (twice watch).
func FindingJSON(f *twicetype.Finding) ([]byte, error) {
	doc, err := toJSON(&twicetype.Report{Findings: []twicetype.Finding{*f}})
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc.Findings[0]); err != nil {
		return nil, fmt.Errorf("reports: json: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
