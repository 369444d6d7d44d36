package sidekiq

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twicehq/twice/internal/servicetest"
	"github.com/twicehq/twice/twicetype"
)

// publish appends entries n..m to the stream as the middleware writes
// them.
func publish(t *testing.T, c *redis.Client, from, to int) {
	t.Helper()
	ctx := context.Background()
	for n := from; n <= to; n++ {
		jid := fmt.Sprintf("j%d", n)
		err := c.XAdd(ctx, &redis.XAddArgs{Stream: DefaultStream, Values: []any{
			"n", n, "v", "1", "e", "enqueued", "ts", strconv.FormatInt(time.Now().UnixMicro(), 10), "jid", jid,
			"job", `{"jid":"` + jid + `","class":"SendReceipt","queue":"default","args":["p-` + jid + `"]}`,
		}}).Err()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// readUntil reads from r, retrying errors (Redis restarting), until it
// has n records or the deadline passes.
func readUntil(t *testing.T, r *StreamReader, n int) []StreamRecord {
	t.Helper()
	var out []StreamRecord
	deadline := time.Now().Add(30 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		recs, err := r.Read(context.Background(), 200*time.Millisecond, 100)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		out = append(out, recs...)
	}
	if len(out) != n {
		t.Fatalf("read %d records, want %d", len(out), n)
	}
	return out
}

func TestStreamReaderSurvivesRedisRestart(t *testing.T) {
	srv := servicetest.NewRedisServer(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	ctx := context.Background()
	r, err := NewStreamReader("jobs", Config{Redis: srv.URL(), Mode: ModeMiddleware, Key: "args.0"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(ctx)
	if err := r.Start(ctx, Position{}); err != nil {
		t.Fatal(err)
	}
	publish(t, c, 1, 5)
	first := readUntil(t, r, 5)

	srv.Kill()
	if _, err := r.Read(ctx, 0, 100); err == nil {
		t.Fatal("read from a killed Redis: no error")
	}
	if _, err := r.Lag(ctx); err == nil {
		t.Fatal("lag from a killed Redis: no error")
	}
	srv.Start()
	publish(t, c, 6, 10)
	rest := readUntil(t, r, 5)
	all := append(first, rest...)
	for i, rec := range all {
		if rec.Event == nil || rec.Event.JobID != fmt.Sprintf("j%d", i+1) || rec.Pos.N != int64(i+1) || rec.Lost != nil {
			t.Fatalf("record %d: %+v, want the event of j%d, no gap", i, rec, i+1)
		}
	}
	// The middleware numbers entries in <stream>:seq: lag is what the
	// reader has not read of them.
	c.Set(ctx, DefaultStream+":seq", 12, 0)
	if lag, err := r.Lag(ctx); err != nil || lag != 2 {
		t.Errorf("lag %d, %v; want 2", lag, err)
	}

	// A reader started at a checkpointed position reads only what follows.
	again, _ := NewStreamReader("jobs", Config{Redis: srv.URL(), Mode: ModeMiddleware})
	defer again.Shutdown(ctx)
	if err := again.Start(ctx, all[6].Pos); err != nil {
		t.Fatal(err)
	}
	recs := readUntil(t, again, 3)
	if recs[0].Event.JobID != "j8" {
		t.Errorf("resumed at %s, want j8", recs[0].Event.JobID)
	}

	// A trim while twice was away is reported, never as a finding.
	c.XTrimMaxLen(ctx, DefaultStream, 0)
	publish(t, c, 20, 20)
	recs = readUntil(t, again, 1)
	if recs[0].Lost == nil || recs[0].Lost.Count != 9 {
		t.Errorf("after a trim of 11..19: lost %+v, want 9 entries", recs[0].Lost)
	}
}

func TestPollerSurvivesRedisRestart(t *testing.T) {
	srv := servicetest.NewRedisServer(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	ctx := context.Background()
	p, err := NewPoller("jobs", Config{Redis: srv.URL(), Key: "args.0.payment"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(ctx)
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	now := float64(time.Now().UnixMilli()) / 1000
	payload := pj("r1", "SendReceipt", now)
	info := `{"hostname":"h","pid":1,"queues":["default"],"identity":"h:1:a"}`
	c.SAdd(ctx, "queues", "default")
	c.LPush(ctx, "queue:default", payload)
	c.SAdd(ctx, "processes", "h:1:a")
	c.HSet(ctx, "h:1:a", "beat", "1", "info", info)
	kinds := func(b []twicetype.Event) (out []string) {
		for _, ev := range b {
			out = append(out, ev.Kind.String())
		}
		return out
	}
	b, err := p.Poll(ctx)
	if err != nil || fmt.Sprint(kinds(b.Events)) != "[job.enqueued]" {
		t.Fatalf("first poll: %v %v", kinds(b.Events), err)
	}
	if b.Events[0].Key != "p-r1" || b.Events[0].ID != "sidekiq:r1:enqueued:"+strconv.FormatFloat(now, 'f', -1, 64) {
		t.Errorf("event %+v", b.Events[0])
	}

	srv.Kill()
	if _, err := p.Poll(ctx); err == nil {
		t.Fatal("poll of a killed Redis: no error")
	}
	srv.Start()
	// Meanwhile a worker took the job and ran it, and beat again.
	c.RPop(ctx, "queue:default")
	var got []string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, err := p.Poll(ctx)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		got = append(got, kinds(b.Events)...)
		if len(got) > 0 {
			break
		}
	}
	c.HSet(ctx, "h:1:a", "beat", "2")
	b, err = p.Poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, kinds(b.Events)...)
	if fmt.Sprint(got) != "[job.started job.succeeded]" {
		t.Errorf("after the restart: %v, want the start and the success, not the enqueue again", got)
	}
}
