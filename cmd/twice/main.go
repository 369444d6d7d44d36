// Command twice audits the side effects of background jobs: it correlates
// what the queue did with what happened downstream and reports duplicate,
// missing and late effects, lost jobs, retry storms and dead letters.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	tuneGC()
	ctx, stop := notifySignals(context.Background())
	code := run(ctx, os.Args[1:], stdio())
	stop()
	os.Exit(code)
}

// notifySignals returns a context cancelled, with a *signalError as its
// cause, by the first SIGINT or SIGTERM. A second one ends the process at
// once, as if twice did not catch signals.
func notifySignals(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			signal.Stop(sigs)
			cancel(&signalError{sig: sig})
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(context.Canceled)
	}
}

// tuneGC trades memory for speed unless the user set GOGC or GOMEMLIMIT:
// an audit allocates per event and keeps little, so collecting at 4× the
// live heap halves GC work, while a soft limit of 768 MiB keeps the peak
// well under the 1 GiB budget.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(768 << 20)
	}
}
