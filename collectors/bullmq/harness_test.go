package bullmq

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/twicehq/twice/internal/servicetest"
)

// The real BullMQ workers of the tests: testdata/harness/worker.mjs run by
// node, with bullmq from scripts/deps.d/bullmq.sh.

// repoRoot is the module root, from this package's directory.
const repoRoot = "../.."

// waitLimit bounds every wait for a condition; reaching it fails the test.
const waitLimit = 90 * time.Second

// harness is one queue of the shared test Redis, its effects file and
// the worker processes started on it.
type harness struct {
	t       *testing.T
	modules string
	redis   *redis.Client
	url     string
	prefix  string
	queue   string
	dir     string
	effects string
	log     string
	workers []*exec.Cmd
}

// bullmqModules returns the directory bullmq is installed in; without it
// the test skips, or fails under TWICE_REQUIRE_SERVICES=1.
func bullmqModules(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TWICE_BULLMQ_MODULES")
	if dir == "" {
		abs, err := filepath.Abs(filepath.Join(repoRoot, ".services", "node", "bullmq"))
		if err != nil {
			t.Fatal(err)
		}
		dir = abs
	}
	_, errPkg := os.Stat(filepath.Join(dir, "node_modules", "bullmq", "package.json"))
	_, errNode := exec.LookPath("node")
	if errPkg != nil || errNode != nil {
		msg := "bullmq is not installed in " + dir + " (or node is missing): run scripts/deps.d/bullmq.sh"
		if os.Getenv(servicetest.EnvRequire) == "1" {
			t.Fatalf("%s (%s=1 requires it)", msg, servicetest.EnvRequire)
		}
		t.Skipf("skipped: %s", msg)
	}
	return dir
}

// newHarness gives t a queue of its own on the shared test Redis.
func newHarness(t *testing.T, queue string) *harness {
	t.Helper()
	space := servicetest.Redis(t)
	modules := bullmqModules(t)
	opt, err := redis.ParseURL(space.URL)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, modules: modules, redis: redis.NewClient(opt), url: space.URL, prefix: space.Prefix, queue: queue, dir: t.TempDir()}
	h.effects = filepath.Join(h.dir, "effects.jsonl")
	h.log = filepath.Join(h.dir, "workers.log")
	for _, f := range []string{h.effects, h.log} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, w := range h.workers {
			_ = w.Process.Kill()
			_ = w.Wait()
		}
		h.redis.Close()
	})
	return h
}

func (h *harness) node(args ...string) *exec.Cmd {
	cmd := exec.Command("node", append([]string{filepath.Join("testdata", "harness", "worker.mjs")}, args...)...)
	cmd.Env = append(os.Environ(),
		"REDIS_URL="+h.url, "BULLMQ_PREFIX="+h.prefix, "BULLMQ_QUEUE="+h.queue,
		"BULLMQ_MODULES="+h.modules, "EFFECTS="+h.effects, "WORKER_LOG="+h.log)
	return cmd
}

// startWorkers starts n workers at once and waits until each is ready.
func (h *harness) startWorkers(n int) []*exec.Cmd {
	h.t.Helper()
	var started []*exec.Cmd
	for range n {
		cmd := h.node("work")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			h.t.Fatalf("start a worker: %v", err)
		}
		h.workers = append(h.workers, cmd)
		started = append(started, cmd)
	}
	for _, w := range started {
		pid := w.Process.Pid
		h.waitFor("worker "+itoa(pid)+" ready", func() (bool, error) {
			return h.logHas(func(l map[string]any) bool { return l["ready"] == float64(pid) }), nil
		})
	}
	return started
}

// stopWorkers sends SIGTERM to every live worker and waits for them.
func (h *harness) stopWorkers() {
	h.t.Helper()
	for _, w := range h.workers {
		if w.ProcessState != nil {
			continue
		}
		_ = w.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = w.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = w.Process.Kill()
			<-done
		}
	}
	h.workers = nil
}

// killWorker SIGKILLs the worker of pid.
func (h *harness) killWorker(pid int) {
	h.t.Helper()
	for _, w := range h.workers {
		if w.Process.Pid == pid {
			_ = w.Process.Signal(syscall.SIGKILL)
			_ = w.Wait()
			return
		}
	}
	h.t.Fatalf("no worker of pid %d", pid)
}

// jobSpec is one job for worker.mjs add.
type jobSpec struct {
	Ref  string         `json:"ref"`
	Name string         `json:"name"`
	Data map[string]any `json:"data"`
	Opts map[string]any `json:"opts,omitempty"`
}

// add adds jobs with bullmq's Queue.add and returns their ids by ref.
func (h *harness) add(jobs ...jobSpec) map[string]string {
	h.t.Helper()
	spec := filepath.Join(h.dir, "spec.json")
	raw, _ := json.Marshal(jobs)
	if err := os.WriteFile(spec, raw, 0o644); err != nil {
		h.t.Fatal(err)
	}
	out, err := h.node("add", spec).Output()
	if err != nil {
		h.t.Fatalf("worker.mjs add: %v", exitDetail(err))
	}
	ids := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var l struct{ Ref, ID string }
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			h.t.Fatalf("worker.mjs add printed %q", sc.Text())
		}
		ids[l.Ref] = l.ID
	}
	if len(ids) != len(jobs) {
		h.t.Fatalf("added %d jobs, got ids %v", len(jobs), ids)
	}
	return ids
}

// retry replays a failed job as an operator does: job.retry('failed').
func (h *harness) retry(id string) {
	h.t.Helper()
	if err := h.node("retry", id).Run(); err != nil {
		h.t.Fatalf("worker.mjs retry %s: %v", id, exitDetail(err))
	}
}

// waitState waits until each job is in state ("completed" or "failed").
func (h *harness) waitState(state string, ids ...string) {
	h.t.Helper()
	key := h.prefix + ":" + h.queue + ":" + state
	for _, id := range ids {
		h.waitFor("job "+id+" "+state, func() (bool, error) {
			_, err := h.redis.ZScore(context.Background(), key, id).Result()
			if errors.Is(err, redis.Nil) {
				return false, nil
			}
			return err == nil, err
		})
	}
}

// hang waits for the worker report that job id hangs, and returns the pid
// of its worker.
func (h *harness) hang(id string) int {
	h.t.Helper()
	pid := 0
	h.waitFor("job "+id+" hanging in a worker", func() (bool, error) {
		return h.logHas(func(l map[string]any) bool {
			if l["hang"] == id {
				pid = int(l["pid"].(float64))
				return true
			}
			return false
		}), nil
	})
	return pid
}

// waitRedisTime waits until Redis's clock is past ms.
func (h *harness) waitRedisTime(ms int64) {
	h.t.Helper()
	h.waitFor("Redis time past "+itoa(int(ms)), func() (bool, error) {
		now, err := h.redis.Time(context.Background()).Result()
		return err == nil && now.UnixMilli() > ms, err
	})
}

// finishedOn is the job's finishedOn (Unix ms).
func (h *harness) finishedOn(id string) int64 {
	h.t.Helper()
	v, err := h.redis.HGet(context.Background(), h.prefix+":"+h.queue+":"+id, "finishedOn").Int64()
	if err != nil {
		h.t.Fatalf("finishedOn of job %s: %v", id, err)
	}
	return v
}

func (h *harness) logHas(match func(map[string]any) bool) bool {
	raw, _ := os.ReadFile(h.log)
	for _, line := range strings.Split(string(raw), "\n") {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) == nil && match(l) {
			return true
		}
	}
	return false
}

// waitFor polls cond every 20ms until it holds; waitLimit fails the test.
func (h *harness) waitFor(what string, cond func() (bool, error)) {
	h.t.Helper()
	waitFor(h.t, what, cond)
}

func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %v (last error: %v)", what, waitLimit, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func exitDetail(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return err.Error() + ": " + string(ee.Stderr)
	}
	return err.Error()
}

func itoa(n int) string { return strconv.Itoa(n) }
