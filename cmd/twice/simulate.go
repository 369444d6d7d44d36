package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"

	"github.com/twicehq/twice/internal/kafkaprod"
	"github.com/twicehq/twice/simulate"
)

type simulateFlags struct {
	output, truth, config string
	seed                  uint64
	events, jobs          int64
	rates                 map[string]*float64
	noise                 bool
	tail, interval        time.Duration
	start                 string
	brokers               []string
	topic                 string
	rate                  float64
	score                 string
	min                   float64
}

func newSimulateCmd(e env) *cobra.Command {
	f := simulateFlags{rates: map[string]*float64{}}
	cmd := &cobra.Command{
		Use:   "simulate [-o EVENTS] | --score REPORT.json TRUTH",
		Short: "Write a simulated job system's events with known faults, and score a report against them",
		Long: `twice simulate writes the event stream of a realistic job system — four
job types on their queues, orders with versions, benign retries with
backoff, effects linked by job id or only by template — with faults
injected at the rates of the fault flags, to a file (JSON Lines, gzip when
the name ends in .gz) or a Kafka topic (--brokers, --topic, --rate).

Beside it, it writes the truth (every finding an audit must report,
exactly: detector, subject, fingerprint, cause) and the matching
twice.yaml. Audit the events and score the report:

  twice simulate --jobs 2000 -o sim.jsonl
  twice audit --config sim.twice.yaml --format json -o report.json sim.jsonl
  twice simulate --score report.json sim.truth.json

--score prints precision and recall per detector and exits 1 when one is
below --min (default 1.0).`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.score != "" {
				if len(args) != 1 {
					return usageErr("--score REPORT.json takes one argument, the truth file")
				}
				return runScore(e, f, args[0])
			}
			if len(args) > 0 {
				return usageErr("unexpected argument %q (write to -o FILE)", args[0])
			}
			return runSimulate(cmd.Context(), e, cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.output, "output", "o", "-", "events file (.gz: gzip), - for stdout")
	fl.StringVar(&f.truth, "truth", "", "truth file (default: the events file's name with .truth.json)")
	fl.StringVar(&f.config, "write-config", "", "twice.yaml to write (default: the events file's name with .twice.yaml)")
	fl.Uint64Var(&f.seed, "seed", 1, "random seed: the same flags write the same bytes")
	fl.Int64Var(&f.events, "events", 0, "write at least this many events (default 100000 unless --jobs)")
	fl.Int64Var(&f.jobs, "jobs", 0, "write this many units of work (a job, or the jobs of one fault)")
	rates := simulate.DefaultRates()
	for _, name := range simulate.Faults {
		f.rates[name] = fl.Float64(name, rates[name], "rate per unit of work: "+simulate.FaultHelp[name])
	}
	fl.BoolVar(&f.noise, "noise", false, "reorder lines within blocks of 32, repeat some (same id), add malformed lines")
	fl.DurationVar(&f.tail, "tail", simulate.LostAfter+time.Minute, "end with a quiet event this long after the last, so every deadline is due (0: none; later deadlines are pending)")
	fl.DurationVar(&f.interval, "interval", 2*time.Second, "mean event time between two units of work")
	fl.StringVar(&f.start, "start", "2026-11-01T00:00:00Z", "event time of the first event (RFC 3339)")
	fl.StringSliceVar(&f.brokers, "brokers", nil, "write to Kafka at these brokers (host:port,...) instead of a file")
	fl.StringVar(&f.topic, "topic", "", "Kafka topic to write to (with --brokers)")
	fl.Float64Var(&f.rate, "rate", 0, "events per second to write (0: as fast as possible)")
	fl.StringVar(&f.score, "score", "", "score this JSON report against the truth file given as argument")
	fl.Float64Var(&f.min, "min", 1.0, "with --score: the precision and recall each detector must reach")
	return cmd
}

// simBase is the name the truth and config files are derived from.
func simBase(f simulateFlags) string {
	if len(f.brokers) > 0 || f.output == "-" {
		return "simulate"
	}
	b := strings.TrimSuffix(f.output, ".gz")
	return strings.TrimSuffix(strings.TrimSuffix(b, ".jsonl"), ".ndjson")
}

func runSimulate(ctx context.Context, e env, cmd *cobra.Command, f simulateFlags) error {
	start, err := time.Parse(time.RFC3339, f.start)
	if err != nil {
		return usageErr("--start: want an RFC 3339 time, got %q", f.start)
	}
	opts := simulate.Options{Seed: f.seed, Events: f.events, Jobs: f.jobs, Rates: map[string]float64{},
		Start: start, Interval: f.interval, Tail: f.tail}
	if opts.Events == 0 && opts.Jobs == 0 {
		opts.Events = 100_000
	}
	for name, r := range f.rates {
		opts.Rates[name] = *r
	}
	if f.noise {
		opts.Noise = simulate.DefaultNoise
	}
	if err := opts.Validate(); err != nil {
		return usageErr("%v", err)
	}
	kafka := len(f.brokers) > 0
	if kafka != (f.topic != "") {
		return usageErr("--brokers and --topic go together")
	}
	if kafka && cmd.Flags().Changed("output") {
		return usageErr("-o and --brokers: write to a file or to Kafka, not both")
	}
	if f.rate < 0 {
		return usageErr("--rate: want 0 or more events per second, got %g", f.rate)
	}
	base := simBase(f)
	if f.truth == "" {
		f.truth = base + ".truth.json"
	}
	if f.config == "" {
		f.config = base + ".twice.yaml"
	}

	var sink lineSink
	where := f.output
	switch {
	case kafka:
		sink = newKafkaSink(ctx, f.brokers, f.topic)
		where = fmt.Sprintf("Kafka topic %s", f.topic)
	case f.output == "-":
		sink = &fileSink{w: bufio.NewWriterSize(e.stdout, 1<<20)}
		where = "stdout"
	default:
		fs, err := newFileSink(f.output)
		if err != nil {
			return inputErr(err)
		}
		sink = fs
	}
	pace := newPacer(ctx, f.rate)
	truth, st, err := simulate.Generate(func(line []byte) error {
		if err := pace.wait(sink.flush); err != nil {
			return err
		}
		return sink.write(line)
	}, opts)
	if cerr := sink.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return inputErr(fmt.Errorf("writing events to %s: %w", where, err))
	}
	data, err := json.MarshalIndent(truth, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(f.truth, append(data, '\n'), 0o644); err != nil {
		return inputErr(fmt.Errorf("writing the truth: %w", err))
	}
	cfg := simulate.ConfigYAML()
	if kafka {
		cfg += fmt.Sprintf("sources:\n  - name: simulated\n    type: kafka\n    brokers: [%s]\n    topics: [%s]\n",
			strings.Join(f.brokers, ", "), f.topic)
	}
	if err := os.WriteFile(f.config, []byte(cfg), 0o644); err != nil {
		return inputErr(fmt.Errorf("writing the config: %w", err))
	}
	var faults int64
	for _, n := range st.Faults {
		faults += n
	}
	fmt.Fprintf(e.stderr, "twice simulate: %d lines (%d events, %d repeated, %d malformed), %d jobs, %d faults, %s to %s, to %s\n",
		st.Lines, st.Events, st.Repeated, st.Malformed, st.Jobs, faults,
		st.From.Format(time.RFC3339), st.To.Format(time.RFC3339), where)
	fmt.Fprintf(e.stderr, "twice simulate: truth (%d findings) in %s, config in %s\n", len(truth.Findings), f.truth, f.config)
	return nil
}

// lineSink is where simulated lines go.
type lineSink interface {
	write(line []byte) error
	// flush sends what is buffered on (before the pacer waits).
	flush() error
	close() error
}

type fileSink struct {
	w  *bufio.Writer
	gz *gzip.Writer
	f  *os.File
}

func newFileSink(path string) (*fileSink, error) {
	if dir := filepath.Dir(path); dir != "." {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("-o %s: no folder %s", path, dir)
		}
	}
	file, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	s := &fileSink{f: file}
	var w io.Writer = file
	if strings.HasSuffix(path, ".gz") {
		s.gz = gzip.NewWriter(file)
		w = s.gz
	}
	s.w = bufio.NewWriterSize(w, 1<<20)
	return s, nil
}

func (s *fileSink) write(line []byte) error {
	s.w.Write(line)
	return s.w.WriteByte('\n')
}

func (s *fileSink) flush() error { return s.w.Flush() }

func (s *fileSink) close() error {
	err := s.w.Flush()
	if s.gz != nil {
		err = errors.Join(err, s.gz.Close())
	}
	if s.f != nil {
		err = errors.Join(err, s.f.Close())
	}
	return err
}

// kafkaSink produces lines keyed by job id (else entity, else effect
// key), so each job's events keep their order in one partition.
type kafkaSink struct {
	ctx   context.Context
	w     *kafkago.Writer
	batch []kafkago.Message
}

func newKafkaSink(ctx context.Context, brokers []string, topic string) *kafkaSink {
	return &kafkaSink{ctx: ctx, w: &kafkago.Writer{
		Addr: kafkago.TCP(brokers...), Topic: topic, Balancer: &kafkago.Hash{},
		BatchSize: 1000, BatchTimeout: 10 * time.Millisecond, RequiredAcks: kafkago.RequireAll,
		AllowAutoTopicCreation: true,
	}}
}

func (s *kafkaSink) write(line []byte) error {
	v := append([]byte(nil), line...)
	s.batch = append(s.batch, kafkago.Message{Key: kafkaprod.Key(v), Value: v})
	if len(s.batch) >= 1000 {
		return s.flush()
	}
	return nil
}

func (s *kafkaSink) flush() error {
	if len(s.batch) == 0 {
		return nil
	}
	err := s.w.WriteMessages(s.ctx, s.batch...)
	s.batch = s.batch[:0]
	return err
}

func (s *kafkaSink) close() error { return errors.Join(s.flush(), s.w.Close()) }

// pacer holds lines to a rate; with rate 0 it never waits. Before it
// waits it flushes the sink, so a batching sink (Kafka) sends what the
// rate allowed so far instead of holding it.
type pacer struct {
	ctx   context.Context
	rate  float64
	start time.Time
	n     int64
}

func newPacer(ctx context.Context, rate float64) *pacer {
	return &pacer{ctx: ctx, rate: rate}
}

func (p *pacer) wait(beforeWait func() error) error {
	if err := p.ctx.Err(); err != nil || p.rate <= 0 {
		return err
	}
	if p.n == 0 {
		p.start = time.Now()
	}
	due := p.start.Add(time.Duration(float64(p.n) / p.rate * float64(time.Second)))
	p.n++
	if d := time.Until(due); d > 0 {
		if err := beforeWait(); err != nil {
			return err
		}
		t := time.NewTimer(time.Until(due))
		defer t.Stop()
		select {
		case <-p.ctx.Done():
			return p.ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// runScore compares a JSON report with a truth file and prints precision
// and recall per detector.
func runScore(e env, f simulateFlags, truthPath string) error {
	if f.min < 0 || f.min > 1 {
		return usageErr("--min: want 0 to 1, got %g", f.min)
	}
	truth, err := simulate.ReadTruth(truthPath)
	if err != nil {
		return inputErr(err)
	}
	rf, err := os.Open(f.score)
	if err != nil {
		return inputErr(err)
	}
	defer rf.Close()
	got, err := simulate.ReadReport(rf)
	if err != nil {
		return inputErr(fmt.Errorf("%s: %w", f.score, err))
	}
	d := simulate.Compare(truth.Findings, got)
	scores := simulate.ScoreDiff(d)
	simulate.WriteScores(e.stdout, scores)
	var low []string
	for _, s := range scores {
		if s.Precision < f.min || s.Recall < f.min {
			low = append(low, s.Detector)
		}
	}
	if len(d.Missing)+len(d.Mismatched)+len(d.Unexpected) == 0 {
		fmt.Fprintf(e.stdout, "all %d expected findings reported, nothing else\n", len(truth.Findings))
		return nil
	}
	d.WriteDiff(e.stdout, "", true, 20)
	if len(low) == 0 {
		return nil
	}
	fmt.Fprintf(e.stdout, "below %.3f: %s\n", f.min, strings.Join(low, ", "))
	return &exitError{code: exitFindings, err: fmt.Errorf("score below %g", f.min)}
}
