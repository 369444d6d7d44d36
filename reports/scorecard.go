package reports

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/twicehq/twice/twicetype"
)

// The handler safety scorecard (twicetype.HandlerScore) heads every
// format: a table of one row per job type and queue, one cell per
// condition. A cell reads "UNSAFE h/e" (h of e times harmful), "safe e"
// (e times, no harm) or "—" (not exercised).

// scoreText is the text of one condition's cell.
func scoreText(c twicetype.ConditionScore) string {
	switch c.Verdict {
	case twicetype.VerdictUnsafe:
		return fmt.Sprintf("UNSAFE %d/%d", c.Harmed, c.Exercised)
	case twicetype.VerdictSafe:
		return fmt.Sprintf("safe %d", c.Exercised)
	}
	return "—"
}

// scoreQueue shows a handler's queue; "-" when its jobs named none.
func scoreQueue(q string) string {
	if q == "" {
		return "-"
	}
	return q
}

// unsafe reports whether any condition of h is unsafe.
func unsafe(h *twicetype.HandlerScore) bool {
	return slices.ContainsFunc(h.Conditions, func(c twicetype.ConditionScore) bool {
		return c.Verdict == twicetype.VerdictUnsafe
	})
}

// scoreRows returns the rows to show when at most n fit (n <= 0: all):
// all in order when they fit, else the first n of unsafeFirst, so a cap
// never hides harm before it hides a safe handler.
func scoreRows(card []twicetype.HandlerScore, n int) []twicetype.HandlerScore {
	if n <= 0 || len(card) <= n {
		return card
	}
	return unsafeFirst(card)[:n]
}

// unsafeFirst returns the handlers with an unsafe condition, then the
// others, each part in order.
func unsafeFirst(card []twicetype.HandlerScore) []twicetype.HandlerScore {
	rows := make([]twicetype.HandlerScore, 0, len(card))
	for _, h := range card {
		if unsafe(&h) {
			rows = append(rows, h)
		}
	}
	for _, h := range card {
		if !unsafe(&h) {
			rows = append(rows, h)
		}
	}
	return rows
}

// maxTextScoreRows bounds the scorecard rows of the text format when
// Options.Top is set.
const maxTextScoreRows = 50

// noScorecard says why a report has no scorecard.
const noScorecard = "no job carried a job_type: no handler to score"

// writeTextScorecard writes the scorecard table of the text format.
func writeTextScorecard(w io.Writer, p painter, card []twicetype.HandlerScore, top int) {
	fmt.Fprintln(w, p.bold("Handler safety scorecard"))
	if len(card) == 0 {
		fmt.Fprintln(w, "  "+noScorecard)
		return
	}
	head := []string{"JOB TYPE", "QUEUE", "JOBS"}
	for _, c := range twicetype.Conditions {
		// Painted like the cells below it, to align with them.
		head = append(head, p.paint(ansiDefault, strings.ToUpper(c)))
	}
	fmt.Fprintf(w, "  %s\n", strings.Join(head, "\t"))
	limit := 0
	if top > 0 {
		limit = maxTextScoreRows
	}
	rows := scoreRows(card, limit)
	for _, h := range rows {
		cells := []string{clean(h.JobType), clean(scoreQueue(h.Queue)), fmt.Sprint(h.Jobs)}
		for _, c := range h.Conditions {
			code := ansiDefault
			if c.Verdict == twicetype.VerdictUnsafe {
				code = ansiRed
			}
			// Every cell of a column is painted, so each carries the same
			// code bytes and tabwriter aligns them (see painter).
			cells = append(cells, p.paint(code, scoreText(c)))
		}
		fmt.Fprintf(w, "  %s\n", strings.Join(cells, "\t"))
	}
	if more := len(card) - len(rows); more > 0 {
		fmt.Fprintf(w, "  … and %d more handlers without harm (--top 0 shows all; --format json lists all)\n", more)
	}
}

// markdownScorecard writes the scorecard as a GFM table in at most
// budget bytes: the rows that fit, unsafe handlers first when not all
// do, the rest counted.
func markdownScorecard(b *bytes.Buffer, card []twicetype.HandlerScore, budget int) {
	b.WriteString("### Handler safety scorecard\n\n")
	if len(card) == 0 {
		b.WriteString(noScorecard + "\n\n")
		return
	}
	var head strings.Builder
	head.WriteString("| job type | queue | jobs |")
	for _, c := range twicetype.Conditions {
		head.WriteString(" " + c + " |")
	}
	head.WriteString("\n|---|---|---:|" + strings.Repeat("---|", len(twicetype.Conditions)) + "\n")
	rowText := func(h *twicetype.HandlerScore) string {
		var r strings.Builder
		fmt.Fprintf(&r, "| %s | %s | %d |", mdEscape(h.JobType), mdEscape(scoreQueue(h.Queue)), h.Jobs)
		for _, c := range h.Conditions {
			cell := scoreText(c)
			if c.Verdict == twicetype.VerdictUnsafe {
				cell = "**" + cell + "**"
			}
			r.WriteString(" " + cell + " |")
		}
		r.WriteString("\n")
		return r.String()
	}
	// The rows that fit, unsafe ones first when not all do.
	size := head.Len()
	n := 0
	for _, h := range unsafeFirst(card) {
		size += len(rowText(&h))
		if size > budget {
			break
		}
		n++
	}
	var rows []twicetype.HandlerScore
	if n > 0 {
		rows = scoreRows(card, n)
	}
	if len(rows) > 0 {
		b.WriteString(head.String())
		for _, h := range rows {
			b.WriteString(rowText(&h))
		}
	}
	if more := len(card) - len(rows); more > 0 {
		fmt.Fprintf(b, "\n_… and %d more handlers not shown (--max-bytes); --format json lists them all._\n", more)
	}
	b.WriteString("\n")
}

// junitScorecard is the JUnit suite "scorecard": a test case per handler
// and condition (classname twice.scorecard, named "JOB_TYPE@QUEUE
// condition"). An unsafe condition fails when one of its findings fails
// the audit (--fail-on), so the suite agrees with the exit code, and
// passes with the evidence in <system-out> otherwise; a safe one passes;
// one not exercised is skipped: the audit did not test it.
func junitScorecard(o Options, r *twicetype.Report) junitSuite {
	suite := junitSuite{Name: "scorecard"}
	byFP := make(map[string]*twicetype.Finding, len(r.Findings))
	for i := range r.Findings {
		byFP[fingerprint(&r.Findings[i])] = &r.Findings[i]
	}
	for _, h := range r.Scorecard {
		handler := h.JobType + "@" + scoreQueue(h.Queue)
		for _, c := range h.Conditions {
			tc := junitCase{Classname: "twice.scorecard", Name: clean(handler + " " + c.Condition)}
			switch c.Verdict {
			case twicetype.VerdictNotExercised:
				tc.Skipped = &junitSkipped{Message: "not exercised: the audit never saw this handler " + conditionPhrase(c.Condition)}
			case twicetype.VerdictSafe:
				out := junitCharData(fmt.Sprintf("safe: %s %d times without harm\n", conditionPhrase(c.Condition), c.Exercised))
				tc.SystemOut = &out
			case twicetype.VerdictUnsafe:
				msg := fmt.Sprintf("unsafe: %s %d times, harmful %d times", conditionPhrase(c.Condition), c.Exercised, c.Harmed)
				var text strings.Builder
				fails := false
				for _, fp := range c.Findings {
					fmt.Fprintf(&text, "finding: %s", clean(fp))
					if f := byFP[fp]; f != nil {
						fmt.Fprintf(&text, " %s %s", clean(f.Detector), clean(f.Subject))
						fails = fails || o.fails(f)
					}
					text.WriteString("\n")
				}
				if fails {
					tc.Failure = &junitFailure{Message: clean(msg), Type: "unsafe", Text: clean(msg) + "\n" + text.String()}
				} else {
					out := junitCharData(clean(msg) + fmt.Sprintf(", below --fail-on %s: does not fail the audit\n", o.threshold()) + text.String())
					tc.SystemOut = &out
				}
			}
			suite.add(tc)
		}
	}
	return suite
}

// conditionPhrase says what a condition is, after "the handler".
func conditionPhrase(c string) string {
	switch c {
	case twicetype.CondRunTwice:
		return "run twice"
	case twicetype.CondRunLate:
		return "run late"
	case twicetype.CondPartial:
		return "fail after an effect"
	case twicetype.CondOutOfOrder:
		return "apply updates out of order"
	}
	return c
}

// The JSON shape of the scorecard and the impact.
type jsonHandlerScore struct {
	JobType    string         `json:"job_type"`
	Queue      string         `json:"queue"`
	Jobs       int64          `json:"jobs"`
	Conditions jsonConditions `json:"conditions"`
}

// jsonConditions keeps the conditions in report order.
type jsonConditions struct {
	RunTwice   *jsonCondition `json:"run-twice,omitempty"`
	RunLate    *jsonCondition `json:"run-late,omitempty"`
	Partial    *jsonCondition `json:"partial,omitempty"`
	OutOfOrder *jsonCondition `json:"out-of-order,omitempty"`
}

type jsonCondition struct {
	Verdict   string   `json:"verdict"`
	Exercised int64    `json:"exercised"`
	Harmed    int64    `json:"harmed"`
	Findings  []string `json:"findings"`
}

type jsonImpact struct {
	DuplicatedAmount map[string]float64 `json:"duplicated_amount"`
	Customers        int64              `json:"customers"`
	StaleEntities    int64              `json:"stale_entities"`
}

func toJSONScorecard(card []twicetype.HandlerScore) []jsonHandlerScore {
	out := make([]jsonHandlerScore, len(card))
	for i, h := range card {
		out[i] = jsonHandlerScore{JobType: h.JobType, Queue: h.Queue, Jobs: h.Jobs}
		for _, c := range h.Conditions {
			jc := &jsonCondition{Verdict: c.Verdict, Exercised: c.Exercised, Harmed: c.Harmed, Findings: nonNil(c.Findings)}
			switch c.Condition {
			case twicetype.CondRunTwice:
				out[i].Conditions.RunTwice = jc
			case twicetype.CondRunLate:
				out[i].Conditions.RunLate = jc
			case twicetype.CondPartial:
				out[i].Conditions.Partial = jc
			case twicetype.CondOutOfOrder:
				out[i].Conditions.OutOfOrder = jc
			}
		}
	}
	return out
}

func toJSONImpact(m *twicetype.Impact) *jsonImpact {
	if m == nil {
		return nil
	}
	amounts := m.DuplicatedAmount
	if amounts == nil {
		amounts = map[string]float64{}
	}
	return &jsonImpact{DuplicatedAmount: amounts, Customers: m.Customers, StaleEntities: m.StaleEntities}
}
