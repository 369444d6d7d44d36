package simulate

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/twicehq/twice/twicetype"
)

// Expected is a finding that must be reported: its detector and subject,
// and optionally its severity, cause and count (empty or 0: any).
type Expected struct {
	Detector    string `json:"detector" yaml:"detector"`
	Subject     string `json:"subject" yaml:"subject"`
	Fingerprint string `json:"fingerprint,omitempty" yaml:"-"`
	Severity    string `json:"severity,omitempty" yaml:"severity"`
	Cause       string `json:"cause,omitempty" yaml:"cause"`
	Count       int64  `json:"count,omitempty" yaml:"count"`
}

// String names the finding and what it must carry.
func (e Expected) String() string {
	s := e.Detector + " " + e.Subject
	var extra []string
	if e.Severity != "" {
		extra = append(extra, "severity "+e.Severity)
	}
	if e.Cause != "" {
		extra = append(extra, "cause "+e.Cause)
	}
	if e.Count != 0 {
		extra = append(extra, fmt.Sprintf("count %d", e.Count))
	}
	if len(extra) > 0 {
		s += " (" + strings.Join(extra, ", ") + ")"
	}
	return s
}

// Truth is what a simulated stream must produce: the truth file.
type Truth struct {
	Version int              `json:"version"`
	Seed    uint64           `json:"seed"`
	Events  int64            `json:"events"`
	Jobs    int64            `json:"jobs"`
	End     string           `json:"end"`
	Faults  map[string]int64 `json:"faults"`
	// Findings are sorted by detector, then subject.
	Findings []Expected `json:"findings"`
}

// ReadTruth reads a truth file written by `twice simulate`.
func ReadTruth(path string) (*Truth, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t Truth
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("%s: not a truth file: %w", path, err)
	}
	if t.Version != 1 {
		return nil, fmt.Errorf("%s: truth file version %d, want 1", path, t.Version)
	}
	return &t, nil
}

// Got is a reported finding as Compare sees it.
type Got struct {
	Detector string             `json:"detector"`
	Subject  string             `json:"subject"`
	Severity twicetype.Severity `json:"severity"`
	Cause    string             `json:"cause"`
	Count    int64              `json:"count"`
}

// String names the finding and what it carried.
func (g Got) String() string {
	s := fmt.Sprintf("%s %s (severity %s", g.Detector, g.Subject, g.Severity)
	if g.Cause != "" {
		s += ", cause " + g.Cause
	}
	return s + fmt.Sprintf(", count %d)", g.Count)
}

// FromFindings turns a report's findings into what Compare takes.
func FromFindings(fs []twicetype.Finding) []Got {
	out := make([]Got, len(fs))
	for i, f := range fs {
		out[i] = Got{Detector: f.Detector, Subject: f.Subject, Severity: f.Severity, Cause: f.Cause, Count: f.Count}
	}
	return out
}

// ReadReport reads the findings of a JSON report (twice audit --format
// json).
func ReadReport(r io.Reader) ([]Got, error) {
	var rep struct {
		Version  int   `json:"version"`
		Findings []Got `json:"findings"`
	}
	if err := json.NewDecoder(r).Decode(&rep); err != nil {
		return nil, fmt.Errorf("not a JSON report: %w", err)
	}
	if rep.Version != twicetype.ReportVersion {
		return nil, fmt.Errorf("JSON report version %d, want %d", rep.Version, twicetype.ReportVersion)
	}
	return rep.Findings, nil
}

// Mismatch is an expected finding reported with another severity, cause
// or count.
type Mismatch struct {
	Want Expected
	Got  Got
}

// Diff is how reported findings compare with expected ones, by detector
// and subject.
type Diff struct {
	Matched    []Expected
	Mismatched []Mismatch
	Missing    []Expected
	Unexpected []Got
}

// OK reports whether every expected finding was reported as expected
// and, when noOthers, nothing else was.
func (d *Diff) OK(noOthers bool) bool {
	return len(d.Missing) == 0 && len(d.Mismatched) == 0 && (!noOthers || len(d.Unexpected) == 0)
}

// Compare matches reported findings to expected ones by detector and
// subject; the severity, cause and count an expectation names must agree.
// Reported findings no expectation names are Unexpected.
func Compare(want []Expected, got []Got) Diff {
	type key struct{ d, s string }
	byKey := make(map[key]int, len(got))
	for i, g := range got {
		byKey[key{g.Detector, g.Subject}] = i
	}
	used := make([]bool, len(got))
	var d Diff
	for _, w := range want {
		i, ok := byKey[key{w.Detector, w.Subject}]
		if !ok || used[i] {
			d.Missing = append(d.Missing, w)
			continue
		}
		used[i] = true
		g := got[i]
		if w.Severity != "" && w.Severity != g.Severity.String() ||
			w.Cause != "" && w.Cause != g.Cause || w.Count != 0 && w.Count != g.Count {
			d.Mismatched = append(d.Mismatched, Mismatch{Want: w, Got: g})
			continue
		}
		d.Matched = append(d.Matched, w)
	}
	for i, g := range got {
		if !used[i] {
			d.Unexpected = append(d.Unexpected, g)
		}
	}
	return d
}

// WriteDiff writes the missing, mismatched and unexpected findings, one
// a line, prefixed "-", "~" and "+", indented by indent; at most limit
// of each (0: all).
func (d *Diff) WriteDiff(w io.Writer, indent string, noOthers bool, limit int) {
	cut := func(n int) int {
		if limit > 0 && n > limit {
			return limit
		}
		return n
	}
	for _, m := range d.Missing[:cut(len(d.Missing))] {
		fmt.Fprintf(w, "%s- missing:    %s\n", indent, m)
	}
	if n := len(d.Missing) - cut(len(d.Missing)); n > 0 {
		fmt.Fprintf(w, "%s  … and %d more missing\n", indent, n)
	}
	for _, m := range d.Mismatched[:cut(len(d.Mismatched))] {
		fmt.Fprintf(w, "%s~ different:  %s, got %s\n", indent, m.Want, m.Got)
	}
	if n := len(d.Mismatched) - cut(len(d.Mismatched)); n > 0 {
		fmt.Fprintf(w, "%s  … and %d more different\n", indent, n)
	}
	if !noOthers {
		return
	}
	for _, u := range d.Unexpected[:cut(len(d.Unexpected))] {
		fmt.Fprintf(w, "%s+ unexpected: %s\n", indent, u)
	}
	if n := len(d.Unexpected) - cut(len(d.Unexpected)); n > 0 {
		fmt.Fprintf(w, "%s  … and %d more unexpected\n", indent, n)
	}
}

// Score is one detector's precision and recall.
type Score struct {
	Detector                    string
	Expected, Reported, Matched int
	// Precision is Matched/Reported, Recall Matched/Expected; each is 1
	// when its denominator is 0.
	Precision, Recall float64
}

// ScoreDiff scores a Compare of a truth with a report, per detector:
// every detector of the contract, and any other the report names.
func ScoreDiff(d Diff) []Score {
	by := map[string]*Score{}
	get := func(det string) *Score {
		s := by[det]
		if s == nil {
			s = &Score{Detector: det}
			by[det] = s
		}
		return s
	}
	for _, det := range twicetype.DetectorIDs {
		get(det)
	}
	for _, m := range d.Matched {
		s := get(m.Detector)
		s.Expected++
		s.Reported++
		s.Matched++
	}
	for _, m := range d.Mismatched {
		s := get(m.Want.Detector)
		s.Expected++
		s.Reported++
	}
	for _, m := range d.Missing {
		get(m.Detector).Expected++
	}
	for _, u := range d.Unexpected {
		get(u.Detector).Reported++
	}
	out := make([]Score, 0, len(by))
	for _, s := range by {
		s.Precision, s.Recall = 1, 1
		if s.Reported > 0 {
			s.Precision = float64(s.Matched) / float64(s.Reported)
		}
		if s.Expected > 0 {
			s.Recall = float64(s.Matched) / float64(s.Expected)
		}
		out = append(out, *s)
	}
	order := func(det string) int {
		if i := slices.Index(twicetype.DetectorIDs, det); i >= 0 {
			return i
		}
		return len(twicetype.DetectorIDs)
	}
	sort.Slice(out, func(i, j int) bool {
		if oi, oj := order(out[i].Detector), order(out[j].Detector); oi != oj {
			return oi < oj
		}
		return out[i].Detector < out[j].Detector
	})
	return out
}

// WriteScores writes the scores as a table.
func WriteScores(w io.Writer, scores []Score) {
	fmt.Fprintf(w, "%-22s %8s %8s %8s %9s %7s\n", "detector", "expected", "reported", "matched", "precision", "recall")
	for _, s := range scores {
		fmt.Fprintf(w, "%-22s %8d %8d %8d %9.3f %7.3f\n", s.Detector, s.Expected, s.Reported, s.Matched, s.Precision, s.Recall)
	}
}
