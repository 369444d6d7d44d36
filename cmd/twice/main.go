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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], stdio())
	stop()
	os.Exit(code)
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
