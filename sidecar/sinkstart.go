package sidecar

import (
	"context"
	"fmt"
	"time"

	"github.com/twicehq/twice/internal/backoff"
)

// A findings sink that cannot start (its broker is down) does not stop
// the watch either: revisions wait in the outbox, which the checkpoint
// keeps, and the sink is started again at later checkpoints, with
// backoff, then given what it missed.

// sinkStartTimeout bounds one attempt to start a sink, so that a sink
// whose server does not answer does not hold the watch loop.
const sinkStartTimeout = 10 * time.Second

type sinkState struct {
	up bool
	// held are the revisions the sink said it holds when it started,
	// until the first publish after the start has succeeded.
	held    map[uint64]bool
	catchUp bool
	retry   *backoff.Backoff
	nextTry time.Time
}

// startSink starts sink i unless it has started, or its next attempt is
// not due, and publishes what it missed; it reports whether the sink is
// up and caught up.
func (w *Watcher) startSink(ctx context.Context, i int) bool {
	if w.sinks == nil {
		w.sinks = make([]sinkState, len(w.opts.Sinks))
	}
	st, s := &w.sinks[i], w.opts.Sinks[i]
	if !st.up {
		now := w.opts.Now()
		if now.Before(st.nextTry) {
			return false
		}
		sctx, cancel := context.WithTimeout(ctx, sinkStartTimeout)
		held, err := s.Start(sctx, w.meta.Published[s.Name()])
		cancel()
		if err != nil {
			err = fmt.Errorf("findings sink %s: %w", s.Name(), err)
			if st.retry == nil {
				st.retry = backoff.New(time.Second, retryMax)
			}
			st.nextTry = now.Add(st.retry.Next())
			w.health.sinkFailed(i, err)
			w.m.publishErrors.WithLabelValues(s.Name()).Inc()
			w.opts.Logf("%v (findings wait in the state; retrying)", err)
			return false
		}
		st.up, st.held, st.catchUp, st.retry = true, held, true, nil
	}
	if st.catchUp {
		if err := w.publishTo(ctx, s, st.held); err != nil {
			// Published again at the next checkpoint, still skipping
			// what the sink held.
			w.m.publishErrors.WithLabelValues(s.Name()).Inc()
			w.opts.Logf("%v (retried at the next checkpoint)", err)
			return false
		}
		st.held, st.catchUp = nil, false
		w.health.sinkOK(i)
	}
	return true
}
