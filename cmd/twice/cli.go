package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
)

// Exit codes (spec §4).
const (
	exitOK       = 0
	exitFindings = 1
	exitUsage    = 2
	exitInput    = 3
)

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
	if errors.As(err, &ee) {
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
	}
	root.AddCommand(newAuditCmd(e), newWatchCmd(e), newVersionCmd(e))
	root.AddCommand(newMigrateCmd(e))
	return root
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newVersionCmd(e env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "twice %s\n", version)
			return nil
		},
	}
}
