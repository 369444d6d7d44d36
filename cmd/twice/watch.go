package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/twicehq/twice/audit"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/internal/kafkasec"
	"github.com/twicehq/twice/sidecar"
	"github.com/twicehq/twice/sidecar/kafkasink"
	"github.com/twicehq/twice/sidecar/webhooksink"
	"github.com/twicehq/twice/sources"
	"github.com/twicehq/twice/sources/builtin"
	"github.com/twicehq/twice/storage/clickhouse"
)

// shutdownTimeout bounds the stop after SIGTERM: stop intake, last
// checkpoint, publish, close.
const shutdownTimeout = 10 * time.Second

type watchFlags struct {
	config     string
	stateDir   string
	listen     string
	resetState bool
}

func newWatchCmd(e env) *cobra.Command {
	var f watchFlags
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Run the configured sources continuously (the sidecar)",
		Long: `watch reads the sources of twice.yaml without end (Kafka topics, queues,
files followed as tail -F does), audits their events with the same engine
as audit, and publishes findings as they change:
to stdout, a file or a Kafka topic (watch.findings) and on an HTTP API
(GET /findings, /metrics, /healthz, /readyz at watch.listen).

State is checkpointed to watch.state_dir every watch.checkpoint_interval: a
restart, even after SIGKILL, resumes where the last checkpoint left off,
with no event lost or counted twice and no finding revision lost or
published twice. SIGTERM or SIGINT stops intake, commits a last checkpoint
and exits within 10s.

Changed rules, detector settings, redaction or engine settings re-judge the
state: positions and finding revisions are kept, and the events of the
last horizon, kept in state_dir, are audited again under the new
configuration (findings it no longer makes are resolved). A state another
twice version wrote is refused (exit 2) before anything starts;
--reset-state then rebuilds the detector state from that history.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runWatch(cmd.Context(), e, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", "twice.yaml", "twice.yaml with sources and a watch section")
	fl.StringVar(&f.stateDir, "state-dir", "", "override watch.state_dir")
	fl.StringVar(&f.listen, "listen", "", `override watch.listen ("off" for no HTTP API)`)
	fl.BoolVar(&f.resetState, "reset-state", false, "rebuild the detector state from the history in state_dir when its snapshot is another twice version's")
	return cmd
}

func runWatch(ctx context.Context, e env, f watchFlags) error {
	if _, err := os.Stat(f.config); err != nil {
		return usageErr("watch needs a twice.yaml with sources (--config): %v", err)
	}
	taps := builtin.Registry()
	cfg, err := config.LoadWith(f.config, config.Options{Sources: taps})
	if err != nil {
		return usageErr("%v", err)
	}
	w := cfg.Watch
	if f.stateDir != "" {
		w.StateDir = f.stateDir
	}
	switch f.listen {
	case "":
	case "off":
		w.Listen = ""
	default:
		w.Listen = f.listen
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(e.stderr, "twice watch: "+format+"\n", args...)
	}
	var streams []sidecar.Stream
	for _, src := range cfg.Sources {
		s, err := taps.NewStream(src, sources.StreamOptions{DeadLetterMaxBytes: w.DeadLetterMaxBytes, Logf: logf})
		if err != nil {
			return usageErr("%s: %v", f.config, err)
		}
		streams = append(streams, s)
	}
	if len(streams) == 0 {
		return usageErr("%s: no source under sources: watch has nothing to read", f.config)
	}
	var sinks []sidecar.Sink
	for _, s := range w.Findings {
		switch s.Type {
		case config.SinkStdout:
			sinks = append(sinks, sidecar.NewWriterSink("stdout", e.stdout))
		case config.SinkFile:
			sinks = append(sinks, sidecar.NewFileSink(s.Path))
		case config.SinkKafka:
			sec, err := kafkasec.Load(s.TLS, s.SASL)
			if err != nil {
				return usageErr("%s: watch.findings (kafka topic %s): %v", f.config, s.Topic, err)
			}
			sinks = append(sinks, kafkasink.NewWith(s.Brokers, s.Topic, kafkasink.Options{Security: sec}))
		case config.SinkWebhook:
			u := s.URL
			if s.URLEnv != "" {
				if u = os.Getenv(s.URLEnv); u == "" {
					return usageErr("%s: watch.findings (webhook): environment variable %s is not set", f.config, s.URLEnv)
				}
			}
			ws, err := webhooksink.New(webhooksink.Options{URL: u, Format: s.Format, Timeout: s.Timeout,
				Logf: logf})
			if err != nil {
				return usageErr("%s: watch.findings (webhook): %v", f.config, err)
			}
			sinks = append(sinks, ws)
		}
	}
	opts := audit.EngineOptions(cfg)
	opts.ConfigHash = audit.ConfigHash(cfg)
	opts.Detectors.MaxJobs = w.Limits.MaxJobs
	opts.Detectors.MaxKeys = w.Limits.MaxEffectKeys
	opts.Detectors.MaxEntities = w.Limits.MaxEntities
	opts.MaxIdentities = w.Limits.MaxIdentities

	// The store is not reached here: a store that is down must not stop
	// the audit. The watch migrates and writes it when it answers, and
	// keeps the events meanwhile (sidecar/storebuffer.go).
	var store sidecar.EventStore
	storeName := ""
	if w.Store != "" {
		st, err := clickhouse.Open(w.Store, clickhouse.Options{})
		if err != nil {
			return usageErr("watch.store: %v", err)
		}
		defer st.Close()
		store, storeName = newWatchStore(st), st.DSN().String()
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, s := range streams {
		// A source with metrics of its own (the push taps) shows them too.
		if c, ok := s.(prometheus.Collector); ok {
			reg.MustRegister(c)
		}
	}
	for _, s := range sinks {
		if c, ok := s.(prometheus.Collector); ok { // the webhook sink
			reg.MustRegister(c)
		}
	}
	watcher := sidecar.New(sidecar.Options{
		Engine: opts, StateDir: w.StateDir,
		CheckpointInterval: w.CheckpointInterval, SnapshotInterval: w.SnapshotInterval,
		IdleTimeout: w.IdleTimeout, IdleAdvance: w.IdleAdvance, Streams: streams, Sinks: sinks,
		Store: store, StoreName: storeName, Registry: reg, Logf: logf,
		ConfigText: audit.ConfigText(cfg), ResetState: f.resetState,
	})
	// The state is checked before anything starts or is served: a state
	// this twice cannot use is a configuration error.
	if err := watcher.Open(ctx); err != nil {
		if errors.Is(err, sidecar.ErrStateMismatch) {
			return usageErr("%v", err)
		}
		return inputErr(err)
	}

	var srv *http.Server
	if w.Listen != "" {
		ln, err := net.Listen("tcp", w.Listen)
		if err != nil {
			watcher.Shutdown(ctx) // releases the state
			return usageErr("watch.listen: %v", err)
		}
		srv = &http.Server{Handler: apiAuth(watcher.Handler(reg), e.getenv(apiTokenEnv)), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		logf("HTTP API on http://%s", ln.Addr())
	}
	stopHTTP := func() {
		if srv != nil {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		}
	}
	defer stopHTTP()

	if err := watcher.Start(ctx); err != nil {
		return inputErr(err)
	}
	logf("watching %d source(s); state in %s", len(streams), w.StateDir)
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := watcher.Shutdown(sctx); err != nil {
			return inputErr(err)
		}
		logf("stopped after a last checkpoint")
		return nil
	case <-watcher.Done():
		if err := watcher.Err(); err != nil && !errors.Is(err, context.Canceled) {
			return inputErr(err)
		}
		return nil
	}
}
