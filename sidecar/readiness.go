package sidecar

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twicehq/twice/internal/backoff"
)

// A source that cannot be reached never stops the watch: its stream is
// started on its own goroutine and started again, with backoff and
// jitter, until it works; a stream whose Poll fails is polled again the
// same way. Meanwhile the other sources are audited, the source's
// positions stay as last checkpointed, its lag gauges keep their last
// values, and /readyz answers 503 naming the source and why.

// Retry delays of a source that fails: from retryMin, doubling to
// retryMax, with jitter.
const (
	retryMin = 200 * time.Millisecond
	retryMax = 30 * time.Second
)

// HealthReporter is a Stream that can tell, while running, that it is not
// getting records (a Kafka partition whose fetches fail and are being
// retried). Health returns nil when all is well. It must be safe to call
// from any goroutine.
type HealthReporter interface {
	Health() error
}

// sourceHealth is what /readyz says of each source.
type sourceHealth struct {
	mu      sync.Mutex
	started []bool
	// err is the last failure to start or to poll; nil once it works.
	err      []error
	failedAt []time.Time
	attempts []int
	// sinkErr is, per findings sink, why it has not started; nil once
	// it has.
	sinkErr []error

	retries *prometheus.CounterVec
	up      *prometheus.GaugeVec
}

func newSourceHealth(reg prometheus.Registerer, streams []Stream, sinks []Sink) *sourceHealth {
	h := &sourceHealth{
		sinkErr:  make([]error, len(sinks)),
		started:  make([]bool, len(streams)),
		err:      make([]error, len(streams)),
		failedAt: make([]time.Time, len(streams)),
		attempts: make([]int, len(streams)),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twice_source_retries_total", Help: "Failed attempts to start or read a source, each retried with backoff.",
		}, []string{"source"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "twice_source_up", Help: "1 while a source is started and read without error, else 0.",
		}, []string{"source"}),
	}
	for _, s := range streams {
		h.up.WithLabelValues(s.Name()).Set(0)
		h.retries.WithLabelValues(s.Name())
	}
	if reg != nil {
		reg.MustRegister(h.retries, h.up)
	}
	return h
}

func (h *sourceHealth) failed(i int, name string, err error, now time.Time) {
	h.mu.Lock()
	h.err[i] = err
	h.failedAt[i] = now
	h.attempts[i]++
	h.mu.Unlock()
	h.retries.WithLabelValues(name).Inc()
	h.up.WithLabelValues(name).Set(0)
}

// ok records that stream i started, or polled without error.
func (h *sourceHealth) ok(i int, name string) {
	h.mu.Lock()
	changed := !h.started[i] || h.err[i] != nil
	h.started[i] = true
	h.err[i] = nil
	h.attempts[i] = 0
	h.mu.Unlock()
	if changed {
		h.up.WithLabelValues(name).Set(1)
	}
}

func (h *sourceHealth) sinkFailed(i int, err error) {
	h.mu.Lock()
	h.sinkErr[i] = err
	h.mu.Unlock()
}

func (h *sourceHealth) sinkOK(i int) {
	h.mu.Lock()
	h.sinkErr[i] = nil
	h.mu.Unlock()
}

func (h *sourceHealth) isStarted(i int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.started[i]
}

// problems returns, per source that is not being read, why.
func (h *sourceHealth) problems(streams []Stream) map[string]string {
	out := map[string]string{}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, s := range streams {
		switch {
		case !h.started[i] && h.err[i] == nil:
			out[s.Name()] = "starting"
		case !h.started[i]:
			out[s.Name()] = fmt.Sprintf("not started: %v (%d attempts, last at %s; retrying)",
				h.err[i], h.attempts[i], h.failedAt[i].UTC().Format(time.RFC3339))
		case h.err[i] != nil:
			out[s.Name()] = fmt.Sprintf("not read: %v (%d attempts; retrying)", h.err[i], h.attempts[i])
		default:
			if hr, ok := s.(HealthReporter); ok {
				if err := hr.Health(); err != nil {
					out[s.Name()] = fmt.Sprintf("not read: %v (retrying)", err)
				}
			}
		}
	}
	return out
}

// startStream starts stream i, retrying with backoff until it starts or
// ctx ends; false then.
func (w *Watcher) startStream(ctx context.Context, i int, s Stream) bool {
	b := backoff.New(retryMin, retryMax)
	for {
		err := s.Start(ctx, w.resume[i])
		if err == nil {
			w.health.ok(i, s.Name())
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		w.health.failed(i, s.Name(), err, w.opts.Now())
		w.opts.Logf("source %s: %v (retrying)", s.Name(), err)
		if b.Wait(ctx) != nil {
			return false
		}
	}
}

// Readiness reports whether the watch is ready: state restored, every
// source started and read without error, every findings sink started.
// When it is not, reasons says
// why, one line per source (or "restoring state", "stopping").
func (w *Watcher) Readiness() (ready bool, reasons []string) {
	w.mu.Lock()
	restored, stopped := w.ready, w.stopped
	w.mu.Unlock()
	switch {
	case stopped:
		return false, []string{"stopping"}
	case !restored:
		return false, []string{"restoring state"}
	}
	for name, why := range w.health.problems(w.opts.Streams) {
		reasons = append(reasons, fmt.Sprintf("source %s: %s", name, why))
	}
	w.health.mu.Lock()
	for _, err := range w.health.sinkErr {
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("%v (not started; findings wait in the state)", err))
		}
	}
	w.health.mu.Unlock()
	sort.Strings(reasons)
	return len(reasons) == 0, reasons
}

// readyText is the body of /readyz. An event store that fails does not
// make the watch unready (the audit goes on, its backlog waits in the
// state), but the body says so.
func (w *Watcher) readyText() (int, string) {
	ready, reasons := w.Readiness()
	w.mu.Lock()
	sw := w.storeW
	w.mu.Unlock()
	degraded := ""
	if sw != nil {
		if p := sw.problem(); p != "" {
			degraded = "degraded: " + p + "\n"
		}
	}
	if ready {
		return 200, "ready\n" + degraded
	}
	return 503, "not ready\n" + strings.Join(reasons, "\n") + "\n" + degraded
}
