package reports

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/twicetype"
)

// manyFindings is a report of n findings over every detector, four
// severities, 7 job types and 3 queues, sorted as the engine sorts them,
// with subjects that carry Markdown metacharacters.
func manyFindings(n int) *twicetype.Report {
	r := &twicetype.Report{Summary: twicetype.Summary{
		Events: int64(n) * 300, Jobs: int64(n) * 50, Effects: int64(n) * 100,
		From: base, To: at(24 * time.Hour), Findings: map[string]int{},
	}}
	for _, id := range twicetype.DetectorIDs {
		r.Summary.Findings[id] = 0
	}
	sevs := []twicetype.Severity{twicetype.Critical, twicetype.High, twicetype.Medium, twicetype.Low}
	for i := range n {
		det := twicetype.DetectorIDs[i%len(twicetype.DetectorIDs)]
		if det == twicetype.MissingEffect {
			det = twicetype.DuplicateEffect // one detector stays without findings
		}
		subject := fmt.Sprintf("receipt/payment:%d|*x*`", i)
		f := twicetype.Finding{
			Detector: det, Severity: sevs[i%len(sevs)], Subject: subject,
			Fingerprint: twicetype.Fingerprint(det, subject),
			Count:       2, FirstTime: at(time.Duration(i) * time.Second), LastTime: at(time.Duration(i)*time.Second + time.Minute),
			Jobs: names(fmt.Sprintf("j-%d-", i), 3), Events: names(fmt.Sprintf("e-%d-", i), 4),
			JobType: fmt.Sprintf("Job%d", i%7), Queue: fmt.Sprintf("queue-%d", i%3),
			Message: fmt.Sprintf("finding %d happened twice <b>", i),
			Details: map[string]any{"n": i},
		}
		r.Summary.Findings[det]++
		r.Findings = append(r.Findings, f)
	}
	slices.SortStableFunc(r.Findings, func(a, b twicetype.Finding) int {
		if a.Severity != b.Severity {
			return int(b.Severity) - int(a.Severity)
		}
		if c := strings.Compare(a.Detector, b.Detector); c != 0 {
			return c
		}
		return strings.Compare(a.Subject, b.Subject)
	})
	return r
}

// TestTextAtScale: with --top, the text report of 10,000 findings has a
// bounded number of lines — before, every finding took ten lines — and
// each group says how many it left out.
func TestTextAtScale(t *testing.T) {
	t.Parallel()
	r := manyFindings(10000)
	for _, groupBy := range GroupBys {
		out := render(t, "text", Options{Top: DefaultTop, GroupBy: groupBy}, r)
		lines := strings.Count(out, "\n")
		// 9 detectors (or 7 job types, 3 queues) × 10 findings × at most
		// 12 lines, and the header, summary and detector table.
		if lines > 9*10*12+60 {
			t.Errorf("group by %s: %d lines for 10,000 findings", groupBy, lines)
		}
		shown := strings.Count(out, "\n  [")
		if shown > 9*DefaultTop || shown < DefaultTop {
			t.Errorf("group by %s: %d findings shown", groupBy, shown)
		}
		more := 0
		for line := range strings.Lines(out) {
			var n int
			if _, err := fmt.Sscanf(strings.TrimSpace(line), "… and %d more", &n); err == nil && strings.Contains(line, "--top 10") {
				more += n
			}
		}
		if shown+more != 10000 {
			t.Errorf("group by %s: %d shown + %d counted, want 10000", groupBy, shown, more)
		}
		if !strings.HasSuffix(out, "\nFAIL: 10000 findings at or above low (--fail-on low)\n") {
			t.Errorf("group by %s: last line is not the verdict:\n%s", groupBy, out[max(0, len(out)-200):])
		}
	}
	// Unbounded with --top 0: every finding.
	if all := render(t, "text", Options{}, manyFindings(500)); strings.Count(all, "\n  [") != 500 {
		t.Errorf("Top 0 shows %d of 500 findings", strings.Count(all, "\n  ["))
	}
}

// TestTextGroupBy: grouped by job type or queue, the groups are headed by
// it and every finding names its detector; findings without one are
// grouped as unknown.
func TestTextGroupBy(t *testing.T) {
	t.Parallel()
	out := render(t, "text", Options{GroupBy: GroupJobType}, fullReport())
	for _, fields := range [][]string{
		{"job", "type", "SendReceipt", "(1)"},
		{"job", "type", "unknown", "(5)"},
		{"[critical]", "duplicate-effect", "receipt/payment:123"},
		{"[low]", "duplicate-execution", "a|b`c"},
	} {
		if !hasLine(out, fields...) {
			t.Errorf("no line %q in:\n%s", strings.Join(fields, " "), out)
		}
	}
	out = render(t, "text", Options{GroupBy: GroupQueue}, fullReport())
	for _, fields := range [][]string{
		{"queue", "emails", "(1)"},
		{"queue", "webhooks", "(1)"},
		{"queue", "unknown", "(4)"},
		{"[medium]", "dead-letter", "webhooks"},
	} {
		if !hasLine(out, fields...) {
			t.Errorf("no line %q in:\n%s", strings.Join(fields, " "), out)
		}
	}
	// Many groups are capped too.
	r := manyFindings(200)
	for i := range r.Findings {
		r.Findings[i].JobType = fmt.Sprintf("Type%d", i)
	}
	out = render(t, "text", Options{Top: 1, GroupBy: GroupJobType}, r)
	if n := strings.Count(out, "\n  ["); n != maxTextGroups {
		t.Errorf("%d findings shown, want one in each of %d groups", n, maxTextGroups)
	}
	if !strings.Contains(out, fmt.Sprintf("… and %d more groups with %d findings", 200-maxTextGroups, 200-maxTextGroups)) {
		t.Errorf("left-out groups not counted:\n%s", out)
	}
}

// TestVerdict: the last line of the text report and the status line of
// markdown say pass or fail as the exit code does.
func TestVerdict(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts Options
		r    *twicetype.Report
		want string
	}{
		{Options{}, fullReport(), "FAIL: 6 findings at or above low (--fail-on low)"},
		{Options{FailOn: twicetype.High}, fullReport(), "FAIL: 3 findings at or above high (--fail-on high), 3 below"},
		{Options{FailOn: twicetype.Critical}, fullReport(), "FAIL: 1 finding at or above critical (--fail-on critical), 5 below"},
		{Options{NeverFail: true}, fullReport(), "PASS: 6 findings, none fails the audit (--fail-on none)"},
		{Options{}, emptyReport(), "PASS: no finding at or above low (--fail-on low)"},
		{Options{}, warnedReport(), "PASS: no finding at or above low (--fail-on low); 2 warnings: not everything was checked"},
		{Options{StrictCoverage: true}, warnedReport(), "FAIL: 2 warnings under --strict-coverage: not everything was checked"},
	} {
		out := render(t, "text", tc.opts, tc.r)
		if !strings.HasSuffix(out, "\n"+tc.want+"\n") {
			t.Errorf("%+v: text does not end with %q:\n%s", tc.opts, tc.want, out)
		}
		md := render(t, "markdown", tc.opts, tc.r)
		word, rest, _ := strings.Cut(tc.want, ": ")
		if first := strings.SplitN(md, "\n", 4)[2]; !strings.Contains(first, "**"+word+"**: "+mdEscape(rest)) {
			t.Errorf("%+v: markdown status line %q, want %s", tc.opts, first, tc.want)
		}
	}
}

// TestMarkdownCap: a report of 10,000 findings fits the cap (64 KB by
// default, or MaxBytes), shows as many findings as fit, counts the rest,
// and is cut only between blocks: every table row is whole, every
// <details> closed.
func TestMarkdownCap(t *testing.T) {
	t.Parallel()
	r := manyFindings(10000)
	for _, limit := range []int{0, 4096, 20000, 1 << 20} {
		out := render(t, "markdown", Options{MaxBytes: limit}, r)
		want := limit
		if want == 0 {
			want = DefaultMarkdownMaxBytes
		}
		if len(out) > want {
			t.Errorf("limit %d: %d bytes", limit, len(out))
		}
		// Full enough: the next finding would not have fitted.
		if len(out) < want-2000 {
			t.Errorf("limit %d: only %d bytes used", limit, len(out))
		}
		shown := checkMarkdown(t, out)
		var more int
		if i := strings.Index(out, "_… and "); i < 0 {
			t.Errorf("limit %d: the findings left out are not counted", limit)
		} else if _, err := fmt.Sscanf(out[i:], "_… and %d more findings not shown", &more); err != nil {
			t.Errorf("limit %d: %v", limit, err)
		}
		if shown == 0 || shown+more != len(r.Findings) {
			t.Errorf("limit %d: %d findings shown + %d counted, want %d", limit, shown, more, len(r.Findings))
		}
		if !strings.Contains(out, "**FAIL**: 10000 findings at or above low") {
			t.Errorf("limit %d: no status line", limit)
		}
	}
	// A small report is whole and says nothing of a cap.
	out := render(t, "markdown", Options{}, fullReport())
	if strings.Contains(out, "not shown") || checkMarkdown(t, out) != len(fullReport().Findings) {
		t.Errorf("small report capped:\n%s", out)
	}
	// A cap too small for the report without findings is an error, not
	// a report over the cap.
	if err := (&markdownReporter{opts: Options{MaxBytes: 100}}).Write(&strings.Builder{}, r); err == nil || !strings.Contains(err.Error(), "--max-bytes") {
		t.Errorf("limit 100: err = %v", err)
	}
}

// checkMarkdown checks the structure of a markdown report: every table
// row has the cells of its header, <details> blocks are closed and not
// nested, and no line is cut. It returns the rows of the findings table.
func checkMarkdown(tb testing.TB, out string) int {
	tb.Helper()
	if !strings.HasSuffix(out, "\n") {
		tb.Errorf("output does not end with a newline")
	}
	open, rows, columns, inFindings := false, 0, 0, false
	for line := range strings.Lines(out) {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "<details>":
			if open {
				tb.Errorf("nested <details>")
			}
			open = true
		case line == "</details>":
			if !open {
				tb.Errorf("</details> without <details>")
			}
			open = false
		case strings.HasPrefix(line, "|"):
			c := len(cells(line))
			if columns == 0 {
				columns = c
				inFindings = strings.HasPrefix(line, "| severity |")
				continue
			}
			if c != columns {
				tb.Errorf("row with %d cells in a table of %d: %q", c, columns, line)
			}
			if inFindings && !strings.HasPrefix(line, "|---") {
				rows++
			}
		default:
			columns, inFindings = 0, false
		}
	}
	if open {
		tb.Errorf("<details> not closed")
	}
	return rows
}

// markdownItScript parses a markdown report as a CommonMark renderer with
// GFM tables does and prints, per table, the cells of each row, and the
// raw HTML blocks.
const markdownItScript = `
import json, sys
from markdown_it import MarkdownIt
toks = MarkdownIt("commonmark").enable("table").parse(open(sys.argv[1]).read())
tables, html, cur, cells = [], [], None, 0
for t in toks:
    if t.type == "table_open": cur = []
    elif t.type == "tr_open": cells = 0
    elif t.type in ("th_open", "td_open"): cells += 1
    elif t.type == "tr_close": cur.append(cells)
    elif t.type == "table_close": tables.append(cur)
    elif t.type == "html_block": html.append(t.content.strip())
print(json.dumps({"tables": tables, "html": html}))
`

// TestMarkdownParser reads capped and whole reports with markdown-it-py:
// the findings table has a row per finding shown, every row its seven
// cells, and each <details> block is opened and closed by HTML blocks of
// its own.
func TestMarkdownParser(t *testing.T) {
	t.Parallel()
	python := needTool(t, "python3", "-c", "import markdown_it")
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		opts Options
		r    *twicetype.Report
	}{
		"full":   {Options{}, fullReport()},
		"capped": {Options{MaxBytes: 20000}, manyFindings(5000)},
		"warned": {Options{}, warnedReport()},
	} {
		out := render(t, "markdown", tc.opts, tc.r)
		path := filepath.Join(dir, name+".md")
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		raw, err := exec.Command(python, "-c", markdownItScript, path).Output()
		if err != nil {
			t.Fatalf("%s: markdown-it: %v", name, err)
		}
		var got struct {
			Tables [][]int
			HTML   []string
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, raw)
		}
		shown := checkMarkdown(t, out)
		var findingRows []int
		for _, rows := range got.Tables {
			if len(rows) > 0 && rows[0] == 7 {
				findingRows = rows
			}
		}
		if shown > 0 && len(findingRows) != shown+1 {
			t.Errorf("%s: markdown-it sees a findings table of %d rows, want %d and the header", name, len(findingRows), shown)
		}
		for _, c := range findingRows {
			if c != 7 {
				t.Errorf("%s: a findings row of %d cells", name, c)
			}
		}
		opens, closes := 0, 0
		for _, h := range got.HTML {
			if strings.HasPrefix(h, "<details>") {
				opens++
			}
			if h == "</details>" {
				closes++
			}
		}
		if opens != strings.Count(out, "<details>") || closes != opens {
			t.Errorf("%s: markdown-it sees %d <details> and %d </details>, the text has %d", name, opens, closes, strings.Count(out, "<details>"))
		}
	}
}
