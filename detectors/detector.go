// Package detectors holds the ten rules of spec §2 and the state they share.
//
// A Set receives events in event-time order, one at a time, through Process.
// Time only moves through the events themselves: no detector reads a clock.
// Before an event is applied, every deadline strictly before its time fires
// (missing-effect, lost-job, retry-storm windows) and state that has been
// idle longer than the horizon is released. Finish closes the audit at the
// end of input: deadlines at or before the end fire, later ones stay
// pending, and all remaining state is released.
//
// Per job, effect key and entity the Set keeps one record that the
// detectors share, so that each event costs one lookup per index rather
// than one per detector. Each detector owns its own fields in those records.
package detectors

import (
	"time"

	"github.com/twicehq/twice/twicetype"
)

// Detector is one rule of spec §2. Its behaviour is in the methods it also
// implements: eventObserver for events, and the optional hooks below.
type Detector interface {
	// ID returns the detector id of spec §2.
	ID() string
}

type eventObserver interface {
	observe(s *Set, ev *twicetype.Event, r *refs)
}

// advancer is implemented by detectors with deadlines or windows.
type advancer interface {
	// advance fires what is due strictly before t.
	advance(s *Set, t int64)
	// finish fires what is due at or before end and reports pending jobs.
	finish(s *Set, end int64, pending func(job *Job))
}

type jobReleaser interface{ releaseJob(s *Set, j *Job) }
type keyReleaser interface{ releaseKey(s *Set, k *EffectKey) }
type entityReleaser interface{ releaseEntity(s *Set, e *Entity) }
type finisher interface{ finishAll(s *Set) }

// Rule is an expectation (spec §3 expect): every succeeded job of JobType
// produces Count effects of type Effect whose effect_key is Render(job),
// within Within of its success.
type Rule struct {
	JobType string
	Effect  string
	// Render renders the rule's effect_key template for a job; false when
	// the template cannot be rendered for it.
	Render func(j *Job) (string, bool)
	Within time.Duration
	Count  int
}

// Settings are one detector's options (spec §3 detectors), defaults
// filled.
type Settings struct {
	Enabled       bool
	Severity      twicetype.Severity
	MaxPerKey     int
	MaxStartDelay time.Duration
	LostAfter     time.Duration
	Window        time.Duration
	Amplification float64
	MinAttempts   int
	// Budget is the findings allowed before they fail an audit (the CI
	// gate, twicetype.Gate); nil for none. Detection ignores it.
	Budget *twicetype.Budget
}

// DefaultSettings returns the defaults of spec §2 for every detector id.
func DefaultSettings() map[string]Settings {
	m := make(map[string]Settings, len(twicetype.DetectorIDs))
	sev := map[string]twicetype.Severity{
		twicetype.DuplicateEffect:     twicetype.High,
		twicetype.MissingEffect:       twicetype.High,
		twicetype.EffectBeforeFailure: twicetype.Medium,
		twicetype.DuplicateExecution:  twicetype.Low,
		twicetype.OutOfOrder:          twicetype.High,
		twicetype.StaleExecution:      twicetype.Medium,
		twicetype.EffectAfterTerminal: twicetype.High,
		twicetype.LostJob:             twicetype.High,
		twicetype.RetryStorm:          twicetype.Medium,
		twicetype.DeadLetter:          twicetype.Medium,
	}
	for _, id := range twicetype.DetectorIDs {
		m[id] = Settings{
			Enabled:       true,
			Severity:      sev[id],
			MaxPerKey:     1,
			MaxStartDelay: 15 * time.Minute,
			LostAfter:     time.Hour,
			Window:        time.Minute,
			Amplification: 2.0,
			MinAttempts:   20,
		}
	}
	return m
}

// Options configure a Set.
type Options struct {
	Rules []Rule
	// Detectors maps detector ids to settings; missing ids get defaults.
	Detectors map[string]Settings
	// Horizon is how long (event time) a job, effect key or entity is kept
	// after its last event. It is raised to the longest deadline any
	// detector needs. Zero means 24h.
	Horizon time.Duration
	// Redact hashes a field's value before it reaches a finding; nil keeps
	// values as they are. field is an event field name (job_id, key, ...).
	Redact func(field, value string) string
	// Impact, when set, reads the amount, currency and customer of
	// effects: duplicate-effect findings then carry details amount,
	// currency and customers (impact.go), and ImpactOf adds them up.
	Impact *ImpactValues
	// MaxJobs, MaxKeys and MaxEntities cap the records held (0: no cap).
	// Past a cap the record idle the longest is judged and released
	// early, and counted in Evicted: coverage is reduced (a duplicate of
	// an evicted key is not linked to it, an effect of an evicted key no
	// longer meets an expectation), but memory stays bounded whatever the
	// cardinality of the input.
	MaxJobs, MaxKeys, MaxEntities int
	// Live makes the Set track which findings change, for Changes: a
	// sidecar shows findings as they stand instead of waiting for the
	// state behind them to be released.
	Live bool
}

// DefaultHorizon is the horizon when Options.Horizon is zero.
const DefaultHorizon = 24 * time.Hour
