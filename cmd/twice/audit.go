package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/twicehq/twice/audit"
	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/collectors/file"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/reports"
	"github.com/twicehq/twice/sources"
	"github.com/twicehq/twice/sources/builtin"
	"github.com/twicehq/twice/storage/clickhouse"
	"github.com/twicehq/twice/twicetype"
)

// maxMalformedPrinted bounds the malformed lines printed on stderr; the
// report lists more and counts all.
const maxMalformedPrinted = 20

type auditFlags struct {
	config        string
	format        string
	output        string
	failOn        string
	color         string
	strict        bool
	strictCov     bool
	quiet         bool
	lateness      string
	horizon       string
	reorderBuffer int
	since         string
	until         string
	from          string
	to            string
	cpuProfile    string
	memProfile    string
	top           int
	groupBy       string
	maxBytes      int
	baseline      string
}

func newAuditCmd(e env) *cobra.Command {
	var f auditFlags
	cmd := &cobra.Command{
		Use:   "audit [FILE|SOURCE...]",
		Short: "Audit captured events and print a report",
		Long: `audit reads normalized events (JSON Lines; '-' is stdin, '.gz' is read as
gzip) from the files given, from the sources of twice.yaml named on the
command line (a source that keeps history — a Kafka topic, a queue's
Redis stream or table — is read from its start, or --since, to what it
holds now), or from all of them when nothing is named; runs every enabled
detector and prints a report. --to also stores what it reads in ClickHouse;
--from audits what ClickHouse holds, with the detectors as SQL there.

Without --config, ./twice.yaml is used when it exists. Relative paths in
twice.yaml are relative to its folder; a file source's paths may be globs.

Every report starts with warnings about what the audit could not check (no
events, every line malformed, an expect rule that matched no job or whose
effect_key never rendered, integer timestamps that look like seconds): a
report without findings is no all-clear while it has any.
--strict-coverage makes them fail the audit (exit 4).

The report is written whole or not at all: -o FILE is replaced only once
the report is complete, never left empty or half-written.

Exit codes: 0 no finding at or above --fail-on, 1 findings, 2 usage or
configuration error, 3 input could not be read, 4 warnings under
--strict-coverage (and no findings), 130 interrupted (Ctrl-C, SIGINT),
143 terminated (SIGTERM).`,
		Example: `  twice audit events.jsonl
  twice audit --config twice.yaml --format json -o report.json jobs.jsonl effects.jsonl.gz
  zcat events.jsonl.gz | twice audit --fail-on high -
  twice audit -c twice.yaml --since 2026-11-24T00:00:00Z jobs-topic
  twice audit -c twice.yaml --from clickhouse://127.0.0.1:9000/twice --since 2026-11-01T00:00:00Z --until 2026-12-01T00:00:00Z`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAudit(cmd, e, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", "", "twice.yaml to use (default: ./twice.yaml when it exists, else built-in defaults)")
	fl.StringVarP(&f.format, "format", "f", "text", "report format: "+strings.Join(reports.Formats, "|"))
	fl.StringVarP(&f.output, "output", "o", "", "write the report to FILE instead of stdout")
	fl.StringVar(&f.failOn, "fail-on", "low", "exit 1 when a finding is at or above this severity: critical|high|medium|low|none")
	fl.StringVar(&f.color, "color", "auto", "colour the text report: auto|always|never")
	fl.BoolVar(&f.strict, "strict", false, "fail (exit 3) on the first malformed line")
	fl.BoolVar(&f.strictCov, "strict-coverage", false, "exit 4 when the report has warnings (nothing checked, rules that matched no job, seconds-like timestamps) and no findings")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "do not print malformed lines on stderr")
	fl.StringVar(&f.lateness, "lateness", "", "allowed lateness of events (overrides engine.lateness)")
	fl.StringVar(&f.horizon, "horizon", "", "how long state is kept after its last event (overrides engine.horizon)")
	fl.IntVar(&f.reorderBuffer, "reorder-buffer", 0, "most events held for reordering (overrides engine.reorder_buffer)")
	fl.StringVar(&f.since, "since", "", "read sources that keep history (kafka, queues, tables) from this time (RFC 3339); with --from, audit events at or after it")
	fl.StringVar(&f.until, "until", "", "with --from: audit events before this time (RFC 3339)")
	fl.StringVar(&f.from, "from", "", "audit the events stored in ClickHouse (clickhouse://host:9000/db or http://host:8123/db) with SQL, where they live")
	fl.StringVar(&f.to, "to", "", "also store the events read in ClickHouse (DSN as for --from); tables are created as needed")
	fl.IntVar(&f.top, "top", reports.DefaultTop, "text, html: list at most N findings per group, counting the rest (0: all)")
	fl.StringVar(&f.groupBy, "group-by", reports.GroupDetector, "text: group findings by "+strings.Join(reports.GroupBys, "|"))
	fl.IntVar(&f.maxBytes, "max-bytes", reports.DefaultMarkdownMaxBytes, "markdown: cap the report at N bytes (a PR comment holds 65536), counting the findings left out")
	fl.StringVar(&f.baseline, "baseline", "", "fail only for findings not in this baseline (written by twice baseline); reports say which are new and which were fixed")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the audit to FILE")
	fl.StringVar(&f.memProfile, "memprofile", "", "write a heap profile at the end of input to FILE")
	_ = fl.MarkHidden("cpuprofile")
	_ = fl.MarkHidden("memprofile")
	return cmd
}

func runAudit(cmd *cobra.Command, e env, f auditFlags, args []string) error {
	// Values of --format, --fail-on and --color are case-insensitive.
	f.format, f.failOn, f.color = strings.ToLower(f.format), strings.ToLower(f.failOn), strings.ToLower(f.color)
	failOn, err := twicetype.ParseSeverity(f.failOn)
	if err != nil {
		return usageErr("--fail-on: want critical, high, medium, low or none, got %q", f.failOn)
	}
	switch f.color {
	case "auto", "always", "never":
	default:
		return usageErr("--color: want auto, always or never, got %q", f.color)
	}
	f.groupBy = strings.ToLower(f.groupBy)
	if !slices.Contains(reports.GroupBys, f.groupBy) {
		return usageErr("--group-by: want %s, got %q", strings.Join(reports.GroupBys, ", "), f.groupBy)
	}
	if f.top < 0 {
		return usageErr("--top: want 0 (all) or more, got %d", f.top)
	}
	if f.maxBytes < minMarkdownBytes {
		return usageErr("--max-bytes: want at least %d, got %d", minMarkdownBytes, f.maxBytes)
	}
	cfg, err := loadConfig(f)
	if err != nil {
		return err
	}
	base, err := loadBaseline(f.baseline)
	if err != nil {
		return err
	}
	since, until, err := timeRange(f)
	if err != nil {
		return err
	}
	if f.from != "" {
		return auditStore(cmd, e, f, cfg, failOn, args, since, until, base)
	}
	if !until.IsZero() {
		return usageErr("--until applies to --from (events stored in ClickHouse)")
	}
	in, err := auditInputs(cfg, args)
	if err != nil {
		return err
	}
	if len(in.paths) == 0 && len(in.taps) == 0 {
		return usageErr("no input: name files (or - for stdin), or sources in twice.yaml")
	}
	if !since.IsZero() && len(in.paths) > 0 {
		return usageErr("--since applies to sources that keep history and to --from; files are read whole")
	}
	stdinUses := 0
	// On a terminal, a progress line (progress.go); other messages go
	// through it so that they do not mix with the line.
	prog := newProgress(e, in.paths, len(in.taps))
	if prog != nil {
		e.stderr = prog.writer()
	}
	var cols []collectors.Collector
	secs := &secondsTS{}
	for _, p := range in.paths {
		if p == "-" {
			stdinUses++
		}
		cols = append(cols, secs.tee(prog.file(file.New(p, file.Options{Stdin: e.stdin}))))
	}
	if stdinUses > 1 {
		return usageErr("stdin (-) can be read only once")
	}
	// Sources of other types than file are read by their taps, from
	// the start (or --since) to what they hold now (package sources).
	lost := &sources.Coverage{}
	for _, src := range in.taps {
		tcols, err := builtin.Registry().NewCollectors(cmd.Context(), src, sources.CollectOptions{
			Since: since, Stdin: e.stdin, DeadLetterMaxBytes: cfg.Watch.DeadLetterMaxBytes, Coverage: lost,
			Logf: func(format string, args ...any) { fmt.Fprintf(e.stderr, "twice: "+format+"\n", args...) }})
		if err != nil {
			var nh *sources.NoHistoryError
			if errors.As(err, &nh) {
				return usageErr("%v", err)
			}
			return inputErr(err)
		}
		for _, c := range tcols {
			cols = append(cols, secs.tee(c))
		}
	}
	paths := in.names
	// The html report charts the events per time bucket.
	var timeline *reports.Timeline
	if f.format == "html" {
		timeline = reports.NewTimeline()
		cols = teeTimeline(cols, timeline)
	}
	var store *clickhouse.Store
	var sink *clickhouse.Sink
	if f.to != "" {
		if store, err = openStore(cmd.Context(), f.to); err != nil {
			return err
		}
		defer store.Close()
		sink = store.Sink(clickhouse.SinkOptions{})
		for i, c := range cols {
			cols[i] = collectors.Tee(c, func(ctx context.Context, b *collectors.Batch) error {
				if err := sink.Write(ctx, b.Events); err != nil {
					return fmt.Errorf("--to: %w", err)
				}
				if err := sink.WriteMalformed(ctx, b.Malformed); err != nil {
					return fmt.Errorf("--to: %w", err)
				}
				return nil
			})
		}
	}
	reporter, err := reports.New(f.format, reportOptions(e, f, strings.Join(paths, ", "), failOn))
	if err != nil {
		return usageErr("--format: %v", err)
	}

	out, err := createReportFile(f.output)
	if err != nil {
		return usageErr("-o: %v", err)
	}
	defer out.abort()
	opts := audit.EngineOptions(cfg)
	opts.Strict = f.strict
	printed := 0
	opts.OnMalformed = func(m twicetype.Malformed) {
		// Under --strict the error that ends the audit names the line.
		if f.quiet || f.strict {
			return
		}
		if printed < maxMalformedPrinted {
			fmt.Fprintf(e.stderr, "twice: malformed: %s\n", m.Error())
		}
		printed++
	}
	eng := engine.New(opts)
	stopProfile, err := startProfile(f.cpuProfile)
	if err != nil {
		return usageErr("--cpuprofile: %v", err)
	}
	for i, c := range cols {
		cols[i] = prog.count(c)
	}
	endProgress := prog.run(eng.FindingsMade)
	err = engine.Run(cmd.Context(), eng, cols)
	endProgress()
	if err == nil {
		// The heap profile shows the open state at the end of input,
		// before Finish releases it.
		if perr := writeHeapProfile(f.memProfile); perr != nil {
			stopProfile()
			return usageErr("--memprofile: %v", perr)
		}
		eng.Finish()
	}
	stopProfile()
	if err != nil {
		return inputErr(err)
	}
	rep := eng.Finish()
	if store != nil {
		// Everything read is stored, and the findings beside it, before
		// the report says the audit is done.
		if err := sink.Flush(cmd.Context()); err != nil {
			return inputErr(fmt.Errorf("--to: %w", err))
		}
		if err := store.WriteFindings(cmd.Context(), rep, time.Now(), time.Time{}, time.Time{}); err != nil {
			return inputErr(fmt.Errorf("--to: %w", err))
		}
	}
	if !f.quiet && printed > maxMalformedPrinted {
		fmt.Fprintf(e.stderr, "twice: %d more malformed lines not shown (see the report)\n", printed-maxMalformedPrinted)
	}
	rep.Summary.Warnings = append(rep.Summary.Warnings, coverageWarnings(cfg, &rep.Summary, secs)...)
	rep.Summary.Warnings = append(rep.Summary.Warnings, lost.Warnings()...)
	applyGate(rep, cfg, base, f.baseline)
	if err := cmd.Context().Err(); err != nil {
		// Interrupted while finishing: no report rather than one of a
		// part of the input.
		return inputErr(err)
	}
	if f.format == "html" {
		o := reportOptions(e, f, strings.Join(paths, ", "), failOn)
		o.Timeline = timeline
		if o.Stories, err = htmlStories(cmd.Context(), e, cfg, in, since, rep, f.top); err != nil {
			return inputErr(err)
		}
		if reporter, err = reports.New(f.format, o); err != nil {
			return usageErr("--format: %v", err)
		}
	}
	if err := writeReport(e, out, reporter, rep); err != nil {
		return inputErr(err)
	}
	return exitFor(rep, failOn, f.strictCov)
}

// inputs are what an audit reads.
type inputs struct {
	paths []string
	// taps are the sources of types other than file.
	taps []config.Source
	// names name the inputs in the report.
	names []string
}

// auditInputs resolves the audit's arguments: an argument that names a
// source of twice.yaml stands for that source (its files, globs expanded,
// or its Kafka topics from the start to their current end), any other is
// a file ("-" is stdin); with no arguments every configured source is
// read. An argument that is neither a file nor a source, but close to a
// source's name, is a usage error that names the source.
func auditInputs(cfg *config.Config, args []string) (inputs, error) {
	var in inputs
	add := func(s config.Source) error {
		if s.Type != config.SourceFile {
			in.taps = append(in.taps, s)
			in.names = append(in.names, s.Name)
			return nil
		}
		files, err := s.Files()
		if err != nil {
			var ue *config.PatternError
			if errors.As(err, &ue) && ue.Bad {
				return usageErr("%v", err)
			}
			return inputErr(err)
		}
		in.paths = append(in.paths, files...)
		in.names = append(in.names, s.Paths...)
		return nil
	}
	if len(args) == 0 {
		for _, s := range cfg.Sources {
			if err := add(s); err != nil {
				return in, err
			}
		}
		return in, nil
	}
	for _, a := range args {
		i := slices.IndexFunc(cfg.Sources, func(s config.Source) bool { return s.Name == a })
		if i >= 0 {
			if err := add(cfg.Sources[i]); err != nil {
				return in, err
			}
			continue
		}
		if a != "-" {
			if _, err := os.Stat(a); errors.Is(err, fs.ErrNotExist) {
				if name, ok := closestSource(cfg, a); ok {
					return in, usageErr("%s: no such file, and no source of that name; did you mean source %s?", a, name)
				}
			}
		}
		in.paths = append(in.paths, a)
		in.names = append(in.names, a)
	}
	return in, nil
}

// closestSource returns the name of the configured source that arg most
// likely misspells: within an edit distance of a third of the name's
// length (at least 1), the closest, the first in file order on a tie.
func closestSource(cfg *config.Config, arg string) (string, bool) {
	best, bestD := "", -1
	for _, s := range cfg.Sources {
		d := editDistance(strings.ToLower(arg), strings.ToLower(s.Name))
		if d <= max(1, len([]rune(s.Name))/3) && (bestD < 0 || d < bestD) {
			best, bestD = s.Name, d
		}
	}
	return best, bestD >= 0
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// defaultConfig is the twice.yaml audit and watch read when --config is
// not given.
const defaultConfig = "twice.yaml"

func loadConfig(f auditFlags) (*config.Config, error) {
	cfg := config.Default()
	if f.config == "" {
		if _, err := os.Stat(defaultConfig); err == nil {
			f.config = defaultConfig
		}
	}
	if f.config != "" {
		var err error
		if cfg, err = config.LoadWith(f.config, config.Options{Sources: builtin.Registry()}); err != nil {
			return nil, usageErr("%v", err)
		}
	}
	if f.lateness != "" {
		d, err := time.ParseDuration(f.lateness)
		if err != nil || d < 0 || d > config.MaxDuration {
			return nil, usageErr("--lateness: want a Go duration from 0 to %v like 30s, got %q", config.MaxDuration, f.lateness)
		}
		cfg.Engine.Lateness = d
	}
	if f.horizon != "" {
		d, err := time.ParseDuration(f.horizon)
		if err != nil || d <= 0 || d > config.MaxDuration {
			return nil, usageErr("--horizon: want a Go duration above 0 and at most %v like 24h, got %q", config.MaxDuration, f.horizon)
		}
		cfg.Engine.Horizon = d
	}
	if f.reorderBuffer != 0 {
		if f.reorderBuffer < 0 {
			return nil, usageErr("--reorder-buffer: want at least 1, got %d", f.reorderBuffer)
		}
		cfg.Engine.ReorderBuffer = f.reorderBuffer
	}
	return cfg, nil
}

// minMarkdownBytes is the least --max-bytes: room for the summary and
// the warnings.
const minMarkdownBytes = 4096

// reportOptions are the reports.Options of the audit's flags.
func reportOptions(e env, f auditFlags, source string, failOn twicetype.Severity) reports.Options {
	return reports.Options{
		Color:          useColor(e, f),
		Source:         source,
		StrictCoverage: f.strictCov,
		FailOn:         failOn,
		NeverFail:      failOn == twicetype.SeverityNone,
		Top:            f.top,
		GroupBy:        f.groupBy,
		MaxBytes:       f.maxBytes,
	}
}

func useColor(e env, f auditFlags) bool {
	switch f.color {
	case "always":
		return true
	case "never":
		return false
	}
	if f.output != "" || e.getenv("NO_COLOR") != "" || e.getenv("TERM") == "dumb" {
		return false
	}
	return e.isTerminal(e.stdout)
}

// writeReport renders the whole report first, so that a failed render
// never leaves half a report behind, then writes it to out, or to stdout
// when out is nil.
func writeReport(e env, out *reportFile, r reports.Reporter, rep *twicetype.Report) error {
	var buf bytes.Buffer
	if err := r.Write(&buf, rep); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	if out == nil {
		_, err := io.Copy(e.stdout, &buf)
		return err
	}
	return out.commit(buf.Bytes())
}

func startProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	fh, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(fh); err != nil {
		fh.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); fh.Close() }, nil
}

func writeHeapProfile(path string) error {
	if path == "" {
		return nil
	}
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	runtime.GC() // the profile shows the heap as of the last collection
	return pprof.WriteHeapProfile(fh)
}
