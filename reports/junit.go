package reports

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/twicehq/twice/twicetype"
)

// junitReporter writes JUnit XML for CI test views, valid against the
// Jenkins JUnit schema (testdata/jenkins-junit-10.xsd):
//
//   - one test suite per detector that ran, named after it, with one test
//     case per finding (classname twice.DETECTOR, named by detector and
//     subject): failed by one <failure> when the finding is at or above
//     --fail-on, passing with the finding in <system-out> when below; a
//     detector without findings has one passing test case named after it;
//   - a suite twice.coverage with one test case per warning, skipped — or
//     failed under Options.StrictCoverage, as the exit code is — and one
//     skipped test case for malformed lines, so that a CI view never shows
//     an all-clear for an audit that did not check everything.
//   - a suite scorecard with one test case per handler and condition of
//     the handler safety scorecard (scorecard.go): unsafe fails as its
//     findings do under --fail-on, safe passes, not exercised is skipped.
//
// A test case never holds more than one <failure>: CI views (Jenkins,
// Azure) show only the first, and junitparser rejects several.
type junitReporter struct {
	opts Options
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name string `xml:"name,attr"`
	// Tests counts test cases, Failures the failing ones, Skipped the
	// warnings and malformed lines that do not fail.
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Classname string         `xml:"classname,attr"`
	Name      string         `xml:"name,attr"`
	Skipped   *junitSkipped  `xml:"skipped"`
	Failure   *junitFailure  `xml:"failure"`
	SystemOut *junitCharData `xml:"system-out"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

type junitFailure struct {
	Message string
	Type    string
	Text    string
}

// MarshalXML writes the failure with its text as character data. Unlike a
// ",chardata" field, a CharData token keeps newlines as they are, so the
// text stays readable in the file; both escape markup and replace
// characters XML cannot hold.
func (f junitFailure) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	start.Attr = []xml.Attr{
		{Name: xml.Name{Local: "message"}, Value: f.Message},
		{Name: xml.Name{Local: "type"}, Value: f.Type},
	}
	return encodeText(e, start, f.Text)
}

// junitCharData is an element of text only (<system-out>), newlines kept.
type junitCharData string

// MarshalXML writes the text as character data, newlines kept.
func (t junitCharData) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	return encodeText(e, start, string(t))
}

func encodeText(e *xml.Encoder, start xml.StartElement, text string) error {
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	if err := e.EncodeToken(xml.CharData(text)); err != nil {
		return err
	}
	return e.EncodeToken(start.End())
}

func (s *junitSuite) add(tc junitCase) {
	s.Tests++
	switch {
	case tc.Failure != nil:
		s.Failures++
	case tc.Skipped != nil:
		s.Skipped++
	}
	s.Cases = append(s.Cases, tc)
}

func (j *junitReporter) Write(w io.Writer, r *twicetype.Report) error {
	if r == nil {
		return errNilReport
	}
	s := &r.Summary
	var suites []junitSuite
	j.opts.gate = r.Gate

	coverage := junitSuite{Name: "twice.coverage"}
	for _, wn := range s.Warnings {
		name := wn.Code
		if wn.Subject != "" {
			name += " " + wn.Subject
		}
		tc := junitCase{Classname: "twice.coverage", Name: clean(name)}
		if j.opts.StrictCoverage {
			tc.Failure = &junitFailure{Message: clean(wn.Message), Type: "coverage", Text: clean(wn.Message) + "\n"}
		} else {
			tc.Skipped = &junitSkipped{Message: clean(wn.Message)}
		}
		coverage.add(tc)
	}
	if n := max(s.Malformed, int64(len(s.MalformedLines))); n > 0 {
		// Malformed lines were not audited, but do not change the exit
		// code (--strict stops at the first instead): skipped, listed.
		shown := s.MalformedLines[:min(len(s.MalformedLines), malformedCap)]
		var b strings.Builder
		for _, m := range shown {
			fmt.Fprintf(&b, "%s\n", clean(m.Error()))
		}
		if more := malformedLeftOff(s, len(shown)); more > 0 {
			fmt.Fprintf(&b, "… and %d more\n", more)
		}
		out := junitCharData(b.String())
		coverage.add(junitCase{
			Classname: "twice.coverage", Name: "malformed",
			Skipped:   &junitSkipped{Message: fmt.Sprintf("%d malformed lines were not audited", n)},
			SystemOut: &out,
		})
	}
	if coverage.Tests > 0 {
		suites = append(suites, coverage)
	}
	if len(r.Scorecard) > 0 {
		suites = append(suites, junitScorecard(j.opts, r))
	}

	byDetector := map[string][]*twicetype.Finding{}
	for _, g := range groupFindings(r.Findings) {
		byDetector[g.Detector] = g.Findings
	}
	for _, row := range detectorCounts(r) {
		suite := junitSuite{Name: clean(row.ID)}
		class := "twice." + clean(row.ID)
		for _, f := range byDetector[row.ID] {
			tc := junitCase{Classname: class, Name: clean(f.Detector + " " + f.Subject)}
			if j.opts.fails(f) {
				tc.Failure = &junitFailure{Message: failureMessage(f), Type: f.Severity.String(), Text: junitText(f)}
			} else if note := junitGateNote(r.Gate, f); note != "" {
				out := junitCharData(note + junitText(f))
				tc.SystemOut = &out
			} else {
				out := junitCharData(fmt.Sprintf("%s, below --fail-on %s: does not fail the audit\n", f.Severity, j.opts.threshold()) + junitText(f))
				tc.SystemOut = &out
			}
			suite.add(tc)
		}
		if len(suite.Cases) == 0 {
			suite.add(junitCase{Classname: class, Name: clean(row.ID)})
		}
		suites = append(suites, suite)
	}
	if gs := junitGateSuite(r); gs != nil {
		suites = append(suites, *gs)
	}
	doc := junitSuites{Name: "twice", Suites: suites}
	for _, su := range suites {
		doc.Tests += su.Tests
		doc.Failures += su.Failures
	}

	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("reports: junit: %w", err)
	}
	buf.WriteString("\n")
	_, err := w.Write(buf.Bytes())
	return err
}

// failureMessage is the one-line summary of a finding: subject and message.
func failureMessage(f *twicetype.Finding) string {
	if f.Message == "" {
		return clean(f.Subject)
	}
	return clean(f.Subject + ": " + f.Message)
}

// junitText is the body of a failure: everything about the finding, one
// item a line.
func junitText(f *twicetype.Finding) string {
	var b strings.Builder
	fmt.Fprintf(&b, "severity: %s\n", f.Severity)
	fmt.Fprintf(&b, "subject: %s\n", clean(f.Subject))
	fmt.Fprintf(&b, "message: %s\n", clean(f.Message))
	if f.Cause != "" {
		fmt.Fprintf(&b, "cause: %s\n", clean(f.Cause))
	}
	if f.JobType != "" {
		fmt.Fprintf(&b, "job_type: %s\n", clean(f.JobType))
	}
	if f.Queue != "" {
		fmt.Fprintf(&b, "queue: %s\n", clean(f.Queue))
	}
	fmt.Fprintf(&b, "count: %d\n", f.Count)
	fmt.Fprintf(&b, "first: %s\n", twicetype.FormatTime(f.FirstTime))
	fmt.Fprintf(&b, "last: %s\n", twicetype.FormatTime(f.LastTime))
	if len(f.Jobs) > 0 {
		fmt.Fprintf(&b, "jobs: %s\n", joinCapped(f.Jobs, clean))
	}
	if len(f.Events) > 0 {
		fmt.Fprintf(&b, "events: %s\n", joinCapped(f.Events, clean))
	}
	if len(f.Details) > 0 {
		fmt.Fprintf(&b, "details: %s\n", strings.Join(detailPairs(f.Details), " "))
	}
	fmt.Fprintf(&b, "fingerprint: %s\n", fingerprint(f))
	return b.String()
}
