package reports

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/twicehq/twice/twicetype"
)

// The JUnit schema as a CI system reads it, independent of junit.go.
type xTestsuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []xTestsuite `xml:"testsuite"`
}

type xTestsuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []xTestcase `xml:"testcase"`
}

type xTestcase struct {
	Classname string `xml:"classname,attr"`
	Name      string `xml:"name,attr"`
	Skipped   *struct {
		Message string `xml:"message,attr"`
	} `xml:"skipped"`
	Failures []struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	} `xml:"failure"`
}

func parseJUnit(tb testing.TB, out string) xTestsuite {
	tb.Helper()
	if !strings.HasPrefix(out, xml.Header) {
		tb.Errorf("no XML header")
	}
	var doc xTestsuites
	if err := xml.Unmarshal([]byte(out), &doc); err != nil {
		tb.Fatalf("not XML: %v\n%s", err, out)
	}
	if len(doc.Suites) != 1 {
		tb.Fatalf("%d test suites, want 1", len(doc.Suites))
	}
	s := doc.Suites[0]
	if s.Name != "twice" || doc.Tests != s.Tests || doc.Failures != s.Failures {
		tb.Errorf("suite %q tests %d/%d failures %d/%d", s.Name, doc.Tests, s.Tests, doc.Failures, s.Failures)
	}
	return s
}

func TestJUnitEmpty(t *testing.T) {
	t.Parallel()
	s := parseJUnit(t, render(t, "junit", Options{}, emptyReport()))
	if s.Tests != 3 || s.Failures != 0 || s.Errors != 0 || len(s.Cases) != 3 {
		t.Errorf("tests=%d failures=%d errors=%d cases=%d, want 3 0 0 3", s.Tests, s.Failures, s.Errors, len(s.Cases))
	}
	for i, want := range []string{twicetype.DuplicateEffect, twicetype.MissingEffect, twicetype.LostJob} {
		if i < len(s.Cases) && (s.Cases[i].Name != want || s.Cases[i].Classname != "twice."+want || len(s.Cases[i].Failures) != 0) {
			t.Errorf("case %d = %+v, want passing %s", i, s.Cases[i], want)
		}
	}
	if s := parseJUnit(t, render(t, "junit", Options{}, &twicetype.Report{})); s.Tests != 0 || len(s.Cases) != 0 {
		t.Errorf("no detectors: tests=%d", s.Tests)
	}
}

func TestJUnitFull(t *testing.T) {
	t.Parallel()
	r := fullReport()
	r.Findings = append(r.Findings, twicetype.Finding{
		Detector: twicetype.DuplicateEffect, Severity: twicetype.High, Subject: `x<y>&"z"`,
		Message: "second duplicate", Count: 3,
	})
	s := parseJUnit(t, render(t, "junit", Options{}, r))
	if s.Tests != 7 || s.Failures != 6 {
		t.Errorf("tests=%d failures=%d, want 7 6", s.Tests, s.Failures)
	}
	type want struct {
		name     string
		failures []string // severity of each failure
	}
	wants := []want{
		{"duplicate-effect", []string{"critical", "high"}},
		{"missing-effect", nil},
		{"duplicate-execution", []string{"low"}},
		{"out-of-order", []string{"high"}},
		{"lost-job", []string{"high"}},
		{"retry-storm", []string{"medium"}},
		{"dead-letter", []string{"medium"}},
	}
	if len(s.Cases) != len(wants) {
		t.Fatalf("%d cases, want %d", len(s.Cases), len(wants))
	}
	for i, w := range wants {
		c := s.Cases[i]
		var types []string
		for _, f := range c.Failures {
			types = append(types, f.Type)
		}
		if c.Name != w.name || c.Classname != "twice."+w.name || strings.Join(types, ",") != strings.Join(w.failures, ",") {
			t.Errorf("case %d = %s/%s failures %v, want %s failures %v", i, c.Classname, c.Name, types, w.name, w.failures)
		}
	}
	de := s.Cases[0].Failures
	if de[0].Message != "receipt/payment:123: email.sent receipt/payment:123 happened 2 times" {
		t.Errorf("failure message %q", de[0].Message)
	}
	for _, line := range []string{
		"subject: receipt/payment:123\n", "cause: redelivery\n", "count: 2\n",
		"first: 2026-11-24T10:01:00.000Z\n", "jobs: j-1\n", "events: e-3, e-9\n",
		"details: effect=email.sent max_per_key=1\n",
		"fingerprint: " + twicetype.Fingerprint(twicetype.DuplicateEffect, "receipt/payment:123") + "\n",
	} {
		if !strings.Contains(de[0].Text, line) {
			t.Errorf("failure text lacks %q:\n%s", line, de[0].Text)
		}
	}
	if de[1].Message != `x<y>&"z": second duplicate` || !strings.Contains(de[1].Text, `subject: x<y>&"z"`) {
		t.Errorf("special characters did not round-trip: %q / %q", de[1].Message, de[1].Text)
	}
	// Characters XML cannot hold never make the file unreadable.
	r.Findings[0].Subject = "bad\uFFFE\x00\x1b"
	s = parseJUnit(t, render(t, "junit", Options{}, r))
	if got := s.Cases[0].Failures[0].Message; !strings.HasPrefix(got, "bad\uFFFD\\x00\\x1b:") {
		t.Errorf("message with invalid characters = %q", got)
	}
	if lj := s.Cases[4].Failures[0].Text; !strings.Contains(lj, "events: e-1, e-2, e-3, e-4, e-5, e-6, e-7, e-8, e-9, e-10 … and 3 more\n") {
		t.Errorf("long event list not capped:\n%s", lj)
	}
}

// TestJUnitWarnings: each warning is a test case of twice.coverage,
// skipped — so the CI view is not an all-clear — or, under
// StrictCoverage, failed like the exit code.
func TestJUnitWarnings(t *testing.T) {
	t.Parallel()
	s := parseJUnit(t, render(t, "junit", Options{}, warnedReport()))
	if s.Tests != 5 || s.Failures != 0 || s.Skipped != 2 {
		t.Errorf("tests=%d failures=%d skipped=%d, want 5 0 2", s.Tests, s.Failures, s.Skipped)
	}
	c := s.Cases[1]
	if c.Classname != "twice.coverage" || c.Name != "rule-no-jobs SendReceipt email.sent" ||
		c.Skipped == nil || !strings.Contains(c.Skipped.Message, "no job of type SendReceipt") || len(c.Failures) != 0 {
		t.Errorf("warning case = %+v", c)
	}
	s = parseJUnit(t, render(t, "junit", Options{StrictCoverage: true}, warnedReport()))
	if s.Tests != 5 || s.Failures != 2 || s.Skipped != 0 {
		t.Errorf("strict: tests=%d failures=%d skipped=%d, want 5 2 0", s.Tests, s.Failures, s.Skipped)
	}
	if c := s.Cases[0]; c.Skipped != nil || len(c.Failures) != 1 || c.Failures[0].Type != "coverage" ||
		!strings.Contains(c.Failures[0].Message, "nothing was checked") {
		t.Errorf("strict warning case = %+v", c)
	}
}
