package sidecar

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/twicehq/twice/reports"
	"github.com/twicehq/twice/twicetype"
)

// Revision is one published state of a finding: a line of the findings
// stream. Its JSON is a finding of spec §5 preceded by the stream's own
// fields: seq (1, 2, 3... across all findings), revision (1, 2, 3... per
// fingerprint), status ("firing", or "resolved" when a finding no longer
// stands) and emitted_at.
type Revision struct {
	Seq         uint64
	Fingerprint string
	Line        []byte
}

// revisionHead is the part of a line read back by sinks and tests.
type revisionHead struct {
	Seq         uint64 `json:"seq"`
	Revision    uint64 `json:"revision"`
	Status      string `json:"status"`
	EmittedAt   string `json:"emitted_at"`
	Detector    string `json:"detector"`
	Severity    string `json:"severity"`
	Fingerprint string `json:"fingerprint"`
}

// Status values of a revision.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// findingLine encodes one revision of f.
func findingLine(seq, rev uint64, status string, at time.Time, f *twicetype.Finding) (line []byte, hash string, err error) {
	body, err := reports.FindingJSON(f)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(append([]byte(status), body...))
	head := fmt.Sprintf(`{"seq":%d,"revision":%d,"status":%q,"emitted_at":%q,`,
		seq, rev, status, at.UTC().Format(time.RFC3339Nano))
	line = append([]byte(head), body[1:]...)
	return line, hex.EncodeToString(sum[:16]), nil
}

// resolvedLine makes the revision saying that the finding of the last
// revision `last` no longer stands; it carries the finding as it last
// stood.
func resolvedLine(seq, rev uint64, at time.Time, last []byte) (line []byte, hash string) {
	body := last
	if i := bytes.Index(last, []byte(`"detector":`)); i > 0 {
		body = append([]byte("{"), last[i:]...)
	}
	sum := sha256.Sum256(append([]byte(StatusResolved), body...))
	head := fmt.Sprintf(`{"seq":%d,"revision":%d,"status":%q,"emitted_at":%q,`,
		seq, rev, StatusResolved, at.UTC().Format(time.RFC3339Nano))
	return append([]byte(head), body[1:]...), hex.EncodeToString(sum[:16])
}

// Sink is where revisions of findings go as they are made.
type Sink interface {
	// Name names the sink in the checkpoint; it must not change between
	// runs.
	Name() string
	// Start opens the sink. It returns the sequence numbers after
	// `after` that the sink already holds, from a run that stopped
	// between publishing and recording it, so they are not published
	// twice; a sink that cannot tell returns none.
	Start(ctx context.Context, after uint64) (held map[uint64]bool, err error)
	// Publish writes revisions, in order, durably before it returns.
	Publish(ctx context.Context, revs []Revision) error
	// Shutdown closes the sink. It is safe to call twice.
	Shutdown(ctx context.Context) error
}

// WriterSink writes revisions as JSON lines to a writer (stdout). It
// cannot read back what it wrote: after a crash, the revisions published
// between the last checkpoint and the crash are written again.
type WriterSink struct {
	name string
	w    io.Writer
	mu   sync.Mutex
}

// NewWriterSink returns a sink writing to w.
func NewWriterSink(name string, w io.Writer) *WriterSink { return &WriterSink{name: name, w: w} }

// Name implements Sink.
func (s *WriterSink) Name() string { return s.name }

// Start implements Sink.
func (s *WriterSink) Start(context.Context, uint64) (map[uint64]bool, error) { return nil, nil }

// Publish implements Sink.
func (s *WriterSink) Publish(_ context.Context, revs []Revision) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var buf bytes.Buffer
	for _, r := range revs {
		buf.Write(r.Line)
		buf.WriteByte('\n')
	}
	_, err := s.w.Write(buf.Bytes())
	return err
}

// Shutdown implements Sink.
func (s *WriterSink) Shutdown(context.Context) error { return nil }

// FileSink appends revisions as JSON lines to a file, fsynced on each
// publish. On Start it reads back the end of the file: a line cut by a
// crash is removed, and the revisions it holds beyond the checkpoint are
// not written again. So the file holds each revision exactly once.
type FileSink struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// NewFileSink returns a sink appending to path. It does no I/O.
func NewFileSink(path string) *FileSink { return &FileSink{path: path} }

// Name implements Sink.
func (s *FileSink) Name() string { return "file:" + s.path }

// Start implements Sink.
func (s *FileSink) Start(_ context.Context, after uint64) (map[uint64]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		return nil, nil
	}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("findings file: %w", err)
	}
	held, end, err := scanHeld(f, after)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("findings file %s: %w", s.path, err)
	}
	if err := f.Truncate(end); err != nil {
		f.Close()
		return nil, fmt.Errorf("findings file %s: %w", s.path, err)
	}
	if _, err := f.Seek(end, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("findings file %s: %w", s.path, err)
	}
	s.f = f
	return held, nil
}

// scanHeld reads the lines of f, returning the seqs after `after` and the
// length of the complete lines (a last line without a newline was cut).
func scanHeld(f *os.File, after uint64) (map[uint64]bool, int64, error) {
	held := map[uint64]bool{}
	r := bufio.NewReaderSize(f, 1<<20)
	var end int64
	for lineNo := 1; ; lineNo++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return held, end, nil // a partial last line is dropped
		}
		if err != nil {
			return nil, 0, err
		}
		end += int64(len(line))
		var h revisionHead
		if err := json.Unmarshal(line, &h); err != nil {
			return nil, 0, fmt.Errorf("line %d: not a finding revision: %w", lineNo, err)
		}
		if h.Seq > after {
			held[h.Seq] = true
		}
	}
}

// Publish implements Sink.
func (s *FileSink) Publish(_ context.Context, revs []Revision) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return errors.New("findings file: not started")
	}
	var buf bytes.Buffer
	for _, r := range revs {
		buf.Write(r.Line)
		buf.WriteByte('\n')
	}
	if _, err := s.f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("findings file %s: %w", s.path, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("findings file %s: %w", s.path, err)
	}
	return nil
}

// Shutdown implements Sink.
func (s *FileSink) Shutdown(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
