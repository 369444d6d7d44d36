// Command bench-watch measures twice watch against a real Kafka broker:
//
//  1. ingestion: a 6-partition topic holding N generated events is read by
//     a bare kafka-go consumer (the baseline) and then by twice watch with
//     a checkpoint every second; both as events/s, and their ratio;
//
//  2. detection latency: duplicate effects are produced at a steady rate
//     (event time = now) while twice watch runs; for each, the time from
//     producing its second effect to the finding showing on GET /findings.
//
//     go run ./scripts/bench-watch -twice ./twice -events 1000000
//
// TWICE_KAFKA_BROKERS names the broker (scripts/services up kafka).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/twicehq/twice/internal/kafkaprod"
	"github.com/twicehq/twice/internal/promtext"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-watch:", err)
		os.Exit(1)
	}
}

func run() error {
	bin := flag.String("twice", "", "twice binary (built from ./cmd/twice when empty)")
	events := flag.Int("events", 1_000_000, "events in the ingestion topic")
	input := flag.String("input", "", "events file (generated when empty)")
	dups := flag.Int("dups", 300, "duplicate effects produced in the latency phase")
	rate := flag.Int("rate", 2000, "events/s produced in the latency phase (one pair in 10 is a duplicate)")
	work := flag.String("dir", os.TempDir()+"/twice-bench-watch", "work directory")
	flag.Parse()
	brokers := strings.Split(os.Getenv("TWICE_KAFKA_BROKERS"), ",")
	if brokers[0] == "" {
		return fmt.Errorf("TWICE_KAFKA_BROKERS is unset: eval \"$(scripts/services up kafka)\"")
	}
	if err := os.MkdirAll(*work, 0o755); err != nil {
		return err
	}
	if *bin == "" {
		*bin = filepath.Join(*work, "twice")
		if out, err := exec.Command("go", "build", "-o", *bin, "./cmd/twice").CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %v\n%s", err, out)
		}
	}
	if *input == "" {
		*input = filepath.Join(*work, fmt.Sprintf("events-%d.jsonl", *events))
		if _, err := os.Stat(*input); err != nil {
			cmd := exec.Command("go", "run", "./scripts/gen", "-events", strconv.Itoa(*events), "-seed", "1", "-o", *input)
			cmd.Stderr = os.Stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("gen: %w", err)
			}
		}
	}
	ctx := context.Background()
	run := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)

	// Phase 1: ingestion.
	topic := "bench-ingest-" + run
	if err := kafkaprod.CreateTopic(ctx, brokers, topic, 6); err != nil {
		return err
	}
	msgs, err := kafkaprod.Lines(*input)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := kafkaprod.Produce(ctx, brokers, topic, msgs); err != nil {
		return err
	}
	produce := time.Since(t0)
	n := len(msgs)
	bare, err := bareRead(ctx, brokers, topic, n)
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(20000))
	cfg := filepath.Join(*work, "ingest.yaml")
	state := filepath.Join(*work, "state-"+run)
	if err := writeConfig(cfg, brokers, topic, "bench-"+run, state, addr, "0s"); err != nil {
		return err
	}
	cmd := exec.Command(*bin, "watch", "--config", cfg)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	t1 := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	var m map[string]float64
	for {
		time.Sleep(100 * time.Millisecond)
		m = promtext.Sums(addr)
		if m != nil && m["twice_events_total"]+m["twice_malformed_total"]+m["twice_repeated_events_total"] >= float64(n)-12 {
			break
		}
		if time.Since(t1) > 10*time.Minute {
			cmd.Process.Kill()
			return fmt.Errorf("twice watch did not read %d events in 10 minutes: %v", n, m)
		}
	}
	ingest := time.Since(t1)
	ckpt := m["twice_checkpoint_duration_seconds_sum"] / max(1, m["twice_checkpoint_duration_seconds_count"])
	// Restart after SIGKILL: snapshot (if one was due) plus the journal
	// since, replayed, until /readyz answers.
	time.Sleep(1500 * time.Millisecond) // let a checkpoint cover the end
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	stateBytes := dirBytes(state)
	cmd = exec.Command(*bin, "watch", "--config", cfg)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	t2 := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	for !ready(addr) {
		if time.Since(t2) > 5*time.Minute {
			cmd.Process.Kill()
			return fmt.Errorf("twice watch not ready 5 minutes after a restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
	restart := time.Since(t2)
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	os.RemoveAll(state)
	fmt.Printf("ingestion of %d events from a 6-partition topic (produce took %v)\n", n, produce.Round(time.Millisecond))
	fmt.Printf("  bare kafka-go read      %8.2f s  %9.0f events/s\n", bare.Seconds(), float64(n)/bare.Seconds())
	fmt.Printf("  twice watch (ckpt 1s)   %8.2f s  %9.0f events/s  (%.2f× the bare read's time; mean checkpoint %.1f ms over %.0f)\n",
		ingest.Seconds(), float64(n)/ingest.Seconds(), ingest.Seconds()/bare.Seconds(), ckpt*1000, m["twice_checkpoint_duration_seconds_count"])
	fmt.Printf("  restart after SIGKILL   %8.2f s  to /readyz (state dir %.1f MB: snapshot + journal replayed)\n",
		restart.Seconds(), float64(stateBytes)/1e6)

	// Phase 2: detection latency.
	topic = "bench-latency-" + run
	if err := kafkaprod.CreateTopic(ctx, brokers, topic, 6); err != nil {
		return err
	}
	cfg = filepath.Join(*work, "latency.yaml")
	state = filepath.Join(*work, "state-lat-"+run)
	defer os.RemoveAll(state)
	if err := writeConfig(cfg, brokers, topic, "bench-lat-"+run, state, addr, "0s"); err != nil {
		return err
	}
	cmd = exec.Command(*bin, "watch", "--config", cfg)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	for promtext.Sums(addr) == nil {
		time.Sleep(50 * time.Millisecond)
	}
	lat, err := latency(ctx, brokers, topic, addr, *dups, *rate)
	if err != nil {
		return err
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	fmt.Printf("detection latency, duplicate effect produced → on GET /findings (%d duplicates, %d events/s, checkpoint 1s)\n", len(lat), *rate)
	fmt.Printf("  p50 %v  p90 %v  p99 %v  max %v\n", q(0.5).Round(time.Millisecond), q(0.9).Round(time.Millisecond),
		q(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	return nil
}

// ready reports whether GET /readyz answers 200.
func ready(addr string) bool {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// dirBytes sums the sizes of the files in dir.
func dirBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func writeConfig(path string, brokers []string, topic, group, state, addr, lateness string) error {
	cfg := fmt.Sprintf(`sources:
  - name: bench
    type: kafka
    brokers: [%s]
    topics: [%s]
    group: %s
engine:
  lateness: %s
watch:
  state_dir: %s
  listen: %s
  checkpoint_interval: 1s
  idle_timeout: 1s
  findings: []
expect:
  - {job_type: SendReceipt, effect: email.sent, effect_key: "receipt/{{key}}", within: 5m}
`, strings.Join(brokers, ", "), topic, group, lateness, state, addr)
	return os.WriteFile(path, []byte(cfg), 0o644)
}

// bareRead reads n messages from every partition of topic with kafka-go
// and nothing else: the floor for any consumer on this machine.
func bareRead(ctx context.Context, brokers []string, topic string, n int) (time.Duration, error) {
	start := time.Now()
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for p := 0; p < 6; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p,
				MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 200 * time.Millisecond})
			defer r.Close()
			r.SetOffset(kafkago.FirstOffset)
			for total.Load() < int64(n) {
				rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := r.ReadMessage(rctx)
				cancel()
				if err != nil {
					if rctx.Err() != nil {
						return // this partition is done
					}
					errs <- err
					return
				}
				total.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	if got := total.Load(); got < int64(n) {
		return 0, fmt.Errorf("bare read got %d of %d messages", got, n)
	}
	return time.Since(start), nil
}

// latency produces jobs whose receipts go out once, and some twice, at a
// steady rate, and times each duplicate until GET /findings shows it.
func latency(ctx context.Context, brokers []string, topic, addr string, dups, rate int) ([]time.Duration, error) {
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Topic: topic, Balancer: &kafkago.Hash{},
		BatchTimeout: time.Millisecond, BatchSize: 100, RequiredAcks: kafkago.RequireOne}
	defer w.Close()
	sent := map[string]time.Time{}
	var mu sync.Mutex
	done := make(chan struct{})
	found := map[string]time.Duration{}
	go func() { // poll the API
		defer close(done)
		re := regexp.MustCompile(`"subject":"(receipt/[^"]+)"`)
		since := time.Now().UTC().Format(time.RFC3339Nano)
		for {
			resp, err := http.Get("http://" + addr + "/findings?detector=duplicate-effect&since=" + since)
			now := time.Now()
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				for _, m := range re.FindAllSubmatch(body, -1) {
					key := string(m[1])
					if t, ok := sent[key]; ok {
						if _, seen := found[key]; !seen {
							found[key] = now.Sub(t)
						}
					}
				}
				all := len(found) >= dups
				mu.Unlock()
				if all {
					return
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	interval := time.Second / time.Duration(rate/10)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; i < dups*10; i++ {
		<-tick.C
		key := fmt.Sprintf("receipt/p-%d", i)
		now := time.Now()
		line := func(id, kind string, extra string) kafkago.Message {
			v := fmt.Sprintf(`{"id":%q,"ts":%q,"kind":%q,"job_id":"j-%d"%s}`, id, now.UTC().Format(time.RFC3339Nano), kind, i, extra)
			return kafkago.Message{Key: []byte(key), Value: []byte(v)}
		}
		batch := []kafkago.Message{
			line(fmt.Sprintf("e%d-1", i), "effect", fmt.Sprintf(`,"effect":"email.sent","effect_key":%q`, key)),
			line(fmt.Sprintf("s%d", i), "job.succeeded", ""),
		}
		dup := i%10 == 0
		if dup {
			batch = append(batch, line(fmt.Sprintf("e%d-2", i), "effect", fmt.Sprintf(`,"effect":"email.sent","effect_key":%q`, key)))
		}
		if err := w.WriteMessages(ctx, batch...); err != nil {
			return nil, err
		}
		if dup {
			mu.Lock()
			sent[key] = time.Now()
			mu.Unlock()
		}
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
	mu.Lock()
	defer mu.Unlock()
	if len(found) < dups {
		return nil, fmt.Errorf("only %d of %d duplicates showed on /findings within 30s", len(found), dups)
	}
	out := make([]time.Duration, 0, len(found))
	for _, d := range found {
		out = append(out, d)
	}
	return out, nil
}
