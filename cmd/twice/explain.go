package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/twicehq/twice/audit"
	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/collectors/file"
	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/storage/clickhouse"
	"github.com/twicehq/twice/story"
	"github.com/twicehq/twice/twicetype"
)

type explainFlags struct {
	config string
	events []string
	from   string
	limit  int
}

// minFingerprintPrefix is the shortest fingerprint prefix explain takes.
const minFingerprintPrefix = 6

func newExplainCmd(e env) *cobra.Command {
	var f explainFlags
	cmd := &cobra.Command{
		Use:   "explain FINGERPRINT [REPORT.json] [--events FILE...|--from DSN]",
		Short: "Explain one finding: what it is, why it matters, and the events that led to it",
		Long: `explain prints one finding — its detector and the rule it checks, severity,
subject, message, cause, jobs and details — and its story: the events of its
jobs, the events it names, the other effects on its effect_key and the
updates of its entity, in event time, with the time between steps.

The finding comes from REPORT.json (a report of twice audit --format json;
'-' is stdin) or, without one, from auditing the --events files (or the
events stored in ClickHouse, --from) again. FINGERPRINT may be shortened to
its first 6 or more characters when that is unique. The story is read from
the --events files (the input of the audit: JSON Lines, '.gz' as gzip); at
most --limit events are shown, those the finding names first.

Exit codes: 0 explained, 2 usage error (the fingerprint is not in the
report, or is ambiguous), 3 input could not be read.`,
		Example: `  twice explain 3f2a9c1e report.json --events events.jsonl
  twice explain 3f2a9c1e --events jobs.jsonl --events effects.jsonl.gz -c twice.yaml
  twice audit --format json events.jsonl | twice explain 3f2a9c1e - --events events.jsonl`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExplain(cmd, e, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", "", "twice.yaml to audit with when no REPORT.json is given (default: ./twice.yaml when it exists)")
	fl.StringArrayVar(&f.events, "events", nil, "an event file the audit read ('-' is stdin; repeat for several): the story is read from them")
	fl.StringVar(&f.from, "from", "", "without REPORT.json: find the finding by auditing the events stored in ClickHouse (DSN as for twice audit --from)")
	fl.IntVar(&f.limit, "limit", story.DefaultPerFinding, "show at most N events of the story")
	return cmd
}

func runExplain(cmd *cobra.Command, e env, f explainFlags, args []string) error {
	want := strings.ToLower(strings.TrimSpace(args[0]))
	if len(want) < minFingerprintPrefix {
		return usageErr("fingerprint %q: want at least %d characters of it", args[0], minFingerprintPrefix)
	}
	if f.limit < 1 {
		return usageErr("--limit: want at least 1, got %d", f.limit)
	}
	stdinUses := 0
	for _, p := range f.events {
		if p == "-" {
			stdinUses++
		}
	}
	if len(args) == 2 && args[1] == "-" {
		stdinUses++
	}
	if len(args) < 2 && stdinUses > 0 {
		// Audited, then read again for the story.
		return usageErr("--events -: without REPORT.json explain reads the events twice (to find the finding, then its story); write them to a file")
	}
	if stdinUses > 1 {
		return usageErr("stdin (-) can be read only once")
	}
	if f.from != "" && len(f.events) > 0 && len(args) < 2 {
		return usageErr("--from and --events: the finding comes from one of them")
	}

	var rep *twicetype.Report
	var where string
	switch {
	case len(args) == 2:
		r, err := readReportFile(e, args[1])
		if err != nil {
			return err
		}
		rep, where = r, args[1]
	case len(f.events) > 0:
		cfg, err := loadConfig(auditFlags{config: f.config})
		if err != nil {
			return err
		}
		eng := engine.New(audit.EngineOptions(cfg))
		if err := engine.Run(cmd.Context(), eng, eventCollectors(e, f.events)); err != nil {
			return inputErr(err)
		}
		rep, where = eng.Finish(), "the audit of "+strings.Join(f.events, ", ")
	case f.from != "":
		cfg, err := loadConfig(auditFlags{config: f.config})
		if err != nil {
			return err
		}
		st, err := clickhouse.Open(f.from, clickhouse.Options{})
		if err != nil {
			return usageErr("--from: %v", err)
		}
		defer st.Close()
		r, err := st.Audit(cmd.Context(), clickhouse.AuditOptions{Config: cfg})
		if err != nil {
			return inputErr(fmt.Errorf("--from %s: %w", st.DSN(), err))
		}
		rep, where = r, "the audit of "+st.DSN().String()
	default:
		return usageErr("explain needs the finding: give REPORT.json (twice audit --format json), or the events with --events FILE")
	}

	fd, err := findFinding(rep, want, where)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	writeExplanation(&b, fd)
	if len(f.events) > 0 {
		stories, err := story.Collect(cmd.Context(), []twicetype.Finding{*fd}, eventCollectors(e, f.events),
			story.Options{PerFinding: f.limit})
		if err != nil {
			return inputErr(err)
		}
		s := stories[fd.Fingerprint]
		fmt.Fprintf(&b, "\nWhat happened (%s of %s, in event time; * marks the events the finding names)\n",
			countOf(len(s.Events)+int(s.Omitted), "event"), strings.Join(f.events, ", "))
		if err := story.Render(&b, s); err != nil {
			return err
		}
	} else {
		b.WriteString("\nWhat happened: give the audit's input with --events FILE to see the events that led to this finding, step by step.\n")
	}
	_, err = e.stdout.Write(b.Bytes())
	return err
}

// eventCollectors reads event files as twice audit does ('-' is stdin,
// '.gz' gzip).
func eventCollectors(e env, paths []string) []collectors.Collector {
	cols := make([]collectors.Collector, len(paths))
	for i, p := range paths {
		cols[i] = file.New(p, file.Options{Stdin: e.stdin})
	}
	return cols
}

// findFinding returns the finding whose fingerprint is want or starts
// with it, when exactly one does.
func findFinding(rep *twicetype.Report, want, where string) (*twicetype.Finding, error) {
	var matches []*twicetype.Finding
	for i := range rep.Findings {
		f := &rep.Findings[i]
		if f.Fingerprint == "" {
			f.Fingerprint = twicetype.Fingerprint(f.Detector, f.Subject)
		}
		if f.Fingerprint == want {
			return f, nil
		}
		if strings.HasPrefix(f.Fingerprint, want) {
			matches = append(matches, f)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return nil, usageErr("fingerprint %s is not in %s (%s; twice audit --format json lists each finding's fingerprint)",
			want, where, countOf(len(rep.Findings), "finding"))
	}
	var b strings.Builder
	for _, m := range matches[:min(len(matches), 10)] {
		fmt.Fprintf(&b, "\n  %s  %s %s", m.Fingerprint, m.Detector, safe(m.Subject))
	}
	return nil, usageErr("fingerprint %s is ambiguous in %s: %d findings start with it; give more of it:%s", want, where, len(matches), b.String())
}

// causeMeaning says what each cause of a finding means, and what to do.
var causeMeaning = map[string]string{
	"redelivery":        "every copy came from one job that the queue delivered again (a retry or a redelivery after a lost ack): the handler is not idempotent on its effect",
	"duplicate-enqueue": "the copies came from several jobs enqueued for the same work: deduplicate at enqueue, or key the effect so a second job cannot repeat it",
	"replay":            "the job went dead and was enqueued again (a dead-letter replay) between two of the effects: the replay repeated work that had already happened",
	"unknown":           "no effect links to a job, by job_id or by an expect rule's effect_key template: add job_id to the effects, or an expect rule, to learn which job repeated it",
	"never-started":     "the job was enqueued and never started: no worker took it (a stopped consumer, a paused or unknown queue)",
	"stuck":             "the job started and never finished: its worker died or hangs, and nothing retried or dead-lettered it",
}

// writeExplanation writes the finding in words.
func writeExplanation(b *bytes.Buffer, f *twicetype.Finding) {
	fmt.Fprintf(b, "%s: %s (%s)\n", f.Detector, safe(f.Subject), f.Severity)
	if f.Message != "" {
		fmt.Fprintf(b, "%s\n", safe(f.Message))
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	if r, ok := detectorRules[f.Detector]; ok {
		fmt.Fprintf(tw, "  rule\t%s\n", r.rule)
		fmt.Fprintf(tw, "  subject\t%s (the %s this finding is about)\n", safe(f.Subject), r.subject)
	}
	if f.Cause != "" {
		cause := safe(f.Cause)
		if m, ok := causeMeaning[f.Cause]; ok {
			cause += ": " + m
		}
		fmt.Fprintf(tw, "  cause\t%s\n", cause)
	}
	if f.JobType != "" {
		fmt.Fprintf(tw, "  job type\t%s\n", safe(f.JobType))
	}
	if f.Queue != "" {
		fmt.Fprintf(tw, "  queue\t%s\n", safe(f.Queue))
	}
	if len(f.Jobs) > 0 {
		fmt.Fprintf(tw, "  jobs\t%s\n", listed(f.Jobs))
	}
	if len(f.Events) > 0 {
		fmt.Fprintf(tw, "  events\t%s\n", listed(f.Events))
	}
	if f.FirstTime != 0 || f.LastTime != 0 {
		when := twicetype.FormatTime(f.FirstTime)
		if f.LastTime != f.FirstTime {
			when += " to " + twicetype.FormatTime(f.LastTime) + " (" + story.Gap(f.LastTime-f.FirstTime) + ")"
		}
		fmt.Fprintf(tw, "  when\t%s\n", when)
	}
	if f.Count > 0 {
		fmt.Fprintf(tw, "  count\t%d\n", f.Count)
	}
	if len(f.Details) > 0 {
		keys := make([]string, 0, len(f.Details))
		for k := range f.Details {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(tw, "  %s\t%s\n", safe(strings.ReplaceAll(k, "_", " ")), detailValue(f.Details[k]))
		}
	}
	fmt.Fprintf(tw, "  fingerprint\t%s\n", f.Fingerprint)
	tw.Flush()
}

// listed joins at most 10 items and counts the rest.
func listed(items []string) string {
	shown := items[:min(len(items), 10)]
	out := make([]string, len(shown))
	for i, s := range shown {
		out[i] = safe(s)
	}
	s := strings.Join(out, ", ")
	if n := len(items) - len(shown); n > 0 {
		s += fmt.Sprintf(" … and %d more", n)
	}
	return s
}

// detailValue writes one details value: strings as they are, numbers
// without exponent, the rest as compact JSON.
func detailValue(v any) string {
	switch x := v.(type) {
	case string:
		return safe(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case time.Duration:
		return x.String()
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return safe(fmt.Sprint(v))
	}
	return safe(string(raw))
}

// safe escapes control and bidirectional characters of event data, so
// it can neither break the layout nor drive the terminal.
func safe(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == unicode.ReplacementChar
	}) {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}

// countOf writes n and noun, with an s unless n is 1.
func countOf(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
