package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// TestProgressLine renders the line at chosen times with counts set by
// hand: share of the bytes, events/s over the time since the start,
// findings, and an ETA from the rate of bytes so far.
func TestProgressLine(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	read := int64(0)
	p := &progress{total: 128_000_000, start: t0, bytes: func() int64 { return read }, findings: func() int64 { return 7 }}

	if got, want := p.line(t0), "twice: 0 B of 128.0 MB (0%), 0 events, 0 events/s, 7 findings"; got != want {
		t.Errorf("at the start:\n got %q\nwant %q", got, want)
	}
	read = 32_000_000
	p.events.Store(250_000)
	if got, want := p.line(t0.Add(500*time.Millisecond)), "twice: 32.0 MB of 128.0 MB (25%), 250k events, 500k events/s, 7 findings"; got != want {
		t.Errorf("before a second (no ETA yet):\n got %q\nwant %q", got, want)
	}
	read = 64_000_000
	p.events.Store(500_000)
	if got, want := p.line(t0.Add(2*time.Second)), "twice: 64.0 MB of 128.0 MB (50%), 500k events, 250k events/s, 7 findings, ETA 2s"; got != want {
		t.Errorf("half way:\n got %q\nwant %q", got, want)
	}
	// Read ahead of the total (a file that grew): capped at 100%.
	read = 130_000_000
	p.events.Store(2_500_000)
	if got, want := p.line(t0.Add(4*time.Second)), "twice: 128.0 MB of 128.0 MB (100%), 2.50M events, 625k events/s, 7 findings, ETA 0s"; got != want {
		t.Errorf("at the end:\n got %q\nwant %q", got, want)
	}
	// Unknown total (stdin): no share, no ETA.
	p.total = 0
	read = 1500
	if got, want := p.line(t0.Add(4*time.Second)), "twice: 1.5 KB read, 2.50M events, 625k events/s, 7 findings"; got != want {
		t.Errorf("stdin:\n got %q\nwant %q", got, want)
	}
}

// TestProgressDrawsAndClears runs the drawing loop on a writer: the first
// line at once, a message written meanwhile blanks the line first, and
// the end leaves the line blank.
func TestProgressDrawsAndClears(t *testing.T) {
	var buf syncBuffer
	p := &progress{w: &buf, now: time.Now, total: 100, bytes: func() int64 { return 40 }}
	end := p.run(func() int64 { return 3 })
	fmt.Fprintf(p.writer(), "twice: malformed: x.jsonl:1: not valid JSON\n")
	end()
	end() // twice is fine
	got := buf.String()
	want := "\rtwice: 40 B of 100 B (40%), 0 events, 0 events/s, 3 findings"
	if !strings.HasPrefix(got, want) {
		t.Fatalf("output starts %q, want %q", got, want)
	}
	if !strings.Contains(got, "\r\x1b[Ktwice: malformed: x.jsonl:1: not valid JSON\n") {
		t.Errorf("the message was not written on a blanked line: %q", got)
	}
	if strings.Count(got, "\x1b[K") < 1 || strings.HasSuffix(got, "findings") {
		t.Errorf("the line was not blanked at the end: %q", got)
	}
}

// TestProgressOnlyOnATerminal: the decision is the env's isTerminal on
// stderr; an audit whose stderr is not a terminal writes no progress.
func TestProgressOnlyOnATerminal(t *testing.T) {
	e := env{stderr: io.Discard, isTerminal: func(io.Writer) bool { return false }}
	if p := newProgress(e, []string{"../../testdata/demo/events.jsonl"}, 0); p != nil {
		t.Fatal("progress on a stderr that is not a terminal")
	}
	var nilP *progress // what the audit holds then: every method does nothing
	nilP.count(nil)
	nilP.run(nil)()

	out := filepath.Join(t.TempDir(), "report.json")
	_, stderr, code := runCLI(t, "audit", "--format", "json", "-o", out, "../../testdata/demo/events.jsonl")
	if code != 0 && code != 1 {
		t.Fatalf("exit code %d: %s", code, stderr)
	}
	if strings.Contains(stderr, "\r") || strings.Contains(stderr, "events/s") {
		t.Errorf("progress on a stderr that is not a terminal: %q", stderr)
	}
}

// openPTY opens a pseudo-terminal pair with the Linux ioctls (no
// dependency for a test).
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		m.Close()
		t.Fatalf("unlockpt: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		m.Close()
		t.Fatalf("ptsname: %v", e)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatalf("open pts: %v", err)
	}
	return m, s
}

// TestProgressOnPTY audits a file with stderr on a real pseudo-terminal,
// decided by the same isatty check the CLI uses: the progress line shows
// the file's size and is blanked before the audit's other messages.
func TestProgressOnPTY(t *testing.T) {
	master, slave := openPTY(t)
	defer master.Close()
	var got bytes.Buffer
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			got.Write(b[:n])
			if err != nil { // EIO once the slave is closed and drained
				return
			}
		}
	}()

	in := filepath.Join(t.TempDir(), "events.jsonl")
	src, err := os.ReadFile("../../testdata/demo/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	// A malformed line, whose message must not mix with the line.
	if err := os.WriteFile(in, append(src, "{oops\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "report.json")
	term := stdio().isTerminal
	if !term(slave) {
		t.Fatal("isTerminal says a pseudo-terminal is not a terminal")
	}
	code := run(context.Background(), []string{"audit", "--format", "json", "-o", out, in}, env{
		stdin: strings.NewReader(""), stdout: io.Discard, stderr: slave,
		isTerminal: term, getenv: func(string) string { return "" },
	})
	slave.Close()
	<-readDone
	if code != 0 && code != 1 {
		t.Fatalf("exit code %d: %q", code, got.String())
	}
	st, _ := os.Stat(in)
	s := got.String()
	if want := fmt.Sprintf("of %s (", fmtBytes(st.Size())); !strings.Contains(s, want) {
		t.Errorf("terminal output has no %q: %q", want, s)
	}
	if !strings.Contains(s, "events/s") || !strings.Contains(s, "findings") {
		t.Errorf("terminal output has no rate or findings: %q", s)
	}
	if !strings.Contains(s, "\x1b[Ktwice: malformed:") {
		t.Errorf("the malformed line was not written on a blanked line: %q", s)
	}
}
