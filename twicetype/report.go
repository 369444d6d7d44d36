package twicetype

import "strconv"

// ReportVersion is the version of the JSON report format (spec §5).
const ReportVersion = 1

// Report is what an audit produced: a summary and findings, most severe
// first, then by detector id, then by subject.
type Report struct {
	Summary  Summary
	Findings []Finding
	// Scorecard is the handler safety scorecard, one row per job type
	// and queue the audit saw, sorted by job type then queue; nil when
	// the audit saw no job with a job_type.
	Scorecard []HandlerScore
	// Impact is what the findings put at stake; nil unless the
	// configuration names impact attrs.
	Impact *Impact
	// Gate is what the CI gate decided (a baseline, detector budgets);
	// nil without either.
	Gate *Gate
}

// Summary counts what an audit read (spec §5). Times are Unix nanoseconds
// and are meaningful only when Events > 0.
type Summary struct {
	// Events counts valid events once each.
	Events int64
	// RepeatedIDs counts valid lines whose identity was already seen.
	RepeatedIDs int64
	// Malformed counts lines that were not valid events.
	Malformed int64
	// Late counts events that arrived after the watermark had passed their
	// time; they are still audited, in arrival order.
	Late int64
	// Jobs counts distinct job ids.
	Jobs int64
	// Effects counts effect events.
	Effects int64
	// EffectsByType counts effect events per effect type (what a
	// detector budget's max_ratio is judged by); nil without effects.
	EffectsByType map[string]int64
	// Pending counts distinct jobs whose missing-effect or lost-job deadline
	// lies after the end of input.
	Pending int64
	From    int64
	To      int64
	// Findings counts findings per enabled detector id.
	Findings map[string]int
	// MalformedLines lists the first malformed lines (at most
	// MaxMalformedLines); Malformed has the full count.
	MalformedLines []Malformed
	// Evicted counts state records dropped by a memory cap before they
	// could no longer produce a finding; non-zero means reduced coverage.
	Evicted int64
	// Warnings say what the audit could not check (spec §5
	// summary.warnings): a report without findings is no all-clear while
	// it has any. Empty when there is nothing to say.
	Warnings []Warning
	// Rules has, per expect rule of the configuration (same index), how
	// many jobs of its job_type the audit saw and for how many its
	// effect_key template rendered: what warnings about rules are made
	// from. Not a field of the JSON report; nil without rules.
	Rules []RuleCoverage
}

// RuleCoverage is what one expect rule could check.
type RuleCoverage struct {
	// Jobs counts the jobs of the rule's job_type.
	Jobs int64
	// Rendered counts those of them for which the rule's effect_key
	// template rendered (each sets an expectation once it succeeds).
	Rendered int64
}

// Warning is one thing an audit could not check.
type Warning struct {
	// Code names the kind of warning, one of the Warn constants; it is
	// stable across runs (a CI test case is named after it).
	Code string
	// Subject tells warnings of one code apart (the rule a warning is
	// about), "" when there is one of its code.
	Subject string
	// Message is the sentence for people: what was not checked and how
	// to fix it.
	Message string
}

// The warning codes.
const (
	// WarnNoEvents: the input held no line at all.
	WarnNoEvents = "no-events"
	// WarnAllMalformed: every line of the input was malformed.
	WarnAllMalformed = "all-malformed"
	// WarnSecondsTS: integer ts values that, read as Unix milliseconds,
	// fall before 2001: most likely written in seconds.
	WarnSecondsTS = "seconds-ts"
	// WarnRuleNoJobs: an expect rule whose job_type no job had.
	WarnRuleNoJobs = "rule-no-jobs"
	// WarnRuleNeverRendered: an expect rule whose effect_key template
	// rendered for none of its jobs.
	WarnRuleNeverRendered = "rule-never-rendered"
	// WarnEvicted: state dropped by a memory cap.
	WarnEvicted = "evicted"
)

// MaxMalformedLines bounds Summary.MalformedLines.
const MaxMalformedLines = 1000

// Malformed is one line that was not a valid event.
type Malformed struct {
	Source string
	Line   int64
	Reason string
}

// Error formats the malformed line as "source:line: reason".
func (m Malformed) Error() string {
	return m.Source + ":" + strconv.FormatInt(m.Line, 10) + ": " + m.Reason
}
