package reports

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twicehq/twice/story"
	"github.com/twicehq/twice/twicetype"
)

// The html format is one self-contained file: the stylesheet, the script
// that draws the charts and the data it draws are inline, and the page's
// Content-Security-Policy lets nothing else load or run, so it opens from
// a CI artifact or a mail attachment without a network.

//go:embed html/report.html.tmpl html/report.css html/report.js
var htmlAssets embed.FS

// htmlTemplate is the page, with the stylesheet and the script inlined
// verbatim, and the hashes the Content-Security-Policy allows them by.
var htmlTemplate = func() *template.Template {
	page := mustAsset("html/report.html.tmpl")
	css, js := mustAsset("html/report.css"), mustAsset("html/report.js")
	// The script and the stylesheet are template text, so they reach the
	// page byte for byte, as their hashes require; html/template drops
	// comments from them, so they have none. The script draws the charts
	// from the JSON in #twice-data, then sets data-ready on <body>
	// ("error", with data-error, if it failed).
	if strings.Contains(css+js, "{{") {
		panic("reports: html assets must not contain {{")
	}
	funcs := template.FuncMap{
		"cspHash": func(s string) string {
			sum := sha256.Sum256([]byte(s))
			return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		},
		"css": func() string { return css },
		"js":  func() string { return js },
	}
	t := template.New("page").Funcs(funcs)
	template.Must(t.New("style").Parse(css))
	template.Must(t.New("script").Parse(js))
	return template.Must(t.Parse(page))
}()

func mustAsset(name string) string {
	b, err := htmlAssets.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// htmlStoryCap bounds the events told per finding; the rest are counted.
const htmlStoryCap = 40

// htmlReporter writes the html format.
type htmlReporter struct{ opts Options }

// Write renders the page whole, then writes it.
func (h *htmlReporter) Write(w io.Writer, r *twicetype.Report) error {
	if r == nil {
		return errNilReport
	}
	var b bytes.Buffer
	if err := htmlTemplate.Execute(&b, h.view(r)); err != nil {
		return fmt.Errorf("html report: %w", err)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// htmlView is what the template renders.
type htmlView struct {
	Source     string
	Pass       bool
	Verdict    string
	Warnings   []twicetype.Warning
	Summary    []htmlPair
	Range      string
	Detectors  []htmlDetector
	Scorecard  []htmlScoreRow
	Conditions []string
	Impact     *htmlImpact
	Groups     []htmlGroup
	// Findings counts all findings; Shown those the page lists.
	Findings, Shown int
	NoFindings      string
	Malformed       []string
	MalformedMore   int64
	// Data is what the script draws, as JSON.
	Data htmlData
}

type htmlPair struct {
	Label string
	Value string
}

type htmlDetector struct {
	ID       string `json:"id"`
	Count    int    `json:"count"`
	Severity string `json:"severity"`
}

type htmlScoreRow struct {
	JobType, Queue string
	Jobs           int64
	Cells          []htmlScoreCell
}

type htmlScoreCell struct {
	Condition string
	Verdict   string
	// Label is what the cell says: "unsafe 1/4", "safe ×3", "not exercised".
	Label string
	Links []htmlLink
	// More counts the evidence not linked (findings not shown, or past
	// MaxScoreFindings).
	More int64
}

type htmlLink struct {
	Anchor string
	Text   string
}

type htmlImpact struct {
	Amounts       []htmlPair
	Customers     int64
	StaleEntities int64
}

type htmlGroup struct {
	Detector string
	Count    int
	Findings []htmlFinding
	// More counts the findings of the detector the page leaves out.
	More int
}

type htmlFinding struct {
	Anchor      string
	Fingerprint string
	Severity    string
	Detector    string
	Subject     string
	Message     string
	Cause       string
	JobType     string
	Queue       string
	Count       int64
	First, Last string
	Jobs        string
	Events      string
	Details     []string
	Story       []htmlStep
	HasStory    bool
	StoryMore   int64
}

// htmlStep is one event of a finding's story.
type htmlStep struct {
	Time string
	// Gap is the time since the step before, "" for the first.
	Gap   string
	Kind  string
	Class string
	What  string
	// Named marks the events the finding names itself.
	Named bool
}

// htmlData is the JSON the script draws the charts from. Times are Unix
// milliseconds.
type htmlData struct {
	Timeline htmlTimeline   `json:"timeline"`
	Markers  []htmlMarker   `json:"markers"`
	Detector []htmlDetector `json:"detectors"`
}

type htmlTimeline struct {
	Start int64 `json:"start"`
	Width int64 `json:"width"`
	// Events per bucket; null when the audit did not count them.
	Events []int64 `json:"events"`
	// Findings per bucket, by first ts, all findings.
	Findings []int64 `json:"findings"`
}

type htmlMarker struct {
	Time     int64  `json:"t"`
	Severity string `json:"severity"`
	Detector string `json:"detector"`
	Subject  string `json:"subject"`
	Anchor   string `json:"anchor"`
}

func (h *htmlReporter) view(r *twicetype.Report) htmlView {
	s := &r.Summary
	pass, line := verdict(r, h.opts)
	v := htmlView{
		Source:     clean(h.opts.Source),
		Pass:       pass,
		Verdict:    line,
		Range:      timeRange(s),
		Conditions: twicetype.Conditions,
		Findings:   len(r.Findings),
		NoFindings: noFindings(s),
	}
	for _, w := range s.Warnings {
		v.Warnings = append(v.Warnings, twicetype.Warning{Code: clean(w.Code), Subject: clean(w.Subject), Message: clean(w.Message)})
	}
	n := func(x int64) string { return strconv.FormatInt(x, 10) }
	v.Summary = []htmlPair{
		{"events", n(s.Events)}, {"jobs", n(s.Jobs)}, {"effects", n(s.Effects)},
		{"findings", strconv.Itoa(len(r.Findings))}, {"pending", n(s.Pending)},
		{"repeated ids", n(s.RepeatedIDs)}, {"malformed", n(s.Malformed)},
	}
	if s.Late > 0 {
		v.Summary = append(v.Summary, htmlPair{"late", n(s.Late)})
	}
	if s.Evicted > 0 {
		v.Summary = append(v.Summary, htmlPair{"evicted", n(s.Evicted)})
	}
	for _, d := range detectorCounts(r) {
		sev := ""
		if d.Severity != twicetype.SeverityNone {
			sev = d.Severity.String()
		}
		v.Detectors = append(v.Detectors, htmlDetector{ID: clean(d.ID), Count: d.Count, Severity: sev})
	}
	v.Data.Detector = v.Detectors

	// The findings shown: the first Top of each detector.
	shown := map[string]string{} // fingerprint → anchor
	for _, g := range groupFindings(r.Findings) {
		hg := htmlGroup{Detector: clean(g.Detector), Count: len(g.Findings)}
		list := g.Findings[:htmlShown(len(g.Findings), h.opts.Top)]
		hg.More = len(g.Findings) - len(list)
		for _, f := range list {
			hf := h.finding(f, len(shown))
			shown[hf.Fingerprint] = hf.Anchor
			hg.Findings = append(hg.Findings, hf)
			v.Data.Markers = append(v.Data.Markers, htmlMarker{
				Time: f.FirstTime / 1e6, Severity: hf.Severity, Detector: hf.Detector,
				Subject: hf.Subject, Anchor: hf.Anchor,
			})
		}
		v.Shown += len(list)
		v.Groups = append(v.Groups, hg)
	}

	for _, row := range r.Scorecard {
		hr := htmlScoreRow{JobType: clean(row.JobType), Queue: clean(row.Queue), Jobs: row.Jobs}
		for _, c := range row.Conditions {
			hr.Cells = append(hr.Cells, scoreCell(c, shown))
		}
		v.Scorecard = append(v.Scorecard, hr)
	}
	if im := r.Impact; im != nil {
		hi := &htmlImpact{Customers: im.Customers, StaleEntities: im.StaleEntities}
		cur := make([]string, 0, len(im.DuplicatedAmount))
		for c := range im.DuplicatedAmount {
			cur = append(cur, c)
		}
		slices.Sort(cur)
		for _, c := range cur {
			label := clean(c)
			if label == "" {
				label = "(no currency)"
			}
			hi.Amounts = append(hi.Amounts, htmlPair{label, strconv.FormatFloat(im.DuplicatedAmount[c], 'f', -1, 64)})
		}
		v.Impact = hi
	}

	for _, m := range s.MalformedLines[:min(len(s.MalformedLines), malformedCap)] {
		v.Malformed = append(v.Malformed, clean(m.Error()))
	}
	v.MalformedMore = malformedLeftOff(s, len(v.Malformed))
	v.Data.Timeline = h.timeline(r)
	if v.Data.Markers == nil {
		v.Data.Markers = []htmlMarker{}
	}
	if v.Data.Detector == nil {
		v.Data.Detector = []htmlDetector{}
	}
	return v
}

// htmlShown is how many of a detector's n findings the html format
// shows under top (--top; 0 shows all).
func htmlShown(n, top int) int {
	if top > 0 {
		return min(n, top)
	}
	return n
}

// HTMLFindings returns the findings the html format shows under top
// (Options.Top), in report order: the ones whose stories it tells, and so
// the ones to collect stories for.
func HTMLFindings(findings []twicetype.Finding, top int) []twicetype.Finding {
	var out []twicetype.Finding
	for _, g := range groupFindings(findings) {
		for _, f := range g.Findings[:htmlShown(len(g.Findings), top)] {
			out = append(out, *f)
		}
	}
	return out
}

// scoreCell renders one condition of a scorecard row, linking the
// evidence the page shows.
func scoreCell(c twicetype.ConditionScore, shown map[string]string) htmlScoreCell {
	cell := htmlScoreCell{Condition: clean(c.Condition), Verdict: clean(c.Verdict)}
	switch c.Verdict {
	case twicetype.VerdictUnsafe:
		cell.Label = fmt.Sprintf("unsafe %d/%d", c.Harmed, c.Exercised)
	case twicetype.VerdictSafe:
		cell.Label = fmt.Sprintf("safe ×%d", c.Exercised)
	case twicetype.VerdictNotExercised:
		cell.Label = "not exercised"
	default:
		cell.Label = clean(c.Verdict)
	}
	linked := int64(0)
	for _, fp := range c.Findings {
		if a, ok := shown[fp]; ok {
			linked++
			cell.Links = append(cell.Links, htmlLink{Anchor: a, Text: "#" + strconv.Itoa(len(cell.Links)+1)})
		}
	}
	cell.More = max(c.Harmed, int64(len(c.Findings))) - linked
	if c.Verdict != twicetype.VerdictUnsafe {
		cell.More = 0
	}
	return cell
}

func (h *htmlReporter) finding(f *twicetype.Finding, i int) htmlFinding {
	fp := fingerprint(f)
	hf := htmlFinding{
		Anchor:      "f-" + strconv.Itoa(i+1),
		Fingerprint: clean(fp),
		Severity:    f.Severity.String(),
		Detector:    clean(f.Detector),
		Subject:     clean(f.Subject),
		Message:     clean(f.Message),
		Cause:       clean(f.Cause),
		JobType:     clean(f.JobType),
		Queue:       clean(f.Queue),
		Count:       f.Count,
		First:       twicetype.FormatTime(f.FirstTime),
		Last:        twicetype.FormatTime(f.LastTime),
		Jobs:        joinCapped(f.Jobs, clean),
		Events:      joinCapped(f.Events, clean),
		Details:     detailPairs(f.Details),
	}
	st, ok := h.opts.Stories[fp]
	if !ok || st == nil {
		return hf
	}
	hf.HasStory = true
	hf.Story, hf.StoryMore = storySteps(st)
	return hf
}

// storySteps tells a story's events, in the order the story keeps them
// (event time), with the time between steps, at most htmlStoryCap; it
// returns how many more the story has.
func storySteps(st *story.Story) ([]htmlStep, int64) {
	evs := st.Events
	more := st.Omitted
	if len(evs) > htmlStoryCap {
		more += int64(len(evs) - htmlStoryCap)
		evs = evs[:htmlStoryCap]
	}
	steps := make([]htmlStep, 0, len(evs))
	seen := map[string]bool{}
	for i := range evs {
		ev := &evs[i]
		s := htmlStep{Time: twicetype.FormatTime(ev.Time), Kind: ev.Kind.String(),
			What: clean(story.Step(ev)), Class: stepClass(ev, seen),
			Named: i < len(st.Named) && st.Named[i]}
		if i > 0 {
			s.Gap = "+" + story.Gap(ev.Time-evs[i-1].Time)
		}
		steps = append(steps, s)
	}
	return steps, more
}

// stepClass says how to mark one step of a story: a crash, an effect,
// an effect on a key that already had one (the duplicate).
func stepClass(ev *twicetype.Event, seen map[string]bool) string {
	switch ev.Kind {
	case twicetype.JobEnqueued, twicetype.JobStarted:
		return "queue"
	case twicetype.JobSucceeded:
		return "ok"
	case twicetype.JobFailed, twicetype.JobDead, twicetype.JobDiscarded:
		return "crash"
	case twicetype.Effect:
		again := seen[ev.EffectKey]
		seen[ev.EffectKey] = true
		if again {
			return "again"
		}
		return "effect"
	case twicetype.State:
		if ev.Terminal {
			return "crash"
		}
		return "state"
	}
	return "other"
}

// timelineFallback is the bucket count when the audit counted no events.
const timelineFallback = 60

// timeline returns the chart's buckets: the events the audit counted,
// when it did, and all findings by first ts, in the same buckets.
func (h *htmlReporter) timeline(r *twicetype.Report) htmlTimeline {
	var start, width int64
	var events []int64
	if tl := h.opts.Timeline; tl != nil && len(tl.Counts()) > 0 {
		start, width, events = tl.Start(), tl.Width(), tl.Counts()
	} else {
		from, to := r.Summary.From, r.Summary.To
		if r.Summary.Events == 0 {
			from, to = 0, 0
			for i, f := range r.Findings {
				if i == 0 || f.FirstTime < from {
					from = f.FirstTime
				}
				to = max(to, f.FirstTime)
			}
		}
		start = from
		width = max((to-from)/timelineFallback+1, int64(time.Millisecond))
	}
	buckets := len(events)
	if events == nil {
		buckets = timelineFallback + 1
	}
	found := make([]int64, buckets)
	for i := range r.Findings {
		b := floorDiv(r.Findings[i].FirstTime-start, width)
		found[min(max(b, 0), int64(buckets-1))]++
	}
	return htmlTimeline{Start: start / 1e6, Width: width / 1e6, Events: events, Findings: found}
}
