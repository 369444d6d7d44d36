package sidekiq

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/internal/servicetest"
	"github.com/twicehq/twice/sources"
)

func newStream(t *testing.T, cfg Config) sources.Stream {
	t.Helper()
	s, err := sources.NewRegistry(Factory{}).NewStream(config.Source{Name: "jobs", Type: Type, Settings: &cfg}, sources.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

// TestPollStreamResumesFromItsState: the position of a poll-mode stream
// is its state, so a stream started at the position of a record goes on
// judging the jobs that were followed then.
func TestPollStreamResumesFromItsState(t *testing.T) {
	url := servicetest.RedisDB(t)
	opt, _ := redis.ParseURL(url)
	c := redis.NewClient(opt)
	defer c.Close()
	ctx := context.Background()
	now := float64(time.Now().UnixMilli()) / 1000
	c.SAdd(ctx, "processes", "h:1:a")
	c.HSet(ctx, "h:1:a", "beat", "1", "info", `{"queues":["default"]}`)
	c.SAdd(ctx, "queues", "default")
	c.LPush(ctx, "queue:default", pj("s1", "SendReceipt", now))

	cfg := Config{Redis: url, PollInterval: 10 * time.Millisecond}
	s := newStream(t, cfg)
	if s.Replayable() {
		t.Error("poll mode claims it can replay")
	}
	if err := s.Start(ctx, map[string]sources.Position{PollLane: "not a state"}); err != nil {
		t.Fatalf("a state it cannot read must not stop the stream: %v", err)
	}
	recs, err := s.Poll(ctx, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Event == nil || recs[0].Event.Kind.String() != "job.enqueued" || recs[0].Position == "" {
		t.Fatalf("first poll: %+v, want the enqueue, with the state after the snapshot", recs)
	}
	// A snapshot without news returns no record: the lane can go idle.
	if recs, err := s.Poll(ctx, time.Second); err != nil || len(recs) != 0 {
		t.Errorf("a poll without news: %v %v, want no record", recs, err)
	}
	// Within the interval, nothing.
	s.(*pollStream).next = time.Now().Add(time.Hour)
	if recs, err := s.Poll(ctx, 20*time.Millisecond); err != nil || len(recs) != 0 {
		t.Errorf("poll before the interval: %v %v", recs, err)
	}
	_ = s.Shutdown(ctx)

	// A worker takes the job and beats; twice restarts from the position.
	c.RPop(ctx, "queue:default")
	again := newStream(t, cfg)
	if err := again.Start(ctx, map[string]sources.Position{PollLane: recs[0].Position}); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for i := 0; i < 2; i++ {
		if i == 1 {
			c.HSet(ctx, "h:1:a", "beat", "2")
		}
		rs, err := again.Poll(ctx, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Event != nil {
				kinds = append(kinds, r.Event.Kind.String())
			}
		}
	}
	if strings.Join(kinds, " ") != "job.started job.succeeded" {
		t.Errorf("after the restart: %v, want the start and the inferred success", kinds)
	}
}

func TestMiddlewareStreamThroughTheRegistry(t *testing.T) {
	url := servicetest.RedisDB(t)
	opt, _ := redis.ParseURL(url)
	c := redis.NewClient(opt)
	defer c.Close()
	ctx := context.Background()
	publish(t, c, 1, 3)
	c.Set(ctx, DefaultStream+":seq", 3, 0)

	s := newStream(t, Config{Redis: url, Mode: ModeMiddleware})
	if !s.Replayable() {
		t.Error("the middleware stream claims it cannot replay")
	}
	if err := s.Start(ctx, map[string]sources.Position{DefaultStream: "bad"}); err == nil {
		t.Error("a bad position: no error")
	}
	if err := s.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if l := s.Lanes(); len(l) != 1 || l[0] != DefaultStream {
		t.Errorf("lanes %v", l)
	}
	recs, err := s.Poll(ctx, time.Second)
	if err != nil || len(recs) != 3 {
		t.Fatalf("poll: %d records, %v", len(recs), err)
	}
	o := s.(sources.Ordered)
	if !o.Before(DefaultStream, recs[0].Position, recs[1].Position) || o.Before(DefaultStream, recs[2].Position, recs[1].Position) {
		t.Errorf("positions out of order: %v", recs)
	}
	lag, err := s.(sources.LagReporter).Lag(ctx)
	if err != nil || lag[DefaultStream] != 0 {
		t.Errorf("lag %v %v, want 0", lag, err)
	}
	if err := s.(sources.HealthReporter).Health(); err != nil {
		t.Errorf("health: %v", err)
	}
}
