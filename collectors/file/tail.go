package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twicehq/twice/collectors/jsonl"
	"github.com/twicehq/twice/sources"
	"github.com/twicehq/twice/twicetype"
)

// Tail follows the files of a file source for `twice watch`, as `tail -F`
// does (sources.Stream). Each file is a lane, named by its path. Only
// complete lines count: a last line without its newline waits until the
// newline is written. A file renamed away and replaced (logrotate's
// create) is read to its end, then the new file from its start; a file
// truncated in place (copytruncate) is read again from its start. A glob
// is expanded again as the files are polled, so files that appear later
// are followed too; a file already followed under another name (a
// rotated file the glob also matches) is not read twice while the watch
// runs, but after a restart a file that appeared under a new name is
// read as a new file: a glob should not match the names of rotated files
// (app-*.log rather than app.log*).
//
// A record's position is "DEV:INODE:OFFSET:LINE": which file, the byte
// offset after the record's line, and that line's number. After a
// restart each file resumes there; if the path names another file by
// then (rotated while twice was stopped), the old file is looked for in
// the same directory by its device and inode and read to its end first.
// When it is gone, or the file was truncated below the offset, the lane
// reports lost coverage (a sources.Record with Lost set).
type Tail struct {
	name  string
	paths []string
	opts  TailOptions

	mu       sync.Mutex
	started  bool
	stopped  bool
	lanes    map[string]*follower
	order    []string
	resume   map[string]sources.Position
	missing  map[string]error
	parser   *jsonl.Parser
	pending  []sources.Record
	lastGlob time.Time
	// finished are the files read to their end after a rotation, so a
	// glob that matches their new name does not read them again.
	finished map[fileID]bool
}

// TailOptions tune a Tail; zero values mean the defaults.
type TailOptions struct {
	// PollInterval is how often the files are looked at while there is
	// nothing to read; default 200ms.
	PollInterval time.Duration
	// MaxLineBytes bounds a line, as Options.MaxLineBytes.
	MaxLineBytes int
}

var (
	_ sources.Stream         = (*Tail)(nil)
	_ sources.HealthReporter = (*Tail)(nil)
)

// NewTail returns a Tail of the files (paths or globs) of the source
// name. It does no I/O.
func NewTail(name string, paths []string, opts TailOptions) (*Tail, error) {
	for _, p := range paths {
		switch {
		case p == "-":
			return nil, errors.New("watch cannot follow stdin (-): give a file, or audit stdin with twice audit")
		case strings.HasSuffix(p, ".gz"):
			return nil, fmt.Errorf("%s is gzip: watch follows plain files (audit it with twice audit)", p)
		}
		if hasGlob(p) {
			if _, err := filepath.Match(p, ""); err != nil {
				return nil, fmt.Errorf("%q is not a valid glob", p)
			}
		}
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 200 * time.Millisecond
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = DefaultMaxLineBytes
	}
	return &Tail{name: name, paths: paths, opts: opts, lanes: map[string]*follower{},
		missing: map[string]error{}, parser: jsonl.NewParser(), finished: map[fileID]bool{}}, nil
}

func hasGlob(p string) bool { return strings.ContainsAny(p, "*?[") }

// Name returns the source's name.
func (t *Tail) Name() string { return t.name }

// Replayable is true: a file is read again from any offset it holds.
func (t *Tail) Replayable() bool { return true }

// Start opens every file, each at its position in resume (else at its
// start). A file that does not exist yet is waited for (Health says so).
func (t *Tail) Start(ctx context.Context, resume map[string]sources.Position) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started || t.stopped {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t.resume = resume
	for _, p := range t.paths {
		if !hasGlob(p) {
			t.follow(p)
		}
	}
	t.expandGlobs(time.Now())
	t.started = true
	return nil
}

// follow adds the lane of path, resuming where the checkpoint says.
func (t *Tail) follow(path string) *follower {
	if f := t.lanes[path]; f != nil {
		return f
	}
	f := &follower{t: t, path: path}
	t.lanes[path] = f
	t.order = append(t.order, path)
	if pos, ok := t.resume[path]; ok {
		if f.resumeAt(pos) != nil {
			// An unreadable position is no reason to stop: start the
			// file afresh and say what was not checked.
			t.pending = append(t.pending, f.gap("checkpoint position unreadable, file read again from its start"))
		}
	}
	return f
}

// expandGlobs follows the files the globs match now.
func (t *Tail) expandGlobs(now time.Time) {
	t.lastGlob = now
	for _, p := range t.paths {
		if !hasGlob(p) {
			continue
		}
		matches, _ := filepath.Glob(p)
		sort.Strings(matches)
		for _, m := range matches {
			if t.lanes[m] != nil {
				continue
			}
			if fi, err := os.Stat(m); err != nil || !fi.Mode().IsRegular() || strings.HasSuffix(m, ".gz") {
				continue
			} else if id, ok := idOf(fi); ok && t.followed(id) {
				continue // a rotated file already read under its old name
			}
			t.follow(m)
		}
	}
}

// followed reports whether a lane reads or has read the file id.
func (t *Tail) followed(id fileID) bool {
	if t.finished[id] {
		return true
	}
	for _, f := range t.lanes {
		if f.cur.file != nil && f.cur.id == id {
			return true
		}
	}
	return false
}

// Lanes returns the files followed.
func (t *Tail) Lanes() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.order...)
}

// Poll returns the complete lines written since the last Poll, waiting up
// to wait for some.
func (t *Tail) Poll(ctx context.Context, wait time.Duration) ([]sources.Record, error) {
	deadline := time.Now().Add(wait)
	for {
		recs, err := t.step()
		if err != nil || len(recs) > 0 {
			return recs, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, nil
		}
		timer := time.NewTimer(min(left, t.opts.PollInterval))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, nil
		case <-timer.C:
		}
	}
}

// maxPollBytes bounds what one step reads from one file.
const maxPollBytes = 4 << 20

// step reads what every file holds now.
func (t *Tail) step() ([]sources.Record, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.started || t.stopped {
		return nil, nil
	}
	if now := time.Now(); now.Sub(t.lastGlob) >= t.opts.PollInterval {
		t.expandGlobs(now)
	}
	out := t.pending
	t.pending = nil
	for _, path := range t.order {
		f := t.lanes[path]
		recs, err := f.step()
		if err != nil {
			t.missing[path] = err
		} else {
			delete(t.missing, path)
		}
		out = append(out, recs...)
	}
	return out, nil
}

// Commit does nothing: a file needs no acknowledgement.
func (t *Tail) Commit(context.Context, map[string]sources.Position) error { return nil }

// Health names the files that cannot be read (not there yet, no
// permission).
func (t *Tail) Health() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.missing) == 0 {
		return nil
	}
	paths := make([]string, 0, len(t.missing))
	for p := range t.missing {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return fmt.Errorf("%s (waiting for it)", t.missing[paths[0]])
}

// Shutdown closes the files. It is safe to call twice.
func (t *Tail) Shutdown(context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return nil
	}
	t.stopped = true
	for _, f := range t.lanes {
		if f.cur.file != nil {
			f.cur.file.Close()
			f.cur.file = nil
		}
	}
	return nil
}

// fileID tells files apart: the device and inode.
type fileID struct{ dev, ino uint64 }

func idOf(fi os.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, true
}

// follower reads one path.
type follower struct {
	t    *Tail
	path string
	cur  cursor
	// resumeID is, until the first file is opened after a restart, the
	// file the checkpoint's position is in (zero: none, start afresh).
	resumeID *fileID
}

// cursor is where a file is read: off is the offset after the last
// complete line, line its number, buf the bytes read after off (a line
// not complete yet).
type cursor struct {
	file *os.File
	id   fileID
	off  int64
	line int64
	buf  []byte
	// skipping is set inside a line longer than MaxLineBytes: its bytes
	// are dropped up to its newline; skipLine is its number.
	skipping bool
	skipLine int64
}

func (f *follower) position() sources.Position {
	c := &f.cur
	return sources.Position(fmt.Sprintf("%d:%d:%d:%d", c.id.dev, c.id.ino, c.off, c.line))
}

// gap is a record of coverage lost on the lane, at the current position.
func (f *follower) gap(reason string) sources.Record {
	return sources.Record{Lane: f.path, Position: f.position(), Lost: &twicetype.Gap{Lane: f.path, Reason: reason}}
}

// mark is a record that only moves the lane's position (to another
// file).
func (f *follower) mark() sources.Record {
	return sources.Record{Lane: f.path, Position: f.position()}
}

// parsePosition reads "DEV:INODE:OFFSET:LINE".
func parsePosition(p sources.Position) (id fileID, off, line int64, err error) {
	parts := strings.Split(string(p), ":")
	if len(parts) != 4 {
		return id, 0, 0, fmt.Errorf("position %q is not DEV:INODE:OFFSET:LINE", string(p))
	}
	var n [4]uint64
	for i, s := range parts {
		if n[i], err = strconv.ParseUint(s, 10, 63); err != nil {
			return id, 0, 0, fmt.Errorf("position %q is not DEV:INODE:OFFSET:LINE", string(p))
		}
	}
	return fileID{dev: n[0], ino: n[1]}, int64(n[2]), int64(n[3]), nil
}

// resumeAt sets where reading starts after a restart.
func (f *follower) resumeAt(p sources.Position) error {
	id, off, line, err := parsePosition(p)
	if err != nil {
		return err
	}
	f.resumeID, f.cur.off, f.cur.line = &id, off, line
	return nil
}

// open opens the file at the path. After a restart it settles which file
// the checkpoint's position is in: the same file resumes at its offset;
// a file truncated below it starts again (lost coverage); another file
// means the one resumed was rotated away while twice was stopped, and it
// is read to its end first if it is still in the directory (else lost
// coverage). It returns the records this produces.
func (f *follower) open() ([]sources.Record, error) {
	file, err := os.Open(f.path)
	if err != nil {
		return nil, err
	}
	fi, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, err
	}
	id, _ := idOf(fi)
	want := fileID{}
	if f.resumeID != nil {
		want = *f.resumeID
		f.resumeID = nil
	}
	if want == (fileID{}) {
		f.cur = cursor{file: file, id: id}
		return nil, nil
	}
	if want == id {
		if fi.Size() >= f.cur.off {
			if _, err := file.Seek(f.cur.off, io.SeekStart); err != nil {
				file.Close()
				return nil, err
			}
			f.cur.file, f.cur.id = file, id
			return nil, nil
		}
		f.cur = cursor{file: file, id: id}
		return []sources.Record{f.gap("file truncated while twice was stopped")}, nil
	}
	var out []sources.Record
	found := false
	if old := findByID(filepath.Dir(f.path), want); old != nil {
		if _, err := old.Seek(f.cur.off, io.SeekStart); err == nil {
			f.cur.file, f.cur.id = old, want
			out, _ = f.read(out, true)
			found = true
		}
		old.Close()
	}
	f.cur = cursor{file: file, id: id}
	if !found {
		return append(out, f.gap("file rotated away while twice was stopped, and not found")), nil
	}
	return append(out, f.mark()), nil
}

// findByID opens the regular file of dir whose identity is id.
func findByID(dir string, id fileID) *os.File {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if got, ok := idOf(fi); ok && got == id {
			file, err := os.Open(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil
			}
			return file
		}
	}
	return nil
}

// step reads what the path holds now, following a rotation or a
// truncation.
func (f *follower) step() ([]sources.Record, error) {
	var out []sources.Record
	if f.cur.file == nil {
		recs, err := f.open()
		out = append(out, recs...)
		if err != nil {
			return out, err
		}
	}
	if fi, err := os.Stat(f.path); err != nil || !sameFile(fi, f.cur.id) {
		// Renamed away (and maybe replaced) or removed: read this file
		// to its end, its last line with or without newline, then start
		// the file that takes its place from the start.
		out, _ = f.read(out, true)
		f.cur.file.Close()
		f.t.finished[f.cur.id] = true
		f.cur = cursor{}
		if err != nil {
			// Gone: the next file at the path starts afresh.
			return append(out, f.mark()), nil
		}
		recs, err := f.open()
		out = append(out, recs...)
		if err != nil {
			return out, err
		}
		out = append(out, f.mark())
	}
	if fi, err := f.cur.file.Stat(); err == nil && fi.Size() < f.cur.off+int64(len(f.cur.buf)) {
		// Truncated in place (copytruncate): read again from the start.
		if _, err := f.cur.file.Seek(0, io.SeekStart); err != nil {
			return out, err
		}
		f.cur = cursor{file: f.cur.file, id: f.cur.id}
		out = append(out, f.mark())
	}
	return f.read(out, false)
}

func sameFile(fi os.FileInfo, id fileID) bool {
	got, ok := idOf(fi)
	return ok && got == id
}

// read reads the current file from where it is to its end (at most
// maxPollBytes unless final) and appends the records of its complete
// lines to out; final also takes a last line without its newline (the
// file is finished).
func (f *follower) read(out []sources.Record, final bool) ([]sources.Record, error) {
	chunk := make([]byte, 64<<10)
	read := 0
	for final || read < maxPollBytes {
		n, err := f.cur.file.Read(chunk)
		read += n
		out = f.lines(chunk[:n], out)
		if err == io.EOF || n == 0 {
			break
		}
		if err != nil {
			return out, err
		}
	}
	if final && (len(f.cur.buf) > 0 || f.cur.skipping) {
		out = f.lines([]byte{'\n'}, out)
		// That newline is not in the file.
		f.cur.off--
	}
	return out, nil
}

// lines appends data to the line in progress and out with a record for
// every line it completes.
func (f *follower) lines(data []byte, out []sources.Record) []sources.Record {
	c := &f.cur
	limit := f.t.opts.MaxLineBytes
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if c.skipping {
			if i < 0 {
				c.off += int64(len(data))
				return out
			}
			c.off += int64(i + 1)
			data = data[i+1:]
			c.skipping = false
			out = append(out, f.malformed(c.skipLine, tooLong(limit)))
			continue
		}
		if i < 0 {
			c.buf = append(c.buf, data...)
			if len(c.buf) > limit+1 {
				// Too long: drop what is held, skip to the newline.
				c.off += int64(len(c.buf))
				c.line++
				c.skipping, c.skipLine = true, c.line
				c.buf = c.buf[:0]
			}
			return out
		}
		l := data[:i]
		if len(c.buf) > 0 {
			c.buf = append(c.buf, l...)
			l = c.buf
		}
		data = data[i+1:]
		c.off += int64(len(l) + 1)
		c.line++
		if rec, ok := f.record(l); ok {
			out = append(out, rec)
		}
		c.buf = c.buf[:0]
	}
	return out
}

// record parses one complete line; false for a blank one.
func (f *follower) record(l []byte) (sources.Record, bool) {
	if f.cur.line == 1 {
		l = bytes.TrimPrefix(l, bom)
	}
	if len(l) > 0 && l[len(l)-1] == '\r' {
		l = l[:len(l)-1]
	}
	if blank(l) {
		return sources.Record{}, false
	}
	if len(l) > f.t.opts.MaxLineBytes {
		return f.malformed(f.cur.line, tooLong(f.t.opts.MaxLineBytes)), true
	}
	ev := &twicetype.Event{Source: f.path, Line: f.cur.line}
	if err := f.t.parser.Parse(l, ev); err != nil {
		return f.malformed(f.cur.line, err.Error()), true
	}
	return sources.Record{Lane: f.path, Position: f.position(), Event: ev}, true
}

func (f *follower) malformed(line int64, reason string) sources.Record {
	return sources.Record{Lane: f.path, Position: f.position(),
		Malformed: &twicetype.Malformed{Source: f.path, Line: line, Reason: reason}}
}
