package config

import (
	"strings"
	"testing"

	"github.com/twicehq/twice/twicetype"
)

func TestParseBudgets(t *testing.T) {
	t.Parallel()
	c := parseOK(t, `
detectors:
  duplicate-effect: {budget: {max_ratio: 0.001, effect: email.sent}}
  lost-job:
    budget: {max: 5}
  retry-storm: {budget: {max: 0, max_ratio: 0.5}}
`)
	want := map[string]*twicetype.Budget{
		twicetype.DuplicateEffect: {MaxRatio: 0.001, HasMaxRatio: true, Effect: "email.sent"},
		twicetype.LostJob:         {Max: 5, HasMax: true},
		twicetype.RetryStorm:      {Max: 0, HasMax: true, MaxRatio: 0.5, HasMaxRatio: true},
		twicetype.MissingEffect:   nil,
	}
	for id, w := range want {
		got := c.Detectors[id].Budget
		if (got == nil) != (w == nil) || got != nil && *got != *w {
			t.Errorf("%s budget = %+v, want %+v", id, got, w)
		}
	}
	if !c.Detectors[twicetype.LostJob].Enabled {
		t.Error("a budget leaves the detector on")
	}
}

func TestParseBudgetErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ src, want string }{
		{"detectors:\n  lost-job: {budget: {}}\n", "twice.yaml:2:22: detectors.lost-job.budget: want max (findings allowed) or max_ratio"},
		{"detectors:\n  lost-job: {budget: {max: -1}}\n", "detectors.lost-job.budget.max: must be at least 0, got -1"},
		{"detectors:\n  lost-job: {budget: {max_ratio: -0.5}}\n", "detectors.lost-job.budget.max_ratio: must be a finite number of at least 0"},
		{"detectors:\n  lost-job: {budget: {max: 1, effect: email.sent}}\n", "detectors.lost-job.budget.effect: applies to duplicate-effect and missing-effect"},
		{"detectors:\n  lost-job: {budget: {maximum: 3}}\n", `detectors.lost-job.budget: unknown key "maximum" (known: max, max_ratio, effect)`},
		{"detectors:\n  lost-job: {budget: 5}\n", "detectors.lost-job.budget"},
		{"detectors:\n  lost-job: {budget: {max: 1.5}}\n", "detectors.lost-job.budget.max: want an integer"},
	} {
		_, err := Parse("twice.yaml", []byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want it to contain %q", tc.src, err, tc.want)
		}
	}
	c := Default()
	d := c.Detectors[twicetype.OutOfOrder]
	d.Budget = &twicetype.Budget{Effect: "x"}
	c.Detectors[twicetype.OutOfOrder] = d
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "detectors.out-of-order.budget: want max") ||
		!strings.Contains(err.Error(), "detectors.out-of-order.budget.effect: applies to") {
		t.Errorf("Validate = %v, want both problems of the budget", err)
	}
}

// Every key a detector takes has a value to show (twice detectors), and
// the keys are those the parser accepts.
func TestDetectorKeys(t *testing.T) {
	t.Parallel()
	c := Default()
	for _, id := range twicetype.DetectorIDs {
		keys := DetectorKeys(id)
		if keys[0] != "enabled" || keys[1] != "severity" || keys[len(keys)-1] != "budget" {
			t.Errorf("%s keys = %v", id, keys)
		}
		for _, k := range ThresholdKeys(id) {
			if v, ok := ThresholdValue(c.Detectors[id], k); !ok || v == "" {
				t.Errorf("%s.%s has no value to show", id, k)
			}
			// The parser takes the key.
			if _, err := Parse("twice.yaml", []byte("detectors:\n  "+id+":\n    "+k+": x\n")); err == nil || strings.Contains(err.Error(), "unknown key") {
				t.Errorf("%s.%s: %v", id, k, err)
			}
		}
	}
	if v, _ := ThresholdValue(c.Detectors[twicetype.StaleExecution], "max_start_delay"); v != "15m" {
		t.Errorf("max_start_delay shown as %q, want 15m", v)
	}
	if v, _ := ThresholdValue(c.Detectors[twicetype.LostJob], "lost_after"); v != "1h" {
		t.Errorf("lost_after shown as %q, want 1h", v)
	}
	if _, ok := ThresholdValue(c.Detectors[twicetype.LostJob], "nope"); ok {
		t.Error("an unknown key has a value")
	}
}
