// Package audit turns a validated configuration into a running audit: it
// builds the engine's options (expectation rules, detector settings,
// redaction) and the collectors for the inputs. The CLI and, later, the
// sidecar share it.
package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"

	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/detectors"
	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/keytemplate"
	"github.com/twicehq/twice/twicetype"
)

// EngineOptions builds engine options from a configuration.
func EngineOptions(cfg *config.Config) engine.Options {
	rules := make([]detectors.Rule, len(cfg.Expect))
	for i, r := range cfg.Expect {
		tmpl := r.EffectKey
		rules[i] = detectors.Rule{
			JobType: r.JobType,
			Effect:  r.Effect,
			Within:  r.Within,
			Count:   r.Count,
			Render: func(j *detectors.Job) (string, bool) {
				return tmpl.Render(keytemplate.Fields{
					Key: j.Key, Entity: j.Entity, JobID: j.ID,
					JobType: j.Type, Queue: j.Queue, Attrs: j.Attrs,
				})
			},
		}
	}
	return engine.Options{
		Detectors: detectors.Options{
			Rules:     rules,
			Detectors: cfg.Detectors,
			Horizon:   cfg.Engine.Horizon,
			Redact:    Redactor(cfg.Redact),
			Impact:    ImpactValues(cfg.Impact),
		},
		KeepEmails:    cfg.KeepEmails,
		Lateness:      cfg.Engine.Lateness,
		ReorderBuffer: cfg.Engine.ReorderBuffer,
	}
}

// Redactor returns the function that hashes the named fields' values, or
// nil when no field is redacted. The same value hashes the same in every
// field, so a redacted job_id still matches across findings.
func Redactor(fields []string) func(field, value string) string {
	if len(fields) == 0 {
		return nil
	}
	set := slices.Clone(fields)
	return func(field, value string) string {
		if !slices.Contains(set, field) {
			return value
		}
		return Redact(value)
	}
}

// Redact hashes a value the way reports show redacted fields:
// "redacted:" and the first 16 hex digits of its SHA-256.
func Redact(value string) string {
	sum := sha256.Sum256([]byte(value))
	return "redacted:" + hex.EncodeToString(sum[:8])
}

// ImpactValues returns what reads the impact paths of a configuration
// from effects and jobs, nil when none is configured.
func ImpactValues(im *config.Impact) *detectors.ImpactValues {
	if im == nil || im.Amount == "" && im.Currency == "" && im.Customer == "" {
		return nil
	}
	parse := func(path string) *keytemplate.Template {
		if path == "" {
			return nil
		}
		t, err := keytemplate.Parse("{{" + path + "}}")
		if err != nil {
			// config.Validate rejects it first.
			return nil
		}
		return t
	}
	amount, currency, customer := parse(im.Amount), parse(im.Currency), parse(im.Customer)
	read := func(f keytemplate.Fields) (a, c, u string) {
		render := func(t *keytemplate.Template) string {
			if t == nil {
				return ""
			}
			v, _ := t.Render(f)
			return v
		}
		return render(amount), render(currency), render(customer)
	}
	return &detectors.ImpactValues{
		Event: func(ev *twicetype.Event) (string, string, string) { return read(keytemplate.FieldsOf(ev)) },
		Job: func(j *detectors.Job) (string, string, string) {
			return read(keytemplate.Fields{Key: j.Key, Entity: j.Entity, JobID: j.ID, JobType: j.Type, Queue: j.Queue, Attrs: j.Attrs})
		},
		CurrencyPath: im.Currency,
		CustomerPath: im.Customer,
	}
}
