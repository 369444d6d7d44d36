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
// and pull-request comments.
type markdownReporter struct {
	opts Options
}

func (m *markdownReporter) Write(w io.Writer, r *twicetype.Report) error {
	if r == nil {
		return errNilReport
	}
	var b bytes.Buffer
	s := &r.Summary

	title := "twice audit"
	if m.opts.Source != "" {
		title += " of " + mdEscape(m.opts.Source)
	}
	fmt.Fprintf(&b, "## %s\n\n", title)

	// A GitHub alert, first: the warnings say how far the rest can be
	// trusted.
	if len(s.Warnings) > 0 {
		b.WriteString("> [!WARNING]\n> **Not everything was checked:**\n")
		for _, w := range s.Warnings {
			fmt.Fprintf(&b, "> - %s\n", mdEscape(w.Message))
		}
		b.WriteString("\n")
	}

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
	fmt.Fprintf(&b, "| findings | %d |\n", len(r.Findings))

	if rows := detectorCounts(r); len(rows) > 0 {
		parts := make([]string, len(rows))
		for i, row := range rows {
			parts[i] = fmt.Sprintf("%s %d", mdEscape(row.ID), row.Count)
		}
		fmt.Fprintf(&b, "\nDetectors: %s\n", strings.Join(parts, " · "))
	}

	b.WriteString("\n### Findings\n\n")
	if len(r.Findings) == 0 {
		b.WriteString(noFindings(s) + "\n")
	} else {
		b.WriteString("| severity | detector | subject | count | message |\n")
		b.WriteString("|---|---|---|---:|---|\n")
		for i := range r.Findings {
			f := &r.Findings[i]
			fmt.Fprintf(&b, "| %s | %s | %s | %d | %s |\n",
				f.Severity, mdEscape(f.Detector), mdEscape(f.Subject), f.Count, mdEscape(f.Message))
		}
		for _, g := range groupFindings(r.Findings) {
			fmt.Fprintf(&b, "\n<details>\n<summary>%s (%d)</summary>\n\n",
				html.EscapeString(clean(g.Detector)), len(g.Findings))
			for _, f := range g.Findings {
				writeMarkdownFinding(&b, f)
			}
			b.WriteString("\n</details>\n")
		}
	}

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

	_, err := w.Write(b.Bytes())
	return err
}

func writeMarkdownFinding(b *bytes.Buffer, f *twicetype.Finding) {
	fmt.Fprintf(b, "- **%s** %s", f.Severity, mdEscape(f.Subject))
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
