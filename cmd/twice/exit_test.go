package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader on other
// goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stalledInput is what an audit reads from a pipe that stays open: a
// malformed first line, so that the audit says on stderr when it has
// parsed the first block, then more than a block (1 MiB) of valid events.
func stalledInput() []byte {
	var b bytes.Buffer
	b.WriteString("{not json\n")
	for i := 0; b.Len() < 3<<20/2; i++ {
		fmt.Fprintf(&b, `{"id":"s-%d","ts":"2026-11-24T10:00:00Z","kind":"state","entity":"order:%d"}`+"\n", i, i)
	}
	return b.Bytes()
}

// dirEntries lists the names in dir.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestAuditInterruptedExitsBySignal: SIGINT or SIGTERM in the middle of an
// audit exits 130 or 143 (not 3, "input could not be read"), and the -o
// file is left as it was: no partial report, no temporary file.
func TestAuditInterruptedExitsBySignal(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "report.json")
			if err := os.WriteFile(out, []byte("last week's report\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			pr, pw := io.Pipe()
			defer pw.Close()
			go pw.Write(stalledInput())
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			stderr := &syncBuffer{}
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, []string{"audit", "--format", "json", "-o", out, "-"}, env{
					stdin: pr, stdout: io.Discard, stderr: stderr,
					isTerminal: func(io.Writer) bool { return false },
					getenv:     func(string) string { return "" },
				})
			}()
			waitFor(t, "the audit to parse its first block", func() bool { return strings.Contains(stderr.String(), "malformed") })
			cancel(&signalError{sig: tc.sig})
			code := <-done
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			if !strings.Contains(stderr.String(), "interrupted by "+signalName(tc.sig)) {
				t.Errorf("stderr does not say the audit was interrupted:\n%s", stderr)
			}
			if raw, _ := os.ReadFile(out); string(raw) != "last week's report\n" {
				t.Errorf("-o file changed by an interrupted audit: %q", raw)
			}
			if names := dirEntries(t, dir); len(names) != 1 {
				t.Errorf("files left beside the report: %q", names)
			}
		})
	}
}

// TestAuditOutputIsWholeOrAbsent: -o never leaves an empty or partial
// file when the audit fails, and keeps an earlier report as it was.
func TestAuditOutputIsWholeOrAbsent(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "report.json")
	if _, _, code := runCLI(t, "audit", "-o", out, filepath.Join(dir, "missing.jsonl")); code != exitInput {
		t.Fatalf("missing input: exit %d, want %d", code, exitInput)
	}
	if names := dirEntries(t, dir); len(names) != 0 {
		t.Fatalf("a failed audit left %q", names)
	}
	if err := os.WriteFile(out, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := writeFile(t, "events.jsonl", crashRetry+"{not json\n")
	if _, _, code := runCLI(t, "audit", "--strict", "-o", out, bad); code != exitInput {
		t.Fatalf("--strict: exit %d, want %d", code, exitInput)
	}
	if raw, _ := os.ReadFile(out); string(raw) != "old\n" {
		t.Fatalf("failed audit changed the report to %q", raw)
	}
	// A good audit replaces it whole, keeping its mode.
	events := writeFile(t, "events.jsonl", crashRetry)
	if _, _, code := runCLI(t, "audit", "--format", "json", "-o", out, events); code != exitFindings {
		t.Fatalf("exit %d", code)
	}
	raw, _ := os.ReadFile(out)
	if len(findingIDs(decodeReport(t, string(raw)))) != 2 {
		t.Fatalf("report: %s", raw)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want the 0600 of the file replaced", fi.Mode().Perm())
	}
	if names := dirEntries(t, dir); len(names) != 1 {
		t.Errorf("files left beside the report: %q", names)
	}
	// A new report file gets 0644.
	fresh := filepath.Join(dir, "fresh.json")
	runCLI(t, "audit", "-o", fresh, events)
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("new report: %v %v, want mode 0644", fi, err)
	}
	if _, stderr, code := runCLI(t, "audit", "-o", dir, events); code != exitUsage || !strings.Contains(stderr, "folder") {
		t.Errorf("-o a folder: exit %d, stderr %s", code, stderr)
	}
}

func TestResolveVersion(t *testing.T) {
	info := func(v string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			bi := &debug.BuildInfo{}
			bi.Main.Version = v
			return bi, true
		}
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	for _, tc := range []struct {
		ldflags string
		info    func() (*debug.BuildInfo, bool)
		want    string
	}{
		{"v1.2.3", info("v0.0.0-20261124100000-0123456789ab"), "v1.2.3"},
		{"", info("v0.4.0"), "v0.4.0"},
		{"", info("v0.0.0-20261124100000-0123456789ab+dirty"), "v0.0.0-20261124100000-0123456789ab+dirty"},
		{"", info("(devel)"), "dev"},
		{"", info(""), "dev"},
		{"", none, "dev"},
	} {
		if got := resolveVersion(tc.ldflags, tc.info); got != tc.want {
			t.Errorf("resolveVersion(%q, ...) = %q, want %q", tc.ldflags, got, tc.want)
		}
	}
	a, _, code1 := runCLI(t, "--version")
	b, _, code2 := runCLI(t, "version")
	if code1 != 0 || code2 != 0 || a != b || a != "twice "+currentVersion()+"\n" {
		t.Errorf("--version %q (%d), version %q (%d)", a, code1, b, code2)
	}
}

// TestDockerfileSetsTheVersion: the image's binary says which version it
// is.
func TestDockerfileSetsTheVersion(t *testing.T) {
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^ARG VERSION\b`).Match(raw) || !strings.Contains(string(raw), "-X main.version=${VERSION}") {
		t.Errorf("Dockerfile does not build with -ldflags -X main.version=${VERSION}:\n%s", raw)
	}
}

// testVersion is what the binary of buildTwice is stamped with.
const testVersion = "v9.9.9-test"

// buildTwice builds this command, stamped with testVersion as the
// Dockerfile stamps releases.
func buildTwice(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "twice")
	out, err := exec.Command("go", "build", "-ldflags", "-X main.version="+testVersion, "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBinaryVersionAndSignals runs the built binary: the version set by
// -ldflags, and the exit codes of real SIGINT and SIGTERM during an audit
// that reads a pipe.
func TestBinaryVersionAndSignals(t *testing.T) {
	bin := buildTwice(t)
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, err := exec.Command(bin, args...).Output()
		if err != nil || string(out) != "twice "+testVersion+"\n" {
			t.Errorf("twice %s = %q, %v; want twice %s", args[0], out, err, testVersion)
		}
	}
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(bin, "audit", "-o", filepath.Join(dir, "report.txt"), "-")
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			go stdin.Write(stalledInput())
			lines := bufio.NewScanner(stderr)
			var seen []string
			for lines.Scan() {
				seen = append(seen, lines.Text())
				if strings.Contains(lines.Text(), "malformed") {
					break
				}
			}
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			for lines.Scan() {
				seen = append(seen, lines.Text())
			}
			err = cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
				t.Fatalf("exit %v, want %d; stderr:\n%s", err, tc.code, strings.Join(seen, "\n"))
			}
			if names := dirEntries(t, dir); len(names) != 0 {
				t.Errorf("an interrupted audit left %q", names)
			}
		})
	}
}
