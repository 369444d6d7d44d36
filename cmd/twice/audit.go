package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
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
	"github.com/twicehq/twice/collectors/kafka"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/reports"
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
}

func newAuditCmd(e env) *cobra.Command {
	var f auditFlags
	cmd := &cobra.Command{
		Use:   "audit [FILE|SOURCE...]",
		Short: "Audit captured events and print a report",
		Long: `audit reads normalized events (JSON Lines; '-' is stdin, '.gz' is read as
gzip) from the files given, from the sources of twice.yaml named on the
command line (a kafka source is read from its start, or --since, to its
current end), or from all of them when nothing is named; runs every enabled
detector and prints a report. --to also stores what it reads in ClickHouse;
--from audits what ClickHouse holds, with the detectors as SQL there.

Exit codes: 0 no finding at or above --fail-on, 1 findings, 2 usage or
configuration error, 3 input could not be read.`,
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
	fl.StringVarP(&f.config, "config", "c", "", "twice.yaml to use (default: built-in defaults)")
	fl.StringVarP(&f.format, "format", "f", "text", "report format: "+strings.Join(reports.Formats, "|"))
	fl.StringVarP(&f.output, "output", "o", "", "write the report to FILE instead of stdout")
	fl.StringVar(&f.failOn, "fail-on", "low", "exit 1 when a finding is at or above this severity: critical|high|medium|low|none")
	fl.StringVar(&f.color, "color", "auto", "colour the text report: auto|always|never")
	fl.BoolVar(&f.strict, "strict", false, "fail (exit 3) on the first malformed line")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "do not print malformed lines on stderr")
	fl.StringVar(&f.lateness, "lateness", "", "allowed lateness of events (overrides engine.lateness)")
	fl.StringVar(&f.horizon, "horizon", "", "how long state is kept after its last event (overrides engine.horizon)")
	fl.IntVar(&f.reorderBuffer, "reorder-buffer", 0, "most events held for reordering (overrides engine.reorder_buffer)")
	fl.StringVar(&f.since, "since", "", "read kafka sources from this time (RFC 3339); with --from, audit events at or after it")
	fl.StringVar(&f.until, "until", "", "with --from: audit events before this time (RFC 3339)")
	fl.StringVar(&f.from, "from", "", "audit the events stored in ClickHouse (clickhouse://host:9000/db or http://host:8123/db) with SQL, where they live")
	fl.StringVar(&f.to, "to", "", "also store the events read in ClickHouse (DSN as for --from); tables are created as needed")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the audit to FILE")
	fl.StringVar(&f.memProfile, "memprofile", "", "write a heap profile at the end of input to FILE")
	_ = fl.MarkHidden("cpuprofile")
	_ = fl.MarkHidden("memprofile")
	return cmd
}

func runAudit(cmd *cobra.Command, e env, f auditFlags, args []string) error {
	failOn, err := twicetype.ParseSeverity(f.failOn)
	if err != nil {
		return usageErr("--fail-on: want critical, high, medium, low or none, got %q", f.failOn)
	}
	switch f.color {
	case "auto", "always", "never":
	default:
		return usageErr("--color: want auto, always or never, got %q", f.color)
	}
	cfg, err := loadConfig(f)
	if err != nil {
		return err
	}
	since, until, err := timeRange(f)
	if err != nil {
		return err
	}
	if f.from != "" {
		return auditStore(cmd, e, f, cfg, failOn, args, since, until)
	}
	if !until.IsZero() {
		return usageErr("--until applies to --from (events stored in ClickHouse)")
	}
	in := auditInputs(cfg, args)
	if len(in.paths) == 0 && len(in.kafka) == 0 {
		return usageErr("no input: name files (or - for stdin), or sources in twice.yaml")
	}
	if !since.IsZero() && len(in.paths) > 0 {
		return usageErr("--since applies to kafka sources and --from; files are read whole")
	}
	stdinUses := 0
	var cols []collectors.Collector
	for _, p := range in.paths {
		if p == "-" {
			stdinUses++
		}
		cols = append(cols, file.New(p, file.Options{Stdin: e.stdin}))
	}
	if stdinUses > 1 {
		return usageErr("stdin (-) can be read only once")
	}
	for _, src := range in.kafka {
		tps, err := kafka.Partitions(cmd.Context(), src.Kafka.Brokers, src.Kafka.Topics)
		if err != nil {
			return inputErr(fmt.Errorf("source %s: %w", src.Name, err))
		}
		kcols, _, err := kafka.NewRangeCollectors(src, tps, kafka.RangeOptions{From: since, DeadLetterMaxBytes: cfg.Watch.DeadLetterMaxBytes})
		if err != nil {
			return usageErr("source %s: %v", src.Name, err)
		}
		cols = append(cols, kcols...)
	}
	paths := in.names
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
	reporter, err := reports.New(f.format, reports.Options{
		Color:  useColor(e, f),
		Source: strings.Join(paths, ", "),
	})
	if err != nil {
		return usageErr("--format: %v", err)
	}

	if err := checkWritable(f.output); err != nil {
		return usageErr("-o: %v", err)
	}
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
	err = engine.Run(cmd.Context(), eng, cols)
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
	if err := writeReport(e, f.output, reporter, rep); err != nil {
		return inputErr(err)
	}
	return exitFor(rep, failOn)
}

// inputs are what an audit reads.
type inputs struct {
	paths []string
	kafka []config.Source
	// names name the inputs in the report.
	names []string
}

// auditInputs resolves the audit's arguments: an argument that names a
// source of twice.yaml stands for that source (its files, or its Kafka
// topics from the start to their current end), any other is a file ("-"
// is stdin); with no arguments every configured source is read.
func auditInputs(cfg *config.Config, args []string) inputs {
	var in inputs
	add := func(s config.Source) {
		if s.Type == config.SourceKafka {
			in.kafka = append(in.kafka, s)
			in.names = append(in.names, s.Name)
			return
		}
		in.paths = append(in.paths, s.Paths...)
		in.names = append(in.names, s.Paths...)
	}
	if len(args) == 0 {
		for _, s := range cfg.Sources {
			add(s)
		}
		return in
	}
	for _, a := range args {
		i := slices.IndexFunc(cfg.Sources, func(s config.Source) bool { return s.Name == a })
		if i < 0 {
			in.paths = append(in.paths, a)
			in.names = append(in.names, a)
			continue
		}
		add(cfg.Sources[i])
	}
	return in
}

func loadConfig(f auditFlags) (*config.Config, error) {
	cfg := config.Default()
	if f.config != "" {
		var err error
		if cfg, err = config.Load(f.config); err != nil {
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
// never leaves half a report behind, then writes it to stdout or a file.
func writeReport(e env, output string, r reports.Reporter, rep *twicetype.Report) error {
	var buf bytes.Buffer
	if err := r.Write(&buf, rep); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	if output == "" || output == "-" {
		_, err := io.Copy(e.stdout, &buf)
		return err
	}
	if err := os.WriteFile(output, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// checkWritable makes sure the report can be written before the audit
// runs, so that a mistyped -o fails at once rather than after the work.
func checkWritable(path string) error {
	if path == "" || path == "-" {
		return nil
	}
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	return fh.Close()
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
