// Package reports writes the report of an audit in the formats its readers
// use: text for a terminal, json for scripts (spec §5), markdown for CI job
// summaries and pull-request comments, junit for CI test views, and html
// for a browser: one self-contained page with charts and each finding's
// story.
//
// Every format renders the whole report in memory first, so a report that
// cannot be encoded writes nothing, and w sees a single Write.
package reports

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/twicehq/twice/story"
	"github.com/twicehq/twice/twicetype"
)

// Reporter writes a report in one format.
type Reporter interface {
	// Write writes r to w. It writes nothing when r cannot be encoded.
	Write(w io.Writer, r *twicetype.Report) error
}

// Options tune a Reporter.
type Options struct {
	// Color turns on ANSI colours in the text format; the caller decides
	// (a terminal, --color). Other formats ignore it.
	Color bool
	// Source names what was audited (files, a source from the config) for
	// headers. Empty means unnamed.
	Source string
	// StrictCoverage says that warnings fail the audit (twice audit
	// --strict-coverage): junit writes them as failures rather than
	// skipped test cases. Other formats show warnings the same either way.
	StrictCoverage bool
	// FailOn is the --fail-on threshold: findings at or above it fail the
	// audit. SeverityNone, the zero value, stands for Low (any finding
	// fails), as twice audit's default; NeverFail is --fail-on none.
	// Every format but json says pass or fail by it, and junit writes
	// findings below it as passing test cases.
	FailOn twicetype.Severity
	// NeverFail says that no finding fails the audit (--fail-on none).
	NeverFail bool
	// Top caps the findings the text format lists per group (--top),
	// and the html format per detector; 0 lists them all. The rest are
	// counted.
	Top int
	// GroupBy is what the text format groups findings by: GroupDetector
	// ("" too), GroupJobType or GroupQueue.
	GroupBy string
	// MaxBytes caps the size of the markdown report (--max-bytes); 0 is
	// DefaultMarkdownMaxBytes. Findings that do not fit are counted.
	MaxBytes int
	// Stories holds, per finding fingerprint, what happened around the
	// finding (package story: the events of its jobs, effect key and
	// entity): the html format tells the story of each finding it
	// shows. Nil, or no entry, leaves a finding's story out. The events
	// are shown as they are: redact them before.
	Stories map[string]*story.Story
	// Timeline has the audit's events per time bucket for the html
	// format's chart; nil charts the findings alone.
	Timeline *Timeline

	// gate is the report's CI gate (Report.Gate), set by each format's
	// Write: findings it accepts or keeps within budget do not fail.
	gate *twicetype.Gate
}

// The values of Options.GroupBy.
const (
	GroupDetector = "detector"
	GroupJobType  = "job_type"
	GroupQueue    = "queue"
)

// GroupBys lists the values Options.GroupBy accepts, the default first.
var GroupBys = []string{GroupDetector, GroupJobType, GroupQueue}

// DefaultTop is the number of findings per group the text format of twice
// audit lists by default.
const DefaultTop = 10

// DefaultMarkdownMaxBytes is the default cap of a markdown report: what a
// GitHub pull-request comment holds (65,536 characters).
const DefaultMarkdownMaxBytes = 64 << 10

// threshold returns the severity at or above which findings fail the
// audit, SeverityNone when none does.
func (o Options) threshold() twicetype.Severity {
	if o.NeverFail {
		return twicetype.SeverityNone
	}
	return max(o.FailOn, twicetype.Low)
}

// fails reports whether f fails the audit under o: at or above the
// threshold, and neither accepted by the baseline nor within its
// detector's budget.
func (o Options) fails(f *twicetype.Finding) bool {
	t := o.threshold()
	return t != twicetype.SeverityNone && f.Severity >= t && o.gate.Exempt(f) == ""
}

// verdict says whether the audit passes under o, in one line that starts
// with PASS or FAIL and says why, with the counts behind it. It decides as
// twice audit's exit code does: findings at or above --fail-on fail, then,
// under StrictCoverage, warnings.
func verdict(r *twicetype.Report, o Options) (pass bool, line string) {
	o.gate = r.Gate
	failing := 0
	for i := range r.Findings {
		if o.fails(&r.Findings[i]) {
			failing++
		}
	}
	accepted, budget := gateExempted(r, o)
	below := len(r.Findings) - failing - accepted - budget
	t := o.threshold()
	flag := "--fail-on " + t.String()
	warned := len(r.Summary.Warnings)
	switch {
	case failing > 0:
		line = fmt.Sprintf("FAIL: %s at or above %s (%s)", plural(failing, "finding"), t, flag)
		if below > 0 {
			line += fmt.Sprintf(", %d below", below)
		}
		line += gateExcused(accepted, budget)
	case o.StrictCoverage && warned > 0:
		line = fmt.Sprintf("FAIL: %s under --strict-coverage: not everything was checked", plural(warned, "warning"))
		if len(r.Findings) > 0 {
			line += fmt.Sprintf("; %s, none at or above %s (%s)", plural(len(r.Findings), "finding"), t, flag)
		}
	case t == twicetype.SeverityNone:
		pass, line = true, fmt.Sprintf("PASS: %s, none fails the audit (%s)", plural(len(r.Findings), "finding"), flag)
	case accepted+budget > 0:
		pass, line = true, fmt.Sprintf("PASS: no finding at or above %s fails (%s)", t, flag)
		if below > 0 {
			line += fmt.Sprintf(", %d below", below)
		}
		line += gateExcused(accepted, budget)
	default:
		pass, line = true, fmt.Sprintf("PASS: no finding at or above %s (%s)", t, flag)
		if below > 0 {
			line += fmt.Sprintf(", %d below", below)
		}
	}
	line += gateNote(r, o)
	if pass && warned > 0 {
		line += fmt.Sprintf("; %s: not everything was checked", plural(warned, "warning"))
	}
	return pass, line
}

// plural writes n and noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// Formats lists the format names New accepts, the default first.
var Formats = []string{"text", "json", "markdown", "junit", "html"}

// New returns the Reporter for format, one of Formats.
func New(format string, opts Options) (Reporter, error) {
	switch format {
	case "text":
		return &textReporter{opts: opts}, nil
	case "json":
		return &jsonReporter{}, nil
	case "markdown":
		return &markdownReporter{opts: opts}, nil
	case "junit":
		return &junitReporter{opts: opts}, nil
	case "html":
		return &htmlReporter{opts: opts}, nil
	}
	return nil, fmt.Errorf("unknown report format %q (known: %s)", format, strings.Join(Formats, ", "))
}

var errNilReport = errors.New("reports: nil report")

// listCap bounds the jobs and events listed per finding in the formats
// people read; json lists them all.
const listCap = 10

// malformedCap bounds the malformed lines listed in the formats people read.
const malformedCap = 20

// capList returns the first n items of list and how many it left off.
func capList(list []string, n int) ([]string, int) {
	if len(list) <= n {
		return list, 0
	}
	return list[:n], len(list) - n
}

// joinCapped joins at most listCap items of list, each passed through
// quote, with ", " and says how many more there were.
func joinCapped(list []string, quote func(string) string) string {
	shown, more := capList(list, listCap)
	parts := make([]string, len(shown))
	for i, s := range shown {
		parts[i] = quote(s)
	}
	out := strings.Join(parts, ", ")
	if more > 0 {
		out += fmt.Sprintf(" … and %d more", more)
	}
	return out
}

// detectorCount is one row of the per-detector table.
type detectorCount struct {
	ID    string
	Count int
	// Severity is the highest severity among the detector's findings,
	// SeverityNone when it has none.
	Severity twicetype.Severity
}

// detectorCounts lists the detectors of Summary.Findings in the order of
// twicetype.DetectorIDs, then ids unknown to it sorted. A detector that has
// findings but is missing from Summary.Findings is listed too, with the
// number of its findings, so no finding goes unaccounted.
func detectorCounts(r *twicetype.Report) []detectorCount {
	worst := map[string]twicetype.Severity{}
	found := map[string]int{}
	for i := range r.Findings {
		f := &r.Findings[i]
		found[f.Detector]++
		worst[f.Detector] = max(worst[f.Detector], f.Severity)
	}
	counts := make(map[string]int, len(r.Summary.Findings)+len(found))
	for id, n := range r.Summary.Findings {
		counts[id] = n
	}
	for id, n := range found {
		if _, ok := counts[id]; !ok {
			counts[id] = n
		}
	}
	rows := make([]detectorCount, 0, len(counts))
	for _, id := range twicetype.DetectorIDs {
		if n, ok := counts[id]; ok {
			rows = append(rows, detectorCount{ID: id, Count: n, Severity: worst[id]})
			delete(counts, id)
		}
	}
	rest := make([]string, 0, len(counts))
	for id := range counts {
		rest = append(rest, id)
	}
	slices.Sort(rest)
	for _, id := range rest {
		rows = append(rows, detectorCount{ID: id, Count: counts[id], Severity: worst[id]})
	}
	return rows
}

// group is the findings of one detector, in report order.
type group struct {
	Detector string
	Findings []*twicetype.Finding
}

// groupFindings groups findings by detector; groups come in the order their
// first finding appears in the report.
func groupFindings(fs []twicetype.Finding) []group {
	return groupFindingsBy(fs, func(f *twicetype.Finding) string { return f.Detector })
}

// groupFindingsBy groups findings by key (stored in group.Detector); groups
// come in the order their first finding appears in the report, so the
// group of the most severe finding comes first.
func groupFindingsBy(fs []twicetype.Finding, key func(*twicetype.Finding) string) []group {
	var groups []group
	index := map[string]int{}
	for i := range fs {
		f := &fs[i]
		k := key(f)
		g, ok := index[k]
		if !ok {
			g = len(groups)
			index[k] = g
			groups = append(groups, group{Detector: k})
		}
		groups[g].Findings = append(groups[g].Findings, f)
	}
	return groups
}

// fingerprint returns the finding's fingerprint, derived from detector and
// subject when the detector left it empty.
func fingerprint(f *twicetype.Finding) string {
	if f.Fingerprint != "" {
		return f.Fingerprint
	}
	return twicetype.Fingerprint(f.Detector, f.Subject)
}

// timeRange formats the summary's event time range, "none" without events.
func timeRange(s *twicetype.Summary) string {
	if s.Events == 0 {
		return "none"
	}
	return fmt.Sprintf("%s to %s (%s)", twicetype.FormatTime(s.From), twicetype.FormatTime(s.To),
		time.Duration(s.To-s.From))
}

// noFindings is what the formats for people say when there is no
// finding, depending on whether the audit checked everything.
func noFindings(s *twicetype.Summary) string {
	if len(s.Warnings) > 0 {
		return "No findings, but not everything was checked: see the warnings."
	}
	return "No findings."
}

// malformedLeftOff says how many malformed lines a list of shown lines
// leaves off, counting those Summary.MalformedLines itself did not keep.
func malformedLeftOff(s *twicetype.Summary, shown int) int64 {
	return max(s.Malformed, int64(len(s.MalformedLines))) - int64(shown)
}

// clean makes text from events safe to show: control characters (newlines,
// tabs, ANSI escapes), bidirectional controls and invalid UTF-8 are written
// as Go escapes, so event data can neither break the layout nor drive the
// terminal.
func clean(s string) string {
	if !needsClean(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafeRune(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func needsClean(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || unsafeRune(r) {
			return true
		}
		i += size
	}
	return false
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
}

// detailPairs formats details as clean key=value pairs sorted by key.
func detailPairs(d map[string]any) []string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = clean(k) + "=" + formatValue(d[k])
	}
	return pairs
}

// formatValue formats one details value for people: scalars as written,
// strings quoted when they would be ambiguous, times in the report layout,
// and anything else as compact JSON (maps with sorted keys).
func formatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return quoteIfNeeded(x)
	case time.Time:
		return twicetype.FormatTime(x.UnixNano())
	case error:
		return quoteIfNeeded(x.Error())
	case fmt.Stringer:
		return quoteIfNeeded(x.String())
	case bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, uintptr:
		return fmt.Sprint(x)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	if b, err := json.Marshal(v); err == nil {
		return clean(string(b))
	}
	return clean(fmt.Sprint(v))
}

// quoteIfNeeded returns s as is when it reads unambiguously in a key=value
// list, and Go-quoted otherwise.
func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " =\"\\,") || needsClean(s) {
		return strconv.Quote(s)
	}
	return s
}
