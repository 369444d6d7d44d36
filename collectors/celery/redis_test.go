package celery

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/twicehq/twice/internal/servicetest"
	"github.com/twicehq/twice/sources"
)

// publish sends one Celery event as kombu does on Redis, database 0.
func publish(t *testing.T, c *redis.Client, body string) {
	t.Helper()
	publishOn(t, c, "/0.celeryev/task.multi", body)
}

// publishOn sends one Celery event as kombu does on Redis, on channel.
func publishOn(t *testing.T, c *redis.Client, channel, body string) {
	t.Helper()
	env, _ := json.Marshal(map[string]any{
		"body": base64.StdEncoding.EncodeToString([]byte(body)), "content-encoding": "utf-8",
		"content-type": "application/json", "headers": map[string]any{},
		"properties": map[string]any{"body_encoding": "base64", "delivery_info": map[string]any{"exchange": "celeryev", "routing_key": "task.multi"}},
	})
	if err := c.Publish(context.Background(), channel, env).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestRedisSubscriptionBroken kills the Redis under a subscribed stream
// and starts it again: the stream reports the time without subscription
// as lost coverage, subscribes again by itself and reads what comes
// after; a restart of the stream reports the time since its position.
func TestRedisSubscriptionBroken(t *testing.T) {
	srv := servicetest.NewRedisServer(t)
	clock := time.Unix(1_800_000_000, 0)
	now := func() time.Time { return clock }
	s, err := NewStream("tasks", Config{Broker: srv.URL()}, StreamOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	pub := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer pub.Close()
	event := func(clock int) string {
		return `[{"type":"task-started","uuid":"u","hostname":"w","clock":` + itoa(clock) + `,"timestamp":1800000000.5}]`
	}
	// poll until a record matching want arrives.
	poll := func(what string, want func(sources.Record) bool) sources.Record {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			recs, _ := s.Poll(ctx, 100*time.Millisecond)
			for _, r := range recs {
				if want(r) {
					return r
				}
			}
		}
		t.Fatalf("no %s within 30s", what)
		return sources.Record{}
	}
	publish(t, pub, event(1))
	first := poll("event", func(r sources.Record) bool { return r.Event != nil })
	if first.Lane != Lane || first.Event.Kind.String() != "job.started" {
		t.Errorf("record %+v", first)
	}
	srv.Kill()
	clock = clock.Add(time.Minute) // when the stream sees the subscription broken
	if _, err := s.Poll(ctx, 100*time.Millisecond); err == nil {
		t.Error("Poll with Redis down: no error")
	}
	if s.Health() == nil {
		t.Error("Health with Redis down: nil")
	}
	srv.Start()
	clock = clock.Add(time.Minute)
	gap := poll("gap", func(r sources.Record) bool { return r.Lost != nil })
	if gap.Lost.Reason != GapReason || gap.Lost.From != time.Unix(1_800_000_060, 0).UnixNano() || gap.Lost.To != time.Unix(1_800_000_120, 0).UnixNano() {
		t.Errorf("gap %+v", gap.Lost)
	}
	// Subscribed again: what is published now is read.
	waitPublished := func(clock int) {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			publish(t, pub, event(clock))
			recs, _ := s.Poll(ctx, 200*time.Millisecond)
			for _, r := range recs {
				if r.Event != nil {
					return
				}
			}
		}
		t.Fatal("no event after Redis came back")
	}
	waitPublished(2)
	if s.Health() != nil {
		t.Errorf("Health after Redis came back: %v", s.Health())
	}
	// A restart after the position: the time since is lost.
	pos := first.Position
	s2, _ := NewStream("tasks", Config{Broker: srv.URL()}, StreamOptions{Now: now})
	if err := s2.Start(ctx, map[string]sources.Position{Lane: pos}); err != nil {
		t.Fatal(err)
	}
	defer s2.Shutdown(context.Background())
	recs, _ := s2.Poll(ctx, 10*time.Millisecond)
	if len(recs) == 0 || recs[0].Lost == nil || recs[0].Lost.From != time.Unix(1_800_000_000, 0).UnixNano() || recs[0].Lost.To != clock.UnixNano() {
		t.Errorf("after a restart: %+v", recs)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
