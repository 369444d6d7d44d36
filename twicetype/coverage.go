package twicetype

import (
	"fmt"
	"strings"
)

// WarnCoverageLost: a source reported events it knows it could not read
// (a trimmed stream, a stop longer than its retention, a poll that came
// too late); the report carries one warning per source, lane and reason.
const WarnCoverageLost = "coverage-lost"

// Gap is coverage a source knows it lost: records of one lane it could
// not read. It is a fact about the input, never a finding.
type Gap struct {
	// Source names the source, Lane the part of it (a queue, a
	// partition) that lost the records.
	Source string
	Lane   string
	// Reason is a short stable phrase, a metric label: "stream trimmed",
	// "stopped longer than the retention".
	Reason string
	// From and To bound the time the lost records were written, in Unix
	// nanoseconds; 0 when unknown.
	From, To int64
	// Count is how many records were lost; 0 when unknown.
	Count int64
}

// Merge adds other, a gap of the same source, lane and reason, to g.
func (g *Gap) Merge(other Gap) {
	g.Count += other.Count
	if other.From != 0 && (g.From == 0 || other.From < g.From) {
		g.From = other.From
	}
	if other.To > g.To {
		g.To = other.To
	}
}

// Sentence says what was lost, for summary.warnings: "Source jobs (lane
// emails) lost 120 events between … and … (stream trimmed): findings
// about them may be missing or wrong."
func (g Gap) Sentence() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Source %s", g.Source)
	if g.Lane != "" {
		fmt.Fprintf(&b, " (%s)", g.Lane)
	}
	b.WriteString(" lost ")
	if g.Count > 0 {
		fmt.Fprintf(&b, "%d events", g.Count)
	} else {
		b.WriteString("events")
	}
	switch {
	case g.From != 0 && g.To != 0:
		fmt.Fprintf(&b, " between %s and %s", FormatTime(g.From), FormatTime(g.To))
	case g.From != 0:
		fmt.Fprintf(&b, " after %s", FormatTime(g.From))
	case g.To != 0:
		fmt.Fprintf(&b, " before %s", FormatTime(g.To))
	}
	fmt.Fprintf(&b, " (%s) that twice could not read: findings about them may be missing, and jobs whose events were lost may be reported wrongly.", g.Reason)
	return b.String()
}

// Warning is the gap as a report warning.
func (g Gap) Warning() Warning {
	return Warning{Code: WarnCoverageLost, Subject: g.Source + " " + g.Lane + " " + g.Reason, Message: g.Sentence()}
}
