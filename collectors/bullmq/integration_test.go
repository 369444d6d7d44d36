package bullmq

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/internal/promtext"
	"github.com/twicehq/twice/internal/watchtest"
)

// TestFaultMix runs real BullMQ workers (bullmq 6.7 on node) through a mix
// of known faults on a real Redis, with twice watch following the queue
// and the effects file while they run — SIGKILLed once in the middle and
// started again — and then twice audit over the queue's retained history.
// Both must find exactly the faults of the mix, with their causes, and
// nothing else; the watch must count every event once.
func TestFaultMix(t *testing.T) {
	h := newHarness(t, "payments")
	bin := watchtest.Build(t)
	cfg := filepath.Join(h.dir, "twice.yaml")
	writeConfig(t, cfg, h)

	w := watchtest.Start(t, bin, cfg, filepath.Join(h.dir, "watch-1.log"), 0)
	ids := runFaultMix(h, func() {
		// Kill the watch once a checkpoint holds some of the mix.
		w.WaitFor(t, "a checkpoint with events", func() bool {
			m := promtext.Sums(w.Addr())
			return m["twice_events_total"] > 10 && m["twice_checkpoints_total"] >= 2
		})
		w.Kill()
		w = watchtest.Start(t, bin, cfg, filepath.Join(h.dir, "watch-2.log"), 0)
	})
	want := expectedFindings(h.queue, ids)

	// twice audit over the retained history of the queue and the file.
	out := filepath.Join(h.dir, "audit.json")
	cmd := exec.Command(bin, "audit", "--config", cfg, "--format", "json", "-o", out)
	if msg, err := cmd.CombinedOutput(); err != nil && cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("twice audit: %v\n%s", err, msg)
	}
	var rep report
	readJSON(t, out, &rep)
	if got := rep.keys(); !slices.Equal(got, want) {
		t.Errorf("twice audit found:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if rep.Summary.Malformed != 0 || rep.Summary.RepeatedIDs != 0 || len(rep.Summary.Warnings) != 0 {
		t.Errorf("audit summary: %d malformed, %d repeated, warnings %v", rep.Summary.Malformed, rep.Summary.RepeatedIDs, rep.Summary.Warnings)
	}

	// The watch, killed once, ends with the same findings and has counted
	// each event of the audit once.
	var live findingsPage
	deadline := time.Now().Add(waitLimit)
	for {
		live = findingsOf(w)
		if live.Summary.Events == rep.Summary.Events && slices.Equal(live.keys(), want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the watch's findings never equalled the audit's: %d events (audit %d), summary %+v, findings:\n  %s\nwant:\n  %s",
				live.Summary.Events, rep.Summary.Events, live.Summary, strings.Join(live.keys(), "\n  "), strings.Join(want, "\n  "))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if live.Summary.RepeatedIDs != 0 || live.Summary.Malformed != 0 {
		t.Errorf("watch summary: %+v", live.Summary)
	}
	w.Stop(t)
	t.Logf("%d events, %d findings; jobs %v", rep.Summary.Events, len(want), ids)
}

// runFaultMix runs the mix with real workers and returns the job ids by
// name. midway runs once the first jobs have ended, while workers run.
func runFaultMix(h *harness, midway func()) map[string]string {
	h.startWorkers(2)
	ids := h.add(
		receipt("ok", "payment:1", "ok", nil),
		// Sends, then throws: retried after a backoff (delayed) ...
		receipt("crash-backoff", "payment:2", "crash-once", map[string]any{"attempts": 3, "backoff": map[string]any{"type": "fixed", "delay": 300}}),
		// ... and at once (waiting from active).
		receipt("crash-at-once", "payment:3", "crash-once", map[string]any{"attempts": 3}),
		// One business key enqueued under two job ids; the effects carry
		// only the effect key.
		receipt("dup-a", "payment:4", "ok-keyonly", nil),
		receipt("dup-b", "payment:4", "ok-keyonly", nil),
		// "Succeeds" without the effect.
		receipt("silent", "payment:5", "silent", nil),
		// Fails every attempt: a dead letter nobody replays.
		receipt("exhaust", "payment:6", "always-fail", map[string]any{"attempts": 2}),
		// Sends, then fails its only attempt; replayed by an operator.
		receipt("replay", "payment:7", "crash-once", map[string]any{"attempts": 1}),
	)
	h.waitState("completed", ids["ok"], ids["crash-backoff"], ids["crash-at-once"], ids["dup-a"], ids["dup-b"], ids["silent"])
	h.waitState("failed", ids["exhaust"], ids["replay"])
	midway()
	h.retry(ids["replay"])
	h.waitState("completed", ids["replay"])

	// A worker SIGKILLed mid-job, after the effect: the job stalls and
	// another worker runs it again once its lock expired.
	stall := h.add(receipt("stall", "payment:8", "hang-once", nil))["stall"]
	ids["stall"] = stall
	h.killWorker(h.hang(stall))
	h.startWorkers(1)
	h.waitState("completed", stall)

	// A last job after the silent job's deadline (within: 5s), so that
	// the end of the input is past it.
	h.waitRedisTime(h.finishedOn(ids["silent"]) + 5000)
	ids["tick"] = h.add(jobSpec{Ref: "tick", Name: "Tick", Data: map[string]any{"behave": "tick"}})["tick"]
	h.waitState("completed", ids["tick"])
	h.stopWorkers()
	return ids
}

func receipt(ref, payment, behave string, opts map[string]any) jobSpec {
	return jobSpec{Ref: ref, Name: "SendReceipt", Data: map[string]any{"payment": payment, "behave": behave}, Opts: opts}
}

// expectedFindings are the findings of the mix, as report keys.
func expectedFindings(queue string, ids map[string]string) []string {
	f := func(detector, subject, cause string, jobs ...string) string {
		var js []string
		for _, j := range jobs {
			js = append(js, ids[j])
		}
		slices.Sort(js)
		return fmt.Sprintf("%s %s cause=%s jobs=%s", detector, subject, cause, strings.Join(js, ","))
	}
	want := []string{
		f("dead-letter", queue, "", "exhaust"),
		f("duplicate-effect", "receipt/payment:2", "redelivery", "crash-backoff"),
		f("duplicate-effect", "receipt/payment:3", "redelivery", "crash-at-once"),
		f("duplicate-effect", "receipt/payment:4", "duplicate-enqueue", "dup-a", "dup-b"),
		f("duplicate-effect", "receipt/payment:7", "replay", "replay"),
		f("duplicate-effect", "receipt/payment:8", "redelivery", "stall"),
		f("effect-before-failure", ids["crash-backoff"], "", "crash-backoff"),
		f("effect-before-failure", ids["crash-at-once"], "", "crash-at-once"),
		f("effect-before-failure", ids["replay"], "", "replay"),
		f("effect-before-failure", ids["stall"], "", "stall"),
		f("missing-effect", ids["silent"], "", "silent"),
	}
	slices.Sort(want)
	return want
}

// finding is what the test compares of a finding.
type finding struct {
	Detector string   `json:"detector"`
	Subject  string   `json:"subject"`
	Cause    string   `json:"cause"`
	Jobs     []string `json:"jobs"`
}

func keys(fs []finding) []string {
	var out []string
	for _, f := range fs {
		js := slices.Clone(f.Jobs)
		slices.Sort(js)
		out = append(out, fmt.Sprintf("%s %s cause=%s jobs=%s", f.Detector, f.Subject, f.Cause, strings.Join(js, ",")))
	}
	slices.Sort(out)
	return out
}

type reportSummary struct {
	Events      int64 `json:"events"`
	RepeatedIDs int64 `json:"repeated_ids"`
	Malformed   int64 `json:"malformed"`
	Late        int64 `json:"late"`
	Warnings    []any `json:"warnings"`
}

type report struct {
	Summary  reportSummary `json:"summary"`
	Findings []finding     `json:"findings"`
}

func (r *report) keys() []string { return keys(r.Findings) }

type findingsPage struct {
	Summary  reportSummary `json:"summary"`
	Findings []finding     `json:"findings"`
}

func (p *findingsPage) keys() []string { return keys(p.Findings) }

func writeConfig(t *testing.T, path string, h *harness) {
	t.Helper()
	cfg := fmt.Sprintf(`sources:
  - name: queue
    type: bullmq
    redis: %s
    prefix: %s
    queues: [%s]
    key: data.payment
  - name: effects
    type: file
    path: %s
expect:
  - job_type: SendReceipt
    effect: email.sent
    effect_key: "receipt/{{key}}"
    within: 5s
engine:
  lateness: 2s         # the effects file and the queue are read apart: absorb their disorder
watch:
  state_dir: %s
  listen: 127.0.0.1:0
  checkpoint_interval: 200ms
  snapshot_interval: 1s
`, h.url, h.prefix, h.queue, h.effects, filepath.Join(h.dir, "state"))
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// findingsOf returns the watch's current findings page; empty while its
// API does not answer.
func findingsOf(w *watchtest.Proc) findingsPage {
	var page findingsPage
	_ = w.GetJSON("/findings", &page)
	return page
}

func TestMain(m *testing.M) { os.Exit(watchtest.Main(m)) }
