package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/collectors/file"
)

// progressEvery is how often the progress line of `twice audit` is
// redrawn.
const progressEvery = 250 * time.Millisecond

// progress draws one line on a terminal while an audit reads its input:
// bytes read of the total, events per second, findings so far and the
// time left, redrawn in place a few times a second and cleared at the end.
// An audit whose stderr is not a terminal draws nothing (newProgress
// returns nil, and a nil *progress does nothing).
type progress struct {
	w   io.Writer
	now func() time.Time

	// bytes returns the bytes read so far: those of files.
	bytes func() int64
	files []*file.Collector
	// total is the size of the input files; 0 when unknown (stdin, or
	// sources other than files), which leaves out the share and the ETA.
	total    int64
	events   atomic.Int64
	findings func() int64

	start time.Time
	mu    sync.Mutex // held while writing to w
	width int        // of the last line drawn, to blank what a shorter one leaves
	drawn bool       // the line is on the screen

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// newProgress returns the progress of an audit of paths ("-" is stdin),
// or nil when e.stderr is not a terminal.
func newProgress(e env, paths []string, taps int) *progress {
	if e.isTerminal == nil || !e.isTerminal(e.stderr) {
		return nil
	}
	p := &progress{w: e.stderr, now: time.Now}
	p.bytes = func() (n int64) {
		for _, f := range p.files {
			n += f.BytesRead()
		}
		return n
	}
	known := taps == 0
	for _, path := range paths {
		st, err := os.Stat(path)
		if path == "-" || err != nil || !st.Mode().IsRegular() {
			known = false
			continue
		}
		p.total += st.Size()
	}
	if !known {
		p.total = 0
	}
	return p
}

// writer returns a writer for the audit's other messages on the same
// terminal: each write first blanks the progress line, which the next
// redraw puts back under it.
func (p *progress) writer() io.Writer { return progressWriter{p} }

type progressWriter struct{ p *progress }

func (pw progressWriter) Write(b []byte) (int, error) {
	p := pw.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		if _, err := io.WriteString(p.w, "\r\x1b[K"); err != nil {
			return 0, err
		}
		p.drawn, p.width = false, 0
	}
	return p.w.Write(b)
}

// file notes a file collector, whose bytes read the line shows.
func (p *progress) file(c *file.Collector) *file.Collector {
	if p != nil {
		p.files = append(p.files, c)
	}
	return c
}

// count wraps c so that its events are counted.
func (p *progress) count(c collectors.Collector) collectors.Collector {
	if p == nil {
		return c
	}
	return collectors.Tee(c, func(_ context.Context, b *collectors.Batch) error {
		p.events.Add(int64(len(b.Events)))
		return nil
	})
}

// run draws the line until end is called; findings reports the findings
// made so far.
func (p *progress) run(findings func() int64) (end func()) {
	if p == nil {
		return func() {}
	}
	p.findings = findings
	p.start = p.now()
	p.stop = make(chan struct{})
	p.done = make(chan struct{})
	p.draw()
	go func() {
		defer close(p.done)
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				// Leave the line blank for what follows on stderr.
				p.mu.Lock()
				if p.drawn {
					io.WriteString(p.w, "\r\x1b[K")
					p.drawn = false
				}
				p.mu.Unlock()
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
	return func() {
		p.stopOnce.Do(func() { close(p.stop) })
		<-p.done
	}
}

func (p *progress) draw() {
	line := p.line(p.now())
	p.mu.Lock()
	defer p.mu.Unlock()
	pad := ""
	if n := p.width - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	p.width = len(line)
	io.WriteString(p.w, "\r"+line+pad)
	p.drawn = true
}

// line renders the progress at now.
func (p *progress) line(now time.Time) string {
	read := p.bytes()
	el := now.Sub(p.start).Seconds()
	events := p.events.Load()
	var b strings.Builder
	b.WriteString("twice: ")
	if p.total > 0 {
		read = min(read, p.total)
		fmt.Fprintf(&b, "%s of %s (%d%%)", fmtBytes(read), fmtBytes(p.total), read*100/p.total)
	} else {
		fmt.Fprintf(&b, "%s read", fmtBytes(read))
	}
	rate := 0.0
	if el > 0 {
		rate = float64(events) / el
	}
	fmt.Fprintf(&b, ", %s events, %s events/s", fmtCount(float64(events)), fmtCount(rate))
	var found int64
	if p.findings != nil {
		found = p.findings()
	}
	fmt.Fprintf(&b, ", %d findings", found)
	if p.total > 0 && read > 0 && el >= 1 {
		left := time.Duration(el * float64(p.total-read) / float64(read) * float64(time.Second))
		fmt.Fprintf(&b, ", ETA %s", left.Round(time.Second))
	}
	return b.String()
}

// fmtBytes shows a size in B, KB, MB or GB (powers of 1000).
func fmtBytes(n int64) string {
	switch {
	case n < 1000:
		return fmt.Sprintf("%d B", n)
	case n < 1e6:
		return fmt.Sprintf("%.1f KB", float64(n)/1e3)
	case n < 1e9:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%.2f GB", float64(n)/1e9)
}

// fmtCount shows a count with k or M.
func fmtCount(v float64) string {
	switch {
	case v < 1e4:
		return fmt.Sprintf("%.0f", v)
	case v < 1e6:
		return fmt.Sprintf("%.0fk", v/1e3)
	}
	return fmt.Sprintf("%.2fM", v/1e6)
}
