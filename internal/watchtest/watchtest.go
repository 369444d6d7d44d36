// Package watchtest runs the real `twice watch` binary in tests: it builds
// ./cmd/twice once per test process, starts a watch with a config, waits
// for what the watch reports (its log, /metrics, /readyz, /findings),
// SIGKILLs it and stops it. The taps' integration tests and tests/e2e
// share it, so a crash test of a new tap is a few lines:
//
//	func TestMain(m *testing.M) { os.Exit(watchtest.Main(m)) }
//
//	bin := watchtest.Build(t)
//	w := watchtest.Start(t, bin, cfgPath, logPath, 2)
//	w.WaitFor(t, "50 events", func() bool { return w.Metrics()["twice_events_total"] >= 50 })
//	w.Kill()
//	w = watchtest.Start(t, bin, cfgPath, logPath, 2)
//	page := w.Findings()
//	w.Stop(t)
package watchtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twicehq/twice/internal/promtext"
)

// WaitLimit bounds every wait for a condition the watch reports: reaching
// it fails the test, never lets it go on.
const WaitLimit = 2 * time.Minute

// pollEvery is how often a condition is looked at.
const pollEvery = 20 * time.Millisecond

var built struct {
	sync.Once
	dir, bin string
	err      error
}

// Main runs the tests of m and then removes the binary Build made; call
// it from the package's TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	return code
}

// Build builds ./cmd/twice of this module once per test process and
// returns the binary's path.
func Build(tb testing.TB) string {
	tb.Helper()
	built.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			built.err = err
			return
		}
		if built.dir, built.err = os.MkdirTemp("", "twice-watchtest-"); built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "twice")
		cmd := exec.Command("go", "build", "-o", built.bin, "./cmd/twice")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build ./cmd/twice: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		tb.Fatal(built.err)
	}
	return built.bin
}

// moduleRoot is the directory of the go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("watchtest: working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("watchtest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Proc is one run of twice watch, its stderr appended to a log file.
type Proc struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan error
	addr    string
}

// Start starts `bin watch --config cfg`, its stderr appended to logPath
// (so the runs of one test read as one log), and returns once this run
// has said where its HTTP API listens (cfg's watch.listen should have
// port 0) and, when sources > 0, that it watches that many sources. The
// process is killed when tb ends if it still runs; the log's end is
// printed when tb failed.
func Start(tb testing.TB, bin, cfg, logPath string, sources int) *Proc {
	tb.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	start, _ := logf.Seek(0, io.SeekEnd)
	cmd := exec.Command(bin, "watch", "--config", cfg)
	cmd.Stdout, cmd.Stderr = io.Discard, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		tb.Fatal(err)
	}
	p := &Proc{cmd: cmd, logPath: logPath, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait(); logf.Close() }()
	tb.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
		}
		if tb.Failed() {
			log, _ := os.ReadFile(logPath)
			tb.Logf("%s (end):\n%s", filepath.Base(logPath), Tail(string(log), 4000))
		}
	})
	const marker = "HTTP API on http://"
	watching := fmt.Sprintf("watching %d source(s)", sources)
	p.WaitFor(tb, "its HTTP API address in its log", func() bool {
		raw, _ := os.ReadFile(logPath)
		log := string(raw[min(int(start), len(raw)):])
		i := strings.Index(log, marker)
		if i < 0 || (sources > 0 && !strings.Contains(log, watching)) {
			return false
		}
		rest := log[i+len(marker):]
		if j := strings.IndexAny(rest, "\n /"); j > 0 {
			p.addr = rest[:j]
			return true
		}
		return false
	})
	return p
}

// Addr is host:port of the watch's HTTP API.
func (p *Proc) Addr() string { return p.addr }

// WaitFor polls cond until it holds; the watch exiting or WaitLimit
// passing fails tb.
func (p *Proc) WaitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(WaitLimit)
	for !cond() {
		select {
		case err := <-p.exited:
			p.exited <- err
			tb.Fatalf("twice watch exited (%v) while the test waited for %s", err, what)
		case <-time.After(pollEvery):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("twice watch: no %s within %v", what, WaitLimit)
		}
	}
}

// Metrics returns the sum of each twice_ metric's series; nil while the
// API does not answer.
func (p *Proc) Metrics() map[string]float64 { return promtext.Sums(p.addr) }

// Ready reports whether /readyz answers 200.
func (p *Proc) Ready() bool {
	resp, err := http.Get("http://" + p.addr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Finding is a finding as GET /findings writes it (the fields tests use).
type Finding struct {
	Detector string         `json:"detector"`
	Severity string         `json:"severity"`
	Subject  string         `json:"subject"`
	Cause    string         `json:"cause"`
	Count    int64          `json:"count"`
	Jobs     []string       `json:"jobs"`
	JobType  string         `json:"job_type"`
	Queue    string         `json:"queue"`
	Details  map[string]any `json:"details"`
}

// Page is the body of GET /findings.
type Page struct {
	Summary struct {
		Events      int64    `json:"events"`
		RepeatedIDs int64    `json:"repeated_ids"`
		Malformed   int64    `json:"malformed"`
		Jobs        int64    `json:"jobs"`
		Effects     int64    `json:"effects"`
		Warnings    []string `json:"warnings"`
	} `json:"summary"`
	Findings []Finding `json:"findings"`
}

// Findings returns the watch's current findings; an empty page while the
// API does not answer or answers something else.
func (p *Proc) Findings() Page {
	var page Page
	_ = p.GetJSON("/findings", &page)
	return page
}

// GetJSON decodes the JSON body of GET path (such as "/findings") of the
// watch's API into v, for tests that read fields Page leaves out.
func (p *Proc) GetJSON(path string, v any) error {
	resp, err := http.Get("http://" + p.addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Keys names the page's findings as "detector subject cause=C jobs=a,b",
// sorted, with the ids of named (name → id) written as their names.
func (pg Page) Keys(named map[string]string) []string {
	name := map[string]string{}
	for n, id := range named {
		name[id] = n
	}
	as := func(s string) string {
		if n, ok := name[s]; ok {
			return n
		}
		return s
	}
	out := make([]string, 0, len(pg.Findings))
	for _, f := range pg.Findings {
		js := make([]string, 0, len(f.Jobs))
		for _, j := range f.Jobs {
			js = append(js, as(j))
		}
		slices.Sort(js)
		out = append(out, fmt.Sprintf("%s %s cause=%s jobs=%s", f.Detector, as(f.Subject), f.Cause, strings.Join(js, ",")))
	}
	slices.Sort(out)
	return out
}

// Kill ends the watch with SIGKILL and waits until it is gone.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	err := <-p.exited
	p.exited <- err
}

// Stop sends SIGTERM and requires a clean exit within 15 s.
func (p *Proc) Stop(tb testing.TB) {
	tb.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		p.exited <- err
		if err != nil {
			tb.Errorf("twice watch after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		tb.Error("twice watch did not exit within 15s of SIGTERM")
	}
}

// Tail is the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
