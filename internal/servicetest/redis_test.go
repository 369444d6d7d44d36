package servicetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestRedisPrefix writes under a test's prefix on the shared server and
// finds the keys gone once that test ended; a key outside it stays.
func TestRedisPrefix(t *testing.T) {
	url := RedisURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := newClient(t, url)
	outside := "t-outside-" + uniqueName(t)
	if err := c.Set(ctx, outside, "x", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	defer c.Del(ctx, outside)

	var prefix string
	t.Run("inner", func(t *testing.T) {
		s := Redis(t)
		prefix = s.Prefix
		if !strings.HasPrefix(s.Prefix, "t-") || strings.Contains(s.Prefix, ":") {
			t.Errorf("prefix %q", s.Prefix)
		}
		for _, k := range []string{":a", ":b:c", ":q:events"} {
			if err := c.Set(ctx, s.Prefix+k, "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	})
	keys, err := c.Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) != 0 {
		t.Errorf("after the test: keys %v, err %v", keys, err)
	}
	if n, _ := c.Exists(ctx, outside).Result(); n != 1 {
		t.Errorf("a key outside the prefix was deleted")
	}
}

// TestRedisDB gives two tests two databases, each empty, and flushes them.
func TestRedisDB(t *testing.T) {
	RedisURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var a, b string
	t.Run("a", func(t *testing.T) {
		a = RedisDB(t)
		t.Run("b", func(t *testing.T) {
			b = RedisDB(t)
			if a == b {
				t.Fatalf("two tests share %s", a)
			}
			for _, u := range []string{a, b} {
				c := newClient(t, u)
				if n, _ := c.DBSize(ctx).Result(); n != 0 {
					t.Errorf("%s holds %d keys at the start", u, n)
				}
				if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
		})
	})
	if n, _ := newClient(t, a).DBSize(ctx).Result(); n != 0 {
		t.Errorf("%s not flushed: %d keys", a, n)
	}
}

// TestRedisServerRestart kills a private server and starts it again: a key
// written before the SIGKILL is still there, on the same URL.
func TestRedisServerRestart(t *testing.T) {
	s := NewRedisServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := newClient(t, s.URL())
	if err := c.XAdd(ctx, &redis.XAddArgs{Stream: "s", Values: []string{"event", "added"}}).Err(); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if s.Running() {
		t.Fatal("running after Kill")
	}
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered while the server is down")
	}
	s.Start()
	if n, err := c.XLen(ctx, "s").Result(); err != nil || n != 1 {
		t.Fatalf("after the restart: XLEN %d, %v; want 1", n, err)
	}
	s.Stop()
	s.Start()
	if n, err := c.XLen(ctx, "s").Result(); err != nil || n != 1 {
		t.Fatalf("after a clean restart: XLEN %d, %v; want 1", n, err)
	}
}

func newClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	c := redisClient(t, url)
	t.Cleanup(func() { c.Close() })
	return c
}
