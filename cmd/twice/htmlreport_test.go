package main

import (
	"encoding/json"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// htmlData reads the chart data of an html report.
func htmlData(t *testing.T, page string) (events []int64, markers int) {
	t.Helper()
	m := regexp.MustCompile(`<script type="application/json" id="twice-data">(.*?)</script>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no chart data in the page")
	}
	var d struct {
		Timeline struct {
			Events []int64 `json:"events"`
		} `json:"timeline"`
		Markers []json.RawMessage `json:"markers"`
	}
	if err := json.Unmarshal([]byte(m[1]), &d); err != nil {
		t.Fatalf("chart data: %v", err)
	}
	return d.Timeline.Events, len(d.Markers)
}

// TestAuditHTMLDemo checks what twice audit --format html adds to the
// report: the events per bucket add up to the events counted (each
// observation once), and every finding shown has the story of its jobs,
// read again from the input.
func TestAuditHTMLDemo(t *testing.T) {
	out := filepath.Join(t.TempDir(), "demo.html")
	_, stderr, code := runCLI(t, "audit", "--config", "../../testdata/demo/twice.yaml", "-q",
		"--format", "html", "-o", out, "../../testdata/demo/events.jsonl")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (findings); stderr:\n%s", code, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	events, markers := htmlData(t, page)
	var sum int64
	for _, n := range events {
		sum += n
	}
	want := regexp.MustCompile(`<div data-count="events"><dt>events</dt><dd>(\d+)</dd>`).FindStringSubmatch(page)
	if want == nil {
		t.Fatal("no events count on the page")
	}
	if strconv.FormatInt(sum, 10) != want[1] {
		t.Errorf("timeline buckets add up to %d events, the summary says %s", sum, want[1])
	}
	articles := strings.Count(page, `<article class="finding"`)
	if articles == 0 || markers != articles {
		t.Errorf("%d findings shown, %d marked on the timeline", articles, markers)
	}
	if stories := strings.Count(page, `<ol class="steps">`); stories != articles {
		t.Errorf("%d stories for %d findings shown", stories, articles)
	}
	if strings.Contains(page, "Story: 0 events") {
		t.Errorf("a finding's story found none of its events")
	}
}

// TestAuditHTMLRedactsStories checks that the stories, read again from
// the raw input, show values as the findings do: the fields twice.yaml
// redacts hashed and email addresses hidden, and still matched to their
// finding.
func TestAuditHTMLRedactsStories(t *testing.T) {
	events := strings.NewReplacer("j-1", "j-secret-1", "payment:123", "ann@example.com").Replace(crashRetry)
	in := writeFile(t, "events.jsonl", events)
	cfg := writeFile(t, "twice.yaml", "redact: [job_id]\n")
	out := filepath.Join(t.TempDir(), "r.html")
	_, stderr, code := runCLI(t, "audit", "--config", cfg, "--format", "html", "-o", out, in)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	page := html.UnescapeString(string(b))
	for _, secret := range []string{"j-secret-1", "ann@example.com", "example.com"} {
		if strings.Contains(page, secret) {
			t.Errorf("page shows %q", secret)
		}
	}
	if !strings.Contains(page, "effect email.sent receipt/<email:") || !strings.Contains(page, "by redacted:") {
		t.Errorf("story does not show the redacted effect by its redacted job:\n%s", page)
	}
	if n := strings.Count(page, `<ol class="steps">`); n == 0 {
		t.Errorf("no story: redacted findings did not match the events read again")
	}
}

// TestAuditHTMLStdin: stdin cannot be read twice, so its findings get
// no story, and twice says so.
func TestAuditHTMLStdin(t *testing.T) {
	out, stderr, code := runCLIWithInput(t, strings.NewReader(crashRetry), "audit", "--format", "html", "-")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "stdin (-) cannot be read a second time") {
		t.Errorf("stderr does not say why there is no story:\n%s", stderr)
	}
	if !strings.Contains(out, `<article class="finding"`) || strings.Contains(out, `<ol class="steps">`) {
		t.Errorf("want findings without stories")
	}
}
