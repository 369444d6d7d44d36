package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
)

// Exit codes (spec §4); exitCoverage (coverage.go) and 128+N after
// signal N are this CLI's additions.
const (
	exitOK       = 0
	exitFindings = 1
	exitUsage    = 2
	exitInput    = 3
)

// signalError is the cause of a context cancelled by a signal (see
// notifySignals).
type signalError struct{ sig os.Signal }

func (e *signalError) Error() string { return "interrupted by " + signalName(e.sig) }

// code is the exit code of a process ended by the signal, as shells
// report it: 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
func (e *signalError) code() int {
	if s, ok := e.sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 128 + int(syscall.SIGINT)
}

func signalName(sig os.Signal) string {
	switch sig {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// env is what the CLI reads and writes, so tests can run it in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// isTerminal reports whether w is a terminal (for colour).
	isTerminal func(w io.Writer) bool
	getenv     func(string) string
}

func stdio() env {
	return env{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		isTerminal: func(w io.Writer) bool {
			f, ok := w.(*os.File)
			return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
		},
		getenv: os.Getenv,
	}
}

// exitError carries an exit code with the error behind it.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, a ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

func inputErr(err error) error { return &exitError{code: exitInput, err: err} }

// run runs the CLI with args and returns the exit code.
func run(ctx context.Context, args []string, e env) int {
	root := newRootCmd(e)
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	isExit := errors.As(err, &ee)
	// A command that finished (findings, coverage) keeps its exit; one
	// that failed after a signal ended by the signal, not by its input.
	var sig *signalError
	if (!isExit || ee.code != exitFindings && ee.code != exitCoverage) && errors.As(context.Cause(ctx), &sig) {
		fmt.Fprintf(e.stderr, "twice: %v\n", sig)
		return sig.code()
	}
	if isExit {
		if ee.err != nil && ee.code != exitFindings {
			fmt.Fprintf(e.stderr, "twice: %v\n", ee.err)
		}
		return ee.code
	}
	// Errors cobra raises itself (unknown flag or command) are usage
	// errors.
	fmt.Fprintf(e.stderr, "twice: %v\n", err)
	if strings.Contains(err.Error(), "unknown command") || strings.Contains(err.Error(), "flag") ||
		strings.Contains(err.Error(), "arg") {
		fmt.Fprintln(e.stderr, "Run 'twice --help' for usage.")
	}
	return exitUsage
}

func newRootCmd(e env) *cobra.Command {
	root := &cobra.Command{
		Use:   "twice",
		Short: "Audit the side effects of background jobs on at-least-once queues",
		Long: `twice correlates what your queue did (enqueued, started, failed, retried,
dead-lettered) with what actually happened downstream (emails, ledger rows,
webhooks), and reports where they disagree: duplicate and missing effects,
the crash window between effect and ack, out-of-order and stale updates,
lost jobs, retry storms and dead letters nobody replays.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       currentVersion(),
	}
	root.SetVersionTemplate("twice {{.Version}}\n")
	root.AddCommand(newAuditCmd(e), newWatchCmd(e), newVersionCmd(e))
	root.AddCommand(newMigrateCmd(e))
	root.AddCommand(newHealthcheckCmd(e))
	root.AddCommand(newBaselineCmd(e), newExplainCmd(e), newDetectorsCmd(e))
	root.AddCommand(newSimulateCmd(e))
	root.AddCommand(newTestCmd(e))
	return root
}

// version is set at build time with -ldflags "-X main.version=...";
// without it, currentVersion falls back to the module version the Go
// toolchain stamped into the binary.
var version = ""

// currentVersion is the version twice prints.
func currentVersion() string { return resolveVersion(version, debug.ReadBuildInfo) }

// resolveVersion returns the -ldflags version, else the main module's
// version from the build info (a tag, or a pseudo-version from the VCS
// checkout, "+dirty" when it had changes), else "dev".
func resolveVersion(ldflags string, buildInfo func() (*debug.BuildInfo, bool)) string {
	if ldflags != "" {
		return ldflags
	}
	if bi, ok := buildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func newVersionCmd(e env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "twice %s\n", currentVersion())
			return nil
		},
	}
}
