package bullmq

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/twicehq/twice/internal/servicetest"
)

// aclRules are the Redis permissions docs/sources/bullmq.md tells users
// to give twice: read commands on the queues' keys, nothing else.
const aclRules = "~bull:* resetchannels -@all +hello +auth +ping +multi +exec +xrange +xread +xinfo|stream +hmget +scan"

// TestACLUser reads a queue as an ACL user with only the documented
// permissions (watch and audit), and tells what is missing when one lacks.
func TestACLUser(t *testing.T) {
	srv := servicetest.NewRedisServer(t)
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer admin.Close()
	args := []any{"ACL", "SETUSER", "twice", "on", ">s3cret"}
	for _, r := range strings.Fields(aclRules) {
		args = append(args, r)
	}
	if err := admin.Do(ctx, args...).Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(ctx, "ACL", "SETUSER", "narrow", "on", ">s3cret", "~bull:*", "-@all", "+hello", "+auth", "+ping", "+multi", "+exec", "+xrange", "+xinfo|stream", "+scan").Err(); err != nil {
		t.Fatal(err)
	}
	s := newSynth(t, srv.URL(), "bull", "sync")
	for _, id := range []string{"1", "2"} {
		if err := s.job(ctx, id, 0); err != nil {
			t.Fatal(err)
		}
	}
	url := "redis://twice:s3cret@" + srv.Addr()
	cfg := Config{Redis: url, Queues: []string{"sy*"}, Key: "data.k"}
	st, err := NewStream("jobs", cfg, StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Start(ctx, nil); err != nil {
		t.Fatalf("Start as the ACL user: %v", err)
	}
	defer st.Shutdown(ctx)
	if n, _ := countEvents(pollAll(t, st)); n != 6 {
		t.Errorf("%d events as the ACL user, want 6", n)
	}
	col, _ := NewCollector("jobs", cfg, "sync", CollectorOptions{})
	if err := col.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if b, err := col.Next(ctx); err != nil || len(b.Events) != 6 {
		t.Errorf("audit as the ACL user: %v, %v", b, err)
	}
	col.Shutdown(ctx)

	// Without HMGET the job hashes cannot be read: the error says so.
	narrow, _ := NewStream("jobs", Config{Redis: "redis://narrow:s3cret@" + srv.Addr(), Queues: []string{"sync"}, Key: "data.k"}, StreamOptions{})
	if err := narrow.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer narrow.Shutdown(ctx)
	_, err = narrow.Poll(ctx, 0)
	if err == nil || !strings.Contains(err.Error(), "hmget") || narrow.Health() == nil {
		t.Errorf("Poll without HMGET: %v (health %v)", err, narrow.Health())
	}
}

// TestTLSURL: rediss:// turns TLS on, with the host as the server name.
func TestTLSURL(t *testing.T) {
	c, err := newClient("rediss://u:p@redis.internal:6380/2")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o := c.Options()
	if o.TLSConfig == nil || o.TLSConfig.ServerName != "redis.internal" || o.Username != "u" || o.Password != "p" || o.DB != 2 {
		t.Errorf("options: TLS %v user %q db %d", o.TLSConfig, o.Username, o.DB)
	}
	c2, _ := newClient("redis://localhost:6379")
	defer c2.Close()
	if c2.Options().TLSConfig != nil {
		t.Error("TLS on a redis:// URL")
	}
}
