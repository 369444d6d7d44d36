package twicetype

import (
	"fmt"
	"strconv"
)

// The CI gate: which findings fail an audit besides their severity. A
// baseline (twice audit --baseline) lists accepted findings by
// fingerprint: they are reported but never fail. A detector budget
// (detectors.ID.budget in twice.yaml) lets a noisy system have a few
// findings of a detector: while the detector stays within its budget its
// findings are reported but do not fail.

// Budget is a detector's allowance of findings. Within it when every
// bound set holds; a budget with no bound set allows nothing.
type Budget struct {
	// Max is the most findings allowed; HasMax says it is set.
	Max    int
	HasMax bool
	// MaxRatio is the most findings allowed per unit of the
	// denominator: effects of type Effect when Effect is set (and then
	// only findings whose details.effect is Effect count), otherwise
	// effects for the detectors whose subject is an effect_key
	// (duplicate-effect, effect-after-terminal) and jobs for the others.
	// HasMaxRatio says it is set.
	MaxRatio    float64
	HasMaxRatio bool
	// Effect narrows the budget to findings about one effect type.
	Effect string
}

// String writes the budget as configured: "max 5", "max_ratio 0.001 of
// email.sent".
func (b Budget) String() string {
	var s string
	if b.HasMax {
		s = "max " + strconv.Itoa(b.Max)
	}
	if b.HasMaxRatio {
		if s != "" {
			s += ", "
		}
		s += "max_ratio " + strconv.FormatFloat(b.MaxRatio, 'g', -1, 64)
	}
	if b.Effect != "" {
		s += " of " + b.Effect
	}
	return s
}

// Counts reports whether the budget counts f, a finding of its detector.
func (b Budget) Counts(f *Finding) bool {
	if b.Effect == "" {
		return true
	}
	e, _ := f.Details["effect"].(string)
	return e == b.Effect
}

// BaselineEntry is one accepted finding of a baseline.
type BaselineEntry struct {
	Fingerprint string
	Detector    string
	Subject     string
	Severity    Severity
}

// BudgetUse is how far one detector used its budget in an audit.
type BudgetUse struct {
	Detector string
	Budget   Budget
	// Findings counts the detector's findings the budget counts.
	Findings int
	// Of is the denominator of MaxRatio (effects of the type, or jobs);
	// Unit names it ("email.sent effects", "jobs").
	Of   int64
	Unit string
	// Within says the findings stay within every bound: they do not
	// fail the audit.
	Within bool
	// Unjudged says the ratio could not be judged (nothing of its unit
	// was counted): the budget does not apply and Within is false.
	Unjudged bool
}

// Sentence says how the budget was used: "duplicate-effect: within
// budget (3 of 5)", "duplicate-effect: over budget (12 findings; 0.0024
// of 5000 email.sent effects, max_ratio 0.001)".
func (u BudgetUse) Sentence() string {
	word := "over budget"
	if u.Within {
		word = "within budget"
	}
	if u.Unjudged {
		return fmt.Sprintf("%s: budget not applied: no %s were counted to judge max_ratio %s by",
			u.Detector, u.Unit, strconv.FormatFloat(u.Budget.MaxRatio, 'g', -1, 64))
	}
	what := u.Detector
	if u.Budget.Effect != "" {
		what += " (" + u.Budget.Effect + ")"
	}
	var parts []string
	if u.Budget.HasMax {
		parts = append(parts, fmt.Sprintf("%d of %d", u.Findings, u.Budget.Max))
	}
	if u.Budget.HasMaxRatio {
		ratio := 0.0
		if u.Of > 0 {
			ratio = float64(u.Findings) / float64(u.Of)
		}
		parts = append(parts, fmt.Sprintf("%d per %d %s = %s, max_ratio %s", u.Findings, u.Of, u.Unit,
			strconv.FormatFloat(ratio, 'g', 4, 64), strconv.FormatFloat(u.Budget.MaxRatio, 'g', -1, 64)))
	}
	if len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("%d findings, no bound set", u.Findings))
	}
	s := what + ": " + word + " ("
	for i, p := range parts {
		if i > 0 {
			s += "; "
		}
		s += p
	}
	return s + ")"
}

// Gate is what the CI gate decided for a report: set by twice audit when
// it has a baseline or a budget, nil otherwise.
type Gate struct {
	// Baseline names the baseline file, "" without one.
	Baseline string
	// Accepted holds the fingerprints of this report's findings that
	// the baseline lists: reported, never failing.
	Accepted map[string]bool
	// Fixed lists the baseline's findings this audit did not find, in
	// the baseline's order.
	Fixed []BaselineEntry
	// Budgets has one entry per detector with a budget, in the order
	// of DetectorIDs.
	Budgets []BudgetUse
}

// Exempt says why f does not fail the audit whatever its severity —
// "baseline" (accepted) or "budget" (its detector is within budget) —
// or "" when its severity decides. A nil Gate exempts nothing.
func (g *Gate) Exempt(f *Finding) string {
	if g == nil {
		return ""
	}
	if g.Accepted[findingFP(f)] {
		return "baseline"
	}
	if u := g.BudgetOf(f); u != nil && u.Within {
		return "budget"
	}
	return ""
}

// IsNew reports whether the audit has a baseline and f is not in it.
func (g *Gate) IsNew(f *Finding) bool {
	return g != nil && g.Baseline != "" && !g.Accepted[findingFP(f)]
}

// findingFP is f's fingerprint, derived from detector and subject when
// the detector left it empty.
func findingFP(f *Finding) string {
	if f.Fingerprint != "" {
		return f.Fingerprint
	}
	return Fingerprint(f.Detector, f.Subject)
}

// BudgetOf returns the use of the budget that counts f, nil when none
// does.
func (g *Gate) BudgetOf(f *Finding) *BudgetUse {
	if g == nil {
		return nil
	}
	for i := range g.Budgets {
		u := &g.Budgets[i]
		if u.Detector == f.Detector && u.Budget.Counts(f) {
			return u
		}
	}
	return nil
}
