// Package config reads twice.yaml (spec §3): where events come from, which
// effects each job type must produce, detector thresholds, severities and
// switches, which fields reports hash, and how the engine buffers events.
//
// Load and Parse check a file strictly: an unknown key, a duplicate key, a
// value of the wrong type or out of range is an error that names the file,
// line, column and key path. Every problem is reported, joined with
// errors.Join. Everything is optional; an empty file is Default.
package config

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twicehq/twice/detectors"
	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/keytemplate"
	"github.com/twicehq/twice/twicetype"
)

// Config is a whole twice.yaml.
type Config struct {
	// Sources are the inputs the configuration names, in file order.
	Sources []Source
	// Expect are the expectation rules, in file order.
	Expect []Rule
	// Detectors holds one entry per id in twicetype.DetectorIDs after Load,
	// Parse or Default, each with every field set (defaults where the file
	// says nothing, also for thresholds of other detectors).
	Detectors map[string]Detector
	// Redact names the fields hashed before they reach any report: id,
	// job_id, key, effect_key, entity, queue, job_type, effect, error.
	Redact []string
	// Engine tunes how events are buffered and how long state is kept.
	Engine Engine
}

// Source is one input. Type is "file" (the only type for now): Paths are
// JSON Lines files, "-" for stdin, ".gz" read as gzip, used as written
// (relative paths are relative to the working directory).
type Source struct {
	// Name names the source in reports and on the command line; Load sets
	// it to the first path when the file gives none. Names are unique.
	Name string
	// Type is the collector type; Load sets "file" when the file gives
	// none.
	Type  string
	Paths []string
	// Line is where the source is written in the file, 0 when built in
	// code.
	Line int
}

// Rule is one expectation: every job of JobType that succeeds must produce
// Count effects of type Effect with the effect_key EffectKey renders for
// the job, within Within of its job.succeeded.
type Rule struct {
	JobType string
	Effect  string
	// EffectKey renders the effect_key expected of a job. It also links
	// effects of type Effect to the jobs that render their effect_key.
	EffectKey *keytemplate.Template
	// Within defaults to DefaultWithin when the file gives none.
	Within time.Duration
	// Count defaults to 1.
	Count int
	// Line is where the rule is written in the file, 0 when built in code.
	Line int
}

// Detector holds one detector's switch, severity and thresholds; it is
// the detectors package's Settings, so the engine takes it as it is. Every
// entry carries every threshold; each detector reads only its own:
// duplicate-effect MaxPerKey, stale-execution MaxStartDelay, lost-job
// LostAfter, retry-storm Window, Amplification and MinAttempts.
type Detector = detectors.Settings

// Engine tunes the audit engine.
type Engine struct {
	// Lateness is how far behind the latest event time an event may arrive
	// and still be put in order. LatenessUnbounded (the default) bounds
	// the reorder buffer only by ReorderBuffer; a file gives a duration
	// of at least 0.
	Lateness time.Duration
	// ReorderBuffer is the most events held for reordering; default
	// DefaultReorderBuffer, at least 1.
	ReorderBuffer int
	// Horizon is how long, in event time, state for a job, effect key or
	// entity is kept after its last activity; default DefaultHorizon,
	// greater than 0.
	Horizon time.Duration
}

// Defaults that are not detector thresholds.
const (
	// DefaultWithin is a rule's within when the file gives none.
	DefaultWithin = 5 * time.Minute
	// LatenessUnbounded is Engine.Lateness when only ReorderBuffer bounds
	// the reorder buffer.
	LatenessUnbounded time.Duration = -1
	// DefaultReorderBuffer is Engine.ReorderBuffer by default.
	DefaultReorderBuffer = engine.DefaultReorderBuffer
	// DefaultHorizon is Engine.Horizon by default.
	DefaultHorizon = detectors.DefaultHorizon
	// MaxDuration bounds every duration, so that event time plus any
	// deadline stays far inside the range of Unix nanoseconds.
	MaxDuration = 10 * 365 * 24 * time.Hour
)

// thresholdKeys lists the keys each detector takes besides enabled and
// severity.
var thresholdKeys = map[string][]string{
	twicetype.DuplicateEffect: {"max_per_key"},
	twicetype.StaleExecution:  {"max_start_delay"},
	twicetype.LostJob:         {"lost_after"},
	twicetype.RetryStorm:      {"window", "amplification", "min_attempts"},
}

// redactFields are the fields redact may name.
var redactFields = []string{"id", "job_id", "key", "effect_key", "entity", "queue", "job_type", "effect", "error"}

// sourceTypes are the known source types.
var sourceTypes = []string{"file"}

// Default returns the configuration of an empty twice.yaml: no sources, no
// expectations, every detector on with spec §2's defaults.
func Default() *Config {
	c := &Config{
		Detectors: make(map[string]Detector, len(twicetype.DetectorIDs)),
		Engine: Engine{
			Lateness:      LatenessUnbounded,
			ReorderBuffer: DefaultReorderBuffer,
			Horizon:       DefaultHorizon,
		},
	}
	defaults := detectors.DefaultSettings()
	for _, id := range twicetype.DetectorIDs {
		c.Detectors[id] = defaults[id]
	}
	return c
}

// Error is one problem in a configuration. Validate leaves File, Line and
// Column empty.
type Error struct {
	File   string
	Line   int
	Column int
	// Path is the key path of the value, such as expect[0].within or
	// detectors.lost-job; "" for the top level.
	Path string
	Msg  string
}

// Error formats the error as "file:line:col: path: msg", leaving out the
// parts that are unknown or empty.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if e.File != "" {
			b.WriteString(":")
		}
		b.WriteString(strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(e.Column))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Validate checks a configuration built in code by the rules Parse applies
// to a file. It does not fill in defaults: start from Default. Problems are
// joined with errors.Join.
func (c *Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, &Error{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	names := map[string]int{}
	for i, s := range c.Sources {
		path := fmt.Sprintf("sources[%d]", i)
		if !slices.Contains(sourceTypes, s.Type) {
			add(path+".type", "%s", unknownSourceType(s.Type))
		}
		if s.Name == "" {
			add(path+".name", "empty")
		} else if j, dup := names[s.Name]; dup {
			add(path+".name", "%s", duplicateSource(s.Name, j))
		} else {
			names[s.Name] = i
		}
		if len(s.Paths) == 0 {
			add(path+".paths", "no paths")
		}
		for j, p := range s.Paths {
			if p == "" {
				add(fmt.Sprintf("%s.paths[%d]", path, j), "empty")
			}
		}
	}
	for i, r := range c.Expect {
		path := fmt.Sprintf("expect[%d]", i)
		if r.JobType == "" {
			add(path+".job_type", "empty")
		}
		if r.Effect == "" {
			add(path+".effect", "empty")
		}
		if r.EffectKey == nil {
			add(path+".effect_key", "no template")
		}
		if msg := checkPositive(r.Within); msg != "" {
			add(path+".within", "%s", msg)
		}
		if msg := checkAtLeast1(r.Count); msg != "" {
			add(path+".count", "%s", msg)
		}
	}
	for _, id := range twicetype.DetectorIDs {
		d, ok := c.Detectors[id]
		path := "detectors." + id
		if !ok {
			add(path, "no entry (start from config.Default())")
			continue
		}
		if d.Severity < twicetype.Low || d.Severity > twicetype.Critical {
			add(path+".severity", "%s", unknownSeverity(d.Severity.String()))
		}
		for _, key := range thresholdKeys[id] {
			if msg := checkThreshold(key, &d); msg != "" {
				add(path+"."+key, "%s", msg)
			}
		}
	}
	var unknown []string
	for id := range c.Detectors {
		if !slices.Contains(twicetype.DetectorIDs, id) {
			unknown = append(unknown, id)
		}
	}
	slices.Sort(unknown)
	for _, id := range unknown {
		add("detectors", "%s", unknownDetector(id))
	}
	seen := map[string]bool{}
	for i, f := range c.Redact {
		path := fmt.Sprintf("redact[%d]", i)
		if msg := checkRedact(f, seen); msg != "" {
			add(path, "%s", msg)
		}
	}
	if c.Engine.Lateness < 0 && c.Engine.Lateness != LatenessUnbounded {
		add("engine.lateness", "must not be negative (or LatenessUnbounded), got %v", c.Engine.Lateness)
	}
	if msg := checkAtLeast1(c.Engine.ReorderBuffer); msg != "" {
		add("engine.reorder_buffer", "%s", msg)
	}
	if msg := checkPositive(c.Engine.Horizon); msg != "" {
		add("engine.horizon", "%s", msg)
	}
	return errors.Join(errs...)
}

// checkThreshold checks the detector field that key sets; "" means valid.
func checkThreshold(key string, d *Detector) string {
	switch key {
	case "max_per_key":
		return checkAtLeast1(d.MaxPerKey)
	case "max_start_delay":
		return checkPositive(d.MaxStartDelay)
	case "lost_after":
		return checkPositive(d.LostAfter)
	case "window":
		return checkPositive(d.Window)
	case "amplification":
		return checkAmplification(d.Amplification)
	case "min_attempts":
		return checkAtLeast1(d.MinAttempts)
	}
	return "unknown threshold " + key
}

func checkPositive(d time.Duration) string {
	if d <= 0 {
		return fmt.Sprintf("must be greater than 0, got %v", d)
	}
	if d > MaxDuration {
		return fmt.Sprintf("must be at most %v (ten years), got %v", MaxDuration, d)
	}
	return ""
}

func checkAtLeast1(n int) string {
	if n < 1 {
		return fmt.Sprintf("must be at least 1, got %d", n)
	}
	return ""
}

func checkAmplification(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Sprintf("must be a finite number, got %v", f)
	}
	if f < 1 {
		return fmt.Sprintf("must be at least 1, got %v", f)
	}
	return ""
}

// checkRedact checks one redact entry against the known fields and those
// seen before it, and records it.
func checkRedact(f string, seen map[string]bool) string {
	if !slices.Contains(redactFields, f) {
		return fmt.Sprintf("unknown field %q (known: %s)", f, strings.Join(redactFields, ", "))
	}
	if seen[f] {
		return fmt.Sprintf("%q is listed twice", f)
	}
	seen[f] = true
	return ""
}

func unknownSourceType(t string) string {
	return fmt.Sprintf("unknown source type %q (known: %s)", t, strings.Join(sourceTypes, ", "))
}

func duplicateSource(name string, first int) string {
	return fmt.Sprintf("duplicate source name %q (also sources[%d])", name, first)
}

func unknownDetector(id string) string {
	return fmt.Sprintf("unknown detector %q (known: %s)", id, strings.Join(twicetype.DetectorIDs, ", "))
}

func unknownSeverity(s string) string {
	return fmt.Sprintf("unknown severity %q (known: critical, high, medium, low)", s)
}
