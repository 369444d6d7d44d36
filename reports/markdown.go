package reports

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"strings"

	"github.com/twicehq/twice/twicetype"
)

// markdownReporter writes GitHub-flavoured Markdown for CI job summaries
// and pull-request comments: a PASS/FAIL status line first, then the
// warnings, the handler safety scorecard, the summary and the findings,
// as many as fit Options.MaxBytes
// (most severe first; the rest counted).
type markdownReporter struct {
	opts Options
}

func (m *markdownReporter) Write(w io.Writer, r *twicetype.Report) error {
	if r == nil {
		return errNilReport
	}
	limit := m.opts.MaxBytes
	if limit <= 0 {
		limit = DefaultMarkdownMaxBytes
	}
	// The most findings that fit: the size grows with the findings shown,
	// so a binary search finds it in a few renderings.
	b := m.render(r, 0, limit)
	if b.Len() > limit {
		return fmt.Errorf("reports: markdown: the report without findings takes %d bytes, more than the limit of %d (--max-bytes)", b.Len(), limit)
	}
	// A finding takes more than minFindingBytes (a table row and a list
	// item), which bounds the search without rendering them all.
	lo, hi := 0, min(len(r.Findings), limit/minFindingBytes)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if m.render(r, mid, limit).Len() <= limit {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	if lo > 0 {
		b = m.render(r, lo, limit)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// minFindingBytes is less than the bytes any finding takes in the
// markdown report: its table row alone is more.
const minFindingBytes = 32

// render writes the report with its first n findings; it is cut only
// between blocks (a table, a <details> block), never inside one.
func (m *markdownReporter) render(r *twicetype.Report, n, limit int) *bytes.Buffer {
	var b bytes.Buffer
	s := &r.Summary

	title := "twice audit"
	if m.opts.Source != "" {
		title += " of " + mdEscape(m.opts.Source)
	}
	fmt.Fprintf(&b, "## %s\n\n", title)

	// The status first: what a reviewer needs from a PR comment.
	pass, line := verdict(r, m.opts)
	icon := ":x:"
	if pass {
		icon = ":white_check_mark:"
	}
	verdictWord, rest, _ := strings.Cut(line, ": ")
	fmt.Fprintf(&b, "%s **%s**: %s\n\n", icon, verdictWord, mdEscape(rest))

	// A GitHub alert: the warnings say how far the rest can be trusted.
	if len(s.Warnings) > 0 {
		b.WriteString("> [!WARNING]\n> **Not everything was checked:**\n")
		for _, w := range s.Warnings {
			fmt.Fprintf(&b, "> - %s\n", mdEscape(w.Message))
		}
		b.WriteString("\n")
	}

	// The scorecard takes at most a quarter of the limit, so the report
	// without findings fits whatever the number of handlers.
	markdownScorecard(&b, r.Scorecard, limit/4)

	b.WriteString("| summary | |\n|---|---:|\n")
	fmt.Fprintf(&b, "| events | %d |\n", s.Events)
	fmt.Fprintf(&b, "| repeated ids | %d |\n", s.RepeatedIDs)
	fmt.Fprintf(&b, "| malformed | %d |\n", s.Malformed)
	fmt.Fprintf(&b, "| late | %d |\n", s.Late)
	fmt.Fprintf(&b, "| jobs | %d |\n", s.Jobs)
	fmt.Fprintf(&b, "| effects | %d |\n", s.Effects)
	fmt.Fprintf(&b, "| pending | %d |\n", s.Pending)
	if s.Evicted > 0 {
		fmt.Fprintf(&b, "| evicted (coverage reduced) | %d |\n", s.Evicted)
	}
	fmt.Fprintf(&b, "| time range | %s |\n", timeRange(s))
	if r.Impact != nil {
		fmt.Fprintf(&b, "| impact | %s |\n", mdEscape(ImpactLine(r.Impact)))
	}
	fmt.Fprintf(&b, "| findings | %d |\n", len(r.Findings))

	if rows := detectorCounts(r); len(rows) > 0 {
		parts := make([]string, len(rows))
		for i, row := range rows {
			parts[i] = fmt.Sprintf("%s %d", mdEscape(row.ID), row.Count)
		}
		fmt.Fprintf(&b, "\nDetectors: %s\n", strings.Join(parts, " · "))
	}

	b.WriteString("\n### Findings\n\n")
	shown := r.Findings[:n]
	if len(r.Findings) == 0 {
		b.WriteString(noFindings(s) + "\n")
	}
	if n > 0 {
		b.WriteString("| severity | detector | subject | job type | queue | count | message |\n")
		b.WriteString("|---|---|---|---|---|---:|---|\n")
		for i := range shown {
			f := &shown[i]
			sev := f.Severity.String()
			if tag := gateTag(r.Gate, f); tag != "" {
				sev += ", **" + tag + "**"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d | %s |\n",
				sev, mdEscape(f.Detector), mdEscape(f.Subject), mdEscape(f.JobType), mdEscape(f.Queue),
				f.Count, mdEscape(f.Message))
		}
	}
	if more := len(r.Findings) - n; more > 0 {
		fmt.Fprintf(&b, "\n_… and %d more findings not shown: this report is capped at %d bytes (--max-bytes); --format json lists them all._\n", more, limit)
	}
	for _, g := range groupFindings(shown) {
		fmt.Fprintf(&b, "\n<details>\n<summary>%s (%d)</summary>\n\n",
			html.EscapeString(clean(g.Detector)), len(g.Findings))
		for _, f := range g.Findings {
			writeMarkdownFinding(&b, f, gateTag(r.Gate, f))
		}
		b.WriteString("\n</details>\n")
	}

	writeGateMarkdown(&b, r)

	if s.Malformed > 0 || len(s.MalformedLines) > 0 {
		shown := s.MalformedLines[:min(len(s.MalformedLines), malformedCap)]
		fmt.Fprintf(&b, "\n<details>\n<summary>Malformed lines (%d)</summary>\n\n",
			max(s.Malformed, int64(len(s.MalformedLines))))
		for _, ml := range shown {
			fmt.Fprintf(&b, "- %s\n", mdEscape(ml.Error()))
		}
		if more := malformedLeftOff(s, len(shown)); more > 0 {
			fmt.Fprintf(&b, "- … and %d more\n", more)
		}
		b.WriteString("\n</details>\n")
	}
	return &b
}

// writeMarkdownFinding writes one finding; tag, when set, is what the CI
// gate says of it ("new", "in the baseline", "within budget").
func writeMarkdownFinding(b *bytes.Buffer, f *twicetype.Finding, tag string) {
	fmt.Fprintf(b, "- **%s** %s", f.Severity, mdEscape(f.Subject))
	if tag != "" {
		fmt.Fprintf(b, " (%s)", tag)
	}
	if f.Message != "" {
		fmt.Fprintf(b, ": %s", mdEscape(f.Message))
	}
	b.WriteString("\n")
	if f.Cause != "" {
		fmt.Fprintf(b, "  - cause: %s\n", mdEscape(f.Cause))
	}
	if f.JobType != "" || f.Queue != "" {
		var parts []string
		if f.JobType != "" {
			parts = append(parts, "job type: "+mdEscape(f.JobType))
		}
		if f.Queue != "" {
			parts = append(parts, "queue: "+mdEscape(f.Queue))
		}
		fmt.Fprintf(b, "  - %s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintf(b, "  - count: %d, first %s, last %s\n", f.Count,
		twicetype.FormatTime(f.FirstTime), twicetype.FormatTime(f.LastTime))
	if len(f.Jobs) > 0 {
		fmt.Fprintf(b, "  - jobs: %s\n", joinCapped(f.Jobs, mdEscape))
	}
	if len(f.Events) > 0 {
		fmt.Fprintf(b, "  - events: %s\n", joinCapped(f.Events, mdEscape))
	}
	if len(f.Details) > 0 {
		pairs := detailPairs(f.Details)
		for i, p := range pairs {
			pairs[i] = mdEscape(p)
		}
		fmt.Fprintf(b, "  - details: %s\n", strings.Join(pairs, " "))
	}
}

// mdEscaper backslash-escapes the punctuation that Markdown or a GFM table
// would interpret: table cell separators, code spans, emphasis, links,
// HTML tags and entities.
var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", `|`, `\|`, `*`, `\*`, `_`, `\_`, `~`, `\~`,
	`[`, `\[`, `]`, `\]`, `<`, `\<`, `>`, `\>`, `&`, `\&`,
)

// mdEscape makes event text safe as inline Markdown (a table cell, a list
// item): control characters, newlines included, are escaped first so a
// value stays on its line.
func mdEscape(s string) string {
	return mdEscaper.Replace(clean(s))
}
