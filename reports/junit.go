package reports

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/twicehq/twice/twicetype"
)

// junitReporter writes JUnit XML for CI test views: one test case per
// detector that ran, failing with one <failure> per finding, and one test
// case per warning (classname twice.coverage), skipped — or failing under
// Options.StrictCoverage — so that a CI view never shows an all-clear for
// an audit that did not check everything.
type junitReporter struct {
	opts Options
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr,omitempty"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name string `xml:"name,attr"`
	// Tests counts test cases (detectors, warnings), Failures the failing
	// ones, Skipped the warnings that do not fail.
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr,omitempty"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Classname string         `xml:"classname,attr"`
	Name      string         `xml:"name,attr"`
	Skipped   *junitSkipped  `xml:"skipped"`
	Failures  []junitFailure `xml:"failure"`
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
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	if err := e.EncodeToken(xml.CharData(f.Text)); err != nil {
		return err
	}
	return e.EncodeToken(start.End())
}

func (j *junitReporter) Write(w io.Writer, r *twicetype.Report) error {
	if r == nil {
		return errNilReport
	}
	suite := junitSuite{Name: "twice"}
	for _, wn := range r.Summary.Warnings {
		name := wn.Code
		if wn.Subject != "" {
			name += " " + wn.Subject
		}
		tc := junitCase{Classname: "twice.coverage", Name: clean(name)}
		if j.opts.StrictCoverage {
			tc.Failures = []junitFailure{{Message: clean(wn.Message), Type: "coverage", Text: clean(wn.Message) + "\n"}}
			suite.Failures++
		} else {
			tc.Skipped = &junitSkipped{Message: clean(wn.Message)}
			suite.Skipped++
		}
		suite.Tests++
		suite.Cases = append(suite.Cases, tc)
	}
	byDetector := map[string][]*twicetype.Finding{}
	for _, g := range groupFindings(r.Findings) {
		byDetector[g.Detector] = g.Findings
	}
	for _, row := range detectorCounts(r) {
		tc := junitCase{Classname: "twice." + row.ID, Name: row.ID}
		for _, f := range byDetector[row.ID] {
			tc.Failures = append(tc.Failures, junitFailure{
				Message: failureMessage(f),
				Type:    f.Severity.String(),
				Text:    junitText(f),
			})
		}
		suite.Tests++
		if len(tc.Failures) > 0 {
			suite.Failures++
		}
		suite.Cases = append(suite.Cases, tc)
	}
	doc := junitSuites{Name: "twice", Tests: suite.Tests, Failures: suite.Failures, Skipped: suite.Skipped, Suites: []junitSuite{suite}}

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
