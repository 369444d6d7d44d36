package file_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/collectors/file"
	"github.com/twicehq/twice/sources"
)

// tailer is a Tail under test: every Poll reads what the files hold at
// that moment (wait 0), so the test decides what happens between reads.
type tailer struct {
	t    *testing.T
	tail *file.Tail
}

func startTail(t *testing.T, paths []string, resume map[string]sources.Position) *tailer {
	t.Helper()
	tl, err := file.NewTail("logs", paths, file.TailOptions{MaxLineBytes: 120, PollInterval: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := tl.Start(context.Background(), resume); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Shutdown(context.Background()) })
	return &tailer{t: t, tail: tl}
}

// poll reads once and describes each record: "id@line" for an event,
// "bad@line" for a malformed line, "lost: reason" for a gap, "mark" for
// a record that only moves the position.
func (tl *tailer) poll() ([]string, []sources.Record) {
	tl.t.Helper()
	recs, err := tl.tail.Poll(context.Background(), 0)
	if err != nil {
		tl.t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		switch {
		case r.Event != nil:
			out = append(out, fmt.Sprintf("%s@%d", r.Event.ID, r.Event.Line))
		case r.Malformed != nil:
			out = append(out, fmt.Sprintf("bad@%d", r.Malformed.Line))
		case r.Lost != nil:
			out = append(out, "lost: "+r.Lost.Reason)
		default:
			out = append(out, "mark")
		}
	}
	return out, recs
}

func (tl *tailer) expect(want ...string) []sources.Record {
	tl.t.Helper()
	got, recs := tl.poll()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		tl.t.Fatalf("read %q, want %q", got, want)
	}
	return recs
}

func ev(id string) string {
	return fmt.Sprintf(`{"id":%q,"ts":"2026-11-24T10:00:00Z","kind":"state","entity":"e"}`+"\n", id)
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestTailLines: only complete lines count; a partial last line is read
// once its newline is written; blank lines are skipped; bad lines are
// malformed with their line numbers.
func TestTailLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	appendTo(t, path, ev("a")+"\n"+ev("b")+`{"id":"c","ts":"2026-11-24T10:00:00Z",`)
	tl := startTail(t, []string{path}, nil)
	tl.expect("a@1", "b@3")
	tl.expect()
	appendTo(t, path, `"kind":"state","entity":"e"}`)
	tl.expect() // still no newline
	appendTo(t, path, "\nnot json\n"+strings.Repeat("x", 200)+"\n"+ev("d"))
	tl.expect("c@4", "bad@5", "bad@6", "d@7")
	if got := tl.tail.Lanes(); len(got) != 1 || got[0] != path {
		t.Errorf("Lanes = %v, want [%s]", got, path)
	}
}

// TestTailResume: a Tail started at a record's position reads what
// follows it, with the same line numbers, and nothing before it.
func TestTailResume(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	appendTo(t, path, ev("a")+ev("b")+ev("c"))
	recs := startTail(t, []string{path}, nil).expect("a@1", "b@2", "c@3")
	appendTo(t, path, ev("d"))
	tl := startTail(t, []string{path}, map[string]sources.Position{path: recs[1].Position})
	tl.expect("c@3", "d@4")
}

// TestTailRotation: a file renamed away and replaced is read to its end
// (its last line even without a newline), then the new file from its
// start; a file truncated in place is read again from its start.
func TestTailRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	appendTo(t, path, ev("a"))
	tl := startTail(t, []string{path}, nil)
	tl.expect("a@1")

	appendTo(t, path, ev("b")+strings.TrimSuffix(ev("c"), "\n"))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, ev("d"))
	tl.expect("b@2", "c@3", "mark", "d@1")

	// Removed, then created again.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	tl.expect("mark")
	got, _ := tl.poll()
	if len(got) != 0 {
		t.Fatalf("read %q from a removed file", got)
	}
	if err := tl.tail.Health(); err == nil || !strings.Contains(err.Error(), "app.log") {
		t.Errorf("Health while the file is missing = %v, want it named", err)
	}
	appendTo(t, path, ev("e"))
	tl.expect("e@1")
	if err := tl.tail.Health(); err != nil {
		t.Errorf("Health = %v once the file is back", err)
	}

	// copytruncate: the same file, shorter.
	appendTo(t, path, ev("f"))
	tl.expect("f@2")
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, ev("g"))
	tl.expect("mark", "g@1")
}

// TestTailRestartAfterRotation: a file rotated while twice was stopped is
// found in its directory by device and inode and read to its end; when
// it is gone, or the file was truncated below the position, the lane
// reports lost coverage and reads the new file from its start.
func TestTailRestartAfterRotation(t *testing.T) {
	setup := func(t *testing.T) (string, sources.Position) {
		path := filepath.Join(t.TempDir(), "app.log")
		appendTo(t, path, ev("a")+ev("b"))
		recs := startTail(t, []string{path}, nil).expect("a@1", "b@2")
		return path, recs[0].Position
	}
	// A position after both lines, for the truncation to fall below.
	setup2 := func(t *testing.T) (string, sources.Position) {
		path := filepath.Join(t.TempDir(), "app.log")
		appendTo(t, path, ev("a")+ev("b"))
		recs := startTail(t, []string{path}, nil).expect("a@1", "b@2")
		return path, recs[1].Position
	}
	t.Run("found", func(t *testing.T) {
		path, pos := setup(t)
		appendTo(t, path, ev("c"))
		os.Rename(path, path+".1")
		appendTo(t, path, ev("x"))
		tl := startTail(t, []string{path}, map[string]sources.Position{path: pos})
		recs := tl.expect("b@2", "c@3", "mark", "x@1")
		// The mark names the new file: a restart there reads nothing old.
		tl2 := startTail(t, []string{path}, map[string]sources.Position{path: recs[2].Position})
		tl2.expect("x@1")
	})
	t.Run("gone", func(t *testing.T) {
		path, pos := setup(t)
		os.Remove(path)
		appendTo(t, path, ev("x"))
		recs := startTail(t, []string{path}, map[string]sources.Position{path: pos}).
			expect("lost: file rotated away while twice was stopped, and not found", "x@1")
		// Resuming at the gap does not report it again.
		startTail(t, []string{path}, map[string]sources.Position{path: recs[0].Position}).expect("x@1")
	})
	t.Run("truncated", func(t *testing.T) {
		path, pos := setup2(t)
		os.Truncate(path, 0)
		appendTo(t, path, ev("x"))
		recs := startTail(t, []string{path}, map[string]sources.Position{path: pos}).
			expect("lost: file truncated while twice was stopped", "x@1")
		startTail(t, []string{path}, map[string]sources.Position{path: recs[0].Position}).expect("x@1")
	})
}

// TestTailGlob: files that match a glob later are followed too, and a
// rotated file the glob also matches is not read twice.
func TestTailGlob(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	appendTo(t, a, ev("a1"))
	tl := startTail(t, []string{filepath.Join(dir, "*.log*")}, nil)
	tl.expect("a1@1")
	appendTo(t, b, ev("b1"))
	tl.expect("b1@1")
	appendTo(t, a, ev("a2"))
	os.Rename(a, a+".1")
	appendTo(t, a, ev("a3"))
	tl.expect("a2@2", "mark", "a3@1")
	tl.expect()
	if got := tl.tail.Lanes(); len(got) != 2 {
		t.Errorf("Lanes = %v, want a.log and b.log only", got)
	}
}

// TestNewTailRefuses what cannot be followed.
func TestNewTailRefuses(t *testing.T) {
	for _, p := range []string{"-", "events.jsonl.gz", "[x"} {
		if _, err := file.NewTail("s", []string{p}, file.TailOptions{}); err == nil {
			t.Errorf("NewTail(%q) = nil error", p)
		}
	}
}

// BenchmarkTail reads a file of 100,000 events through a Tail, as the
// sidecar polls it; MB/s are of JSON Lines read.
func BenchmarkTail(b *testing.B) {
	const n = 100_000
	data := benchData(n)
	path := filepath.Join(b.TempDir(), "app.log")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		tl, err := file.NewTail("bench", []string{path}, file.TailOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if err := tl.Start(context.Background(), nil); err != nil {
			b.Fatal(err)
		}
		got := 0
		for got < n {
			recs, err := tl.Poll(context.Background(), 0)
			if err != nil {
				b.Fatal(err)
			}
			got += len(recs)
		}
		tl.Shutdown(context.Background())
	}
}
