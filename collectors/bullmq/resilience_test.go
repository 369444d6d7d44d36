package bullmq

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/twicehq/twice/internal/promtext"
	"github.com/twicehq/twice/internal/servicetest"
	"github.com/twicehq/twice/internal/watchtest"
	"github.com/twicehq/twice/sources"
)

// synth writes job lifecycles into a queue as BullMQ's scripts do (the
// hash, then "added", "waiting", "active", "completed"), each entry at an
// id fixed by the job's number and the entry's place: a job written again
// after Redis died finds the entries that were written (XADD refuses
// their ids) and writes the others, so each entry is in the stream once.
// It makes exact counts possible where real workers would be
// timing-bound.
type synth struct {
	c      *redis.Client
	prefix string
	queue  string
	base   uint64 // the first entry's milliseconds
	jobs   uint64 // jobs written whole
	next   uint64 // the next job's first entry's milliseconds
}

func newSynth(t *testing.T, url, prefix, queue string) *synth {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opt.MaxRetries = -1
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	base := uint64(time.Now().UnixMilli())
	return &synth{c: c, prefix: prefix, queue: queue, base: base, next: base}
}

func (s *synth) key(k string) string { return s.prefix + ":" + s.queue + ":" + k }

// job writes the whole life of job id (4 entries, 3 events); maxLen > 0
// trims the stream to exactly that many entries. After an error it may
// be called again with the same job.
func (s *synth) job(ctx context.Context, id string, maxLen int64) error {
	first := s.base + 4*s.jobs
	if err := s.c.HSet(ctx, s.key(id), "name", "Sync", "data", `{"k":"`+id+`"}`, "opts", "{}", "timestamp", first, "ats", 1).Err(); err != nil {
		return err
	}
	for i, f := range [][]any{
		{"event", "added", "jobId", id, "name", "Sync"},
		{"event", "waiting", "jobId", id},
		{"event", "active", "jobId", id, "prev", "waiting"},
		{"event", "completed", "jobId", id, "returnvalue", "null", "prev", "active"},
	} {
		err := s.c.XAdd(ctx, &redis.XAddArgs{Stream: s.key("events"), ID: fmt.Sprintf("%d-0", first+uint64(i)), MaxLen: maxLen, Values: f}).Err()
		if err != nil && !strings.Contains(err.Error(), "equal or smaller") {
			return err
		}
	}
	s.jobs++
	s.next = s.base + 4*s.jobs
	return nil
}

// pollAll polls st until a poll returns nothing, and returns the records.
// Each record's position must come after the one before in its lane, or
// the watch would take it for one read again and drop it.
func pollAll(t *testing.T, st *Stream) []sources.Record {
	t.Helper()
	var out []sources.Record
	last := map[string]sources.Position{}
	for {
		recs, err := st.Poll(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return out
		}
		for _, r := range recs {
			if p, ok := last[r.Lane]; ok && !st.Before(r.Lane, p, r.Position) {
				t.Fatalf("lane %s: record at %s after one at %s: %+v", r.Lane, r.Position, p, r)
			}
			last[r.Lane] = r.Position
		}
		out = append(out, recs...)
	}
}

func countEvents(recs []sources.Record) (events int, lost []int64) {
	for _, r := range recs {
		if r.Event != nil {
			events++
		}
		if r.Lost != nil {
			lost = append(lost, r.Lost.Count)
		}
	}
	return events, lost
}

// TestTrimmedStreamGaps trims a queue's stream (as maxLenEvents does)
// while twice is not reading it: the entries lost are reported once, as a
// gap with their exact count, never as findings; a restart at the
// checkpointed position reports nothing again; an audit reports what was
// trimmed before it first read the stream.
func TestTrimmedStreamGaps(t *testing.T) {
	space := servicetest.Redis(t)
	s := newSynth(t, space.URL, space.Prefix, "sync")
	ctx := context.Background()
	for i := range 3 {
		if err := s.job(ctx, fmt.Sprint(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{Redis: space.URL, Prefix: space.Prefix, Queues: []string{"sync"}, Key: "data.k"}
	st, err := NewStream("jobs", cfg, StreamOptions{Batch: 5})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer st.Shutdown(ctx)
	recs := pollAll(t, st)
	if n, lost := countEvents(recs); n != 9 || len(lost) != 0 {
		t.Fatalf("first read: %d events, gaps %v; want 9, none", n, lost)
	}
	last := recs[len(recs)-1].Position
	if !strings.HasSuffix(string(last), "/12") {
		t.Errorf("position %s does not count the 12 entries", last)
	}

	// 10 more jobs (40 entries), the stream trimmed to its last 20: 20 of
	// the new entries are gone before twice read them.
	for i := 3; i < 13; i++ {
		if err := s.job(ctx, fmt.Sprint(i), 20); err != nil {
			t.Fatal(err)
		}
	}
	recs = pollAll(t, st)
	n, lost := countEvents(recs)
	if len(lost) != 1 || lost[0] != 20 || n != 15 {
		t.Fatalf("after the trim: %d events, gaps %v; want 15 events (5 jobs), one gap of 20", n, lost)
	}
	if recs[0].Lost == nil || recs[0].Lost.Lane != "sync" || recs[0].Lost.Reason != "stream trimmed" || recs[0].Lost.Source != "jobs" {
		t.Errorf("gap record %+v", recs[0])
	}
	if got := st.Stats()["sync"].Lost; got != 20 {
		t.Errorf("Stats().Lost = %d", got)
	}
	if lag, _ := st.Lag(ctx); lag["sync"] != 0 {
		t.Errorf("lag %v after reading everything", lag)
	}

	// A restart at the last position finds no new gap.
	resume := map[string]sources.Position{"sync": recs[len(recs)-1].Position}
	st2, _ := NewStream("jobs", cfg, StreamOptions{})
	if err := st2.Start(ctx, resume); err != nil {
		t.Fatal(err)
	}
	defer st2.Shutdown(ctx)
	if err := s.job(ctx, "13", 20); err != nil {
		t.Fatal(err)
	}
	if n, lost := countEvents(pollAll(t, st2)); n != 3 || len(lost) != 0 {
		t.Errorf("after a restart: %d events, gaps %v; want 3, none", n, lost)
	}

	// An audit reads what the stream holds: 20 entries, the 36 before
	// them trimmed before it first read the stream.
	col, _ := NewCollector("jobs", cfg, "sync", CollectorOptions{Batch: 7})
	if err := col.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer col.Shutdown(ctx)
	var events int
	var gaps []int64
	for {
		b, err := col.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		events += len(b.Events)
		for _, g := range b.Lost {
			gaps = append(gaps, g.Count)
		}
	}
	if events != 15 || len(gaps) != 1 || gaps[0] != 36 {
		t.Errorf("audit: %d events, gaps %v; want 15, one of 36", events, gaps)
	}
}

// TestAuditSince reads from a time on: the entries before it are not
// read, and not reported as lost.
func TestAuditSince(t *testing.T) {
	space := servicetest.Redis(t)
	s := newSynth(t, space.URL, space.Prefix, "sync")
	ctx := context.Background()
	for i := range 4 {
		if err := s.job(ctx, fmt.Sprint(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	since := time.UnixMilli(int64(s.next - 8)) // the last two jobs
	col, _ := NewCollector("jobs", Config{Redis: space.URL, Prefix: space.Prefix}, "sync", CollectorOptions{Since: since})
	if err := col.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer col.Shutdown(ctx)
	var got []string
	for {
		b, err := col.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Lost) > 0 {
			t.Errorf("gaps %v", b.Lost)
		}
		for _, e := range b.Events {
			got = append(got, e.Kind.String()+" "+e.JobID)
		}
	}
	want := "job.enqueued 2,job.started 2,job.succeeded 2,job.enqueued 3,job.started 3,job.succeeded 3"
	if strings.Join(got, ",") != want {
		t.Errorf("events %v\nwant %s", got, want)
	}
}

// TestWatchSurvivesRedisRestart kills Redis (SIGKILL) while twice watch
// follows a queue being written, and starts it again: the watch reports
// the source down on /readyz, reconnects with backoff and jitter, resumes
// at its position, and ends with every event counted once — the same
// count as twice audit of the stream afterwards.
func TestWatchSurvivesRedisRestart(t *testing.T) {
	srv := servicetest.NewRedisServer(t)
	bin := watchtest.Build(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "twice.yaml")
	body := fmt.Sprintf(`sources:
  - name: queue
    type: bullmq
    redis: %s
    queues: [sync]
    key: data.k
watch:
  state_dir: %s
  listen: 127.0.0.1:0
  checkpoint_interval: 200ms
`, srv.URL(), filepath.Join(dir, "state"))
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	const jobs = 600
	s := newSynth(t, srv.URL(), "bull", "sync")
	// The producer retries every write until Redis takes it.
	produced := make(chan error, 1)
	go func() {
		ctx := context.Background()
		deadline := time.Now().Add(waitLimit)
		for i := range jobs {
			for {
				err := s.job(ctx, fmt.Sprint(i), 0)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					produced <- err
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			if i%50 == 49 {
				time.Sleep(50 * time.Millisecond)
			}
		}
		produced <- nil
	}()

	w := watchtest.Start(t, bin, cfg, filepath.Join(dir, "watch.log"), 0)
	w.WaitFor(t, "a third of the events", func() bool {
		return promtext.Sums(w.Addr())["twice_events_total"] >= jobs
	})
	srv.Kill()
	w.WaitFor(t, "/readyz to report the source down", func() bool {
		code, body := get(w.Addr(), "/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "queue")
	})
	srv.Start()
	if err := <-produced; err != nil {
		t.Fatalf("producer: %v", err)
	}
	w.WaitFor(t, "every event", func() bool {
		return findingsOf(w).Summary.Events >= 3*jobs
	})
	w.WaitFor(t, "/readyz to report ready", func() bool {
		code, _ := get(w.Addr(), "/readyz")
		return code == http.StatusOK
	})
	m := promtext.Sums(w.Addr())
	page := findingsOf(w)
	if page.Summary.Events != 3*jobs || page.Summary.RepeatedIDs != 0 || page.Summary.Malformed != 0 {
		t.Errorf("watch summary %+v, want %d events, none repeated", page.Summary, 3*jobs)
	}
	if m["twice_source_retries_total"] < 1 {
		t.Errorf("twice_source_retries_total = %v: the outage was not seen", m["twice_source_retries_total"])
	}
	if m["twice_consumer_lag"] != 0 {
		t.Errorf("twice_consumer_lag = %v after reading everything", m["twice_consumer_lag"])
	}
	w.Stop(t)

	out := filepath.Join(dir, "audit.json")
	cmd := exec.Command(bin, "audit", "--config", cfg, "--format", "json", "-o", out)
	if msg, err := cmd.CombinedOutput(); err != nil && cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("twice audit: %v\n%s", err, msg)
	}
	var rep report
	readJSON(t, out, &rep)
	if rep.Summary.Events != 3*jobs {
		t.Errorf("audit: %d events, want %d", rep.Summary.Events, 3*jobs)
	}
}

func get(addr, path string) (int, string) {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAuditJobHashRemoved: a job whose hash is gone (removeOnComplete)
// before the audit reads it keeps its lifecycle, named by its "added"
// entry, without key; the audit says how many such jobs there were.
func TestAuditJobHashRemoved(t *testing.T) {
	space := servicetest.Redis(t)
	s := newSynth(t, space.URL, space.Prefix, "sync")
	ctx := context.Background()
	for _, id := range []string{"1", "2"} {
		if err := s.job(ctx, id, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.c.Del(ctx, s.key("2")).Err(); err != nil {
		t.Fatal(err)
	}
	var logs []string
	col, _ := NewCollector("jobs", Config{Redis: space.URL, Prefix: space.Prefix, Key: "data.k"}, "sync",
		CollectorOptions{Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }})
	if err := col.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer col.Shutdown(ctx)
	var got []string
	for {
		b, err := col.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range b.Events {
			got = append(got, fmt.Sprintf("%s %s %s key=%s", e.Kind, e.JobID, e.JobType, e.Key))
		}
	}
	want := []string{
		"job.enqueued 1 Sync key=1", "job.started 1 Sync key=1", "job.succeeded 1 Sync key=1",
		"job.enqueued 2 Sync key=", "job.started 2 Sync key=", "job.succeeded 2 Sync key=",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(logs) != 1 || !strings.Contains(logs[0], "1 job(s) were removed from Redis") {
		t.Errorf("logs %q", logs)
	}
	if st := col.Stats(); st.HashMissing != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestWatchReportsTrimWhileStopped stops twice watch, lets the queue's
// stream be trimmed past its position, and starts it again: the watch
// reports exactly the entries it lost (once, as lost coverage, not as
// findings), and reads on.
func TestWatchReportsTrimWhileStopped(t *testing.T) {
	space := servicetest.Redis(t)
	bin := watchtest.Build(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "twice.yaml")
	body := fmt.Sprintf(`sources:
  - {name: queue, type: bullmq, redis: %q, prefix: %q, queues: [sync], key: data.k}
watch:
  state_dir: %s
  listen: 127.0.0.1:0
  checkpoint_interval: 200ms
`, space.URL, space.Prefix, filepath.Join(dir, "state"))
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newSynth(t, space.URL, space.Prefix, "sync")
	ctx := context.Background()
	for i := range 3 {
		if err := s.job(ctx, fmt.Sprint(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	w := watchtest.Start(t, bin, cfg, filepath.Join(dir, "watch-1.log"), 0)
	w.WaitFor(t, "the 9 events", func() bool { return findingsOf(w).Summary.Events == 9 })
	w.Stop(t)

	// 10 jobs (40 entries) while it is stopped, the stream trimmed to 20.
	for i := 3; i < 13; i++ {
		if err := s.job(ctx, fmt.Sprint(i), 20); err != nil {
			t.Fatal(err)
		}
	}
	w = watchtest.Start(t, bin, cfg, filepath.Join(dir, "watch-2.log"), 0)
	var page findingsPage
	w.WaitFor(t, "the 15 events left", func() bool {
		page = findingsOf(w)
		return page.Summary.Events == 9+15
	})
	if len(page.Summary.Warnings) != 1 || !strings.Contains(fmt.Sprint(page.Summary.Warnings[0]), "lost 20 events") ||
		!strings.Contains(fmt.Sprint(page.Summary.Warnings[0]), "(stream trimmed)") {
		t.Errorf("warnings %v, want one about 20 events lost (stream trimmed)", page.Summary.Warnings)
	}
	if m := promtext.Sums(w.Addr()); m["twice_coverage_lost_total"] != 1 {
		t.Errorf("twice_coverage_lost_total = %v, want 1 gap", m["twice_coverage_lost_total"])
	}
	if len(page.Findings) != 0 {
		t.Errorf("findings %v: a gap is no finding", page.keys())
	}
	w.Stop(t)
}

// TestStreamQueuesByGlob reads every queue a glob matches, each a lane of
// its own, and finds a queue created after Start.
func TestStreamQueuesByGlob(t *testing.T) {
	space := servicetest.Redis(t)
	ctx := context.Background()
	for _, q := range []string{"mail-eu", "mail-us", "billing"} {
		if err := newSynth(t, space.URL, space.Prefix, q).job(ctx, "1", 0); err != nil {
			t.Fatal(err)
		}
	}
	st, err := NewStream("jobs", Config{Redis: space.URL, Prefix: space.Prefix, Queues: []string{"mail-*"}}, StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer st.Shutdown(ctx)
	if got := strings.Join(st.Lanes(), ","); got != "mail-eu,mail-us" {
		t.Errorf("lanes %s", got)
	}
	byLane := map[string]int{}
	for _, r := range pollAll(t, st) {
		if r.Event != nil {
			byLane[r.Lane]++
			if r.Event.Queue != r.Lane {
				t.Errorf("event of queue %s in lane %s", r.Event.Queue, r.Lane)
			}
		}
	}
	if byLane["mail-eu"] != 3 || byLane["mail-us"] != 3 || len(byLane) != 2 {
		t.Errorf("events by lane %v", byLane)
	}
	if err := newSynth(t, space.URL, space.Prefix, "mail-asia").job(ctx, "1", 0); err != nil {
		t.Fatal(err)
	}
	st.rescanEvery = 0
	if n, _ := countEvents(pollAll(t, st)); n != 3 || !slices.Contains(st.Lanes(), "mail-asia") {
		t.Errorf("after a new queue: %d events, lanes %v", n, st.Lanes())
	}
}
