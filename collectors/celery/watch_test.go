package celery

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
)

// watchFinding is a finding as GET /findings writes it.
type watchFinding struct {
	Detector string   `json:"detector"`
	Subject  string   `json:"subject"`
	Cause    string   `json:"cause"`
	Jobs     []string `json:"jobs"`
}

type watchPage struct {
	Summary struct {
		Events      int64 `json:"events"`
		RepeatedIDs int64 `json:"repeated_ids"`
		Malformed   int64 `json:"malformed"`
	} `json:"summary"`
	Findings []watchFinding `json:"findings"`
}

// keys names the page's findings as findingKeys does.
func (p *watchPage) keys(named map[string]string) []string {
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
	var out []string
	for _, f := range p.Findings {
		var js []string
		for _, j := range f.Jobs {
			js = append(js, as(j))
		}
		slices.Sort(js)
		out = append(out, fmt.Sprintf("%s %s cause=%s jobs=%s", f.Detector, as(f.Subject), f.Cause, strings.Join(js, ",")))
	}
	slices.Sort(out)
	return out
}

// writeWatchConfig writes a twice.yaml that watches the mix's broker (as
// source "celery", so its queue is not the in-process tap's) and effects.
func (m *mix) writeWatchConfig() string {
	m.t.Helper()
	path := filepath.Join(m.dir, "twice.yaml")
	cfg := fmt.Sprintf(`sources:
  - name: celery
    type: celery
    broker: %s
    key: args.0
  - name: effects
    type: file
    path: %s
expect:
  - job_type: app.send_receipt
    effect: email.sent
    effect_key: "receipt/{{key}}"
    within: 2s
detectors:
  stale-execution: {max_start_delay: 12s}
watch:
  state_dir: %s
  listen: 127.0.0.1:0
  checkpoint_interval: 200ms
  snapshot_interval: 1s
`, m.broker, m.effects, filepath.Join(m.dir, "state"))
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		m.t.Fatal(err)
	}
	if f, err := os.OpenFile(m.effects, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		f.Close()
	}
	return path
}

// buildTwice builds ./cmd/twice once for the tests of the package.
func buildTwice(t *testing.T) string {
	t.Helper()
	built.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "twice-celery-test-")
		if built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "twice")
		cmd := exec.Command("go", "build", "-o", built.bin, "./cmd/twice")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build ./cmd/twice: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

var built struct {
	sync.Once
	dir, bin string
	err      error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// watchProc is one run of twice watch.
type watchProc struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan error
	addr    string
}

// startWatch starts twice watch and waits until it says where its HTTP
// API listens and that it watches its sources.
func startWatch(t *testing.T, bin, cfg, logPath string) *watchProc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	start, _ := logf.Seek(0, io.SeekEnd)
	cmd := exec.Command(bin, "watch", "--config", cfg)
	cmd.Stdout, cmd.Stderr = io.Discard, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &watchProc{cmd: cmd, logPath: logPath, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
		}
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("%s:\n%s", filepath.Base(logPath), tail(string(log), 4000))
		}
	})
	const marker = "HTTP API on http://"
	p.waitFor(t, "its HTTP API address and its sources in its log", func() bool {
		raw, _ := os.ReadFile(logPath)
		log := string(raw[min(int(start), len(raw)):])
		i := strings.Index(log, marker)
		if i < 0 || !strings.Contains(log, "watching 2 source(s)") {
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

// waitFor polls cond until it holds; the watch exiting or waitLimit
// passing fails the test.
func (p *watchProc) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		select {
		case err := <-p.exited:
			p.exited <- err
			t.Fatalf("twice watch exited (%v) while the test waited for %s", err, what)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %v", what, waitLimit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *watchProc) findings() watchPage {
	var page watchPage
	resp, err := http.Get("http://" + p.addr + "/findings")
	if err != nil {
		return page
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&page)
	return page
}

// kill ends the watch with SIGKILL and waits until it is gone.
func (p *watchProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	err := <-p.exited
	p.exited <- err
}

// stop sends SIGTERM and requires a clean exit within 15s.
func (p *watchProc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		p.exited <- err
		if err != nil {
			t.Errorf("twice watch after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Error("twice watch did not exit within 15s of SIGTERM")
	}
}
