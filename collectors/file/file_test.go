package file_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/collectors/file"
	"github.com/twicehq/twice/twicetype"
)

// result is everything a collector produced.
type result struct {
	events    []twicetype.Event
	malformed []twicetype.Malformed
	batches   int
	err       error // the error that ended Next, nil for io.EOF
}

// collect runs c to the end and shuts it down.
func collect(t *testing.T, c *file.Collector) result {
	t.Helper()
	ctx := context.Background()
	var r result
	if err := c.Start(ctx); err != nil {
		r.err = err
		return r
	}
	t.Cleanup(func() {
		if err := c.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	for {
		b, err := c.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			r.err = err
			break
		}
		r.batches++
		r.events = append(r.events, b.Events...)
		r.malformed = append(r.malformed, b.Malformed...)
	}
	// Next keeps returning how it ended.
	if _, err := c.Next(ctx); (r.err == nil && err != io.EOF) || (r.err != nil && err != r.err) {
		t.Errorf("Next after the end = %v, want %v", err, r.err)
	}
	return r
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func gz(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func event(i int) string {
	return fmt.Sprintf(`{"id":"e-%d","ts":%d,"kind":"job.started","queue":"q","job_id":"j-%d","attempt":1}`, i, 1795514400000+i, i)
}

// lines makes n events, one per line, with ids e-1..e-n.
func lines(n int) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		b.WriteString(event(i))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

type want struct {
	line int64
	id   string
}

func checkEvents(t *testing.T, r result, source string, ws []want) {
	t.Helper()
	if len(r.events) != len(ws) {
		t.Fatalf("%d events, want %d (malformed: %v)", len(r.events), len(ws), r.malformed)
	}
	for i, w := range ws {
		ev := r.events[i]
		if ev.Line != w.line || ev.ID != w.id || ev.Source != source {
			t.Errorf("event %d = %s:%d %q, want %s:%d %q", i, ev.Source, ev.Line, ev.ID, source, w.line, w.id)
		}
	}
}

func seq(n int) []want {
	ws := make([]want, n)
	for i := range ws {
		ws[i] = want{int64(i + 1), fmt.Sprintf("e-%d", i+1)}
	}
	return ws
}

func TestFile(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "events.jsonl", lines(3))
	c := file.New(path, file.Options{})
	if c.Name() != path {
		t.Errorf("Name = %q", c.Name())
	}
	r := collect(t, c)
	if r.err != nil {
		t.Fatal(r.err)
	}
	checkEvents(t, r, path, seq(3))
	if r.events[1].Time != (1795514400000+2)*1e6 || r.events[1].JobID != "j-2" || r.events[1].Kind != twicetype.JobStarted {
		t.Errorf("event 2 = %+v", r.events[1])
	}
}

func TestBlocksAndOrder(t *testing.T) {
	t.Parallel()
	const n = 5000
	data := lines(n)
	for _, tc := range []struct {
		block, workers int
	}{{64, 1}, {100, 3}, {1000, 4}, {1 << 20, 2}} {
		t.Run(fmt.Sprintf("block=%d,workers=%d", tc.block, tc.workers), func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, "events.jsonl", data)
			r := collect(t, file.New(path, file.Options{BlockSize: tc.block, Workers: tc.workers}))
			if r.err != nil {
				t.Fatal(r.err)
			}
			checkEvents(t, r, path, seq(n))
			if tc.block < 1000 && r.batches < 100 {
				t.Errorf("%d batches for %d bytes in blocks of %d", r.batches, len(data), tc.block)
			}
		})
	}
}

func TestLineHandling(t *testing.T) {
	t.Parallel()
	input := "\xef\xbb\xbf" + event(1) + "\r\n" + // BOM, CRLF
		"\n" + // blank
		"  \t \r\n" + // whitespace only
		event(4) + "\n" +
		`{"ts":1,"kind":"job.exploded"}` + "\r\n" +
		"\r\n" +
		"not json\n" +
		event(8) + "\r" + // no final newline, CR kept off
		""
	for _, block := range []int{64, 1 << 20} {
		t.Run(fmt.Sprint(block), func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, "events.jsonl", []byte(input))
			r := collect(t, file.New(path, file.Options{BlockSize: block}))
			if r.err != nil {
				t.Fatal(r.err)
			}
			checkEvents(t, r, path, []want{{1, "e-1"}, {4, "e-4"}, {8, "e-8"}})
			wantBad := []twicetype.Malformed{
				{Source: path, Line: 5, Reason: `unknown kind "job.exploded"`},
				{Source: path, Line: 7, Reason: `not valid JSON: unexpected 'n' where a value should be at column 1`},
			}
			if fmt.Sprint(r.malformed) != fmt.Sprint(wantBad) {
				t.Errorf("malformed = %v\nwant %v", r.malformed, wantBad)
			}
		})
	}
}

func TestBOMOnlyAtStart(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "events.jsonl", []byte(event(1)+"\n\xef\xbb\xbf"+event(2)+"\n"))
	r := collect(t, file.New(path, file.Options{}))
	checkEvents(t, r, path, []want{{1, "e-1"}})
	if len(r.malformed) != 1 || r.malformed[0].Line != 2 {
		t.Errorf("malformed = %v, want line 2", r.malformed)
	}
}

func TestLongValidLine(t *testing.T) {
	t.Parallel()
	// A 1.5 MiB line is longer than a block but within MaxLineBytes.
	big := `{"id":"big","ts":1,"kind":"state","entity":"e","attrs":{"blob":"` + strings.Repeat("x", 3<<19) + `"}}`
	input := event(1) + "\n" + big + "\n" + event(3) + "\n" + big // the last without newline
	path := writeFile(t, "events.jsonl", []byte(input))
	r := collect(t, file.New(path, file.Options{}))
	if r.err != nil {
		t.Fatal(r.err)
	}
	checkEvents(t, r, path, []want{{1, "e-1"}, {2, "big"}, {3, "e-3"}, {4, "big"}})
	if n := len(r.events[1].Attrs); n != 3<<19+len(`{"blob":""}`) {
		t.Errorf("len(Attrs) = %d", n)
	}
}

func TestLineTooLong(t *testing.T) {
	t.Parallel()
	const max = 300
	long := `{"ts":1,"kind":"state","entity":"` + strings.Repeat("y", 5000) + `"}`
	exact := `{"id":"exact","ts":1,"kind":"state","entity":"` + strings.Repeat("z", max-len(`{"id":"exact","ts":1,"kind":"state","entity":""}`)) + `"}`
	if len(exact) != max {
		t.Fatalf("len(exact) = %d", len(exact))
	}
	input := event(1) + "\n" + long + "\n" + event(3) + "\n" + exact + "\r\n" + long + "\r\n" + event(6) + "\n" + long
	for _, block := range []int{64, 256, 1 << 20} {
		t.Run(fmt.Sprint(block), func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, "events.jsonl", []byte(input))
			r := collect(t, file.New(path, file.Options{BlockSize: block, MaxLineBytes: max}))
			if r.err != nil {
				t.Fatal(r.err)
			}
			checkEvents(t, r, path, []want{{1, "e-1"}, {3, "e-3"}, {4, "exact"}, {6, "e-6"}})
			var got []string
			for _, m := range r.malformed {
				got = append(got, m.Error())
			}
			reason := "line is longer than 300 bytes"
			wantBad := []string{path + ":2: " + reason, path + ":5: " + reason, path + ":7: " + reason}
			if fmt.Sprint(got) != fmt.Sprint(wantBad) {
				t.Errorf("malformed = %q\nwant %q", got, wantBad)
			}
		})
	}
}

func TestLineTooLongDefaultReason(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "events.jsonl", []byte(strings.Repeat(" ", 2<<10+1)+"{}\n"+event(2)+"\n"))
	r := collect(t, file.New(path, file.Options{MaxLineBytes: 2 << 10, BlockSize: 1 << 10}))
	checkEvents(t, r, path, []want{{2, "e-2"}})
	if len(r.malformed) != 1 || r.malformed[0].Reason != "line is longer than 2 KiB" || r.malformed[0].Line != 1 {
		t.Errorf("malformed = %v", r.malformed)
	}
}

func TestGzip(t *testing.T) {
	t.Parallel()
	data := lines(2000)
	// Two gzip members, as `cat a.gz b.gz` makes.
	two := append(gz(t, data[:len(data)/2]), gz(t, data[len(data)/2:])...)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"events.jsonl.gz", gz(t, data)},
		{"events.jsonl", gz(t, data)}, // detected by its magic bytes
		{"two.jsonl.gz", two},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, tc.name, tc.data)
			r := collect(t, file.New(path, file.Options{BlockSize: 4096}))
			if r.err != nil {
				t.Fatal(r.err)
			}
			checkEvents(t, r, path, seq(2000))
		})
	}
}

func TestCorruptGzip(t *testing.T) {
	t.Parallel()
	data := gz(t, lines(20000))
	t.Run("truncated", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, "events.jsonl.gz", data[:len(data)/2])
		r := collect(t, file.New(path, file.Options{BlockSize: 4096}))
		if !errors.Is(r.err, file.ErrRead) || !errors.Is(r.err, io.ErrUnexpectedEOF) {
			t.Fatalf("err = %v, want a read error wrapping io.ErrUnexpectedEOF", r.err)
		}
		if want := "read " + path + ": unexpected EOF"; r.err.Error() != want {
			t.Errorf("err = %q, want %q", r.err, want)
		}
		// What was read before the error came first, in order.
		if len(r.events) == 0 {
			t.Fatal("no events before the error")
		}
		checkEvents(t, r, path, seq(len(r.events)))
	})
	t.Run("flipped", func(t *testing.T) {
		t.Parallel()
		bad := bytes.Clone(data)
		for i := len(bad) / 2; i < len(bad)/2+64; i++ {
			bad[i] ^= 0x55
		}
		path := writeFile(t, "events.jsonl.gz", bad)
		r := collect(t, file.New(path, file.Options{BlockSize: 4096}))
		if !errors.Is(r.err, file.ErrRead) || !strings.HasPrefix(r.err.Error(), "read "+path+": ") {
			t.Fatalf("err = %v, want a read error", r.err)
		}
	})
	t.Run("not gzip", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, "events.jsonl.gz", lines(2))
		r := collect(t, file.New(path, file.Options{}))
		if want := "read " + path + ": gzip: invalid header"; r.err == nil || r.err.Error() != want || !errors.Is(r.err, file.ErrRead) {
			t.Fatalf("err = %v, want %q", r.err, want)
		}
	})
}

func TestEmpty(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"empty.jsonl", "empty.jsonl.gz"} {
		path := writeFile(t, name, nil)
		r := collect(t, file.New(path, file.Options{}))
		if r.err != nil || len(r.events) != 0 || len(r.malformed) != 0 {
			t.Errorf("%s: %+v", name, r)
		}
	}
	path := writeFile(t, "blank.jsonl", []byte("\n\r\n  \n"))
	if r := collect(t, file.New(path, file.Options{})); r.err != nil || len(r.events)+len(r.malformed) != 0 {
		t.Errorf("blank lines: %+v", r)
	}
}

func TestStdin(t *testing.T) {
	t.Parallel()
	r := collect(t, file.New("-", file.Options{Stdin: bytes.NewReader(lines(3)), BlockSize: 64}))
	if r.err != nil {
		t.Fatal(r.err)
	}
	checkEvents(t, r, "-", seq(3))

	r = collect(t, file.New("-", file.Options{Stdin: bytes.NewReader(gz(t, lines(3)))}))
	checkEvents(t, r, "-", seq(3))

	r = collect(t, file.New("-", file.Options{Stdin: io.MultiReader(bytes.NewReader(lines(1)), errReader{})}))
	if !errors.Is(r.err, file.ErrRead) || r.err.Error() != "read stdin: boom" {
		t.Errorf("err = %v", r.err)
	}
	checkEvents(t, r, "-", seq(1))
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

func TestOpenError(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "missing.jsonl")
	c := file.New(path, file.Options{})
	err := c.Start(context.Background())
	if !errors.Is(err, file.ErrRead) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Start = %v, want ErrRead and fs.ErrNotExist", err)
	}
	var re *file.ReadError
	if !errors.As(err, &re) || re.Path != path || re.Op != "open" {
		t.Errorf("Start = %#v", err)
	}
	if want := "open " + path + ": no such file or directory"; err.Error() != want {
		t.Errorf("Start = %q, want %q", err, want)
	}
	if err := c.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}

	// A directory opens but cannot be read.
	dir := t.TempDir()
	r := collect(t, file.New(dir, file.Options{}))
	if !errors.Is(r.err, file.ErrRead) || r.err.Error() != "read "+dir+": is a directory" {
		t.Errorf("reading a directory: %v", r.err)
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := file.New("does-not-matter", file.Options{})
	// Shutdown without Start, twice.
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err == nil {
		t.Error("Start after Shutdown succeeded")
	}

	c = file.New(writeFile(t, "e.jsonl", lines(1)), file.Options{})
	if _, err := c.Next(ctx); err == nil || err == io.EOF {
		t.Errorf("Next before Start = %v", err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err == nil {
		t.Error("second Start succeeded")
	}
	for range 2 {
		if err := c.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Next(ctx); err == nil || err == io.EOF {
		t.Errorf("Next after Shutdown = %v, want an error", err)
	}
}

// bigFile writes enough events that reading is still under way when a
// test stops it: the reader blocks on its bounded queues.
func bigFile(t *testing.T) string {
	t.Helper()
	return writeFile(t, "big.jsonl", lines(100000))
}

func TestShutdownMidway(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := file.New(bigFile(t), file.Options{BlockSize: 4096, Workers: 2})
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(ctx); err != nil {
		t.Fatal(err)
	}
	// Shutdown waits for every goroutine; the deadline only guards the test.
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := c.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := c.Next(ctx); err == nil || err == io.EOF {
		t.Errorf("Next after Shutdown = %v", err)
	}
}

func TestCancelStart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	c := file.New(bigFile(t), file.Options{BlockSize: 4096})
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	cancel()
	// Reading stops: Next ends with the cancellation, never io.EOF.
	var err error
	for err == nil {
		_, err = c.Next(context.Background())
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Next after cancel = %v, want context.Canceled", err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
	defer scancel()
	if err := c.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestShutdownBlockedStdin(t *testing.T) {
	t.Parallel()
	// Standard input that never writes: the read cannot be interrupted,
	// and Shutdown must not wait for it.
	pr, pw := io.Pipe()
	defer pw.Close() // ends the reader goroutine
	c := file.New("-", file.Options{Stdin: pr})
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestCancelNext(t *testing.T) {
	t.Parallel()
	// Standard input that has not written anything yet.
	pr, pw := io.Pipe()
	c := file.New("-", file.Options{Stdin: pr})
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	nctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Next(nctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next = %v, want context.Canceled", err)
	}
	// A cancelled Next loses nothing.
	go func() {
		pw.Write(lines(2))
		pw.Close()
	}()
	var got []twicetype.Event
	for {
		b, err := c.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b.Events...)
	}
	checkEvents(t, result{events: got}, "-", seq(2))
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}
