package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/twicehq/twice/internal/kafkaprod"
	"github.com/twicehq/twice/internal/promtext"
)

// waitLimit bounds every wait for a condition the watch reports: reaching
// it is a failure, never a way to go on.
const waitLimit = 2 * time.Minute

// pollEvery is how often a condition is looked at.
const pollEvery = 20 * time.Millisecond

// watchProc is one run of twice watch, with its stderr in a file of its
// own and its HTTP API on a port the kernel chose.
type watchProc struct {
	cmd     *exec.Cmd
	stderr  *os.File
	logPath string
	exited  chan error
	addr    string
}

// startWatch starts twice watch with cfg (whose watch.listen has port 0)
// and returns once it has said where its HTTP API listens.
func startWatch(t *testing.T, bin, cfg, logPath string) *watchProc {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "watch", "--config", cfg)
	cmd.Stdout, cmd.Stderr = io.Discard, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &watchProc{cmd: cmd, stderr: logf, logPath: logPath, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	const marker = "HTTP API on http://"
	p.waitFor(t, "its HTTP API address in its log", func() bool {
		log, _ := os.ReadFile(logPath)
		i := strings.Index(string(log), marker)
		if i < 0 {
			return false
		}
		rest := string(log[i+len(marker):])
		if j := strings.IndexByte(rest, '\n'); j > 0 {
			p.addr = rest[:j]
			return true
		}
		return false
	})
	return p
}

// waitFor polls cond until it holds; the process exiting or waitLimit
// passing fails the test.
func (p *watchProc) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		select {
		case err := <-p.exited:
			p.exited <- err
			t.Fatalf("twice watch exited (%v) while the test waited for %s", err, what)
		case <-time.After(pollEvery):
		}
		if time.Now().After(deadline) {
			p.kill(t)
			t.Fatalf("twice watch: no %s within %v; metrics: %v", what, waitLimit, p.metrics())
		}
	}
}

// metrics returns the sum of each twice_ metric's series; nil while the
// API does not answer.
func (p *watchProc) metrics() map[string]float64 { return promtext.Sums(p.addr) }

// ready reports whether /readyz answers 200: the state is restored and the
// sources and sinks are started.
func (p *watchProc) ready() bool {
	resp, err := http.Get("http://" + p.addr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (p *watchProc) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	err := <-p.exited
	p.exited <- err
	p.stderr.Close()
}

// stop sends SIGTERM and requires a clean exit within 10s.
func (p *watchProc) stop(t *testing.T) {
	t.Helper()
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("twice watch after SIGTERM: %v", err)
		}
		t.Logf("SIGTERM to exit: %v", time.Since(start).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Fatal("twice watch did not exit within 10s of SIGTERM")
	}
	p.stderr.Close()
}

// feed produces the test's messages to the topic in order: part of them
// at a steady rate in the background (steady), the rest when the test asks
// (more, rest), so that the test never runs out of events to show the
// watch while a condition it waits for needs some.
type feed struct {
	brokers []string
	topic   string
	msgs    []kafkaprod.Message

	mu   sync.Mutex
	next int
}

// produce writes the next n messages (fewer at the end) and returns how
// many it wrote.
func (f *feed) produce(ctx context.Context, n int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	end := min(f.next+n, len(f.msgs))
	if end == f.next {
		return 0, nil
	}
	if err := kafkaprod.Produce(ctx, f.brokers, f.topic, f.msgs[f.next:end]); err != nil {
		return 0, err
	}
	n, f.next = end-f.next, end
	return n, nil
}

// steady produces chunk messages at a time, rate a second, until upTo
// messages are out or ctx ends.
func (f *feed) steady(ctx context.Context, chunk, rate, upTo int) error {
	tick := time.NewTicker(time.Duration(float64(time.Second) * float64(chunk) / float64(rate)))
	defer tick.Stop()
	for {
		f.mu.Lock()
		left := upTo - f.next
		f.mu.Unlock()
		if left <= 0 {
			return nil
		}
		if _, err := f.produce(ctx, min(chunk, left)); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil
		}
	}
}

func (f *feed) produced() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.next
}

// setTopicMaxMessageBytes sets the topic's max.message.bytes, or removes
// it (back to the broker's default) when v is "".
func setTopicMaxMessageBytes(t *testing.T, brokers []string, topic, v string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	op := kafkago.ConfigOperationSet
	if v == "" {
		op = kafkago.ConfigOperationDelete
	}
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...)}
	resp, err := client.IncrementalAlterConfigs(ctx, &kafkago.IncrementalAlterConfigsRequest{
		Resources: []kafkago.IncrementalAlterConfigsRequestResource{{
			ResourceType: kafkago.ResourceTypeTopic, ResourceName: topic,
			Configs: []kafkago.IncrementalAlterConfigsRequestConfig{{Name: "max.message.bytes", Value: v, ConfigOperation: op}},
		}},
	})
	if err == nil && len(resp.Resources) == 1 {
		err = resp.Resources[0].Error
	}
	if err != nil {
		t.Fatalf("topic %s: setting max.message.bytes to %q: %v", topic, v, err)
	}
}

// groupBehind returns, per partition of topic, how far the group's
// committed offset is behind the end of the partition.
func groupBehind(ctx context.Context, brokers []string, topic, group string, partitions int) (map[int]int64, error) {
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...)}
	var ids []int
	var reqs []kafkago.OffsetRequest
	for p := 0; p < partitions; p++ {
		ids = append(ids, p)
		reqs = append(reqs, kafkago.LastOffsetOf(p))
	}
	ends, err := client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, err
	}
	committed, err := client.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	if err != nil {
		return nil, err
	}
	if committed.Error != nil {
		return nil, committed.Error
	}
	at := map[int]int64{}
	for _, p := range committed.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("partition %d: %w", p.Partition, p.Error)
		}
		at[p.Partition] = p.CommittedOffset
	}
	out := map[int]int64{}
	for _, p := range ends.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("partition %d: %w", p.Partition, p.Error)
		}
		out[p.Partition] = p.LastOffset - max(at[p.Partition], 0)
	}
	if len(out) != partitions {
		return nil, fmt.Errorf("end offsets of %d partitions, want %d", len(out), partitions)
	}
	return out, nil
}
