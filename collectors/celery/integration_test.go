package celery

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/twicehq/twice/audit"
	"github.com/twicehq/twice/collectors/jsonl"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/internal/servicetest"
	"github.com/twicehq/twice/internal/watchtest"
	"github.com/twicehq/twice/sources"
	"github.com/twicehq/twice/twicetype"
)

// python is Debian's interpreter, which scripts/deps.d/celery.sh gives
// python3-celery (a python3 earlier on the PATH, pyenv's, does not see it).
const python = "/usr/bin/python3"

// waitLimit bounds every wait of the integration tests.
const waitLimit = 2 * time.Minute

// requireCelery skips (or fails, under TWICE_REQUIRE_SERVICES=1) when
// Debian's Celery is not installed.
func requireCelery(t *testing.T) {
	t.Helper()
	if out, err := exec.Command(python, "-c", "import celery, kombu, amqp, redis").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("%s cannot import celery (%v: %s): run scripts/deps.d/celery.sh", python, err, strings.TrimSpace(string(out)))
		if os.Getenv(servicetest.EnvRequire) == "1" {
			t.Fatal(msg)
		}
		t.Skip("skipped: " + msg)
	}
}

// mix is one run of real Celery workers against one broker, with the tap
// reading their events.
type mix struct {
	t       *testing.T
	broker  string
	dir     string
	effects string
	hold    string
	app     string

	mu      sync.Mutex
	events  []*twicetype.Event
	malform []string
	gaps    []twicetype.Gap
	commit  bool
	// beforeRedelivery runs after the kill, before the second worker.
	beforeRedelivery func()
	lastPos          sources.Position
	stream           *Stream
	stopPump         context.CancelFunc
	pumpDone         chan struct{}
}

func newMix(t *testing.T, broker string) *mix {
	t.Helper()
	requireCelery(t)
	dir := t.TempDir()
	app, err := filepath.Abs(filepath.Join("testdata", "app"))
	if err != nil {
		t.Fatal(err)
	}
	m := &mix{t: t, broker: broker, dir: dir, effects: filepath.Join(dir, "effects.jsonl"), hold: filepath.Join(dir, "hold"), app: app, commit: true}
	if err := os.Mkdir(m.hold, 0o755); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *mix) env() []string {
	return append(os.Environ(), "BROKER="+m.broker, "EFFECTS="+m.effects, "HOLD="+m.hold, "PYTHONDONTWRITEBYTECODE=1")
}

// startTap starts a stream of the broker and a goroutine that polls it,
// keeping every record, and commits after each poll when m.commit.
func (m *mix) startTap() {
	m.t.Helper()
	s, err := NewStream("tasks", Config{Broker: m.broker, Key: "args.0"}, StreamOptions{Logf: m.t.Logf})
	if err != nil {
		m.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m.mu.Lock()
	resume := map[string]sources.Position{}
	if m.lastPos != "" {
		resume[Lane] = m.lastPos // the last position the earlier run read
	}
	m.mu.Unlock()
	if err := s.Start(ctx, resume); err != nil {
		m.t.Fatalf("start the tap: %v", err)
	}
	pctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	m.stream, m.stopPump, m.pumpDone = s, stop, done
	go func() {
		defer close(done)
		for pctx.Err() == nil {
			recs, err := s.Poll(pctx, 200*time.Millisecond)
			if err != nil {
				if pctx.Err() == nil {
					m.t.Logf("poll: %v", err)
					time.Sleep(100 * time.Millisecond)
				}
				continue
			}
			m.mu.Lock()
			last := map[string]sources.Position{}
			for _, r := range recs {
				switch {
				case r.Event != nil:
					m.events = append(m.events, r.Event)
				case r.Malformed != nil:
					m.malform = append(m.malform, r.Malformed.Reason)
				case r.Lost != nil:
					m.gaps = append(m.gaps, *r.Lost)
				}
				last[r.Lane] = r.Position
				m.lastPos = r.Position
			}
			commit := m.commit
			m.mu.Unlock()
			if commit && len(last) > 0 {
				if err := s.Commit(pctx, last); err != nil && pctx.Err() == nil {
					m.t.Errorf("commit: %v", err)
				}
			}
		}
	}()
	m.t.Cleanup(m.stopTap)
}

// stopTap stops the poller and shuts the stream down, without committing
// what the last poll read.
func (m *mix) stopTap() {
	if m.stream == nil {
		return
	}
	m.stopPump()
	<-m.pumpDone
	if err := m.stream.Shutdown(context.Background()); err != nil {
		m.t.Errorf("shutdown: %v", err)
	}
	m.stream = nil
}

// worker starts a Celery worker in a process group of its own (prefork:
// the main process publishes task-started while a child runs the task; a
// solo pool would hold the event until the task ends)
// and kills the group when the test ends.
func (m *mix) worker(name string) *exec.Cmd {
	m.t.Helper()
	cmd := exec.Command(python, "-m", "celery", "-A", "tasks", "worker", "-E", "--concurrency=4",
		"-n", name+"@%h", "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO")
	cmd.Dir, cmd.Env = m.app, m.env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	log, err := os.Create(filepath.Join(m.dir, name+".log"))
	if err != nil {
		m.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		m.t.Fatalf("start celery worker: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(done) }()
	m.t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if m.t.Failed() {
			out, _ := os.ReadFile(log.Name())
			m.t.Logf("%s:\n%s", name, watchtest.Tail(string(out), 3000))
		}
	})
	return cmd
}

// send sends tasks through Celery's own client and returns their ids.
func (m *mix) send(specs ...map[string]any) []string {
	m.t.Helper()
	arg, _ := json.Marshal(specs)
	cmd := exec.Command(python, "send.py", string(arg))
	cmd.Dir, cmd.Env = m.app, m.env()
	out, err := cmd.Output()
	if err != nil {
		m.t.Fatalf("send %s: %v", arg, err)
	}
	ids := strings.Fields(string(out))
	if len(ids) != len(specs) {
		m.t.Fatalf("send: %d ids for %d tasks: %q", len(ids), len(specs), out)
	}
	return ids
}

func receipt(payment string, kwargs map[string]any, countdown int) map[string]any {
	if kwargs == nil {
		kwargs = map[string]any{}
	}
	return map[string]any{"task": "app.send_receipt", "args": []string{payment}, "kwargs": kwargs, "countdown": countdown}
}

// has reports whether the tap delivered an event of kind for job.
func (m *mix) has(kind twicetype.Kind, job string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.events {
		if e.Kind == kind && e.JobID == job {
			return true
		}
	}
	return false
}

func (m *mix) waitFor(what string, cond func() bool) {
	m.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			m.t.Fatalf("gave up waiting for %s after %v", what, waitLimit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (m *mix) waitEvent(kind twicetype.Kind, jobs ...string) {
	m.t.Helper()
	for _, j := range jobs {
		m.waitFor(fmt.Sprintf("%s of %s", kind, j), func() bool { return m.has(kind, j) })
	}
}

// run plays the fault mix: effect then exception with autoretry, one key
// sent twice, a success without its effect, max_retries exhausted, an
// acks_late task whose worker is SIGKILLed mid-run, a start behind a
// long countdown. midway runs after the first part.
func (m *mix) run(midway func()) map[string]string {
	m.t.Helper()
	m.startTap()
	w1 := m.worker("w1")
	ids := m.send(
		receipt("payment:1", map[string]any{"fail_first": true}, 0),
		receipt("payment:2", nil, 0),
		receipt("payment:2", nil, 0),
		receipt("payment:3", map[string]any{"skip": true}, 0),
		map[string]any{"task": "app.charge_card", "args": []string{"payment:4"}},
	)
	named := map[string]string{"retried": ids[0], "twice1": ids[1], "twice2": ids[2], "skipped": ids[3], "declined": ids[4]}
	m.waitEvent(twicetype.JobSucceeded, ids[0], ids[1], ids[2], ids[3])
	m.waitEvent(twicetype.JobDead, ids[4])
	if midway != nil {
		midway()
	}
	// The acks_late task: its effect written, its worker killed, its
	// redelivery run by another worker.
	killed := m.send(receipt("payment:5", map[string]any{"hold_first": true}, 0))[0]
	named["killed"] = killed
	m.waitFor("the acks_late task to hold after its effect", func() bool {
		_, err := os.Stat(filepath.Join(m.hold, killed+".held"))
		return err == nil
	})
	_ = syscall.Kill(-w1.Process.Pid, syscall.SIGKILL) // the worker and its child
	if m.beforeRedelivery != nil {
		m.beforeRedelivery()
	}
	m.worker("w2")
	m.waitEvent(twicetype.JobSucceeded, killed)
	late := m.send(receipt("payment:6", nil, 20))[0]
	named["late"] = late
	m.waitEvent(twicetype.JobSucceeded, late)
	return named
}

// audit runs the detectors over the tap's events and the effects file.
func (m *mix) audit() *twicetype.Report {
	m.t.Helper()
	cfg, err := config.ParseWith("twice.yaml", []byte(`expect:
  - job_type: app.send_receipt
    effect: email.sent
    effect_key: "receipt/{{key}}"
    within: 2s
detectors:
  stale-execution: {max_start_delay: 12s}
`), config.Options{})
	if err != nil {
		m.t.Fatal(err)
	}
	m.mu.Lock()
	evs := slices.Clone(m.events)
	m.mu.Unlock()
	f, err := os.Open(m.effects)
	if err != nil {
		m.t.Fatal(err)
	}
	defer f.Close()
	p := jsonl.NewParser()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		e := &twicetype.Event{}
		if err := p.Parse(sc.Bytes(), e); err != nil {
			m.t.Fatalf("effects file: %v", err)
		}
		evs = append(evs, e)
	}
	slices.SortStableFunc(evs, func(a, b *twicetype.Event) int { return int(min(max(a.Time-b.Time, -1), 1)) })
	eng := engine.New(audit.EngineOptions(cfg))
	for _, e := range evs {
		eng.Add(e)
	}
	return eng.Finish()
}

// findingKeys names findings by detector, subject (a job id as its name
// in the mix), cause and jobs.
func findingKeys(rep *twicetype.Report, named map[string]string) []string {
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
	for _, f := range rep.Findings {
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

var wantFindings = []string{
	"dead-letter celery cause= jobs=declined",
	"duplicate-effect receipt/payment:1 cause=redelivery jobs=retried",
	"duplicate-effect receipt/payment:2 cause=duplicate-enqueue jobs=twice1,twice2",
	"duplicate-effect receipt/payment:5 cause=redelivery jobs=killed",
	"effect-before-failure killed cause= jobs=killed",
	"effect-before-failure retried cause= jobs=retried",
	"missing-effect skipped cause= jobs=skipped",
	"stale-execution late cause= jobs=late",
}

func (m *mix) check(rep *twicetype.Report, named map[string]string) {
	m.t.Helper()
	got := findingKeys(rep, named)
	if strings.Join(got, "\n") != strings.Join(wantFindings, "\n") {
		m.t.Errorf("findings:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(wantFindings, "\n  "))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.malform) > 0 {
		m.t.Errorf("malformed: %q", m.malform)
	}
	if m.t.Failed() || testing.Verbose() {
		for _, e := range m.events {
			m.t.Logf("%s %s", time.Unix(0, e.Time).UTC().Format("15:04:05.000000"), describe(e))
		}
	}
}

// TestFaultMixRabbitMQ runs the mix on a real RabbitMQ. Midway, the tap
// stops without acknowledging what it read last and starts again: RabbitMQ
// delivers those events again, with the same ids, so nothing is lost and
// the engine counts each once.
//
// twice watch runs through the mix on its own queue, is killed with
// SIGKILL midway and started again, and ends with the same findings as
// the audit of what the tap read, each event counted once.
func TestFaultMixRabbitMQ(t *testing.T) {
	space := servicetest.RabbitMQ(t)
	m := newMix(t, space.URL)
	bin := watchtest.Build(t)
	cfg := m.writeWatchConfig()
	watchLog := filepath.Join(m.dir, "watch.log")
	w := watchtest.Start(t, bin, cfg, watchLog, 2)
	var repeated int
	named := m.run(func() {
		w.Kill()
		w = watchtest.Start(t, bin, cfg, watchLog, 2)
		m.mu.Lock()
		m.commit = false
		m.mu.Unlock()
		// Something read and not acknowledged: a task whose events come
		// after the commits stopped.
		extra := m.send(receipt("payment:7", nil, 0))[0]
		m.waitEvent(twicetype.JobSucceeded, extra)
		m.stopTap()
		m.mu.Lock()
		seen := map[string]bool{}
		for _, e := range m.events {
			seen[e.ID] = true
		}
		before := len(m.events)
		m.commit = true
		m.mu.Unlock()
		m.startTap()
		// The enqueue, start and success of extra come again.
		m.waitFor("the unacknowledged events again", func() bool {
			m.mu.Lock()
			defer m.mu.Unlock()
			repeated = 0
			for _, e := range m.events[before:] {
				if seen[e.ID] {
					repeated++
				}
			}
			return repeated >= 3
		})
	})
	rep := m.audit()
	m.check(rep, named)
	if rep.Summary.RepeatedIDs < int64(repeated) {
		t.Errorf("repeated ids %d, want at least the %d delivered again", rep.Summary.RepeatedIDs, repeated)
	}
	if len(m.gaps) > 0 {
		t.Errorf("RabbitMQ reported gaps: %+v", m.gaps)
	}
	var live watchtest.Page
	w.WaitFor(t, "the watch's findings to equal the audit's", func() bool {
		live = w.Findings()
		return live.Summary.Events == rep.Summary.Events && slices.Equal(live.Keys(named), wantFindings)
	})
	if live.Summary.Malformed != 0 {
		t.Errorf("watch summary: %+v", live.Summary)
	}
	w.Stop(t)
}

// TestFaultMixRedis runs the mix on Redis (pub/sub). Midway the tap stops
// and starts again: the time between is reported as lost coverage.
func TestFaultMixRedis(t *testing.T) {
	url := servicetest.RedisDB(t)
	m := newMix(t, url)
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	// kombu gives an unacknowledged task back when a worker, at its start
	// and then every 100 s, finds it older than visibility_timeout (3 s in
	// tasks.py): start the second worker once Redis's clock says so.
	m.beforeRedelivery = func() {
		ctx := context.Background()
		m.waitFor("the killed task to outlive kombu's visibility_timeout", func() bool {
			zs, err := rc.ZRangeWithScores(ctx, "unacked_index", 0, -1).Result()
			if err != nil || len(zs) == 0 {
				return false
			}
			now, err := rc.Time(ctx).Result()
			if err != nil {
				return false
			}
			for _, z := range zs {
				if float64(now.UnixMicro())/1e6 < z.Score+3.5 {
					return false
				}
			}
			return true
		})
	}
	named := m.run(func() {
		m.stopTap()
		m.startTap()
		m.waitFor("the gap of the restart", func() bool {
			m.mu.Lock()
			defer m.mu.Unlock()
			return len(m.gaps) == 1 && m.gaps[0].Reason == GapReason && m.gaps[0].To > m.gaps[0].From
		})
	})
	m.check(m.audit(), named)
}
