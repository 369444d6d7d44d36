package reports

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twicehq/twice/internal/servicetest"
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
	SystemOut *string `xml:"system-out"`
}

// parseJUnit reads out as a CI system would, checks that the totals add
// up and that no test case has more than one failure, and returns the
// suites by name.
func parseJUnit(tb testing.TB, out string) map[string]xTestsuite {
	tb.Helper()
	if !strings.HasPrefix(out, xml.Header) {
		tb.Errorf("no XML header")
	}
	var doc xTestsuites
	if err := xml.Unmarshal([]byte(out), &doc); err != nil {
		tb.Fatalf("not XML: %v\n%s", err, out)
	}
	suites := map[string]xTestsuite{}
	tests, failures := 0, 0
	for _, s := range doc.Suites {
		if _, dup := suites[s.Name]; dup {
			tb.Errorf("two suites named %q", s.Name)
		}
		suites[s.Name] = s
		f, sk := 0, 0
		for _, c := range s.Cases {
			if len(c.Failures) > 1 {
				tb.Errorf("test case %s/%s has %d failures", c.Classname, c.Name, len(c.Failures))
			}
			if len(c.Failures) > 0 {
				f++
			}
			if c.Skipped != nil {
				sk++
			}
		}
		if s.Tests != len(s.Cases) || s.Failures != f || s.Skipped != sk || s.Errors != 0 {
			tb.Errorf("suite %s: tests=%d failures=%d skipped=%d errors=%d, counted %d %d %d", s.Name, s.Tests, s.Failures, s.Skipped, s.Errors, len(s.Cases), f, sk)
		}
		tests += s.Tests
		failures += s.Failures
	}
	if doc.Tests != tests || doc.Failures != failures {
		tb.Errorf("testsuites tests=%d failures=%d, suites add up to %d %d", doc.Tests, doc.Failures, tests, failures)
	}
	return suites
}

func TestJUnitEmpty(t *testing.T) {
	t.Parallel()
	suites := parseJUnit(t, render(t, "junit", Options{}, emptyReport()))
	if len(suites) != 3 {
		t.Errorf("%d suites, want 3 (one per detector)", len(suites))
	}
	for _, id := range []string{twicetype.DuplicateEffect, twicetype.MissingEffect, twicetype.LostJob} {
		s := suites[id]
		if len(s.Cases) != 1 || s.Cases[0].Name != id || s.Cases[0].Classname != "twice."+id || len(s.Cases[0].Failures) != 0 || s.Cases[0].Skipped != nil {
			t.Errorf("suite %s = %+v, want one passing case", id, s)
		}
	}
	if s := parseJUnit(t, render(t, "junit", Options{}, &twicetype.Report{})); len(s) != 0 {
		t.Errorf("no detectors: %d suites", len(s))
	}
}

// TestJUnitFull: one test case per finding, failed by exactly one
// <failure> — before, a detector's findings were all <failure>s of one
// test case, which CI views show only the first of.
func TestJUnitFull(t *testing.T) {
	t.Parallel()
	r := fullReport()
	r.Findings = append(r.Findings, twicetype.Finding{
		Detector: twicetype.DuplicateEffect, Severity: twicetype.High, Subject: `x<y>&"z"`,
		Message: "second duplicate", Count: 3,
	})
	suites := parseJUnit(t, render(t, "junit", Options{}, r))
	type want struct {
		suite string
		cases []string // name=severity of the failure, or name=pass
	}
	wants := []want{
		{"duplicate-effect", []string{"duplicate-effect receipt/payment:123=critical", `duplicate-effect x<y>&"z"=high`}},
		{"missing-effect", []string{"missing-effect=pass"}},
		{"duplicate-execution", []string{"duplicate-execution a|b`c=low"}},
		{"out-of-order", []string{"out-of-order order:42=high"}},
		{"lost-job", []string{"lost-job j-7=high"}},
		{"retry-storm", []string{"retry-storm webhooks@2026-11-24T10:05:00Z=medium"}},
		{"dead-letter", []string{"dead-letter webhooks=medium"}},
	}
	for _, w := range wants {
		s, ok := suites[w.suite]
		if !ok {
			t.Errorf("no suite %s", w.suite)
			continue
		}
		var got []string
		for _, c := range s.Cases {
			if c.Classname != "twice."+w.suite {
				t.Errorf("case %s has classname %s", c.Name, c.Classname)
			}
			res := "pass"
			if len(c.Failures) == 1 {
				res = c.Failures[0].Type
			}
			got = append(got, c.Name+"="+res)
		}
		if strings.Join(got, ";") != strings.Join(w.cases, ";") {
			t.Errorf("suite %s cases %q, want %q", w.suite, got, w.cases)
		}
	}
	if cov, ok := suites["twice.coverage"]; !ok || len(cov.Cases) != 1 || cov.Cases[0].Name != "malformed" || cov.Cases[0].Skipped == nil ||
		cov.Cases[0].SystemOut == nil || !strings.Contains(*cov.Cases[0].SystemOut, "events.jsonl:29: not valid JSON\n… and 10 more\n") ||
		!strings.Contains(cov.Cases[0].Skipped.Message, "30 malformed lines") {
		t.Errorf("malformed lines not reported as a skipped twice.coverage case: %+v", cov)
	}
	de := suites["duplicate-effect"].Cases[0].Failures[0]
	if de.Message != "receipt/payment:123: email.sent receipt/payment:123 happened 2 times" {
		t.Errorf("failure message %q", de.Message)
	}
	for _, line := range []string{
		"subject: receipt/payment:123\n", "cause: redelivery\n", "job_type: SendReceipt\n", "queue: emails\n", "count: 2\n",
		"first: 2026-11-24T10:01:00.000Z\n", "jobs: j-1\n", "events: e-3, e-9\n",
		"details: effect=email.sent max_per_key=1\n",
		"fingerprint: " + twicetype.Fingerprint(twicetype.DuplicateEffect, "receipt/payment:123") + "\n",
	} {
		if !strings.Contains(de.Text, line) {
			t.Errorf("failure text lacks %q:\n%s", line, de.Text)
		}
	}
	de2 := suites["duplicate-effect"].Cases[1].Failures[0]
	if de2.Message != `x<y>&"z": second duplicate` || !strings.Contains(de2.Text, `subject: x<y>&"z"`) {
		t.Errorf("special characters did not round-trip: %q / %q", de2.Message, de2.Text)
	}
	// Characters XML cannot hold never make the file unreadable.
	r.Findings[0].Subject = "bad\uFFFE\x00\x1b"
	suites = parseJUnit(t, render(t, "junit", Options{}, r))
	if got := suites["duplicate-effect"].Cases[0].Failures[0].Message; !strings.HasPrefix(got, "bad\uFFFD\\x00\\x1b:") {
		t.Errorf("message with invalid characters = %q", got)
	}
	if lj := suites["lost-job"].Cases[0].Failures[0].Text; !strings.Contains(lj, "events: e-1, e-2, e-3, e-4, e-5, e-6, e-7, e-8, e-9, e-10 … and 3 more\n") {
		t.Errorf("long event list not capped:\n%s", lj)
	}
}

// TestJUnitFailOn: findings below --fail-on are passing test cases with the
// finding in system-out, not failures; before, every finding failed.
func TestJUnitFailOn(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts    Options
		failing []string
	}{
		{Options{}, []string{"duplicate-effect", "lost-job", "out-of-order", "dead-letter", "retry-storm", "duplicate-execution"}},
		{Options{FailOn: twicetype.High}, []string{"duplicate-effect", "lost-job", "out-of-order"}},
		{Options{FailOn: twicetype.Critical}, []string{"duplicate-effect"}},
		{Options{NeverFail: true}, nil},
	} {
		suites := parseJUnit(t, render(t, "junit", tc.opts, fullReport()))
		var failing []string
		for _, f := range fullReport().Findings {
			c := suites[f.Detector].Cases[0]
			if len(c.Failures) == 1 {
				failing = append(failing, f.Detector)
				continue
			}
			if c.SystemOut == nil || !strings.Contains(*c.SystemOut, "subject: "+f.Subject+"\n") ||
				!strings.HasPrefix(*c.SystemOut, f.Severity.String()+", below --fail-on") {
				t.Errorf("%+v: passing case %s lacks the finding in system-out: %+v", tc.opts, c.Name, c)
			}
		}
		if strings.Join(failing, " ") != strings.Join(tc.failing, " ") {
			t.Errorf("%+v: failing %v, want %v", tc.opts, failing, tc.failing)
		}
	}
}

// TestJUnitWarnings: each warning is a test case of twice.coverage,
// skipped — so the CI view is not an all-clear — or, under
// StrictCoverage, failed like the exit code.
func TestJUnitWarnings(t *testing.T) {
	t.Parallel()
	cov := parseJUnit(t, render(t, "junit", Options{}, warnedReport()))["twice.coverage"]
	if cov.Tests != 2 || cov.Failures != 0 || cov.Skipped != 2 {
		t.Errorf("tests=%d failures=%d skipped=%d, want 2 0 2", cov.Tests, cov.Failures, cov.Skipped)
	}
	if len(cov.Cases) == 2 {
		c := cov.Cases[1]
		if c.Classname != "twice.coverage" || c.Name != "rule-no-jobs SendReceipt email.sent" ||
			c.Skipped == nil || !strings.Contains(c.Skipped.Message, "no job of type SendReceipt") || len(c.Failures) != 0 {
			t.Errorf("warning case = %+v", c)
		}
	}
	cov = parseJUnit(t, render(t, "junit", Options{StrictCoverage: true}, warnedReport()))["twice.coverage"]
	if cov.Tests != 2 || cov.Failures != 2 || cov.Skipped != 0 {
		t.Errorf("strict: tests=%d failures=%d skipped=%d, want 2 2 0", cov.Tests, cov.Failures, cov.Skipped)
	}
	if len(cov.Cases) > 0 {
		if c := cov.Cases[0]; c.Skipped != nil || len(c.Failures) != 1 || c.Failures[0].Type != "coverage" ||
			!strings.Contains(c.Failures[0].Message, "nothing was checked") {
			t.Errorf("strict warning case = %+v", c)
		}
	}
}

// needTool returns the path of a program the test reads output with;
// without it the test skips, or fails under TWICE_REQUIRE_SERVICES=1
// (scripts/deps.d/xmllint.sh installs it).
func needTool(tb testing.TB, name string, check ...string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err == nil && len(check) > 0 {
		err = exec.Command(path, check...).Run()
	}
	if err != nil {
		msg := fmt.Sprintf("%s %s unusable (%v): run scripts/deps.d/xmllint.sh", name, strings.Join(check, " "), err)
		if os.Getenv(servicetest.EnvRequire) == "1" {
			tb.Fatalf("%s (%s=1 requires it)", msg, servicetest.EnvRequire)
		}
		tb.Skip(msg)
	}
	return path
}

// junitConsumerReports are the reports the consumer tests read: every
// kind of test case junit writes.
func junitConsumerReports() map[string]struct {
	opts Options
	r    *twicetype.Report
} {
	big := manyFindings(300)
	return map[string]struct {
		opts Options
		r    *twicetype.Report
	}{
		"full":        {Options{Source: "events.jsonl"}, fullReport()},
		"full-high":   {Options{FailOn: twicetype.High}, fullReport()},
		"empty":       {Options{}, emptyReport()},
		"warned":      {Options{}, warnedReport()},
		"strict":      {Options{StrictCoverage: true}, warnedReport()},
		"none":        {Options{NeverFail: true}, &twicetype.Report{}},
		"many-medium": {Options{FailOn: twicetype.Medium}, big},
		"gated":       {Options{FailOn: twicetype.Medium}, gatedReport()},
	}
}

// TestJUnitSchema validates the output against the Jenkins JUnit schema
// with xmllint, as a CI system's importer would check it.
func TestJUnitSchema(t *testing.T) {
	t.Parallel()
	xmllint := needTool(t, "xmllint", "--version")
	xsd, err := filepath.Abs(filepath.Join("testdata", "jenkins-junit-10.xsd"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, tc := range junitConsumerReports() {
		path := filepath.Join(dir, name+".xml")
		if err := os.WriteFile(path, []byte(render(t, "junit", tc.opts, tc.r)), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(xmllint, "--noout", "--schema", xsd, path).CombinedOutput(); err != nil {
			t.Errorf("%s: not valid against %s: %v\n%s", name, xsd, err, out)
		}
	}
}

// junitparserScript prints, per suite, its name and its cases with their
// results as junitparser reads them; junitparser raises on a test case
// with several results.
const junitparserScript = `
import json, sys
from junitparser import JUnitXml
out = []
for suite in JUnitXml.fromfile(sys.argv[1]):
    cases = []
    for case in suite:
        res = [type(r).__name__ + ":" + (r.type or "") for r in case.result]
        cases.append({"name": case.name, "classname": case.classname, "result": res,
                      "system_out": case.system_out or ""})
    out.append({"name": suite.name, "tests": suite.tests, "failures": suite.failures, "cases": cases})
print(json.dumps(out))
`

// TestJUnitParser reads the output with Python's junitparser, which
// rejected the former layout (several failures in one test case).
func TestJUnitParser(t *testing.T) {
	t.Parallel()
	python := needTool(t, "python3", "-c", "import junitparser")
	dir := t.TempDir()
	type pcase struct {
		Name, Classname string
		Result          []string
		SystemOut       string `json:"system_out"`
	}
	type psuite struct {
		Name            string
		Tests, Failures int
		Cases           []pcase
	}
	for name, tc := range junitConsumerReports() {
		path := filepath.Join(dir, name+".xml")
		if err := os.WriteFile(path, []byte(render(t, "junit", tc.opts, tc.r)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(python, "-c", junitparserScript, path).Output()
		if err != nil {
			t.Errorf("%s: junitparser: %v\n%s", name, err, out)
			continue
		}
		var suites []psuite
		if err := json.Unmarshal(out, &suites); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		findings := 0
		for _, s := range suites {
			failures := 0
			for _, c := range s.Cases {
				if len(c.Result) > 1 {
					t.Errorf("%s: case %s has results %v", name, c.Name, c.Result)
				}
				if len(c.Result) == 1 && strings.HasPrefix(c.Result[0], "Failure:") {
					failures++
				}
				if strings.HasPrefix(c.Classname, "twice.") && c.Classname != "twice.coverage" && c.Classname != "twice.scorecard" && c.Classname != "twice.baseline" && c.Name != strings.TrimPrefix(c.Classname, "twice.") {
					findings++
				}
			}
			if s.Tests != len(s.Cases) || s.Failures != failures {
				t.Errorf("%s: suite %s tests=%d failures=%d, junitparser counted %d %d", name, s.Name, s.Tests, s.Failures, len(s.Cases), failures)
			}
		}
		if findings != len(tc.r.Findings) {
			t.Errorf("%s: %d finding test cases, want %d", name, findings, len(tc.r.Findings))
		}
	}
}
