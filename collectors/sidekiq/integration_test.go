package sidekiq

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twicehq/twice/internal/servicetest"
	"github.com/twicehq/twice/internal/watchtest"
)

// TestRealSidekiq runs a Sidekiq 6 app with known faults (testdata/app)
// on real workers and real Redis, with twice watch reading it in both
// modes at once, each watch killed with SIGKILL once mid-run; then audits
// what each mode keeps. Middleware mode must find exactly the faults;
// poll mode must find what polling can see (see docs/sources/sidekiq.md).
func TestRealSidekiq(t *testing.T) {
	ruby, sidekiqBin := needRuby(t)
	redisURL := servicetest.RedisDB(t)
	h := newHarness(t, ruby, sidekiqBin, redisURL)
	ctx := context.Background()

	mw := h.watch("middleware", "mode: middleware")
	poll := h.watch("poll", "mode: poll")
	shadow := h.shadowPoller()

	main := h.sidekiq("default", "billing")
	slow := h.sidekiq("slow")
	h.waitFor("two Sidekiq processes", 60*time.Second, func() (bool, error) {
		n, err := h.rdb.SCard(ctx, "processes").Result()
		return n == 2, err
	})

	jids := h.enqueue("mix")
	killed := jids["killed"]

	// Sidekiq 6's basic fetch holds a running job only in the worker's
	// memory: SIGKILL loses it. Wait until its heartbeat shows it running
	// (so poll mode can see it too), then kill.
	h.waitFor("ExportReport running in a work hash", 30*time.Second, func() (bool, error) {
		return h.running(ctx, killed)
	})
	slow.kill()
	slow2 := h.sidekiq("slow")

	// Kill each watch once while jobs are moving.
	h.waitFor("the middleware watch audited some events", 30*time.Second, func() (bool, error) {
		return mw.events("sidekiq") >= 10, nil
	})
	mw.kill()
	mw.start()
	h.waitFor("the poll watch saw ChargeCard fail", 60*time.Second, func() (bool, error) {
		return poll.events("sidekiq") >= 10, nil
	})
	poll.kill()
	poll.start()

	// An operator replays the ChargeCard that died.
	h.waitFor("pay-replay in the dead set", 90*time.Second, func() (bool, error) { return h.dead(ctx, jids["replay"]) })
	h.enqueue("replay", jids["replay"])
	h.waitFor("pay-replay succeeded after its replay", 60*time.Second, func() (bool, error) {
		return h.streamHas(ctx, jids["replay"], "succeeded")
	})
	h.waitFor("SyncInventory in the dead set", 60*time.Second, func() (bool, error) { return h.dead(ctx, jids["dead"]) })

	expected := []string{
		"dead-letter billing",
		"duplicate-effect charge/pay-crash redelivery",
		"duplicate-effect charge/pay-replay replay",
		"duplicate-effect receipt/p-dup duplicate-enqueue",
		"effect-before-failure " + jids["crash"],
		"effect-before-failure " + jids["replay"],
		"lost-job " + killed + " stuck",
		"missing-effect " + jids["missing"],
	}
	sort.Strings(expected)
	h.waitFor("the middleware watch's findings", 90*time.Second, func() (bool, error) {
		got := mw.findings()
		return slices.Equal(got, expected), fmt.Errorf("findings now:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(expected, "\n"))
	})

	// One last job, so that audits end past every deadline.
	last := h.enqueue("one", "p-last")["one"]
	h.waitFor("the last job succeeded", 30*time.Second, func() (bool, error) { return h.streamHas(ctx, last, "succeeded") })

	// What really happened to the killed job: never run again, in no
	// queue, and twice says so.
	if runs, _ := h.rdb.Get(ctx, "test:runs:"+killed).Int(); runs != 1 {
		t.Errorf("ExportReport ran %d times, want 1: Sidekiq 6 lost it", runs)
	}
	if n, _ := h.rdb.LLen(ctx, "queue:slow").Result(); n != 0 {
		t.Errorf("queue:slow holds %d jobs: the killed job came back", n)
	}

	// Middleware mode: exactly the faults, every event once.
	if got := mw.findings(); !slices.Equal(got, expected) {
		t.Errorf("middleware watch findings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(expected, "\n"))
	}
	h.waitFor("the middleware watch audited every stream entry and effect once", 30*time.Second, func() (bool, error) {
		n, err := h.rdb.XLen(ctx, DefaultStream).Result()
		if err != nil {
			return false, err
		}
		sum := mw.summary()
		want := n + int64(h.effectLines())
		return sum.Events == want && sum.Repeated == 0 && sum.Malformed == 0,
			fmt.Errorf("summary %+v, want %d events (%d stream entries, %d effects), no repeats", sum, want, n, h.effectLines())
	})
	for _, f := range mw.full() {
		if f.Detector == "duplicate-effect" && f.Subject == "receipt/p-dup" && !(slices.Contains(f.Jobs, jids["dup-a"]) && slices.Contains(f.Jobs, jids["dup-b"])) {
			t.Errorf("p-dup duplicate names jobs %v, want %s and %s", f.Jobs, jids["dup-a"], jids["dup-b"])
		}
		if f.Detector == "dead-letter" && !slices.Equal(f.Jobs, []string{jids["dead"]}) {
			t.Errorf("dead-letter jobs %v, want [%s]", f.Jobs, jids["dead"])
		}
	}
	if got := h.audit("middleware"); !slices.Equal(got, expected) {
		t.Errorf("twice audit of the middleware stream\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(expected, "\n"))
	}

	// Poll mode: what polling must see. It cannot see a replay whose run
	// passes between two polls, so it may still call pay-replay dead.
	mustPoll := []string{
		"dead-letter billing",
		"effect-before-failure " + jids["crash"],
		"lost-job " + killed + " stuck",
	}
	mayPoll := append(slices.Clone(expected),
		"dead-letter default",
		"duplicate-effect charge/pay-replay redelivery",
		"duplicate-effect charge/pay-crash unknown",
		"duplicate-effect charge/pay-replay unknown",
		"duplicate-effect receipt/p-dup unknown",
	)
	h.waitFor("the poll watch's findings", 60*time.Second, func() (bool, error) {
		got := poll.findings()
		for _, f := range mustPoll {
			if !slices.Contains(got, f) {
				return false, fmt.Errorf("findings now:\n%s\nmissing %s", strings.Join(got, "\n"), f)
			}
		}
		return true, nil
	})
	for _, f := range poll.findings() {
		if !slices.Contains(mayPoll, f) {
			t.Errorf("poll watch: finding %q is not one of the faults; what a poller beside it saw of that job:\n%s",
				f, shadow.of(strings.Fields(f)[1]))
		}
	}
	t.Logf("poll watch findings:\n%s\npoll metrics: %v", strings.Join(poll.findings(), "\n"), poll.sidekiqMetrics())
	// Polling's audit reads what Sidekiq keeps: the dead set's deaths.
	pa := h.audit("poll")
	if !slices.Contains(pa, "dead-letter billing") {
		t.Errorf("twice audit in poll mode: %v, want the dead-letter of billing", pa)
	}
	for _, f := range pa {
		if strings.HasPrefix(f, "lost-job") || strings.HasPrefix(f, "missing-effect") {
			t.Errorf("twice audit in poll mode: %q: an audit of the retry and dead sets claims no lost or succeeded jobs", f)
		}
	}

	mw.stop()
	poll.stop()
	main.stop()
	slow2.stop()
}

// shadow is a Poller that runs beside the poll watch for the whole test,
// so that a finding the watch should not have made can be explained.
type shadow struct {
	mu     sync.Mutex
	events []string
}

func (h *harness) shadowPoller() *shadow {
	sh := &shadow{}
	p, err := NewPoller("shadow", Config{Redis: h.redisURL, Key: "args.0"})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	h.t.Cleanup(func() { cancel(); <-done; _ = p.Shutdown(context.Background()) })
	go func() {
		defer close(done)
		if p.Start(ctx) != nil {
			return
		}
		for ctx.Err() == nil {
			if b, err := p.Poll(ctx); err == nil {
				sh.mu.Lock()
				for _, ev := range b.Events {
					sh.events = append(sh.events, fmt.Sprintf("%s %s %s attempt=%d retry=%v id=%s",
						time.Unix(0, ev.Time).UTC().Format("15:04:05.000"), ev.JobID, ev.Kind, ev.Attempt, ev.Retry, ev.ID))
				}
				sh.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(DefaultPollInterval):
			}
		}
	}()
	return sh
}

func (sh *shadow) of(jid string) string {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var out []string
	for _, e := range sh.events {
		if strings.Contains(e, jid) {
			out = append(out, e)
		}
	}
	return strings.Join(out, "\n")
}

// harness runs the processes of one test.
type harness struct {
	t         *testing.T
	ruby      string
	skBin     string
	redisURL  string
	rdb       *redis.Client
	dir       string
	app       string
	effects   string
	twice     string
	mu        sync.Mutex
	processes []*proc
}

func newHarness(t *testing.T, ruby, sidekiqBin, redisURL string) *harness {
	t.Helper()
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ruby: ruby, skBin: sidekiqBin, redisURL: redisURL, rdb: redis.NewClient(opt), dir: t.TempDir()}
	h.app = filepath.Join(repoRoot(t), "collectors", "sidekiq", "testdata", "app")
	h.effects = filepath.Join(h.dir, "effects.jsonl")
	if err := os.WriteFile(h.effects, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h.twice = watchtest.Build(t)
	t.Cleanup(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, p := range h.processes {
			p.kill()
		}
		h.rdb.Close()
		if t.Failed() {
			for _, p := range h.processes {
				log, _ := os.ReadFile(p.log)
				t.Logf("--- %s (%s), last lines:\n%s", p.name, p.log, tail(string(log), 30))
			}
		}
	})
	return h
}

// TestMain removes the twice binary the tests built (watchtest.Build).
func TestMain(m *testing.M) { os.Exit(watchtest.Main(m)) }

func (h *harness) env() []string {
	return append(os.Environ(), "REDIS_URL="+h.redisURL, "TWICE_EFFECTS="+h.effects, "RUBYOPT=-W0")
}

// proc is one process of the test, restartable.
type proc struct {
	name, log string
	args      []string
	env       []string
	dir       string
	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{}
	t         *testing.T
}

func (h *harness) proc(name, dir string, args ...string) *proc {
	p := &proc{name: name, log: filepath.Join(h.dir, name+".log"), args: args, env: h.env(), dir: dir, t: h.t}
	h.mu.Lock()
	h.processes = append(h.processes, p)
	h.mu.Unlock()
	p.start()
	return p
}

func (p *proc) start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = p.dir, p.env, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	p.cmd, p.done = cmd, done
}

func (p *proc) signal(sig syscall.Signal, wait time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
	}
}

// kill ends the process with SIGKILL and waits for it.
func (p *proc) kill() { p.signal(syscall.SIGKILL, time.Minute) }

// stop ends it with SIGTERM, as a deploy would.
func (p *proc) stop() { p.signal(syscall.SIGTERM, 30*time.Second) }

// sidekiq starts a Sidekiq process of the app on the given queues.
func (h *harness) sidekiq(queues ...string) *proc {
	args := []string{h.skBin, "-r", "./worker.rb", "-c", "3"}
	for _, q := range queues {
		args = append(args, "-q", q)
	}
	h.mu.Lock()
	n := len(h.processes)
	h.mu.Unlock()
	return h.proc(fmt.Sprintf("sidekiq-%s-%d", strings.Join(queues, "-"), n), h.app, args...)
}

// enqueue runs enqueue.rb and returns the jids it printed.
func (h *harness) enqueue(args ...string) map[string]string {
	h.t.Helper()
	cmd := exec.Command(h.ruby, append([]string{"enqueue.rb"}, args...)...)
	cmd.Dir, cmd.Env = h.app, h.env()
	out, err := cmd.Output()
	if err != nil {
		h.t.Fatalf("enqueue.rb %v: %v\n%s", args, err, out)
	}
	var jids map[string]string
	if err := json.Unmarshal(out, &jids); err != nil {
		h.t.Fatalf("enqueue.rb %v printed %q: %v", args, out, err)
	}
	return jids
}

// waitFor polls cond until it holds, failing the test after timeout.
func (h *harness) waitFor(what string, timeout time.Duration, cond func() (bool, error)) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
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
			h.t.Fatalf("waited %v for %s (last error: %v)", timeout, what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// running reports whether a work hash shows jid running.
func (h *harness) running(ctx context.Context, jid string) (bool, error) {
	procs, err := h.rdb.SMembers(ctx, "processes").Result()
	if err != nil {
		return false, err
	}
	for _, p := range procs {
		work, err := h.rdb.HGetAll(ctx, p+":workers").Result()
		if err != nil {
			return false, err
		}
		for _, v := range work {
			if strings.Contains(v, jid) {
				return true, nil
			}
		}
	}
	return false, nil
}

// dead reports whether the dead set holds jid.
func (h *harness) dead(ctx context.Context, jid string) (bool, error) {
	all, err := h.rdb.ZRange(ctx, "dead", 0, -1).Result()
	for _, raw := range all {
		if strings.Contains(raw, `"jid":"`+jid+`"`) {
			return true, nil
		}
	}
	return false, err
}

// streamHas reports whether the middleware stream holds event e of jid.
func (h *harness) streamHas(ctx context.Context, jid, e string) (bool, error) {
	msgs, err := h.rdb.XRange(ctx, DefaultStream, "-", "+").Result()
	for _, m := range msgs {
		if m.Values["jid"] == jid && m.Values["e"] == e {
			return true, nil
		}
	}
	return false, err
}

func (h *harness) effectLines() int {
	b, _ := os.ReadFile(h.effects)
	return strings.Count(string(b), "\n")
}

// config writes a twice.yaml with one sidekiq source in the given mode,
// the effects file, and the app's expectations. The effects come from
// another source than the job events, so watch needs engine.lateness to
// put them in order: the time the middleware's events take to be read,
// and in poll mode a poll interval plus a heartbeat (5 s) more.
func (h *harness) config(name, mode, stateDir, listen string) string {
	lateness := "2s"
	if strings.Contains(mode, ModePoll) {
		lateness = "10s"
	}
	cfg := fmt.Sprintf(`sources:
  - name: sidekiq
    type: sidekiq
    redis: %q
    %s
    key: args.0
  - name: effects
    type: file
    path: %q
expect:
  - {job_type: SendReceipt, effect: email.sent, effect_key: "receipt/{{key}}", within: 5s}
detectors:
  lost-job: {lost_after: 20s}
engine:
  lateness: %s
watch:
  state_dir: %q
  listen: %q
  checkpoint_interval: 200ms
  idle_timeout: 1s
  findings: [{type: file, path: %q}]
`, h.redisURL, mode, h.effects, lateness, stateDir, listen, filepath.Join(stateDir, "findings.jsonl"))
	path := filepath.Join(h.dir, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return path
}

// watcher is a twice watch process and its HTTP API.
type watcher struct {
	*proc
	addr string
	t    *testing.T
}

func (h *harness) watch(name, mode string) *watcher {
	addr := freeAddr(h.t)
	cfg := h.config(name, mode, filepath.Join(h.dir, name+"-state"), addr)
	w := &watcher{addr: addr, t: h.t}
	w.proc = h.proc("watch-"+name, h.dir, h.twice, "watch", "-c", cfg)
	h.waitFor("twice watch "+name+" ready", 60*time.Second, func() (bool, error) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == 200, nil
	})
	return w
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// finding is what the test reads of a finding.
type finding struct {
	Detector string   `json:"detector"`
	Subject  string   `json:"subject"`
	Cause    string   `json:"cause"`
	Count    int      `json:"count"`
	Jobs     []string `json:"jobs"`
}

func (f finding) String() string {
	return strings.TrimSpace(f.Detector + " " + f.Subject + " " + f.Cause)
}

func (w *watcher) full() []finding {
	resp, err := http.Get("http://" + w.addr + "/findings")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var body struct {
		Findings []finding `json:"findings"`
	}
	if json.NewDecoder(resp.Body).Decode(&body) != nil {
		return nil
	}
	return body.Findings
}

// watchSummary is the summary of GET /findings.
type watchSummary struct {
	Events    int64 `json:"events"`
	Repeated  int64 `json:"repeated_ids"`
	Malformed int64 `json:"malformed"`
	Late      int64 `json:"late"`
}

func (w *watcher) summary() watchSummary {
	resp, err := http.Get("http://" + w.addr + "/findings")
	if err != nil {
		return watchSummary{}
	}
	defer resp.Body.Close()
	var body struct {
		Summary watchSummary `json:"summary"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return body.Summary
}

// findings lists the standing findings as "detector subject cause", sorted.
func (w *watcher) findings() []string {
	var out []string
	for _, f := range w.full() {
		out = append(out, f.String())
	}
	sort.Strings(out)
	return out
}

var eventsLine = regexp.MustCompile(`^twice_events_total\{([^}]*)\} ([0-9.e+]+)$`)

// events is twice_events_total of one source, summed over kinds.
func (w *watcher) events(source string) float64 {
	resp, err := http.Get("http://" + w.addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if m := eventsLine.FindStringSubmatch(sc.Text()); m != nil && strings.Contains(m[1], `source="`+source+`"`) {
			v, _ := strconv.ParseFloat(m[2], 64)
			sum += v
		}
	}
	return sum
}

// sidekiqMetrics returns the twice_sidekiq_ and coverage series.
func (w *watcher) sidekiqMetrics() []string {
	resp, err := http.Get("http://" + w.addr + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "twice_sidekiq") || strings.HasPrefix(l, "twice_coverage") {
			out = append(out, l)
		}
	}
	return out
}

// audit runs twice audit over the sources of a watch's config.
func (h *harness) audit(name string) []string {
	h.t.Helper()
	cmd := exec.Command(h.twice, "audit", "-c", filepath.Join(h.dir, name+".yaml"), "--format", "json", "--fail-on", "none")
	cmd.Env = h.env()
	out, err := cmd.Output()
	if err != nil {
		h.t.Fatalf("twice audit %s: %v\n%s", name, err, out)
	}
	var rep struct {
		Findings []finding `json:"findings"`
		Summary  struct {
			Warnings []any `json:"warnings"`
		} `json:"summary"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		h.t.Fatalf("twice audit %s: %v\n%s", name, err, out)
	}
	var got []string
	for _, f := range rep.Findings {
		got = append(got, f.String())
	}
	sort.Strings(got)
	h.t.Logf("twice audit %s: %d findings, warnings %v", name, len(got), rep.Summary.Warnings)
	return got
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
