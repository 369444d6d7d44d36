package reports

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/twicehq/twice/twicetype"
)

// textReporter writes the report for a terminal.
type textReporter struct {
	opts Options
}

// ANSI SGR sequences. Each is five bytes long: tabwriter counts escape
// codes as width, so a column aligns as long as every cell in it carries
// the same number of code bytes (see painter.cell).
const (
	ansiReset   = "\x1b[0m"
	ansiBold    = "\x1b[01m"
	ansiRed     = "\x1b[31m"
	ansiYellow  = "\x1b[33m"
	ansiCyan    = "\x1b[36m"
	ansiDefault = "\x1b[39m"
)

// painter colours text when on.
type painter bool

func (p painter) paint(code, s string) string {
	if !p {
		return s
	}
	return code + s + ansiReset
}

func (p painter) bold(s string) string { return p.paint(ansiBold, s) }

// severity paints a severity name; SeverityNone is written "-".
func (p painter) severity(s twicetype.Severity) string {
	if s == twicetype.SeverityNone {
		return p.paint(ansiDefault, "-")
	}
	return p.paint(severityColor(s), s.String())
}

func severityColor(s twicetype.Severity) string {
	switch s {
	case twicetype.Critical, twicetype.High:
		return ansiRed
	case twicetype.Medium:
		return ansiYellow
	case twicetype.Low:
		return ansiCyan
	}
	return ansiDefault
}

func (t *textReporter) Write(w io.Writer, r *twicetype.Report) error {
	if r == nil {
		return errNilReport
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	p := painter(t.opts.Color)
	s := &r.Summary
	t.opts.gate = r.Gate

	// Header: what was audited and the event time it covers.
	what := "twice audit"
	if t.opts.Source != "" {
		what += " of " + clean(t.opts.Source)
	}
	when := "no events"
	if s.Events > 0 {
		when = "events from " + twicetype.FormatTime(s.From) + " to " + twicetype.FormatTime(s.To)
	}
	fmt.Fprintf(tw, "%s: %s\n\n", p.bold(what), when)

	// Warnings first: they say how far the rest can be trusted.
	if len(s.Warnings) > 0 {
		fmt.Fprintln(tw, p.bold(p.paint(ansiYellow, fmt.Sprintf("Warnings (%d)", len(s.Warnings)))))
		for _, w := range s.Warnings {
			fmt.Fprintf(tw, "  %s %s\n", p.paint(ansiYellow, "!"), clean(w.Message))
		}
		fmt.Fprintln(tw)
	}

	writeTextScorecard(tw, p, r.Scorecard, t.opts.Top)
	fmt.Fprintln(tw)

	fmt.Fprintln(tw, p.bold("Summary"))
	fmt.Fprintf(tw, "  events\t%d\n", s.Events)
	fmt.Fprintf(tw, "  repeated ids\t%d\n", s.RepeatedIDs)
	fmt.Fprintf(tw, "  malformed\t%d\n", s.Malformed)
	fmt.Fprintf(tw, "  late\t%d\n", s.Late)
	fmt.Fprintf(tw, "  jobs\t%d\n", s.Jobs)
	fmt.Fprintf(tw, "  effects\t%d\n", s.Effects)
	fmt.Fprintf(tw, "  pending\t%d\n", s.Pending)
	if s.Evicted > 0 {
		fmt.Fprintf(tw, "  evicted\t%d (dropped by the memory cap: coverage reduced)\n", s.Evicted)
	}
	fmt.Fprintf(tw, "  time range\t%s\n", timeRange(s))
	if r.Impact != nil {
		fmt.Fprintf(tw, "  impact\t%s\n", clean(ImpactLine(r.Impact)))
	}

	fmt.Fprintf(tw, "\n%s\n", p.bold("Findings"))
	if rows := detectorCounts(r); len(rows) > 0 {
		fmt.Fprintf(tw, "  DETECTOR\t%s\tCOUNT\n", p.paint(ansiDefault, "SEVERITY"))
		for _, row := range rows {
			fmt.Fprintf(tw, "  %s\t%s\t%d\n", clean(row.ID), p.severity(row.Severity), row.Count)
		}
	}
	if len(r.Findings) == 0 {
		fmt.Fprintln(tw, "  "+noFindings(s))
	}

	groups := textGroups(r.Findings, t.opts.GroupBy)
	shownGroups := groups
	if t.opts.Top > 0 && len(groups) > maxTextGroups {
		shownGroups = groups[:maxTextGroups]
	}
	for _, g := range shownGroups {
		fmt.Fprintf(tw, "\n%s\n", p.bold(fmt.Sprintf("%s (%d)", g.Detector, len(g.Findings))))
		shown := g.Findings
		if t.opts.Top > 0 && len(shown) > t.opts.Top {
			shown = shown[:t.opts.Top]
		}
		for i, f := range shown {
			if i > 0 {
				fmt.Fprintln(tw)
			}
			writeTextFinding(tw, p, f, t.opts.GroupBy, gateTag(r.Gate, f))
		}
		if more := len(g.Findings) - len(shown); more > 0 {
			fmt.Fprintf(tw, "\n  … and %d more (--top %d shows %d per group; --format json lists all)\n", more, t.opts.Top, t.opts.Top)
		}
	}
	if rest := groups[len(shownGroups):]; len(rest) > 0 {
		n := 0
		for _, g := range rest {
			n += len(g.Findings)
		}
		fmt.Fprintf(tw, "\n… and %d more groups with %s (--top 0 shows all; --format json lists all)\n", len(rest), plural(n, "finding"))
	}

	if s.Malformed > 0 || len(s.MalformedLines) > 0 {
		fmt.Fprintf(tw, "\n%s\n", p.bold(fmt.Sprintf("Malformed lines (%d)", max(s.Malformed, int64(len(s.MalformedLines))))))
		shown := s.MalformedLines[:min(len(s.MalformedLines), malformedCap)]
		for _, m := range shown {
			fmt.Fprintf(tw, "  %s\n", clean(m.Error()))
		}
		if more := malformedLeftOff(s, len(shown)); more > 0 {
			fmt.Fprintf(tw, "  … and %d more\n", more)
		}
	}

	writeGateText(tw, p, r)

	// Last, what a CI log shows: pass or fail, and why.
	pass, line := verdict(r, t.opts)
	code := ansiRed
	if pass {
		code = ansiDefault
	}
	fmt.Fprintf(tw, "\n%s\n", p.bold(p.paint(code, line)))

	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// maxTextGroups bounds the groups the text format lists when Top is set:
// grouped by job type or queue, a report can have as many groups as
// findings.
const maxTextGroups = 50

// textGroups groups findings for the text format by what groupBy names;
// a group's name (group.Detector) is the heading, cleaned.
func textGroups(fs []twicetype.Finding, groupBy string) []group {
	switch groupBy {
	case GroupJobType:
		return groupFindingsBy(fs, func(f *twicetype.Finding) string {
			if f.JobType == "" {
				return "job type unknown"
			}
			return "job type " + clean(f.JobType)
		})
	case GroupQueue:
		return groupFindingsBy(fs, func(f *twicetype.Finding) string {
			if f.Queue == "" {
				return "queue unknown"
			}
			return "queue " + clean(f.Queue)
		})
	}
	return groupFindingsBy(fs, func(f *twicetype.Finding) string { return clean(f.Detector) })
}

// writeTextFinding writes one finding; tag, when set, is what the CI
// gate says of it ("new", "in the baseline", "within budget").
func writeTextFinding(w io.Writer, p painter, f *twicetype.Finding, groupBy, tag string) {
	if tag != "" {
		tag = "  (" + tag + ")"
	}
	if groupBy == GroupJobType || groupBy == GroupQueue {
		// Grouped by something else, each finding names its detector.
		fmt.Fprintf(w, "  [%s] %s %s%s\n", p.severity(f.Severity), clean(f.Detector), clean(f.Subject), tag)
	} else {
		fmt.Fprintf(w, "  [%s] %s%s\n", p.severity(f.Severity), clean(f.Subject), tag)
	}
	if f.Message != "" {
		fmt.Fprintf(w, "    %s\n", clean(f.Message))
	}
	if f.Cause != "" {
		fmt.Fprintf(w, "    cause\t%s\n", clean(f.Cause))
	}
	if f.JobType != "" {
		fmt.Fprintf(w, "    job type\t%s\n", clean(f.JobType))
	}
	if f.Queue != "" {
		fmt.Fprintf(w, "    queue\t%s\n", clean(f.Queue))
	}
	fmt.Fprintf(w, "    count\t%d\n", f.Count)
	fmt.Fprintf(w, "    first\t%s\n", twicetype.FormatTime(f.FirstTime))
	fmt.Fprintf(w, "    last\t%s\n", twicetype.FormatTime(f.LastTime))
	if len(f.Jobs) > 0 {
		fmt.Fprintf(w, "    jobs\t%s\n", joinCapped(f.Jobs, clean))
	}
	if len(f.Events) > 0 {
		fmt.Fprintf(w, "    events\t%s\n", joinCapped(f.Events, clean))
	}
	if len(f.Details) > 0 {
		fmt.Fprintf(w, "    details\t%s\n", strings.Join(detailPairs(f.Details), " "))
	}
}
