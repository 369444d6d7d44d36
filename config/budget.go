package config

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/twicehq/twice/twicetype"
)

// budgetKeys are the keys of detectors.ID.budget.
var budgetKeys = []string{"max", "max_ratio", "effect"}

// BudgetEffectDetectors are the detectors whose findings name their
// effect type (details.effect), so a budget may narrow to one: effect.
var BudgetEffectDetectors = []string{twicetype.DuplicateEffect, twicetype.MissingEffect}

// budget parses detectors.ID.budget: {max: N} and/or {max_ratio: R},
// optionally narrowed by effect: TYPE.
func (p *parser) budget(n *yaml.Node, path, id string) *twicetype.Budget {
	b := &twicetype.Budget{}
	es, _ := p.fields(n, path, budgetKeys)
	for _, e := range es {
		epath := join(path, e.name)
		switch e.name {
		case "max":
			if v, ok := p.integer(e.val, epath); ok {
				b.Max, b.HasMax = v, true
			}
		case "max_ratio":
			if v, ok := p.number(e.val, epath); ok {
				b.MaxRatio, b.HasMaxRatio = v, true
			}
		case "effect":
			b.Effect, _ = p.name(e.val, epath)
		}
	}
	for _, m := range checkBudget(id, b) {
		p.errorf(resolve(n), budgetPath(path, m.key), "%s", m.msg)
	}
	return b
}

// budgetPath is the path of a budget's key, the budget's own for "".
func budgetPath(path, key string) string {
	if key == "" {
		return path
	}
	return join(path, key)
}

type budgetProblem struct{ key, msg string }

// checkBudget checks a detector's budget; nil means valid.
func checkBudget(id string, b *twicetype.Budget) []budgetProblem {
	var out []budgetProblem
	if !b.HasMax && !b.HasMaxRatio {
		out = append(out, budgetProblem{"", "want max (findings allowed) or max_ratio (findings per effect or job), e.g. {max: 5}"})
	}
	if b.HasMax && b.Max < 0 {
		out = append(out, budgetProblem{"max", fmt.Sprintf("must be at least 0, got %d", b.Max)})
	}
	if b.HasMaxRatio && (math.IsNaN(b.MaxRatio) || math.IsInf(b.MaxRatio, 0) || b.MaxRatio < 0) {
		out = append(out, budgetProblem{"max_ratio", fmt.Sprintf("must be a finite number of at least 0, got %v", b.MaxRatio)})
	}
	if b.Effect != "" && !slices.Contains(BudgetEffectDetectors, id) {
		out = append(out, budgetProblem{"effect", fmt.Sprintf("applies to %s and %s, whose findings name their effect type; %s findings do not",
			BudgetEffectDetectors[0], BudgetEffectDetectors[1], id)})
	}
	return out
}

// DetectorKeys lists the keys detectors.ID takes in twice.yaml, in the
// order error messages list them: enabled, severity, the detector's
// thresholds, budget.
func DetectorKeys(id string) []string {
	return append(append([]string{"enabled", "severity"}, thresholdKeys[id]...), "budget")
}

// ThresholdKeys lists the threshold keys of detector id (max_per_key,
// lost_after, ...), nil for a detector without thresholds.
func ThresholdKeys(id string) []string { return slices.Clone(thresholdKeys[id]) }

// ThresholdValue writes the value d has for a threshold key as
// twice.yaml writes it ("15m0s" as "15m"); false for an unknown key.
func ThresholdValue(d Detector, key string) (string, bool) {
	switch key {
	case "max_per_key":
		return strconv.Itoa(d.MaxPerKey), true
	case "max_start_delay":
		return ShortDuration(d.MaxStartDelay), true
	case "lost_after":
		return ShortDuration(d.LostAfter), true
	case "window":
		return ShortDuration(d.Window), true
	case "amplification":
		return strconv.FormatFloat(d.Amplification, 'f', -1, 64), true
	case "min_attempts":
		return strconv.Itoa(d.MinAttempts), true
	}
	return "", false
}

// ShortDuration writes d as a Go duration without zero units: 15m, 1h,
// 1h30m, 90s.
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
