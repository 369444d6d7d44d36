package reports

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/twicehq/twice/gate"
	"github.com/twicehq/twice/twicetype"
)

// The CI gate in every format (twicetype.Gate): which findings are new
// to the baseline, which the baseline accepts, which findings of the
// baseline were fixed, and how far each detector used its budget.

// gateTag says how the gate treats f, for the formats people read: "new"
// (not in the baseline), "in the baseline", "within budget", or "" when
// there is no gate or it says nothing about f.
func gateTag(g *twicetype.Gate, f *twicetype.Finding) string {
	switch {
	case g == nil:
		return ""
	case g.Exempt(f) == "baseline":
		return "in the baseline"
	case g.Exempt(f) == "budget":
		return "within budget"
	case g.IsNew(f):
		return "new"
	}
	return ""
}

// gateExempted counts the findings at or above the threshold the gate
// keeps from failing: accepted by the baseline, within budget.
func gateExempted(r *twicetype.Report, o Options) (accepted, budget int) {
	return gate.Exempted(r, o.threshold())
}

// gateExcused is what the verdict line says of the findings at or above
// the threshold that the gate keeps from failing: ", 3 excused (2 in
// the baseline, 1 within budget)"; "" for none.
func gateExcused(accepted, budget int) string {
	if accepted+budget == 0 {
		return ""
	}
	var parts []string
	if accepted > 0 {
		parts = append(parts, fmt.Sprintf("%d in the baseline", accepted))
	}
	if budget > 0 {
		parts = append(parts, fmt.Sprintf("%d within budget", budget))
	}
	return fmt.Sprintf(", %d excused (%s)", accepted+budget, strings.Join(parts, ", "))
}

// gateNote is what the verdict line adds under a baseline: "; baseline:
// 1 new, 2 accepted, 1 fixed" (of all findings, whatever their severity).
func gateNote(r *twicetype.Report, _ Options) string {
	g := r.Gate
	if g == nil || g.Baseline == "" {
		return ""
	}
	n := 0
	for i := range r.Findings {
		if g.IsNew(&r.Findings[i]) {
			n++
		}
	}
	return fmt.Sprintf("; baseline: %d new, %d accepted, %d fixed", n, len(g.Accepted), len(g.Fixed))
}

// writeGateText writes the baseline and budget sections of the text
// format.
func writeGateText(w io.Writer, p painter, r *twicetype.Report) {
	g := r.Gate
	if g == nil {
		return
	}
	if g.Baseline != "" {
		n := 0
		for i := range r.Findings {
			if g.IsNew(&r.Findings[i]) {
				n++
			}
		}
		fmt.Fprintf(w, "\n%s\n", p.bold("Baseline "+clean(g.Baseline)))
		fmt.Fprintf(w, "  %s new (not in the baseline), %d in the baseline, %d fixed (in the baseline, no longer found)\n",
			plural(n, "finding"), len(g.Accepted), len(g.Fixed))
		shown, more := g.Fixed[:min(len(g.Fixed), listCap*2)], max(0, len(g.Fixed)-listCap*2)
		for _, e := range shown {
			fmt.Fprintf(w, "  fixed  %s %s  %s\n", clean(e.Detector), clean(e.Subject), e.Fingerprint)
		}
		if more > 0 {
			fmt.Fprintf(w, "  … and %d more fixed (--format json lists all)\n", more)
		}
	}
	if len(g.Budgets) > 0 {
		fmt.Fprintf(w, "\n%s\n", p.bold("Budgets"))
		for _, u := range g.Budgets {
			fmt.Fprintf(w, "  %s\n", clean(u.Sentence()))
		}
	}
}

// writeGateMarkdown writes the baseline and budget sections of the
// markdown format.
func writeGateMarkdown(b *bytes.Buffer, r *twicetype.Report) {
	g := r.Gate
	if g == nil {
		return
	}
	if g.Baseline != "" {
		n := 0
		for i := range r.Findings {
			if g.IsNew(&r.Findings[i]) {
				n++
			}
		}
		fmt.Fprintf(b, "\n### Baseline\n\n%s **new** (not in %s), %d in the baseline, %d fixed (in the baseline, no longer found).\n",
			plural(n, "finding"), mdEscape(g.Baseline), len(g.Accepted), len(g.Fixed))
		if len(g.Fixed) > 0 {
			shown, more := g.Fixed[:min(len(g.Fixed), listCap*2)], max(0, len(g.Fixed)-listCap*2)
			fmt.Fprintf(b, "\n<details>\n<summary>Fixed (%d)</summary>\n\n", len(g.Fixed))
			for _, e := range shown {
				fmt.Fprintf(b, "- :heavy_check_mark: %s %s\n", mdEscape(e.Detector), mdEscape(e.Subject))
			}
			if more > 0 {
				fmt.Fprintf(b, "- … and %d more (--format json lists all)\n", more)
			}
			b.WriteString("\n</details>\n")
		}
	}
	if len(g.Budgets) > 0 {
		b.WriteString("\n### Budgets\n\n")
		for _, u := range g.Budgets {
			fmt.Fprintf(b, "- %s\n", mdEscape(u.Sentence()))
		}
	}
}

// jsonGate is the gate in the JSON report: "baseline" lists the new
// findings' fingerprints and the fixed ones; "budgets" the budgets.
type jsonGate struct {
	Baseline *jsonBaseline `json:"baseline,omitempty"`
	Budgets  []jsonBudget  `json:"budgets,omitempty"`
}

type jsonBaseline struct {
	File  string      `json:"file"`
	New   []string    `json:"new"`
	Fixed []jsonFixed `json:"fixed"`
}

type jsonFixed struct {
	Fingerprint string             `json:"fingerprint"`
	Detector    string             `json:"detector,omitempty"`
	Severity    twicetype.Severity `json:"severity,omitempty"`
	Subject     string             `json:"subject,omitempty"`
}

type jsonBudget struct {
	Detector string   `json:"detector"`
	Effect   string   `json:"effect,omitempty"`
	Max      *int     `json:"max,omitempty"`
	MaxRatio *float64 `json:"max_ratio,omitempty"`
	Findings int      `json:"findings"`
	// Of is the denominator of max_ratio, Unit what it counts.
	Of     *int64 `json:"of,omitempty"`
	Unit   string `json:"unit,omitempty"`
	Within bool   `json:"within"`
	// Message says it in words: "duplicate-effect: within budget (3 of 5)".
	Message string `json:"message"`
}

// toJSONGate is the gate of r, nil without one.
func toJSONGate(r *twicetype.Report) *jsonGate {
	g := r.Gate
	if g == nil {
		return nil
	}
	out := &jsonGate{}
	if g.Baseline != "" {
		jb := &jsonBaseline{File: g.Baseline, New: []string{}, Fixed: []jsonFixed{}}
		for i := range r.Findings {
			if f := &r.Findings[i]; g.IsNew(f) {
				jb.New = append(jb.New, fingerprint(f))
			}
		}
		for _, e := range g.Fixed {
			jb.Fixed = append(jb.Fixed, jsonFixed{Fingerprint: e.Fingerprint, Detector: e.Detector, Severity: e.Severity, Subject: e.Subject})
		}
		out.Baseline = jb
	}
	for _, u := range g.Budgets {
		jb := jsonBudget{Detector: u.Detector, Effect: u.Budget.Effect, Findings: u.Findings, Within: u.Within, Message: u.Sentence()}
		if u.Budget.HasMax {
			jb.Max = &u.Budget.Max
		}
		if u.Budget.HasMaxRatio {
			ratio, of := u.Budget.MaxRatio, u.Of
			jb.MaxRatio, jb.Of, jb.Unit = &ratio, &of, u.Unit
		}
		out.Budgets = append(out.Budgets, jb)
	}
	return out
}

// junitGateSuite is the junit suite of the findings the baseline lists
// that this audit no longer found: each a passing test case, so a CI
// test view shows them fixed. Nil without a baseline or fixed findings.
func junitGateSuite(r *twicetype.Report) *junitSuite {
	g := r.Gate
	if g == nil || g.Baseline == "" || len(g.Fixed) == 0 {
		return nil
	}
	s := &junitSuite{Name: "twice.baseline"}
	for _, e := range g.Fixed {
		out := junitCharData(fmt.Sprintf("fixed: in the baseline %s, no longer found\nfingerprint: %s\n", clean(g.Baseline), e.Fingerprint))
		s.add(junitCase{Classname: "twice.baseline", Name: clean("fixed " + e.Detector + " " + e.Subject), SystemOut: &out})
	}
	return s
}

// junitGateNote is the system-out line of a finding the gate keeps from
// failing.
func junitGateNote(g *twicetype.Gate, f *twicetype.Finding) string {
	switch g.Exempt(f) {
	case "baseline":
		return fmt.Sprintf("%s, in the baseline %s: does not fail the audit\n", f.Severity, clean(g.Baseline))
	case "budget":
		return fmt.Sprintf("%s, %s: does not fail the audit\n", f.Severity, clean(g.BudgetOf(f).Sentence()))
	}
	return ""
}
