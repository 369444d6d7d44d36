// Command bench-sidekiq measures twice's sidekiq tap against real Sidekiq 6
// workers (Debian's ruby-sidekiq) on a private redis-server:
//
//  1. what poll mode sees: under a load of JOBS pushed at RATE a second,
//     with run times spread as in app.rb (60% 5–30 ms, 30% 50–300 ms, 9%
//     0.5–2 s, 1% 5–10 s; 5% fail their first run), the share of jobs
//     whose lifecycle poll mode saw whole at its poll interval — every
//     run started, every failure, the success — and per step; and the
//     runs it reported as lost coverage, against the truth;
//
//  2. what each mode costs Redis: the same load runs alone, with poll
//     mode reading it, and with twice's middleware installed and its
//     stream read; INFO commandstats is reset when the workers are up and
//     read when the last job is done. What twice adds is the difference,
//     by command, in calls a second and Redis CPU microseconds a second.
//
//     go run ./scripts/bench-sidekiq [-jobs 1200] [-rate 20] [-concurrency 10] [-poll 1s]
//
// It needs redis-server, ruby and sidekiq (scripts/deps.d/sidekiq.sh).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/twicehq/twice/collectors/sidekiq"
	"github.com/twicehq/twice/twicetype"
)

var (
	jobs        = flag.Int("jobs", 1200, "jobs to push")
	rate        = flag.Float64("rate", 20, "jobs pushed a second")
	concurrency = flag.Int("concurrency", 10, "Sidekiq threads (one process)")
	pollEvery   = flag.Duration("poll", sidekiq.DefaultPollInterval, "poll mode's poll_interval")
	seed        = flag.Int("seed", 1, "seed of the job mix")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-sidekiq:", err)
		os.Exit(1)
	}
}

// job is one pushed job and what a reader saw of it.
type job struct {
	jid   string
	fails bool
	seen  map[string]bool // "kind attempt"
}

// result is one run of the load.
type result struct {
	name   string
	window time.Duration
	stats  map[string]cmdstat
	jobs   map[string]*job
	poll   *sidekiq.PollStats
	gaps   []twicetype.Gap
	stream *sidekiq.StreamStats
}

type cmdstat struct{ calls, usec float64 }

// twiceCommands are the commands each mode sends: poll mode's snapshot,
// and the middleware's script (EVALSHA and what it runs) with twice's
// XREAD. sentCommands are those a client sends: EXEC and EVALSHA run the
// others, and their time includes them.
var (
	twiceCommands = map[string][]string{
		"poll": {"smembers", "multi", "exec", "time", "llen", "lrange", "zcard", "zrange", "zrangebyscore",
			"hmget", "hgetall", "mget"},
		"middleware": {"evalsha", "script|load", "incr", "set", "expire", "get", "del", "xadd", "xread"},
	}
	sentCommands = map[string]bool{"smembers": true, "multi": true, "exec": true, "evalsha": true, "script|load": true, "xread": true}
)

func run() error {
	_, file, _, _ := runtime.Caller(0)
	app := filepath.Dir(file)
	for _, bin := range []string{"redis-server", "ruby", "sidekiq"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s is not installed (scripts/deps.d/sidekiq.sh, apt-get install redis-server)", bin)
		}
	}
	dir, err := os.MkdirTemp("", "twice-bench-sidekiq")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	port, err := freePort()
	if err != nil {
		return err
	}
	srv := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no", "--dir", dir)
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer rdb.Close()
	ctx := context.Background()
	if err := waitFor(10*time.Second, func() bool { return rdb.Ping(ctx).Err() == nil }); err != nil {
		return errors.New("redis-server did not answer")
	}
	fmt.Printf("bench-sidekiq: %d jobs at %.0f/s, one Sidekiq 6 process of %d threads, poll interval %v, redis-server on %d\n\n",
		*jobs, *rate, *concurrency, *pollEvery, port)

	var results []*result
	for _, mode := range []string{"alone", "poll", "middleware"} {
		r, err := load(ctx, rdb, app, dir, url, mode)
		if err != nil {
			return fmt.Errorf("%s: %w", mode, err)
		}
		results = append(results, r)
	}
	report(results)
	return nil
}

// load runs the job mix once: alone, read by poll mode, or with the
// middleware installed and its stream read.
func load(ctx context.Context, rdb *redis.Client, app, dir, url, mode string) (*result, error) {
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return nil, err
	}
	env := append(os.Environ(), "REDIS_URL="+url, "RUBYOPT=-W0")
	if mode == "middleware" {
		env = append(env, "TWICE_MIDDLEWARE=1")
	}
	logf, err := os.Create(filepath.Join(dir, "sidekiq-"+mode+".log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	sk := exec.Command("sidekiq", "-r", "./app.rb", "-c", strconv.Itoa(*concurrency))
	sk.Dir, sk.Env, sk.Stdout, sk.Stderr = app, env, logf, logf
	if err := sk.Start(); err != nil {
		return nil, err
	}
	defer func() { _ = sk.Process.Signal(syscall.SIGTERM); _ = sk.Wait() }()
	if err := waitFor(60*time.Second, func() bool { return rdb.SCard(ctx, "processes").Val() == 1 }); err != nil {
		return nil, errors.New("sidekiq did not start; see its log")
	}
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		return nil, err
	}
	start := time.Now()

	res := &result{name: mode, jobs: map[string]*job{}}
	var mu sync.Mutex
	see := func(evs []twicetype.Event) {
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range evs {
			j := res.jobs[ev.JobID]
			if j == nil {
				j = &job{jid: ev.JobID, seen: map[string]bool{}}
				res.jobs[ev.JobID] = j
			}
			k := ev.Kind.String()
			if ev.HasAttempt {
				k += " " + strconv.FormatInt(ev.Attempt, 10)
			}
			j.seen[k] = true
		}
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	var poller *sidekiq.Poller
	var reader *sidekiq.StreamReader
	switch mode {
	case "poll":
		if poller, err = sidekiq.NewPoller("bench", sidekiq.Config{Redis: url, PollInterval: *pollEvery}); err != nil {
			return nil, err
		}
		if err := poller.Start(ctx); err != nil {
			return nil, err
		}
		defer poller.Shutdown(ctx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(*pollEvery)
			defer t.Stop()
			for {
				if b, err := poller.Poll(rctx); err == nil {
					see(b.Events)
				}
				select {
				case <-rctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	case "middleware":
		if reader, err = sidekiq.NewStreamReader("bench", sidekiq.Config{Redis: url, Mode: sidekiq.ModeMiddleware}); err != nil {
			return nil, err
		}
		if err := reader.Start(ctx, sidekiq.Position{}); err != nil {
			return nil, err
		}
		defer reader.Shutdown(ctx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rctx.Err() == nil {
				recs, err := reader.Read(rctx, time.Second, 1000)
				if err != nil {
					continue
				}
				var evs []twicetype.Event
				for _, r := range recs {
					if r.Event != nil {
						evs = append(evs, *r.Event)
					}
				}
				see(evs)
			}
		}()
	}

	// Push the load.
	prod := exec.Command("ruby", "app.rb", "produce", strconv.Itoa(*jobs), strconv.FormatFloat(*rate, 'f', -1, 64), strconv.Itoa(*seed))
	prod.Dir, prod.Env, prod.Stderr = app, env, logf
	out, err := prod.Output()
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	truth := map[string]bool{} // jid → fails
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 {
			truth[f[1]] = f[2] == "1"
		}
	}
	runs := int64(len(truth))
	for _, fails := range truth {
		if fails {
			runs++
		}
	}
	// Done when Sidekiq counted every run and holds nothing more.
	err = waitFor(10*time.Minute, func() bool {
		processed, _ := rdb.Get(ctx, "stat:processed").Int64()
		return processed >= runs && rdb.LLen(ctx, "queue:default").Val() == 0 && rdb.ZCard(ctx, "retry").Val() == 0
	})
	if err != nil {
		return nil, errors.New("the load did not finish")
	}
	res.window = time.Since(start)
	if res.stats, err = commandstats(ctx, rdb); err != nil {
		return nil, err
	}
	if poller != nil {
		// Let poll mode judge what it follows (a few heartbeats) and
		// account for every run Sidekiq counted: seen ending, unknown,
		// or reported missed (20 s after stat:processed counts it).
		_ = waitFor(60*time.Second, func() bool {
			s := poller.Stats()
			var missed int64
			for _, g := range poller.Coverage() {
				missed += g.Count
			}
			return s.Following == 0 && s.RunsSeenEnding+s.Unknown+missed >= s.Processed
		})
	}
	if reader != nil {
		_ = waitFor(30*time.Second, func() bool { lag, err := reader.Lag(ctx); return err == nil && lag == 0 })
	}
	stop()
	wg.Wait()
	if poller != nil {
		s := poller.Stats()
		res.poll, res.gaps = &s, poller.Coverage()
	}
	if reader != nil {
		s := reader.Stats()
		res.stream = &s
	}
	// Keep only the pushed jobs, and mark which fail.
	for jid, fails := range truth {
		j := res.jobs[jid]
		if j == nil {
			j = &job{jid: jid, seen: map[string]bool{}}
			res.jobs[jid] = j
		}
		j.fails = fails
	}
	for jid := range res.jobs {
		if _, ok := truth[jid]; !ok {
			delete(res.jobs, jid)
		}
	}
	return res, nil
}

// commandstats reads INFO commandstats.
func commandstats(ctx context.Context, rdb *redis.Client) (map[string]cmdstat, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	out := map[string]cmdstat{}
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		var s cmdstat
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			f, _ := strconv.ParseFloat(v, 64)
			switch k {
			case "calls":
				s.calls = f
			case "usec":
				s.usec = f
			}
		}
		out[name] = s
	}
	return out, nil
}

// whole reports which steps of a job's lifecycle a reader saw.
func whole(j *job) (enq, started, failed, ended bool) {
	enq = j.seen["job.enqueued"]
	started = j.seen["job.started 1"]
	failed = true
	last := 1
	if j.fails {
		failed = j.seen["job.failed 1"]
		started = started && j.seen["job.started 2"]
		last = 2
	}
	ended = j.seen["job.succeeded "+strconv.Itoa(last)]
	return
}

func report(results []*result) {
	alone := results[0]
	for _, r := range results[1:] {
		var n, all, enq, st, fl, end, failing int
		for _, j := range r.jobs {
			n++
			e, s, f, d := whole(j)
			if e {
				enq++
			}
			if s {
				st++
			}
			if j.fails {
				failing++
				if f {
					fl++
				}
			}
			if d {
				end++
			}
			if e && s && f && d {
				all++
			}
		}
		pct := func(a, b int) string {
			if b == 0 {
				return "-"
			}
			return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(b))
		}
		fmt.Printf("== %s mode: %d jobs (%d fail their first run), load took %.1fs\n", r.name, n, failing, r.window.Seconds())
		fmt.Printf("   lifecycle seen whole: %s   (enqueued %s, every start %s, failures %s, success %s)\n",
			pct(all, n), pct(enq, n), pct(st, n), pct(fl, failing), pct(end, n))
		if p := r.poll; p != nil {
			var missed int64
			for _, g := range r.gaps {
				missed += g.Count
			}
			fmt.Printf("   poll stats: %d snapshots; successes inferred %d certain + %d likely; unknown %d; runs lost with a process %d\n",
				p.Snapshots, p.SucceededCertain, p.SucceededLikely, p.Unknown, p.LostWithProcess)
			fmt.Printf("   runs counted by stat:processed %d, seen ending %d, reported as lost coverage %d\n", p.Processed, p.RunsSeenEnding, missed)
		}
		if s := r.stream; s != nil {
			fmt.Printf("   stream: %d entries, %d events, %d malformed, %d lost to trims\n", s.Entries, s.Events, s.Malformed, s.Lost)
		}
		secs := r.window.Seconds()
		type row struct {
			name         string
			calls, usecs float64
		}
		var rows []row
		var calls, sent, usecs float64
		for _, name := range twiceCommands[r.name] {
			s, a := r.stats[name], alone.stats[name]
			// The load is the same in both runs: what twice adds is the
			// difference of the totals, over this run's time.
			dc := (s.calls - a.calls) / secs
			du := (s.usec - a.usec) / secs
			if s.calls == 0 {
				continue
			}
			rows = append(rows, row{name, dc, du})
			calls += dc
			if sentCommands[name] {
				sent += dc
				usecs += du
			}
		}
		sort.Slice(rows, func(a, b int) bool { return rows[a].calls > rows[b].calls })
		fmt.Printf("   Redis cost over the load alone, at %.0f jobs/s (%.1f jobs/s done): %.0f commands/s sent, %.0f run in all, %.0f µs of Redis time a second\n",
			*rate, float64(n)/secs, sent, calls, usecs)
		fmt.Printf("   (sent: %s; EXEC and EVALSHA run the others, and their time includes them; Sidekiq's scheduler also runs zrangebyscore and evalsha)\n",
			strings.Join(sentOf(r.name), ", "))
		for _, x := range rows {
			fmt.Printf("     %-16s %8.1f calls/s %9.0f µs/s\n", x.name, x.calls, x.usecs)
		}
		fmt.Println()
	}
	var total float64
	for _, s := range alone.stats {
		total += s.calls
	}
	fmt.Printf("== the load alone: %.0f commands/s\n", total/alone.window.Seconds())
}

func sentOf(mode string) []string {
	var out []string
	for _, c := range twiceCommands[mode] {
		if sentCommands[c] {
			out = append(out, c)
		}
	}
	return out
}

func waitFor(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
