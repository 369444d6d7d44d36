package reports

import (
	"strings"
	"testing"
)

// cells splits a Markdown table row on its unescaped pipes.
func cells(row string) []string {
	row = strings.TrimSpace(row)
	var out []string
	var cur strings.Builder
	for i := 0; i < len(row); i++ {
		switch {
		case row[i] == '\\' && i+1 < len(row):
			cur.WriteByte(row[i])
			cur.WriteByte(row[i+1])
			i++
		case row[i] == '|':
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(row[i])
		}
	}
	out = append(out, strings.TrimSpace(cur.String()))
	// A row starts and ends with a pipe: drop the empty outer cells.
	return out[1 : len(out)-1]
}

func TestMarkdownEscape(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"receipt/payment:123": "receipt/payment:123",
		"a|b":                 `a\|b`,
		"`code`":              "\\`code\\`",
		"*x* _y_ [l](u) ~s~":  `\*x\* \_y\_ \[l\](u) \~s\~`,
		"<b>&amp;":            `\<b\>\&amp;`,
		`back\slash`:          `back\\slash`,
		"two\nlines":          `two\\nlines`,
	} {
		if got := mdEscape(in); got != want {
			t.Errorf("mdEscape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMarkdownFull(t *testing.T) {
	t.Parallel()
	r := fullReport()
	r.Findings[2].Message = "line one\nline | two"
	out := render(t, "markdown", Options{Source: "prod|events.jsonl"}, r)

	if !strings.HasPrefix(out, "## twice audit of prod\\|events.jsonl\n") {
		t.Errorf("title not escaped:\n%s", out)
	}
	var rows [][]string
	inTable := false
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "| severity | detector |") {
			inTable = true
			continue
		}
		if inTable && !strings.HasPrefix(line, "|") {
			break
		}
		if inTable && !strings.HasPrefix(line, "|---") {
			rows = append(rows, cells(line))
		}
	}
	if len(rows) != len(r.Findings) {
		t.Fatalf("findings table has %d rows, want %d:\n%s", len(rows), len(r.Findings), out)
	}
	for i, row := range rows {
		if len(row) != 7 {
			t.Errorf("row %d has %d cells, want 7: %q", i, len(row), row)
			continue
		}
		f := r.Findings[i]
		if row[0] != f.Severity.String() || row[1] != f.Detector || row[3] != f.JobType || row[4] != f.Queue {
			t.Errorf("row %d = %q, want severity %s detector %s job type %q queue %q", i, row, f.Severity, f.Detector, f.JobType, f.Queue)
		}
	}
	if want := []string{"low", "duplicate-execution", "a\\|b\\`c", "", "", "1", "job a\\|b\\`c started again after \\*succeeded\\*"}; strings.Join(rows[5], "¦") != strings.Join(want, "¦") {
		t.Errorf("escaped row = %q, want %q", rows[5], want)
	}
	if rows[2][6] != `line one\\nline \| two` {
		t.Errorf("multi-line message cell = %q", rows[2][6])
	}
	for _, want := range []string{
		"| events | 1200 |",
		"| time range | 2026-11-24T10:00:00.000Z to 2026-11-24T11:00:01.500Z (1h0m1.5s) |",
		"| evicted (coverage reduced) | 2 |",
		"| findings | 6 |",
		"Detectors: duplicate-effect 1 · missing-effect 0 · duplicate-execution 1 · out-of-order 1 · lost-job 1 · retry-storm 1 · dead-letter 1\n",
		"<details>\n<summary>duplicate-effect (1)</summary>\n\n- **critical** receipt/payment:123: email.sent receipt/payment:123 happened 2 times\n",
		"  - cause: redelivery\n",
		"  - events: e-1, e-2, e-3, e-4, e-5, e-6, e-7, e-8, e-9, e-10 … and 3 more\n",
		"  - details: count=12 oldest=2026-11-24T10:05:00.000Z per\\_hour={\"2026-11-24T10:00:00Z\":5,\"2026-11-24T11:00:00Z\":7}\n",
		"<summary>Malformed lines (30)</summary>",
		"- events.jsonl:29: not valid JSON\n- … and 10 more\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "<details>"); n != 7 || strings.Count(out, "</details>") != n {
		t.Errorf("%d <details> blocks, want 6 detectors + malformed lines, each closed", n)
	}
}

func TestMarkdownEmpty(t *testing.T) {
	t.Parallel()
	out := render(t, "markdown", Options{}, emptyReport())
	for _, want := range []string{
		"## twice audit\n", "| events | 0 |", "| time range | none |", "| findings | 0 |",
		"Detectors: duplicate-effect 0 · missing-effect 0 · lost-job 0\n", "\nNo findings.\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, absent := range []string{"<details>", "| severity |", "evicted"} {
		if strings.Contains(out, absent) {
			t.Errorf("empty report has %q:\n%s", absent, out)
		}
	}
}
