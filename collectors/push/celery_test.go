package push_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/twicehq/twice/internal/servicetest"
	"github.com/twicehq/twice/internal/watchtest"
)

// debianPython has Debian's Celery 5.2.6 (scripts/deps.d/celery.sh).
const debianPython = "/usr/bin/python3"

// TestRealCeleryJobsThroughSMTPAndWebhook runs real Celery workers on a
// real RabbitMQ whose task sends a receipt through twice's SMTP source
// (Python's smtplib, a new Message-ID per send) and then notifies a
// partner through twice's webhook proxy. The worker running one task is
// SIGKILLed after the email and before the notification; RabbitMQ
// delivers the task again to a second worker, which sends the email again
// and notifies once. twice watch, tapping Celery's events too, reports the
// second email as a duplicate effect caused by the redelivery, and the
// crash window as effect-before-failure — nothing else.
func TestRealCeleryJobsThroughSMTPAndWebhook(t *testing.T) {
	if out, err := exec.Command(debianPython, "-c", "import celery").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("%s cannot import celery (%v: %s): run scripts/deps.d/celery.sh", debianPython, err, strings.TrimSpace(string(out)))
		if os.Getenv(servicetest.EnvRequire) == "1" {
			t.Fatal(msg)
		}
		t.Skip("skipped: " + msg)
	}
	space := servicetest.RabbitMQ(t)
	bin := watchtest.Build(t)
	dir := t.TempDir()
	app, err := filepath.Abs(filepath.Join("testdata", "celeryapp"))
	if err != nil {
		t.Fatal(err)
	}
	hold := filepath.Join(dir, "hold")
	if err := os.Mkdir(hold, 0o755); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var notified []string
	partner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		notified = append(notified, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer partner.Close()
	notifiedOf := func(key string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, k := range notified {
			if k == key {
				n++
			}
		}
		return n
	}

	cfg := filepath.Join(dir, "twice.yaml")
	writeFile(t, cfg, fmt.Sprintf(`
sources:
  - {name: tasks, type: celery, broker: %q, key: args.0}
  - {name: mail, type: smtp, listen: "127.0.0.1:0", job_header: X-Job-Id}
  - {name: hooks, type: webhook, listen: "127.0.0.1:0", upstream: %q, job_header: X-Job-Id}
expect:
  - {job_type: app.send_receipt, effect: email.sent, effect_key: "receipt/{{key}}", within: 1m}
  - {job_type: app.send_receipt, effect: webhook.delivered, effect_key: "notify/{{key}}", within: 1m}
watch:
  state_dir: %s
  listen: "127.0.0.1:0"
  checkpoint_interval: 100ms
  idle_timeout: 1s
`, space.URL, partner.URL, filepath.Join(dir, "state")))
	logPath := filepath.Join(dir, "watch.log")
	w := watchtest.Start(t, bin, cfg, logPath, 3)
	addrs := pushAddrs(t, w, logPath, 0, 2)
	env := append(os.Environ(), "BROKER="+space.URL, "SMTP="+addrs["mail"], "WEBHOOK=http://"+addrs["hooks"],
		"HOLD="+hold, "PYTHONDONTWRITEBYTECODE=1")

	worker := func(name string) *exec.Cmd {
		cmd := exec.Command(debianPython, "-m", "celery", "-A", "tasks", "worker", "-E", "--concurrency=2",
			"-n", name+"@%h", "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO")
		cmd.Dir, cmd.Env = app, env
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		logf, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
		t.Cleanup(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			if t.Failed() {
				out, _ := os.ReadFile(logf.Name())
				t.Logf("%s:\n%s", name, watchtest.Tail(string(out), 3000))
			}
		})
		return cmd
	}
	send := func(payment string, holdFirst bool) string {
		arg, _ := json.Marshal([][]any{{payment, holdFirst}})
		cmd := exec.Command(debianPython, "send.py", string(arg))
		cmd.Dir, cmd.Env = app, env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		return strings.TrimSpace(string(out))
	}

	w1 := worker("w1")
	ok := send("payment:1", false)
	killed := send("payment:5", true)
	w.WaitFor(t, "payment:1's notification", func() bool { return notifiedOf("notify/payment:1") == 1 })
	w.WaitFor(t, "the held task's email", func() bool {
		_, err := os.Stat(filepath.Join(hold, killed+".held"))
		return err == nil
	})
	// payment:1 acknowledged (acks_late: after it returned), only the
	// held task not: RabbitMQ says so.
	ctl := os.Getenv(servicetest.EnvRabbitMQCtl)
	w.WaitFor(t, "one unacknowledged task in RabbitMQ", func() bool {
		out, err := exec.Command(ctl, "-q", "list_queues", "-p", space.VHost, "name", "messages_unacknowledged", "messages_ready").Output()
		return err == nil && slices.Contains(strings.Fields(string(out)), "celery") &&
			strings.Contains(" "+strings.Join(strings.Fields(string(out)), " ")+" ", " celery 1 0 ")
	})
	// The worker dies after the email: the task is not acknowledged.
	_ = syscall.Kill(-w1.Process.Pid, syscall.SIGKILL)
	worker("w2")
	w.WaitFor(t, "payment:5's notification after the redelivery", func() bool { return notifiedOf("notify/payment:5") == 1 })

	named := map[string]string{"ok": ok, "killed": killed}
	want := []string{
		"duplicate-effect receipt/payment:5 cause=redelivery jobs=killed",
		"effect-before-failure killed cause= jobs=killed",
	}
	var page watchtest.Page
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last findings %q, summary %+v, metrics %v", page.Keys(named), page.Summary, w.Metrics())
		}
	})
	w.WaitFor(t, "the findings", func() bool {
		page = w.Findings()
		return slices.Equal(page.Keys(named), want) && w.Metrics()["twice_push_durable_records_total"] == 5
	})
	// 3 emails (payment:5 twice) and 2 deliveries, each recorded once.
	if page.Summary.Malformed != 0 || page.Summary.RepeatedIDs != 0 {
		t.Fatalf("summary %+v", page.Summary)
	}
	w.Stop(t)
}
