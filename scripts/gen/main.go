// Command gen writes a deterministic, realistic stream of normalized twice
// events (JSON Lines, spec §1) with injected faults that exercise every
// detector of spec §2, for benchmarks and end-to-end tests.
//
//	go run ./scripts/gen -events 1000000 -seed 1 -o events.jsonl [-config twice.yaml]
//
// The same flags always produce the same bytes: the only source of
// randomness is math/rand/v2 seeded with -seed, and event time starts at
// 2026-11-01T00:00:00Z. A one-line summary of what was written and of every
// injected fault goes to stderr.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(2)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts := defaultOptions()
	fs.Int64Var(&opts.Events, "events", opts.Events, "number of lines to write (valid events, repeated copies and malformed lines)")
	fs.Uint64Var(&opts.Seed, "seed", opts.Seed, "random seed; the same seed and flags give the same bytes")
	fs.DurationVar(&opts.JobInterval, "job-interval", opts.JobInterval, "mean event time between two job starts")
	out := fs.String("o", "-", "output file (- for stdout)")
	cfg := fs.String("config", "", "also write the matching twice.yaml to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if opts.Events < 0 {
		return fmt.Errorf("-events must be >= 0, got %d", opts.Events)
	}
	if opts.JobInterval < time.Millisecond {
		return fmt.Errorf("-job-interval must be at least 1ms, got %v", opts.JobInterval)
	}

	if *cfg != "" {
		if err := os.WriteFile(*cfg, []byte(ConfigYAML), 0o644); err != nil {
			return err
		}
	}

	var w io.Writer = os.Stdout
	var f *os.File
	if *out != "-" {
		var err error
		if f, err = os.Create(*out); err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	st, err := Generate(bw, opts)
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return err
		}
	}
	fmt.Fprintln(stderr, st.String())
	return nil
}

// ConfigYAML is the twice.yaml (spec §3) that matches the generated events.
const ConfigYAML = `# twice.yaml for events written by scripts/gen
expect:
  - job_type: SendReceipt
    effect: email.sent
    effect_key: "receipt/{{key}}"
    within: 5m
  - job_type: ChargeCard
    effect: ledger.insert
    effect_key: "ledger/{{key}}"
    within: 5m
  - job_type: DeliverWebhook
    effect: webhook.delivered
    effect_key: "webhook/{{key}}"
    within: 5m
detectors:
  stale-execution: {max_start_delay: 15m}
  lost-job: {lost_after: 1h}
  retry-storm: {window: 1m, amplification: 2.0, min_attempts: 20}
  duplicate-effect: {max_per_key: 1}
`
